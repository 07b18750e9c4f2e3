#!/usr/bin/env python3
"""`audiotok params` against the Python way of counting, in one run (tools/requirements-params.txt).

For each published configuration in tests/fixtures/params/published, times
  - audiotok:  the params job's JSON report for DIR (`params_json [--config-only] DIR`, the example binary of
               crates/audiotok-inspect, release build: a whole process: start, read, print), and
  - Python:    transformers building the model on the `meta` device (no weights allocated) from the same
               config.json and sum(p.numel()) (in-process: the import of torch/transformers is not counted),
and for the tiny checkpoints (headers), the same from the headers against `from_pretrained` + sum(p.numel()).
Prints the median of --repeat runs of each and the ratio, and checks both give the same total.

Usage: cargo build --release -p audiotok-inspect --example params_json
       python tools/bench_params.py [--bin target/release/examples/params_json] [--repeat 5]
"""
import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "params"


def median_time(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def model_class(config):
    return getattr(transformers, config.architectures[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "examples" / "params_json"))
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()

    def ours(d, config_only):
        args = [a.bin, str(d)] + (["--config-only"] if config_only else [])
        return json.loads(subprocess.run(args, check=True, capture_output=True).stdout)["total"]

    print(f"{'model':<22} {'mode':<8} {'audiotok ms':>12} {'python ms':>12} {'ratio':>8}")
    for mode, names in (("config", sorted(p.name for p in (FIX / "published").iterdir())),
                        ("headers", ["qwen3-sharded", "whisper", "qwen2-audio", "hubert"])):
        for name in names:
            d = FIX / ("published" if mode == "config" else "tiny") / name

            def python():
                config = AutoConfig.from_pretrained(d)
                if mode == "config":
                    with torch.device("meta"):
                        m = model_class(config)(config)
                else:
                    m = model_class(config).from_pretrained(d)
                return sum(p.numel() for p in m.parameters())

            t_ours, n_ours = median_time(lambda: ours(d, mode == "config"), a.repeat)
            t_py, n_py = median_time(python, a.repeat)
            assert n_ours == n_py, (name, n_ours, n_py)
            print(f"{name:<22} {mode:<8} {t_ours * 1e3:>12.1f} {t_py * 1e3:>12.1f} {t_py / t_ours:>7.1f}x")


if __name__ == "__main__":
    main()
