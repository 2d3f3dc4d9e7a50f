"""Hardware fit: which variants of a model run on a machine of a given RAM and memory bandwidth, how fast.

`estimate` holds the pure arithmetic (memory, KV cache, decode tokens/s), `variants` turns file headers
into variants, `report` reads a hub repo and its quantized children. No torch, no numpy: the server
imports this.
"""

from commons.fit.estimate import DEFAULT_BANDWIDTH, Fit, Machine, Shape, Variant, parse_bandwidth, parse_ram

__all__ = ["DEFAULT_BANDWIDTH", "Fit", "Machine", "Shape", "Variant", "parse_bandwidth", "parse_ram"]
