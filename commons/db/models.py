"""Every table of Commons. Git holds repository history; these rows hold what git cannot."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commons.db.base import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(96), unique=True)
    fullname: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, comment="Disabled users cannot sign in.")
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    tokens: Mapped[list[Token]] = relationship(back_populates="user", cascade="all, delete-orphan")


class Token(Base):
    __tablename__ = "tokens"
    __table_args__ = (CheckConstraint("role IN ('read', 'write', 'fine-grained')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(
        String(64), unique=True, comment="sha256 of the token; the token itself is never stored."
    )
    prefix: Mapped[str] = mapped_column(String(16), comment="First characters, to tell tokens apart in lists.")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    scopes: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSON, nullable=True, comment="Fine-grained tokens: [{resource, actions}]; NULL for read/write tokens."
    )

    user: Mapped[User] = relationship(back_populates="tokens")


class Org(Base):
    """An organisation: a namespace that users share with roles."""

    __tablename__ = "orgs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(96), unique=True)
    fullname: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    members: Mapped[list[Membership]] = relationship(back_populates="org", cascade="all, delete-orphan")


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (CheckConstraint("role IN ('read', 'contributor', 'write', 'admin')", name="role"),)

    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    org: Mapped[Org] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class WebSession(Base):
    """A signed-in browser. The cookie holds a secret whose sha256 is the id."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, comment="sha256 of the cookie secret")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SiteSetting(Base):
    """Settings an administrator changes at run time (e.g. whether sign-up is open)."""

    __tablename__ = "site_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class AuditEvent(Base):
    """Append-only record of every write and permission change, hash-chained to detect tampering."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(96), nullable=True)
    token: Mapped[str | None] = mapped_column(String(100), nullable=True, comment="Name of the token used.")
    action: Mapped[str] = mapped_column(String(64))
    namespace: Mapped[str | None] = mapped_column(String(96), nullable=True, index=True)
    target: Mapped[str] = mapped_column(String(400))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True, comment="One successor per row: no forks.")
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class ScanRecord(Base):
    """The result of scanning one file at one revision."""

    __tablename__ = "scan_records"
    __table_args__ = (UniqueConstraint("repo_id", "commit", "path", name="uq_scan_records_repo_commit_path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), index=True)
    commit: Mapped[str] = mapped_column(String(40))
    path: Mapped[str] = mapped_column(String(1000))
    blob: Mapped[str] = mapped_column(String(64), comment="sha256 (LFS) or git blob id of the scanned bytes")
    scanner: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16), comment="worst finding: ok, info, warning, critical")
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    imports: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Repo(Base):
    __tablename__ = "repos"
    __table_args__ = (
        UniqueConstraint("type", "namespace", "name", name="uq_repos_type_namespace_name"),
        CheckConstraint("type IN ('model', 'dataset', 'space')", name="type"),
        CheckConstraint("gated IN ('none', 'auto', 'manual')", name="gated"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, comment="Random hex; names the git dir.")
    type: Mapped[str] = mapped_column(String(16))
    namespace: Mapped[str] = mapped_column(String(96), index=True)
    name: Mapped[str] = mapped_column(String(96))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    gated: Mapped[str] = mapped_column(String(8), default="none")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_modified: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    head_sha: Mapped[str | None] = mapped_column(
        String(40), nullable=True, comment="Head of main when the index columns below were computed."
    )
    card_data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    library_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    pipeline_tag: Mapped[str | None] = mapped_column(String(100), nullable=True)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    likes: Mapped[int] = mapped_column(Integer, default=0)
    next_discussion_num: Mapped[int] = mapped_column(Integer, default=1)

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"


class LfsObject(Base):
    """A verified large object in the blob store, addressed by sha256."""

    __tablename__ = "lfs_objects"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    git_sha1: Mapped[str | None] = mapped_column(
        String(40), nullable=True, comment="Git blob id of the content, when known (lets preupload skip it)."
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RepoObject(Base):
    """Which repo may hand out which large object: uploaded to it or referenced by one of its commits."""

    __tablename__ = "repo_objects"

    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("lfs_objects.sha256"), primary_key=True)


class AccessGrant(Base):
    """A user's access request to a gated repo, and its answer."""

    __tablename__ = "access_grants"
    __table_args__ = (
        UniqueConstraint("repo_id", "user_id", name="uq_access_grants_repo_user"),
        CheckConstraint("status IN ('pending', 'accepted', 'rejected')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    decided_by: Mapped[str | None] = mapped_column(String(96), nullable=True)

    user: Mapped[User] = relationship()


class Discussion(Base):
    __tablename__ = "discussions"
    __table_args__ = (
        UniqueConstraint("repo_id", "num", name="uq_discussions_repo_num"),
        CheckConstraint("status IN ('draft', 'open', 'closed', 'merged')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), index=True)
    num: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    is_pull_request: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    target_branch: Mapped[str | None] = mapped_column(String(255), nullable=True)
    merge_commit: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    events: Mapped[list[DiscussionEvent]] = relationship(
        back_populates="discussion", order_by="DiscussionEvent.id", cascade="all, delete-orphan"
    )
    author: Mapped[User | None] = relationship()


class DiscussionEvent(Base):
    __tablename__ = "discussion_events"
    __table_args__ = (
        CheckConstraint("type IN ('comment', 'status-change', 'commit', 'title-change')", name="type"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    discussion_id: Mapped[int] = mapped_column(ForeignKey("discussions.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(20))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    discussion: Mapped[Discussion] = relationship(back_populates="events")
    author: Mapped[User | None] = relationship()


Index("ix_repos_last_modified", Repo.last_modified)


class Job(Base):
    """A unit of work (fine-tune, quantize, evaluate, ...) with a typed, versioned JSON spec."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="state"),
        Index("ix_jobs_state_created", "state", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, comment="Inputs by repo and commit sha; see ml/specs.py.")
    spec_version: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True, comment="Who holds a running job.")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=2)
    timeout_s: Mapped[int] = mapped_column(Integer, default=6 * 3600)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, comment="step, total, loss, tokens/s, ETA")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(String(4000), nullable=True)


class JobEvent(Base):
    """A job's log lines and metric points, streamed from the worker as they happen."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(16), comment="log | metric | state")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Like(Base):
    """A user's like of a repo. `Repo.likes` counts these rows; both change in one transaction."""

    __tablename__ = "likes"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


Index("ix_repos_likes", Repo.likes)


class EvalResult(Base):
    """One score of one model commit on one task, written by an evaluation job (see commons/evals).

    A row is keyed by everything the score depends on: model commit, task and its version, dataset
    commit, harness version and the hash of the settings that can change a score; `subgroup` is empty
    for the whole task, else `column=value` (e.g. `bias_type=gender`).
    """

    __tablename__ = "eval_results"
    __table_args__ = (
        UniqueConstraint("repo_id", "model_sha", "task", "task_version", "dataset_repo", "dataset_sha",
                         "harness_version", "settings_hash", "metric", "subgroup", name="uq_eval_results_key"),
        Index("ix_eval_results_task_metric", "task", "metric"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), index=True)
    model_sha: Mapped[str] = mapped_column(String(40))
    task: Mapped[str] = mapped_column(String(64))
    task_version: Mapped[str] = mapped_column(String(32))
    task_type: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(16), comment="capability | bias | safety")
    dataset_repo: Mapped[str] = mapped_column(String(200))
    dataset_sha: Mapped[str] = mapped_column(String(40))
    harness_version: Mapped[str] = mapped_column(String(32))
    settings_hash: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, comment="The settings the hash names.")
    metric: Mapped[str] = mapped_column(String(64))
    subgroup: Mapped[str] = mapped_column(String(200), default="")
    value: Mapped[float] = mapped_column(Float)
    stderr: Mapped[float | None] = mapped_column(Float, nullable=True)
    ci_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    ci_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    n: Mapped[int] = mapped_column(Integer)
    n_total: Mapped[int] = mapped_column(Integer, default=0)
    better: Mapped[str | None] = mapped_column(String(8), nullable=True, comment="higher | lower | None (see ideal)")
    ideal: Mapped[float | None] = mapped_column(Float, nullable=True, comment="The unbiased value of a bias score.")
    headline: Mapped[bool] = mapped_column(Boolean, default=False, comment="The metric the task is quoted by.")
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    written_to: Mapped[str | None] = mapped_column(
        String(64), nullable=True, comment="Where the card got it: a commit sha on main, or refs/pr/N."
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
