"""The audit log: append-only, each row hash-chained to the one before it.

`hash = sha256(prev_hash + canonical JSON of the row)`. Rewriting, deleting or inserting a row
breaks the chain at that row, and `verify` names the first row that does not check out. Every
row chains from exactly one predecessor (`prev_hash` is unique), so two writers racing for the
same tail cannot both succeed: the loser retries on the new tail.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from commons.db.models import AuditEvent

GENESIS = "0" * 64
_LOCK = threading.Lock()


def _canonical(at: datetime, actor: str | None, token: str | None, action: str, namespace: str | None,
               target: str, details: dict[str, Any]) -> str:
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return json.dumps(
        {"at": at.astimezone(UTC).isoformat(timespec="microseconds"), "actor": actor, "token": token,
         "action": action, "namespace": namespace, "target": target, "details": details},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )


def row_hash(prev: str, event: AuditEvent) -> str:
    body = _canonical(event.at, event.actor, event.token, event.action, event.namespace, event.target,
                      event.details or {})
    return hashlib.sha256((prev + body).encode()).hexdigest()


def _tail(session: Session) -> str:
    last = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    return last or GENESIS


def record(
    sessions: sessionmaker[Session], action: str, target: str, *, actor: str | None = None,
    token: str | None = None, namespace: str | None = None, details: dict[str, Any] | None = None,
    attempts: int = 20,
) -> None:
    """Append one event in its own transaction (after the change it describes has committed)."""
    with _LOCK:
        for _ in range(attempts):
            session = sessions()
            try:
                event = AuditEvent(at=datetime.now(UTC),
                                   actor=actor, token=token, action=action, namespace=namespace,
                                   target=target[:400], details=details or {})
                event.prev_hash = _tail(session)
                event.hash = row_hash(event.prev_hash, event)
                session.add(event)
                session.commit()
                return
            except IntegrityError:
                session.rollback()  # another process appended first: chain onto the new tail
            finally:
                session.close()
        raise RuntimeError("could not append to the audit log")


@dataclass(frozen=True)
class Verification:
    ok: bool
    rows: int
    bad_row: int | None = None
    reason: str | None = None


def verify(session: Session) -> Verification:
    """Walk the chain from the first row; the first row that does not check out is named."""
    prev = GENESIS
    count = 0
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
        count += 1
        if event.prev_hash != prev:
            return Verification(False, count, event.id, "its prev_hash does not match the row before it")
        if row_hash(prev, event) != event.hash:
            return Verification(False, count, event.id, "its content does not match its hash")
        prev = event.hash
    return Verification(True, count)


def query(session: Session, namespace: str | None = None, limit: int = 1000, before: int | None = None
          ) -> list[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if namespace is not None:
        stmt = stmt.where(AuditEvent.namespace == namespace)
    if before is not None:
        stmt = stmt.where(AuditEvent.id < before)
    return list(session.scalars(stmt))


def as_json(event: AuditEvent) -> dict[str, Any]:
    at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
    return {"id": event.id, "at": at.isoformat(), "actor": event.actor, "token": event.token,
            "action": event.action, "namespace": event.namespace, "target": event.target,
            "details": event.details, "prev_hash": event.prev_hash, "hash": event.hash}


def export_jsonl(session: Session, namespace: str | None = None) -> Iterator[str]:
    stmt = select(AuditEvent).order_by(AuditEvent.id)
    if namespace is not None:
        stmt = stmt.where(AuditEvent.namespace == namespace)
    for event in session.scalars(stmt):
        yield json.dumps(as_json(event), ensure_ascii=False) + "\n"
