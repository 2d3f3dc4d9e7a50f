"""`create_app(settings)`: the one ASGI app (HF-compatible API, git smart HTTP, later the web UI)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from commons import __version__
from commons.api.audit import AuditMiddleware
from commons.api.errors import handle_commons_error
from commons.api.git import router as git_router
from commons.api.hf import commits, discussions, files, gated, lfs, refs, repos, tree, users
from commons.api.native import accounts as native_accounts
from commons.api.native import audit as native_audit
from commons.api.routing import RawPathRouting
from commons.config import Settings
from commons.errors import CommonsError
from commons.services import Services, build_services


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app. `services` may be passed in (the CLI builds them once for server and worker)."""
    services = services or build_services(settings or Settings())
    app = FastAPI(title="Commons", version=__version__, docs_url="/api/commons/docs",
                  openapi_url="/api/commons/openapi.json", redoc_url=None)
    app.state.services = services
    app.state.blob_port = None  # set by `commons serve` when the blob server runs
    app.add_exception_handler(CommonsError, handle_commons_error)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(RawPathRouting)
    for module in (users, repos, tree, refs, commits, discussions, gated, lfs, native_accounts, native_audit):
        app.include_router(module.router)
    app.include_router(git_router)
    app.include_router(files.router)

    @app.get("/api/commons/health")
    def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    return app
