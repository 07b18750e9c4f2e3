"""audiotok.encoders: HuBERT / wav2vec2, the Qwen2-Audio tower and the Whisper encoder on arrays,
against transformers' own outputs (tests/fixtures/embed, made by tools/gen_embed_fixtures.py with
transformers 5.23.0 at a fixed seed), in exact batches, and the embed job from Python."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import audiotok
from audiotok import encoders

from conftest import FIXTURES

EMBED = FIXTURES / "embed"


def clip(i: int) -> np.ndarray:
    return np.load(EMBED / f"audio_{i}.npy").astype(np.float32)


def close(got: np.ndarray, want: np.ndarray) -> None:
    # The bound: max abs difference <= 1e-3 x the reference output's standard deviation.
    assert got.shape == want.shape
    assert np.abs(got.astype(np.float64) - want).max() <= 1e-3 * want.std()


@pytest.mark.parametrize("name", ["hubert_group", "hubert_layer_ctc", "wav2vec2_group", "qwen2_audio", "whisper"])
def test_layers_and_final_equal_transformers(name):
    enc = encoders.Encoder.from_pretrained(EMBED / name, num_threads=2)
    n = enc.num_layers
    # (clip, reference): the Whisper fixture has one reference, of clip 1.
    pairs = [(1, 0)] if name == "whisper" else [(0, 0), (1, 1)]
    for c, i in pairs:
        layers = enc.embed(clip(c), layers="all")
        want = np.load(EMBED / name / f"ref_{i}_layers.npy")
        assert layers.shape[0] == n + 1
        for k in range(n + 1):
            close(layers[k], want[k])
        close(enc.embed(clip(c)), np.load(EMBED / name / f"ref_{i}_final.npy"))


def test_projected_and_mean_pool():
    enc = encoders.Encoder(EMBED / "qwen2_audio")
    assert enc.family == "qwen2_audio"
    want = np.load(EMBED / "qwen2_audio" / "ref_0_projected.npy")
    got = enc.embed(clip(0), stage="projected")
    close(got, want)
    pooled = enc.embed(clip(0), stage="projected", pool="mean")
    assert pooled.shape == (want.shape[1],)
    np.testing.assert_allclose(pooled, got.astype(np.float64).mean(axis=0), rtol=0, atol=1e-6)
    d = enc.describe(stage="projected")
    assert d["layers"] == ["projected"] and d["dim"] == want.shape[1] and d["frame_rate_hz"] == 25.0


def test_batches_equal_one_clip_at_a_time_and_rates_are_resampled():
    enc = encoders.Encoder(EMBED / "hubert_group", num_threads=2)
    a, b = clip(0), clip(1)
    single = [enc.embed(x, layers=[0, 2]) for x in (a, b)]
    for bs in (1, 3):
        batch = enc.embed([b, a, b], layers=[0, 2], batch_size=bs)
        for got, want in zip(batch, [single[1], single[0], single[1]]):
            np.testing.assert_array_equal(got, want)
    # Audio at 8 kHz is resampled as audiotok.resample does it before embedding.
    low = audiotok.resample(a, orig_sr=16000, target_sr=8000)
    np.testing.assert_array_equal(
        enc.embed(low, sampling_rate=8000), enc.embed(audiotok.resample(low, orig_sr=8000, target_sr=16000))
    )


def test_embed_files_equals_embed_and_records_bad_files(tmp_path):
    import wave

    enc = encoders.Encoder(EMBED / "whisper")
    good = tmp_path / "in" / "a.wav"
    good.parent.mkdir()
    with wave.open(str(good), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(clip(0), -1, 1) * 32767).astype("<i2").tobytes())
    a, sr = audiotok.load(good, sr=16000)
    assert sr == 16000
    (tmp_path / "in" / "bad.wav").write_bytes(b"not audio")
    summary = encoders.embed_files(tmp_path / "in", tmp_path / "out", model=EMBED / "whisper", layers=[1])
    assert (summary["done"], summary["failed"]) == (1, 1)
    bad = [r for r in summary["records"] if r["status"] == "failed"][0]
    assert "bad.wav" in bad["error"]
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "a.npy"), enc.embed(a, layers=[1]))
    lines = (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(x)["status"] for x in lines] == ["ok", "failed"]


def test_errors_name_the_clip_and_the_encoder_pickles():
    enc = encoders.Encoder(EMBED / "hubert_group")
    with pytest.raises(encoders.EmbedError, match="clip 1: .*receptive field"):
        enc.embed([clip(0), np.zeros(100, np.float32)])
    bad = clip(0)
    bad[7] = np.nan
    with pytest.raises(encoders.EmbedError, match="clip 0: non-finite"):
        enc.embed(bad)
    with pytest.raises(encoders.EmbedError, match="hidden states 0 to"):
        enc.embed(clip(0), layers=[99])
    with pytest.raises(encoders.EmbedError, match="projector"):
        enc.embed(clip(0), stage="projected")
    with pytest.raises(encoders.EmbedError):
        encoders.Encoder(EMBED / "does-not-exist")
    again = pickle.loads(pickle.dumps(enc))
    np.testing.assert_array_equal(again.embed(clip(1)), enc.embed(clip(1)))
