"""Typed results shared by every scanner: one `ScanResult` per scanned file, holding `Finding`s."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How bad a finding is; `critical` is what quarantines a file."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Orderable weight (StrEnum compares alphabetically, which is not what we want)."""
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True)
class Finding:
    """One problem found in a file. `kind` is a stable machine-readable slug, `message` is for people."""

    kind: str
    severity: Severity
    message: str
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain dict for the `scan_records.findings` JSON column."""
        return {"kind": self.kind, "severity": str(self.severity), "message": self.message, "detail": self.detail}


@dataclass(frozen=True)
class ScanResult:
    """Everything one scanner learned about one file."""

    path: str
    scanner: str
    findings: tuple[Finding, ...] = ()
    #: Every `module.name` a pickle references, allowed or not (empty for non-pickle formats).
    imports: tuple[str, ...] = field(default=())

    @property
    def worst(self) -> Severity | None:
        """The most severe finding, or None when there is none."""
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=lambda s: s.rank)

    @property
    def ok(self) -> bool:
        """True when nothing above `info` was found."""
        worst = self.worst
        return worst is None or worst is Severity.INFO

    @property
    def severity_label(self) -> str:
        """Value for the `scan_records.severity` column: `ok` or the worst severity."""
        worst = self.worst
        return "ok" if worst is None else str(worst)

    def by_severity(self, severity: Severity) -> tuple[Finding, ...]:
        """Findings of exactly this severity."""
        return tuple(f for f in self.findings if f.severity is severity)
