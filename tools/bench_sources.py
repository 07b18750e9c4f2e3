#!/usr/bin/env python3
"""Features from a Parquet shard of embedded FLAC clips (issue 15): audiotok on the shard vs audiotok
on the same clips as files, and vs HF datasets + its Audio decoder + WhisperFeatureExtractor.

    cargo build --release -p audiotok-cli        # or, lighter (no candle):
    cargo build --release -p audiotok-sources --example features_from
    OMP_NUM_THREADS=1 taskset -c 0 /work/venvs/sources/bin/python tools/bench_sources.py [--n 1000] [--runs 3]

With target/release/audiotok present it runs `audiotok features`; else the example
`features_from`, which makes the same two library calls as the CLI (`audiotok_sources::collect`,
`audiotok_features::write_features` on one thread) without the CLI's other subcommands.

The venv is tools/requirements-sources.txt's (it sees .venv-torch's torch/transformers through a
.pth file; see tools/gen_source_fixtures.py). Everything runs on one core (taskset -c 0, one
thread each: `--jobs 1`, torch.set_num_threads(1)).

Data (bench-data/sources/, made once): N clips of 2 to 6 s (seeded; a random tone glide plus
noise, 16 kHz mono 16-bit FLAC) in clips/, and the same N as one Parquet shard written by datasets
the way push_to_hub writes it (`cast_column("audio", Audio())`, bytes embedded with
`embed_table_storage`, 100 rows per row group).

Timed (best of --runs, whole-process wall time for audiotok; the loop for Python, imports and
extractor construction excluded):

* audiotok features --kind whisper-128 --jobs 1 --out OUT shard.parquet
* audiotok features --kind whisper-128 --jobs 1 --out OUT clips/
* Python: Dataset.from_parquet(shard).cast_column("audio", Audio(sampling_rate=16000)); for each
  row, datasets' decoder (torchcodec's AudioDecoder: decode + resample) .get_all_samples(), then
  WhisperFeatureExtractor(feature_size=128)(x, sampling_rate=16000, padding="longest",
  return_tensors="np") and np.save of the features, as a datasets user writes it.

All three use Whisper's `longest` padding (each clip its own length, `--padding longest`): the
30 s max-length arrays of 1000 clips would be 1.5 GB per run. Outputs are written under /dev/shm.

Output agreement: max |python - audiotok| over the .npy pairs, and the shard's .npy bytes equal
the files' (they must). Prints a Markdown report, written to bench-data/bench_sources.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data" / "sources"
BIN = ROOT / "target" / "release" / "audiotok"
EXAMPLE = ROOT / "target" / "release" / "examples" / "features_from"


def make_data(n: int) -> Path:
    clips = DATA / "clips"
    shard = DATA / "train-00000-of-00001.parquet"
    if shard.exists() and len(list(clips.glob("*.flac"))) == n:
        return shard
    shutil.rmtree(DATA, ignore_errors=True)
    clips.mkdir(parents=True)
    rng = np.random.default_rng(15)
    for i in range(n):
        secs = rng.uniform(2.0, 6.0)
        t = np.arange(int(secs * 16000)) / 16000
        f0, f1 = rng.uniform(100, 400), rng.uniform(100, 400)
        x = 0.3 * np.sin(2 * np.pi * (f0 + (f1 - f0) * t / (2 * secs)) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(clips / f"clip{i:05d}.flac", x.astype(np.float32), 16000, subtype="PCM_16")
    from datasets import Audio, Dataset
    from datasets.table import embed_table_storage

    paths = sorted(str(p) for p in clips.glob("*.flac"))
    ds = Dataset.from_dict({"audio": paths, "text": [Path(p).stem for p in paths]}).cast_column("audio", Audio())
    ds = ds.with_format("arrow").map(embed_table_storage, batched=True).with_format(None)
    ds.to_parquet(str(shard), batch_size=100)
    return shard


def best(f, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def audiotok(out: Path, src: Path):
    shutil.rmtree(out, ignore_errors=True)
    if BIN.exists():
        cmd = [str(BIN), "features", "--kind", "whisper-128", "--padding", "longest", "--jobs", "1", "--out", str(out), str(src)]
    else:
        cmd = [str(EXAMPLE), "--longest", "whisper-128", str(out), str(src)]
    subprocess.run(
        cmd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def python_reference(shard: Path, out: Path, runs: int) -> float:
    import torch
    from datasets import Audio, Dataset
    from transformers import WhisperFeatureExtractor

    torch.set_num_threads(1)
    fe = WhisperFeatureExtractor(feature_size=128)

    def run():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        ds = Dataset.from_parquet(str(shard)).cast_column("audio", Audio(sampling_rate=16000))
        for i, row in enumerate(ds):
            x = row["audio"].get_all_samples().data.numpy()
            x = x.mean(axis=0) if x.shape[0] > 1 else x[0]
            f = fe(x, sampling_rate=16000, padding="longest", return_tensors="np")["input_features"][0]
            np.save(out / f"{i}.npy", f)

    return best(run, runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not BIN.exists() and not EXAMPLE.exists():
        sys.exit(f"{BIN} missing: cargo build --release -p audiotok-cli (or the features_from example)")
    shard = make_data(args.n)
    # Outputs (three sets of N arrays) go to memory when it can: /dev/shm, else bench-data/.
    shm = Path("/dev/shm")
    work = (shm if shm.is_dir() else ROOT / "bench-data") / "audiotok-sources-out"
    t_shard = best(lambda: audiotok(work / "shard", shard), args.runs)
    t_files = best(lambda: audiotok(work / "files", DATA / "clips"), args.runs)
    t_py = python_reference(shard, work / "python", args.runs)
    same = all(
        (work / "shard" / "train-00000-of-00001" / f"{i}.npy").read_bytes()
        == (work / "files" / f"clip{i:05d}.npy").read_bytes()
        for i in range(args.n)
    )
    diff = max(
        float(np.abs(np.load(work / "python" / f"{i}.npy") - np.load(work / "shard" / "train-00000-of-00001" / f"{i}.npy")).max())
        for i in range(0, args.n, max(1, args.n // 50))
    )
    audio_h = sum(sf.info(str(p)).duration for p in (DATA / "clips").glob("*.flac")) / 3600
    import datasets
    import torchcodec
    import transformers

    runner = "audiotok features" if BIN.exists() else "features_from example (the CLI's library calls)"
    report = f"""Runner: {runner}.

| {args.n} FLAC clips ({audio_h:.2f} h), whisper-128, 1 core | seconds | vs shard |
|---|---|---|
| audiotok, Parquet shard | {t_shard:.2f} | 1.00x |
| audiotok, the same clips as files | {t_files:.2f} | {t_files / t_shard:.2f}x (files / shard) |
| datasets {datasets.__version__} + torchcodec {torchcodec.__version__} + WhisperFeatureExtractor (transformers {transformers.__version__}) | {t_py:.2f} | {t_py / t_shard:.2f}x (python / shard) |

Shard .npy bytes equal the files' .npy bytes: {same}. Max |python - audiotok| (every {max(1, args.n // 50)}th clip): {diff:.2e}.
"""
    print(report)
    (ROOT / "bench-data" / "bench_sources.md").write_text(report)


if __name__ == "__main__":
    main()
