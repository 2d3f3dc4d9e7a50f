"""Composition root: everything a server or a CLI command needs, built from Settings once."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from commons.config import Settings
from commons.db.base import make_engine, make_sessionmaker
from commons.hub.storage import HubStorage
from commons.storage import BlobStore, open_blob_store
from commons.storage.signing import UrlSigner


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Any]
    blobs: BlobStore
    storage: HubStorage
    signer: UrlSigner

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on error."""
        session: Session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()


def _secret_key(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.home / "secret.key"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secrets.token_hex(32))
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_text().strip().encode()


def build_services(settings: Settings) -> Services:
    settings.home.mkdir(parents=True, exist_ok=True)
    for d in (settings.repos_dir, settings.tmp_dir):
        d.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    blobs = open_blob_store(settings)
    storage = HubStorage(settings.repos_dir, settings.tmp_dir, blobs, settings.lfs_threshold)
    return Services(settings, engine, make_sessionmaker(engine), blobs, storage, UrlSigner(_secret_key(settings)))
