"""How `reproduce` judges outputs that are not bit-identical (the rerun itself is in test_e2e.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from commons.jobs.reproduce import _compare, environment_differences
from commons.ml.provenance import output_hashes

torch = pytest.importorskip("torch")


def _outputs(folder: Path, weight: Any, card: str) -> dict[str, Any]:
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    save_file({"lora_A": weight}, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text('{"r": 8}')
    (folder / "README.md").write_text(card)
    return output_hashes(folder)


def _record(outputs: dict[str, Any], torch_version: str = "2.13.0+cpu") -> dict[str, Any]:
    return {"outputs": outputs, "libraries": {"torch": torch_version}, "hardware": {"device": "cpu", "cpu": "x"},
            "metrics": {"train_loss_after": 1.0}}


@pytest.mark.parametrize(("delta", "card", "verdict"), [
    (0.0, "loss 1.0000", "identical"),
    (1e-8, "loss 1.0001", "within-tolerance"),
    (1e-2, "loss 1.2000", "differs"),
])
def test_verdicts(tmp_path: Path, delta: float, card: str, verdict: str) -> None:
    weight = torch.linspace(-1, 1, 64).reshape(8, 8)
    recorded = _outputs(tmp_path / "recorded", weight, "loss 1.0000")
    now = _outputs(tmp_path / "output", weight + delta, card)
    report = _compare("alice/m", "c" * 40, _record(recorded), _record(now, "2.14.0"), tmp_path)
    assert report.verdict == verdict, report.summary()
    if verdict != "identical":
        assert "torch 2.13.0+cpu was used, now 2.14.0" in report.reasons
        assert report.files["adapter_config.json"] == "identical" and report.files["README.md"] == "different"
        assert 0 < report.max_abs_diff <= 2 * delta  # float32 rounding of the shift


def test_environment_differences() -> None:
    then = {"libraries": {"peft": "0.21.2"}, "hardware": {"device": "cuda", "gpu": "H100", "torch_threads": 8}}
    now = {"libraries": {"peft": "0.21.2"}, "hardware": {"device": "cpu", "gpu": None, "torch_threads": 2}}
    reasons = environment_differences(then, now)
    assert "hardware device: cuda then, cpu now" in reasons and "hardware torch_threads: 8 then, 2 now" in reasons
    assert any("GPU" in r for r in reasons) and not any("peft" in r for r in reasons)
