#!/usr/bin/env python3
"""`audiotok analyze` vs a straightforward numpy/collections implementation of the same statistics.

Needs numpy only (the project venv has it):

    .venv/bin/python tools/bench_analyze.py [--tokens 10000000] [--files 200] [--runs 3] [--py-runs 1] [--out bench-data/analyze] [--memory 2G]

`--py-runs 0` runs audiotok only (for sizes the Python implementation cannot hold in memory, e.g.
`--tokens 100000000 --py-runs 0 --runs 1`: peak RSS and what was spilled).

1. Generates the data deterministically (numpy default_rng, fixed seed): `--files` 1-D int32 .npy
   streams totalling `--tokens` codes over a 4096 codebook, with controlled skew and runs: codes are
   Zipf(1.2)-distributed (clipped to the codebook), each repeated a geometric number of times
   (p = 0.75, mean run 1.33), then cut to length.
2. Rust: `target/release/audiotok analyze DIR --codebook-size 4096 --json OUT -q` (built with
   `cargo build --release -p audiotok-cli` first), wall time of the whole process (reading included).
3. Python, the same statistics, one file at a time: unigram counts with np.bincount, runs with
   np.diff/np.flatnonzero and a Counter of run lengths, n-grams n = 2..7 with
   collections.Counter over tuples (zip of shifted lists); entropy, Gini, top-K, diversity, top-10
   coverage, bigram diversity, sparsity, repetition rate as the Rust docs define them. Timed from
   reading the first file to the last figure.
4. Checks every figure agrees (integers exactly, floats within 1e-9 relative), prints and writes
   the ratio (Python time / Rust time; best of `--runs` Rust runs and `--py-runs` Python runs,
   Python takes minutes) to OUT/bench_analyze.md, with the peak RSS of the Rust process.
"""

import argparse
import collections
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODEBOOK = 4096
MAX_N = 7


def generate(out_dir, tokens, files, seed=20260422):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    per = tokens // files
    for i in range(files):
        n = per if i < files - 1 else tokens - per * (files - 1)
        base = np.minimum(rng.zipf(1.2, n) - 1, CODEBOOK - 1)
        reps = rng.geometric(0.75, n)
        stream = np.repeat(base, reps)[:n].astype(np.int32)
        np.save(os.path.join(out_dir, f"stream_{i:04d}.npy"), stream)


def python_stats(paths):
    counts = np.zeros(CODEBOOK, dtype=np.int64)
    run_hist = collections.Counter()
    ngrams = {n: collections.Counter() for n in range(2, MAX_N + 1)}
    totals = {n: 0 for n in range(1, MAX_N + 1)}
    sequences = repeats = runs = 0
    for p in paths:
        a = np.load(p)
        if a.size == 0:
            continue
        sequences += 1
        counts += np.bincount(a, minlength=CODEBOOK)
        totals[1] += a.size
        starts = np.concatenate(([0], np.flatnonzero(np.diff(a)) + 1))
        lengths = np.diff(np.concatenate((starts, [a.size])))
        runs += lengths.size
        repeats += int(a.size - lengths.size)
        u, c = np.unique(lengths, return_counts=True)
        run_hist.update(dict(zip(u.tolist(), c.tolist())))
        seq = a.tolist()
        for n in range(2, MAX_N + 1):
            if len(seq) < n:
                break
            totals[n] += len(seq) - n + 1
            ngrams[n].update(zip(*(seq[i : len(seq) - n + 1 + i] for i in range(n))))
    total = int(counts.sum())
    observed = counts[counts > 0]
    v = int(observed.size)
    p = observed / total
    entropy = float(-(p * np.log2(p)).sum())
    x = np.sort(observed).astype(np.float64)
    i = np.arange(1, v + 1, dtype=np.float64)
    gini = float(((2 * i - v - 1) * x).sum() / (v * x.sum()))
    ranked = np.sort(observed)[::-1]
    top = {k: float(ranked[:k].sum() / total) for k in (1, 10, 100, 1000)}
    ng = [{"n": 1, "total": total, "unique": v, "diversity": v / total, "top10_coverage": top[10]}]
    for n in range(2, MAX_N + 1):
        c = ngrams[n]
        t = totals[n]
        top10 = sum(cnt for _, cnt in c.most_common(10))
        ng.append({"n": n, "total": t, "unique": len(c), "diversity": len(c) / t if t else 0.0,
                   "top10_coverage": top10 / t if t else 0.0})
    ub = len(ngrams[2])
    return {
        "sequences": sequences,
        "total_tokens": total,
        "unique_tokens": v,
        "utilisation": v / CODEBOOK,
        "entropy_bits": entropy,
        "perplexity": 2.0 ** entropy,
        "gini": gini,
        "top_k_coverage": [[k, top[k]] for k in (1, 10, 100, 1000)],
        "ngrams": ng,
        "unique_bigrams": ub,
        "bigram_diversity": ub / (v * v),
        "transition_sparsity": 1 - ub / (v * v),
        "repetition_rate": repeats / (total - sequences),
        "runs": runs,
        "mean_run_length": total / runs,
        "max_run_length": max(run_hist),
        "run_length_histogram": sorted([k, c] for k, c in run_hist.items()),
    }


def compare(a, b, path=""):
    """Mismatches between the Python figures `a` and the Rust JSON `b` (keys of `a` only)."""
    out = []
    if isinstance(a, dict):
        for k in a:
            out += compare(a[k], b.get(k), f"{path}.{k}")
    elif isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return [f"{path}: length {len(a)} vs {None if b is None else len(b)}"]
        for i, (x, y) in enumerate(zip(a, b)):
            out += compare(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        if b is None or not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
            out.append(f"{path}: python {a} vs rust {b}")
    elif a != b:
        out.append(f"{path}: python {a} vs rust {b}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=10_000_000)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--py-runs", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-data", "analyze"))
    ap.add_argument("--memory", default=None, help="audiotok analyze --memory (default: its own, 2G)")
    args = ap.parse_args()

    data = os.path.join(args.out, f"streams_{args.tokens}")
    if not os.path.isdir(data):
        generate(data, args.tokens, args.files)
    paths = sorted(os.path.join(data, f) for f in os.listdir(data) if f.endswith(".npy"))
    exe = os.path.join(ROOT, "target", "release", "audiotok")
    if not os.path.exists(exe):
        sys.exit("build first: cargo build --release -p audiotok-cli")
    js = os.path.join(args.out, "rust.json")

    rust_times = []
    peak_kb = 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        cmd = [exe, "analyze", data, "--codebook-size", str(CODEBOOK), "--json", js, "-q"]
        if args.memory:
            cmd += ["--memory", args.memory]
        proc = subprocess.Popen(cmd)
        _, status, usage = os.wait4(proc.pid, 0)
        rust_times.append(time.perf_counter() - t0)
        if status != 0:
            sys.exit(f"audiotok analyze failed with status {status}")
        peak_kb = max(peak_kb, usage.ru_maxrss)
    with open(js) as f:
        report = json.load(f)
    rust = report["scales"][0]
    counting = report.get("counting", {})
    rt = min(rust_times)
    rust_line = (
        f"rust   audiotok analyze{' --memory ' + args.memory if args.memory else ''}: best {rt:.3f} s of {args.runs} "
        f"({rust['total_tokens'] / rt / 1e6:.1f} M tokens/s), peak RSS {peak_kb / 1024:.0f} MiB, "
        f"spilled {counting.get('spilled_runs', 0)} run(s) / {counting.get('spilled_bytes', 0) / 2**20:.0f} MiB; "
        f"runs {', '.join(f'{t:.3f}' for t in rust_times)}"
    )
    if args.py_runs == 0:
        # Rust only (memory and speed at sizes the Python implementation cannot hold).
        load = os.getloadavg()
        lines = [
            f"tokens {rust['total_tokens']:,} in {len(paths)} files (codebook {CODEBOOK}, Zipf 1.2, geometric runs p=0.75), n-grams up to {MAX_N}",
            f"figures: entropy {rust['entropy_bits']:.4f} bits, Gini {rust['gini']:.4f}, unique 7-grams {rust['ngrams'][6]['unique']:,}",
            rust_line,
            f"(no Python run; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} cores)",
        ]
        print("\n".join(lines))
        return 0

    py_times = []
    for _ in range(args.py_runs):
        t0 = time.perf_counter()
        py = python_stats(paths)
        py_times.append(time.perf_counter() - t0)

    bad = compare(py, rust)
    pt = min(py_times)
    load = os.getloadavg()
    lines = [
        f"tokens {py['total_tokens']:,} in {len(paths)} files (codebook {CODEBOOK}, Zipf 1.2, geometric runs p=0.75), n-grams up to {MAX_N}",
        f"figures: {'all agree' if not bad else f'{len(bad)} MISMATCHES'} (entropy {py['entropy_bits']:.4f} bits, "
        f"Gini {py['gini']:.4f}, repetition {py['repetition_rate']:.4f}, unique 7-grams {py['ngrams'][6]['unique']:,})",
        rust_line,
        f"python numpy+collections: best {pt:.3f} s of {args.py_runs} ({py['total_tokens'] / pt / 1e6:.2f} M tokens/s); runs {', '.join(f'{t:.3f}' for t in py_times)}",
        f"ratio: {pt / rt:.1f}x (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} cores)",
    ]
    print("\n".join(lines))
    for b in bad[:20]:
        print("  ", b)
    with open(os.path.join(args.out, "bench_analyze.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
