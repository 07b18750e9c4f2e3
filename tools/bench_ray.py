#!/usr/bin/env python3
"""Ray Data against the plain library jobs, same machine, same run (BENCHMARKS.md, Ray section).

    .venv-py/bin/python tools/bench_ray.py [--files 200] [--cpus 1 2]

Needs the test venv (tools/test_python.sh builds it: audiotok, ray[data]==2.60.0, pyarrow) and
tools/fetch_qwen_tokenizer.sh for the packing part. Data: --files copies of the committed speech
fixtures (0.1 s to 7 s, 16 kHz WAV/FLAC and 44.1 kHz stereo FLAC) in a temp folder.

Measures, at each CPU count: Whisper features (Decode + WhisperFeatures on Ray vs
audiotok.features_from_files with as many threads), SNAC codes to a token store (Decode + SnacEncode
+ TokenStoreDatasink vs audiotok.codecs.encode_files; the seed-initialised tiny 24 kHz model of
tests/fixtures/snac, so the per-file overhead shows rather than the model), Ray's start-up, and the
overhead per file. Then packing per partition (PackDatasink over 1..8 partitions) against packing
globally (audiotok.pack): blocks and efficiency.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT / "tests" / "fixtures" / "audio"
SNAC = ROOT / "tests" / "fixtures" / "snac" / "tiny24"
TOKENIZER = ROOT / "tests" / "fixtures" / "pack" / "qwen2-tokenizer"
CLIPS = ["speech_1s.wav", "speech_7s.flac", "speech_7s_44k_stereo.flac", "speech_0.1s.wav", "speech_7s.flac"]


def make_data(n: int, d: Path) -> list:
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        src = AUDIO / CLIPS[i % len(CLIPS)]
        p = d / f"clip{i:05d}{src.suffix}"
        shutil.copy(src, p)
        out.append(str(p))
    return out


def timed(f):
    t = time.perf_counter()
    r = f()
    return time.perf_counter() - t, r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--cpus", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--pack-copies", type=int, default=40)
    args = ap.parse_args()

    import ray
    import audiotok
    from audiotok import codecs
    from audiotok import ray as ar

    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    paths = make_data(args.files, tmp / "audio")
    seconds = sum(audiotok.info(p).duration for p in paths)
    print(f"{len(paths)} files, {seconds:.0f} s of audio; load before: {os.getloadavg()[0]:.2f}")
    rows = [{"row": i, "path": p} for i, p in enumerate(paths)]
    results = []
    for cpus in args.cpus:
        t_init, _ = timed(lambda: ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False))
        ray.data.DataContext.get_current().enable_progress_bars = False

        t_lib, _ = timed(lambda: audiotok.features_from_files(paths, "whisper-128", num_threads=cpus, on_error="skip"))

        def ray_features():
            ds = (ray.data.from_items(rows, override_num_blocks=4 * cpus)
                  .map_batches(ar.Decode, batch_format="pyarrow", concurrency=cpus, num_cpus=0.5, batch_size=16)
                  .map_batches(ar.WhisperFeatures, fn_constructor_kwargs={"drop_audio": True}, batch_format="pyarrow",
                               concurrency=cpus, num_cpus=0.5, batch_size=16))
            return sum(b.num_rows for b in ds.iter_batches(batch_format="pyarrow", batch_size=None))

        t_ray, n = timed(ray_features)
        assert n == len(paths)

        store_lib = tmp / f"lib-{cpus}"
        t_lib_snac, _ = timed(lambda: codecs.encode_files(tmp / "audio", store_lib, model=SNAC, num_threads=cpus,
                                                            batch_size=1000))

        store_ray = tmp / f"ray-{cpus}"

        def ray_snac():
            ds = (ray.data.from_items(rows, override_num_blocks=4 * cpus)
                  .map_batches(ar.Decode, fn_constructor_kwargs={"sampling_rate": None}, batch_format="pyarrow",
                               concurrency=cpus, num_cpus=0.5, batch_size=16)
                  .map_batches(ar.SnacEncode, fn_constructor_kwargs={"model": str(SNAC)}, batch_format="pyarrow",
                               concurrency=cpus, num_cpus=0.5, batch_size=16))
            ds.write_datasink(ar.TokenStoreDatasink(store_ray, model=str(SNAC)))

        t_ray_snac, _ = timed(ray_snac)
        same = audiotok.tokens.read_table(store_ray).equals(audiotok.tokens.read_table(store_lib))
        ray.shutdown()
        r = {
            "cpus": cpus,
            "ray_init_s": round(t_init, 2),
            "features_lib_files_per_s": round(len(paths) / t_lib, 1),
            "features_ray_files_per_s": round(len(paths) / t_ray, 1),
            "features_overhead_ms_per_file": round(1000 * (t_ray - t_lib) / len(paths), 2),
            "snac_lib_files_per_s": round(len(paths) / t_lib_snac, 1),
            "snac_ray_files_per_s": round(len(paths) / t_ray_snac, 1),
            "snac_overhead_ms_per_file": round(1000 * (t_ray_snac - t_lib_snac) / len(paths), 2),
            "token_records_equal": same,
        }
        print(json.dumps(r))
        results.append(r)

    if (TOKENIZER / "vocab.json").is_file():
        lines = (ROOT / "tests" / "fixtures" / "pack" / "rows.jsonl").read_text().splitlines()
        good = []
        for line in lines:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "text" in r:
                a = r.get("audio")
                good.append({"text": r["text"], "audio": a if isinstance(a, list) else ([a] if a else [])})
        prows = [dict(r, row=i) for i, r in enumerate(good * args.pack_copies)]
        whole = audiotok.pack([{k: v for k, v in r.items() if k != "row"} for r in prows], tokenizer=TOKENIZER,
                              out=tmp / "pack-global", audio_root=ROOT, block_size=4096, strategy="bfd")
        print(json.dumps({"partitions": 1, "global": True, "blocks": whole["blocks"],
                          "efficiency": round(whole["efficiency"]["bfd"], 4)}))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        for parts in (2, 4, 8):
            sink = ar.PackDatasink(tmp / f"pack-{parts}", tokenizer=TOKENIZER, audio_root=ROOT, block_size=4096,
                                   strategy="bfd")
            ray.data.from_items(prows, override_num_blocks=parts).write_datasink(sink)
            blocks = sum(s["blocks"] for s in sink.summaries)
            tokens = sum(s["tokens"] for s in sink.summaries)
            print(json.dumps({"partitions": len(sink.summaries), "blocks": blocks,
                              "efficiency": round(tokens / (blocks * 4096), 4),
                              "extra_blocks_vs_global": blocks - whole["blocks"]}))
        ray.shutdown()
    print(f"load after: {os.getloadavg()[0]:.2f}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
