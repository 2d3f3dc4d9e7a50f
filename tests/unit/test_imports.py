"""The server must start without ML libraries: importing the app pulls in no torch."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "peft", "datasets", "safetensors", "numpy", "gguf", "pyarrow")


def test_app_imports_no_ml_libraries() -> None:
    code = (
        "import sys\n"
        "import commons.app, commons.cli, commons.cli.serve\n"
        "from commons.app import create_app\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
