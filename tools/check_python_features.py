#!/usr/bin/env python3
"""audiotok.WhisperFeatureExtractor against transformers' own, call for call, and their speed.

Run by hand (the Python tests compare against committed goldens; this checks the call semantics
the goldens do not cover: batches, padding modes, max_length, pad_to_multiple_of, truncation,
the attention-mask defaults), in the golden venv plus the package:

    .venv/bin/pip install -r tools/requirements-golden.txt maturin==1.16.0
    PATH=$PWD/.venv/bin:$PATH .venv/bin/pip install --no-build-isolation --no-deps ./bindings/python
    .venv/bin/python tools/check_python_features.py [--bench-clips 40]

transformers==5.23.0 without torch (its numpy path, as the goldens). Speed: the same arrays
through each extractor on one core (OMP/OPENBLAS threads 1, audiotok num_threads=1).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import transformers  # noqa: E402
from transformers import WhisperFeatureExtractor as Reference  # noqa: E402

import audiotok  # noqa: E402

assert transformers.__version__ == "5.23.0", transformers.__version__

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def clip(name: str) -> np.ndarray:
    return audiotok.load(os.path.join(ROOT, "tests/fixtures/audio", name))[0]


def compare(label: str, ref_out, ours_out, exact: bool) -> float:
    assert set(ref_out.keys()) == set(ours_out.keys()), (label, set(ref_out.keys()), set(ours_out.keys()))
    worst = 0.0
    for k in ref_out.keys():
        r, o = np.asarray(ref_out[k]), np.asarray(ours_out[k])
        assert r.shape == o.shape and r.dtype == o.dtype, (label, k, r.shape, o.shape, r.dtype, o.dtype)
        d = float(np.max(np.abs(r.astype(np.float64) - o.astype(np.float64)))) if r.size else 0.0
        if exact or k == "attention_mask":
            assert d == 0.0, (label, k, d)
        worst = max(worst, d)
    return worst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-clips", type=int, default=40)
    args = ap.parse_args()
    a, b, c = clip("speech_1s.wav"), clip("speech_7s.flac"), clip("speech_45s.flac")
    short = a[:1234]
    cases = [
        ("one clip", a, {}),
        ("one clip, list of floats", list(map(float, short)), {}),
        ("batch max_length", [a, b, c], {"return_attention_mask": True}),
        ("batch longest", [a, b], {"padding": "longest", "return_attention_mask": True}),
        ("longest, odd length", [short, a], {"padding": "longest", "return_attention_mask": True}),
        ("2-D array batch", np.stack([a, -a]), {"return_attention_mask": True}),
        ("max_length 16000", [a, b], {"max_length": 16000, "return_attention_mask": True}),
        ("pad_to_multiple_of", [short], {"padding": "longest", "pad_to_multiple_of": 1000, "return_attention_mask": True}),
        ("no mask", [a, b], {"return_attention_mask": False}),
    ]
    print(f"transformers {transformers.__version__}, audiotok {audiotok.__version__}")
    for size in (80, 128):
        for ctor in ({}, {"return_attention_mask": True}):
            ref = Reference(feature_size=size, **ctor)
            for precision in ("exact", "fast"):
                ours = audiotok.WhisperFeatureExtractor(feature_size=size, precision=precision, **ctor)
                for label, x, kw in cases:
                    r = ref(x, sampling_rate=16000, return_tensors="np", **kw)
                    o = ours(x, sampling_rate=16000, return_tensors="np", **kw)
                    d = compare(f"{size} {ctor} {precision} {label}", r, o, exact=precision == "exact")
                    r2 = ref(x, sampling_rate=16000, **kw)
                    o2 = ours(x, sampling_rate=16000, **kw)
                    compare(f"{size} {ctor} {precision} {label} (no return_tensors)", r2, o2, exact=precision == "exact")
                    if precision == "fast":
                        assert d < 1e-4, (size, label, d)
                print(f"feature_size={size} ctor={ctor} precision={precision}: {len(cases)} calls equal"
                      + (" (bit for bit)" if precision == "exact" else " (max |diff| < 1e-4)"))

    # Speed: 7 s clips, max_length (the Qwen2-Audio processor's call), one core each.
    clips = [np.roll(b, i * 997) for i in range(args.bench_clips)]
    ref = Reference(feature_size=128)
    ours = audiotok.WhisperFeatureExtractor(feature_size=128, num_threads=1)
    results = {}
    for name, fe in (("transformers", ref), ("audiotok", ours)):
        fe(clips[0], sampling_rate=16000, return_attention_mask=True)  # warm
        t = time.perf_counter()
        for x in clips:
            fe(x, sampling_rate=16000, return_tensors="np", return_attention_mask=True)
        results[name] = (time.perf_counter() - t) / len(clips)
    t = time.perf_counter()
    ours(clips, sampling_rate=16000, return_tensors="np", return_attention_mask=True)
    batch = (time.perf_counter() - t) / len(clips)
    print(f"speed, {len(clips)} clips of 7 s, whisper-128 max_length, one core:")
    print(f"  transformers {1e3 * results['transformers']:.2f} ms/clip, audiotok {1e3 * results['audiotok']:.2f} ms/clip"
          f" ({results['transformers'] / results['audiotok']:.1f}x); one batch call {1e3 * batch:.2f} ms/clip")


if __name__ == "__main__":
    main()
