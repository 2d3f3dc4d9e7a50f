"""Git LFS batch API (basic transfer + verify), and signed blob URLs.

Uploads and downloads themselves go to the blob server (zero-copy, its own port) by signed URL,
the way the Hub hands them to its CDN; when no blob server runs, the same URLs are served by
the routes at the end of this module.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from commons.api.auth import authenticate_request
from commons.api.deps import ServicesDep, base_url
from commons.db.models import LfsObject, RepoObject, ScanRecord
from commons.errors import CommonsError, InvalidRequest, Unauthorized
from commons.hub import scans
from commons.hub.commits import link_object
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need, Repos
from commons.services import Services
from commons.storage.digests import copy_with_sha256

router = APIRouter()

LFS_JSON = "application/vnd.git-lfs+json"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _blob_base(request: Request, services: Services) -> str:
    settings = services.settings
    if settings.blob_public_url:
        return settings.blob_public_url.rstrip("/")
    port = getattr(request.app.state, "blob_port", None)
    if port is None:
        return base_url(request, services)
    host = urlsplit(base_url(request, services)).hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def blob_download_url(
    request: Request, services: Services, sha256: str, size: int, filename: str | None = None,
    cross_origin_only: bool = False,
) -> str | None:
    """Signed URL that serves the object. With `cross_origin_only`, None unless a blob server runs."""
    has_blob_server = getattr(request.app.state, "blob_port", None) is not None or services.settings.blob_public_url
    if cross_origin_only and not has_blob_server:
        return None
    query = services.signer.sign("download", sha256, size, services.settings.signed_url_ttl)
    if filename:
        query += "&filename=" + quote(filename, safe="")
    return f"{_blob_base(request, services)}/blobs/{sha256}?{query}"


def _upload_url(request: Request, services: Services, sha256: str, size: int) -> str:
    query = services.signer.sign("upload", sha256, size, services.settings.signed_url_ttl)
    return f"{_blob_base(request, services)}/upload/{sha256}?{query}"


def _lfs_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, media_type=LFS_JSON)


def _batch(services: Services, request: Request, ref: RepoRef, body: dict[str, Any]) -> JSONResponse:
    operation = body.get("operation")
    objects = body.get("objects")
    if operation not in ("upload", "download") or not isinstance(objects, list):
        raise InvalidRequest("LFS batch needs 'operation' (upload|download) and 'objects'")
    with services.session() as session:
        actor = authenticate_request(session, request)
        repos = Repos(session, services.storage)
        if operation == "upload":
            if actor is None:
                raise Unauthorized("Authentication required to upload")
            ref_name = (body.get("ref") or {}).get("name", "") if isinstance(body.get("ref"), dict) else ""
            need = Need.DISCUSS if str(ref_name).startswith("refs/pr/") or not ref_name else Need.WRITE
            # An upload without a ref comes from create_pr flows; the commit itself checks write access.
            repo = repos.get(actor, ref, need)
        else:
            repo = repos.get(actor, ref, Need.FILES)
        base = f"{base_url(request, services)}/{ref.type.url_prefix}{ref.repo_id}.git/info/lfs"
        out = []
        for obj in objects:
            oid, size = str(obj.get("oid", "")), obj.get("size")
            if not _HEX64.match(oid) or not isinstance(size, int) or size < 0:
                out.append({"oid": oid, "size": size, "error": {"code": 422, "message": "Invalid oid or size"}})
                continue
            if size > services.settings.max_file_size:
                out.append({"oid": oid, "size": size, "error": {"code": 422, "message": "File too large"}})
                continue
            held = session.get(RepoObject, (repo.id, oid)) is not None and services.blobs.exists(oid)
            if operation == "upload":
                entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
                if not held:
                    # Even if another repo holds these bytes, ask for them: possession is proven by upload.
                    entry["actions"] = {
                        "upload": {"href": _upload_url(request, services, oid, size), "header": {}},
                        "verify": {"href": f"{base}/verify", "header": {}},
                    }
                out.append(entry)
            else:
                stored = session.get(LfsObject, oid)
                record = session.scalar(select(ScanRecord).where(ScanRecord.repo_id == repo.id,
                                                                 ScanRecord.blob == oid).limit(1))
                if scans.is_quarantined(record):
                    message = "Quarantined by the malicious-file scanner; writers can fetch it over HTTP"
                    out.append({"oid": oid, "size": size, "error": {"code": 403, "message": message}})
                    continue
                if not held or stored is None:
                    out.append({"oid": oid, "size": size, "error": {"code": 404, "message": "Object does not exist"}})
                    continue
                href = blob_download_url(request, services, oid, stored.size)
                out.append({
                    "oid": oid, "size": stored.size, "authenticated": True,
                    "actions": {"download": {"href": href, "header": {},
                                             "expires_in": services.settings.signed_url_ttl}},
                })
        return JSONResponse({"transfer": "basic", "objects": out, "hash_algo": "sha256"}, media_type=LFS_JSON)


def _verify(services: Services, request: Request, ref: RepoRef, body: dict[str, Any]) -> JSONResponse:
    oid, size = str(body.get("oid", "")), body.get("size")
    with services.session() as session:
        actor = authenticate_request(session, request)
        repos = Repos(session, services.storage)
        repo = repos.get(actor, ref, Need.DISCUSS)
        if not _HEX64.match(oid) or not services.blobs.exists(oid):
            return _lfs_error(404, f"Object {oid} was not uploaded")
        stored = services.blobs.stat(oid).size
        if size is not None and size != stored:
            return _lfs_error(422, f"Object {oid} has size {stored}, not {size}")
        link_object(session, repo, oid, stored)
    return JSONResponse({"oid": oid, "size": stored}, media_type=LFS_JSON)


async def _lfs_endpoint(request: Request, repo_type: RepoType, namespace: str, name: str, fn: Any) -> Response:
    from commons.api.errors import error_response

    services: Services = request.app.state.services
    try:
        if not name.endswith(".git"):
            raise InvalidRequest("LFS URLs end in .git/info/lfs")
        ref = RepoRef.parse(repo_type, f"{namespace}/{name.removesuffix('.git')}")
        body = await request.json()
        if not isinstance(body, dict):
            raise InvalidRequest("Body must be a JSON object")
        response: Response = await run_in_threadpool(fn, services, request, ref, body)
        return response
    except ValueError:
        return _lfs_error(400, "Body must be JSON")
    except CommonsError as exc:
        return error_response(exc, getattr(request.state, "actor", None) is None)


for _prefix, _type in (("/datasets", RepoType.DATASET), ("", RepoType.MODEL)):

    def _make(t: RepoType, fn: Any):  # type: ignore[no-untyped-def]
        async def endpoint(request: Request, namespace: str, name: str) -> Response:
            return await _lfs_endpoint(request, t, namespace, name, fn)

        return endpoint

    router.add_api_route(f"{_prefix}/{{namespace}}/{{name}}/info/lfs/objects/batch", _make(_type, _batch),
                         methods=["POST"])
    router.add_api_route(f"{_prefix}/{{namespace}}/{{name}}/info/lfs/verify", _make(_type, _verify),
                         methods=["POST"])


# ---------------------------------------------------------------- fallback blob routes (no blob server)
@router.api_route("/blobs/{sha256}", methods=["GET", "HEAD"])
def serve_blob(sha256: str, request: Request, services: ServicesDep) -> Response:
    q = request.query_params
    if not services.signer.verify("download", sha256, q.get("size"), q.get("exp"), q.get("sig")):
        return JSONResponse({"error": "Invalid or expired signature"}, status_code=403)
    path = services.blobs.local_path(sha256)
    if path is None:
        return JSONResponse({"error": "Not found"}, status_code=404)
    return FileResponse(path, headers={"ETag": f'"{sha256}"', "Accept-Ranges": "bytes"},
                        media_type="application/octet-stream")


@router.put("/upload/{sha256}")
async def receive_blob(sha256: str, request: Request, services: ServicesDep) -> Response:
    q = request.query_params
    if not services.signer.verify("upload", sha256, q.get("size"), q.get("exp"), q.get("sig")):
        return JSONResponse({"error": "Invalid or expired signature"}, status_code=403)
    expected = int(q["size"])
    staging = services.blobs.staging_path()
    try:
        import hashlib

        sha = hashlib.sha256()
        size = 0
        with staging.open("wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > expected:
                    return JSONResponse({"error": "Body larger than declared size"}, status_code=400)
                sha.update(chunk)
                fh.write(chunk)
        if size != expected or sha.hexdigest() != sha256:
            return JSONResponse({"error": "Content does not match oid/size"}, status_code=400)
        await run_in_threadpool(services.blobs.adopt, staging, sha256, size)
        await run_in_threadpool(record_object, services, sha256, size)
        return JSONResponse({"oid": sha256, "size": size})
    finally:
        staging.unlink(missing_ok=True)


def record_object(services: Services, sha256: str, size: int) -> None:
    with services.session() as session:
        if session.get(LfsObject, sha256) is None:
            session.add(LfsObject(sha256=sha256, size=size))


_ = copy_with_sha256
