"""Unified diffs as the page shows them: files, hunks and numbered lines (pure, plus one git helper)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from commons.hub.gitrepo import GitRepo

MAX_LINES = 5000  # lines shown over all files of one diff
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$")


@dataclass(frozen=True)
class Line:
    kind: str  # "add" | "del" | "ctx" | "hunk" | "note"
    text: str
    old: int | None = None
    new: int | None = None


@dataclass
class FileDiff:
    old_path: str
    new_path: str
    status: str = "modified"  # added | deleted | modified | renamed
    binary: bool = False
    additions: int = 0
    deletions: int = 0
    lines: list[Line] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.old_path if self.status == "deleted" else self.new_path


@dataclass
class Diff:
    files: list[FileDiff] = field(default_factory=list)
    truncated: bool = False

    @property
    def additions(self) -> int:
        return sum(f.additions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)


def _strip_prefix(path: str) -> str:
    return path[2:] if path.startswith(("a/", "b/")) else path


def parse_diff(patch: str, max_lines: int = MAX_LINES) -> Diff:
    """Parse `git diff` output (pygit2's patch text)."""
    diff = Diff()
    current: FileDiff | None = None
    old = new = 0
    shown = 0
    for raw in patch.splitlines():
        if raw.startswith("diff --git "):
            parts = raw[len("diff --git "):].split(" b/", 1)
            a = _strip_prefix(parts[0])
            b = parts[1] if len(parts) > 1 else a
            current = FileDiff(a, b)
            diff.files.append(current)
            continue
        if current is None:
            continue
        if raw.startswith("new file mode"):
            current.status = "added"
        elif raw.startswith("deleted file mode"):
            current.status = "deleted"
        elif raw.startswith("rename from "):
            current.status, current.old_path = "renamed", raw[len("rename from "):]
        elif raw.startswith("rename to "):
            current.new_path = raw[len("rename to "):]
        elif raw.startswith("Binary files ") or raw.startswith("GIT binary patch"):
            current.binary = True
        elif raw.startswith(("--- ", "+++ ", "index ", "similarity index", "old mode", "new mode")):
            continue
        elif match := _HUNK.match(raw):
            old, new = int(match.group(1)), int(match.group(2))
            if shown < max_lines:
                current.lines.append(Line("hunk", raw))
        elif raw.startswith("\\"):
            if shown < max_lines:
                current.lines.append(Line("note", raw[2:]))
        elif raw.startswith("+"):
            current.additions += 1
            if shown < max_lines:
                current.lines.append(Line("add", raw[1:], None, new))
                shown += 1
            new += 1
        elif raw.startswith("-"):
            current.deletions += 1
            if shown < max_lines:
                current.lines.append(Line("del", raw[1:], old, None))
                shown += 1
            old += 1
        else:
            if shown < max_lines:
                current.lines.append(Line("ctx", raw[1:] if raw.startswith(" ") else raw, old, new))
                shown += 1
            old += 1
            new += 1
    diff.truncated = shown >= max_lines
    return diff


def commit_patch(git: GitRepo, sha: str, parent: str | None) -> str:
    """The patch a commit introduced: against its first parent, or against nothing for a root commit."""
    if parent is not None:
        return git.diff(parent, sha)
    # The root commit: everything is an addition (GitRepo has no empty-tree diff, so ask pygit2).
    tree = git.repo[sha].tree
    return str(tree.diff_to_tree(swap=True).patch or "")
