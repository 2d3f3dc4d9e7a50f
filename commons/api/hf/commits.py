"""validate-yaml, preupload and the NDJSON commit endpoint."""

from __future__ import annotations

import base64
import hashlib
import shutil
import uuid
from typing import Any

import pathspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from commons.accounts.actors import Actor
from commons.accounts.permissions import Action, can_write
from commons.api.audit import audit
from commons.api.auth import authenticate_request
from commons.api.deps import ActorDep, ReposDep, ServicesDep, base_url
from commons.api.hf.ndjson import parse_commit_stream
from commons.api.routing import segment
from commons.config import UploadPolicy
from commons.db.models import LfsObject
from commons.errors import CommonsError, InvalidRequest, PermissionDenied, PolicyBlocked, Unauthorized
from commons.hub import discussions, license_facts
from commons.hub.attributes import LfsRules
from commons.hub.cards import validate_card
from commons.hub.commits import AddFile, AddLfs, CommitRequest, DeleteFile, DeleteFolder, Operation, apply_commit
from commons.hub.ids import PR_REF, RepoRef, RepoType, validate_path
from commons.hub.repos import Need, Repos
from commons.hub.trees import file_info
from commons.policy import Severity as PolicySeverity
from commons.services import Services

router = APIRouter()


@router.post("/api/validate-yaml")
async def validate_yaml(request: Request) -> JSONResponse:
    """Always JSON, even on errors: the client reads `.json()` before the status."""
    try:
        body = await request.json()
        content = body.get("content", "") if isinstance(body, dict) else ""
    except ValueError:
        return JSONResponse({"errors": [{"message": "Body must be JSON"}], "warnings": []}, status_code=400)
    errors = validate_card(str(content))
    status = 400 if errors else 200
    return JSONResponse({"errors": [{"message": m} for m in errors], "warnings": []}, status_code=status)


def _is_binary(sample: bytes) -> bool:
    if b"\0" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the 512-byte sample is still text.
        return exc.start < len(sample) - 4
    return False


@router.post("/api/{repo_type}/{namespace}/{name}/preupload/{revision}")
def preupload(
    repo_type: str, namespace: str, name: str, revision: str, request: Request, actor: ActorDep,
    repos: ReposDep, services: ServicesDep, body: dict[str, Any],
) -> dict[str, Any]:
    ref = RepoRef.parse(RepoType.from_plural(repo_type), f"{namespace}/{name}")
    create_pr = request.query_params.get("create_pr") in ("1", "true")
    repo = repos.get(actor, ref, Need.DISCUSS if create_pr else Need.WRITE)
    git = repos.git(repo)
    head = git.resolve(segment(revision))
    files = body.get("files")
    if not isinstance(files, list):
        raise InvalidRequest("'files' must be a list")
    ignore = None
    if isinstance(body.get("gitIgnore"), str):
        ignore = pathspec.PathSpec.from_lines("gitignore", body["gitIgnore"].splitlines())
    attrs = file_info(git, head, ".gitattributes")
    rules = LfsRules(git.read_blob(attrs.oid).decode("utf-8", "replace") if attrs and not attrs.lfs else "")
    policy = services.settings.upload_policy
    out = []
    for f in files:
        path = validate_path(str(f.get("path", "")))
        size = int(f.get("size", 0))
        sample = base64.b64decode(f.get("sample", "") or "")
        mode = "regular"
        if policy is UploadPolicy.LFS and size > 0 and (
            size >= services.settings.lfs_threshold or rules.tracks(path) or _is_binary(sample)
        ):
            mode = "lfs"
        out.append({
            "path": path,
            "uploadMode": mode,
            "shouldIgnore": bool(ignore and ignore.match_file(path)),
            "oid": _current_oid(repos.session, git, head, path, mode),
        })
    return {"files": out, "commitOid": head}


def _current_oid(session: Any, git: Any, head: str, path: str, mode: str) -> str | None:
    """The oid the client compares with its local file to skip unchanged uploads."""
    info = file_info(git, head, path)
    if info is None or info.type != "file":
        return None
    if mode == "lfs":
        if info.lfs:
            return info.lfs.sha256
        return hashlib.sha256(git.read_blob(info.oid)).hexdigest()
    if info.lfs:
        obj = session.get(LfsObject, info.lfs.sha256)
        return obj.git_sha1 if obj is not None else None
    return str(info.oid)


@router.post("/api/{repo_type}/{namespace}/{name}/commit/{revision}")
async def commit(
    repo_type: str, namespace: str, name: str, revision: str, request: Request, services: ServicesDep,
) -> JSONResponse:
    ref = RepoRef.parse(RepoType.from_plural(repo_type), f"{namespace}/{name}")
    create_pr = request.query_params.get("create_pr") in ("1", "true")
    # Authenticate and authorise before reading a byte of the (possibly huge) body.
    actor, _ = await run_in_threadpool(_authorise, services, request, ref, create_pr)
    work = services.settings.tmp_dir / f"commit-{uuid.uuid4().hex}"
    work.mkdir(parents=True)
    counter = iter(range(1 << 30))
    try:
        header: dict[str, Any] | None = None
        ops: list[Operation] = []
        async for line in parse_commit_stream(
            request.stream(), work, lambda: work / f"f{next(counter)}", services.settings.max_file_size
        ):
            key, value = line.value["key"], line.value["value"]
            if key == "header":
                header = value
            elif key == "file":
                assert line.content is not None
                c = line.content
                ops.append(AddFile(str(value.get("path", "")), c.path, c.sha256, c.git_sha1, c.size))
            elif key == "lfsFile":
                oid = str(value.get("oid", ""))
                if value.get("algo", "sha256") != "sha256" or len(oid) != 64:
                    raise InvalidRequest("lfsFile needs a sha256 'oid'")
                size = value.get("size")
                ops.append(AddLfs(str(value.get("path", "")), oid, int(size) if size is not None else None))
            elif key == "deletedFile":
                ops.append(DeleteFile(str(value.get("path", ""))))
            elif key == "deletedFolder":
                ops.append(DeleteFolder(str(value.get("path", "")).rstrip("/")))
            else:
                raise InvalidRequest(f"Unknown NDJSON key {key!r}")
        if header is None:
            raise InvalidRequest("The commit body needs a header line")
        parent = header.get("parentCommit")
        req = CommitRequest(
            revision=segment(revision),
            operations=ops,
            summary=str(header.get("summary") or ""),
            description=str(header.get("description") or ""),
            parent_commit=str(parent) if parent else None,
            create_pr=create_pr,
        )
        result = await run_in_threadpool(_apply, services, actor, ref, req)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    audit(request, "repo.commit", f"{ref.type.value}:{ref.repo_id}", ref.namespace, ref=result.ref,
          commit=result.oid, files=len(ops))
    root = f"{base_url(request, services)}/{ref.type.url_prefix}{ref.repo_id}"
    body: dict[str, Any] = {"success": True, "commitOid": result.oid, "commitUrl": f"{root}/commit/{result.oid}"}
    headers = {}
    if result.warning:
        # huggingface_hub logs X-HF-Warning once per topic; the body carries it for other clients.
        body["warnings"] = [result.warning]
        headers["X-HF-Warning"] = "license; " + result.warning.encode("latin-1", "replace").decode("latin-1")
    if result.pr_num is not None:
        body["pullRequestUrl"] = f"{root}/discussions/{result.pr_num}"
    return JSONResponse(body, headers=headers)


def _need(req_rev: str, create_pr: bool) -> Action:
    # Opening a PR, or pushing to one's own PR ref, needs the contributor level only (as on the Hub).
    return Need.DISCUSS if create_pr or PR_REF.match(req_rev) else Need.WRITE


def _authorise(services: Services, request: Request, ref: RepoRef, create_pr: bool) -> tuple[Actor, str]:
    with services.session() as session:
        actor = authenticate_request(session, request)
        rev = segment(request.path_params.get("revision", ""))
        repo = Repos(session, services.storage).get(actor, ref, _need(rev, create_pr))
        if actor is None:
            raise Unauthorized("You must be authenticated to commit")
        return actor, repo.id


def _apply(services: Services, actor: Actor, ref: RepoRef, req: CommitRequest) -> Any:
    with services.session() as session:
        repos = Repos(session, services.storage)
        repo = repos.get(actor, ref, _need(req.revision, req.create_pr))
        pr = PR_REF.match(req.revision)
        if pr and not can_write(actor, repos.access(actor, repo)):
            discussion = discussions.get(session, repo, int(pr.group(1)))
            if discussion.author_id != actor.user_id or discussion.status in ("merged", "closed"):
                raise PermissionDenied("Only the author of an open pull request or a writer can push to it")
        warning = _license_check(session, services, actor, repo, req)
        result = apply_commit(session, services.storage, repo, repos.git(repo), actor, req)
        result.warning = warning
        return result


def _license_check(session: Any, services: Services, actor: Actor, repo: Any, req: CommitRequest) -> str | None:
    """A commit that changes the card is checked against what the repo inherits: warn, or block by policy."""
    card = next((op for op in req.operations if isinstance(op, AddFile) and op.path == "README.md"), None)
    if card is None or card.size > 1_000_000:
        return None
    text = card.source.read_text("utf-8", "replace")
    base = req.revision if not req.create_pr else req.revision.removeprefix("refs/heads/")
    try:
        decision = license_facts.decide(session, services.storage, actor, repo, base, card_override=text)
    except CommonsError:
        return None  # e.g. a brand-new branch name: nothing inherited to check yet
    conflicts = decision.conflicts_at_least(PolicySeverity.CONFLICT)
    if not conflicts:
        return None
    message = "; ".join(c.message for c in conflicts[:3])
    if license_facts.policy_for(session, repo.namespace).block_commits and not req.create_pr:
        raise PolicyBlocked(f"License conflict, blocked by {repo.namespace}'s policy: {message}")
    return f"license conflict: {message}"
