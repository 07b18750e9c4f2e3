#!/usr/bin/env python3
"""Blocks per second: audiotok's PackedAudioDataset against the notebook's DatasetFixed.

Both read the same `audiotok pack --compat cooking` output through a torch DataLoader with 1 and 2
workers (batch_size 1, no collation work beyond the defaults): the notebook path is
tools/loader_reference.py's `notebook_block` (LocalDataset + librosa.load + transformers'
WhisperFeatureExtractor per audio + the block-diagonal mask) in a map-style Dataset; audiotok's is
`audiotok.torch.PackedAudioIterableDataset` over `PackedAudioDataset(num_threads=1)` (one Rust
thread per worker, so both use as many cores). Run in the loader venv with audiotok installed:

    .venv-torch/bin/python tools/bench_loader.py [--blocks 24]

The dataset is made once under bench-data/loader/ by repeating tests/fixtures/pack/rows.json
(audio from 0.1 s to 45 s, WAV/FLAC/MP3/Ogg) and packing it with the Qwen2 tokenizer
(tools/fetch_qwen_tokenizer.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loader_reference as ref  # noqa: E402

import audiotok  # noqa: E402
import audiotok.torch as at  # noqa: E402
from audiotok.loader import PackedAudioDataset  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class NotebookDataset(torch.utils.data.Dataset):
    """The notebook's DatasetFixed over the folder (the reference's notebook path)."""

    def __init__(self, mds_dir: str) -> None:
        from streaming import LocalDataset

        ref.register_uint32()
        self.ds = LocalDataset(local=mds_dir)
        self.layout = ref.layout_of(mds_dir)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        return ref.notebook_block(self.ds[i], self.layout, index=i)


def make_dataset(out: str, copies: int) -> None:
    if os.path.exists(os.path.join(out, "index.json")):
        return
    rows = json.load(open(os.path.join(ROOT, "tests/fixtures/pack/rows.json")))
    rows = [r for r in rows for _ in range(1)] * copies
    s = audiotok.pack(rows, tokenizer=os.path.join(ROOT, "tests/fixtures/pack/qwen2-tokenizer"), out=out,
                      compat="cooking", audio_root=ROOT)
    print(f"packed {s['packed_rows']} rows into {s['blocks']} blocks -> {out}")


def rate(loader, n: int) -> float:
    it = iter(loader)
    next(it)  # workers started, first block out
    t = time.perf_counter()
    got = 0
    for _ in it:
        got += 1
        if got >= n:
            break
    return got / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=12)
    ap.add_argument("--blocks", type=int, default=24)
    args = ap.parse_args()
    out = os.path.join(ROOT, "bench-data/loader/cooking")
    make_dataset(out, args.copies)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, audiotok {audiotok.__version__}, {os.cpu_count()} cores")
    for workers in (1, 2):
        nb = torch.utils.data.DataLoader(NotebookDataset(out), batch_size=1, num_workers=workers,
                                         collate_fn=lambda b: b)
        ds = PackedAudioDataset(out, audio_root=ROOT, num_threads=1, prefetch=2)
        ours = torch.utils.data.DataLoader(at.PackedAudioIterableDataset(ds), batch_size=1,
                                           num_workers=workers, collate_fn=lambda b: b)
        n = min(args.blocks, len(ds) - 2)
        r_nb = rate(nb, n)
        r_ours = rate(ours, n)
        print(f"{workers} worker(s): notebook {r_nb:.2f} blocks/s, audiotok {r_ours:.2f} blocks/s ({r_ours / r_nb:.1f}x)")


if __name__ == "__main__":
    main()
