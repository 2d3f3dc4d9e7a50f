"""Compare the safetensors files of two output directories tensor by tensor.

    python -m commons.ml.compare recorded_dir new_dir     -> JSON report on stdout

Used by `commons jobs reproduce` when outputs are not bit-identical, to tell "within float
tolerance" from "different". A tensor is close when `torch.allclose(new, recorded, rtol, atol)`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RTOL = 1e-3
ATOL = 1e-5


def compare_tensors(recorded: Path, new: Path, rtol: float = RTOL, atol: float = ATOL) -> dict[str, Any]:
    from safetensors.torch import load_file

    a, b = load_file(str(recorded)), load_file(str(new))
    report: dict[str, Any] = {"missing": sorted(set(a) - set(b)), "extra": sorted(set(b) - set(a)), "tensors": {}}
    worst = 0.0
    close = not report["missing"] and not report["extra"]
    for name in sorted(set(a) & set(b)):
        x, y = a[name].double(), b[name].double()
        if x.shape != y.shape:
            report["tensors"][name] = {"shape": [list(x.shape), list(y.shape)], "close": False}
            close = False
            continue
        diff = float((x - y).abs().max()) if x.numel() else 0.0
        ok = bool(x.numel() == 0 or x.allclose(y, rtol=rtol, atol=atol))
        worst = max(worst, diff)
        close = close and ok
        report["tensors"][name] = {"max_abs_diff": diff, "close": ok}
    report |= {"max_abs_diff": worst, "close": close, "rtol": rtol, "atol": atol}
    return report


def compare_dirs(recorded: Path, new: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in sorted(recorded.rglob("*.safetensors")):
        rel = path.relative_to(recorded).as_posix()
        other = new / rel
        out[rel] = compare_tensors(path, other) if other.is_file() else {"close": False, "missing": True}
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m commons.ml.compare recorded_dir new_dir", file=sys.stderr)
        return 64
    print(json.dumps(compare_dirs(Path(args[0]), Path(args[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
