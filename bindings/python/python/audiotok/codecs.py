"""Neural audio codecs on arrays: SNAC, as the ``snac`` package's ``SNAC`` class is used.

``SNAC.from_pretrained(model)`` loads a folder with ``config.json`` and weights (``pytorch_model.bin``
read structurally, never unpickled, or safetensors), or a hub id in the local Hugging Face cache
(``hubertsiuzdak/snac_24khz``), as ``audiotok encode --model`` does. ``encode(audio)`` returns one
int64 array per codebook (coarsest first) and ``decode(codes)`` float32 audio at the model's rate,
equal to the reference's (codes exactly; audio within 1e-4, its noise layers off unless a
``noise_seed`` is given). Shapes follow ``snac``: ``[batch, 1, samples]`` in gives ``[batch,
frames]`` codes and back; a 1-D clip gives 1-D codes and back. Audio at another rate is resampled
with libsoxr HQ first (``sampling_rate=``), as ``audiotok encode`` does for files.

``encode_files(inputs, out, model=...)`` and ``decode_store(store, out, model=...)`` run the very jobs
``audiotok encode`` / ``audiotok decode`` run (resumable token store; one WAV per record) and return
their ``--json`` summary.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _audiotok
from ._audiotok import CodecError
from ._audiotok import Snac as _NativeSnac

__all__ = ["SNAC", "CodecError", "decode_store", "encode_files"]

PathLike = Union[str, "os.PathLike[str]"]
Progress = Callable[[str, int, int], Any]


class SNAC:
    """A SNAC model (see the module docs). Pickles as its arguments; the weights are read again."""

    def __init__(
        self,
        model: PathLike,
        *,
        checkpoint: Optional[PathLike] = None,
        device: str = "cpu",
        num_threads: int = 0,
    ) -> None:
        self._args = (os.fspath(model), None if checkpoint is None else os.fspath(checkpoint), device, num_threads)
        self._native = _NativeSnac(
            self._args[0], checkpoint=self._args[1], device=device, num_threads=num_threads
        )

    @classmethod
    def from_pretrained(
        cls,
        model: PathLike,
        *,
        checkpoint: Optional[PathLike] = None,
        device: str = "cpu",
        num_threads: int = 0,
    ) -> "SNAC":
        """Loads ``model`` (a folder or a cached hub id); ``device`` ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` (a CUDA build) or ``"auto"``; ``num_threads`` 0: one per core."""
        return cls(model, checkpoint=checkpoint, device=device, num_threads=num_threads)

    @property
    def sampling_rate(self) -> int:
        return self._native.sampling_rate

    @property
    def hop_length(self) -> int:
        return self._native.hop_length

    @property
    def n_codebooks(self) -> int:
        return self._native.n_codebooks

    @property
    def codebook_size(self) -> int:
        return self._native.codebook_size

    @property
    def vq_strides(self) -> List[int]:
        return self._native.vq_strides

    @property
    def config(self) -> Dict[str, Any]:
        """The configuration (``config.json``'s fields, defaults filled in)."""
        return dict(json.loads(self._native.config_json()))

    def encode(self, audio: Any, sampling_rate: Optional[int] = None) -> List[np.ndarray]:
        """Codes of mono audio: a 1-D clip gives one 1-D int64 array per codebook; ``[batch, 1,
        samples]`` (or ``[batch, samples]``) gives ``[batch, frames]`` arrays, every row encoded as
        the 1-D clip would be. ``sampling_rate``: the audio's rate (default the model's)."""
        x = np.ascontiguousarray(np.asarray(audio, dtype=np.float32))
        rate = self.sampling_rate if sampling_rate is None else int(sampling_rate)
        if x.ndim == 1:
            return list(self._native.encode(x, rate))
        if x.ndim == 3:
            if x.shape[1] != 1:
                raise CodecError(f"audio of shape {x.shape}: SNAC takes mono audio [batch, 1, samples]")
            x = x[:, 0, :]
        if x.ndim != 2:
            raise CodecError(f"audio of shape {x.shape}: expected [samples], [batch, samples] or [batch, 1, samples]")
        return list(self._native.encode_batch(np.ascontiguousarray(x), rate))

    def decode(self, codes: Sequence[Any], *, noise_seed: Optional[int] = None) -> np.ndarray:
        """Audio of codes (one array per codebook, coarsest first): 1-D codes give 1-D float32
        audio, ``[batch, frames]`` codes give ``[batch, 1, samples]`` as ``snac`` returns it.
        ``noise_seed``: ``None`` leaves the decoder's noise layers out (deterministic); a seed adds
        their noise from it (row ``i`` of a batch from ``noise_seed + i``)."""
        arrays = [np.ascontiguousarray(np.asarray(c, dtype=np.int64)) for c in codes]
        if len(arrays) == 0:
            raise CodecError("no codes")
        if all(a.ndim == 1 for a in arrays):
            return self._native.decode(arrays, noise_seed=noise_seed)
        if all(a.ndim == 2 for a in arrays):
            return self._native.decode_batch(arrays, noise_seed=noise_seed)[:, None, :]
        raise CodecError(f"codes of shapes {[a.shape for a in arrays]}: expected all 1-D or all [batch, frames]")

    def __reduce__(self) -> Any:
        model, checkpoint, device, num_threads = self._args
        return (_snac, (model, checkpoint, device, num_threads))

    def __repr__(self) -> str:
        return f"SNAC({self._args[0]!r}, sampling_rate={self.sampling_rate}, n_codebooks={self.n_codebooks})"


def _snac(model: str, checkpoint: Optional[str], device: str, num_threads: int) -> SNAC:
    return SNAC(model, checkpoint=checkpoint, device=device, num_threads=num_threads)


def encode_files(
    inputs: Union[PathLike, Sequence[PathLike]],
    out: PathLike,
    *,
    model: PathLike,
    checkpoint: Optional[PathLike] = None,
    segment_seconds: float = 4.0,
    batch_size: int = 100,
    max_files: Optional[int] = None,
    num_threads: int = 0,
    device: str = "cpu",
    progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """Encodes audio files (or folders, walked) into the token store ``out``, as ``audiotok encode``
    does: the same plan, batches, resume (matching batches already in ``out`` are reused) and
    failures (a file that cannot be encoded is listed with its reason; the others go on). Returns
    the summary ``audiotok encode --json`` prints. ``progress(phase, done, total)`` is called as it
    goes (phases ``scan``, ``encode``)."""
    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    options = {
        "model": os.fspath(model),
        "checkpoint": None if checkpoint is None else os.fspath(checkpoint),
        "inputs": [os.fspath(p) for p in paths],
        "output": os.fspath(out),
        "segment_seconds": float(segment_seconds),
        "batch_size": int(batch_size),
        "max_files": max_files,
        "jobs": int(num_threads),
    }
    return dict(json.loads(_audiotok.encode_files_json(json.dumps(options), device=device, progress=progress)))


def decode_store(
    store: PathLike,
    out: PathLike,
    *,
    model: PathLike,
    checkpoint: Optional[PathLike] = None,
    noise_seed: Optional[int] = None,
    max_records: Optional[int] = None,
    num_threads: int = 0,
    device: str = "cpu",
    progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """Decodes a token store (a directory or one of its Parquet files) to one float32 WAV per
    record in ``out``, as ``audiotok decode`` does; ``noise_seed`` as ``--noise --seed`` (record
    ``i`` from ``noise_seed + i``; ``None``: noise off). Returns the summary ``audiotok decode
    --json`` prints."""
    options = {
        "model": os.fspath(model),
        "checkpoint": None if checkpoint is None else os.fspath(checkpoint),
        "input": os.fspath(store),
        "out": os.fspath(out),
        "noise": noise_seed is not None,
        "seed": 0 if noise_seed is None else int(noise_seed),
        "max_records": max_records,
        "jobs": int(num_threads),
    }
    return dict(json.loads(_audiotok.decode_store_json(json.dumps(options), device=device, progress=progress)))
