"""audiotok.loader on the pack fixtures: blocks, sharding, resumption, collation, fork, pickle."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import audiotok
from audiotok.loader import PackedAudioDataset, collate
from conftest import FIXTURES, ROOT

PACK = FIXTURES / "pack"
KEYS = ["input_ids", "labels", "position_ids", "seq_lengths", "cu_seqlens", "input_features", "feature_attention_mask"]


def same(a, b):
    assert a["audio"] == b["audio"] and a["index"] == b["index"]
    for k in KEYS:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_blocks_of_both_layouts_agree_and_match_the_extractor():
    std = PackedAudioDataset(PACK / "standard_4096_greedy_all", audio_root=ROOT)
    cook = PackedAudioDataset(PACK / "cooking_4096", audio_root=ROOT)
    assert len(std) == len(cook) == 2
    for i in range(2):
        a, b = std[i], cook[i]
        same(a, b)
        assert a["input_ids"].dtype == np.int64 and a["cu_seqlens"].dtype == np.int32
        assert a["input_features"].shape == (len(a["audio"]), 128, 3000)
        # The features are WhisperFeatureExtractor's on librosa-style loads of the block's audios.
        fe = audiotok.WhisperFeatureExtractor(feature_size=128)
        want = fe([audiotok.load(ROOT / p)[0] for p in a["audio"]], sampling_rate=16000, return_attention_mask=True)
        np.testing.assert_array_equal(a["input_features"], want["input_features"])
        np.testing.assert_array_equal(a["feature_attention_mask"], want["attention_mask"])
        starts = a["cu_seqlens"][:-1]
        assert (a["labels"][starts] == -100).all()
        ids = a["input_ids"]
        assert ((a["labels"] == -100) | ~np.isin(ids, [151646, 151647, 151648])).all()
    std2 = PackedAudioDataset(PACK / "standard_4096_greedy_all", audio_root=ROOT, feature="whisper-80")
    assert std2[0]["input_features"].shape[1] == 80


def test_iteration_prefetches_the_plan_in_order():
    ds = PackedAudioDataset(PACK / "cooking_512", audio_root=ROOT, shuffle=True, seed=5, num_threads=2, prefetch=2)
    order = ds.plan()
    assert sorted(order) == list(range(len(ds)))
    got = list(ds)
    assert [b["index"] for b in got] == order
    for b in got:
        same(b, ds[b["index"]])


def test_shards_are_disjoint_and_complete_and_resume_mid_epoch():
    base = dict(audio_root=ROOT, shuffle=True, seed=3)
    ds = PackedAudioDataset(PACK / "cooking_512", **base)
    everything = []
    for rank in range(2):
        r = PackedAudioDataset(PACK / "cooking_512", rank=rank, world_size=2, **base)
        shares = [r.plan(worker=w, workers=2) for w in range(2)]
        assert not set(shares[0]) & set(shares[1])
        everything += shares[0] + shares[1]
    assert sorted(everything) == list(range(len(ds)))
    ds.set_epoch(1)
    epoch1 = [b["index"] for b in ds]
    assert sorted(epoch1) == list(range(len(ds)))
    it = iter(ds)
    next(it)
    state = ds.state_dict()
    assert state == {"epoch": 1, "sample_in_epoch": 1, "seed": 3, "shuffle": True}
    again = PackedAudioDataset(PACK / "cooking_512", **base)
    again.load_state_dict(json.loads(json.dumps(state)))
    assert [b["index"] for b in again] == epoch1[1:]
    assert [b["index"] for b in again] == epoch1  # the resume point applies to one pass
    with pytest.raises(ValueError, match="seed"):
        PackedAudioDataset(PACK / "cooking_512", audio_root=ROOT, seed=4).load_state_dict(state)


def test_collate_forms():
    ds = PackedAudioDataset(PACK / "standard_512_bfd_assistant", audio_root=ROOT)
    blocks = [ds[0], ds[1]]
    docs = sum(len(b["seq_lengths"]) for b in blocks)
    flat = collate(blocks, "flatten")
    n = sum(int(b["seq_lengths"].sum()) for b in blocks)
    assert flat["input_ids"].shape == (1, n) and flat["cu_seq_lens_q"].shape == (docs + 1,)
    assert flat["cu_seq_lens_q"][-1] == n and flat["max_length_q"] == max(int(b["seq_lengths"].max()) for b in blocks)
    assert (flat["labels"][0, flat["cu_seq_lens_q"][:-1]] == -100).all()
    rows = collate(blocks, "rows")
    assert rows["input_ids"].shape == (2, 512) and "attention_mask" not in rows
    m = collate(blocks, "mask4d")["attention_mask"]
    assert m.shape == (2, 1, 512, 512)
    b = blocks[0]
    s, e = int(b["cu_seqlens"][1]), int(b["cu_seqlens"][2])
    assert m[0, 0, s + 1, s] and not m[0, 0, s, s + 1] and not m[0, 0, s, s - 1]
    used = int(b["cu_seqlens"][-1])
    assert not m[0, 0, used:].any() and not m[0, 0, :, used:].any()
    assert int(m[0, 0].sum()) == sum(L * (L + 1) // 2 for L in b["seq_lengths"].tolist())
    total_audio = sum(len(b["audio"]) for b in blocks)
    assert flat["input_features"].shape == (total_audio, 128, 3000)


def test_errors_name_the_block(tmp_path):
    with pytest.raises(audiotok.LoaderError, match="not an audiotok pack output"):
        PackedAudioDataset(FIXTURES / "mds" / "all_types")
    ds = PackedAudioDataset(PACK / "cooking_512", audio_root=tmp_path)  # the audio is not there
    with pytest.raises(audiotok.LoaderError, match="block 0: audio 0: .*speech_1s.wav"):
        ds[0]
    with pytest.raises(IndexError):
        ds[3]


def _in_child(q):
    ds = PackedAudioDataset(PACK / "cooking_512", audio_root=ROOT, num_threads=2)
    q.put([int(b["input_features"].sum() * 0) + b["index"] for b in ds])


def test_pickles_and_works_in_forked_children():
    import multiprocessing as mp

    ds = PackedAudioDataset(PACK / "cooking_512", audio_root=ROOT, shuffle=True, seed=9)
    list(ds)  # the parent has run its threads
    back = pickle.loads(pickle.dumps(ds))
    same(back[1], ds[1])
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_in_child, args=(q,))
    p.start()
    assert q.get(timeout=60) == [0, 1, 2]
    p.join(timeout=60)
    assert p.exitcode == 0
