"""URLs of the web UI, as on the Hub: `/{ns}/{name}` for models, `/datasets/{ns}/{name}` for datasets."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from commons.hub.ids import RepoType


def repo_url(kind: RepoType | str, namespace: str, name: str) -> str:
    return f"/{RepoType(kind).url_prefix}{namespace}/{name}"


def qrev(rev: str) -> str:
    """A revision as one path segment: `refs/pr/1` → `refs%2Fpr%2F1`."""
    return quote(rev, safe="")


def qpath(path: str) -> str:
    return quote(path, safe="/")


def tree_url(base: str, rev: str, path: str = "") -> str:
    return f"{base}/tree/{qrev(rev)}" + (f"/{qpath(path)}" if path else "")


def blob_url(base: str, rev: str, path: str) -> str:
    return f"{base}/blob/{qrev(rev)}/{qpath(path)}"


def resolve_url(base: str, rev: str, path: str) -> str:
    return f"{base}/resolve/{qrev(rev)}/{qpath(path)}"


def commits_url(base: str, rev: str) -> str:
    return f"{base}/commits/{qrev(rev)}"


def with_query(path: str, **params: str | int | None) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def search_url(path: str, current: dict[str, str], **changes: str | int | None) -> str:
    """`path` with the current search parameters, some changed (None removes one); back to page 0."""
    params: dict[str, str | int | None] = {**current, "p": None, **changes}
    return with_query(path, **params)


def unsplit_revision(rev: str, path: str) -> tuple[str, str]:
    """The revision and path of `/tree/{rev}/{path}`: encoded slashes restored, and an unencoded
    `refs/pr/1` (as browsers and people type it) joined back into one revision."""
    rev, path = rev.replace("%2F", "/"), path.replace("%2F", "/")
    if rev == "refs":
        head, _, rest = path.partition("/")
        num, _, tail = rest.partition("/")
        if head in ("pr", "convert") and num:
            return f"refs/{head}/{num}", tail
    return rev, path


def safe_next(target: str | None) -> str:
    """A same-site path to return to after signing in (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
