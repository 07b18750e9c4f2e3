"""The packed-audio training loader: ``audiotok pack`` output → what a Qwen2-Audio step reads.

``PackedAudioDataset`` replaces the Qwen2-Audio notebook's ``DatasetFixed``: per block it gives
``input_ids``, ``labels`` (-100 on audio tokens, padding and every document's first token),
``position_ids``, ``seq_lengths``, ``cu_seqlens``, ``input_features [n_audio, 128, 3000]`` and
``feature_attention_mask [n_audio, 3000]`` in placeholder order, as numpy arrays. Audio decoding
and log-mel run on Rust threads, a bounded window ahead, while Python consumes. It needs no torch;
``audiotok.torch`` wraps it as a torch ``IterableDataset`` and collates batches.

Sharding and resumption follow StreamingDataset: by rank and world size (from
``torch.distributed`` when initialised, else ``RANK``/``WORLD_SIZE``) and by DataLoader worker,
disjoint and complete; ``set_epoch``; a deterministic shuffle (``seed``, epoch);
``state_dict(num_samples)``/``load_state_dict`` to resume mid-epoch.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _audiotok

PathLike = Union[str, "os.PathLike[str]"]

#: Qwen2-Audio's special ids (``<|AUDIO|>``, ``<|audio_bos|>``, ``<|audio_eos|>``, pad).
QWEN2_AUDIO_IDS = {"audio": 151646, "audio_bos": 151647, "audio_eos": 151648, "pad": 151643}


def _rank_world() -> Tuple[int, int]:
    torch = sys.modules.get("torch")
    if torch is not None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return int(dist.get_rank()), int(dist.get_world_size())
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _worker() -> Tuple[int, int]:
    torch = sys.modules.get("torch")
    if torch is not None:
        info = torch.utils.data.get_worker_info()
        if info is not None:
            return int(info.id), int(info.num_workers)
    return 0, 1


class PackedAudioDataset:
    """Blocks of an ``audiotok pack`` output (standard layout or ``--compat cooking``).

    ``ds[i]`` reads block ``i`` now; iterating reads this process's share of the epoch on
    ``num_threads`` Rust threads, ``prefetch`` blocks ahead. ``batch_size`` is the DataLoader's
    (so that, with workers, the DataLoader yields the rank's share in order). ``rank`` and
    ``world_size`` default to the detected ones. Pickles as its configuration (the folder is
    reopened where it is unpickled), so DataLoader with spawn, Ray and Spark can ship it.
    """

    def __init__(
        self,
        mds_dir: PathLike,
        *,
        feature: str = "whisper-128",
        precision: str = "fast",
        shuffle: bool = False,
        seed: int = 0,
        num_threads: int = 2,
        prefetch: int = 4,
        batch_size: int = 1,
        drop_last: bool = False,
        audio_root: Optional[PathLike] = None,
        token_ids: Optional[Dict[str, int]] = None,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
    ) -> None:
        self.mds_dir = os.fspath(mds_dir)
        self.feature = feature
        self.precision = precision
        self.shuffle = shuffle
        self.seed = seed
        self.num_threads = num_threads
        self.prefetch = prefetch
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.audio_root = None if audio_root is None else os.fspath(audio_root)
        self.token_ids = dict(QWEN2_AUDIO_IDS if token_ids is None else token_ids)
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self._resume = 0
        self._yielded = 0
        self._blocks: Optional[_audiotok.PackedBlocks] = None
        self._open()

    def _open(self) -> _audiotok.PackedBlocks:
        if self._blocks is None:
            options = {
                "kind": self.feature,
                "precision": self.precision,
                "ids": self.token_ids,
                "audio_root": self.audio_root,
            }
            self._blocks = _audiotok.PackedBlocks(self.mds_dir, json.dumps(options))
        return self._blocks

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_blocks"] = None
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __len__(self) -> int:
        return len(self._open())

    def __getitem__(self, i: int) -> Dict[str, Any]:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"block {i} out of range for {n} blocks")
        out: Dict[str, Any] = self._open().block(i)
        return out

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration reads (its shuffle depends on it and ``seed``)."""
        self.epoch = int(epoch)

    def plan(self, *, worker: Optional[int] = None, workers: Optional[int] = None) -> List[int]:
        """The block indices this rank and DataLoader worker read next, in order."""
        rank, world = _rank_world()
        rank = rank if self.rank is None else self.rank
        world = world if self.world_size is None else self.world_size
        w, k = _worker()
        p = {
            "shuffle": self.shuffle,
            "seed": self.seed,
            "epoch": self.epoch,
            "rank": rank,
            "world": world,
            "worker": w if worker is None else worker,
            "workers": k if workers is None else workers,
            "batch_size": self.batch_size,
            "samples_seen": self._resume,
            "drop_last": self.drop_last,
        }
        return _audiotok.plan_json(len(self), json.dumps(p))

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        indices = self.plan()
        # A resume point applies to one pass.
        self._resume = 0
        self._yielded = 0
        it = self._open().prefetch(indices, num_threads=self.num_threads, window=self.prefetch)
        try:
            for block in it:
                self._yielded += 1
                yield block
        finally:
            it.close()

    def state_dict(self, num_samples: Optional[int] = None) -> Dict[str, Any]:
        """Where training stands, to resume mid-epoch: ``num_samples`` is the number of samples
        all ranks consumed this epoch (as StreamingDataset's ``state_dict(num_samples)``);
        without it, this process's own count times the world size (right without DataLoader
        workers)."""
        _, world = _rank_world()
        world = world if self.world_size is None else self.world_size
        seen = self._yielded * world if num_samples is None else int(num_samples)
        return {"epoch": self.epoch, "sample_in_epoch": seen, "seed": self.seed, "shuffle": self.shuffle}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Resume: the next iteration reads epoch ``state["epoch"]`` from where it stood."""
        if state.get("seed", self.seed) != self.seed or state.get("shuffle", self.shuffle) != self.shuffle:
            raise ValueError("load_state_dict: the state was saved with another seed or shuffle setting")
        self.epoch = int(state["epoch"])
        self._resume = int(state["sample_in_epoch"])


def collate(blocks: Sequence[Dict[str, Any]], mode: str = "flatten") -> Dict[str, Any]:
    """A batch of ``PackedAudioDataset`` blocks as numpy arrays, in one of three forms:

    - ``"flatten"``: the keys of transformers' ``DataCollatorWithFlattening(return_flash_attn_kwargs=True)``
      over the blocks' documents, padding dropped: ``input_ids``, ``labels``, ``position_ids``
      ``[1, N]`` int64; ``cu_seq_lens_q``/``cu_seq_lens_k`` int32; ``max_length_q``/``max_length_k``;
    - ``"rows"``: ``input_ids``, ``labels``, ``position_ids`` ``[B, T]`` int64 (no mask);
    - ``"mask4d"``: as rows plus ``attention_mask`` ``[B, 1, T, T]`` bool, True where query q may
      attend key k (same document, k <= q; nothing on padding): ``audiotok.torch`` makes it the
      notebook's additive mask.

    Every form adds ``input_features`` ``[n_audio, n_mels, 3000]`` float32 and
    ``feature_attention_mask`` ``[n_audio, 3000]`` int32 over the batch, in order, when the
    batch has audio (as the notebook's collator).
    """
    if not blocks:
        raise ValueError("collate: an empty batch")
    out: Dict[str, Any] = {}
    if mode == "flatten":
        ids: List[np.ndarray] = []
        labels: List[np.ndarray] = []
        pos: List[np.ndarray] = []
        lengths: List[int] = []
        for b in blocks:
            cu = b["cu_seqlens"]
            for s, e in zip(cu[:-1], cu[1:]):
                ids.append(b["input_ids"][s:e])
                lab = b["labels"][s:e].copy()
                lab[:1] = -100
                labels.append(lab)
                pos.append(np.arange(e - s, dtype=np.int64))
                lengths.append(int(e - s))
        out["input_ids"] = np.concatenate(ids)[None].astype(np.int64)
        out["labels"] = np.concatenate(labels)[None].astype(np.int64)
        out["position_ids"] = np.concatenate(pos)[None]
        cu_all = np.zeros(len(lengths) + 1, dtype=np.int32)
        cu_all[1:] = np.cumsum(lengths)
        out["cu_seq_lens_q"] = cu_all
        out["cu_seq_lens_k"] = cu_all.copy()
        out["max_length_q"] = max(lengths)
        out["max_length_k"] = max(lengths)
    elif mode in ("rows", "mask4d"):
        for k in ("input_ids", "labels", "position_ids"):
            out[k] = np.stack([b[k] for b in blocks]).astype(np.int64)
        if mode == "mask4d":
            t = out["input_ids"].shape[1]
            mask = np.zeros((len(blocks), 1, t, t), dtype=bool)
            causal = np.tril(np.ones((t, t), dtype=bool))
            for i, b in enumerate(blocks):
                doc = np.full(t, -1, dtype=np.int64)
                cu = b["cu_seqlens"]
                for d, (s, e) in enumerate(zip(cu[:-1], cu[1:])):
                    doc[s:e] = d
                same = (doc[:, None] == doc[None, :]) & (doc[:, None] >= 0)
                mask[i, 0] = same & causal
            out["attention_mask"] = mask
    else:
        raise ValueError(f"collate: mode {mode!r}: expected 'flatten', 'rows' or 'mask4d'")
    feats = [b["input_features"] for b in blocks if len(b["input_features"])]
    if feats:
        out["input_features"] = np.concatenate(feats)
        out["feature_attention_mask"] = np.concatenate(
            [b["feature_attention_mask"] for b in blocks if len(b["feature_attention_mask"])]
        )
    return out


__all__ = ["PackedAudioDataset", "QWEN2_AUDIO_IDS", "collate"]
