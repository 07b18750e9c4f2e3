"""audiotok.tokens: token stores as pyarrow Tables through the Arrow C stream interface."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pyarrow as pa
import pytest

from audiotok import codecs, tokens

from conftest import AUDIO, FIXTURES

STORES = FIXTURES / "tokens"


def expected_rows():
    """pyarrow_store's records (tools/store_golden.py wrote both)."""
    return json.loads((STORES / "pyarrow_store_expected.json").read_text())


def rows_of(table: pa.Table):
    out = []
    d = table.to_pydict()
    k = (table.num_columns - 2) // 3
    for i in range(table.num_rows):
        scales = []
        for s in range(k):
            toks = d[f"tokens_scale_{s}"][i]
            assert d[f"n_tokens_scale_{s}"][i] == len(toks)
            scales.append([d[f"shape_scale_{s}"][i], toks])
        out.append([d["file_path"][i], d["duration"][i], scales])
    return out


SCHEMA = pa.schema(
    [pa.field("file_path", pa.string(), nullable=False), pa.field("duration", pa.float64(), nullable=False)]
    + [
        f
        for k in range(3)
        for f in (
            pa.field(f"tokens_scale_{k}", pa.list_(pa.field("item", pa.int32(), nullable=False)), nullable=False),
            pa.field(f"n_tokens_scale_{k}", pa.int64(), nullable=False),
            pa.field(f"shape_scale_{k}", pa.list_(pa.field("item", pa.int64(), nullable=False)), nullable=False),
        )
    ]
)


def test_reads_a_pyarrow_store_in_the_store_schema():
    store = tokens.TokenStore(STORES / "pyarrow_store")
    assert store.num_scales == 3 and len(store.files) == 2
    assert store.metadata is None  # pyarrow wrote no metadata.json
    table = store.to_table()
    assert table.schema.equals(SCHEMA)
    assert rows_of(table) == expected_rows()
    assert len(store) == len(expected_rows())
    # The PyCapsule interface: pyarrow (and polars, DuckDB) take the store itself.
    assert pa.table(store).equals(table)
    assert pa.schema(store).equals(SCHEMA)
    # Small batches give the same table.
    reader = store.to_reader(batch_rows=2)
    batches = list(reader)
    assert [b.num_rows for b in batches] == [2] * (len(expected_rows()) // 2) + [1] * (len(expected_rows()) % 2)
    assert pa.Table.from_batches(batches).equals(table)


@pytest.mark.parametrize(
    "name", ["variant_shuffled_snappy.parquet", "variant_large_types_zstd.parquet", "variant_int64_plain.parquet"]
)
def test_other_writers_types_come_out_in_one_schema(name):
    table = tokens.read_table(STORES / name)
    assert table.schema.equals(SCHEMA)
    assert rows_of(table) == expected_rows()


def test_hand_over_is_zero_copy():
    # Buffers made in Rust are imported, not copied into pyarrow's memory pool.
    before = pa.total_allocated_bytes()
    table = tokens.read_table(STORES / "pyarrow_store")
    assert table.num_rows > 0 and table.nbytes > 0
    assert pa.total_allocated_bytes() == before
    # numpy views of the codes share those buffers too.
    codes = table.column("tokens_scale_2").chunk(0).values.to_numpy(zero_copy_only=True)
    assert codes.dtype == np.int32 and codes.size > 0


@pytest.mark.parametrize(
    "name,reason",
    [
        ("bad_negative_code.parquet", "row 1: tokens_scale_0: code -1 at position 2"),
        ("bad_count_mismatch.parquet", "row 2: n_tokens_scale_1 is 5 but tokens_scale_1 holds 6 codes"),
        ("bad_null_path.parquet", "row 0: file_path is null"),
    ],
)
def test_bad_rows_raise_tokens_error_naming_file_and_row(name, reason):
    with pytest.raises(tokens.TokensError) as e:
        tokens.read_table(STORES / name)
    assert name in str(e.value) and reason in str(e.value)
    assert not str(e.value).startswith("External error")


def test_bad_files_and_missing_columns():
    with pytest.raises(tokens.TokensError, match='missing column "shape_scale_1"'):
        tokens.TokenStore(STORES / "bad_missing_shape.parquet")
    with pytest.raises(tokens.TokensError, match="not a readable Parquet file"):
        tokens.TokenStore(STORES / "pyarrow_store_expected.json")
    with pytest.raises(tokens.TokensError, match="no Parquet files"):
        tokens.TokenStore(FIXTURES / "audio")


def test_pickles_as_its_path():
    store = tokens.TokenStore(STORES / "pyarrow_store")
    back = pickle.loads(pickle.dumps(store))
    assert back.path == store.path and back.to_table().equals(store.to_table())


def test_write_store_round_trips_a_store_and_its_metadata(tmp_path):
    src = tmp_path / "cli"
    codecs.encode_files(AUDIO / "speech_7s.flac", src, model=FIXTURES / "snac" / "tiny24", segment_seconds=1.0,
                        batch_size=3)
    meta_src = json.loads((src / "metadata.json").read_text())
    table = tokens.read_table(src)
    meta = tokens.write_store(tmp_path / "copy", table, batch_size=3,
                              codebook_sizes=[s["codebook_size"] for s in meta_src["scales"]],
                              rates_hz=[s["rate_hz"] for s in meta_src["scales"]],
                              provenance=meta_src["provenance"])
    assert meta["num_files"] == len(table) == meta_src["num_files"]
    assert tokens.read_table(tmp_path / "copy").equals(table)
    # Same records, options and provenance: the same files, except the CLI's per-batch reuse keys.
    assert json.loads((tmp_path / "copy" / "metadata.json").read_text()) == meta_src
    # Slices and columns in any order; shapes derived when absent.
    part = table.slice(2, 4).select(["duration", "tokens_scale_1", "file_path", "tokens_scale_0", "tokens_scale_2"])
    tokens.write_store(tmp_path / "part", part)
    assert tokens.read_table(tmp_path / "part").column("tokens_scale_1").equals(table.slice(2, 4).column("tokens_scale_1"))
    with pytest.raises(tokens.TokensError, match="tokens_scale_0"):
        tokens.write_store(tmp_path / "bad", table.select(["file_path", "duration"]))
    with pytest.raises(tokens.TokensError, match="not below 1"):
        tokens.write_store(tmp_path / "bad", table, codebook_sizes=[1, 1, 1])


def _records(rows, seed=0):
    """Records of input rows (two segments each; rows divisible by 5 failed), in the columns
    SnacEncode gives a token store sink."""
    rng = np.random.default_rng(seed)
    out = []
    for r in rows:
        if r % 5 == 0:
            out.append({"row": r, "segment": None, "file_path": f"f{r}.wav", "duration": None,
                        "tokens_scale_0": None, "shape_scale_0": None, "tokens_scale_1": None,
                        "shape_scale_1": None, "error": f"f{r}.wav: bad"})
            continue
        for k in range(2):
            n = int(rng.integers(1, 6))
            out.append({"row": r, "segment": k, "file_path": f"f{r}.wav#{k}", "duration": 0.5 * n,
                        "tokens_scale_0": rng.integers(0, 4096, n).tolist(), "shape_scale_0": [n],
                        "tokens_scale_1": rng.integers(0, 4096, 2 * n).tolist(), "shape_scale_1": [2 * n],
                        "error": None})
    return out


def _part(records):
    schema = pa.schema([("row", pa.int64()), ("segment", pa.int64()), ("file_path", pa.string()),
                        ("duration", pa.float64()), ("tokens_scale_0", pa.list_(pa.int32())),
                        ("shape_scale_0", pa.list_(pa.int64())), ("tokens_scale_1", pa.list_(pa.int32())),
                        ("shape_scale_1", pa.list_(pa.int64())), ("error", pa.string())])
    return pa.Table.from_pylist(records, schema=schema)


def test_the_token_store_sink_merges_parts_in_bounded_memory_to_the_same_store(tmp_path):
    import pyarrow.parquet as pq

    from audiotok import ray as aray

    rows = list(range(40))
    everything = _records(rows)
    # Parts as write tasks leave them: interleaved row sets, each sorted, one repeated by a rerun.
    parts = [[r for r in everything if r["row"] % 3 == m] for m in range(3)]
    parts.append([r for r in everything if r["row"] in (4, 7, 8)])
    store = tmp_path / "store"
    (store / "_parts").mkdir(parents=True)
    for i, p in enumerate(parts):
        pq.write_table(_part(p), store / "_parts" / f"part-{i:012d}.parquet", row_group_size=3)
    summary = aray.finish_token_store(store, batch_size=7, read_rows=2, codebook_sizes=[4096, 4096])
    good = [r for r in everything if r["error"] is None]
    assert summary["records"] == len(good)
    assert [r["row"] for r in summary["rejects"]] == [r for r in rows if r % 5 == 0]
    assert not (store / "_parts").exists()
    # The same bytes as the store written in one call from the records in order.
    want = tmp_path / "want"
    tokens.write_store(want, _part(good), batch_size=7, codebook_sizes=[4096, 4096])
    names = sorted(p.name for p in want.iterdir())
    assert names == sorted(p.name for p in store.iterdir() if p.name != "rejects.jsonl")
    for n in names:
        assert (store / n).read_bytes() == (want / n).read_bytes(), n
    lines = [json.loads(x) for x in (store / "rejects.jsonl").read_text().splitlines()]
    assert lines == summary["rejects"]

    # A part out of row order is refused, naming it.
    bad = tmp_path / "bad"
    (bad / "_parts").mkdir(parents=True)
    pq.write_table(_part(list(reversed(good[:4]))), bad / "_parts" / "part-000000000000.parquet")
    with pytest.raises(ValueError, match="part-000000000000.parquet: rows out of order"):
        aray.finish_token_store(bad)


def test_store_writer_takes_tables_one_at_a_time(tmp_path):
    good = [r for r in _records(range(12), seed=1) if r["error"] is None]
    with tokens.StoreWriter(tmp_path / "s", num_scales=2, batch_size=4) as w:
        for i in range(0, len(good), 3):
            w.write(_part(good[i:i + 3]))
    tokens.write_store(tmp_path / "t", _part(good), batch_size=4)
    for p in sorted((tmp_path / "t").iterdir()):
        assert (tmp_path / "s" / p.name).read_bytes() == p.read_bytes(), p.name
    with pytest.raises(tokens.TokensError, match="already finished"):
        w.finish()
