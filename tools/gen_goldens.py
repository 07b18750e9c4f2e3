#!/usr/bin/env python3
"""Golden reference outputs for audiotok's parity tests.

Run from the repository root, after tools/make_test_audio.sh:

    .venv/bin/pip install -r tools/requirements-golden.txt
    .venv/bin/python tools/gen_goldens.py

Pinned reference packages (asserted at startup; see tools/requirements-golden.txt):

    numpy==2.1.3
    scipy==1.17.1
    soundfile==0.14.0     (bundled libsndfile 1.2.2, which decodes MP3/Vorbis/Opus)
    soxr==1.1.0
    librosa==0.11.0
    transformers==5.23.0  (WITHOUT torch: WhisperFeatureExtractor then uses its
                           numpy code path, _np_extract_fbank_features)
    Python 3.11

Inputs: tests/fixtures/audio/ (decoded with soundfile.read(path, dtype="float32")).
Outputs: tests/fixtures/golden/
    <name>.npy.gz        float32 little-endian C-order .npy, gzip level 9, mtime 0
                         (no file name in the gzip header), so reruns are
                         byte-identical.
    goldens.json         per golden: file, shape, source clip + its sha256,
                         parameters, attention-mask ones count, simple stats;
                         plus the package versions.
    decoded_formats.json what soundfile reports for every file in
                         tests/fixtures/audio/ (frames, channels, rate, format,
                         subtype, decoded-sample statistics, or the error).

Load a golden in Python with:
    np.load(io.BytesIO(gzip.decompress(open(p, "rb").read())))
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import sys
from pathlib import Path

PINNED = {
    "numpy": "2.1.3",
    "scipy": "1.17.1",
    "soundfile": "0.14.0",
    "soxr": "1.1.0",
    "librosa": "0.11.0",
    "transformers": "5.23.0",
}
PINNED_LIBSNDFILE = "1.2.2"

# Keep transformers quiet and offline; it never needs the network here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def check_versions() -> dict:
    from importlib.metadata import version

    found = {name: version(name) for name in PINNED}
    bad = {k: (v, PINNED[k]) for k, v in found.items() if v != PINNED[k]}
    if bad:
        lines = [f"  {k}: installed {got}, pinned {want}" for k, (got, want) in bad.items()]
        sys.exit("version mismatch (pip install -r tools/requirements-golden.txt):\n" + "\n".join(lines))
    import soundfile

    if soundfile.__libsndfile_version__ != PINNED_LIBSNDFILE:
        sys.exit(f"libsndfile {soundfile.__libsndfile_version__} != pinned {PINNED_LIBSNDFILE}")
    from transformers.utils import is_torch_available

    if is_torch_available():
        sys.exit(
            "torch is installed: WhisperFeatureExtractor would use its torch STFT path. "
            "The goldens are defined with the numpy path; run in a venv without torch."
        )
    found["libsndfile"] = soundfile.__libsndfile_version__
    found["python"] = platform.python_version()
    found["whisper_backend"] = "numpy (_np_extract_fbank_features)"
    return found


check_versions_result = check_versions()

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import soxr  # noqa: E402
from transformers import Wav2Vec2FeatureExtractor, WhisperFeatureExtractor  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "tests" / "fixtures" / "audio"
GOLDEN = ROOT / "tests" / "fixtures" / "golden"

CLIPS = {
    "0.1s": "speech_0.1s.wav",
    "1s": "speech_1s.wav",
    "7s": "speech_7s.flac",
    "30s": "speech_30s.flac",
    "45s": "speech_45s.flac",
}

goldens: dict[str, dict] = {}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def load(name: str) -> tuple[np.ndarray, int, Path]:
    path = AUDIO / name
    x, sr = sf.read(str(path), dtype="float32")
    return x, sr, path


def stats(a: np.ndarray) -> dict:
    a64 = a.astype(np.float64)
    return {
        "min": float(a.min()),
        "max": float(a.max()),
        "mean": float(a64.mean()),
        "std": float(a64.std()),
    }


def save(name: str, arr: np.ndarray, src: Path, params: dict, **extra) -> None:
    orig_dtype = str(arr.dtype)
    a = np.ascontiguousarray(arr, dtype="<f4")
    if not np.all(np.isfinite(a)):
        raise AssertionError(f"{name}: non-finite values")
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    # gzip.compress writes no file name and, with mtime=0, no timestamp.
    data = gzip.compress(buf.getvalue(), compresslevel=9, mtime=0)
    out = GOLDEN / f"{name}.npy.gz"
    out.write_bytes(data)
    goldens[name] = {
        "file": rel(out),
        "shape": list(a.shape),
        "dtype": "float32",
        "reference_dtype": orig_dtype,
        "source": rel(src),
        "source_sha256": sha256_file(src),
        "params": params,
        **extra,
        "stats": stats(a),
    }
    print(f"  {out.name:40s} {str(a.shape):14s} {len(data):>9,d} bytes")


# --------------------------------------------------------------------------
def whisper_goldens() -> None:
    fe = {n: WhisperFeatureExtractor(feature_size=n) for n in (80, 128)}
    base = {
        "sampling_rate": 16000,
        "n_fft": 400,
        "hop_length": 160,
        "chunk_length": 30,
        "return_attention_mask": True,
        "call": 'fe(x, sampling_rate=16000, return_tensors="np", padding=..., return_attention_mask=True)',
    }

    def run(name: str, clip: str, feature_size: int, padding: str) -> None:
        x, sr, path = load(CLIPS[clip])
        assert sr == 16000 and x.ndim == 1, (path, sr, x.shape)
        out = fe[feature_size](
            x,
            sampling_rate=16000,
            return_tensors="np",
            padding=padding,
            return_attention_mask=True,
        )
        feats = out["input_features"][0]
        mask = out["attention_mask"]
        save(
            name,
            feats,
            path,
            {**base, "feature_size": feature_size, "padding": padding},
            input_samples=int(x.shape[0]),
            attention_mask_shape=list(mask.shape),
            attention_mask_sum=int(mask.sum()),
        )

    for clip in CLIPS:
        run(f"whisper128_{clip}", clip, 128, "max_length")
    run("whisper80_7s", "7s", 80, "max_length")
    run("whisper128_longest_7s", "7s", 128, "longest")
    run("whisper128_longest_1s", "1s", 128, "longest")


def wav2vec2_goldens() -> None:
    fe = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )
    for clip in ("1s", "7s"):
        x, sr, path = load(CLIPS[clip])
        out = fe(x, sampling_rate=16000, return_tensors="np")
        vals = out["input_values"][0]
        mask = out.get("attention_mask")
        save(
            f"wav2vec2_{clip}",
            vals,
            path,
            {
                "feature_size": 1,
                "sampling_rate": 16000,
                "padding_value": 0.0,
                "do_normalize": True,
                "return_attention_mask": True,
                "normalization": "(x - mean) / sqrt(var + 1e-7) over the unpadded samples",
            },
            input_samples=int(x.shape[0]),
            attention_mask_sum=int(mask.sum()) if mask is not None else int(vals.shape[0]),
        )


def meldb_goldens() -> None:
    params = {
        "sr": 16000,
        "n_fft": 1024,
        "hop_length": 160,
        "win_length": 1024,
        "window": "hann (periodic)",
        "center": True,
        "pad_mode": "constant",
        "power": 2.0,
        "n_mels": 128,
        "fmin": 0.0,
        "fmax": 8000.0,
        "htk": False,
        "norm": "slaney",
        "power_to_db": {"ref": "np.max", "amin": 1e-10, "top_db": 80.0},
    }
    for clip in ("1s", "7s"):
        x, sr, path = load(CLIPS[clip])
        s = librosa.feature.melspectrogram(
            y=x,
            sr=16000,
            n_fft=1024,
            hop_length=160,
            win_length=None,
            window="hann",
            center=True,
            pad_mode="constant",
            power=2.0,
            n_mels=128,
            fmin=0.0,
            fmax=8000.0,
            htk=False,
            norm="slaney",
        )
        # Same call with pure defaults must give the same thing (guards the "defaults" claim).
        s_def = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=1024, hop_length=160, n_mels=128)
        assert np.array_equal(s, s_def)
        db = librosa.power_to_db(s, ref=np.max, top_db=80.0)
        save(
            f"meldb_{clip}",
            db,
            path,
            params,
            input_samples=int(x.shape[0]),
            mel_power_max=float(s.max()),
        )


def resample_goldens() -> None:
    x, sr, path = load("speech_7s_44k_stereo.flac")
    assert sr == 44100 and x.ndim == 2 and x.shape[1] == 2, (sr, x.shape)
    mono = librosa.to_mono(x.T)
    assert mono.dtype == np.float32 and np.allclose(mono, x.mean(axis=1), rtol=0, atol=1e-7)
    y = soxr.resample(mono, 44100, 16000, quality="HQ")
    save(
        "resample_7s_44k_stereo_to16k",
        y,
        path,
        {
            "downmix": "librosa.to_mono(x.T) (mean of channels, float32)",
            "resampler": 'soxr.resample(mono, 44100, 16000, quality="HQ")',
            "in_rate": 44100,
            "out_rate": 16000,
        },
        input_frames=int(x.shape[0]),
        input_channels=int(x.shape[1]),
    )
    x, sr, path = load(CLIPS["1s"])
    for out_rate, tag in ((24000, "24k"), (44100, "44k")):
        y = soxr.resample(x, 16000, out_rate, quality="HQ")
        save(
            f"resample_1s_16k_to{tag}",
            y,
            path,
            {
                "resampler": f'soxr.resample(x, 16000, {out_rate}, quality="HQ")',
                "in_rate": 16000,
                "out_rate": out_rate,
            },
            input_frames=int(x.shape[0]),
        )


# --------------------------------------------------------------------------
LOSSY = {"clip.mp3", "clip.ogg", "clip.opus"}
INVALID = {"text.wav", "empty.wav", "truncated.flac"}


def decoded_formats() -> dict:
    files = sorted(p for p in AUDIO.rglob("*") if p.is_file())
    ref, _ = sf.read(str(AUDIO / "formats" / "float32.wav"), dtype="float32")
    result: dict[str, dict] = {}
    for p in files:
        key = p.relative_to(AUDIO).as_posix()
        entry: dict = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
        if p.name in LOSSY:
            entry["kind"] = "lossy (frame count for reference; samples differ by codec)"
        elif p.name in INVALID:
            entry["kind"] = "invalid or corrupt input"
        if p.name == "clip.opus":
            entry["kind"] = "Opus in Ogg: soundfile decodes it, audiotok must report it as unsupported"
        try:
            info = sf.info(str(p))
            x, sr = sf.read(str(p), dtype="float32", always_2d=True)
        except Exception as e:  # noqa: BLE001 - we record the reference behaviour
            entry["soundfile_error"] = f"{type(e).__name__}: {e}".replace(str(p), key)
            result[key] = entry
            continue
        entry.update(
            {
                "format": info.format,
                "subtype": info.subtype,
                "samplerate": int(sr),
                "channels": int(x.shape[1]),
                "frames": int(x.shape[0]),
                "info_frames": int(info.frames),
            }
        )
        nan = np.isnan(x)
        entry["nan_count"] = int(nan.sum())
        if nan.any():
            entry["nan_positions_ch0"] = [int(i) for i in np.nonzero(nan[:, 0])[0]]
        if x.size:
            xf = np.where(nan, 0.0, x).astype(np.float64)
            entry["decoded_f32"] = {
                "min": float(np.nanmin(x)),
                "max": float(np.nanmax(x)),
                "sum": float(xf.sum()),
                "sum_sq": float((xf * xf).sum()),
                "first8_ch0": [float(v) for v in x[:8, 0]],
                "sha256_le_interleaved": hashlib.sha256(np.ascontiguousarray(x, "<f4").tobytes()).hexdigest(),
            }
            if x.shape[0] == ref.shape[0] and p.name not in LOSSY:
                d = np.abs(np.where(nan[:, 0], 0.0, x[:, 0]) - np.where(nan[:, 0], 0.0, ref))
                entry["max_abs_diff_ch0_vs_formats_float32_wav"] = float(d.max())
        result[key] = entry
    return result


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for p in GOLDEN.glob("*.npy.gz"):
        p.unlink()
    print(f"writing goldens to {rel(GOLDEN)}")
    whisper_goldens()
    wav2vec2_goldens()
    meldb_goldens()
    resample_goldens()
    doc = {
        "generator": "tools/gen_goldens.py",
        "format": "float32 little-endian C-order .npy, gzip-compressed (mtime 0)",
        "versions": check_versions_result,
        "goldens": goldens,
    }
    (GOLDEN / "goldens.json").write_text(json.dumps(doc, indent=2) + "\n")
    formats = {
        "generator": "tools/gen_goldens.py",
        "decoder": f"soundfile {PINNED['soundfile']} / libsndfile {PINNED_LIBSNDFILE}, "
        'sf.read(path, dtype="float32", always_2d=True)',
        "files": decoded_formats(),
    }
    (GOLDEN / "decoded_formats.json").write_text(json.dumps(formats, indent=2) + "\n")
    total = sum(p.stat().st_size for p in GOLDEN.iterdir())
    print(f"total {total:,d} bytes in {rel(GOLDEN)}")


if __name__ == "__main__":
    main()
