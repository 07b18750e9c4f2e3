"""audiotok.mds against the values mosaicml-streaming 0.13.0 reads back (tests/fixtures/mds)."""

from __future__ import annotations

import decimal
import json
import pickle
import shutil
import struct

import numpy as np
import pytest

import audiotok
from audiotok import mds
from conftest import FIXTURES, ROOT

EXPECTED = json.loads((FIXTURES / "mds" / "expected.json").read_text())["datasets"]


def form(v):
    """A value in the JSON form of tools/mds_values.py."""
    if isinstance(v, np.ndarray):
        return {"dtype": str(v.dtype), "shape": list(v.shape), "data": v.astype(v.dtype.newbyteorder("<")).tobytes().hex()}
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, float):
        return struct.pack(">d", v).hex()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    return v


@pytest.mark.parametrize("name", [n for n in EXPECTED if n != "pkl" and "decoded" in EXPECTED[n]])
def test_samples_equal_what_streaming_reads(name):
    entry = EXPECTED[name]
    ds = mds.MdsDataset(FIXTURES / "mds" / name)
    assert len(ds) == len(entry["decoded"])
    for i, want in enumerate(entry["decoded"]):
        got = {k: form(v) for k, v in ds[i].items()}
        # As JSON text, so that NaN equals NaN; keys come in the index's column order (sorted, as
        # streaming's writer stores them and its reader returns them).
        assert list(got) == ds.columns
        assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True), (name, i)
    last = {k: form(v) for k, v in ds[-1].items()}
    assert json.dumps(last, sort_keys=True) == json.dumps(entry["decoded"][-1], sort_keys=True)
    assert sum(1 for _ in ds) == len(ds)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_pickle_columns_are_refused():
    with pytest.raises(mds.MdsError, match="pkl"):
        ds = mds.MdsDataset(FIXTURES / "mds" / "pkl")
        ds[0]


def test_both_pack_layouts_and_pickling():
    std = mds.MdsDataset(FIXTURES / "pack" / "standard_4096_greedy_all")
    s = std[0]
    assert s["input_ids"].dtype == np.int32 and s["input_ids"].shape == (4096,)
    assert int(s["seq_lengths"].sum()) <= 4096 and isinstance(s["audio"], list)
    cooking = mds.MdsDataset(FIXTURES / "pack" / "cooking_4096")
    c = cooking[0]
    assert c["input_ids"].dtype == np.uint32 and c["input_ids"].shape == (4096,)
    assert int(c["attention_mask"].sum()) == int(s["seq_lengths"].sum())
    assert isinstance(c["audio"], str) and json.loads(c["audio"]) == s["audio"]
    back = pickle.loads(pickle.dumps(cooking))
    assert len(back) == len(cooking) and back.dir == cooking.dir
    np.testing.assert_array_equal(back[0]["input_ids"], c["input_ids"])


def test_merge_index_equals_streaming(tmp_path):
    root = tmp_path / "partitioned"
    shutil.copytree(FIXTURES / "mds" / "partitioned", root)
    want = (root / "index.json").read_bytes()
    (root / "index.json").unlink()
    n = mds.merge_index(root)
    assert (root / "index.json").read_bytes() == want
    assert n == len(json.loads(want)["shards"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(mds.MdsError, match="no partition"):
        mds.merge_index(empty)


@pytest.mark.parametrize("name", ["all_types", "zstd", "zstd7_hashed", "multi_shard", "hashed"])
def test_writer_gives_the_bytes_streaming_wrote(tmp_path, name):
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    from mds_values import from_repr

    spec = json.loads((FIXTURES / "mds" / "expected.json").read_text())["datasets"][name]
    columns, options = spec["columns"], spec["options"]
    out = tmp_path / name
    with audiotok.mds.MDSWriter(out=out, columns=columns, compression=options["compression"],
                                hashes=options["hashes"], size_limit=options["size_limit"]) as w:
        for sample in spec["samples"]:
            w.write({k: from_repr(columns[k], v) for k, v in sample.items()})
    want = FIXTURES / "mds" / name
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in want.iterdir())
    for p in sorted(want.iterdir()):
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name


def test_writer_refuses_bad_samples_and_reuse(tmp_path):
    w = audiotok.mds.MdsWriter(out=tmp_path / "o", columns={"id": "int", "x": "ndarray:float32"})
    with pytest.raises(audiotok.MdsError, match="no column `x`"):
        w.write({"id": 1})
    with pytest.raises(audiotok.MdsError, match="not"):
        w.write({"id": 1, "x": np.zeros(2, np.float32), "extra": 3})
    with pytest.raises(audiotok.MdsError, match="`id`"):
        w.write({"id": "one", "x": np.zeros(2, np.float32)})
    w.write({"id": 1, "x": np.zeros(2, np.float32)})
    assert w.finish() == 1
    with pytest.raises(audiotok.MdsError, match="already finished"):
        w.write({"id": 2, "x": np.zeros(2, np.float32)})
    with pytest.raises(audiotok.MdsError):
        audiotok.mds.MdsWriter(out=tmp_path / "o", columns={"id": "pkl"}, exist_ok=True)
    assert audiotok.mds.MdsDataset(tmp_path / "o")[0]["id"] == 1
