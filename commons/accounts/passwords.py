"""Password hashing (argon2id) and the rules a password must meet."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from commons.errors import InvalidRequest

_HASHER = PasswordHasher()
MIN_LENGTH = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise InvalidRequest(f"A password needs at least {MIN_LENGTH} characters")
    if len(password) > 1024:
        raise InvalidRequest("A password may have at most 1024 characters")
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if not stored:
        # Same work as a real check, so a missing account does not answer faster than a wrong password.
        _HASHER.hash(password[:1024])
        return False
    try:
        return _HASHER.verify(stored, password[:1024])
    except (VerificationError, InvalidHashError):
        return False
