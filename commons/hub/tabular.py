"""Dataset viewer: a page of rows of a CSV, TSV, JSONL or Parquet file, reading only what it shows.

Parquet: the footer gives the schema and the exact row count; only the row groups that hold the
page are opened, and their column chunks are read incrementally (a buffered stream, no pre-buffer),
so the first page of a million-row file costs a few pages of each column. CSV and JSONL are read
from the start up to the page's last row; the row count is exact only when the whole file is
small enough to count cheaply, otherwise "at least N". pyarrow is imported here, lazily: the server
must start without it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, BinaryIO

from commons.hub.reading import CountingReader

FORMATS = {".parquet": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
PAGE_ROWS = 50
MAX_PAGE_ROWS = 200
MAX_COLUMNS = 40  # wider tables show their first columns (the schema lists all)
CELL_CHARS = 300
EXACT_COUNT_BYTES = 16 << 20  # text files up to this size are counted to the end
MAX_SCAN_BYTES = 512 << 20  # text files are not read further than this to reach an offset
MAX_LINE = 16 << 20


class TableError(ValueError):
    """The file cannot be shown as a table; the message says why."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class Cell:
    """A value as shown: `kind` is null, number, bool, text, json or binary; `full` is the
    untruncated length when the text was cut."""

    text: str
    kind: str
    full: int = 0


@dataclass(frozen=True)
class TablePage:
    format: str
    columns: tuple[Column, ...]  # every column of the file
    shown: tuple[str, ...]  # the columns in `rows`
    rows: tuple[tuple[Cell, ...], ...]
    offset: int
    row_count: int | None  # exact, when known
    at_least: int  # rows known to exist (== row_count when exact)
    bytes_read: int
    size: int
    row_groups: int | None = None
    row_groups_read: int | None = None

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.rows) < self.at_least


def table_format(path: str) -> str | None:
    name = path.lower()
    for ext, fmt in FORMATS.items():
        if name.endswith(ext):
            return fmt
    return None


def read_page(path: str, fh: BinaryIO, size: int, offset: int = 0, limit: int = PAGE_ROWS) -> TablePage:
    """Rows [offset, offset + limit) of the table in `fh` (`size` bytes)."""
    fmt = table_format(path)
    if fmt is None:
        raise TableError(f"{path} is not a CSV, TSV, JSONL or Parquet file")
    offset = max(0, offset)
    limit = max(1, min(limit, MAX_PAGE_ROWS))
    counter = CountingReader(fh)
    if fmt == "parquet":
        return _parquet(counter, size, offset, limit)
    return _text(fmt, counter, size, offset, limit)


# ---------------------------------------------------------------------------- cells
def cell(value: Any) -> Cell:
    """How one value is shown: nested values as JSON, long text cut at CELL_CHARS."""
    if value is None:
        return Cell("null", "null")
    if isinstance(value, bool):
        return Cell("true" if value else "false", "bool")
    if isinstance(value, int | Decimal):
        return Cell(str(value), "number")
    if isinstance(value, float):
        return Cell(repr(value) if math.isfinite(value) else str(value), "number")
    if isinstance(value, bytes | bytearray | memoryview):
        return Cell(f"{len(bytes(value)):,} bytes", "binary")
    if isinstance(value, datetime | date | time):
        return Cell(value.isoformat(), "text")
    if isinstance(value, dict | list | tuple):
        return _cut(json.dumps(value, ensure_ascii=False, default=_json_default), "json")
    return _cut(str(value), "text")


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    return str(value)


def _cut(text: str, kind: str) -> Cell:
    if len(text) <= CELL_CHARS:
        return Cell(text, kind)
    return Cell(text[: CELL_CHARS - 1] + "…", kind, len(text))


# ---------------------------------------------------------------------------- parquet
def _parquet(counter: CountingReader, size: int, offset: int, limit: int) -> TablePage:
    import pyarrow as pa  # lazily: see the module docstring
    import pyarrow.parquet as pq

    # No pre-buffering and a small buffer: column chunks are read page by page as batches need them.
    try:
        pf = pq.ParquetFile(counter, buffer_size=1 << 16, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise TableError(f"not a readable Parquet file: {exc}") from None
    meta = pf.metadata
    schema = pf.schema_arrow
    columns = tuple(Column(f.name, str(f.type)) for f in schema)
    shown = tuple(c.name for c in columns[:MAX_COLUMNS])
    total = meta.num_rows
    rows: list[tuple[Cell, ...]] = []
    groups_read = 0
    if offset < total:
        start = 0
        groups: list[int] = []
        skip = 0
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            if start + n > offset and start < offset + limit:
                if not groups:
                    skip = offset - start
                groups.append(g)
            start += n
        groups_read = len(groups)
        try:
            batches = pf.iter_batches(batch_size=min(limit + skip, 8192), row_groups=groups, columns=list(shown),
                                      use_threads=False)
            for batch in batches:
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                batch = batch.slice(skip, limit - len(rows))
                skip = 0
                data = batch.to_pydict()
                rows.extend(tuple(cell(data[name][i]) for name in shown) for i in range(batch.num_rows))
                if len(rows) >= limit:
                    break
        except (pa.ArrowException, OSError) as exc:
            raise TableError(f"cannot read the rows: {exc}") from None
    return TablePage("parquet", columns, shown, tuple(rows), offset, total, total, counter.bytes_read, size,
                     meta.num_row_groups, groups_read)


# ---------------------------------------------------------------------------- CSV, TSV, JSONL
def _text(fmt: str, counter: CountingReader, size: int, offset: int, limit: int) -> TablePage:
    buffered = io.BufferedReader(counter, 1 << 16)
    records = _csv_records(buffered, "\t" if fmt == "tsv" else ",") if fmt != "jsonl" else _jsonl_records(buffered)
    header = next(records, None)
    if header is None:
        return TablePage(fmt, (), (), (), offset, 0, 0, counter.bytes_read, size)
    keys: list[str] = list(header) if fmt != "jsonl" else []
    page: list[Any] = []
    seen = 0
    exhausted = True
    if fmt == "jsonl":
        # JSONL has no header line: `header` is the first record.
        records = _chain(header, records)
    for record in records:
        if seen >= offset + limit:
            exhausted = False
            break
        if seen >= offset:
            page.append(record)
        seen += 1
        if counter.bytes_read > MAX_SCAN_BYTES and seen < offset:
            raise TableError(f"row {offset} lies more than {MAX_SCAN_BYTES >> 20} MB into the file; "
                             "the viewer does not read that far")
    count: int | None = seen if exhausted else None
    if not exhausted and size <= EXACT_COUNT_BYTES:
        count = seen + 1 + sum(1 for _ in records)
    if fmt == "jsonl":
        for record in page:
            if isinstance(record, dict):
                keys.extend(k for k in record if k not in keys)
        if not keys:
            keys = ["value"]
    shown = tuple(keys[:MAX_COLUMNS])
    rows = tuple(tuple(cell(_field(fmt, record, i, name)) for i, name in enumerate(shown)) for record in page)
    columns = tuple(Column(name, _guess_type(fmt, page, i, name)) for i, name in enumerate(keys))
    at_least = count if count is not None else seen + 1
    return TablePage(fmt, columns, shown, rows, offset, count, at_least, counter.bytes_read, size)


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _csv_records(fh: io.BufferedReader[Any], delimiter: str) -> Iterator[list[str]]:
    text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline="")
    try:
        yield from csv.reader(text, delimiter=delimiter)
    except csv.Error as exc:
        raise TableError(f"not a readable CSV file: {exc}") from None


def _jsonl_records(fh: io.BufferedReader[Any]) -> Iterator[Any]:
    line_no = 0
    while True:
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        line_no += 1
        if len(line) > MAX_LINE:
            raise TableError(f"line {line_no} is longer than {MAX_LINE >> 20} MB")
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError as exc:
            raise TableError(f"line {line_no} is not JSON: {exc}") from None


def _field(fmt: str, record: Any, i: int, name: str) -> Any:
    if fmt == "jsonl":
        if isinstance(record, dict):
            return record.get(name)
        return record if name == "value" else None
    return record[i] if i < len(record) else None


def _guess_type(fmt: str, page: list[Any], i: int, name: str) -> str:
    values = [_field(fmt, r, i, name) for r in page]
    values = [v for v in values if v is not None and v != ""]
    if not values:
        return "null" if fmt == "jsonl" else "string"
    if fmt == "jsonl":
        kinds = {_json_kind(v) for v in values}
        return kinds.pop() if len(kinds) == 1 else " | ".join(sorted(kinds))
    for kind, test in (("int", int), ("float", float)):
        try:
            for v in values:
                test(v)
            return kind
        except ValueError:
            continue
    if all(v.lower() in ("true", "false") for v in values):
        return "bool"
    return "string"


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"
