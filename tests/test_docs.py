"""The docs cover what exists: every setting and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

from commons.cli import app
from commons.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"COMMONS_{name.upper()}" in text, name


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    for name in names:
        assert f"commons {name}" in readme, name


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["scripts/run", "scripts/test"]
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("exec scripts/test")
