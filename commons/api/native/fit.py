"""Hardware fit of a repo and its quantized children (`GET /api/commons/fit/{repo_type}/{ns}/{name}`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from commons.api.deps import ActorDep, ReposDep
from commons.errors import InvalidRequest
from commons.fit.estimate import DEFAULT_BANDWIDTH, Machine, parse_bandwidth, parse_ram
from commons.fit.report import fit_report
from commons.hub.ids import RepoRef, RepoType

router = APIRouter(prefix="/api/commons")
DEFAULT_RAM = "8G"


@router.get("/fit/{repo_type}/{namespace}/{name}")
def hardware_fit(repo_type: str, namespace: str, name: str, actor: ActorDep, repos: ReposDep,
                 ram: str = DEFAULT_RAM, bandwidth: str | None = None, context: int | None = None,
                 revision: str = "main", children: bool = True) -> dict[str, Any]:
    """Parameters, memory per precision, and for each variant: memory needed, fits or not, estimated tok/s.

    `ram` like 8G or 512MiB (binary), `bandwidth` like 20GB/s (decimal; default: the project machine's
    measured 15.5 GB/s), `context` the window to reserve KV cache for (default 4096 or the model's).
    """
    try:
        machine = Machine(parse_ram(ram), parse_bandwidth(bandwidth) if bandwidth else DEFAULT_BANDWIDTH)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    if context is not None and not 1 <= context <= 10_000_000:
        raise InvalidRequest("context must be between 1 and 10,000,000 tokens")
    ref = RepoRef.parse(RepoType.from_plural(repo_type), f"{namespace}/{name}")
    report = fit_report(repos, actor, ref, revision, machine, context, children=children)
    return report.to_json()
