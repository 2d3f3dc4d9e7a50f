"""Read-only git smart HTTP (`git clone http://host/ns/name`), served by `git upload-pack`.

Two endpoints per repo, as `git http-backend` serves them: `GET {repo}/info/refs?service=git-upload-pack`
(the ref advertisement) and `POST {repo}/git-upload-pack` (negotiation and the pack). `{repo}` is
`/{ns}/{name}` or `/datasets/{ns}/{name}`, with or without `.git`. Pushing is refused: every write goes
through the HTTP API, which keeps the database, LFS bookkeeping and refs consistent.

Access is exactly that of file downloads (`Need.FILES`), and so is authentication (`authenticate_request`):
git sends HTTP Basic, with the token as the password and any username.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import zlib
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from commons.api.auth import authenticate_request
from commons.api.errors import error_response
from commons.errors import CommonsError
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need, Repos
from commons.services import Services

router = APIRouter()
log = logging.getLogger(__name__)

ADVERTISEMENT = "application/x-git-upload-pack-advertisement"
REQUEST = "application/x-git-upload-pack-request"
RESULT = "application/x-git-upload-pack-result"
CHUNK = 64 * 1024
# Decoded negotiation bodies are wants and haves (~50 bytes each); this bounds a gzip bomb, not real clients.
MAX_REQUEST_BYTES = 256 * 1024 * 1024
# Kill an upload-pack that neither reads nor writes for this long (a stalled client).
IDLE_TIMEOUT_S = 600
READ_ONLY = (
    "This hub is read-only over git: push with the HTTP API instead "
    "(huggingface_hub: `HfApi().upload_folder(...)`, or `hf upload`)."
)
# What git-http-backend sends: proxies must never cache ref advertisements or negotiation results.
_NO_CACHE = {"Cache-Control": "no-cache, max-age=0, must-revalidate", "Pragma": "no-cache",
             "Expires": "Fri, 01 Jan 1980 00:00:00 GMT"}
# `Git-Protocol` is passed to upload-pack as GIT_PROTOCOL: keep it to the `key=value:key=value` shape.
_GIT_PROTOCOL = re.compile(r"^[A-Za-z0-9._=:-]{1,256}$")


# ---------------------------------------------------------------- access
def _git_dir(services: Services, request: Request, ref: RepoRef) -> Path:
    """The repo's bare git directory, if the caller may download its files (else the resolve error)."""
    with services.session() as session:
        # Bearer or Basic (git sends the token as the Basic password), with the failed-guess rate limit.
        actor = authenticate_request(session, request)
        repo = Repos(session, services.storage).get(actor, ref, Need.FILES)
        return services.storage.git_path(repo.id)


async def _authorize(request: Request, repo_type: RepoType, namespace: str, name: str) -> Path:
    ref = RepoRef.parse(repo_type, f"{namespace}/{name.removesuffix('.git')}")
    services: Services = request.app.state.services
    return await run_in_threadpool(_git_dir, services, request, ref)


def _git_error(request: Request, exc: CommonsError) -> Response:
    """The status and X-Error headers of a resolve, as text/plain: git prints such bodies as `remote: ...`."""
    anonymous = getattr(request.state, "actor", None) is None
    base = error_response(exc, anonymous)
    headers = {k: v for k, v in base.headers.items() if k.lower() not in ("content-type", "content-length")}
    if base.status_code == 401:
        # Without a challenge, curl (inside git) never sends the credentials it holds, nor asks for any.
        headers["WWW-Authenticate"] = 'Basic realm="Commons"'
    return PlainTextResponse(exc.message + "\n", status_code=base.status_code, headers=headers)


def _refuse_push() -> Response:
    return PlainTextResponse(READ_ONLY + "\n", status_code=403, headers={"X-Error-Message": READ_ONLY})


# ---------------------------------------------------------------- upload-pack
def _command(git_dir: Path, advertise: bool) -> list[str]:
    # --strict: serve exactly this directory, never `<dir>/.git`. --timeout: reap stalled transfers.
    args = ["git", "upload-pack", "--stateless-rpc", "--strict", f"--timeout={IDLE_TIMEOUT_S}"]
    if advertise:
        args.append("--advertise-refs")
    return [*args, str(git_dir)]


def _env(request: Request) -> dict[str, str]:
    """The server's environment minus GIT_* (a stray GIT_DIR would redirect git), plus GIT_PROTOCOL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    protocol = request.headers.get("git-protocol", "")
    if _GIT_PROTOCOL.match(protocol):
        env["GIT_PROTOCOL"] = protocol
    return env


def _wants_v2(request: Request) -> bool:
    return "version=2" in request.headers.get("git-protocol", "").split(":")


def pkt_line(data: bytes) -> bytes:
    """One pkt-line: four hex digits of length (including themselves), then the data."""
    return f"{len(data) + 4:04x}".encode() + data


async def _advertise(request: Request, git_dir: Path) -> Response:
    # The advertisement is small (one line per ref), so it is buffered: a failure can still get a 500.
    proc = await asyncio.create_subprocess_exec(
        *_command(git_dir, advertise=True), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(request),
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        log.error("git upload-pack --advertise-refs %s failed (%s): %s", git_dir, proc.returncode,
                  err.decode(errors="replace").strip())
        return PlainTextResponse("git upload-pack failed\n", status_code=500)
    # As git-http-backend: protocol v2 starts with its own `version 2` line and has no service header.
    header = b"" if _wants_v2(request) else pkt_line(b"# service=git-upload-pack\n") + b"0000"
    return Response(header + out, media_type=ADVERTISEMENT, headers=_NO_CACHE)


class _Gunzip:
    """Incremental gzip decoding in bounded pieces, so a small compressed body cannot balloon in memory."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 16)

    def feed(self, data: bytes) -> Iterator[bytes]:
        out = self._z.decompress(data, CHUNK)
        while out:
            yield out
            out = self._z.decompress(self._z.unconsumed_tail, CHUNK) if self._z.unconsumed_tail else b""

    def finish(self) -> bytes:
        return self._z.flush()


def _decoded(gunzip: _Gunzip | None, data: bytes, last: bool) -> Iterator[bytes]:
    if gunzip is None:
        yield data
        return
    yield from gunzip.feed(data)
    if last:
        yield gunzip.finish()


def _kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL upload-pack and its process group: its `pack-objects` child would otherwise go on
    compressing for a client that is gone (it only notices when it next writes)."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):  # it may have exited since returncode was read
            os.killpg(proc.pid, signal.SIGKILL)


async def _refusal(feeder: asyncio.Task[str | None]) -> str | None:
    """Why the feeder refused the request body, if it did (it returns right after killing git)."""
    await asyncio.wait({feeder}, timeout=1)
    if feeder.done() and not feeder.cancelled() and feeder.exception() is None:
        return feeder.result()
    return None


class UploadPackResponse(Response):
    """Runs `git upload-pack --stateless-rpc`: request body → stdin, stdout → response, both streamed.

    Starlette's StreamingResponse cannot be used here: under ASGI < 2.4 (uvicorn speaks 2.3) it reads
    `receive()` for disconnects while streaming, which would steal the request body still being fed to
    git. So this response owns `receive`: it feeds the body, then watches for the client going away.
    """

    def __init__(self, request: Request, git_dir: Path, gzipped: bool) -> None:
        # Not Response.__init__: that would add `Content-Length: 0`; the body is chunked as it comes.
        self.status_code = 200
        self.media_type = RESULT
        self.background = None
        self.init_headers(_NO_CACHE)
        self.request = request
        self.git_dir = git_dir
        self.gzipped = gzipped

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        proc = await asyncio.create_subprocess_exec(
            *_command(self.git_dir, advertise=False), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(self.request),
            start_new_session=True,  # its own process group, so `_kill` reaches pack-objects too
        )
        assert proc.stdout is not None and proc.stderr is not None
        feeder = asyncio.create_task(self._feed(receive, proc))
        stderr = asyncio.create_task(proc.stderr.read())
        started = False
        try:
            while chunk := await proc.stdout.read(CHUNK):
                if not started:
                    await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
                    started = True
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await proc.wait()
            if not started and proc.returncode != 0:
                # Nothing was sent yet, so the failure can still get a proper status.
                rejected = await _refusal(feeder)
                status, text = (400, rejected) if rejected else (500, "git upload-pack failed")
                body = (text + "\n").encode()
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            if not started:
                await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            feeder.cancel()
            _kill(proc)
            await proc.wait()
            fed, err = await asyncio.gather(feeder, stderr, return_exceptions=True)
            if isinstance(fed, Exception):
                log.error("feeding git upload-pack %s failed", self.git_dir, exc_info=fed)
            # -9 is our own kill (client gone, bad body): only git's own failures are worth a log line.
            if proc.returncode not in (0, -9) and isinstance(err, bytes):
                log.warning("git upload-pack %s exited %s: %s", self.git_dir, proc.returncode,
                            err.decode(errors="replace").strip()[-2000:])

    async def _feed(self, receive: Receive, proc: asyncio.subprocess.Process) -> str | None:
        """Copy the (maybe gzip-encoded) request body into stdin, then kill git if the client disconnects.

        Returns why the body was refused (git was killed), or None.
        """
        assert proc.stdin is not None
        gunzip = _Gunzip() if self.gzipped else None
        total = 0
        more = True
        try:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    _kill(proc)
                    return None
                more = bool(message.get("more_body", False))
                data: bytes = message.get("body", b"")
                for piece in _decoded(gunzip, data, last=not more):  # one bounded piece in memory at a time
                    total += len(piece)
                    if total > MAX_REQUEST_BYTES:
                        _kill(proc)
                        return f"Request body larger than {MAX_REQUEST_BYTES} bytes"
                    proc.stdin.write(piece)
                    await proc.stdin.drain()
            proc.stdin.close()
        except zlib.error:
            _kill(proc)  # a corrupt gzip body: git must not act on a truncated request
            return "Request body is not valid gzip"
        except (BrokenPipeError, ConnectionResetError):
            return None  # git exited early (bad request); its exit status and stderr tell the story
        # The body is in; the only message left is the disconnect of a client that went away.
        while (await receive())["type"] != "http.disconnect":
            pass
        _kill(proc)
        return None


# ---------------------------------------------------------------- routes
async def _info_refs(request: Request, repo_type: RepoType, namespace: str, name: str) -> Response:
    service = request.query_params.get("service")
    if service == "git-receive-pack":
        return _refuse_push()
    if service != "git-upload-pack":
        # Without `service`, git falls back to the dumb protocol, which this hub does not serve.
        return PlainTextResponse("Only git smart HTTP is served: ?service=git-upload-pack\n", status_code=403)
    try:
        git_dir = await _authorize(request, repo_type, namespace, name)
    except CommonsError as exc:
        return _git_error(request, exc)
    return await _advertise(request, git_dir)


async def _upload_pack(request: Request, repo_type: RepoType, namespace: str, name: str) -> Response:
    if request.headers.get("content-type", "").split(";")[0].strip() != REQUEST:
        return PlainTextResponse(f"Expected Content-Type {REQUEST}\n", status_code=415)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        return PlainTextResponse(f"Unsupported Content-Encoding {encoding!r}\n", status_code=415)
    try:
        git_dir = await _authorize(request, repo_type, namespace, name)
    except CommonsError as exc:
        return _git_error(request, exc)
    return UploadPackResponse(request, git_dir, gzipped=encoding in ("gzip", "x-gzip"))


# `/datasets/{ns}/{name}/info/refs` has one segment more than the model form, so the two never collide
# ("datasets" is a reserved user name). None of these paths overlap `/resolve/` or `/info/lfs/`.
@router.get("/datasets/{namespace}/{name}/info/refs")
async def dataset_info_refs(request: Request, namespace: str, name: str) -> Response:
    return await _info_refs(request, RepoType.DATASET, namespace, name)


@router.post("/datasets/{namespace}/{name}/git-upload-pack")
async def dataset_upload_pack(request: Request, namespace: str, name: str) -> Response:
    return await _upload_pack(request, RepoType.DATASET, namespace, name)


@router.get("/{namespace}/{name}/info/refs")
async def model_info_refs(request: Request, namespace: str, name: str) -> Response:
    return await _info_refs(request, RepoType.MODEL, namespace, name)


@router.post("/{namespace}/{name}/git-upload-pack")
async def model_upload_pack(request: Request, namespace: str, name: str) -> Response:
    return await _upload_pack(request, RepoType.MODEL, namespace, name)


@router.post("/datasets/{namespace}/{name}/git-receive-pack")
@router.post("/{namespace}/{name}/git-receive-pack")
async def receive_pack(namespace: str, name: str) -> Response:
    """Pushes are refused before any lookup: the answer is the same whether or not the repo exists."""
    return _refuse_push()
