"""File evidence about where a repo came from: PEFT adapter configs, GGUF metadata, tensor comparisons.

Callers read the files (adapter_config.json, config.json, GGUF key-values) and compare tensors with
a claimed parent; these values carry the results into `lineage.build_lineage`, which uses them to
infer relations and to verify or contradict declared edges.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from commons.policy.facts import RepoRef


@dataclass(frozen=True, order=True)
class TensorComparison:
    """The result of comparing this repo's tensors with a claimed parent's (computed by the caller)."""

    parent: RepoRef
    shapes_match: bool | None = None
    identical_tensors: int = 0
    total_tensors: int = 0


@dataclass(frozen=True)
class FileEvidence:
    """What a repo's files say about where it came from."""

    adapter_base: str | None = None  # adapter_config.json base_model_name_or_path
    gguf_base_models: tuple[str, ...] = ()  # GGUF general.base_model.N.repo_url
    quantization: str | None = None  # "gguf:<file_type>", "gptq", "awq", "bitsandbytes" …
    comparisons: tuple[TensorComparison, ...] = ()
    # GGUF general.source.repo_url / general.source.huggingface.repository: the repo the file was
    # converted from, its direct parent (general.base_model.N are then that repo's own parents).
    gguf_sources: tuple[str, ...] = ()


def evidence_from_files(
    *,
    adapter_config: Mapping[str, Any] | None = None,
    gguf_metadata: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    comparisons: Iterable[TensorComparison] = (),
) -> FileEvidence:
    """Summarise parsed file contents (JSON of adapter_config.json / config.json, GGUF key-values)."""
    adapter_base = None
    if adapter_config:
        adapter_base = _repo_id_or_none(adapter_config.get("base_model_name_or_path"))
    gguf_bases: list[str] = []
    gguf_sources: list[str] = []
    quantization = None
    if gguf_metadata:
        for key in ("general.source.repo_url", "general.source.huggingface.repository", "general.source.url"):
            rid = _repo_id_or_none(gguf_metadata.get(key))
            if rid and rid not in gguf_sources:
                gguf_sources.append(rid)
        count = gguf_metadata.get("general.base_model.count")
        n = count if isinstance(count, int) else 8
        for i in range(n):
            url = gguf_metadata.get(f"general.base_model.{i}.repo_url")
            rid = _repo_id_or_none(url)
            if rid:
                gguf_bases.append(rid)
        file_type = gguf_metadata.get("general.file_type")
        quantization = f"gguf:{file_type}" if file_type is not None else "gguf"
    if config and isinstance(config.get("quantization_config"), Mapping):
        quantization = str(config["quantization_config"].get("quant_method") or "quantized")
    return FileEvidence(adapter_base, tuple(gguf_bases), quantization, tuple(sorted(comparisons)), tuple(gguf_sources))


def _repo_id_or_none(value: Any) -> str | None:
    # adapter_config.json often holds a local path ("/tmp/job/base"); only Hub-style ids are evidence.
    if not isinstance(value, str):
        return None
    text = re.sub(r"^https?://[^/]+/", "", value.strip()).removeprefix("models/").strip("/")
    return text if re.fullmatch(r"[\w.-]+/[\w.-]+", text) else None
