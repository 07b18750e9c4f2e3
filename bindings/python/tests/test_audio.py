"""audiotok.load / info / resample against the soundfile, librosa and soxr goldens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import audiotok
from conftest import AUDIO, ROOT, golden_array


def test_load_downmixes_and_resamples_as_librosa(goldens):
    g = goldens["resample_7s_44k_stereo_to16k"]
    y, sr = audiotok.load(ROOT / g["source"], sr=16000)
    assert sr == 16000 and y.dtype == np.float32 and y.flags.c_contiguous
    np.testing.assert_allclose(y, golden_array(g), rtol=0, atol=2e-6)


def test_load_keeps_the_rate_and_channels_when_asked():
    y, sr = audiotok.load(str(AUDIO / "speech_7s_44k_stereo.flac"), sr=None, mono=False)
    assert sr == 44100 and y.shape == (2, 308700)
    mono, _ = audiotok.load(AUDIO / "speech_7s_44k_stereo.flac", sr=None)
    np.testing.assert_allclose(mono, y.mean(axis=0), atol=1e-7)


def test_resample_matches_soxr_hq(goldens):
    for name in ("resample_1s_16k_to24k", "resample_1s_16k_to44k"):
        g = goldens[name]
        x, _ = audiotok.load(ROOT / g["source"], sr=None)
        y = audiotok.resample(x, orig_sr=g["params"]["in_rate"], target_sr=g["params"]["out_rate"])
        np.testing.assert_allclose(y, golden_array(g), rtol=0, atol=2e-6)
    x, _ = audiotok.load(AUDIO / "speech_1s.wav", sr=None)
    two = audiotok.resample(np.stack([x, -x]), orig_sr=16000, target_sr=24000)
    assert two.shape == (2, 24000)
    np.testing.assert_array_equal(two[1], audiotok.resample(-x, orig_sr=16000, target_sr=24000))


def test_info_names_fields_as_soundfile():
    i = audiotok.info(AUDIO / "speech_7s.flac")
    assert (i.samplerate, i.channels, i.frames, i.format, i.exact_length) == (16000, 1, 112000, "flac", True)
    assert i.duration == pytest.approx(7.0)
    assert "speech_7s.flac" in repr(i)


def test_errors_name_the_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        audiotok.load(tmp_path / "missing.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(audiotok.AudioError, match="bad.wav") as e:
        audiotok.load(bad)
    assert isinstance(e.value, audiotok.AudiotokError) and isinstance(e.value, ValueError)
    with pytest.raises(audiotok.AudioError, match="sample rate"):
        audiotok.load(AUDIO / "speech_1s.wav", sr=10**9)


def test_load_takes_the_encoded_file_in_memory():
    import io

    for name in ("speech_7s_44k_stereo.flac", "speech_1s.wav", "formats/clip.mp3", "formats/clip.ogg"):
        data = (AUDIO / name).read_bytes()
        want, want_sr = audiotok.load(AUDIO / name, sr=16000)
        y, sr = audiotok.load(data, sr=16000)
        assert sr == want_sr == 16000
        np.testing.assert_array_equal(y, want)
        y2, _ = audiotok.load(io.BytesIO(data), sr=16000)
        np.testing.assert_array_equal(y2, want)
        y3, _ = audiotok.load(memoryview(data), sr=None, mono=False)
        np.testing.assert_array_equal(y3, audiotok.load(AUDIO / name, sr=None, mono=False)[0])


def test_bytes_that_are_not_audio_fail_with_the_given_name():
    with pytest.raises(audiotok.AudioError, match=r"shard\.parquet#3"):
        audiotok.load(b"not audio at all", name="shard.parquet#3")
    with pytest.raises(audiotok.AudioError, match="<bytes>"):
        audiotok.load(b"")
    with open(AUDIO / "formats/nan.wav", "rb") as f:
        with pytest.raises(audiotok.AudioError, match="nan.wav"):
            audiotok.load(f)
