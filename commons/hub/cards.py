"""Model and dataset cards: README.md YAML front matter → card data and tags (pure)."""

from __future__ import annotations

import re
from typing import Any

import yaml

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)^---[ \t]*$", re.DOTALL | re.MULTILINE)


class CardError(ValueError):
    """The front matter is not valid YAML, or not a mapping."""


def split_front_matter(text: str) -> tuple[dict[str, Any] | None, str]:
    """(metadata, body). Metadata is None when the README has no front matter."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return None, text
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise CardError(f"Invalid YAML in the card metadata: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CardError("The card metadata must be a YAML mapping (key: value)")
    return _jsonable(data), text[match.end() :].lstrip("\r\n")


def _jsonable(value: Any) -> Any:
    # YAML dates and other scalars must survive a JSON round trip (the API returns cardData as JSON).
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def validate_card(text: str) -> list[str]:
    """Errors that would make the Hub reject this README (empty when valid)."""
    try:
        meta, _ = split_front_matter(text)
    except CardError as exc:
        return [str(exc)]
    errors: list[str] = []
    if meta is None:
        return errors
    for key in ("tags", "datasets", "language"):
        value = meta.get(key)
        if value is not None and not isinstance(value, str | list):
            errors.append(f'"{key}" must be a string or a list of strings')
    license_ = meta.get("license")
    if license_ is not None and not isinstance(license_, str | list):
        errors.append('"license" must be a string')
    base = meta.get("base_model")
    if base is not None and not isinstance(base, str | list):
        errors.append('"base_model" must be a repo id or a list of repo ids')
    return errors


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def card_tags(meta: dict[str, Any] | None) -> list[str]:
    """The searchable tags a card implies, in the Hub's `key:value` vocabulary."""
    if not meta:
        return []
    tags: list[str] = []
    tags += _as_list(meta.get("tags"))
    if meta.get("library_name"):
        tags.append(str(meta["library_name"]))
    if meta.get("pipeline_tag"):
        tags.append(str(meta["pipeline_tag"]))
    tags += [f"license:{v}" for v in _as_list(meta.get("license"))]
    tags += [f"dataset:{v}" for v in _as_list(meta.get("datasets"))]
    tags += [f"base_model:{v}" for v in _as_list(meta.get("base_model"))]
    if meta.get("base_model_relation") and meta.get("base_model"):
        rel = str(meta["base_model_relation"])
        tags += [f"base_model:{rel}:{v}" for v in _as_list(meta.get("base_model"))]
    tags += [str(v) for v in _as_list(meta.get("language"))]
    tags += [f"region:{v}" for v in _as_list(meta.get("region"))]
    for key in ("task_categories", "size_categories", "task_ids"):
        tags += [f"{key}:{v}" for v in _as_list(meta.get(key))]
    seen: set[str] = set()
    return [t for t in tags if not (t in seen or seen.add(t))]  # type: ignore[func-returns-value]
