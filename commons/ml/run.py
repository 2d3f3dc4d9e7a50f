"""Child-process entry of every job: `python -m commons.ml.run spec.json workdir`.

Reads the spec, runs it, and leaves `workdir/result.json`:

    {"status": "succeeded", "metrics": {...}, "timing": {...}, "outputs": {path: {sha256, size}}}
    {"status": "failed", "error": "dataset alice/d has no column 'response' ...", "error_type": "input"}

Exit codes: 0 succeeded, 2 unusable input or spec (nothing was trained), 1 crash, 64 usage.
Progress goes to stdout as JSON lines (see `commons.ml.events`); everything else to stderr.
The process works offline and exits by itself if its parent (the worker) disappears.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_CRASH, EXIT_INPUT, EXIT_USAGE, EXIT_ORPHANED = 0, 1, 2, 64, 70


def _watch_parent(interval: float = 0.5) -> None:
    """Exit when the parent dies (re-parented): a worker killed with SIGKILL must not leave a trainer running."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _write_result(workdir: Path, result: dict[str, Any]) -> None:
    tmp = workdir / "result.json.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(workdir / "result.json")


# Each job kind's entry point, imported only when a job of that kind runs.
RUNNERS = {"finetune": "commons.ml.finetune:run_finetune", "eval": "commons.ml.eval_job:run_eval",
           "quantize": "commons.ml.quantize:run_quantize"}


def _runner(kind: str) -> Any:
    module, _, name = RUNNERS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m commons.ml.run spec.json workdir", file=sys.stderr)
        return EXIT_USAGE
    spec_path, workdir = Path(args[0]), Path(args[1])
    # Jobs never reach the network: their inputs are materialised in workdir by the caller.
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if os.environ.get("COMMONS_JOB_WATCH_PARENT", "1") == "1":
        _watch_parent()

    from commons.ml.checks import InputError
    from commons.ml.events import Reporter, open_protocol_stream
    from commons.ml.specs import SpecError, parse_spec

    reporter = Reporter(open_protocol_stream())
    try:
        raw = json.loads(spec_path.read_text())
        spec = parse_spec(str(raw.get("kind", "")), raw)
        job_file = workdir / "job.json"
        job = json.loads(job_file.read_text()) if job_file.is_file() else None
        result = _runner(spec.kind)(spec, workdir, reporter, job)
    except (SpecError, InputError) as exc:
        reporter.log(str(exc), "error")
        _write_result(workdir, {"status": "failed", "error": str(exc), "error_type": "input"})
        return EXIT_INPUT
    except BaseException as exc:  # any crash becomes a result the worker can show
        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}"
        reporter.log(message, "error")
        _write_result(workdir, {"status": "failed", "error": message, "error_type": "crash"})
        return EXIT_CRASH
    _write_result(workdir, {"status": "succeeded", **result})
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
