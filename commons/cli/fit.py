"""`commons fit REPO --ram 8G [--bandwidth 20GB/s] [--context N]`: which variants run on this machine."""

from __future__ import annotations

import json

import typer

from commons.accounts.actors import Actor
from commons.config import Settings
from commons.errors import CommonsError
from commons.fit.estimate import DEFAULT_BANDWIDTH, Machine, parse_bandwidth, parse_ram
from commons.fit.report import FitReport, fit_report
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Repos
from commons.services import build_services

# The operator's own hub: the CLI sees every repo, as `commons license` does.
OPERATOR = Actor(user_id=0, name="operator", is_admin=True, role="write", token_name="cli")


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def render(report: FitReport, bandwidth_given: bool) -> str:
    """The human-readable answer: the machine, then one line per variant, then memory per precision."""
    m = report.machine
    source = "" if bandwidth_given else " (default: the project machine's measured 2-thread read bandwidth)"
    lines = [f"{report.repo_id}@{report.commit[:12]}: "
             + (f"{report.n_params / 1e6:,.1f} M parameters" if report.n_params else "no weights found"),
             f"machine: {m.ram_bytes / (1 << 30):.1f} GiB RAM, {m.bandwidth / 1e9:.1f} GB/s memory bandwidth{source}"]
    if report.fits:
        ctx = report.fits[0].context
        lines.append(f"context: {ctx:,} tokens (KV cache at full context; speed estimated at {ctx // 2:,} tokens)")
        names = [f"{f.variant.repo_id}/{f.variant.path}" if f.variant.path else f.variant.repo_id for f in report.fits]
        width = max(len("variant"), *(len(n) for n in names))
        lines.append(f"  {'':3} {'variant':<{width}} {'precision':<14} {'engine':<21} {'weights':>10} {'needs':>10} "
                     f"{'tok/s':>6}")
        for name, f in zip(names, report.fits, strict=True):
            v = f.variant
            speed = f"{f.tokens_per_s:.0f}" if f.tokens_per_s is not None else "-"
            lines.append(f"  {'yes' if f.fits else 'no':3} {name:<{width}} {v.precision:<14} {v.engine.name:<21} "
                         f"{_size(v.weight_bytes):>10} {_size(f.needed_bytes):>10} {speed:>6}")
        runs = sum(f.fits for f in report.fits)
        lines.append(f"{runs} of {len(report.fits)} variants fit in {m.ram_bytes / (1 << 30):.1f} GiB "
                     "(needs = weights + KV cache + runtime; tok/s: an estimate for greedy decode at batch 1, "
                     "none for torchao variants, see docs/quantization.md)")
    if report.precisions:
        sizes = " · ".join(f"{k} {_size(b)}" for k, b in report.precisions.items())
        lines.append(f"weights at other precisions: {sizes}")
    return "\n".join(lines)


def fit(
    repo_id: str = typer.Argument(..., help="Model repo, ns/name[@revision]."),
    ram: str = typer.Option(..., help="Memory available to the model, e.g. 8G, 512M, 16GiB (binary units)."),
    bandwidth: str | None = typer.Option(None, help="Memory read bandwidth, e.g. 20GB/s (default "
                                         f"{DEFAULT_BANDWIDTH / 1e9:g} GB/s, measured on the project machine)."),
    context: int | None = typer.Option(None, min=1, help="Context window to reserve (default 4096, or the model's)."),
    no_children: bool = typer.Option(False, "--no-children", help="Only the repo itself, not its quantized children."),
    as_json: bool = typer.Option(False, "--json", help="The report as JSON."),
) -> None:
    """Which variants of a model (the repo and its quantized children) run with this RAM, and how fast."""
    repo, _, revision = repo_id.partition("@")
    try:
        machine = Machine(parse_ram(ram), parse_bandwidth(bandwidth) if bandwidth else DEFAULT_BANDWIDTH)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    services = build_services(Settings())
    try:
        with services.session() as session:
            report = fit_report(Repos(session, services.storage), OPERATOR, RepoRef.parse(RepoType.MODEL, repo),
                                revision or "main", machine, context, children=not no_children)
    except CommonsError as exc:
        typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(2) from None
    finally:
        services.close()
    typer.echo(json.dumps(report.to_json(), indent=2) if as_json else render(report, bandwidth is not None))
