"""Jobs: typed specs in a database queue, run by workers in child processes, outputs published to the hub.

Never imports torch: training happens in `python -m commons.ml.run` child processes.
"""
