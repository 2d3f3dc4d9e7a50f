"""The real app with the jobs router mounted first (what `create_app` will do once it includes it)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from commons.api.native.jobs import router
from commons.app import create_app
from commons.services import Services


def jobs_client(services: Services) -> TestClient:
    app = create_app(services=services)
    before = len(app.router.routes)
    app.include_router(router)
    added = app.router.routes[before:]
    del app.router.routes[before:]
    # Ahead of `/api/{type}/{namespace}/{name}` and the web UI's catch-all pages.
    app.router.routes[0:0] = added
    return TestClient(app)
