"""audiotok.bpe: train, encode/decode round trips, JSON and pickle."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from audiotok import bpe


def streams():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 16, size=64, dtype=np.uint32)
    return [np.tile(base, 4) ^ np.uint32(i % 2) for i in range(8)]


def test_round_trips_and_compresses():
    s = streams()
    m = bpe.BpeModel.train(s, codebook_size=16, merges=40)
    assert (m.variant, m.codebook_size, m.vocab_size) == ("plain", 16, 56)
    for x in s:
        y = m.encode(x)
        assert y.dtype == np.uint32 and len(y) < len(x)
        np.testing.assert_array_equal(m.decode(y), x)
    back = bpe.BpeModel.from_json(m.to_json())
    np.testing.assert_array_equal(back.encode(s[0]), m.encode(s[0]))
    again = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(again.encode(s[1]), m.encode(s[1]))
    rl = bpe.BpeModel.train(s, codebook_size=16, merges=10, variant="rl")
    np.testing.assert_array_equal(rl.decode(rl.encode(s[2])), s[2])


def test_bad_input_raises_bpe_error(tmp_path):
    m = bpe.BpeModel.train(streams(), codebook_size=16, merges=4)
    with pytest.raises(bpe.BpeError, match="16"):
        m.encode(np.array([1, 99], dtype=np.uint32))
    with pytest.raises(bpe.BpeError, match="variant"):
        bpe.BpeModel.train(streams(), codebook_size=16, merges=4, variant="nope")
    with pytest.raises(bpe.BpeError, match="missing.json"):
        bpe.BpeModel.load(tmp_path / "missing.json")
