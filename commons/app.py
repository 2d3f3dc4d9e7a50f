"""`create_app(settings)`: the one ASGI app (HF-compatible API, git smart HTTP, later the web UI)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from commons import __version__
from commons.api.audit import AuditMiddleware
from commons.api.errors import handle_commons_error
from commons.api.git import router as git_router
from commons.api.hf import commits, discussions, files, gated, lfs, likes, refs, repos, tree, users
from commons.api.limits import RequestSizeLimit
from commons.api.native import accounts as native_accounts
from commons.api.native import audit as native_audit
from commons.api.native import evals as native_evals
from commons.api.native import fit as native_fit
from commons.api.native import jobs as native_jobs
from commons.api.native import policy as native_policy
from commons.api.ratelimit import FailureLimiter
from commons.api.routing import RawPathRouting
from commons.config import Settings
from commons.errors import CommonsError
from commons.services import Services, build_services
from commons.web import routes as web_routes


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app. `services` may be passed in (the CLI builds them once for server and worker)."""
    services = services or build_services(settings or Settings())
    app = FastAPI(title="Commons", version=__version__, docs_url="/api/commons/docs",
                  openapi_url="/api/commons/openapi.json", redoc_url=None)
    app.state.services = services
    app.state.blob_port = None  # set by `commons serve` when the blob server runs
    app.state.auth_limiter = FailureLimiter(services.settings.auth_failures_per_minute, 60)
    app.state.login_limiter = FailureLimiter(services.settings.login_failures_per_5min, 300)
    app.add_exception_handler(CommonsError, handle_commons_error)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(RequestSizeLimit, max_request=services.settings.max_request_size,
                       max_commit=services.settings.max_commit_size)
    app.add_middleware(RawPathRouting)
    # Commons' own routes first: `/api/commons/...` would otherwise match `/api/{type}/{ns}/{name}`
    # (and so would `/api/users/{user}/likes`).
    for module in (native_accounts, native_audit, native_evals, native_fit, native_jobs, native_policy,
                   likes, users, repos, tree, refs, commits, discussions, gated, lfs):
        app.include_router(module.router)
    app.include_router(git_router)
    app.include_router(files.router)
    # The web UI last: its page routes (`/{ns}/{name}`) would shadow the API's.
    app.include_router(web_routes.router)

    @app.get("/api/commons/health")
    def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    return app
