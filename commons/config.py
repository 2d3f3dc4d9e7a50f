"""Settings: the one place configuration is read. Built once (CLI or app) and passed down."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class UploadPolicy(StrEnum):
    """What `preupload` tells clients (see docs/hf-api.md, "Upload policies")."""

    REGULAR = "regular"
    """Policy A: every file travels base64 inside the commit. Works with default client settings."""
    LFS = "lfs"
    """Policy B: large and binary files go through the LFS batch API. Needs `HF_HUB_DISABLE_XET=1`."""


class Settings(BaseSettings):
    """Every setting of a Commons server. Each is read from `COMMONS_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="COMMONS_", extra="ignore")

    home: Path = Field(Path(".commons"), description="Data directory: database, git repositories, blobs.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL. Default: SQLite (WAL) at `$COMMONS_HOME/commons.db`."
    )
    host: str = Field("127.0.0.1", description="Address `commons serve` listens on.")
    port: int = Field(8000, description="Port of the hub (HF API, Commons API, web UI).")
    public_url: str | None = Field(
        None,
        description="Base URL clients use to reach the hub, for URLs the server returns. "
        "Default: taken from each request's Host header.",
    )
    blob_port: int | None = Field(
        None,
        description="Port of the zero-copy blob server (sendfile downloads, streaming LFS uploads). "
        "Default: port + 1. Set to 0 to serve blobs through the main app only.",
    )
    blob_public_url: str | None = Field(
        None, description="Base URL of the blob server as clients see it. Default: the hub's host on blob_port."
    )
    secret_key: str | None = Field(
        None,
        description="Key that signs upload and download URLs. Default: generated once and kept in "
        "`$COMMONS_HOME/secret.key`.",
    )
    upload_policy: UploadPolicy = Field(
        UploadPolicy.REGULAR, description="`regular` (policy A, default) or `lfs` (policy B)."
    )
    lfs_threshold: int = Field(
        10 * 1024 * 1024, description="Files at least this large are stored in the blob store (LFS)."
    )
    page_size: int = Field(1000, description="Page size of repo, tree and commit listings.")
    max_file_size: int = Field(50 * 1024**3, description="Largest single file accepted, in bytes.")
    max_request_size: int = Field(
        64 * 1024**2, description="Largest request body of the JSON API and web forms, in bytes."
    )
    max_commit_size: int = Field(
        100 * 1024**3, description="Largest commit request body (files inline as base64 under policy A), in bytes."
    )
    signed_url_ttl: int = Field(3600, description="Lifetime of signed blob URLs, in seconds.")
    blob_store: str = Field("local", description="Blob store backend: `local` (files under home).")
    log_level: str = Field("info", description="Log level of the server.")
    auth_failures_per_minute: int = Field(
        30, description="Failed token checks allowed per client address and minute before answering 429."
    )
    login_failures_per_5min: int = Field(
        10, description="Failed web logins allowed per client address in 5 minutes before answering 429."
    )
    jobs_embedded: bool = Field(
        True,
        description="Run a job worker inside `commons serve`. Set false when `commons worker` processes run the jobs.",
    )
    jobs_backend: str = Field("local", description="Where jobs run: `local` (child processes) or `ray` (Ray tasks).")
    jobs_ray_address: str | None = Field(
        None,
        description="Ray cluster address for `jobs_backend=ray` (e.g. `127.0.0.1:6379`). Default: start Ray locally.",
    )
    jobs_heartbeat_s: float = Field(5.0, description="Seconds between a running job's heartbeats.")
    jobs_stale_after_s: float = Field(
        60.0, description="A running job without a heartbeat for this long is recovered (re-queued or failed)."
    )
    eval_regression_threshold: float = Field(
        0.02,
        description="How much worse than its parent a model's score may be before the report card flags a "
        "regression: absolute for scores within [-1, 1] (0.02 = 2 points of accuracy), relative to the "
        "parent's value for larger ones (perplexity).",
    )
    eval_datasets_namespace: str = Field(
        "benchmarks",
        description="Where `commons eval --task NAME` looks for a task's dataset repo (`<namespace>/<dataset>`) "
        "when no repo is named.",
    )

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'commons.db').resolve()}"

    @property
    def repos_dir(self) -> Path:
        return self.home / "repos"

    @property
    def blobs_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def tmp_dir(self) -> Path:
        return self.home / "tmp"

    @property
    def effective_blob_port(self) -> int | None:
        if self.blob_port == 0:
            return None
        return self.blob_port if self.blob_port is not None else self.port + 1
