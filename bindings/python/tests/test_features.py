"""WhisperFeatureExtractor and features() against the transformers and librosa goldens."""

from __future__ import annotations

import numpy as np
import pytest

import audiotok
from conftest import ROOT, golden_array

WHISPER = ["whisper128_0.1s", "whisper128_1s", "whisper128_7s", "whisper128_30s", "whisper128_45s", "whisper80_7s"]


@pytest.mark.parametrize("name", WHISPER)
@pytest.mark.parametrize("precision", ["fast", "exact"])
def test_whisper_max_length_equals_transformers(goldens, name, precision):
    g = goldens[name]
    x, _ = audiotok.load(ROOT / g["source"], sr=16000)
    fe = audiotok.WhisperFeatureExtractor(feature_size=g["params"]["feature_size"], precision=precision)
    out = fe(x, sampling_rate=16000, return_tensors="np", return_attention_mask=True)
    assert set(out) == {"input_features", "attention_mask"}
    f, m = out["input_features"], out["attention_mask"]
    assert f.shape == (1, *g["shape"]) and f.dtype == np.float32 and f.flags.c_contiguous
    assert m.shape == tuple(g["attention_mask_shape"]) and m.dtype == np.int32
    assert int(m.sum()) == g["attention_mask_sum"]
    want = golden_array(g)
    if precision == "exact":
        np.testing.assert_array_equal(f[0], want)
    else:
        np.testing.assert_allclose(f[0], want, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", ["whisper128_longest_1s", "whisper128_longest_7s"])
def test_whisper_longest_equals_transformers(goldens, name):
    g = goldens[name]
    x, _ = audiotok.load(ROOT / g["source"], sr=16000)
    fe = audiotok.WhisperFeatureExtractor(feature_size=128, precision="exact")
    out = fe(x, sampling_rate=16000, padding="longest", return_attention_mask=True)
    np.testing.assert_array_equal(out["input_features"][0], golden_array(g))
    assert out["attention_mask"].shape == tuple(g["attention_mask_shape"])
    assert int(out["attention_mask"].sum()) == g["attention_mask_sum"]


def test_batches_pad_like_transformers(goldens):
    """A batch of a 1 s and a 7 s clip: max_length gives each clip's own golden; longest pads the
    1 s clip with zeros to 7 s, and its mask covers its own frames only."""
    a, _ = audiotok.load(ROOT / goldens["whisper128_1s"]["source"])
    b, _ = audiotok.load(ROOT / goldens["whisper128_7s"]["source"])
    fe = audiotok.WhisperFeatureExtractor(feature_size=128, precision="exact", num_threads=2)
    out = fe([a, b], sampling_rate=16000, return_attention_mask=True)
    np.testing.assert_array_equal(out["input_features"][0], golden_array(goldens["whisper128_1s"]))
    np.testing.assert_array_equal(out["input_features"][1], golden_array(goldens["whisper128_7s"]))
    assert out["attention_mask"].sum(axis=1).tolist() == [100, 700]
    longest = fe([a, b], sampling_rate=16000, padding="longest", return_attention_mask=True)
    assert longest["input_features"].shape == (2, 128, 700)
    np.testing.assert_array_equal(longest["input_features"][1], golden_array(goldens["whisper128_longest_7s"]))
    padded = np.zeros_like(b)
    padded[: len(a)] = a
    alone = fe(padded, sampling_rate=16000, padding="longest")
    np.testing.assert_array_equal(longest["input_features"][0], alone["input_features"][0])
    assert longest["attention_mask"].sum(axis=1).tolist() == [100, 700]


def test_extractor_mask_default_and_checks():
    fe = audiotok.WhisperFeatureExtractor(feature_size=80, return_attention_mask=True)
    x = np.zeros(16000, dtype=np.float32)
    # As in transformers: the constructor's default asks pad() for a sample-level mask, which
    # only an explicit return_attention_mask=True rescales to frames.
    assert fe(x, sampling_rate=16000)["attention_mask"].shape == (1, 480000)
    assert fe(x, sampling_rate=16000, return_attention_mask=False)["attention_mask"].shape == (1, 480000)
    assert "attention_mask" not in audiotok.WhisperFeatureExtractor()(x, sampling_rate=16000)
    with pytest.raises(ValueError, match="sampling rate of 16000"):
        fe(x, sampling_rate=8000)
    with pytest.raises(ValueError, match="feature_size"):
        audiotok.WhisperFeatureExtractor(feature_size=64)
    with pytest.raises(audiotok.FeatureError, match="signal 0: invalid input: non-finite sample at index 3"):
        bad = x.copy()
        bad[3] = np.nan
        fe(bad, sampling_rate=16000)


def test_features_wav2vec2_and_meldb(goldens):
    for name, kind, atol in (("wav2vec2_7s", "wav2vec2", 1e-6), ("meldb_7s", "mel-db", 2e-3)):
        g = goldens[name]
        x, _ = audiotok.load(ROOT / g["source"])
        f = audiotok.features(x, kind, frames=None)
        assert f.shape == tuple(g["shape"])
        np.testing.assert_allclose(f, golden_array(g), rtol=0, atol=atol)


def test_count_tokens_matches_the_profiles():
    # Qwen2-Audio: (((L - 1) // 2 + 1) - 2) // 2 + 1 over the 100-per-second mel frames.
    assert audiotok.count_tokens(16000 * 7, profile="qwen2-audio") == 175
    assert audiotok.count_tokens([16000, 480000]) == [25, 750]
    with pytest.raises(audiotok.FeatureError, match="unknown"):
        audiotok.count_tokens(1, profile="nope")


def _features_in_child(q):
    fe = audiotok.WhisperFeatureExtractor(feature_size=80, num_threads=2)
    x = np.sin(np.arange(32000, dtype=np.float32) / 10)
    q.put(fe([x, x], sampling_rate=16000)["input_features"].sum())


def test_forked_workers_compute_after_the_parent_did():
    """A forked DataLoader worker inherits no thread pool: pools are made per call."""
    import multiprocessing as mp

    parent = _features_in_child_value()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_features_in_child, args=(q,)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert got == [parent, parent]


def _features_in_child_value():
    import queue

    q: "queue.Queue[float]" = queue.Queue()
    _features_in_child(q)
    return q.get()


def test_extractor_pickles_its_configuration():
    import pickle

    fe = audiotok.WhisperFeatureExtractor(feature_size=128, return_attention_mask=True, precision="exact")
    back = pickle.loads(pickle.dumps(fe))
    assert (back.feature_size, back.return_attention_mask, back.precision) == (128, True, "exact")
    x = np.ones(1600, dtype=np.float32)
    np.testing.assert_array_equal(back(x, sampling_rate=16000)["input_features"], fe(x, sampling_rate=16000)["input_features"])
