#!/usr/bin/env python3
"""Token store golden check against pyarrow and pandas, both ways.

Packages (pinned): tools/requirements-store.txt

    python3 -m venv tmp/venv-store && tmp/venv-store/bin/pip install -r tools/requirements-store.txt

Write the fixtures the Rust tests read (tests/fixtures/tokens/, a few KB):

    tmp/venv-store/bin/python tools/store_golden.py fixtures

  - pyarrow_store/: a store written by pyarrow with its defaults (snappy), two batch files,
    our schema given explicitly; pyarrow_store_expected.json holds the same records as JSON.
  - variant_*.parquet: the same records with the columns shuffled plus an extra column, written by
    pandas' DataFrame.to_parquet (types as pandas infers them); with large_string/large_list and
    zstd; with int64 codes, int32 counts, float32 durations and no compression; with page CRC32s
    (variant_page_checksums.parquet, write_page_checksum=True).
  - bad_*.parquet: a missing column, float codes, a negative code, a count that disagrees with the
    codes, a null file_path; the Rust test checks the error names the file and the row.

Check a store our writer makes (exit status 0 when every value agrees):

    tmp/venv-store/bin/python tools/store_golden.py check

  Generates records (fixed seed: 23 files, three scales at ratios 1:2:4, the finest stored as
  [2, 2T], one file with empty streams), writes them with
  crates/audiotok-tokens/examples/store_write.rs (batches of 5) twice, checks both runs are
  byte-identical, reads the store with pandas.read_parquet (the list of batch files, and the
  directory with ignore_prefixes) and with pyarrow per batch file,
  checks the exact Arrow schema, every value, and metadata.json (counts, min/max, unique,
  most common, durations) against collections.Counter.
"""

import collections
import glob
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures", "tokens")


def fixture_records():
    """Five files, three scales (1:2:4), scale 2 stored as [2, 2T]. Durations are k/64 s (exact in float32)."""
    rng = random.Random(4)
    paths = ["audio/a.wav", "audio/b.flac", "audio/ünïcode clip.wav", "audio/d.mp3", "audio/e.ogg"]
    lengths = [4, 2, 3, 5, 1]
    out = []
    for path, t in zip(paths, lengths):
        s0 = [rng.randrange(4096) for _ in range(t)]
        s1 = [rng.randrange(4096) for _ in range(2 * t)]
        s2 = [rng.randrange(4096) for _ in range(4 * t)]
        out.append((path, rng.randrange(1, 640) / 64.0, [([t], s0), ([2 * t], s1), ([2, 2 * t], s2)]))
    return out


def our_schema(n_scales, string=pa.string(), lst=pa.list_, code=pa.int32(), count=pa.int64(), dur=pa.float64()):
    fields = [pa.field("file_path", string), pa.field("duration", dur)]
    for k in range(n_scales):
        fields += [
            pa.field(f"tokens_scale_{k}", lst(code)),
            pa.field(f"n_tokens_scale_{k}", count),
            pa.field(f"shape_scale_{k}", lst(pa.int64())),
        ]
    return pa.schema(fields)


def columns(records):
    cols = {"file_path": [r[0] for r in records], "duration": [r[1] for r in records]}
    for k in range(len(records[0][2])):
        cols[f"tokens_scale_{k}"] = [r[2][k][1] for r in records]
        cols[f"n_tokens_scale_{k}"] = [len(r[2][k][1]) for r in records]
        cols[f"shape_scale_{k}"] = [r[2][k][0] for r in records]
    return cols


def table(records, schema):
    cols = columns(records)
    return pa.table({f.name: pa.array(cols[f.name], type=f.type) for f in schema}, schema=schema)


def write_fixtures():
    recs = fixture_records()
    store = os.path.join(FIX, "pyarrow_store")
    os.makedirs(store, exist_ok=True)
    schema = our_schema(3)
    pq.write_table(table(recs[:3], schema), os.path.join(store, "tokens_batch_0000.parquet"))
    pq.write_table(table(recs[3:], schema), os.path.join(store, "tokens_batch_0001.parquet"))
    with open(os.path.join(FIX, "pyarrow_store_expected.json"), "w") as f:
        json.dump(recs, f, ensure_ascii=False)
        f.write("\n")

    # pandas, columns shuffled, an extra column; pandas infers the types.
    cols = columns(recs)
    names = list(cols)
    random.Random(7).shuffle(names)
    df = pd.DataFrame({n: cols[n] for n in names})
    df.insert(2, "speaker", ["s1", "s2", "s1", "s3", "s2"])
    df.to_parquet(os.path.join(FIX, "variant_shuffled_snappy.parquet"), index=False)
    pq.write_table(
        table(recs, our_schema(3, string=pa.large_string(), lst=pa.large_list)),
        os.path.join(FIX, "variant_large_types_zstd.parquet"),
        compression="zstd",
    )
    pq.write_table(
        table(recs, our_schema(3, code=pa.int64(), count=pa.int32(), dur=pa.float32())),
        os.path.join(FIX, "variant_int64_plain.parquet"),
        compression="none",
    )

    t = table(recs, schema)
    pq.write_table(t.drop_columns(["shape_scale_1"]), os.path.join(FIX, "bad_missing_shape.parquet"))
    i = t.schema.get_field_index("tokens_scale_0")
    floats = pa.array([[float(x) for x in r[2][0][1]] for r in recs], type=pa.list_(pa.float64()))
    pq.write_table(t.set_column(i, "tokens_scale_0", floats), os.path.join(FIX, "bad_float_tokens.parquet"))
    # Row 1 holds two codes at scale 0; a third, -1, at position 2.
    neg_recs = list(recs)
    neg_recs[1] = (recs[1][0], recs[1][1], [([3], recs[1][2][0][1] + [-1]), recs[1][2][1], recs[1][2][2]])
    pq.write_table(table(neg_recs, schema), os.path.join(FIX, "bad_negative_code.parquet"))
    j = t.schema.get_field_index("n_tokens_scale_1")
    counts = [len(r[2][1][1]) for r in recs]
    counts[2] = 5
    pq.write_table(
        t.set_column(j, "n_tokens_scale_1", pa.array(counts, pa.int64())),
        os.path.join(FIX, "bad_count_mismatch.parquet"),
    )
    paths = [None] + [r[0] for r in recs[1:]]
    pq.write_table(t.set_column(0, "file_path", pa.array(paths, pa.string())), os.path.join(FIX, "bad_null_path.parquet"))
    # Page CRC32s (write_page_checksum): the Rust reader verifies them (parquet's `crc` feature).
    pq.write_table(t, os.path.join(FIX, "variant_page_checksums.parquet"), write_page_checksum=True)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(FIX) for f in fs)
    print(f"fixtures written to {FIX} ({total} bytes), pyarrow {pa.__version__}, pandas {pd.__version__}")


def type_name(t):
    return f"list<{t.value_type}>" if pa.types.is_list(t) else str(t)


def check_records():
    rng = random.Random(5)
    recs = []
    for i in range(23):
        t = 0 if i == 7 else rng.randrange(1, 60)
        scales = []
        for k, ratio in enumerate((1, 2, 4)):
            # Skewed codes: a few frequent ones, the rest spread over the codebook.
            codes = [rng.randrange(8) if rng.random() < 0.5 else rng.randrange(4096) for _ in range(ratio * t)]
            shape = [2, 2 * t] if k == 2 else [ratio * t]
            scales.append((shape, codes))
        recs.append((f"corpus/spk{i % 4}/utt_{i:03d}.flac", round(t / 12.0 + rng.random() * 1e-3, 9), scales))
    return recs


def check():
    recs = check_records()
    failures = []

    def expect(cond, what):
        if not cond:
            failures.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        rj = os.path.join(tmp, "records.json")
        with open(rj, "w") as f:
            json.dump({"codebook_sizes": [4096] * 3, "rates_hz": [12.0, 23.0, 47.0], "records": recs}, f)
        stores = [os.path.join(tmp, "store_a"), os.path.join(tmp, "store_b")]
        for s in stores:
            subprocess.run(
                ["cargo", "run", "-q", "-p", "audiotok-tokens", "--example", "store_write", "--", rj, s, "5"],
                cwd=ROOT,
                check=True,
            )
        names = sorted(os.listdir(stores[0]))
        expect(names == sorted(os.listdir(stores[1])), "both runs write the same files")
        for n in names:
            with open(os.path.join(stores[0], n), "rb") as a, open(os.path.join(stores[1], n), "rb") as b:
                expect(a.read() == b.read(), f"{n}: identical bytes on rerun")
        store = stores[0]
        batches = [n for n in names if n.endswith(".parquet")]
        expect(batches == [f"tokens_batch_{i:04d}.parquet" for i in range(5)], f"batch names {batches}")

        want_schema = our_schema(3)
        rows = []
        for n in batches:
            t = pq.read_table(os.path.join(store, n))
            # Our columns and list items are non-nullable; compare names and types apart from that.
            got = [(f.name, type_name(f.type)) for f in t.schema]
            expect(got == [(f.name, type_name(f.type)) for f in want_schema], f"{n}: schema {t.schema}")
            expect(not any(f.nullable for f in t.schema), f"{n}: columns declared non-nullable")
            rows += t.to_pylist()
        # `pd.read_parquet(store)` alone would also try metadata.json as Parquet (pyarrow's dataset
        # only skips names starting with '.' or '_'): read the batch files as a list, and check the
        # other documented form too.
        df = pd.read_parquet(sorted(glob.glob(os.path.join(store, "tokens_batch_*.parquet"))))
        df2 = pd.read_parquet(store, ignore_prefixes=[".", "_", "metadata"])
        expect(df.equals(df2), "pandas: list of batch files == directory with ignore_prefixes")
        expect(len(df) == len(recs) == len(rows), f"row count {len(df)} / {len(rows)} vs {len(recs)}")
        for i, r in enumerate(recs):
            path, dur, scales = r
            py, pd_row = rows[i], df.iloc[i]
            expect(py["file_path"] == path and pd_row["file_path"] == path, f"row {i}: file_path")
            expect(py["duration"] == dur and float(pd_row["duration"]) == dur, f"row {i}: duration")
            for k, (shape, codes) in enumerate(scales):
                expect(py[f"tokens_scale_{k}"] == codes, f"row {i}: tokens_scale_{k} (pyarrow)")
                expect(list(np.asarray(pd_row[f"tokens_scale_{k}"]).tolist()) == codes, f"row {i}: tokens_scale_{k} (pandas)")
                expect(py[f"n_tokens_scale_{k}"] == len(codes) == int(pd_row[f"n_tokens_scale_{k}"]), f"row {i}: n_tokens_scale_{k}")
                expect(py[f"shape_scale_{k}"] == shape == np.asarray(pd_row[f"shape_scale_{k}"]).tolist(), f"row {i}: shape_scale_{k}")
                expect(np.asarray(pd_row[f"tokens_scale_{k}"]).reshape(shape).size == len(codes), f"row {i}: reshape")

        with open(os.path.join(store, "metadata.json")) as f:
            meta = json.load(f)
        expect(meta["format"] == "audiotok-token-store" and meta["version"] == 1, "metadata format")
        expect(meta["num_files"] == len(recs), "num_files")
        expect(meta["files"] == [r[0] for r in recs], "files")
        expect(meta["batches"] == batches, "batches")
        total = 0.0
        for r in recs:
            total += r[1]
        expect(meta["total_duration_s"] == total, f"total_duration_s {meta['total_duration_s']} vs {total}")
        for k in range(3):
            c = collections.Counter(x for r in recs for x in r[2][k][1])
            s = meta["scales"][k]
            common = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
            expect(s["total_tokens"] == sum(c.values()), f"scale {k}: total_tokens")
            expect(s["unique"] == len(c) and s["min"] == min(c) and s["max"] == max(c), f"scale {k}: unique/min/max")
            expect([tuple(x) for x in s["most_common"]] == common, f"scale {k}: most_common")
            expect(s["codebook_size"] == 4096 and s["rate_hz"] == [12.0, 23.0, 47.0][k], f"scale {k}: declared")
            expect(abs(s["observed_rate_hz"] - sum(c.values()) / total) < 1e-9, f"scale {k}: observed rate")

    n_values = sum(2 + sum(3 + len(c) + len(s) for s, c in r[2]) for r in recs)
    if failures:
        print(f"FAIL: {len(failures)} mismatches", *failures[:20], sep="\n  ")
        return 1
    print(
        f"OK: {len(recs)} records, {n_values} values in 5 batches read by pyarrow {pa.__version__} and pandas "
        f"{pd.__version__} equal the input; schema exact; metadata.json agrees with collections.Counter; "
        f"rerun byte-identical"
    )
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["fixtures"]:
        write_fixtures()
    elif sys.argv[1:] == ["check"]:
        sys.exit(check())
    else:
        sys.exit(__doc__)
