"""The "Hardware fit" panel on a model's card page: size per precision, and which variants run where.

It shows the same report as `GET /api/commons/fit/...` for a typical 8 GiB machine at the default
bandwidth; the API and `commons fit` take other machines.
"""

from __future__ import annotations

from typing import Any

from commons.fit.estimate import DEFAULT_BANDWIDTH, GIB, Machine
from commons.fit.report import fit_report
from commons.hub.gitrepo import MAIN, GitRepo
from commons.hub.ids import RepoType
from commons.web.panels import Panel, register_panel
from commons.web.reporoutes import RepoView

PANEL_RAM = 8 * GIB
MAX_ROWS = 12


def _panel(view: RepoView, git: GitRepo, commit: str | None) -> dict[str, Any] | None:
    if view.kind is not RepoType.MODEL:
        return None
    report = fit_report(view.repos, view.viewer.actor, view.ref, commit or MAIN, Machine(PANEL_RAM, DEFAULT_BANDWIDTH))
    if not report.fits:
        return None
    rows = sorted(report.fits, key=lambda f: (f.variant.repo_id != view.repo.repo_id, f.needed_bytes))[:MAX_ROWS]
    api = f"/api/commons/fit/models/{view.repo.repo_id}"
    return {"report": report, "rows": rows, "ram_gib": PANEL_RAM // GIB, "bandwidth": DEFAULT_BANDWIDTH / 1e9,
            "api": api, "more": len(report.fits) - len(rows)}


register_panel(Panel("fit", "partials/fit_panel.html", _panel, order=30))
