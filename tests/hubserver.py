"""A real Commons server in a child process, and a real PostgreSQL for it: test helpers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster on a loopback port (Debian's binaries, trust auth)."""

    root: Path
    port: int = field(default_factory=free_port)
    _bin: Path | None = None

    def start(self) -> None:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not candidates:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self._bin = candidates[-1].parent
        data = self.root / "data"
        self.root.mkdir(parents=True, exist_ok=True)
        prefix: list[str] = []
        if os.geteuid() == 0:
            # initdb refuses to run as root: run the cluster as the postgres user.
            shutil.chown(self.root, "postgres", "postgres")
            prefix = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*prefix, str(self._bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run([*prefix, str(self._bin / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l",
                        str(self.root / "log"), "start"], check=True, capture_output=True)
        self._prefix = prefix

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self._bin is not None:
            subprocess.run([*self._prefix, str(self._bin / "pg_ctl"), "-D", str(self.root / "data"), "-m",
                            "immediate", "stop"], capture_output=True)


@dataclass
class HubServer:
    """`commons serve` in a child process, with users alice, bob and admin and their tokens."""

    home: Path
    port: int
    policy: str = "regular"
    database_url: str | None = None
    page_size: int = 1000
    blob_server: bool = os.environ.get("COMMONS_TEST_BLOB_SERVER", "1") == "1"
    extra_env: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    blob_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
        env.update({
            "COMMONS_HOME": str(self.home),
            "COMMONS_PORT": str(self.port),
            "COMMONS_UPLOAD_POLICY": self.policy,
            "COMMONS_PAGE_SIZE": str(self.page_size),
            "COMMONS_LOG_LEVEL": "warning",
        })
        if self.blob_server:
            self.blob_port = self.blob_port or free_port()
            env["COMMONS_BLOB_PORT"] = str(self.blob_port)
        else:
            env["COMMONS_BLOB_PORT"] = "0"
        if self.database_url:
            env["COMMONS_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def provision(self) -> None:
        """Create the schema, users and tokens before the server starts (same database)."""
        from commons.accounts.tokens import issue_token
        from commons.accounts.users import create_user
        from commons.config import Settings
        from commons.db import migrate
        from commons.services import build_services

        settings = Settings(home=self.home, database_url=self.database_url)
        self.home.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(settings.sqlalchemy_url)
        services = build_services(settings)
        with services.session() as session:
            for name, admin in (("alice", False), ("bob", False), ("root", True)):
                user = create_user(session, name, admin=admin)
                self.tokens[name] = issue_token(session, user, "test", "write")
                self.tokens[f"{name}-read"] = issue_token(session, user, "test-read", "read")
        services.close()

    def start(self) -> None:
        log = (self.home / "server.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "commons", "serve"], env=self.env(), stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.home / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/api/commons/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start in 60 s")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush — what a power cut looks like to the process."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def api(self, user: str | None = "alice"):  # type: ignore[no-untyped-def]
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.url, token=self.tokens[user] if user else False)

    @property
    def alice_token(self) -> str:
        return self.tokens["alice"]

    @property
    def bob_token(self) -> str:
        return self.tokens["bob"]


def new_home(prefix: str = "commons-test-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
