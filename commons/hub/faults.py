"""Named pause points for crash tests: `COMMONS_FAULT_PAUSE=<point>:<seconds>`.

The SIGKILL tests need the server stopped at an exact step of a commit (objects written, ref not
yet moved). Unset in normal operation, each point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import time


def pause(point: str) -> None:
    spec = os.environ.get("COMMONS_FAULT_PAUSE")
    if not spec:
        return
    name, _, seconds = spec.partition(":")
    if name == point:
        marker = os.environ.get("COMMONS_FAULT_MARKER")
        if marker:
            # Tell the test we are at the point, so it can kill us there.
            with open(marker, "w") as fh:
                fh.write(point)
        time.sleep(float(seconds or 60))
