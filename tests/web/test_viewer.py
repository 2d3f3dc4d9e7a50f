"""The dataset viewer: reads only what it shows; the Viewer tab of dataset repos; cells escaped."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from commons.hub import tabular
from commons.hub.tabular import cell, read_page
from commons.web.pages.viewer import card_splits, split_of
from tests.hubserver import HubServer
from tests.web.conftest import Web


def parquet_bytes(rows: int, row_group: int = 20_000) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": pa.array(range(rows)), "text": pa.array([f"row {i} " + "x" * 40 for i in range(rows)]),
                      "meta": pa.array([{"k": i % 7, "tags": ["a", "b"]} for i in range(rows)])})
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=row_group)
    return out.getvalue()


def test_parquet_first_page_reads_the_footer_and_one_row_group(tmp_path: Path) -> None:
    data = parquet_bytes(200_000)
    page = read_page("train.parquet", io.BytesIO(data), len(data), offset=0, limit=50)
    assert page.row_count == 200_000 and len(page.rows) == 50 and page.has_next
    assert [c.name for c in page.columns] == ["id", "text", "meta"]
    assert page.rows[0][0].text == "0" and page.rows[0][2] == cell({"k": 0, "tags": ["a", "b"]})
    assert page.row_groups == 10 and page.row_groups_read == 1
    assert page.bytes_read < len(data) / 4, (page.bytes_read, len(data))
    deep = read_page("train.parquet", io.BytesIO(data), len(data), offset=150_010, limit=20)
    assert deep.rows[0][0].text == "150010" and deep.row_groups_read == 1
    last = read_page("train.parquet", io.BytesIO(data), len(data), offset=199_990, limit=50)
    assert len(last.rows) == 10 and not last.has_next


def test_jsonl_counts_exactly_when_small_and_says_at_least_when_large(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"".join(json.dumps({"a": i, "nested": {"x": [i]}}).encode() + b"\n" for i in range(20_000))
    page = read_page("d.jsonl", io.BytesIO(data), len(data), offset=0, limit=10)
    assert page.row_count == 20_000 and page.at_least == 20_000
    assert page.rows[3][1] == cell({"x": [3]}) and page.rows[3][1].kind == "json"
    monkeypatch.setattr(tabular, "EXACT_COUNT_BYTES", 100)
    page = read_page("d.jsonl", io.BytesIO(data), len(data), offset=10, limit=10)
    assert page.row_count is None and page.at_least == 21 and page.has_next
    assert page.bytes_read < len(data) / 4


def test_csv_quoted_newlines_tsv_and_long_cells() -> None:
    data = b'a,b\n1,"two\nlines"\n2,' + b"y" * 1000 + b"\n"
    page = read_page("x.csv", io.BytesIO(data), len(data))
    assert page.row_count == 2 and page.rows[0][1].text == "two\nlines"
    long = page.rows[1][1]
    assert len(long.text) == tabular.CELL_CHARS and long.full == 1000
    tsv = b"k\tv\nx\t1\n"
    assert read_page("x.tsv", io.BytesIO(tsv), len(tsv)).rows[0][1].text == "1"


CARD = b"""---
license: mit
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: test
    path: data/test.jsonl
  - split: dev
    path: extra/*.csv
---
# Data
"""


def test_card_configs_name_the_splits() -> None:
    card = {"configs": [{"config_name": "default", "data_files": [{"split": "train", "path": ["a/*.csv"]}]},
                        {"config_name": "fr", "data_files": "fr/*.parquet"}]}
    assert card_splits(card) == [("train", "a/*.csv"), ("fr/train", "fr/*.parquet")]
    assert card_splits({"configs": "nonsense"}) == [] and card_splits(None) == []
    assert split_of("data/validation-00000-of-00001.parquet") == "validation" and split_of("x.csv") == "train"


@pytest.fixture(scope="module")
def dataset(hub: HubServer) -> str:
    from huggingface_hub import CommitOperationAdd

    api = hub.api("alice")
    repo_id = "alice/viewer-data"
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    jsonl = b"".join(json.dumps({"q": f"question {i}", "html": "<script>alert(1)</script>"}).encode() + b"\n"
                     for i in range(120))
    api.create_commit(repo_id, [
        CommitOperationAdd("data/train-00000.parquet", parquet_bytes(1000, row_group=300)),
        CommitOperationAdd("data/test.jsonl", jsonl),
        CommitOperationAdd("extra/validation.csv", b"a,b\n1,<b>bold</b>\n"),
        CommitOperationAdd("README.md", CARD),
    ], commit_message="data", repo_type="dataset")
    return repo_id


def test_viewer_tab_picks_split_files_and_pages(anon: Web, dataset: str) -> None:
    base = f"/datasets/{dataset}"
    card = anon.get(base).text
    assert f'href="{base}/viewer"' in card
    page = anon.get(f"{base}/viewer")
    assert page.status_code == 200
    html = page.text
    for split in ("train", "dev", "test"):  # as the card's configs name them
        assert f"<h3>{split} " in html
    assert "Parquet · 1,000 rows · 3 columns" in html and "row 49 " in html and "row 50 " not in html
    nxt = anon.get(f"{base}/viewer", params={"file": "data/train-00000.parquet", "offset": 950}).text
    assert "row 950 " in nxt and "row 999 " in nxt and 'rel="next"' not in nxt and 'rel="prev"' in nxt
    test = anon.get(f"{base}/viewer", params={"file": "data/test.jsonl", "offset": 100}).text
    assert "JSON Lines · 120 rows" in test and "question 119" in test
    assert "<script>alert(1)</script>" not in test and "&lt;script&gt;alert(1)&lt;/script&gt;" in test


def test_file_page_shows_the_viewer_and_escapes_cells(anon: Web, dataset: str) -> None:
    html = anon.get(f"/datasets/{dataset}/blob/main/extra/validation.csv").text
    assert "CSV · 1 row · 2 columns" in html
    assert "<b>bold</b>" not in html.split("dataset-viewer", 1)[1] and "&lt;b&gt;bold&lt;/b&gt;" in html
    bad = anon.get(f"/datasets/{dataset}/viewer", params={"file": "../etc/passwd.csv"})
    assert bad.status_code in (400, 404)
