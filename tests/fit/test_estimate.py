"""The fit arithmetic: units, KV cache, memory, and the decode model against the measured anchors."""

from __future__ import annotations

import pytest

from commons.fit.estimate import (
    LLAMA_CPP,
    TRANSFORMERS,
    Machine,
    Shape,
    Variant,
    decode_tokens_per_s,
    fit,
    kv_cache_bytes,
    parse_bandwidth,
    parse_ram,
    precision_table,
)

SMOL = Shape(layers=30, kv_heads=3, head_dim=64, max_context=8192)  # SmolLM2-135M
PROJECT = Machine(ram_bytes=24 << 30, bandwidth=15.5e9)


def smol(fmt: str, precision: str, weight_bytes: int) -> Variant:
    return Variant("demo/smol", "x", fmt, precision, 134_515_008, weight_bytes, weight_bytes, SMOL)


@pytest.mark.parametrize(("text", "expected"), [("8G", 8 << 30), ("8GiB", 8 << 30), ("16gb", 16 << 30),
                                                ("512M", 512 << 20), ("1.5G", 3 << 29), ("2048", 2048)])
def test_ram_sizes_are_binary(text: str, expected: int) -> None:
    assert parse_ram(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("20GB/s", 20e9), ("15.5 GB/s", 15.5e9), ("20G", 20e9),
                                                ("100 GiB/s", 100 * 2**30), ("800MB/s", 8e8)])
def test_bandwidths_are_decimal(text: str, expected: float) -> None:
    assert parse_bandwidth(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["", "lots", "8 GBs", "-1G", "8X"])
def test_bad_sizes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_ram(bad)


def test_kv_cache_matches_the_anchor() -> None:
    """perf-anchors §2: SmolLM2's KV cache is 46 KB per position in fp32, 23 KB in f16."""
    assert kv_cache_bytes(SMOL, 1, 4) == 46_080
    assert kv_cache_bytes(SMOL, 256, 2) == 256 * 23_040


@pytest.mark.parametrize(("fmt", "precision", "weight_bytes", "measured"), [
    ("gguf", "F16", 270_885_536, 38.0),   # L4
    ("gguf", "Q8_0", 144_800_000, 49.2),  # L3
    ("gguf", "Q4_1", 96_500_000, 59.2),   # L1
    ("safetensors", "float32", 538_090_408, 8.2),  # T2
    ("safetensors", "bfloat16", 269_045_204, 14.5),  # T4
])
def test_decode_model_reproduces_the_measured_anchors(fmt: str, precision: str, weight_bytes: int,
                                                      measured: float) -> None:
    """Within 15 % of every decode speed measured on the project machine (2 threads, ~128-256 positions)."""
    estimate = decode_tokens_per_s(smol(fmt, precision, weight_bytes), PROJECT, 192)
    assert estimate == pytest.approx(measured, rel=0.15)


def test_fit_counts_weights_kv_and_runtime() -> None:
    variant = smol("gguf", "Q4_0", 91_726_496)
    result = fit(variant, Machine(256 << 20), context=2048)
    assert result.kv_bytes == 2048 * 23_040
    assert result.needed_bytes == 91_726_496 + 2048 * 23_040 + LLAMA_CPP.runtime_bytes
    assert not result.fits  # 91.7 MB + 47 MB + 128 MiB > 256 MiB
    assert fit(variant, Machine(512 << 20), context=2048).fits
    # The context defaults to 4096 and never exceeds the model's.
    assert fit(variant, Machine(1 << 30)).context == 4096
    assert fit(variant, Machine(1 << 30), context=100_000).context == 8192
    fp32 = fit(smol("safetensors", "float32", 538_090_408), Machine(1 << 30), context=1024)
    assert fp32.kv_bytes == 1024 * 46_080
    assert fp32.needed_bytes == 538_090_408 + 1024 * 46_080 + TRANSFORMERS.runtime_bytes


def test_more_bandwidth_is_faster_and_unknown_shapes_have_no_speed() -> None:
    variant = smol("gguf", "Q8_0", 144_800_000)
    slow, fast = (decode_tokens_per_s(variant, Machine(1 << 30, bw), 0) for bw in (10e9, 100e9))
    assert slow is not None and fast is not None and fast > slow
    shapeless = Variant("a/b", "m.gguf", "gguf", "Q8_0", 1000, 1000, 1000, None)
    assert decode_tokens_per_s(shapeless, PROJECT, 0) is None
    assert fit(shapeless, PROJECT).kv_bytes == 0


def test_precision_table() -> None:
    table = precision_table(134_515_008)
    assert table["float32"] == 538_060_032 and table["bfloat16 / F16"] == 269_030_016
    assert table["int8 / Q8_0"] == round(134_515_008 * 34 / 32) and table["Q4_0"] == round(134_515_008 * 18 / 32)
