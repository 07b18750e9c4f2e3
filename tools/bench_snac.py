#!/usr/bin/env python3
"""SNAC encode throughput: audiotok's candle implementation vs PyTorch running the reference `snac`
package, same weights, same audio, same thread count, in one run.

Versions: tools/requirements-snac.txt (snac==1.2.1, torch==2.15.0 CPU). Weights: the published-size
24 kHz configuration with random weights from `tools/gen_snac_fixtures.py --only-full`
(bench-data/snac/snac_24khz/, config.json + pytorch_model.bin, the HF layout).

  python tools/bench_snac.py                      # 1 and 2 threads, 30 s clip, 3 timed runs each
  python tools/bench_snac.py --threads 1 --repeats 5

Each side does one warm-up encode, then REPEATS timed ones; the best run counts (median printed too).
Throughput = seconds of audio / seconds of wall time. PyTorch threads: torch.set_num_threads(N) (and
one interop thread); candle: RAYON_NUM_THREADS=N (its matrix products use the same count).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from snac import SNAC

ROOT = Path(__file__).resolve().parent.parent


def torch_encode_times(model, x, repeats):
    t = torch.from_numpy(x)[None, None, :]
    with torch.inference_mode():
        ref = model.encode(t)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            codes = model.encode(t)
            times.append(time.perf_counter() - t0)
            assert all(torch.equal(a, b) for a, b in zip(ref, codes))
    return sorted(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "bench-data/snac/snac_24khz"))
    ap.add_argument("--audio", default=str(ROOT / "tests/fixtures/audio/speech_30s.flac"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    model_dir = Path(args.model)
    if not (model_dir / "pytorch_model.bin").is_file():
        sys.exit(f"{model_dir}: no weights; run tools/gen_snac_fixtures.py --only-full first")
    cfg = json.loads((model_dir / "config.json").read_text())
    rate = cfg["sampling_rate"]

    x, sr = sf.read(args.audio, dtype="float32", always_2d=True)
    x = x.mean(axis=1).astype(np.float32)
    x = soxr.resample(x, sr, rate, quality="HQ").astype(np.float32)
    npy = model_dir.parent / f"bench_{Path(args.audio).stem}_{rate}.npy"
    np.save(npy, x)
    seconds = len(x) / rate

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "audiotok-codecs", "--example", "snac_encode_bench"],
                   cwd=ROOT, check=True)
    exe = ROOT / "target/release/examples/snac_encode_bench"

    torch.set_num_interop_threads(1)
    model = SNAC.from_pretrained(str(model_dir)).eval()
    print(f"load before: {os.getloadavg()}  audio {seconds:.1f} s at {rate} Hz, model {model_dir}")
    rows = []
    for n in args.threads:
        torch.set_num_threads(n)
        tt = torch_encode_times(model, x, args.repeats)
        env = dict(os.environ, RAYON_NUM_THREADS=str(n))
        out = subprocess.run([str(exe), str(model_dir), str(npy), str(args.repeats)], env=env, check=True,
                             capture_output=True, text=True).stdout
        c = json.loads(out.strip().splitlines()[-1])
        t_x = seconds / tt[0]
        rows.append((n, t_x, statistics.median(tt), c["x_realtime"], c["median_s"]))
        print(f"threads {n}: pytorch {t_x:6.2f}x realtime (best {tt[0]:.2f} s, median {statistics.median(tt):.2f} s)  "
              f"candle {c['x_realtime']:6.2f}x realtime (best {c['best_s']:.2f} s, median {c['median_s']:.2f} s)  "
              f"ratio candle/pytorch {c['x_realtime'] / t_x:.2f}")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
