"""Browse benchmark: the weights inspector and the dataset viewer against reading the whole file.

    .venv/bin/python bench/browse.py [--gb 2.2] [--rows 1000000] [--reps 5] [--tmpdir DIR]

Starts a full Commons server (`python -m commons serve`, upload policy `lfs`, blob server on, in a
temporary COMMONS_HOME; `transfer.py`'s recipe) and puts two files in it:

- `bench/weights`: `model.safetensors`, the header of TinyLlama-1.1B (201 BF16 tensors, 2.2 GB)
  followed by a sparse data section (`truncate`: valid, instant, and no disk space). It is placed
  in the blob store through the hub's storage API (`BlobStore.adopt` + the object rows the LFS
  verify step writes), then committed with `HfApi.upload_file`: the client hashes the file, the LFS
  batch answers that the repo already holds the object, and the commit references it;
- `bench/rows` (a dataset): `data/train.parquet`, 1,000,000 rows (id, prompt, response, score,
  tags), written with pyarrow's defaults and uploaded with `HfApi.upload_file` (LFS).

Then, rep by rep, interleaved, it times over HTTP (httpx, one request each, status and content
checked) the inspector page, the dataset viewer's first page (Viewer tab and file page), a page in
the middle, and a plain file-list page of each repo (the floor any page costs here); and the
anchors: sha256 of each whole file and, for the Parquet file, `pyarrow.parquet.read_table` of it.
Ratio = anchor / page time (median of per-rep ratios): how many times faster than reading the
file the page answers. The "read" column is what the page itself reports having read. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import Commons

USER = "bench"
WEIGHTS = f"{USER}/weights"
ROWS = f"{USER}/rows"


# ----------------------------------------------------------------------------- test data
def tinyllama_tensors(layers: int = 22, hidden: int = 2048, inter: int = 5632, vocab: int = 32000,
                      kv: int = 256) -> dict[str, list[int]]:
    shapes = {"model.embed_tokens.weight": [vocab, hidden], "lm_head.weight": [vocab, hidden],
              "model.norm.weight": [hidden]}
    for i in range(layers):
        p = f"model.layers.{i}"
        shapes.update({f"{p}.input_layernorm.weight": [hidden], f"{p}.post_attention_layernorm.weight": [hidden],
                       f"{p}.self_attn.q_proj.weight": [hidden, hidden], f"{p}.self_attn.k_proj.weight": [kv, hidden],
                       f"{p}.self_attn.v_proj.weight": [kv, hidden], f"{p}.self_attn.o_proj.weight": [hidden, hidden],
                       f"{p}.mlp.gate_proj.weight": [inter, hidden], f"{p}.mlp.up_proj.weight": [inter, hidden],
                       f"{p}.mlp.down_proj.weight": [hidden, inter]})
    return shapes


def make_safetensors(path: Path, scale: float) -> tuple[int, int]:
    """A valid safetensors file whose data section is a hole; (size, parameters)."""
    shapes = tinyllama_tensors()
    if scale != 1.0:  # --gb other than TinyLlama's size: more or fewer layers
        shapes = tinyllama_tensors(layers=max(1, round(22 * scale)))
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = params = 0
    for name, shape in shapes.items():
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + 2 * n]}
        offset += 2 * n
        params += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + offset)
    return 8 + len(raw) + offset, params


def make_parquet(path: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = pa.array(range(rows), pa.int64())
    prompts = pa.array([f"Question {i}: what is {i % 1000} times {i % 37}?" for i in range(rows)])
    responses = pa.array([f"{(i % 1000) * (i % 37)}. To multiply {i % 1000} by {i % 37}, add {i % 1000} "
                          f"to itself {i % 37} times." for i in range(rows)])
    scores = pa.array([(i % 101) / 100 for i in range(rows)], pa.float64())
    tags = pa.array([["math", "easy" if i % 37 < 10 else "hard"] for i in range(rows)])
    pq.write_table(pa.table({"id": ids, "prompt": prompts, "response": responses, "score": scores, "tags": tags}),
                   path)


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def place_object(server: Commons, repo_id: str, path: Path, sha256: str, size: int) -> None:
    """Put `path` in the hub's blob store as an object `repo_id` holds (what a verified LFS upload leaves)."""
    from commons.config import Settings
    from commons.db.models import LfsObject, Repo, RepoObject
    from commons.hub.ids import RepoRef, RepoType
    from commons.hub.repos import Repos
    from commons.services import build_services

    services = build_services(Settings(home=server.home))
    try:
        staged = services.storage.blobs.staging_path()
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, staged)  # copies the hole as a hole on Linux (copy_file_range)
        services.storage.blobs.adopt(staged, sha256, size)
        with services.session() as session:
            repo = Repos(session, services.storage).find(RepoRef.parse(RepoType.MODEL, repo_id))
            assert isinstance(repo, Repo)
            if session.get(LfsObject, sha256) is None:
                session.add(LfsObject(sha256=sha256, size=size))
                session.flush()
            session.add(RepoObject(repo_id=repo.id, sha256=sha256))
    finally:
        services.close()


# ----------------------------------------------------------------------------- measurement
def timed_get(url: str, must_contain: str) -> tuple[float, str]:
    import httpx

    start = time.perf_counter()
    r = httpx.get(url, timeout=120)
    elapsed = time.perf_counter() - start
    if r.status_code != 200 or must_contain not in r.text:
        raise RuntimeError(f"GET {url}: {r.status_code}, expected {must_contain!r}: {r.text[-1500:]}")
    found = re.search(r"read ([0-9.]+ [kMG]?B) of ([0-9.]+ [kMG]?B)", r.text)
    return elapsed, f"{found.group(1)} of {found.group(2)}" if found else ""


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gb", type=float, default=2.2, help="size of the safetensors file (TinyLlama-1.1B: 2.2)")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tmpdir", default=None)
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="commons-browse-bench-", dir=args.tmpdir))
    server: Commons | None = None
    try:
        weights, table = root / "model.safetensors", root / "train.parquet"
        size, params = make_safetensors(weights, args.gb / 2.2)
        t0 = time.perf_counter()
        make_parquet(table, args.rows)
        print(f"files: {weights.name} {size / 1e9:.2f} GB ({params:,} parameters, sparse); {table.name} "
              f"{table.stat().st_size / 1e6:.1f} MB ({args.rows:,} rows, made in {time.perf_counter() - t0:.1f} s)",
              file=sys.stderr)

        server = Commons(root / "home")
        server.provision(USER)
        server.start()
        os.environ.update({"HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                           "HF_HOME": str(root / "hf")})
        from huggingface_hub import HfApi

        api = HfApi(endpoint=server.url, token=server.token)
        api.create_repo(WEIGHTS)
        place_object(server, WEIGHTS, weights, sha256_file(weights), size)
        api.upload_file(path_or_fileobj=str(weights), path_in_repo="model.safetensors", repo_id=WEIGHTS)
        api.create_repo(ROWS, repo_type="dataset")
        api.upload_file(path_or_fileobj=str(table), path_in_repo="data/train.parquet", repo_id=ROWS,
                        repo_type="dataset")

        base = server.url
        params_text = f"{params:,} parameters"
        rows_text = f"{args.rows:,} rows"
        pages: dict[str, tuple[str, str]] = {
            # What any repo page costs here (no inspector, no viewer): the floor under the rows below.
            "baseline: /tree/main of the weights repo": (f"{base}/{WEIGHTS}/tree/main", "model.safetensors"),
            "baseline: /tree/main/data of the dataset": (f"{base}/datasets/{ROWS}/tree/main/data", "train.parquet"),
            "inspector: /blob/main/model.safetensors": (f"{base}/{WEIGHTS}/blob/main/model.safetensors", params_text),
            "viewer tab, first page": (f"{base}/datasets/{ROWS}/viewer", rows_text),
            "file page, first page": (f"{base}/datasets/{ROWS}/blob/main/data/train.parquet", rows_text),
            "viewer, page at row 500,000": (f"{base}/datasets/{ROWS}/viewer?file=data/train.parquet&offset=500000",
                                            "500,000"),
        }
        import pyarrow.parquet as pq

        anchors: dict[str, Callable[[], object]] = {
            "sha256 of model.safetensors": lambda: sha256_file(weights),
            "sha256 of train.parquet": lambda: sha256_file(table),
            "pyarrow read_table(train.parquet)": lambda: pq.read_table(table),
        }
        for url, text in pages.values():  # warm-up: imports, caches, first connections
            timed_get(url, text)
        times: dict[str, list[float]] = {k: [] for k in [*pages, *anchors]}
        read: dict[str, str] = {}
        for rep in range(args.reps):
            for label, fn in anchors.items():
                times[label].append(timed(fn))
            for label, (url, text) in pages.items():
                elapsed, read[label] = timed_get(url, text)
                times[label].append(elapsed)
            print(f"rep {rep + 1}/{args.reps}: " + ", ".join(f"{k.split(':')[0]} {v[-1] * 1e3:.0f} ms"
                                                         for k, v in times.items()), file=sys.stderr)

        def ratio(anchor: str, page: str) -> float:
            return statistics.median(a / p for a, p in zip(times[anchor], times[page], strict=True))

        print(f"\n{'row':<42} {'median':>10} {'min-max (ms)':>16}  {'page read':<22} {'anchor / page':>14}")
        anchor_of = {"inspector: /blob/main/model.safetensors": "sha256 of model.safetensors"}
        for label in [*anchors, *pages]:
            t = times[label]
            line = (f"{label:<42} {statistics.median(t) * 1e3:>8.1f}ms {min(t) * 1e3:>7.1f}-{max(t) * 1e3:<8.1f}"
                    f"  {read.get(label, ''):<22}")
            if label in pages and not label.startswith("baseline"):
                anchor = anchor_of.get(label, "sha256 of train.parquet")
                line += f" {ratio(anchor, label):>8.1f}x vs {anchor}"
                if anchor != "sha256 of model.safetensors":
                    line += f", {ratio('pyarrow read_table(train.parquet)', label):.1f}x vs read_table"
            print(line)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
