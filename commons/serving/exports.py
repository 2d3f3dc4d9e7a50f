"""Names for the exports engines cache (ONNX models, GGUF files): what they were made from."""

from __future__ import annotations

import hashlib
from pathlib import Path


def source_key(model_dir: Path, *made_with: str) -> str:
    """A short digest of the directory's files (names, sizes, mtimes) and of how the export is made
    (type, library version): a changed source or recipe gets a new export, an unchanged one reuses it."""
    digest = hashlib.sha256("\n".join(made_with).encode() + b"\n")
    for path in sorted(model_dir.iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name} {stat.st_size} {int(stat.st_mtime)}\n".encode())
    return digest.hexdigest()[:16]
