"""Benchmark folders become dataset repo directories: data byte for byte, a card from PROVENANCE.md, tasks."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from commons.evals.importer import TASK_FILE, build_dataset_dir, parse_provenance
from commons.ml.eval.tasks import build_items, load_docs, load_tasks
from tests.hubserver import HubServer

# The benchmark folders of the evaluation research note (outside the repo; tests that need them skip).
SHARED_DATA = Path(os.environ.get("COMMONS_EVAL_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
FOLDERS = sorted(p.name for p in SHARED_DATA.iterdir() if p.is_dir()) if SHARED_DATA.is_dir() else []

PROVENANCE = """# My quiz (Doe et al., 2031)

## Source
- repo `doe/quiz`, path `data/quiz.csv`, commit `0123456789abcdef0123456789abcdef01234567`, git blob `abc`

## License
CC BY 4.0 (repo LICENSE).

## Intended metric
Accuracy.
"""


QUIZ_CSV = "question,a,b,answer\nSky?,blue,green,0\nSnow?,black,white,1\n"
QUIZ_TASK = """\
name: quiz
type: multiple_choice
data: {files: [quiz.csv]}
text: "{{question}}"
choices: ["{{a}}", "{{b}}"]
target: answer
"""


def _front_matter(readme: str) -> dict[str, object]:
    match = re.match(r"^---\n(.*?)\n---\n", readme, re.DOTALL)
    assert match, "README.md has no YAML front matter"
    loaded = yaml.safe_load(match.group(1))
    assert isinstance(loaded, dict)
    return loaded


def test_parse_provenance() -> None:
    prov = parse_provenance(PROVENANCE)
    assert prov.title == "My quiz (Doe et al., 2031)"
    assert prov.license_id == "cc-by-4.0"
    assert prov.sources == ({"repo": "doe/quiz", "path": "data/quiz.csv",
                             "commit": "0123456789abcdef0123456789abcdef01234567", "blob": "abc"},)
    assert prov.sections["Intended metric"] == "Accuracy."


def test_user_folder_with_its_own_task_file(tmp_path: Path) -> None:
    src = tmp_path / "quiz"
    src.mkdir()
    (src / "PROVENANCE.md").write_text(PROVENANCE)
    (src / "quiz.csv").write_text("question,a,b,answer\nSky?,blue,green,0\n")
    (src / TASK_FILE).write_text(yaml.safe_dump({
        "name": "quiz", "type": "multiple_choice", "data": {"files": ["quiz.csv"]},
        "text": "{{question}}", "choices": ["{{a}}", "{{b}}"], "target": "answer"}))
    report = build_dataset_dir(src, tmp_path / "out")
    assert report.tasks == ("quiz",) and report.license_id == "cc-by-4.0" and report.files == ("quiz.csv",)
    meta = _front_matter((tmp_path / "out" / "README.md").read_text())
    assert meta["license"] == "cc-by-4.0"
    assert meta["configs"] == [{"config_name": "quiz", "data_files": [{"split": "test", "path": "quiz.csv"}],
                                "default": True}]
    [task] = load_tasks(tmp_path / "out" / TASK_FILE)
    assert len(build_items(task, load_docs(task, tmp_path / "out"))) == 1


def test_folder_without_provenance_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n")
    with pytest.raises(FileNotFoundError, match="PROVENANCE"):
        build_dataset_dir(tmp_path, tmp_path / "out")


@pytest.mark.skipif(not FOLDERS, reason="needs ../shared/data")
@pytest.mark.parametrize("folder", FOLDERS)
def test_every_shared_folder_imports(folder: str, tmp_path: Path) -> None:
    src = SHARED_DATA / folder
    out = tmp_path / folder
    report = build_dataset_dir(src, out)
    assert report.tasks, "every shared dataset has a built-in task"
    assert report.license_id != "other" or folder == "tinyshakespeare"  # public-domain text
    # Data files are copied byte for byte, PROVENANCE.md included.
    for path in src.rglob("*"):
        if path.is_file():
            assert (out / path.relative_to(src)).read_bytes() == path.read_bytes()
    meta = _front_matter((out / "README.md").read_text())
    assert meta["license"] == report.license_id
    assert meta["source_repositories"]  # from PROVENANCE's Source section
    assert meta["commons_tasks"] == list(report.tasks)
    # The task file runs against the imported directory.
    tasks = load_tasks(out / TASK_FILE)
    assert tuple(t.name for t in tasks) == report.tasks
    for task in tasks:
        assert build_items(task, load_docs(task, out))


@pytest.mark.skipif(not FOLDERS, reason="needs ../shared/data")
def test_imported_csv_loads_with_datasets(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    build_dataset_dir(SHARED_DATA / "xstest", tmp_path / "xstest")
    ds = datasets.load_dataset(str(tmp_path / "xstest"), split="test", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == 324 and "prompt" in ds.column_names


def test_cli_imports_into_the_hub_idempotently(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`commons evals import` writes into the running hub's data; a client downloads what was imported."""
    from huggingface_hub import snapshot_download
    from typer.testing import CliRunner

    from commons.cli import app

    src = tmp_path / "quiz"
    src.mkdir()
    (src / "PROVENANCE.md").write_text(PROVENANCE)
    (src / "quiz.csv").write_text(QUIZ_CSV)
    (src / TASK_FILE).write_text(QUIZ_TASK)
    for key, value in hub.env().items():
        if key.startswith("COMMONS_"):
            monkeypatch.setenv(key, value)
    cli = CliRunner()
    first = cli.invoke(app, ["evals", "import", str(src), "--namespace", "alice", "--name", "quiz-bench"])
    assert first.exit_code == 0, first.output
    assert "alice/quiz-bench@" in first.output and "imported" in first.output and "cc-by-4.0" in first.output
    sha = first.output.split("@", 1)[1].split()[0]
    again = cli.invoke(app, ["evals", "import", str(src), "--namespace", "alice", "--name", "quiz-bench"])
    assert again.exit_code == 0 and f"@{sha}  unchanged" in again.output  # same data, same commit

    api = hub.api("alice")
    assert api.dataset_info("alice/quiz-bench").sha == sha
    local = Path(snapshot_download("alice/quiz-bench", repo_type="dataset", revision=sha,
                                   endpoint=hub.url, token=hub.alice_token, cache_dir=str(tmp_path / "cache")))
    assert (local / "quiz.csv").read_bytes() == (src / "quiz.csv").read_bytes()
    assert (local / "PROVENANCE.md").read_bytes() == (src / "PROVENANCE.md").read_bytes()
    meta = _front_matter((local / "README.md").read_text())
    assert meta["license"] == "cc-by-4.0" and meta["commons_tasks"] == ["quiz"]
    assert meta["source_repositories"][0]["repo"] == "doe/quiz"  # type: ignore[index]
    [task] = load_tasks(local / TASK_FILE)
    assert [it.targets for it in build_items(task, load_docs(task, local))] == [(0,), (1,)]

    # A changed file makes a new commit; errors are one line.
    (src / "quiz.csv").write_text(QUIZ_CSV + "Grass?,red,green,1\n")
    changed = cli.invoke(app, ["evals", "import", str(src), "--namespace", "alice", "--name", "quiz-bench"])
    assert changed.exit_code == 0 and "imported" in changed.output and sha not in changed.output
    missing = cli.invoke(app, ["evals", "import", str(src), "--namespace", "nobody"])
    assert missing.exit_code == 1 and "No user named 'nobody'" in missing.output
    listed = cli.invoke(app, ["evals", "tasks"])
    assert listed.exit_code == 0 and "hellaswag" in listed.output and "xstest_safe" in listed.output
