"""Turn a folder of benchmark data (CSV/JSONL/JSON/text files + PROVENANCE.md) into a dataset repo.

The folder's files are copied byte for byte (the evaluation must read exactly what the source
published). Two files are added:

- `README.md`: a dataset card whose YAML front matter carries the license, the source
  repositories and commits, and `configs` so `datasets.load_dataset` reads the tabular files;
  the body quotes PROVENANCE.md's sections (source, license, split, intended metric, notes).
- `commons-task.yaml`: the evaluation task(s) over these files (`tasks: [...]`), taken from the
  built-in task definitions for known benchmarks, from a `commons-task.yaml` already in the
  folder, or from the caller. Without one the repo is still a valid dataset, just not runnable.

`build_dataset_dir` only writes a directory; `publish_dataset` commits it to the hub with
`commons.hub.publish.commit_directory`, as `commons import gguf` does for models.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from commons.ml.eval.tasks import BUILTIN_DIR, TaskError, task_from_dict

__all__ = [
    "TASK_FILE",
    "ImportReport",
    "Provenance",
    "build_dataset_dir",
    "dataset_card",
    "parse_provenance",
    "publish_dataset",
]

TASK_FILE = "commons-task.yaml"
PROVENANCE_FILE = "PROVENANCE.md"
DATA_SUFFIXES = {".csv", ".jsonl", ".json", ".txt", ".tokens", ".lst", ".dev", ".test", ".tsv", ".parquet"}

# License wording in PROVENANCE files -> the Hub's license ids.
_LICENSES: tuple[tuple[str, str], ...] = (
    ("cc by-sa 4.0", "cc-by-sa-4.0"), ("cc-by-sa-4.0", "cc-by-sa-4.0"), ("cc by-sa 3.0", "cc-by-sa-3.0"),
    ("cc by 4.0", "cc-by-4.0"), ("cc-by-4.0", "cc-by-4.0"), ("apache-2.0", "apache-2.0"),
    ("apache 2.0", "apache-2.0"), ("academic free license", "afl-3.0"), ("afl-3.0", "afl-3.0"),
    ("public domain", "other"), ("mit", "mit"),
)


@dataclass(frozen=True)
class Provenance:
    """What a PROVENANCE.md says, by section."""

    title: str
    license_id: str
    """Hub license id (`other` when not recognised)."""
    license_text: str
    sources: tuple[Mapping[str, str], ...]
    """{repo, path, commit, blob} per source file."""
    sections: Mapping[str, str]
    """Every `## Section` body by its heading."""


@dataclass(frozen=True)
class ImportReport:
    name: str
    files: tuple[str, ...]
    """Data files copied (besides README.md, PROVENANCE.md and the task file)."""
    license_id: str
    tasks: tuple[str, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)


_SOURCE = re.compile(r"repo `(?P<repo>[^`]*)`, path `(?P<path>[^`]*)`, commit `(?P<commit>[^`]*)`"
                     r"(?:, git blob `(?P<blob>[^`]*)`)?")


def parse_provenance(text: str) -> Provenance:
    """Read the title, sections, sources and license out of a PROVENANCE.md."""
    title_match = re.search(r"^# (.+)$", text, re.MULTILINE)
    title = title_match.group(1).strip() if title_match else ""
    sections: dict[str, str] = {}
    for match in re.finditer(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL):
        sections[match.group(1).strip()] = match.group(2).strip()
    license_text = sections.get("License", "").strip()
    lowered = license_text.lower()
    license_id = next((hub_id for words, hub_id in _LICENSES if re.search(rf"\b{re.escape(words)}\b", lowered)),
                      "other")
    sources = tuple({k: v for k, v in m.groupdict().items() if v is not None}
                    for m in _SOURCE.finditer(sections.get("Source", "")))
    return Provenance(title, license_id, license_text, sources, sections)


def _builtin_tasks_for(name: str) -> list[dict[str, Any]]:
    """The built-in task definitions (raw YAML mappings) whose `dataset` is `name`."""
    found = []
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        entries = raw["tasks"] if isinstance(raw, dict) and "tasks" in raw else [raw]
        found += [e for e in entries if isinstance(e, dict) and e.get("dataset") == name]
    return found


def _configs(files: Sequence[str]) -> list[dict[str, Any]]:
    """`configs` for the card: one per tabular file, so `load_dataset(repo, name)` reads it."""
    configs: list[dict[str, Any]] = []
    for name in files:
        suffix = Path(name).suffix
        if suffix in (".csv", ".jsonl", ".parquet", ".tsv"):
            configs.append({"config_name": re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem),
                            "data_files": [{"split": "test", "path": name}]})
    if configs:
        configs[0]["default"] = True
    return configs


def dataset_card(name: str, provenance: Provenance, files: Sequence[str], tasks: Sequence[str]) -> str:
    """README.md for the dataset repo: front matter from PROVENANCE.md, then its sections."""
    meta: dict[str, Any] = {
        "license": provenance.license_id,
        "pretty_name": provenance.title or name,
        "tags": ["evaluation", "benchmark", "commons-eval"],
    }
    if provenance.license_id == "other":
        meta["license_name"] = provenance.license_text.split("\n")[0][:200] or "see PROVENANCE.md"
    if provenance.sources:
        meta["source_repositories"] = [dict(s) for s in provenance.sources]
    configs = _configs(files)
    if configs:
        meta["configs"] = configs
    if tasks:
        meta["commons_tasks"] = list(tasks)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    body = [f"# {provenance.title or name}", ""]
    body.append("Benchmark data imported as published (files copied byte for byte); "
                f"`{PROVENANCE_FILE}` records where each file came from.")
    if tasks:
        body.append(f"Evaluation tasks over these files are defined in `{TASK_FILE}`: {', '.join(tasks)}.")
    body.append("")
    for heading in ("Source", "License", "Format", "Split", "Intended metric", "Notes"):
        if provenance.sections.get(heading):
            body += [f"## {heading}", "", provenance.sections[heading], ""]
    body += ["## Files", ""] + [f"- `{f}`" for f in files] + [""]
    return f"---\n{front}---\n\n" + "\n".join(body)


def build_dataset_dir(
    src: Path,
    out: Path,
    *,
    name: str | None = None,
    tasks: Sequence[Mapping[str, Any]] | None = None,
) -> ImportReport:
    """Write the dataset repo for benchmark folder `src` into `out` (created; must not hold other files).

    `tasks`: task definitions (YAML mappings) to ship; default: a `commons-task.yaml` in `src`,
    else the built-in tasks for a dataset of this name. Every task is validated against the files.
    """
    name = name or src.name
    provenance_path = src / PROVENANCE_FILE
    if not provenance_path.is_file():
        raise FileNotFoundError(f"{src}: no {PROVENANCE_FILE} (where the data comes from and under which license)")
    provenance = parse_provenance(provenance_path.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    warnings: list[str] = []
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src).as_posix()
        if rel in ("README.md", TASK_FILE) or any(part.startswith(".") for part in Path(rel).parts):
            continue
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        if rel != PROVENANCE_FILE:
            files.append(rel)
            if path.suffix.lower() not in DATA_SUFFIXES and not re.search(r"\.txt\.\w+$", rel):
                warnings.append(f"{rel}: not a recognised data format")
    entries: Sequence[Mapping[str, Any]]
    if tasks is not None:
        entries = tasks
    else:
        own = src / TASK_FILE
        if own.is_file():
            raw = yaml.safe_load(own.read_text(encoding="utf-8"))
            entries = raw["tasks"] if isinstance(raw, dict) and "tasks" in raw else [raw]
        else:
            entries = _builtin_tasks_for(name)
    task_names = []
    for entry in entries:
        task = task_from_dict(entry)
        missing = [f for f in (*task.data.files, *filter(None, [task.data.label_file])) if f not in files]
        if missing:
            raise TaskError(f"task {task.name}: file(s) {', '.join(missing)} are not in {src}")
        task_names.append(task.name)
    if entries:
        text = yaml.safe_dump({"tasks": [dict(t) for t in entries]}, sort_keys=False, allow_unicode=True, width=1000)
        (out / TASK_FILE).write_text(text, encoding="utf-8")
    else:
        warnings.append(f"no task definition: add a {TASK_FILE} to make the dataset runnable")
    (out / "README.md").write_text(dataset_card(name, provenance, files, task_names), encoding="utf-8")
    return ImportReport(name, tuple(files), provenance.license_id, tuple(task_names), tuple(warnings))


def _same_as_head(git: Any, head: str, folder: Path) -> bool:
    """The head revision holds exactly the files of `folder`, byte for byte (then there is nothing to commit)."""
    from commons.hub.trees import list_files
    from commons.storage.digests import file_digests

    at_head = {i.path: i for i in list_files(git, head, recursive=True)
               if i.type == "file" and i.path != ".gitattributes"}
    local = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    if set(at_head) != set(local):
        return False
    for rel, path in local.items():
        sha256, git_sha1, _ = file_digests(path)
        info = at_head[rel]
        if (info.lfs.sha256 if info.lfs else info.oid) != (sha256 if info.lfs else git_sha1):
            return False
    return True


def publish_dataset(session: Any, storage: Any, actor: Any, repo_id: str, folder: Path, *,
                    private: bool = False, message: str | None = None) -> tuple[str, bool]:
    """Create the dataset repo if needed and commit `folder` (a build_dataset_dir output) as its main.

    Returns (commit id, whether a new commit was made): importing the same data again is a no-op,
    so the dataset's commit sha, which results are keyed by, stays the same.
    """
    from commons.hub.ids import RepoRef, RepoType
    from commons.hub.publish import commit_directory
    from commons.hub.repos import Need, Repos

    ref = RepoRef.parse(RepoType.DATASET, repo_id)
    repos = Repos(session, storage)
    repo = repos.find(ref) or repos.create(actor, ref, private=private)
    session.commit()
    repo = repos.get(actor, ref, Need.WRITE)
    git = repos.git(repo)
    head = git.resolve("main")
    if head is not None and _same_as_head(git, head, folder):
        return str(head), False
    result = commit_directory(session, storage, repo, git, actor, folder,
                              message or f"Import benchmark data {folder.name}", delete_missing=True)
    return str(result.oid), True
