"""What other rooms add to a repo's pages: side panels on the card page and extra tabs.

The license, evaluation and hardware-fit pages each own their facts; they register a `Panel` (a
template and a function that builds its context, or None to hide it) or a `Tab` here when their
page module is imported, so the card page and the repo header never import them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from commons.hub.gitrepo import GitRepo
    from commons.web.reporoutes import RepoView

PanelContext = Callable[["RepoView", "GitRepo", str | None], dict[str, Any] | None]


@dataclass(frozen=True)
class Panel:
    """A side panel of the card page: `template` is rendered with `panel` = what `context` returned."""

    name: str
    template: str
    context: PanelContext
    order: int = 50


@dataclass(frozen=True)
class Tab:
    """A tab of the repo header, linking to `{base}/{path}`; `kinds` limits it to models or datasets."""

    name: str
    label: str
    icon: str
    path: str
    kinds: tuple[str, ...] = ("model", "dataset")
    order: int = 50


PANELS: list[Panel] = []
TABS: list[Tab] = []


def register_panel(panel: Panel) -> None:
    PANELS[:] = sorted([p for p in PANELS if p.name != panel.name] + [panel], key=lambda p: (p.order, p.name))


def register_tab(tab: Tab) -> None:
    TABS[:] = sorted([t for t in TABS if t.name != tab.name] + [tab], key=lambda t: (t.order, t.name))


def panels_for(view: RepoView, git: GitRepo, commit: str | None) -> list[tuple[Panel, dict[str, Any]]]:
    """The panels to show on this repo's card page, each with its context."""
    shown = []
    for panel in PANELS:
        context = panel.context(view, git, commit)
        if context is not None:
            shown.append((panel, context))
    return shown


def tabs_for(kind: str) -> list[Tab]:
    return [t for t in TABS if kind in t.kinds]
