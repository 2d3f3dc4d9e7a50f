"""HMAC-signed URLs: transfers that must work without the Bearer token (LFS PUT, redirects)."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode


class UrlSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._key, "\n".join(parts).encode(), hashlib.sha256).hexdigest()

    def sign(self, action: str, oid: str, size: int, ttl: int) -> str:
        """Query string authorizing `action` on object `oid` of `size` bytes until now+ttl."""
        exp = int(time.time()) + ttl
        return urlencode({"size": size, "exp": exp, "sig": self._mac(action, oid, str(size), str(exp))})

    def verify(self, action: str, oid: str, size: str | None, exp: str | None, sig: str | None) -> bool:
        if not (size and exp and sig) or not exp.isdigit() or int(exp) < time.time():
            return False
        return hmac.compare_digest(self._mac(action, oid, size, exp), sig)
