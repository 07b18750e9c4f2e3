"""audiotok.loader against tests/fixtures/loader: the notebook's DatasetFixed + collator and
transformers' DataCollatorWithFlattening, run with torch by tools/gen_loader_fixtures.py."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from audiotok.loader import PackedAudioDataset, collate
from conftest import FIXTURES, ROOT

NAMES = ["standard_4096_greedy_all", "standard_512_bfd_assistant", "cooking_4096", "cooking_512"]


def unruns(r):
    return [first + step * k for first, step, count in r for k in range(count)]


def sha256(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def tolerance(path):
    # The reference decodes with libsndfile, audiotok with symphonia: equal samples on lossless
    # files, slightly different ones from the lossy decoders. The reference's features are
    # transformers' torch path (the notebook ran with torch), within 8e-5 of the numpy path.
    return 5e-4 if path.lower().endswith((".mp3", ".ogg")) else 2e-4


@pytest.fixture(scope="module", params=NAMES)
def case(request):
    gold = json.loads((FIXTURES / "loader" / f"{request.param}.json").read_text())
    ds = PackedAudioDataset(ROOT / gold["source"], audio_root=ROOT)
    return gold, ds, [ds[i] for i in range(len(ds))]


def test_blocks_equal_the_reference(case):
    gold, ds, blocks = case
    assert len(ds) == gold["blocks_count"]
    for b, g in zip(blocks, gold["blocks"]):
        assert b["audio"] == g["audio"]
        for k in ("input_ids", "position_ids", "labels"):
            np.testing.assert_array_equal(b[k], unruns(g[k]), err_msg=k)
            assert str(b[k].dtype) == gold["dtypes"][k]
        np.testing.assert_array_equal(b["seq_lengths"], g["seq_lengths"])
        np.testing.assert_array_equal(b["cu_seqlens"], g["cu_seqlens"])
        fm = np.asarray([unruns(r) for r in g["feature_attention_mask"]["rows"]]).reshape(g["feature_attention_mask"]["shape"])
        np.testing.assert_array_equal(b["feature_attention_mask"], fm)
        assert int((b["input_ids"] == 151646).sum()) == g["audio_tokens"]
        # Our labels are the notebook's with the padding and each document's first token masked.
        nb = np.asarray(unruns(g["notebook_labels"]))
        ours = b["labels"]
        assert ((ours == nb) | (ours == -100)).all()
        # The notebook's additive [1, S, S] mask: our mask4d's allowed pattern over its S tokens.
        m = g["notebook_attention_mask"]
        s = m["shape"][-1]
        allowed = collate([b], "mask4d")["attention_mask"][0, 0, :s, :s].astype(np.int8)
        assert int(allowed.sum()) == m["allowed_count"]
        assert sha256(allowed[None]) == m["allowed_int8_sha256"]
        for a, digest in enumerate(g["input_features"]):
            f = b["input_features"][a]
            tol = tolerance(b["audio"][a])
            assert list(f.shape) == digest["shape"]
            for key in ("first_frames", "boundary"):
                sl = digest[key]
                (b0, b1), (f0, f1) = sl["bins"], sl["frames"]
                np.testing.assert_allclose(f[b0:b1, f0:f1], np.asarray(sl["values"], np.float32), rtol=0, atol=tol)
            assert abs(float(f.mean()) - digest["mean"]) <= tol


def test_collated_batch_equals_the_reference(case):
    gold, _, blocks = case
    batch = gold["batch"]
    picked = [blocks[i] for i in batch["blocks"]]
    flat = collate(picked, "flatten")
    want = batch["flatten"]
    assert sorted(flat) == want["keys"]
    for k in ("input_ids", "labels", "position_ids"):
        assert list(flat[k].shape) == want[k]["shape"] and str(flat[k].dtype) == want[k]["dtype"]
        np.testing.assert_array_equal(flat[k][0], unruns(want[k]["rows"][0]), err_msg=k)
    for k in ("cu_seq_lens_q", "cu_seq_lens_k"):
        assert str(flat[k].dtype) == want[k]["dtype"]
        np.testing.assert_array_equal(flat[k], want[k]["values"])
    assert (flat["max_length_q"], flat["max_length_k"]) == (want["max_length_q"], want["max_length_k"])
    rows = collate(picked, "rows")
    assert sorted(rows) == batch["rows"]["keys"]
    for k in ("input_ids", "labels", "position_ids"):
        np.testing.assert_array_equal(rows[k].reshape(-1), unruns([r for row in batch["rows"][k]["rows"] for r in row]))
    m4 = collate(picked, "mask4d")
    dig = batch["mask4d"]["attention_mask"]
    assert list(m4["attention_mask"].shape) == dig["shape"]
    assert sha256(m4["attention_mask"].astype(np.int8)) == dig["allowed_int8_sha256"]
    feats = batch["features"]
    assert list(m4["input_features"].shape) == feats["input_features"]["shape"]
    assert list(m4["feature_attention_mask"].shape) == feats["feature_attention_mask"]["shape"]
