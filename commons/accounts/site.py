"""Run-time site settings an administrator changes (stored in the database)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from commons.db.models import SiteSetting

DEFAULTS: dict[str, Any] = {"signup_enabled": True}
# Settings a namespace (organisation or user) chooses for itself; the site value is the default.
NAMESPACE_DEFAULTS: dict[str, Any] = {
    "license_mode": "strict",  # do dataset licenses bind trained weights? strict: yes
    "license_on_conflict": "warn",  # warn | block: what a commit that creates a license conflict gets
}


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


def _ns_key(namespace: str, key: str) -> str:
    return f"ns:{namespace}:{key}"


def get_setting_for(session: Session, namespace: str, key: str) -> Any:
    """A namespace's own setting, else the site-wide one, else the default."""
    if key not in NAMESPACE_DEFAULTS:
        raise KeyError(key)
    for k in (_ns_key(namespace, key), f"site:{key}"):
        row = session.get(SiteSetting, k)
        if row is not None:
            return row.value
    return NAMESPACE_DEFAULTS[key]


def set_setting_for(session: Session, namespace: str | None, key: str, value: Any) -> None:
    """Set a namespace's setting (`namespace=None`: the site-wide default for every namespace)."""
    allowed = {"license_mode": ("strict", "lenient"), "license_on_conflict": ("warn", "block")}
    if key not in NAMESPACE_DEFAULTS:
        raise KeyError(key)
    if value not in allowed[key]:
        raise ValueError(f"{key} must be one of {allowed[key]}")
    k = f"site:{key}" if namespace is None else _ns_key(namespace, key)
    row = session.get(SiteSetting, k)
    if row is None:
        session.add(SiteSetting(key=k, value=value))
    else:
        row.value = value
