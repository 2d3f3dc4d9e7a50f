"""Rate limits on guessing: failed token checks and failed logins, per client address."""

from __future__ import annotations

import threading
import time
from collections import deque

from commons.errors import CommonsError


class TooManyAttempts(CommonsError):
    """Too many failed attempts from this address; retry later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed attempts; retry in {retry_after} s")
        self.retry_after = retry_after


class FailureLimiter:
    """At most `limit` failures per `window_s` seconds per key (a sliding window, in memory).

    Only failures count, so a client with a valid credential is never slowed down. The state is
    per process; behind several workers each enforces its own window.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def check(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            q = self._recent(key, now)
            if len(q) >= self.limit:
                raise TooManyAttempts(int(q[0] + self.window_s - now) + 1)

    def fail(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # bound memory under a spray of addresses
                self._failures.clear()

    def reset(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

