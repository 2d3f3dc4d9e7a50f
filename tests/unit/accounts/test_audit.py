"""The audit chain verifies; altering, deleting or inserting one row makes verification fail and name it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.orm import Session, sessionmaker

from commons.accounts import audit
from commons.db import migrate
from commons.db.base import make_engine, make_sessionmaker
from commons.db.models import AuditEvent


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    migrate.upgrade(url)
    return make_sessionmaker(make_engine(url))


def _fill(sessions: sessionmaker[Session], n: int = 5) -> None:
    for i in range(n):
        audit.record(sessions, "repo.commit", f"model:alice/m{i}", actor="alice", token="t", namespace="alice",
                     details={"commit": f"{i:040x}"})


def test_chain_verifies(sessions: sessionmaker[Session]) -> None:
    _fill(sessions)
    with sessions() as s:
        result = audit.verify(s)
    assert result.ok and result.rows == 5


@pytest.mark.parametrize("tamper", ["content", "delete", "insert"])
def test_tampering_is_detected_and_named(sessions: sessionmaker[Session], tamper: str) -> None:
    _fill(sessions)
    with sessions() as s:
        if tamper == "content":
            s.execute(update(AuditEvent).where(AuditEvent.id == 3).values(actor="mallory"))
        elif tamper == "delete":
            s.execute(delete(AuditEvent).where(AuditEvent.id == 3))
        else:
            s.execute(text("INSERT INTO audit_events (id, at, actor, action, target, details, prev_hash, hash) "
                           "VALUES (100, '2026-01-01', 'x', 'y', 'z', '{}', 'p', 'h')"))
        s.commit()
        result = audit.verify(s)
    assert not result.ok
    assert result.bad_row == {"content": 3, "delete": 4, "insert": 100}[tamper]
    assert result.reason


def test_export_is_json_lines(sessions: sessionmaker[Session]) -> None:
    import json

    _fill(sessions, 3)
    with sessions() as s:
        lines = list(audit.export_jsonl(s, "alice"))
    assert [json.loads(line)["target"] for line in lines] == ["model:alice/m0", "model:alice/m1", "model:alice/m2"]
