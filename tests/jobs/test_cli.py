"""`commons jobs ...` against the in-process hub's data directory (no worker: the job stays queued)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from commons.cli.jobs import app
from tests.jobs.conftest import LocalHub


@pytest.fixture
def cli(local_hub: LocalHub, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    settings = local_hub.services.settings
    monkeypatch.setenv("COMMONS_HOME", str(settings.home))
    monkeypatch.setenv("COMMONS_DATABASE_URL", settings.sqlalchemy_url)
    return CliRunner()


def test_submit_list_show_logs_cancel(cli: CliRunner, local_hub: LocalHub) -> None:
    out = cli.invoke(app, ["submit", "--base", f"alice/tiny@{local_hub.base[:40]}", "--dataset", "alice/data",
                           "--output", "alice/cli-out", "--set", "max_steps=3", "--set", "target_modules=q_proj,v_proj",
                           "--set", "prompt_format=chat", "--set", "learning_rate=1e-3"])
    assert out.exit_code == 0, out.output
    job_id = int(out.output.split()[1])

    listed = json.loads(cli.invoke(app, ["list", "--json", "--state", "queued"]).output)
    mine = next(j for j in listed if j["id"] == job_id)
    assert mine["owner"] == "alice" and mine["spec"]["recipe"]["target_modules"] == ["q_proj", "v_proj"]
    assert mine["spec"]["recipe"]["learning_rate"] == 1e-3 and mine["spec"]["recipe"]["max_steps"] == 3
    assert f"{job_id}  queued" in cli.invoke(app, ["list"]).output

    shown = cli.invoke(app, ["show", str(job_id)]).output
    assert f"alice/tiny@{local_hub.base}" in shown and "alice/cli-out" in shown and "queued" in shown
    assert "state queued" in cli.invoke(app, ["logs", str(job_id)]).output

    assert "cancelled" in cli.invoke(app, ["cancel", str(job_id)]).output
    followed = cli.invoke(app, ["show", str(job_id), "--follow"])
    assert followed.exit_code == 0 and f"job {job_id}: cancelled" in followed.output
    again = cli.invoke(app, ["cancel", str(job_id)])
    assert again.exit_code == 1 and "cannot become cancelled" in again.output


def test_submit_errors_are_one_line(cli: CliRunner) -> None:
    out = cli.invoke(app, ["submit", "--base", "alice/tiny", "--dataset", "alice/data", "--output", "nobody/x"])
    assert out.exit_code == 1 and "No user named 'nobody'" in out.output
    out = cli.invoke(app, ["submit", "--base", "alice/tiny", "--dataset", "alice/data", "--output", "alice/y",
                           "--set", "rank=0"])
    assert out.exit_code == 1 and "rank must be at least 1" in out.output
    assert cli.invoke(app, ["show", "999999"]).exit_code == 1


def test_show_lists_the_inputs_of_any_kind() -> None:
    from commons.cli.jobs import _inputs

    finetune = {"base": {"repo_id": "a/b", "revision": "1" * 40}, "dataset": {"repo_id": "a/d", "revision": "2" * 40},
                "recipe": {"rank": 8}, "output_repo": "a/out"}
    assert [n for n, _ in _inputs(finetune)] == ["base", "dataset"]
    evaluation = {"model": {"repo_id": "a/b", "revision": "1" * 40},
                  "tasks": [{"name": "piqa", "dataset": {"repo_id": "benchmarks/piqa", "revision": "3" * 40}}]}
    assert _inputs(evaluation) == [("model", evaluation["model"]), ("task:piqa", evaluation["tasks"][0]["dataset"])]
