"""Read-only git smart HTTP (`git clone http://host/ns/name`), served by `git upload-pack`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
