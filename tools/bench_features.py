#!/usr/bin/env python3
"""Times `audiotok features --kind whisper-128` against the Python reference stack on one core.

Normally started by tools/bench_features.sh (which makes bench-data/, builds the binaries and
runs this script under `taskset -c 0` with OMP/OPENBLAS/MKL_NUM_THREADS=1). Direct use:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        taskset -c 0 .venv/bin/python tools/bench_features.py [--runs 3] [--no-audiotok]

What it measures, per data set (bench-data/speech_wav, speech_flac, flac44k):

* Python: for each file, soundfile.read(float32) -> librosa.to_mono (if stereo) ->
  soxr.resample(HQ) to 16 kHz (if needed) -> WhisperFeatureExtractor(feature_size=128)
  (constructed once; its numpy path, or its torch path when torch is installed) -> np.save. The timed span is the loop
  over all files (imports and extractor construction excluded); best of --runs.
* audiotok: `taskset -c 0 audiotok features --kind whisper-128 --jobs 1 --out OUT DIR`,
  whole-process wall time (startup included); best of --runs.
* ratio = Python time / audiotok time, against the goals (5x WAV, 2.5x FLAC, 1.2x 44.1k FLAC).
* Output agreement: max/mean |python - audiotok| over every .npy pair.
* Decoding only: soundfile (libsndfile/libFLAC) vs target/release/examples/decode_speed
  (symphonia) over bench-data/flac44k, in seconds of audio per second.
* audiotok --jobs 1 vs --jobs 2 on speech WAV (both on `taskset -c 0,1`).

Prints a Markdown report and writes it to bench-data/bench_features.md.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.util  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import soxr  # noqa: E402
import transformers  # noqa: E402
from transformers import WhisperFeatureExtractor  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# (label, folder, glob, goal for python_time / audiotok_time)
DATASETS = [
    ("speech WAV (16 kHz mono, 2-20 s)", "speech_wav", "*.wav", 5.0),
    ("speech FLAC (16 kHz mono, 2-20 s)", "speech_flac", "*.flac", 2.5),
    ("FLAC 44.1 kHz stereo, 30 s", "flac44k", "*.flac", 1.2),
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def warm_cache(files: list[Path]) -> None:
    for f in files:
        f.read_bytes()


def fresh_dir(d: Path) -> Path:
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


# ---------------------------------------------------------------------------------------------
# Python reference stack


def python_run(fe: WhisperFeatureExtractor, files: list[Path], out: Path) -> tuple[float, dict[str, float]]:
    """One pass over `files`; returns (wall seconds of the loop, seconds per stage)."""
    stages = {"read": 0.0, "to_mono": 0.0, "resample": 0.0, "extract": 0.0, "save": 0.0}
    clock = time.perf_counter
    t_start = clock()
    for path in files:
        t0 = clock()
        x, sr = sf.read(path, dtype="float32")
        t1 = clock()
        if x.ndim > 1:
            x = librosa.to_mono(x.T)
        t2 = clock()
        if sr != 16000:
            x = soxr.resample(x, sr, 16000, "HQ")
        t3 = clock()
        feats = fe(x, sampling_rate=16000, return_tensors="np").input_features[0]
        t4 = clock()
        np.save(out / f"{path.stem}.npy", feats)
        t5 = clock()
        stages["read"] += t1 - t0
        stages["to_mono"] += t2 - t1
        stages["resample"] += t3 - t2
        stages["extract"] += t4 - t3
        stages["save"] += t5 - t4
    return clock() - t_start, stages


# ---------------------------------------------------------------------------------------------
# audiotok


def audiotok_run(exe: Path, in_dir: Path, out: Path, jobs: int, cpus: str) -> float:
    cmd = ["taskset", "-c", cpus, str(exe), "features", "--kind", "whisper-128",
           "--jobs", str(jobs), "--out", str(out), str(in_dir)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited with {proc.returncode}:\n"
            f"{proc.stderr.decode(errors='replace')[-3000:]}")
    return elapsed


def find_npy(out: Path, stem: str) -> Path | None:
    p = out / f"{stem}.npy"
    if p.is_file():
        return p
    hits = sorted(out.rglob(f"{stem}.npy"))
    return hits[0] if hits else None


def compare(py_out: Path, rs_out: Path, files: list[Path]) -> dict:
    n = 0
    missing: list[str] = []
    bad_shape: list[str] = []
    worst = (0.0, "")
    mean_sum = 0.0
    for f in files:
        a_path = py_out / f"{f.stem}.npy"
        b_path = find_npy(rs_out, f.stem)
        if b_path is None:
            missing.append(f.stem)
            continue
        a = np.load(a_path)
        b = np.load(b_path)
        if a.shape != b.shape:
            bad_shape.append(f"{f.stem}: {a.shape} vs {b.shape} ({b.dtype})")
            continue
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        n += 1
        mean_sum += float(d.mean())
        if float(d.max()) >= worst[0]:
            worst = (float(d.max()), f.stem)
    return {"n": n, "missing": missing, "bad_shape": bad_shape, "max": worst[0], "worst": worst[1],
            "mean": mean_sum / n if n else float("nan")}


# ---------------------------------------------------------------------------------------------
# Decoding only


def soundfile_decode(files: list[Path]) -> tuple[float, float]:
    audio = 0.0
    t0 = time.perf_counter()
    for f in files:
        x, sr = sf.read(f, dtype="float32")
        audio += x.shape[0] / sr
    return audio, time.perf_counter() - t0


def rust_decode(exe: Path, files: list[Path], cpus: str) -> tuple[float, float]:
    proc = subprocess.run(["taskset", "-c", cpus, str(exe), *map(str, files)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"decode_speed failed: {proc.stderr[-2000:]}")
    m = re.search(r"audio_s=([\d.]+) wall_s=([\d.]+)", proc.stdout)
    if not m:
        raise RuntimeError(f"unexpected decode_speed output:\n{proc.stdout}")
    return float(m.group(1)), float(m.group(2))


# ---------------------------------------------------------------------------------------------
# Other processes' CPU use during a measurement (they skew one-core timings)


class ForeignCpu:
    """CPU seconds used on the machine by processes other than this one and its waited-for
    children, between start() and stop(): all busy time in /proc/stat minus our own."""

    def __init__(self) -> None:
        self.hz = os.sysconf("SC_CLK_TCK")
        self.t0 = self.busy0 = self.own0 = 0.0

    def _busy(self) -> float:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...
        return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / self.hz

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def start(self) -> None:
        self.t0, self.busy0, self.own0 = time.perf_counter(), self._busy(), self._own()

    def stop(self) -> float:
        """Average number of cores other processes kept busy since start()."""
        wall = time.perf_counter() - self.t0
        foreign = (self._busy() - self.busy0) - (self._own() - self.own0)
        return max(foreign, 0.0) / wall if wall > 0 else 0.0


# ---------------------------------------------------------------------------------------------
# Environment description


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              check=False).stdout.strip()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in sh(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def lock_version(name: str) -> str:
    lock = ROOT / "Cargo.lock"
    if not lock.is_file():
        return "?"
    m = re.search(rf'name = "{re.escape(name)}"\nversion = "([^"]+)"', lock.read_text())
    return m.group(1) if m else "?"


def backend() -> str:
    """Which WhisperFeatureExtractor path runs: torch when importable, else numpy."""
    if importlib.util.find_spec("torch") is None:
        return "numpy (_np_extract_fbank_features)"
    import torch

    return f"torch {torch.__version__} (_torch_extract_fbank_features, 1 thread)"


def versions(audiotok: Path | None) -> list[str]:
    rev = sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]) or "?"
    dirty = sh(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    out = [
        f"audiotok: {sh([str(audiotok), '--version']) if audiotok else 'not built'}"
        f" (git {rev}{' + local changes' if dirty else ''}),"
        f" symphonia {lock_version('symphonia')}, soxr crate {lock_version('soxr')},"
        f" realfft {lock_version('realfft')}; {sh(['rustc', '--version'])}",
        f"Python {platform.python_version()}: numpy {np.__version__}, soundfile {sf.__version__}"
        f" (libsndfile {sf.__libsndfile_version__}), soxr {soxr.__version__}"
        f" (libsoxr {getattr(soxr, '__libsoxr_version__', '?')}),"
        f" librosa {librosa.__version__}, transformers {transformers.__version__}"
        f" (extractor backend: {backend()})",
    ]
    return out


# ---------------------------------------------------------------------------------------------


def fmt_ms(s: float | None, n: int) -> str:
    return "n/a" if s is None else f"{1000 * s / n:.1f}"


def fmt_rate(s: float | None, n: int) -> str:
    return "n/a" if s is None else f"{n / s:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "bench-data")
    ap.add_argument("--audiotok", type=Path, default=ROOT / "target/release/audiotok")
    ap.add_argument("--decode-speed", type=Path, default=ROOT / "target/release/examples/decode_speed")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per measurement (best is kept)")
    ap.add_argument("--cpu", default="0", help="CPU for the one-core measurements (default 0)")
    ap.add_argument("--only", default="",
                    help="comma-separated parts to run: speech_wav,speech_flac,flac44k,decode,jobs (default all)")
    ap.add_argument("--no-audiotok", action="store_true", help="skip the audiotok measurements")
    ap.add_argument("--md", type=Path, default=None, help="report path (default DATA/bench_features.md)")
    args = ap.parse_args()

    os.sched_setaffinity(0, {int(args.cpu)})
    if importlib.util.find_spec("torch") is not None:
        # With torch installed, WhisperFeatureExtractor takes its torch path (what most users of
        # this field run); measure it on one thread like everything else.
        import torch

        torch.set_num_threads(1)
        log(f"NOTE: torch {torch.__version__} present: WhisperFeatureExtractor uses its torch path")

    audiotok: Path | None = args.audiotok
    if args.no_audiotok or not (audiotok and os.access(audiotok, os.X_OK)):
        if not args.no_audiotok:
            log(f"NOTE: {args.audiotok} not found; audiotok columns skipped")
        audiotok = None
    decode_speed: Path | None = args.decode_speed if os.access(args.decode_speed, os.X_OK) else None
    if decode_speed is None:
        log(f"NOTE: {args.decode_speed} not found; Rust decode speed skipped")

    meter = ForeignCpu()
    foreign: list[tuple[str, float]] = []

    def section_done(name: str) -> None:
        load = meter.stop()
        foreign.append((name, load))
        log(f"[{name}] other processes kept {load:.2f} cores busy on average")
    data: Path = args.data
    out_root = data / "out"
    fe = WhisperFeatureExtractor(feature_size=128)

    rows = []
    stage_rows = []
    agree_rows = []
    only = {p for p in args.only.split(",") if p}

    def wanted(part: str) -> bool:
        return not only or part in only

    for label, folder, pattern, goal in DATASETS:
        if not wanted(folder):
            continue
        in_dir = data / folder
        files = sorted(in_dir.glob(pattern))
        if not files:
            log(f"NOTE: no {pattern} in {in_dir}; skipped")
            continue
        n = len(files)
        audio_s = sum(sf.info(f).duration for f in files)
        warm_cache(files)
        meter.start()

        py_out = out_root / "py" / folder
        py_times = []
        best_stages: dict[str, float] = {}
        # One untimed warm-up pass (first-call costs: numpy FFT plans, lazy imports).
        python_run(fe, files[:2], fresh_dir(py_out))
        for r in range(args.runs):
            t, stages = python_run(fe, files, fresh_dir(py_out))
            py_times.append(t)
            if t == min(py_times):
                best_stages = stages
            log(f"[{folder}] python run {r + 1}: {t:.3f} s ({1000 * t / n:.1f} ms/clip)")
        py_best = min(py_times)

        rs_best = None
        rs_out = out_root / "audiotok" / folder
        if audiotok:
            rs_times = []
            try:
                for r in range(args.runs):
                    t = audiotok_run(audiotok, in_dir, fresh_dir(rs_out), 1, args.cpu)
                    rs_times.append(t)
                    log(f"[{folder}] audiotok run {r + 1}: {t:.3f} s ({1000 * t / n:.1f} ms/clip)")
                rs_best = min(rs_times)
            except RuntimeError as e:
                log(f"ERROR: {e}")
        section_done(folder)
        ratio = py_best / rs_best if rs_best else None
        rows.append((label, n, audio_s, py_best, rs_best, ratio, goal))
        stage_rows.append((label, n, best_stages))
        if rs_best:
            c = compare(py_out, rs_out, files)
            agree_rows.append((label, c))
            log(f"[{folder}] agreement: {c['n']} files, max |diff| {c['max']:.3g} ({c['worst']}),"
                f" mean |diff| {c['mean']:.3g}; missing {len(c['missing'])}, shape mismatches"
                f" {len(c['bad_shape'])}")

    # Decoding only: flac44k.
    dec_rows = []
    flacs = sorted((data / "flac44k").glob("*.flac")) if wanted("decode") else []
    if flacs:
        warm_cache(flacs)
        meter.start()
        soundfile_decode(flacs[:1])
        best = min((soundfile_decode(flacs) for _ in range(args.runs)), key=lambda t: t[1])
        dec_rows.append(("soundfile.read(float32) (libsndfile/libFLAC)", *best))
        log(f"[decode] soundfile: {best[0]:.1f} s audio in {best[1]:.3f} s")
        if decode_speed:
            best = min((rust_decode(decode_speed, flacs, args.cpu) for _ in range(args.runs)),
                       key=lambda t: t[1])
            dec_rows.append(("audiotok_audio::Decoder (symphonia), examples/decode_speed", *best))
            log(f"[decode] decode_speed: {best[0]:.1f} s audio in {best[1]:.3f} s")
        section_done("decode")

    # --jobs scaling on speech WAV.
    jobs_rows = []
    wav_dir = data / "speech_wav"
    wavs = sorted(wav_dir.glob("*.wav"))
    ncpu = os.cpu_count() or 1
    if audiotok and wavs and ncpu >= 2 and wanted("jobs"):
        cpus = "0,1"
        meter.start()
        for jobs in (1, 2):
            try:
                ts = []
                for _ in range(args.runs):
                    ts.append(audiotok_run(audiotok, wav_dir, fresh_dir(out_root / "jobs" / f"j{jobs}"),
                                           jobs, cpus))
                jobs_rows.append((jobs, cpus, min(ts)))
                log(f"[jobs] --jobs {jobs} on cpus {cpus}: best {min(ts):.3f} s")
            except RuntimeError as e:
                log(f"ERROR: {e}")
        section_done("jobs")

    # ---- report ----
    md: list[str] = []
    md.append("# audiotok features vs Python reference (whisper-128)")
    md.append("")
    md.append(f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}")
    md.append(f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()}"
              f" {platform.release()}")
    md.append(f"- one core: everything pinned with `taskset -c {args.cpu}`, OMP/OPENBLAS/MKL_NUM_THREADS=1,"
              f" audiotok `--jobs 1`; best of {args.runs} runs")
    md.append("- other processes' CPU use during each part (average cores busy; anything well above 0"
              " skews the timings, rerun on a quiet machine): "
              + ", ".join(f"{name} {load:.2f}" for name, load in foreign))
    for v in versions(audiotok):
        md.append(f"- {v}")
    md.append("- Python time = the loop over files (read, to_mono, soxr HQ, WhisperFeatureExtractor,"
              " np.save), imports and extractor construction excluded; audiotok time = whole process"
              " (`audiotok features --kind whisper-128 --jobs 1 --out DIR DIR`), startup included")
    md.append("")
    md.append("## Throughput (one core)")
    md.append("")
    md.append("| data set | clips | audio (s) | Python ms/clip | Python clips/s | audiotok ms/clip"
              " | audiotok clips/s | ratio (Python/audiotok) | goal | met |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for label, n, audio_s, py_t, rs_t, ratio, goal in rows:
        met = "n/a" if ratio is None else ("yes" if ratio >= goal else "**no**")
        md.append(f"| {label} | {n} | {audio_s:.0f} | {fmt_ms(py_t, n)} | {fmt_rate(py_t, n)} |"
                  f" {fmt_ms(rs_t, n)} | {fmt_rate(rs_t, n)} |"
                  f" {'n/a' if ratio is None else f'{ratio:.2f}x'} | >= {goal}x | {met} |")
    md.append("")
    md.append("Python stages, ms/clip (best run):")
    md.append("")
    md.append("| data set | read | to_mono | resample | extractor | np.save |")
    md.append("|---|---:|---:|---:|---:|---:|")
    for label, n, st in stage_rows:
        md.append(f"| {label} | " + " | ".join(
            f"{1000 * st.get(k, 0.0) / n:.2f}" for k in ("read", "to_mono", "resample", "extract", "save"))
                  + " |")
    if agree_rows:
        md.append("")
        md.append("## Output agreement (Python vs audiotok .npy)")
        md.append("")
        md.append("| data set | files compared | max abs diff (file) | mean abs diff | missing | shape mismatch |")
        md.append("|---|---:|---:|---:|---:|---:|")
        for label, c in agree_rows:
            md.append(f"| {label} | {c['n']} | {c['max']:.3g} ({c['worst']}) | {c['mean']:.3g} |"
                      f" {len(c['missing'])} | {len(c['bad_shape'])} |")
            for s in c["bad_shape"][:3]:
                md.append(f"|  shape: {s} | | | | | |")
    if dec_rows:
        md.append("")
        md.append("## Decoding only: bench-data/flac44k (30 s, 44.1 kHz stereo FLAC), one core")
        md.append("")
        md.append("| decoder | audio (s) | wall (s) | audio s per s (x realtime) |")
        md.append("|---|---:|---:|---:|")
        for name, audio_s, wall in dec_rows:
            md.append(f"| {name} | {audio_s:.1f} | {wall:.4f} | {audio_s / wall:.0f} |")
        if len(dec_rows) == 2:
            r = (dec_rows[1][1] / dec_rows[1][2]) / (dec_rows[0][1] / dec_rows[0][2])
            md.append(f"| ratio symphonia / libsndfile | | | {r:.2f}x |")
        md.append("")
        md.append("(both exclude process start; soundfile returns interleaved float32, decode_speed"
                  " planar f32)")
    if jobs_rows:
        md.append("")
        md.append("## audiotok --jobs scaling, speech WAV")
        md.append("")
        md.append("| --jobs | cpus (taskset) | wall (s) | ms/clip | clips/s | speedup vs --jobs 1 |")
        md.append("|---:|---|---:|---:|---:|---:|")
        base = jobs_rows[0][2]
        nw = len(wavs)
        for jobs, cpus, t in jobs_rows:
            md.append(f"| {jobs} | {cpus} | {t:.3f} | {1000 * t / nw:.1f} | {nw / t:.1f} | {base / t:.2f}x |")
    text = "\n".join(md) + "\n"
    md_path = args.md or data / "bench_features.md"
    md_path.write_text(text)
    print(text)
    log(f"wrote {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
