"""provenance.json: what a job ran, on what, with what, and what came out (to the byte)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

FILE = "provenance.json"
VERSION = 1
LIBRARIES = ("commons", "torch", "transformers", "peft", "safetensors", "tokenizers", "datasets", "accelerate",
             "numpy", "matplotlib")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "device": device,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()  # type: ignore[no-untyped-call]
    return info


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def output_hashes(out_dir: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file under `out_dir` except provenance.json itself."""
    return {
        p.relative_to(out_dir).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size}
        for p in sorted(out_dir.rglob("*"))
        if p.is_file() and p.relative_to(out_dir).as_posix() != FILE
    }


def write_provenance(out_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Add output hashes and the environment to `record`, write it, return it."""
    full = {
        "provenance_version": VERSION,
        **record,
        "libraries": library_versions(),
        "outputs": output_hashes(out_dir),
    }
    (out_dir / FILE).write_text(json.dumps(full, indent=2, sort_keys=False) + "\n")
    return full
