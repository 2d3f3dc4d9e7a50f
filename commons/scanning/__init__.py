"""Malicious-file scanning for committed files: static, read-only, standard library only.

`scan_file` picks a scanner by magic bytes and extension and reads only what that scanner needs
(the safetensors/GGUF header, the pickle opcodes, a zip's central directory and `.pkl` members),
never the tensor data, so scanning a multi-GiB weights file costs about as much as its header.
Nothing here imports torch or numpy, nor the rest of `commons`.
"""

from __future__ import annotations

from typing import BinaryIO

from commons.scanning.allowlist import ALLOWED_IMPORTS, classify_import
from commons.scanning.findings import Finding, ScanResult, Severity
from commons.scanning.gguf import GgufError, GgufHeader, GgufTensor, read_gguf_header, scan_gguf
from commons.scanning.pickles import PickleLimits, scan_pickle, scan_pickle_bytes
from commons.scanning.safetensors import (
    SafetensorsError,
    SafetensorsHeader,
    SafetensorsTensor,
    read_safetensors_header,
    scan_safetensors,
)

__all__ = [
    "ALLOWED_IMPORTS",
    "PICKLE_EXTENSIONS",
    "Finding",
    "GgufError",
    "GgufHeader",
    "GgufTensor",
    "PickleLimits",
    "SafetensorsError",
    "SafetensorsHeader",
    "SafetensorsTensor",
    "ScanResult",
    "Severity",
    "classify_import",
    "read_gguf_header",
    "read_safetensors_header",
    "scan_file",
    "scan_gguf",
    "scan_pickle",
    "scan_pickle_bytes",
    "scan_safetensors",
]

#: Extensions loaded with pickle (torch.load, pickle.load, joblib.load) by the tools that use them.
PICKLE_EXTENSIONS = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".pck", ".pkl3"})


def _extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def scan_file(path_in_repo: str, fh: BinaryIO, size: int) -> ScanResult | None:
    """Scan one file of a commit; None when its type is not scanned (json, txt, images, ...).

    `fh` must be seekable and positioned anywhere; `size` is the file's length in bytes.
    """
    ext = _extension(path_in_repo)
    fh.seek(0)
    magic = fh.read(4)
    fh.seek(0)
    # Magic first: a GGUF named .bin is GGUF, and a pickle named anything is still unpickled by someone.
    if magic == b"GGUF":
        return scan_gguf(fh, size, path_in_repo)
    if ext == ".gguf":
        return scan_gguf(fh, size, path_in_repo)  # reports the bad magic
    if ext == ".safetensors":
        return scan_safetensors(fh, size, path_in_repo)
    if ext in PICKLE_EXTENSIONS or path_in_repo.lower().endswith((".pth.tar", ".pt.tar")):
        return scan_pickle(fh, size, path_in_repo)
    if len(magic) >= 2 and magic[0] == 0x80 and 2 <= magic[1] <= 5:
        return scan_pickle(fh, size, path_in_repo)  # unmistakably a pickle, whatever the name
    return None
