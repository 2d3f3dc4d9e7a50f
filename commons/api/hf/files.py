"""`/{prefix}{ns}/{name}/resolve/{rev}/{path}`: file bytes and the metadata headers clients depend on."""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from commons.accounts.permissions import can_write
from commons.api.auth import authenticate_request
from commons.api.errors import error_response
from commons.api.hf.lfs import blob_download_url
from commons.api.ranges import RangeNotSatisfiable, parse_range
from commons.api.routing import segment
from commons.errors import CommonsError, EntryNotFound, PermissionDenied
from commons.hub import scans
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need, Repos
from commons.hub.trees import file_info
from commons.services import Services

router = APIRouter()


def _join_unencoded_pr(revision: str, path: str) -> tuple[str, str]:
    """Browsers send `refs/pr/1` unencoded: join `refs` + `pr/1` back into one revision."""
    if revision == "refs":
        head, _, rest = path.partition("/")
        num, _, rest2 = rest.partition("/")
        if head in ("pr", "convert") and num:
            return f"refs/{head}/{num}", rest2
    return revision, path


# Repo files are user content on the hub's own origin: never let a browser run them as a page.
ACTIVE_TYPES = ("text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/xml",
                "text/javascript", "application/javascript")
SAFE_HEADERS = {"Content-Security-Policy": "sandbox; default-src 'none'", "X-Content-Type-Options": "nosniff"}


def _content_type(path: str) -> str:
    guess, _ = mimetypes.guess_type(path)
    if guess in ACTIVE_TYPES:
        return "text/plain; charset=utf-8"
    if path.endswith((".json", ".md", ".txt", ".py", ".yaml", ".yml", ".jsonl", ".csv", ".jinja")):
        return (guess or "text/plain") + "; charset=utf-8"
    return guess or "application/octet-stream"


def _resolve(services: Services, request: Request, ref: RepoRef, revision: str, path: str) -> Response:
    with services.session() as session:
        actor = authenticate_request(session, request)
        repos = Repos(session, services.storage)
        repo = repos.get(actor, ref, Need.FILES)
        git = repos.git(repo)
        commit = git.resolve(revision)
        headers: dict[str, Any] = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes", **SAFE_HEADERS}
        info = file_info(git, commit, path) if path else None
        if info is None or info.type != "file":
            exc = EntryNotFound(path)
            return error_response(exc, actor is None, headers)
        record = scans.verdict(session, repo, info)
        if scans.is_quarantined(record):
            assert record is not None
            writer = can_write(actor, repos.access(actor, repo))
            if not (writer and request.query_params.get("quarantine") == "accept"):
                return _quarantined(record, writer, actor is None, headers)
        headers["ETag"] = f'"{info.etag}"'
        headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}"
        if info.lfs is None:
            data = git.read_blob(info.oid)
            return _bytes_response(request, data, headers, _content_type(path))
        sha, size = info.lfs.sha256, info.lfs.size
        headers["X-Linked-Etag"] = f'"{sha}"'
        headers["X-Linked-Size"] = str(size)
        redirect = blob_download_url(request, services, sha, size, path.rsplit("/", 1)[-1], cross_origin_only=True)
        if redirect is not None:
            headers.pop("Accept-Ranges")
            return RedirectResponse(redirect, status_code=302, headers=headers)
        local = services.blobs.local_path(sha)
        if local is None:
            missing = EntryNotFound(path, f"The object of {path} is missing from storage")
            return error_response(missing, False, headers)
        # Starlette's FileResponse answers HEAD with the real Content-Length and handles Range.
        return FileResponse(local, headers=headers, media_type="application/octet-stream")


def _quarantined(record: Any, writer: bool, anonymous: bool, headers: dict[str, Any]) -> Response:
    imports = ", ".join(record.imports[:5]) or "see findings"
    first = record.findings[0]["message"] if record.findings else "critical finding"
    message = f"This file is quarantined by the malicious-file scanner ({first}; imports: {imports})."
    if writer:
        message += " As a writer of this repo you can download it with ?quarantine=accept."
    exc = PermissionDenied(message)
    return error_response(exc, anonymous, headers)


def _bytes_response(request: Request, data: bytes, headers: dict[str, Any], media_type: str) -> Response:
    size = len(data)
    try:
        span = parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if span is None:
        body, status = data, 200
    else:
        start, end = span
        body, status = data[start : end + 1], 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(len(body))
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    return Response(body, status_code=status, headers=headers, media_type=media_type)


async def _handle(
    request: Request, repo_type: RepoType, namespace: str, name: str, revision: str, path: str
) -> Response:
    services: Services = request.app.state.services
    try:
        ref = RepoRef.parse(repo_type, f"{namespace}/{name}")
        rev, file_path = _join_unencoded_pr(segment(revision), segment(path))
        return await run_in_threadpool(_resolve, services, request, ref, rev, file_path)
    except CommonsError as exc:
        return error_response(exc, getattr(request.state, "actor", None) is None)


@router.api_route("/{namespace}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
async def resolve_model(request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
    return await _handle(request, RepoType.MODEL, namespace, name, revision, path)


@router.api_route("/datasets/{namespace}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
async def resolve_dataset(request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
    return await _handle(request, RepoType.DATASET, namespace, name, revision, path)
