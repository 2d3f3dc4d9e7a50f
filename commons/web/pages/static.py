"""`/static/...`: the stylesheet, icons and the vendored htmx; `pygments.css` is generated."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

from commons.web.highlight import stylesheet
from commons.web.templating import STATIC

router = APIRouter()


def _cache_control(request: Request) -> str:
    # Pages link static files with a content hash (`?v=`): those never change under one URL.
    return "public, max-age=31536000, immutable" if request.query_params.get("v") else "public, max-age=300"


@router.get("/static/{name:path}")
def static_file(request: Request, name: str) -> Response:
    headers = {"Cache-Control": _cache_control(request), "X-Content-Type-Options": "nosniff"}
    if name == "pygments.css":
        return Response(stylesheet(), media_type="text/css; charset=utf-8", headers=headers)
    root = STATIC.resolve()
    path = (STATIC / name).resolve()
    if root not in path.parents or not path.is_file() or name.startswith("."):
        raise HTTPException(404, "Not Found")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media.startswith("text/") or media == "application/javascript":
        media += "; charset=utf-8"
    return FileResponse(path, media_type=media, headers=headers)
