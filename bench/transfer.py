"""Transfer benchmark: Commons against native anchors, interleaved in one run.

    .venv/bin/python bench/transfer.py [--size-mib 1024] [--reps 3] [--warmup 1] [--tmpdir DIR] [--no-breakdown]

Builds a random file and starts, on loopback ports, Debian's nginx (sendfile on), a full Commons
server (`python -m commons serve`, upload policy `lfs`, blob server on, in a temporary
COMMONS_HOME with a user and a write token provisioned in-process) and, for the breakdown, a bare
BlobServer in this process. Then it measures, rep by rep and back to back so machine noise hits
both sides alike (docs/perf-anchors.md, H2/H5/H7):

End to end, through the real server (the acceptance rows):
1. `curl -L` on `/{ns}/{name}/resolve/main/big.bin` (a 302 to the blob server's signed URL) vs
   `curl` on the same path served by nginx (goal: ratio >= 0.9);
2. `hf_hub_download` in a child process, fresh cache each rep, HF_ENDPOINT = Commons vs
   HF_ENDPOINT = nginx, whose /resolve/ location adds X-Repo-Commit and X-Linked-Size (goal >= 0.9);
3. upload vs `hashlib.file_digest` of the same file (goal >= 0.8): `HfApi.upload_file` in a child
   process (LFS batch path: preupload, batch, PUT to the signed URL with server-side sha256
   verification and fsync, verify, commit), with its client-hash and PUT phases as sub-rows, and
   `curl -T` to a fresh signed URL from the real LFS batch endpoint.

Breakdown, the blob server alone (`--no-breakdown` skips it):
4. curl and httpx (`iter_bytes(10 MB)`, huggingface_hub's pattern) downloads, nginx vs BlobServer;
5. `curl -T` / `socket.sendfile` PUTs into the BlobServer, and `curl -T` into nginx's DAV module
   (no hash, no fsync: what the client alone can push).

Each row is a `Trial`: a label and a function returning MB/s; rows compared with each other form
a `Group`. Both blob stores hold the object as a hard link to nginx's file, so every download
reads the same cached pages (an uploaded copy is written with O_DIRECT, so it would be read from
disk: it is swapped for the link before each download). See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

MB = 1e6
NGINX = "/usr/sbin/nginx"
USER = "bench"
"""The Commons user (and namespace) the end-to-end rows use."""
REPO = f"{USER}/big"
NGINX_REPO = "nginx-ns/name"
"""The repo id nginx pretends to serve: `/nginx-ns/name/resolve/main/big.bin`."""
FILENAME = "big.bin"
NGINX_COMMIT = hashlib.sha1(b"commons transfer bench").hexdigest()
"""The X-Repo-Commit nginx sends (any 40 hex digits do)."""

P = ParamSpec("P")
R = TypeVar("R")


# ----------------------------------------------------------------------------- measurements


def _child(args: list[str], env: dict[str, str] | None = None) -> str:
    """stdout of a child process; its stderr in the error when it fails."""
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])}... exited {proc.returncode}: {proc.stderr[-3000:]}")
    return proc.stdout


def _curl(args: list[str]) -> list[str]:
    out = subprocess.run(["curl", "-s", "-S", *args], check=True, capture_output=True, text=True).stdout
    return out.split()


def measure_curl_download(url: str, expect_bytes: int | None = None) -> float:
    """MB/s of `curl -o /dev/null` (curl's own speed_download, as in perf-anchors H2)."""
    speed, size, code = _curl(["-o", "/dev/null", "-w", "%{speed_download} %{size_download} %{http_code}", url])
    if code != "200" or (expect_bytes is not None and int(size) != expect_bytes):
        raise RuntimeError(f"curl GET {url}: HTTP {code}, {size} bytes")
    return float(speed) / MB


def measure_curl_resolve(url: str, expect_bytes: int, redirects: int | None = None) -> float:
    """MB/s of `curl -L -o /dev/null`, over curl's whole operation (%{time_total}: the redirect,
    if any, included). `redirects`: how many the request must have followed."""
    total, size, code, hops = _curl(["-L", "-o", "/dev/null", "-w",
                                     "%{time_total} %{size_download} %{http_code} %{num_redirects}", url])
    if code != "200" or int(size) != expect_bytes or (redirects is not None and int(hops) != redirects):
        raise RuntimeError(f"curl -L GET {url}: HTTP {code}, {size} bytes, {hops} redirects")
    return expect_bytes / float(total) / MB


def measure_httpx_download(url: str, expect_bytes: int | None = None) -> float:
    """MB/s of an httpx streaming GET with 10 MB chunks (huggingface_hub's pattern), in a child
    process so the client does not share a GIL with a server running in this one."""
    rate, size = _child([sys.executable, __file__, "_httpx_get", url]).split()
    if expect_bytes is not None and int(size) != expect_bytes:
        raise RuntimeError(f"httpx GET {url}: {size} bytes")
    return float(rate)


def measure_curl_upload(url: str, path: Path) -> float:
    """MB/s of `curl -T path url` (a PUT), timed until the server's answer: for the blob server
    that includes sha256 verification and the fsync of the stored object."""
    size = path.stat().st_size
    start = time.perf_counter()
    code, sent = _curl(["-o", "/dev/null", "-w", "%{http_code} %{size_upload}", "-T", str(path), url])
    elapsed = time.perf_counter() - start
    if code not in ("200", "201", "204") or int(sent) != size:
        raise RuntimeError(f"curl PUT {url}: HTTP {code}, {sent} bytes sent")
    return size / elapsed / MB


def measure_sendfile_upload(url: str, path: Path) -> float:
    """MB/s of a minimal HTTP PUT whose body leaves by `socket.sendfile` (a client that costs ~no
    CPU), in a child process: the server's side of an upload without curl's 64 KiB writes."""
    return float(_child([sys.executable, __file__, "_sendfile_put", url, str(path)]))


def measure_sha256(path: Path) -> float:
    """MB/s of `hashlib.file_digest(f, "sha256")` (perf-anchors H7)."""
    start = time.perf_counter()
    with path.open("rb") as fh:
        hashlib.file_digest(fh, "sha256")
    return path.stat().st_size / (time.perf_counter() - start) / MB


def hf_env(endpoint: str, hf_home: Path) -> dict[str, str]:
    """Environment of a huggingface_hub child: HF_ENDPOINT set, the LFS path (no Xet), no
    progress bars, no telemetry, and an HF_HOME of its own (no stored token or cache)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update({"HF_ENDPOINT": endpoint, "HF_HOME": str(hf_home), "HF_HUB_DISABLE_XET": "1",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_TELEMETRY": "1"})
    return env


def measure_hf_download(endpoint: str, repo_id: str, filename: str, expect_bytes: int, hf_home: Path) -> float:
    """MB/s of `hf_hub_download(repo_id, filename)` into a fresh cache, in a child process with
    HF_ENDPOINT=endpoint; only the call is timed (metadata HEAD, GET, write, move into place)."""
    seconds, size = _child([sys.executable, __file__, "_hf_download", repo_id, filename],
                           hf_env(endpoint, hf_home)).split()
    if int(size) != expect_bytes:
        raise RuntimeError(f"hf_hub_download from {endpoint}: {size} bytes")
    return expect_bytes / float(seconds) / MB


@dataclass
class UploadPhases:
    """Seconds of the last `HfApi.upload_file` run, whole and by phase."""

    total: float = 0.0
    client_hash: float = 0.0
    put: float = 0.0


def measure_hf_upload(endpoint: str, token: str, repo_id: str, path: Path, hf_home: Path,
                      phases: UploadPhases) -> float:
    """MB/s of `HfApi(endpoint, token).upload_file(path, path_in_repo=FILENAME)` in a child process
    (HF_HUB_DISABLE_XET=1: the LFS batch path). `phases` receives the split: huggingface_hub's own
    sha256 of the file (the batch request needs the oid) and the PUT to the signed URL."""
    out = _child([sys.executable, __file__, "_hf_upload", repo_id, str(path)],
                 {**hf_env(endpoint, hf_home), "HF_TOKEN": token})
    phases.total, phases.client_hash, phases.put = (float(x) for x in out.split())
    return path.stat().st_size / phases.total / MB


# ----------------------------------------------------------------------------- child processes


def _httpx_get_child(url: str) -> None:
    import httpx

    n = 0
    with httpx.Client(timeout=120) as client, open(os.devnull, "wb") as sink:
        start = time.perf_counter()
        with client.stream("GET", url) as r:
            r.raise_for_status()
            for chunk in r.iter_bytes(chunk_size=10 * 1024 * 1024):
                sink.write(chunk)
                n += len(chunk)
        rate = n / (time.perf_counter() - start) / MB
    print(f"{rate:.3f} {n}")


def _sendfile_put_child(url: str, path: str) -> None:
    parts = urlsplit(url)
    size = os.path.getsize(path)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80)) as sock, \
            open(path, "rb") as fh:
        start = time.perf_counter()
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path
        sock.sendall(f"PUT {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {size}\r\n"
                     "Connection: close\r\n\r\n".encode())
        sock.sendfile(fh)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        elapsed = time.perf_counter() - start
    status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/") else b"?"
    if status not in (b"200", b"201", b"204"):
        raise SystemExit(f"sendfile PUT {url}: {answer[:200]!r}")
    print(f"{size / elapsed / MB:.3f}")


def _hf_download_child(repo_id: str, filename: str) -> None:
    from huggingface_hub import hf_hub_download

    cache = tempfile.mkdtemp(prefix="cache-", dir=os.environ["HF_HOME"])
    try:
        start = time.perf_counter()
        path = hf_hub_download(repo_id, filename, revision="main", cache_dir=cache)
        elapsed = time.perf_counter() - start
        print(f"{elapsed:.6f} {os.path.getsize(path)}")
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _timed(fn: Callable[P, R], seconds: list[float]) -> Callable[P, R]:
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    return wrapper


def _hf_upload_child(repo_id: str, path: str) -> None:
    import huggingface_hub.lfs as hf_lfs
    from huggingface_hub import HfApi

    # Phase timers: UploadInfo.sha256 calls lfs.sha_fileobj, lfs_upload calls _upload_single_part
    # (the basic transfer: one PUT), both looked up in the module at call time.
    hashing: list[float] = []
    puts: list[float] = []
    hf_lfs.sha_fileobj = _timed(hf_lfs.sha_fileobj, hashing)  # type: ignore[attr-defined]
    hf_lfs._upload_single_part = _timed(hf_lfs._upload_single_part, puts)
    api = HfApi(endpoint=os.environ["HF_ENDPOINT"], token=os.environ["HF_TOKEN"])
    start = time.perf_counter()
    api.upload_file(path_or_fileobj=path, path_in_repo=FILENAME, repo_id=repo_id, commit_message="bench upload")
    total = time.perf_counter() - start
    if len(puts) != 1 or not hashing:
        raise SystemExit(f"expected one client hash and one single-part PUT, saw {len(hashing)} and {len(puts)} "
                         "(object already held? multipart? a huggingface_hub that moved these functions?)")
    print(f"{total:.6f} {sum(hashing):.6f} {puts[0]:.6f}")


# ----------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, alive: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if not alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)


@contextmanager
def nginx(root: Path, www: Path, port: int, extra: str = "") -> Iterator[None]:
    """Debian's nginx on 127.0.0.1:port serving `www` (sendfile, like perf-anchors/nginx.conf),
    with DAV PUT under /put/ as a native upload reference; `extra` goes into the server block."""
    tmp = root / "nginx-tmp"
    tmp.mkdir(exist_ok=True)
    (www / "put").mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read our 0700 temp dir
    temps = " ".join(f"{kind}_temp_path {tmp};" for kind in ("proxy", "fastcgi", "uwsgi", "scgi"))
    conf = root / "nginx.conf"
    conf.write_text(f"""{user}worker_processes 1;
pid {root}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log off;
  default_type application/octet-stream;
  sendfile on; tcp_nopush on;
  client_body_temp_path {tmp}; {temps}
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port};
    root {www};
    location /put/ {{ dav_methods PUT; }}
{extra}
  }}
}}
""")
    log = root / "nginx-error.log"
    proc = subprocess.Popen([NGINX, "-p", str(root), "-e", str(log), "-c", str(conf), "-g", "daemon off;"])

    def pids() -> list[int]:
        return [proc.pid, *_children(proc.pid)]

    SERVER_PIDS.append(pids)
    try:
        try:
            wait_for_port(port, lambda: proc.poll() is None, "nginx")
        except RuntimeError:
            raise RuntimeError(f"nginx did not start: {log.read_text() if log.exists() else ''}") from None
        yield
    finally:
        SERVER_PIDS.remove(pids)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def nginx_resolve_location(repo_id: str, path: Path, size: int) -> str:
    """An nginx location that serves `path` as `/{repo_id}/resolve/main/{name}` with the headers
    `hf_hub_download` needs: X-Repo-Commit (else it refuses the file), an ETag (nginx's own,
    `"<mtime>-<size>"` in hex) and X-Linked-Size (else it takes Content-Length)."""
    return f"""    location = /{repo_id}/resolve/main/{path.name} {{
      alias {path};
      add_header X-Repo-Commit {NGINX_COMMIT} always;
      add_header X-Linked-Size {size};
    }}"""


@dataclass
class Commons:
    """`python -m commons serve` in a child process of its own session (tests/hubserver.py's recipe):
    policy `lfs`, blob server on, one user with a write token, SQLite under `home`."""

    home: Path
    port: int = field(default_factory=free_port)
    blob_port: int = field(default_factory=free_port)
    token: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def blob_path(self, oid: str) -> Path:
        """Where the local blob store keeps an object (commons/storage/local.py)."""
        return self.home / "blobs" / "sha256" / oid[:2] / oid[2:4] / oid

    def provision(self, user: str) -> None:
        """Schema, user and write token, in this process, before the server starts."""
        from commons.accounts.tokens import issue_token
        from commons.accounts.users import create_user
        from commons.config import Settings
        from commons.db import migrate
        from commons.services import build_services

        settings = Settings(home=self.home)
        self.home.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(settings.sqlalchemy_url)
        services = build_services(settings)
        try:
            with services.session() as session:
                self.token = issue_token(session, create_user(session, user), "bench", "write")
        finally:
            services.close()

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
        env.update({"COMMONS_HOME": str(self.home), "COMMONS_PORT": str(self.port),
                    "COMMONS_BLOB_PORT": str(self.blob_port), "COMMONS_UPLOAD_POLICY": "lfs",
                    "COMMONS_LOG_LEVEL": "warning"})
        with (self.home / "server.log").open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "commons", "serve"], env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        SERVER_PIDS.append(self.pids)
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Commons exited: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/api/commons/health", timeout=1).status_code == 200:
                    wait_for_port(self.blob_port, lambda: self.proc is not None and self.proc.poll() is None,
                                  "the blob server")
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Commons did not start in 60 s: {self.log_tail()}")

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def log_tail(self) -> str:
        log = self.home / "server.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def stop(self) -> None:
        if self.pids in SERVER_PIDS:
            SERVER_PIDS.remove(self.pids)
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def lfs_upload_href(self, repo_id: str, oid: str, size: int) -> str:
        """A fresh signed upload URL from the real LFS batch endpoint (the store must not hold the
        object: the batch answer only carries actions for objects the server lacks)."""
        import httpx

        r = httpx.post(f"{self.url}/{repo_id}.git/info/lfs/objects/batch",
                       headers={"Authorization": f"Bearer {self.token}", "Accept": "application/vnd.git-lfs+json",
                                "Content-Type": "application/vnd.git-lfs+json"},
                       content=json.dumps({"operation": "upload", "transfers": ["basic"],
                                           "ref": {"name": "refs/heads/main"},
                                           "objects": [{"oid": oid, "size": size}]}), timeout=30)
        r.raise_for_status()
        obj = r.json()["objects"][0]
        try:
            return str(obj["actions"]["upload"]["href"])
        except KeyError:
            raise RuntimeError(f"LFS batch offered no upload for {oid}: {obj}") from None


@contextmanager
def commons_server(home: Path, user: str) -> Iterator[Commons]:
    server = Commons(home)
    server.provision(user)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def link_into(target: Path, source: Path) -> None:
    """Make `target` a hard link to `source` (atomically; a no-op when it already is one)."""
    if target.exists() and target.samefile(source):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.bench-link")
    staging.unlink(missing_ok=True)
    os.link(source, staging)
    os.replace(staging, target)


# ----------------------------------------------------------------------------- table


SERVER_PIDS: list[Callable[[], list[int]]] = []
"""Functions naming the processes of the servers running outside this one (nginx master and
workers, the Commons server), whose CPU time goes into the 'server' column."""


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a live process, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cpu() -> tuple[float, float, float]:
    """CPU seconds (user + system) of this process, of its reaped children, and of the servers."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    servers = sum(_proc_cpu(pid) for pids in SERVER_PIDS for pid in pids())
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime, servers


@dataclass
class Trial:
    """One row: `measure()` returns MB/s; `before()` runs untimed before each measurement.

    Besides the rate, a run records CPU seconds per GiB moved: in this process (the breakdown's
    blob server runs here; so does the hashing anchor), in the child processes it waited for (curl,
    the httpx and huggingface_hub clients) and in the servers of `SERVER_PIDS` (nginx, the Commons
    server). Those stay put when other work on the machine steals cores, which makes the rates
    noisy.

    A `derived` row measures nothing itself: it reads a figure the row before it recorded (a
    phase of the same run), so it has no CPU figures.
    """

    label: str
    measure: Callable[[], float]
    before: Callable[[], None] = lambda: None
    derived: bool = False
    rates: list[float] = field(default_factory=list)
    cpu_self: list[float] = field(default_factory=list)
    cpu_children: list[float] = field(default_factory=list)
    cpu_servers: list[float] = field(default_factory=list)

    def run(self, size: int, record: bool) -> float:
        self.before()
        before = _cpu()
        rate = self.measure()
        after = _cpu()
        if record:
            self.rates.append(rate)
            per_gib = [(b - a) * (1 << 30) / size for a, b in zip(before, after, strict=True)]
            self.cpu_self.append(per_gib[0])
            self.cpu_children.append(per_gib[1])
            self.cpu_servers.append(per_gib[2])
        return rate


@dataclass
class Group:
    """A reference row and the rows compared with it, measured back to back in every rep.
    `goals`: the least ratio to the reference wanted of some rows, by label; `notes`: a word on
    a row's goal, printed after the verdict."""

    title: str
    reference: Trial
    others: list[Trial]
    goals: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    acceptance: bool = False
    """Whether the goals here are the acceptance criterion (end to end) or a breakdown's."""

    def trials(self) -> list[Trial]:
        return [self.reference, *self.others]

    def ratio(self, trial: Trial) -> float:
        # Median of per-rep ratios: each pair ran back to back, so shared noise cancels.
        return statistics.median(a / b for a, b in zip(trial.rates, self.reference.rates, strict=True))


def run_groups(groups: list[Group], size: int, reps: int, warmup: int) -> None:
    for rep in range(warmup + reps):
        for group in groups:
            for trial in group.trials():
                rate = trial.run(size, record=rep >= warmup)
                print(f"  {'warm-up' if rep < warmup else f'rep {rep - warmup + 1}'}: "
                      f"{trial.label.strip()}: {rate:,.0f} MB/s", file=sys.stderr, flush=True)


def _verdict(value: float, goal: float) -> str:
    return f">= {goal:.2f} {'met' if value >= goal else 'MISSED'}"


def print_table(groups: list[Group]) -> None:
    width = max(len(t.label) for g in groups for t in g.trials()) + 2
    print(f"\n{'row':<{width}} {'median MB/s':>12} {'min-max':>13} {'ratio':>7} {'CPU-s/GiB':>23}  goal")
    print(f"{'':<{width + 35}} {'here':>7} {'child':>7} {'server':>7}")
    for group in groups:
        print(f"{group.title}")
        for trial in group.trials():
            r = trial.rates
            spread = f"{min(r):,.0f}-{max(r):,.0f}"
            if trial is group.reference:
                ratio, goal = "1", "(reference)"
            else:
                value = group.ratio(trial)
                ratio = f"{value:.2f}"
                goal = _verdict(value, group.goals[trial.label]) if trial.label in group.goals else ""
                if trial.label in group.notes:
                    goal += f" [{group.notes[trial.label]}]"
            cpu = " ".join(f"{'-' if trial.derived else f'{statistics.median(c):.2f}':>7}"
                           for c in (trial.cpu_self, trial.cpu_children, trial.cpu_servers))
            print(f"  {trial.label:<{width - 2}} {statistics.median(r):>12,.0f} {spread:>13} {ratio:>7} {cpu}  {goal}")


def print_goals(groups: list[Group]) -> None:
    for acceptance in (True, False):
        rows = [(g, t) for g in groups if g.acceptance == acceptance for t in g.others if t.label in g.goals]
        if not rows:
            continue
        print("\nacceptance (end to end, through the real server):" if acceptance else
              "\nbreakdown goals (the blob server alone):")
        for group, trial in rows:
            value = group.ratio(trial)
            note = f" ({group.notes[trial.label]})" if trial.label in group.notes else ""
            print(f"  {trial.label.strip()} / {group.reference.label.strip()}: {value:.2f}  "
                  f"{_verdict(value, group.goals[trial.label])}{note}")


# ----------------------------------------------------------------------------- main


def make_random_file(path: Path, size: int) -> None:
    """Random bytes, except the first: 0xff, which is no pickle opcode. Commons scans every `.bin`
    file as a pickle, and about 1 % of random files start with an opcode its scanner rates
    critical (EXT1/EXT2/EXT4 at byte 0): the file is then quarantined and /resolve/ answers 403."""
    chunk = 16 << 20
    with path.open("wb") as fh:
        left = size
        while left:
            data = os.urandom(min(chunk, left))
            fh.write(b"\xff" + data[1:] if left == size else data)
            left -= len(data)


def end_to_end_groups(commons: Commons, nginx_base: str, big: Path, oid: str, root: Path) -> list[Group]:
    """The rows through the real Commons server; `big` is nginx's copy of the object `oid`."""
    from huggingface_hub import HfApi

    size = big.stat().st_size
    api = HfApi(endpoint=commons.url, token=commons.token)
    stored = commons.blob_path(oid)
    hf_home = root / "hf-home"
    hf_home.mkdir(exist_ok=True)

    def restore() -> None:
        link_into(stored, big)  # the same inode as nginx's file: the same cached pages

    def drop() -> None:
        stored.unlink(missing_ok=True)  # so the batch asks for the bytes and the PUT really writes

    def before_hf_upload() -> None:
        # Without this commit, upload_file would see big.bin unchanged and skip it. The repo's
        # repo_objects link stays; the batch still asks for the object because the store lacks it.
        api.delete_file(FILENAME, repo_id=REPO, commit_message="bench: drop before re-upload")
        drop()

    href: list[str] = []

    def before_curl_upload() -> None:
        drop()
        href[:] = [commons.lfs_upload_href(REPO, oid, size)]

    phases = UploadPhases()
    resolve = f"{commons.url}/{REPO}/resolve/main/{FILENAME}"
    nginx_resolve = f"{nginx_base}/{NGINX_REPO}/resolve/main/{FILENAME}"
    upload_label = "hf upload_file (LFS, sha256 verified) -> Commons"
    put_label = "  of which: PUT -> blob server (sha256+fsync)"
    curl_upload_label = "curl -T -> Commons (URL from LFS batch; sha256+fsync)"
    return [
        Group("end to end: download, curl (-L) through /resolve/",
              Trial("curl <- nginx /resolve/ (sendfile)", lambda: measure_curl_resolve(nginx_resolve, size, 0)),
              [Trial("curl -L <- Commons /resolve/ (302 -> blob server)",
                     lambda: measure_curl_resolve(resolve, size, 1), restore)],
              goals={"curl -L <- Commons /resolve/ (302 -> blob server)": 0.9}, acceptance=True),
        Group("end to end: download, hf_hub_download (child process, fresh cache)",
              Trial("hf_hub_download <- nginx",
                    lambda: measure_hf_download(nginx_base, NGINX_REPO, FILENAME, size, hf_home)),
              [Trial("hf_hub_download <- Commons",
                     lambda: measure_hf_download(commons.url, REPO, FILENAME, size, hf_home), restore)],
              goals={"hf_hub_download <- Commons": 0.9}, acceptance=True),
        Group("end to end: upload (ratios against hashlib.file_digest)",
              Trial("hashlib.file_digest sha256 (anchor)", lambda: measure_sha256(big)),
              [Trial(upload_label,
                     lambda: measure_hf_upload(commons.url, commons.token, REPO, big, hf_home, phases),
                     before_hf_upload),
               Trial("  of which: client sha256 (huggingface_hub)", lambda: size / phases.client_hash / MB,
                     derived=True),
               Trial(put_label, lambda: size / phases.put / MB, derived=True),
               Trial(curl_upload_label, lambda: measure_curl_upload(href[0], big),
                     before_curl_upload)],
              goals={upload_label: 0.8, put_label: 0.8, curl_upload_label: 0.8},
              # The LFS client must know the oid before the batch request: it hashes the whole file,
              # then sends it. With both passes at hashlib's speed, the whole call gets 0.5x at best.
              notes={upload_label: "ceiling 0.5: the client hashes, then sends"}, acceptance=True),
    ]


def breakdown_groups(stack: ExitStack, root: Path, www: Path, big: Path, oid: str, nginx_port: int) -> list[Group]:
    """The blob server alone, in this process, against nginx (started by the caller on nginx_port)."""
    from commons.blobserver import BlobServer, blob_url, upload_url
    from commons.storage.local import LocalBlobStore
    from commons.storage.signing import UrlSigner

    size = big.stat().st_size
    store = LocalBlobStore(root / "blobs")
    signer = UrlSigner(os.urandom(32))
    stored = root / "blobs" / "sha256" / oid[:2] / oid[2:4] / oid

    def restore() -> None:
        link_into(stored, big)  # the store's copy is a hard link to nginx's file

    def drop() -> None:
        store.delete(oid)  # every upload rep really writes, fsyncs and adopts
        (www / "put" / big.name).unlink(missing_ok=True)

    restore()
    server = BlobServer(store, signer, "127.0.0.1", 0, max_size=size)
    server.start()
    stack.callback(server.stop)
    base = f"http://127.0.0.1:{server.port}"
    nginx_url = f"http://127.0.0.1:{nginx_port}/{big.name}"
    ttl = 24 * 3600
    get_url = blob_url(base, signer, oid, size, ttl)
    put_url = upload_url(base, signer, oid, size, ttl)
    return [
        Group("breakdown: download, curl -o /dev/null",
              Trial("curl <- nginx sendfile", lambda: measure_curl_download(nginx_url, size)),
              [Trial("curl <- blob server", lambda: measure_curl_download(get_url, size), restore)],
              goals={"curl <- blob server": 0.9}),
        Group("breakdown: download, httpx iter_bytes(10 MB) (huggingface_hub style)",
              Trial("httpx <- nginx sendfile", lambda: measure_httpx_download(nginx_url, size)),
              [Trial("httpx <- blob server", lambda: measure_httpx_download(get_url, size), restore)]),
        Group("breakdown: upload (ratios against hashlib.file_digest)",
              Trial("hashlib.file_digest sha256 (anchor)", lambda: measure_sha256(big)),
              [Trial("curl -T -> blob server (sha256 + fsync)", lambda: measure_curl_upload(put_url, big), drop),
               Trial("context: curl -T -> nginx DAV PUT (no hash/fsync)",
                     lambda: measure_curl_upload(f"http://127.0.0.1:{nginx_port}/put/{big.name}", big), drop),
               Trial("context: sendfile PUT -> blob server", lambda: measure_sendfile_upload(put_url, big), drop)],
              goals={"curl -T -> blob server (sha256 + fsync)": 0.8}),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded reps first (page cache, allocator)")
    parser.add_argument("--tmpdir", type=Path, default=None, help="where the test files go (default: $TMPDIR)")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the blob-server-alone rows")
    args = parser.parse_args()
    if args.size_mib < 16:
        parser.error("--size-mib must be at least 16 (the file must be an LFS file, >= 10 MiB)")
    if args.reps < 1:
        parser.error("--reps must be at least 1")

    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C, so the servers stop and the temp dir goes.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    size = args.size_mib << 20
    root = Path(tempfile.mkdtemp(prefix="commons-bench-", dir=args.tmpdir))
    commons: Commons | None = None
    try:
        with ExitStack() as stack:
            www = root / "www"
            www.mkdir()
            big = www / FILENAME
            print(f"writing {args.size_mib} MiB of random bytes to {big}", file=sys.stderr)
            make_random_file(big, size)
            with big.open("rb") as fh:
                oid = hashlib.file_digest(fh, "sha256").hexdigest()

            nginx_port = free_port()
            stack.enter_context(nginx(root, www, nginx_port, nginx_resolve_location(NGINX_REPO, big, size)))
            nginx_base = f"http://127.0.0.1:{nginx_port}"

            print("starting Commons (policy lfs, blob server on)", file=sys.stderr)
            commons = stack.enter_context(commons_server(root / "home", USER))
            from huggingface_hub import HfApi

            HfApi(endpoint=commons.url, token=commons.token).create_repo(REPO)
            # The first upload (untimed) puts big.bin in the repo for the download rows.
            start = time.perf_counter()
            measure_hf_upload(commons.url, commons.token, REPO, big, root / "hf-home", UploadPhases())
            print(f"first upload_file: {time.perf_counter() - start:.1f} s", file=sys.stderr)
            if not commons.blob_path(oid).is_file():
                raise RuntimeError(f"the upload did not leave {commons.blob_path(oid)}")
            import httpx

            head = httpx.head(f"{commons.url}/{REPO}/resolve/main/{FILENAME}", timeout=30)
            if head.status_code != 302:
                raise RuntimeError(f"/resolve/ of the upload answers {head.status_code}, not a 302: "
                                   f"{head.headers.get('x-error-message', '')}")

            groups = end_to_end_groups(commons, nginx_base, big, oid, root)
            if not args.no_breakdown:
                groups += breakdown_groups(stack, root, www, big, oid, nginx_port)
            load_before = os.getloadavg()[0]
            run_groups(groups, size, args.reps, args.warmup)
            load_after = os.getloadavg()[0]
        print(f"\n{args.size_mib} MiB file, {args.reps} reps (+{args.warmup} warm-up), {os.cpu_count()} CPUs, "
              f"1-min load average {load_before:.1f} before / {load_after:.1f} after")
        print_table(groups)
        print("\nratio: median over reps of row / reference, each pair measured back to back. CPU-s/GiB:"
              "\n'here' is this process (the breakdown's blob server; the hashing anchor), 'child' the client"
              "\nprocesses (curl, httpx, huggingface_hub), 'server' nginx (master + worker) and the Commons"
              "\nserver process (app + blob server threads). Sub-rows ('of which') are phases of the row above.")
        print_goals(groups)
        logged = [line for line in (commons.log_tail() if commons else "").splitlines()
                  if line.strip() and not line.startswith("Commons hub on ")]
        if logged:
            print("\nCommons server log (level warning), last lines:\n" + "\n".join(logged[-30:]), file=sys.stderr)
    except BaseException:
        if commons is not None and (tail := commons.log_tail()):
            print(f"\nCommons server log (tail):\n{tail}", file=sys.stderr)
        raise
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_httpx_get":
        _httpx_get_child(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "_sendfile_put":
        _sendfile_put_child(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "_hf_download":
        _hf_download_child(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "_hf_upload":
        _hf_upload_child(sys.argv[2], sys.argv[3])
    else:
        main()
