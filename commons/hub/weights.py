"""Weights inspector: what a safetensors or GGUF file holds, read from its header alone.

The scanners' header readers (`commons.scanning`) parse and validate; this module turns their
result into the inspector's view (tensors, parameter counts by dtype, GGUF model facts) and counts
the bytes it read, so the page can say how little of a multi-GB file it needed. A sharded
checkpoint (`model.safetensors.index.json`) is summarised from its index and each shard's header.
"""

from __future__ import annotations

import io
import json
import posixpath
import struct
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from commons.hub.reading import CountingReader
from commons.scanning import (
    GgufError,
    GgufHeader,
    SafetensorsError,
    SafetensorsHeader,
    read_gguf_header,
    read_safetensors_header,
)
from commons.scanning.gguf import GgufArray, GgufLimits

INDEX_SUFFIX = ".safetensors.index.json"
MAX_INDEX_BYTES = 32 << 20  # an index of 100k tensors is a few MB
MAX_SHARDS = 256
# Page views parse headers on every request: bound what one view may cost (real headers are far
# smaller: a 100k-tensor safetensors header is ~10 MB, a GGUF with a 256k vocabulary ~6 MB).
MAX_SAFETENSORS_HEADER = 32 << 20
GGUF_LIMITS = GgufLimits(max_header=64 << 20, max_items=2_000_000)


class WeightsError(ValueError):
    """The file's header is not readable; the message says why (shown on the page)."""


@dataclass(frozen=True)
class TensorRow:
    """One tensor as the inspector lists it; `shape` in the file's own order."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    n_params: int
    n_bytes: int
    shard: str = ""


@dataclass(frozen=True)
class GgufFacts:
    """What a GGUF header says about the model besides its tensors."""

    architecture: str | None
    name: str | None
    context_length: int | None
    embedding_length: int | None
    block_count: int | None
    tokenizer: str | None
    vocab_size: int | None
    chat_template: bool
    file_type: int | None
    version: int
    alignment: int
    metadata_keys: int


@dataclass(frozen=True)
class ShardRow:
    path: str
    tensors: int
    present: bool
    n_params: int = 0
    error: str | None = None


@dataclass(frozen=True)
class WeightsSummary:
    """The inspector's view of one weights file (or a sharded checkpoint's index)."""

    format: str  # "safetensors" | "gguf" | "safetensors-index"
    tensors: tuple[TensorRow, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    gguf: GgufFacts | None = None
    shards: tuple[ShardRow, ...] = ()
    header_size: int = 0
    bytes_read: int = 0
    total_size: int | None = None  # index files: the size the index declares

    @property
    def parameter_count(self) -> int:
        return sum(t.n_params for t in self.tensors)

    @property
    def by_dtype(self) -> list[tuple[str, int, int, int]]:
        """(dtype, tensors, parameters, bytes), most parameters first."""
        out: dict[str, list[int]] = {}
        for t in self.tensors:
            row = out.setdefault(t.dtype, [0, 0, 0])
            row[0] += 1
            row[1] += t.n_params
            row[2] += t.n_bytes
        rows = [(dtype, n, params, size) for dtype, (n, params, size) in out.items()]
        return sorted(rows, key=lambda r: (-r[2], r[0]))


def is_weights_file(path: str) -> bool:
    name = path.lower()
    return name.endswith((".safetensors", ".gguf", INDEX_SUFFIX))


def inspect_weights(path: str, fh: BinaryIO, size: int) -> WeightsSummary:
    """Read the header of the safetensors or GGUF file `fh` (of `size` bytes) and summarise it."""
    counter = CountingReader(fh)
    reader = cast(BinaryIO, io.BufferedReader(counter, 1 << 16))
    reader.seek(0)
    magic = reader.read(4)
    reader.seek(0)
    try:
        if magic == b"GGUF":
            gguf = read_gguf_header(reader, size, GGUF_LIMITS)
            return _gguf_summary(gguf, counter.bytes_read)
        if path.lower().endswith(".gguf"):
            raise WeightsError(f"not a GGUF file: it starts with {magic!r}, not b'GGUF'")
        prefix = reader.read(8)
        reader.seek(0)
        if len(prefix) == 8 and struct.unpack("<Q", prefix)[0] > MAX_SAFETENSORS_HEADER:
            raise WeightsError(f"the header is {struct.unpack('<Q', prefix)[0]:,} bytes; the inspector reads "
                               f"headers of at most {MAX_SAFETENSORS_HEADER:,} bytes")
        st = read_safetensors_header(reader, size)
    except (GgufError, SafetensorsError) as exc:
        raise WeightsError(str(exc)) from None
    return _safetensors_summary(st, counter.bytes_read)


def _safetensors_summary(header: SafetensorsHeader, bytes_read: int, shard: str = "") -> WeightsSummary:
    rows = tuple(TensorRow(t.name, t.dtype, t.shape, t.n_params, t.n_bytes, shard)
                 for t in sorted(header.tensors, key=lambda t: t.name))
    return WeightsSummary("safetensors", rows, dict(header.metadata), header_size=8 + header.header_size,
                          bytes_read=bytes_read)


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def _gguf_summary(header: GgufHeader, bytes_read: int) -> WeightsSummary:
    meta = header.metadata
    arch = header.architecture
    tokens = meta.get("tokenizer.ggml.tokens")
    name = meta.get("general.name")
    tokenizer = meta.get("tokenizer.ggml.model")
    facts = GgufFacts(
        architecture=arch,
        name=name if isinstance(name, str) else None,
        context_length=_int(meta.get(f"{arch}.context_length")),
        embedding_length=_int(meta.get(f"{arch}.embedding_length")),
        block_count=_int(meta.get(f"{arch}.block_count")),
        tokenizer=tokenizer if isinstance(tokenizer, str) else None,
        vocab_size=tokens.length if isinstance(tokens, GgufArray) else None,
        chat_template=isinstance(meta.get("tokenizer.chat_template"), str),
        file_type=_int(meta.get("general.file_type")),
        version=header.version,
        alignment=header.alignment,
        metadata_keys=len(meta),
    )
    rows = tuple(TensorRow(t.name, t.ggml_type, t.shape, t.n_params, t.n_bytes) for t in header.tensors)
    shown = {k: _display(v) for k, v in meta.items() if not k.startswith("tokenizer.ggml.")}
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens"):
        if key in meta:
            shown[key] = _display(meta[key])
    if "tokenizer.chat_template" in shown:
        shown["tokenizer.chat_template"] = _display(meta["tokenizer.chat_template"], limit=400)
    return WeightsSummary("gguf", rows, shown, facts, header_size=header.data_offset, bytes_read=bytes_read)


def _display(value: Any, limit: int = 160) -> str:
    if isinstance(value, GgufArray):
        head = ", ".join(_display(v, 40) for v in value.head[:8])
        more = ", …" if value.length > 8 else ""
        return f"[{head}{more}] ({value.length:,} {value.item_type})"
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------- sharded checkpoints
ShardOpener = Callable[[str], AbstractContextManager[tuple[BinaryIO, int]] | None]


def inspect_index(path: str, fh: BinaryIO, size: int, open_shard: ShardOpener) -> WeightsSummary:
    """Summarise `*.safetensors.index.json` and the header of every shard it names.

    `open_shard(repo_path)` gives (file, size) for a shard of this revision, or None when missing.
    """
    if size > MAX_INDEX_BYTES:
        raise WeightsError(f"the index is {size} bytes, more than the {MAX_INDEX_BYTES}-byte limit")
    try:
        doc = json.loads(fh.read(size))
    except (ValueError, UnicodeDecodeError) as exc:
        raise WeightsError(f"not a JSON index: {exc}") from None
    weight_map = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise WeightsError("the index has no weight_map of tensor name -> shard file")
    counts: dict[str, int] = {}
    for shard in weight_map.values():
        counts[shard] = counts.get(shard, 0) + 1
    if len(counts) > MAX_SHARDS:
        raise WeightsError(f"the index names {len(counts)} shards (at most {MAX_SHARDS} are inspected)")
    folder = posixpath.dirname(path)
    rows: list[TensorRow] = []
    shards: list[ShardRow] = []
    bytes_read = size
    for shard, n in sorted(counts.items()):
        shard_path = posixpath.normpath(posixpath.join(folder, shard)) if folder else posixpath.normpath(shard)
        opened = open_shard(shard_path) if not shard_path.startswith("../") else None
        if opened is None:
            shards.append(ShardRow(shard, n, False))
            continue
        with opened as (shard_fh, shard_size):
            try:
                summary = inspect_weights(shard_path, shard_fh, shard_size)
            except WeightsError as exc:
                shards.append(ShardRow(shard, n, True, error=str(exc)))
                continue
        bytes_read += summary.bytes_read
        rows.extend(TensorRow(t.name, t.dtype, t.shape, t.n_params, t.n_bytes, shard) for t in summary.tensors)
        shards.append(ShardRow(shard, n, True, summary.parameter_count))
    metadata = doc.get("metadata")
    total = metadata.get("total_size") if isinstance(metadata, dict) else None
    shown = {k: str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}
    rows.sort(key=lambda t: t.name)
    return WeightsSummary("safetensors-index", tuple(rows), shown, shards=tuple(shards),
                          bytes_read=bytes_read, total_size=_int(total))

