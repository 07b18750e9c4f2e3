"""Audio BPE over integer token streams: models made by ``audiotok bpe train``.

``BpeModel.load(path)`` (or ``from_json``), ``encode(tokens)`` / ``decode(symbols)`` for the
single-stream variants, ``encode_scales([s0, s1, ...])`` / ``decode_scales`` for the multi-scale
ones; uint32 numpy arrays in and out, the same results as ``audiotok bpe encode/decode``.
"""

from __future__ import annotations

from ._audiotok import BpeError, BpeModel

__all__ = ["BpeError", "BpeModel"]
