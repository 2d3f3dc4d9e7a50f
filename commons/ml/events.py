"""The child's side of the progress protocol: one JSON object per line on the protocol stream.

    {"type": "log", "level": "info", "message": "loading base model"}
    {"type": "phase", "name": "train"}
    {"type": "progress", "step": 3, "total": 10, "loss": 2.31, "lr": 0.0002, "tokens_per_s": 812.5, "eta_s": 4.1}
    {"type": "metric", "name": "eval_loss", "value": 2.05, "step": 10}

The worker reads these lines and stores them as job events. `open_protocol_stream` moves the
process's real stdout aside for the protocol and points fd 1 at stderr, so a stray `print` in a
library can never corrupt the stream.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
from typing import IO, Any


def open_protocol_stream() -> IO[str]:
    """Take fd 1 for the protocol; from now on `print` and fd-level writes to stdout go to stderr."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(os.dup(2), "w", buffering=1)
    return os.fdopen(protocol_fd, "w", buffering=1)


def _clean(value: Any) -> Any:
    # JSON has no NaN or infinity: send them as strings the reader can still show.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class Reporter:
    """Writes protocol events. Thread-safe; a closed or broken stream is ignored (the parent may be gone)."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def emit(self, kind: str, **data: Any) -> None:
        if self.stream is None:
            return
        line = json.dumps({"type": kind, **{k: _clean(v) for k, v in data.items()}})
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                self.stream = None

    def log(self, message: str, level: str = "info") -> None:
        self.emit("log", level=level, message=message)

    def phase(self, name: str) -> None:
        self.emit("phase", name=name)

    def progress(self, step: int, total: int, **metrics: float | int | None) -> None:
        self.emit("progress", step=step, total=total, **metrics)

    def metric(self, name: str, value: float, step: int | None = None) -> None:
        self.emit("metric", name=name, value=value, step=step)
