"""Transfer benchmark: the blob server against native anchors, interleaved in one run.

    .venv/bin/python bench/transfer.py [--size-mib 1024] [--reps 3] [--warmup 1] [--tmpdir DIR]

Builds a random file, stores it in a LocalBlobStore, starts a BlobServer and Debian's nginx
(sendfile on) on loopback ports, then measures, rep by rep and back to back so machine noise hits
both sides alike (docs/perf-anchors.md, H2/H5/H7):

1. curl download: nginx vs blob server (goal: ratio >= 0.9);
2. httpx streaming download, the way huggingface_hub reads (iter_bytes, 10 MB chunks), in a child
   process: nginx vs blob server;
3. upload: `curl -T` PUT to a signed /upload URL, sha256-verified and fsynced before the answer,
   vs `hashlib.file_digest` of the same file (goal: ratio >= 0.8). Context rows: the same curl
   PUT into nginx's DAV module (no hash, no fsync: what the client alone can push), and a PUT
   sent with `socket.sendfile` (what the server can take when the client is not the limit).

Each row is a `Trial`: a label and a function returning MB/s. The `measure_*` functions take
URLs, so a row against a full Commons server (e.g. `hf_hub_download` through `/resolve/`) is one
more Trial in `main`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

MB = 1e6
NGINX = "/usr/sbin/nginx"


# ----------------------------------------------------------------------------- measurements


def _curl(args: list[str]) -> list[str]:
    out = subprocess.run(["curl", "-s", "-S", *args], check=True, capture_output=True, text=True).stdout
    return out.split()


def measure_curl_download(url: str, expect_bytes: int | None = None) -> float:
    """MB/s of `curl -o /dev/null` (curl's own speed_download, as in perf-anchors H2)."""
    speed, size, code = _curl(["-o", "/dev/null", "-w", "%{speed_download} %{size_download} %{http_code}", url])
    if code != "200" or (expect_bytes is not None and int(size) != expect_bytes):
        raise RuntimeError(f"curl GET {url}: HTTP {code}, {size} bytes")
    return float(speed) / MB


def measure_httpx_download(url: str, expect_bytes: int | None = None) -> float:
    """MB/s of an httpx streaming GET with 10 MB chunks (huggingface_hub's pattern), in a child
    process so the client does not share a GIL with a server running in this one."""
    out = subprocess.run([sys.executable, __file__, "_httpx_get", url], check=True, capture_output=True, text=True)
    rate, size = out.stdout.split()
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
    out = subprocess.run([sys.executable, __file__, "_sendfile_put", url, str(path)],
                         check=True, capture_output=True, text=True)
    return float(out.stdout)


def measure_sha256(path: Path) -> float:
    """MB/s of `hashlib.file_digest(f, "sha256")` (perf-anchors H7)."""
    start = time.perf_counter()
    with path.open("rb") as fh:
        hashlib.file_digest(fh, "sha256")
    return path.stat().st_size / (time.perf_counter() - start) / MB


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


# ----------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def nginx(root: Path, www: Path, port: int) -> Iterator[None]:
    """Debian's nginx on 127.0.0.1:port serving `www` (sendfile, like perf-anchors/nginx.conf),
    with DAV PUT under /put/ as a native upload reference."""
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
  sendfile on; tcp_nopush on;
  client_body_temp_path {tmp}; {temps}
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port};
    root {www};
    location /put/ {{ dav_methods PUT; }}
  }}
}}
""")
    log = root / "nginx-error.log"
    proc = subprocess.Popen([NGINX, "-p", str(root), "-e", str(log), "-c", str(conf), "-g", "daemon off;"])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {log.read_text() if log.exists() else ''}") from None
                time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


# ----------------------------------------------------------------------------- table


def _cpu() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


@dataclass
class Trial:
    """One row: `measure()` returns MB/s; `before()` runs untimed before each measurement.

    Besides the rate, a run records CPU seconds per GiB moved, in this process (the blob server
    runs here; so does the hashing anchor) and in the child processes (curl, the httpx client).
    Those stay put when other work on the machine steals cores, which makes the rates noisy.
    """

    label: str
    measure: Callable[[], float]
    before: Callable[[], None] = lambda: None
    rates: list[float] = field(default_factory=list)
    cpu_self: list[float] = field(default_factory=list)
    cpu_children: list[float] = field(default_factory=list)

    def run(self, size: int, record: bool) -> float:
        self.before()
        own0, kids0 = _cpu()
        rate = self.measure()
        own1, kids1 = _cpu()
        if record:
            self.rates.append(rate)
            self.cpu_self.append((own1 - own0) * (1 << 30) / size)
            self.cpu_children.append((kids1 - kids0) * (1 << 30) / size)
        return rate


@dataclass
class Group:
    """A reference row and the rows compared with it, measured back to back in every rep."""

    title: str
    reference: Trial
    others: list[Trial]
    goal: float | None = None
    goal_row: str | None = None

    def trials(self) -> list[Trial]:
        return [self.reference, *self.others]


def run_groups(groups: list[Group], size: int, reps: int, warmup: int) -> None:
    for rep in range(warmup + reps):
        for group in groups:
            for trial in group.trials():
                rate = trial.run(size, record=rep >= warmup)
                print(f"  {'warm-up' if rep < warmup else f'rep {rep - warmup + 1}'}: "
                      f"{trial.label}: {rate:,.0f} MB/s", file=sys.stderr, flush=True)


def print_table(groups: list[Group]) -> None:
    print(f"\n{'row':<52} {'median MB/s':>12} {'min-max':>13} {'ratio':>7} {'CPU-s/GiB':>15}  goal")
    print(f"{'':<87} {'here':>7} {'child':>7}")
    for group in groups:
        print(f"{group.title}")
        ref = group.reference.rates
        for trial in group.trials():
            r = trial.rates
            spread = f"{min(r):,.0f}-{max(r):,.0f}"
            if trial is group.reference:
                ratio, goal = "1", "(reference)"
            else:
                # Median of per-rep ratios: each pair ran back to back, so shared noise cancels.
                value = statistics.median(a / b for a, b in zip(r, ref, strict=True))
                ratio = f"{value:.2f}"
                goal = ""
                if group.goal is not None and trial.label == group.goal_row:
                    goal = f">= {group.goal:.2f} {'met' if value >= group.goal else 'MISSED'}"
            cpu = f"{statistics.median(trial.cpu_self):>7.2f} {statistics.median(trial.cpu_children):>7.2f}"
            print(f"  {trial.label:<50} {statistics.median(r):>12,.0f} {spread:>13} {ratio:>7} {cpu}  {goal}")


# ----------------------------------------------------------------------------- main


def make_random_file(path: Path, size: int) -> None:
    chunk = 16 << 20
    with path.open("wb") as fh:
        left = size
        while left:
            fh.write(os.urandom(min(chunk, left)))
            left -= min(chunk, left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded reps first (page cache, allocator)")
    parser.add_argument("--tmpdir", type=Path, default=None, help="where the test files go (default: $TMPDIR)")
    args = parser.parse_args()

    from commons.blobserver import BlobServer, blob_url, upload_url
    from commons.storage.local import LocalBlobStore
    from commons.storage.signing import UrlSigner

    size = args.size_mib << 20
    root = Path(tempfile.mkdtemp(prefix="commons-bench-", dir=args.tmpdir))
    try:
        www = root / "www"
        www.mkdir()
        big = www / "big.bin"
        print(f"writing {args.size_mib} MiB of random bytes to {big}", file=sys.stderr)
        make_random_file(big, size)
        with big.open("rb") as fh:
            oid = hashlib.file_digest(fh, "sha256").hexdigest()

        store = LocalBlobStore(root / "blobs")
        signer = UrlSigner(os.urandom(32))

        def restore_blob() -> None:
            # The store's copy is a hard link to nginx's file: one inode, one set of cached pages.
            stored = store.local_path(oid)
            if stored is not None and not stored.samefile(big):
                store.delete(oid)  # an uploaded copy: equal bytes, but other pages
                stored = None
            if stored is None:
                staging = store.staging_path()
                os.link(big, staging)
                store.adopt(staging, oid, size)

        def drop_blob() -> None:
            store.delete(oid)  # every upload rep really writes, fsyncs and adopts
            (www / "put" / "big.bin").unlink(missing_ok=True)

        restore_blob()
        ttl = 24 * 3600
        server = BlobServer(store, signer, "127.0.0.1", 0, max_size=size)
        server.start()
        port = free_port()
        with nginx(root, www, port):
            base = f"http://127.0.0.1:{server.port}"
            nginx_url = f"http://127.0.0.1:{port}/big.bin"
            get_url = blob_url(base, signer, oid, size, ttl)
            put_url = upload_url(base, signer, oid, size, ttl)
            groups = [
                Group("download, curl -o /dev/null",
                      Trial("curl <- nginx sendfile", lambda: measure_curl_download(nginx_url, size)),
                      [Trial("curl <- blob server", lambda: measure_curl_download(get_url, size),
                             restore_blob)],
                      goal=0.9, goal_row="curl <- blob server"),
                Group("download, httpx iter_bytes(10 MB) (huggingface_hub style)",
                      Trial("httpx <- nginx sendfile", lambda: measure_httpx_download(nginx_url, size)),
                      [Trial("httpx <- blob server", lambda: measure_httpx_download(get_url, size),
                             restore_blob)]),
                Group("upload (ratios against hashlib.file_digest)",
                      Trial("hashlib.file_digest sha256 (anchor)", lambda: measure_sha256(big)),
                      [Trial("curl -T -> blob server (sha256 + fsync)", lambda: measure_curl_upload(put_url, big),
                             drop_blob),
                       Trial("context: curl -T -> nginx DAV PUT (no hash/fsync)",
                             lambda: measure_curl_upload(f"http://127.0.0.1:{port}/put/big.bin", big), drop_blob),
                       Trial("context: sendfile PUT -> blob server", lambda: measure_sendfile_upload(put_url, big),
                             drop_blob)],
                      goal=0.8, goal_row="curl -T -> blob server (sha256 + fsync)"),
            ]
            load_before = os.getloadavg()[0]
            run_groups(groups, size, args.reps, args.warmup)
            load_after = os.getloadavg()[0]
            restore_blob()
        server.stop()
        print(f"\n{args.size_mib} MiB file, {args.reps} reps (+{args.warmup} warm-up), {os.cpu_count()} CPUs, "
              f"1-min load average {load_before:.1f} before / {load_after:.1f} after")
        print_table(groups)
        print("\nratio: median over reps of row / reference, each pair measured back to back. CPU-s/GiB:"
              "\n'here' is this process (the blob server; the hashing anchor), 'child' the client process"
              "\n(curl, httpx); nginx's own CPU is in neither.")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_httpx_get":
        _httpx_get_child(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "_sendfile_put":
        _sendfile_put_child(sys.argv[2], sys.argv[3])
    else:
        main()
