"""Evaluations on the hub side: import benchmark data as dataset repos, and turn results into card metadata.

No torch here: the model side lives in `commons.ml.eval` and runs in a job's child process.
"""
