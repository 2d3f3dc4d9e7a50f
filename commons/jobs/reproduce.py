"""Rerun a published fine-tune from its provenance.json and say whether the outputs match.

Verdicts:
- `identical`: every output file has the recorded sha256 (expected on CPU with the same library
  versions, thread count and seed);
- `within-tolerance`: weights differ in low bits only (every tensor `allclose` with rtol 1e-3,
  atol 1e-5), configuration files are identical, and the card and plot differ only because they
  show the metrics; the reasons list what changed in the environment (versions, hardware, GPU);
- `differs`: anything else; `failed`: the rerun itself failed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commons.accounts.actors import Actor
from commons.errors import CommonsError, EntryNotFound
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need, Repos
from commons.hub.trees import file_info
from commons.jobs.child import LocalChild
from commons.jobs.inputs import materialise, resolve_commit
from commons.ml.specs import FinetuneSpec, SpecError
from commons.services import Services

PROVENANCE = "provenance.json"
# Files that only render the metrics: they follow the weights, so they may differ when those do.
DERIVED = ("README.md", "loss.png")

EventFn = Callable[[str, dict[str, Any]], None]


@dataclass
class Reproduction:
    repo_id: str
    commit: str
    verdict: str
    files: dict[str, str] = field(default_factory=dict)
    """path -> identical | close | different | missing | extra"""
    reasons: list[str] = field(default_factory=list)
    recorded_metrics: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    max_abs_diff: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def summary(self) -> str:
        lines = [f"{self.repo_id}@{self.commit[:12]}: {self.verdict}"]
        if self.error:
            lines.append(f"  error: {self.error}")
        for path, status in sorted(self.files.items()):
            lines.append(f"  {status:<10} {path}")
        if self.verdict != "identical" and self.max_abs_diff:
            lines.append(f"  largest weight difference: {self.max_abs_diff:.3e}")
        for key in ("train_loss_after", "eval_loss_after"):
            if key in self.recorded_metrics and key in self.metrics:
                lines.append(f"  {key}: recorded {self.recorded_metrics[key]!r}, now {self.metrics[key]!r}")
        lines += [f"  reason: {r}" for r in self.reasons]
        return "\n".join(lines)


def read_provenance(services: Services, actor: Actor | None, repo_id: str, revision: str) -> tuple[str, dict[str, Any]]:
    with services.session() as session:
        commit = resolve_commit(session, services.storage, actor, "model", repo_id, revision)
        repos = Repos(session, services.storage)
        git = repos.git(repos.get(actor, RepoRef.parse(RepoType.MODEL, repo_id), Need.FILES))
        info = file_info(git, commit, PROVENANCE)
        if info is None or info.lfs is not None:
            raise EntryNotFound(PROVENANCE, f"{repo_id}@{commit[:12]} has no {PROVENANCE}: it was not made by a job")
        record: dict[str, Any] = json.loads(git.read_blob(info.oid))
    return commit, record


def environment_differences(recorded: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between the recorded run's environment and this one (versions, hardware)."""
    reasons = []
    for name, version in sorted(recorded.get("libraries", {}).items()):
        current = now.get("libraries", {}).get(name)
        if current != version:
            reasons.append(f"{name} {version} was used, now {current}")
    for key in ("device", "cpu", "torch_threads", "gpu", "cuda"):
        before, after = recorded.get("hardware", {}).get(key), now.get("hardware", {}).get(key)
        if before != after:
            reasons.append(f"hardware {key}: {before} then, {after} now")
    if str(recorded.get("hardware", {}).get("device", "cpu")).startswith("cuda"):
        reasons.append("the recorded run used a GPU, where kernels are not bit-deterministic")
    return reasons


def reproduce(services: Services, actor: Actor | None, repo_id: str, revision: str = "main",
              on_event: EventFn | None = None, keep: Path | None = None) -> Reproduction:
    """Rerun the job recorded at `repo_id@revision` locally and compare outputs with the recorded hashes."""
    commit, record = read_provenance(services, actor, repo_id, revision)
    try:
        spec = FinetuneSpec.from_json(record["spec"])
    except (KeyError, SpecError) as exc:
        raise CommonsError(f"{PROVENANCE} of {repo_id} holds no usable spec: {exc}") from None
    workdir = keep or services.settings.home / "jobs" / f"reproduce-{uuid.uuid4().hex[:8]}"
    try:
        with services.session() as session:
            for name, item in spec.inputs().items():
                materialise(session, services.storage, actor, item.repo_type, item.repo_id, item.revision,
                            workdir / "inputs" / name)
            materialise(session, services.storage, actor, "model", repo_id, commit, workdir / "recorded")
        (workdir / "spec.json").write_text(json.dumps(spec.to_json(), indent=2))
        (workdir / "job.json").write_text(json.dumps(record.get("job", {})))
        threads = record.get("hardware", {}).get("torch_threads")
        env = {"OMP_NUM_THREADS": str(threads)} if threads and spec.recipe.num_threads is None else {}
        code = _run(LocalChild(workdir / "spec.json", workdir, env=env), on_event)
        result = json.loads((workdir / "result.json").read_text()) if (workdir / "result.json").is_file() else {}
        if code != 0 or result.get("status") != "succeeded":
            return Reproduction(repo_id, commit, "failed", error=result.get("error") or f"exit code {code}")
        now = json.loads((workdir / "output" / PROVENANCE).read_text())
        return _compare(repo_id, commit, record, now, workdir)
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(child: LocalChild, on_event: EventFn | None) -> int:
    try:
        while True:
            code = child.poll()
            for event in child.events():
                if on_event is not None:
                    on_event(event.kind, event.data)
            if code is not None:
                return code
            time.sleep(0.1)
    except BaseException:
        child.stop(5)
        raise


def _compare(repo_id: str, commit: str, record: dict[str, Any], now: dict[str, Any], workdir: Path) -> Reproduction:
    recorded_files: dict[str, Any] = record.get("outputs", {})
    new_files: dict[str, Any] = now.get("outputs", {})
    report = Reproduction(repo_id, commit, "identical", recorded_metrics=record.get("metrics", {}),
                          metrics=now.get("metrics", {}))
    for path in sorted(set(recorded_files) | set(new_files)):
        if path not in new_files:
            report.files[path] = "missing"
        elif path not in recorded_files:
            report.files[path] = "extra"
        else:
            same = recorded_files[path]["sha256"] == new_files[path]["sha256"]
            report.files[path] = "identical" if same else "different"
    if all(s == "identical" for s in report.files.values()):
        return report
    report.reasons = environment_differences(record, now) or ["same recorded environment, yet the outputs differ"]
    tensors = _compare_tensors(workdir / "recorded", workdir / "output")
    for path, info in tensors.items():
        if report.files.get(path) == "different" and info.get("close"):
            report.files[path] = "close"
        report.max_abs_diff = max(report.max_abs_diff, float(info.get("max_abs_diff", 0.0)))
    tolerable = all(status in ("identical", "close") or (status == "different" and path in DERIVED)
                    for path, status in report.files.items())
    report.verdict = "within-tolerance" if tolerable else "differs"
    return report


def _compare_tensors(recorded: Path, new: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "commons.ml.compare", str(recorded), str(new)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {}
    loaded: dict[str, Any] = json.loads(out.stdout)
    return loaded
