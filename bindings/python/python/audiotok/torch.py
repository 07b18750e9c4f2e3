"""torch fronts of ``audiotok.loader``: an ``IterableDataset`` and the Qwen2-Audio collator.

``Qwen2AudioCollator(mode=...)`` turns a list of ``PackedAudioDataset`` blocks into model inputs:

- ``"flatten"``: the keys of transformers' ``DataCollatorWithFlattening(return_flash_attn_kwargs=True)``
  (``input_ids``, ``labels``, ``position_ids`` as ``[1, N]``, ``cu_seq_lens_q/k``,
  ``max_length_q/k``) plus the audio tensors: for ``attn_implementation="flash_attention_2"``,
  which reads the documents' boundaries from them;
- ``"rows"``: ``[B, T]`` with ``position_ids`` and no mask (transformers 5.23.0 finds the packed
  documents from ``position_ids`` when no mask is given: the same loss as ``mask4d``);
- ``"mask4d"``: the notebook's block-diagonal causal mask ``[B, 1, T, T]``, additive in ``dtype``
  (0 where allowed, ``torch.finfo(dtype).min`` elsewhere, padding included), for SDPA/eager.

Labels are not shifted: the model's loss shifts them. Every document's first token is -100, so
the shifted loss never predicts a document from the one before it. With ``mask4d``,
``Qwen2AudioForConditionalGeneration(..., labels=...)`` of transformers 5.23.0 raises an
IndexError (its loss path does not take a 4-D mask): pass no ``labels`` and take the shifted mean
cross-entropy of ``lm_head(hidden_states)`` against them, as tools/check_loader.py does (equal to
the notebook path's loss there); the flatten and rows modes work with the built-in loss.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch  # type: ignore[import-not-found, unused-ignore]

from .loader import PackedAudioDataset, collate


class PackedAudioIterableDataset(torch.utils.data.IterableDataset):  # type: ignore[misc]
    """``PackedAudioDataset`` as a torch ``IterableDataset``: each DataLoader worker reads its
    share (by rank and worker) with Rust threads prefetching."""

    def __init__(self, dataset: PackedAudioDataset) -> None:
        super().__init__()
        self.dataset = dataset

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        # Arrays as tensors sharing their memory: a DataLoader worker then hands them to the main
        # process through shared memory instead of pickling tens of MB of features per block.
        for block in self.dataset:
            yield {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in block.items()}

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def state_dict(self, num_samples: Optional[int] = None) -> Dict[str, Any]:
        return self.dataset.state_dict(num_samples)

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.dataset.load_state_dict(state)


class Qwen2AudioCollator:
    """Collates ``PackedAudioDataset`` blocks into torch tensors (see the module's text)."""

    def __init__(self, mode: str = "flatten", dtype: "torch.dtype" = torch.bfloat16) -> None:
        if mode not in ("flatten", "rows", "mask4d"):
            raise ValueError(f"mode {mode!r}: expected 'flatten', 'rows' or 'mask4d'")
        self.mode = mode
        self.dtype = dtype

    def __call__(self, blocks: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
        arrays = [{k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in b.items()} for b in blocks]
        batch = collate(arrays, self.mode)
        out: Dict[str, Any] = {}
        for k, v in batch.items():
            if k == "attention_mask":
                allowed = torch.from_numpy(v)
                zero = torch.zeros((), dtype=self.dtype)
                out[k] = torch.where(allowed, zero, torch.tensor(torch.finfo(self.dtype).min, dtype=self.dtype))
            elif isinstance(v, np.ndarray):
                out[k] = torch.from_numpy(np.ascontiguousarray(v))
            else:
                out[k] = v
        return out


__all__: List[str] = ["PackedAudioIterableDataset", "Qwen2AudioCollator"]
