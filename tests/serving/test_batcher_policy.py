"""The batcher's pure policy: how much streamed text to hold back while it may still become a stop string."""

from __future__ import annotations

import pytest

from commons.serving.batcher import _held_back


@pytest.mark.parametrize(("text", "stops", "held"), [
    ("hello wor", ("world",), 3),  # "wor" may become "world"
    ("hello", ("world",), 0),
    ("hello w", ("world", "wx"), 1),
    ("abc", (), 0),
    ("caf\ufffd", (), 1),  # half of a UTF-8 character: wait for the rest
    ("the end.", ("\n\n", "."), 0),  # "." would already have matched: nothing to hold
    ("line\n", ("\n\n",), 1),
])
def test_held_back(text: str, stops: tuple[str, ...], held: int) -> None:
    assert _held_back(text, stops) == held
