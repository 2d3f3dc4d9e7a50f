"""Run-time site settings an administrator changes (stored in the database)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from commons.db.models import SiteSetting

DEFAULTS: dict[str, Any] = {"signup_enabled": True}


def get_setting(session: Session, key: str) -> Any:
    row = session.get(SiteSetting, key)
    return row.value if row is not None else DEFAULTS[key]


def set_setting(session: Session, key: str, value: Any) -> None:
    if key not in DEFAULTS:
        raise KeyError(key)
    row = session.get(SiteSetting, key)
    if row is None:
        session.add(SiteSetting(key=key, value=value))
    else:
        row.value = value
