"""Page routes of the web UI, in matching order.

Fixed paths first (`/static`, `/login`, `/settings/...`, `/models`), then repo pages (datasets before
models, so `/datasets/x/y` is the dataset x/y), then `/{name}` for users and organisations. The app
includes this router after the API's, so none of these can shadow an API route.
"""

from __future__ import annotations

from fastapi import APIRouter

from commons.web import reporoutes
from commons.web.pages import (  # noqa: F401 - the repo page modules register themselves on import
    accounts,
    browse,
    discussions,
    evals,
    files,
    fit,
    gate,
    history,
    jobs,
    license,
    likes,
    playground,
    profiles,
    repo,
    repo_settings,
    settings,
    site_admin,
    static,
    viewer,
)

router = APIRouter(include_in_schema=False)
for part in (static.router, accounts.router, settings.router, site_admin.router, browse.router, jobs.router,
             evals.router,
             reporoutes.datasets_router,
             reporoutes.models_router, profiles.router):
    router.include_router(part)
