"""Scanning cost on commit: `scan_file` against the sha256 every upload already computes.

    .venv/bin/python bench/scan.py [--size-mib 1024] [--reps 5] [--tmpdir DIR] [--torch]

Writes a safetensors file of the given size (a realistic header: 290 BF16 tensors, like a 1B
model), then times, rep by rep, `scan_file` on it and `hashlib.file_digest(sha256)` of the same
file (the upload verification). Goal: scanning adds only a few percent to a commit; since only
the 8-byte length and the JSON header are read, it should be ~0. `--torch` adds the same rows for
a `torch.save` zip of the same size (the scanner reads the zip directory and `data.pkl` only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from commons.scanning import read_safetensors_header, scan_file

CHUNK = 16 << 20


def write_safetensors(path: Path, size: int, n_tensors: int = 290) -> None:
    per = (size // n_tensors) // 2 * 2  # BF16 elements are 2 bytes
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    for i in range(n_tensors):
        header[f"model.layers.{i // 10}.mlp.proj_{i % 10}.weight"] = {
            "dtype": "BF16", "shape": [per // 2], "data_offsets": [i * per, (i + 1) * per],
        }  # fmt: skip
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    zeros = bytes(CHUNK)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        left = per * n_tensors
        while left:
            left -= fh.write(zeros[: min(CHUNK, left)])


def write_torch(path: Path, size: int) -> None:
    import torch

    n = 64
    torch.save({f"layer.{i}.weight": torch.zeros(size // n // 2, dtype=torch.bfloat16) for i in range(n)}, path)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(path: Path, reps: int) -> tuple[float, float]:
    size = path.stat().st_size

    def scan() -> None:
        with path.open("rb") as fh:
            result = scan_file(path.name, fh, size)
        assert result is not None and result.ok, result

    def sha() -> None:
        with path.open("rb") as fh:
            hashlib.file_digest(fh, "sha256")

    sha()  # warm the page cache so both sides read from memory
    scans, shas = [], []
    for _ in range(reps):  # interleaved, so machine noise hits both alike
        scans.append(timed(scan))
        shas.append(timed(sha))
    return statistics.median(scans), statistics.median(shas)


def report(label: str, path: Path, reps: int) -> None:
    scan_s, sha_s = bench(path, reps)
    size = path.stat().st_size
    print(f"{label}: {size / 2**30:.2f} GiB")
    print(f"  scan_file      {scan_s * 1e3:10.3f} ms")
    print(f"  sha256         {sha_s * 1e3:10.3f} ms  ({size / sha_s / 1e6:.0f} MB/s)")
    print(f"  scan / sha256  {scan_s / sha_s * 100:10.4f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--tmpdir", default=None)
    parser.add_argument("--torch", action="store_true", help="also a torch.save zip of the same size")
    args = parser.parse_args()
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory(dir=args.tmpdir, prefix="commons-bench-scan-") as tmp:
        st = Path(tmp) / "model.safetensors"
        write_safetensors(st, size)
        with st.open("rb") as fh:
            header = read_safetensors_header(fh)
        print(f"safetensors header: {header.header_size} bytes, {len(header.tensors)} tensors")
        report("safetensors", st, args.reps)
        st.unlink()
        if args.torch:
            pt = Path(tmp) / "pytorch_model.bin"
            write_torch(pt, size)
            report("torch.save zip", pt, args.reps)


if __name__ == "__main__":
    main()
