"""audiotok.bsq: a tiny tokenizer trained by the library's job, then audio to codes and back on
arrays equal to what the CLI's jobs write (token store records, decoded mel-db files)."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

import audiotok
from audiotok import bsq, tokens

from conftest import AUDIO, BSQ_CONFIG

CLIPS = ["speech_1s.wav", "speech_7s.flac", "speech_7s_44k_stereo.flac"]

CONFIG = BSQ_CONFIG


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bsq-audio")
    for name in CLIPS:
        shutil.copy(AUDIO / name, d / name)
    return d


@pytest.fixture(scope="module")
def run(audio_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bsq-run") / "run"
    calls = []
    summary = bsq.train(CONFIG, audio_dir, out, progress=lambda *a: calls.append(a))
    assert summary["step"] == 3 and summary["steps_run"] == 3
    assert summary["train_clips"] + summary["val_clips"] == len(CLIPS)
    assert len(summary["log"]) == 3 and summary["log"][-1]["val"]["crops"] > 0
    assert (out / "metrics.jsonl").read_text().count("\n") == 3
    assert any(c[0] == "train" and c[1] == 3 for c in calls)
    return out


def test_train_validates_and_resumes_as_the_cli_does(run, audio_dir, tmp_path):
    bad = {**CONFIG, "model": {**CONFIG["model"], "group_size": 4}}
    with pytest.raises(bsq.BsqError, match="group_size"):
        bsq.train(bad, audio_dir, tmp_path / "bad")
    with pytest.raises(bsq.BsqError, match="steps and seed"):
        bsq.train(None, audio_dir, run, resume=True, steps=9)
    # Stopped after update 2 and resumed: the same weights as the run of 3 updates.
    part = tmp_path / "part"
    bsq.train(CONFIG, audio_dir, part, stop_at=2)
    bsq.train(None, audio_dir, part, resume=True)
    for f in ("weights.safetensors", "ema.safetensors"):
        a = (run / "checkpoints" / "step-00000003" / f).read_bytes()
        assert (part / "checkpoints" / "step-00000003" / f).read_bytes() == a, f


def test_encode_equals_the_store_audiotok_bsq_encode_writes(run, audio_dir, tmp_path):
    tok = bsq.BsqTokenizer.from_pretrained(run)
    assert (tok.bits, tok.group_size, tok.codebook_size, tok.freq_patches, tok.time_patch) == (6, 3, 64, 2, 4)
    assert tok.weights == "ema" and tok.checkpoint.endswith("step-00000003")
    assert tok.rate_hz == 50.0
    summary = bsq.encode_files(audio_dir, tmp_path / "store", model=run, batch_size=2)
    assert summary["files"] == len(CLIPS) and summary["rejects"] == []
    recs = {r["file_path"]: r for r in tokens.read_table(tmp_path / "store").to_pylist()}
    layout = tok.store_layout()
    assert layout["num_scales"] == 3 and layout["codebook_sizes"] == [64, 8, 8]
    for name in CLIPS:
        path = str(audio_dir / name)
        y, sr = audiotok.load(path, sr=None, mono=True)
        codes = tok.encode(y, sr)
        r = recs[path]
        assert codes.dtype == np.int64 and list(codes.shape) == r["shape_scale_0"]
        np.testing.assert_array_equal(codes.reshape(-1), np.asarray(r["tokens_scale_0"]))
        # The group scales: each code's bits, g at a time, most significant group first.
        g1, g2 = np.asarray(r["tokens_scale_1"]), np.asarray(r["tokens_scale_2"])
        np.testing.assert_array_equal(g1 * 8 + g2, codes.reshape(-1))
        # Features then encode_mel: the same codes.
        y16, _ = audiotok.load(path, sr=16000, mono=True)
        np.testing.assert_array_equal(tok.encode_mel(tok.features(y16)), tok.encode(y16, 16000))
    # Silent and empty audio are refused, naming why.
    with pytest.raises(bsq.BsqError, match="silent"):
        tok.encode(np.zeros(16000, np.float32))
    with pytest.raises(bsq.BsqError, match="no samples"):
        tok.encode(np.zeros(0, np.float32))
    with pytest.raises(bsq.BsqError, match="not finite"):
        tok.encode(np.array([0.1, np.nan] * 800, np.float32), 8000)
    # Pickles as its arguments.
    y, sr = audiotok.load(audio_dir / CLIPS[0], sr=None)
    again = pickle.loads(pickle.dumps(tok))
    np.testing.assert_array_equal(again.encode(y, sr), tok.encode(y, sr))
    live = bsq.BsqTokenizer(run, weights="live")
    assert live.weights == "live"


def test_decode_equals_the_files_audiotok_bsq_decode_writes(run, audio_dir, tmp_path):
    tok = bsq.BsqTokenizer.from_pretrained(run)
    bsq.encode_files(audio_dir, tmp_path / "store", model=run)
    done = bsq.decode_store(tmp_path / "store", tmp_path / "mel", model=run)
    assert len(done) == len(CLIPS)
    recs = {r["file_path"]: r for r in tokens.read_table(tmp_path / "store").to_pylist()}
    for d in done:
        r = recs[d["file_path"]]
        want = np.load(tmp_path / "mel" / d["output"])
        got = tok.decode(np.asarray(r["tokens_scale_0"]).reshape(r["shape_scale_0"]), frames=d["frames"])
        assert got.dtype == np.float32 and got.shape == want.shape == (16, d["frames"])
        np.testing.assert_array_equal(got, want)
        assert got.min() >= -80.0 and got.max() <= 0.0
    with pytest.raises(bsq.BsqError, match="not below 2\\^6"):
        tok.decode(np.array([[64, 0]]))
    report = bsq.evaluate(audio_dir, model=run)
    assert report["files"] == len(CLIPS) and report["rejects"] == []
    assert report["tokens"] == sum(len(r["tokens_scale_0"]) for r in recs.values())
    assert 0 < report["codes"]["unique"] <= 64 and len(report["groups"]) == 2 and len(report["bit_balance"]) == 6
    assert report["model"]["l1"] > 0 and report["bitrate"] == 300.0
