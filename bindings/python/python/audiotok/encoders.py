"""Continuous audio encoders on arrays: HuBERT / wav2vec2, the Qwen2-Audio audio tower (and its
projector) and the Whisper encoder, computed as ``audiotok embed`` computes them.

``Encoder.from_pretrained(model)`` loads an HF model folder (``config.json`` + safetensors, sharded
through ``model.safetensors.index.json``; a full Qwen2-Audio-7B folder reads only its audio tower
and projector) or a hub id in the local Hugging Face cache. ``embed(audio)`` returns float32
``(frames, dim)`` for one layer, ``(layers, frames, dim)`` for several, what transformers returns
for one clip at a time (``last_hidden_state`` for ``layers="final"``; ``hidden_states[k]`` for an
index ``k``; Qwen2-Audio's ``multi_modal_projector`` output with ``stage="projected"``), but in
exact batches: a list of clips of different lengths gives, for each clip, the numbers it gives
alone. Long clips are cut into the documented windows of ``audiotok embed`` (HuBERT: 20 s cores
with 5 s of context on each side past 30 s; the towers: consecutive 30 s windows).

``embed_files(inputs, out, model=...)`` runs the very job ``audiotok embed`` runs (one ``.npy`` per
input plus ``manifest.jsonl``) and returns its ``--json`` summary.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _audiotok
from ._audiotok import EmbedError
from ._audiotok import Encoder as _NativeEncoder

__all__ = ["Encoder", "EmbedError", "embed_files"]

PathLike = Union[str, "os.PathLike[str]"]
Progress = Callable[[str, int, int], Any]
LayersArg = Union[str, int, Sequence[int]]


def _layers_value(layers: LayersArg) -> Any:
    """``layers`` as the job's options JSON spells it."""
    if isinstance(layers, str):
        if layers not in ("final", "all"):
            raise EmbedError(f"layers {layers!r}: expected 'final', 'all' or a list of hidden-state indices")
        return layers
    if isinstance(layers, (int, np.integer)):
        return {"list": [int(layers)]}
    return {"list": [int(k) for k in layers]}


class Encoder:
    """A continuous encoder (see the module docs). Pickles as its arguments; the weights are read
    again where it is unpickled (a Ray actor, a DataLoader worker)."""

    def __init__(self, model: PathLike, *, num_threads: int = 0) -> None:
        self._args = (os.fspath(model), int(num_threads))
        self._native = _NativeEncoder(self._args[0], num_threads=self._args[1])

    @classmethod
    def from_pretrained(cls, model: PathLike, *, num_threads: int = 0) -> "Encoder":
        """Loads ``model`` (a folder or a cached hub id); ``num_threads`` 0: one per core."""
        return cls(model, num_threads=num_threads)

    sampling_rate = 16000
    """The rate every model here takes; other rates are resampled with libsoxr HQ first."""

    @property
    def family(self) -> str:
        """``"wav2vec2"`` (HuBERT, wav2vec2, data2vec-audio), ``"qwen2_audio"`` or ``"whisper"``."""
        return self._native.family

    @property
    def num_layers(self) -> int:
        """Encoder layers: hidden-state indices run from 0 (the first layer's input) to this."""
        return self._native.num_layers

    @property
    def min_samples(self) -> int:
        """The shortest clip (16 kHz samples) with an output frame (HuBERT: 400)."""
        return self._native.min_samples

    @property
    def config_sha1(self) -> str:
        return self._native.config_sha1

    @property
    def model_dir(self) -> str:
        return self._native.model_dir

    def describe(self, layers: LayersArg = "final", stage: str = "encoder") -> Dict[str, Any]:
        """What ``layers``/``stage`` select: ``{"layers": labels, "dim": width, "frame_rate_hz": rate}``."""
        labels, dim, rate = self._native.describe(layers, stage)
        return {"layers": labels, "dim": dim, "frame_rate_hz": rate}

    def embed(
        self,
        audio: Any,
        sampling_rate: Optional[int] = None,
        *,
        layers: LayersArg = "final",
        stage: str = "encoder",
        pool: Optional[str] = None,
        batch_size: int = 8,
    ) -> Any:
        """Embeddings of mono audio: a 1-D clip gives one float32 array; a list of clips (any
        lengths) or a 2-D ``[batch, samples]`` array gives a list, each clip computed as alone.
        ``sampling_rate``: the audio's rate (default 16000). ``pool="mean"``: the mean over the
        valid frames, one vector per clip (and layer). Raises ``EmbedError`` naming the clip for
        one the model cannot take (shorter than ``min_samples``, a non-finite sample)."""
        rate = self.sampling_rate if sampling_rate is None else int(sampling_rate)
        single = False
        if isinstance(audio, np.ndarray) and audio.ndim == 1:
            clips = [audio]
            single = True
        elif isinstance(audio, np.ndarray) and audio.ndim == 2:
            clips = list(audio)
        elif isinstance(audio, np.ndarray):
            raise EmbedError(f"audio of shape {audio.shape}: expected [samples] or [batch, samples]")
        else:
            clips = list(audio)
        arrays = [np.ascontiguousarray(np.asarray(c, dtype=np.float32)) for c in clips]
        for i, a in enumerate(arrays):
            if a.ndim != 1:
                raise EmbedError(f"clip {i} of shape {a.shape}: expected mono samples [samples]")
        results = self._native.embed(arrays, rate, layers=layers, stage=stage, pool=pool, batch_size=batch_size)
        out: List[np.ndarray] = []
        for i, (arr, err) in enumerate(results):
            if arr is None:
                raise EmbedError(f"clip {i}: {err}")
            out.append(arr)
        return out[0] if single else out

    __call__ = embed

    def __repr__(self) -> str:
        return repr(self._native)

    def __reduce__(self) -> Any:
        model, num_threads = self._args
        return (_rebuild, (model, num_threads))


def _rebuild(model: str, num_threads: int) -> Encoder:
    return Encoder(model, num_threads=num_threads)


def embed_files(
    inputs: Union[PathLike, Sequence[PathLike]],
    out: PathLike,
    *,
    model: PathLike,
    layers: LayersArg = "final",
    stage: str = "encoder",
    pool: Optional[str] = None,
    dtype: str = "float32",
    batch_size: int = 8,
    jobs: int = 0,
    progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """Runs ``audiotok embed`` (the library job) on files or folders into ``out``: ``<stem>.npy``
    per input and ``manifest.jsonl``; bad files are records with their reason. Returns the
    summary (``audiotok embed --json``): ``records``, ``done``, ``failed``, ``audio_secs``."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    dtypes = {"float32": "f32", "f32": "f32", "float16": "f16", "f16": "f16"}
    if dtype not in dtypes:
        raise EmbedError(f"dtype {dtype!r}: expected 'float32' or 'float16'")
    if pool not in (None, "none", "mean"):
        raise EmbedError(f"pool {pool!r}: expected None, 'none' or 'mean'")
    if stage not in ("encoder", "projected"):
        raise EmbedError(f"stage {stage!r}: expected 'encoder' or 'projected'")
    options = {
        "model": os.fspath(model),
        "layers": _layers_value(layers),
        "stage": stage,
        "pool": "none" if pool is None else pool,
        "dtype": dtypes[dtype],
        "batch_size": int(batch_size),
        "jobs": int(jobs),
    }
    text = _audiotok.embed_files_json(
        [os.fspath(p) for p in inputs], os.fspath(out), json.dumps(options), progress=progress
    )
    return dict(json.loads(text))
