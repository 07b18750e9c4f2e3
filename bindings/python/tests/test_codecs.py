"""audiotok.codecs: SNAC on arrays against the snac package's own outputs, and the encode/decode
jobs from Python (tests/fixtures/snac, made by tools/gen_snac_fixtures.py with snac 1.2.1)."""

from __future__ import annotations

import os
import pickle
import threading

import numpy as np
import pytest

import audiotok
from audiotok import codecs, tokens

from conftest import AUDIO, FIXTURES

SNAC_DIR = FIXTURES / "snac"


def clip(model: str, stem: str):
    d = SNAC_DIR / model
    x = np.load(d / f"{stem}_input.npy")
    codes = [np.load(p) for p in sorted(d.glob(f"{stem}_codes*.npy"))]
    decoded = np.load(d / f"{stem}_decoded.npy")
    return x, codes, decoded


@pytest.fixture(scope="module")
def tiny24():
    return codecs.SNAC.from_pretrained(SNAC_DIR / "tiny24", num_threads=2)


@pytest.mark.parametrize("model,stem", [("tiny24", "1s"), ("tiny24", "0p1s"), ("tiny32", "1s")])
def test_codes_and_audio_equal_the_reference(model, stem):
    m = codecs.SNAC.from_pretrained(SNAC_DIR / model)
    x, want, decoded = clip(model, stem)
    # The reference takes [batch, 1, samples] and returns [batch, frames] int64 per codebook.
    x = x.reshape(-1)
    got = m.encode(x)
    assert len(got) == m.n_codebooks == len(want)
    for g, w in zip(got, want):
        assert g.dtype == np.int64
        np.testing.assert_array_equal(g, w.reshape(-1))
    audio = m.decode([w.reshape(-1) for w in want])
    assert audio.dtype == np.float32 and audio.shape == decoded.reshape(-1).shape
    np.testing.assert_allclose(audio, decoded.reshape(-1), atol=1e-4, rtol=0)


def test_batches_have_snac_shapes_and_equal_row_by_row(tiny24):
    x, want, decoded = clip("tiny24", "1s")
    x = x.reshape(-1)
    batch = np.stack([x, x[::-1].copy(), 0.5 * x])[:, None, :]
    codes = tiny24.encode(batch)
    for k, c in enumerate(codes):
        assert c.shape == (3, want[k].size) and c.dtype == np.int64
        np.testing.assert_array_equal(c[0], want[k].reshape(-1))
        for i in range(3):
            np.testing.assert_array_equal(c[i], tiny24.encode(batch[i, 0])[k])
    audio = tiny24.decode(codes)
    assert audio.shape == (3, 1, decoded.size) and audio.dtype == np.float32
    np.testing.assert_allclose(audio[0, 0], decoded.reshape(-1), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(audio[2, 0], tiny24.decode([c[2] for c in codes]))


def test_noise_is_seeded(tiny24):
    _, want, _ = clip("tiny24", "1s")
    flat = [w.reshape(-1) for w in want]
    quiet = tiny24.decode(flat)
    a = tiny24.decode(flat, noise_seed=7)
    np.testing.assert_array_equal(a, tiny24.decode(flat, noise_seed=7))
    assert not np.array_equal(a, quiet) and not np.array_equal(a, tiny24.decode(flat, noise_seed=8))
    # Row i of a batch uses seed + i, as `audiotok decode --noise` seeds record i.
    b = tiny24.decode([np.stack([c, c]) for c in flat], noise_seed=7)
    np.testing.assert_array_equal(b[0, 0], a)
    np.testing.assert_array_equal(b[1, 0], tiny24.decode(flat, noise_seed=8))


def test_properties_and_pickle(tiny24):
    assert (tiny24.sampling_rate, tiny24.n_codebooks, tiny24.codebook_size) == (24000, 3, 1024)
    assert tiny24.hop_length > 0 and len(tiny24.vq_strides) == 3
    assert tiny24.config["sampling_rate"] == 24000
    back = pickle.loads(pickle.dumps(tiny24))
    x, _, _ = clip("tiny24", "0p1s")
    for a, b in zip(back.encode(x.reshape(-1)), tiny24.encode(x.reshape(-1))):
        np.testing.assert_array_equal(a, b)


def test_bad_input_raises_codec_error(tiny24, tmp_path):
    _, want, _ = clip("tiny24", "1s")
    flat = [w.reshape(-1) for w in want]
    with pytest.raises(codecs.CodecError, match="out of range"):
        tiny24.decode([flat[0], flat[1], flat[2] + 5000])
    with pytest.raises(codecs.CodecError, match="is not a code"):
        tiny24.decode([flat[0] - 10**6, flat[1], flat[2]])
    with pytest.raises(codecs.CodecError, match="codebook"):
        tiny24.decode(flat[:2])
    with pytest.raises(codecs.CodecError, match="mono"):
        tiny24.encode(np.zeros((1, 2, 4800), dtype=np.float32))
    with pytest.raises(codecs.CodecError, match="non-finite"):
        tiny24.encode(np.full(4800, np.nan, dtype=np.float32))
    with pytest.raises(codecs.CodecError, match="shorter than one hop"):
        tiny24.encode(np.zeros(3, dtype=np.float32))
    with pytest.raises(codecs.CodecError, match="device"):
        codecs.SNAC.from_pretrained(SNAC_DIR / "tiny24", device="tpu")
    with pytest.raises(codecs.CodecError, match="config.json"):
        codecs.SNAC.from_pretrained(tmp_path)
    assert issubclass(codecs.CodecError, audiotok.AudiotokError)


def test_encode_job_store_equals_array_encode(tiny24, tmp_path):
    files = [AUDIO / "speech_1s.wav", AUDIO / "speech_0.1s.wav", AUDIO / "formats" / "text.wav"]
    out = tmp_path / "store"
    seen = []
    lock = threading.Lock()

    def progress(phase, done, total):
        with lock:
            seen.append(phase)

    summary = codecs.encode_files(
        files, out, model=SNAC_DIR / "tiny24", segment_seconds=0, batch_size=1, num_threads=2, progress=progress
    )
    assert summary["files"] == 2 and summary["records"] == 2 and summary["batches"] == 2
    assert [os.path.basename(f["path"]) for f in summary["failures"]] == ["text.wav"]
    assert {"scan", "encode"} <= set(seen)
    store = tokens.TokenStore(out)
    assert len(store) == 2 and store.metadata is not None and store.metadata["num_files"] == 2
    table = store.to_table()
    assert table.column("file_path").to_pylist() == [os.fspath(f) for f in files[:2]]
    for i, f in enumerate(files[:2]):
        y, sr = audiotok.load(f, sr=None)
        codes = tiny24.encode(y, sampling_rate=sr)
        for k in range(3):
            np.testing.assert_array_equal(table.column(f"tokens_scale_{k}")[i].values.to_numpy(), codes[k])
    # A rerun reuses every batch and gives the same bytes.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = codecs.encode_files(files, out, model=SNAC_DIR / "tiny24", segment_seconds=0, batch_size=1)
    assert again["reused_batches"] == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    wavs = tmp_path / "wavs"
    dec = codecs.decode_store(out, wavs, model=SNAC_DIR / "tiny24", num_threads=2)
    assert dec["records"] == 2 and dec["failures"] == [] and dec["sampling_rate"] == 24000
    names = sorted(p.name for p in wavs.iterdir())
    assert len(names) == 2
    first, sr = audiotok.load(wavs / names[0], sr=None)
    assert sr == 24000
    want = tiny24.decode([table.column(f"tokens_scale_{k}")[0].values.to_numpy() for k in range(3)])
    want = want[: int(round(table.column("duration")[0].as_py() * 24000))]
    np.testing.assert_array_equal(first, want)
