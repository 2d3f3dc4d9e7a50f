"""License benchmark: what the License panel, the Lineage & license tab and the license API cost.

    .venv/bin/python bench/license.py [--depth 8] [--mb 64] [--reps 5] [--tmpdir DIR]

Starts a full Commons server (`transfer.py`'s recipe) and builds two families in it:

- a chain of `--depth` fine-tunes, each declaring its parent (`base_model`) and two datasets; the
  root is `llama3.1`, one dataset is `cc-by-nc-4.0`, the leaf also names a model outside this hub
  it was distilled from: every page of the leaf walks `depth + 2 * depth + 1` repos;
- `bench/weights-parent` and `bench/weights-child`, each a `model.safetensors` of `--mb` MB of
  random float32 tensors; the child changes half of them. The child's lineage compares its tensors
  with the parent's: names and shapes from the headers, then the bytes of same-shaped tensors (at
  most `HASH_BUDGET` bytes, 64 MiB), once per commit pair and then from the cache.

Rep by rep, interleaved, it times over HTTP (httpx, one request each, status and content checked)
the leaf's file list (`/tree/main`: what any repo page costs here, the anchor), its card page (with
the License panel), its Lineage & license tab, `GET /api/commons/license/...`, and the weights
child's card page. Ratio = page / anchor (median of per-rep ratios). The first view of the weights
child (tensor bytes hashed, not yet cached) is timed once, before the reps. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import Commons

USER = "bench"


def card(**fields: object) -> bytes:
    return ("---\n" + json.dumps(fields) + "\n---\n# bench\n").encode()  # JSON is YAML


def weights(path: Path, mb: int, seed: int, changed: int = 0) -> None:
    """`mb` MB of float32 tensors (1 MiB each, [512, 512]); the first `changed` ones drawn from another seed."""
    import numpy as np
    from safetensors.numpy import save_file

    rng, other = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    tensors = {}
    for i in range(mb):
        values = rng.standard_normal((512, 512), dtype=np.float32)
        tensors[f"model.layers.{i}.weight"] = other.standard_normal((512, 512), dtype=np.float32) if i < changed \
            else values
    save_file(tensors, str(path))


def timed_get(url: str, must_contain: str) -> float:
    import httpx

    start = time.perf_counter()
    r = httpx.get(url, timeout=300)
    elapsed = time.perf_counter() - start
    if r.status_code != 200 or must_contain not in r.text:
        raise RuntimeError(f"GET {url}: {r.status_code}, expected {must_contain!r}: {r.text[-1500:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--depth", type=int, default=8, help="fine-tunes in the chain")
    ap.add_argument("--mb", type=int, default=64, help="size of each safetensors file in MB")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tmpdir", default=None)
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="commons-license-bench-", dir=args.tmpdir))
    server: Commons | None = None
    try:
        server = Commons(root / "home")
        server.provision(USER)
        server.start()
        os.environ.update({"HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                           "HF_HOME": str(root / "hf")})
        from huggingface_hub import CommitOperationAdd, HfApi

        api = HfApi(endpoint=server.url, token=server.token)
        parent = f"{USER}/Llama-gen-0"
        api.create_repo(parent)
        api.upload_file(path_or_fileobj=card(license="llama3.1"), path_in_repo="README.md", repo_id=parent)
        for i in range(1, args.depth + 1):
            data = [f"{USER}/data-{i}-{k}" for k in range(2)]
            for k, ds in enumerate(data):
                api.create_repo(ds, repo_type="dataset")
                lic = "cc-by-nc-4.0" if (i, k) == (3, 0) else "cc-by-4.0"
                api.upload_file(path_or_fileobj=card(license=lic), path_in_repo="README.md", repo_id=ds,
                                repo_type="dataset")
            repo = f"{USER}/Llama-gen-{i}"
            extra = {"trained_on_outputs_of": ["elsewhere/teacher"]} if i == args.depth else {}
            api.create_repo(repo)
            api.upload_file(path_or_fileobj=card(license="llama3.1", base_model=parent, base_model_relation="finetune",
                                                 datasets=data, **extra), path_in_repo="README.md", repo_id=repo)
            parent = repo
        leaf = parent

        files = {"parent": root / "parent.safetensors", "child": root / "child.safetensors"}
        weights(files["parent"], args.mb, seed=1)
        weights(files["child"], args.mb, seed=1, changed=args.mb // 2)
        for name, base in (("parent", None), ("child", f"{USER}/weights-parent")):
            repo = f"{USER}/weights-{name}"
            api.create_repo(repo)
            fields = {"license": "apache-2.0", **({"base_model": base, "base_model_relation": "finetune"}
                                                  if base else {})}
            api.create_commit(repo, [CommitOperationAdd("README.md", card(**fields)),
                                     CommitOperationAdd("model.safetensors", str(files[name]))], commit_message="up")

        base = server.url
        first_view = timed_get(f"{base}/{USER}/weights-child", "license-panel")
        pages: dict[str, tuple[str, str]] = {
            "anchor: /tree/main of the leaf": (f"{base}/{leaf}/tree/main", "README.md"),
            "card page of the leaf (License panel)": (f"{base}/{leaf}", "license-panel"),
            "Lineage & license tab of the leaf": (f"{base}/{leaf}/license", "lineage-graph"),
            "GET /api/commons/license/... (leaf)": (f"{base}/api/commons/license/models/{leaf}", "decision"),
            "card page of weights-child (cached)": (f"{base}/{USER}/weights-child", "license-panel"),
        }
        for url, text in pages.values():  # warm-up: imports, templates, first connections
            timed_get(url, text)
        times: dict[str, list[float]] = {k: [] for k in pages}
        for rep in range(args.reps):
            for label, (url, text) in pages.items():
                times[label].append(timed_get(url, text))
            print(f"rep {rep + 1}/{args.reps}: " + ", ".join(f"{v[-1] * 1e3:.0f} ms" for v in times.values()),
                  file=sys.stderr)

        anchor = "anchor: /tree/main of the leaf"
        repos = 1 + 3 * args.depth + 1
        print(f"\nlineage of the leaf: {repos} repos; weights: 2 x {args.mb} MB, half the tensors changed")
        print(f"{'row':<42} {'median':>10} {'min-max (ms)':>16} {'page / anchor':>14}")
        for label, t in times.items():
            line = f"{label:<42} {statistics.median(t) * 1e3:>8.1f}ms {min(t) * 1e3:>7.1f}-{max(t) * 1e3:<8.1f}"
            if label != anchor:
                r = statistics.median(p / a for p, a in zip(t, times[anchor], strict=True))
                line += f" {r:>13.1f}x"
            print(line)
        print(f"{'card page of weights-child, first view':<42} {first_view * 1e3:>8.1f}ms (one sample: tensors "
              f"hashed, then cached)")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
