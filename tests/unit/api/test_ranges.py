from __future__ import annotations

import pytest

from commons.api.ranges import RangeNotSatisfiable, parse_range


@pytest.mark.parametrize(("header", "want"), [
    (None, None), ("bytes=0-9", (0, 9)), ("bytes=5-", (5, 99)), ("bytes=-10", (90, 99)), ("bytes=90-500", (90, 99)),
    ("items=0-1", None), ("bytes=0-1,5-6", None),
])
def test_parse(header: str | None, want: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == want


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=5-2", "bytes=-0"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)
