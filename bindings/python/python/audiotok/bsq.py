"""BSQ spectrogram tokenizers: train one, turn audio into its codes and codes back into mel-db,
as ``audiotok bsq train|encode|decode|eval`` do (the very same library jobs).

``train(config, data, out)`` runs a training job (``config`` a dict or a JSON file as
``audiotok bsq train --config`` takes it; ``data`` audio files, folders or ``.jsonl``/``.csv``
manifests; ``out`` the run folder: checkpoints, ``metrics.jsonl``, ``rejects.jsonl``;
``resume=True`` continues it exactly). ``BsqTokenizer.from_pretrained(run)`` loads a run's latest
checkpoint (or a checkpoint folder), EMA weights by default; ``encode(audio, sampling_rate)``
returns int64 codes ``[time_patches, freq_patches]`` (MSB-first ``bits``-bit indices, time-major:
row ``t`` covers feature frames ``t*time_patch`` onward at 100 frames/s, column ``f`` mel bins
``f*freq_patch`` onward), computed as ``audiotok bsq encode`` computes a file's (resampled to
16 kHz with libsoxr HQ; whole clips in consecutive crops, the tail padded to a patch);
``decode(codes)`` returns mel-db in dB ``[n_mels, frames]``. ``encode_files`` /
``decode_store`` / ``evaluate`` run the CLI's jobs and return their ``--json`` objects.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _audiotok
from ._audiotok import BsqError
from ._audiotok import BsqTokenizer as _NativeTokenizer

__all__ = ["BsqError", "BsqTokenizer", "decode_store", "encode_files", "evaluate", "train"]

PathLike = Union[str, "os.PathLike[str]"]
Progress = Callable[[str, int, int], Any]


def _paths(inputs: Union[PathLike, Sequence[PathLike]]) -> List[str]:
    if isinstance(inputs, (str, os.PathLike)):
        return [os.fspath(inputs)]
    return [os.fspath(p) for p in inputs]


class BsqTokenizer:
    """A trained BSQ tokenizer (see the module docs). Pickles as its arguments; the weights are
    read again where it is unpickled (a Ray actor, a DataLoader worker)."""

    def __init__(
        self, model: PathLike, *, weights: str = "ema", device: str = "cpu", num_threads: int = 0
    ) -> None:
        self._args = (os.fspath(model), weights, device, int(num_threads))
        self._native = _NativeTokenizer(self._args[0], weights=weights, device=device, num_threads=self._args[3])

    @classmethod
    def from_pretrained(
        cls, model: PathLike, *, weights: str = "ema", device: str = "cpu", num_threads: int = 0
    ) -> "BsqTokenizer":
        """Loads a run folder (its latest checkpoint) or a checkpoint folder; ``weights``
        ``"ema"`` (where the checkpoint has them) or ``"live"``; ``num_threads`` 0: one per core."""
        return cls(model, weights=weights, device=device, num_threads=num_threads)

    @property
    def config(self) -> Dict[str, Any]:
        """The model configuration (the run's ``model`` section, defaults filled in)."""
        return dict(json.loads(self._native.config_json()))

    @property
    def bits(self) -> int:
        return self._native.bits

    @property
    def group_size(self) -> int:
        return self._native.group_size

    @property
    def codebook_size(self) -> int:
        """``2 ** bits``."""
        return 1 << self._native.bits

    @property
    def n_mels(self) -> int:
        return self._native.n_mels

    @property
    def freq_patches(self) -> int:
        return self._native.freq_patches

    @property
    def time_patch(self) -> int:
        return self._native.time_patch

    @property
    def sampling_rate(self) -> int:
        """16000: the rate the features are computed at."""
        return self._native.sampling_rate

    @property
    def rate_hz(self) -> float:
        """Tokens per second of audio."""
        return self._native.rate_hz

    @property
    def checkpoint(self) -> str:
        return self._native.checkpoint

    @property
    def weights(self) -> str:
        """``"ema"`` or ``"live"``: the weights loaded."""
        return self._native.weights

    def store_layout(self, group_scales: bool = True) -> Dict[str, Any]:
        """What ``audiotok bsq encode`` writes in a token store's metadata: ``num_scales``,
        ``codebook_sizes``, ``rates_hz`` and ``provenance``."""
        return dict(json.loads(self._native.store_layout_json(group_scales)))

    def encode(self, audio: Any, sampling_rate: Optional[int] = None, *, crops_per_call: int = 8) -> np.ndarray:
        """Codes of mono audio (1-D float samples at ``sampling_rate``, default 16000): int64
        ``[time_patches, freq_patches]``. An empty, non-finite or silent clip raises
        ``BsqError``."""
        x = np.ascontiguousarray(np.asarray(audio, dtype=np.float32))
        if x.ndim != 1:
            raise BsqError(f"audio of shape {x.shape}: expected mono samples [samples]")
        rate = self.sampling_rate if sampling_rate is None else int(sampling_rate)
        return self._native.encode(x, rate, crops_per_call=crops_per_call)

    __call__ = encode

    def encode_mel(self, mel: Any, *, crops_per_call: int = 8) -> np.ndarray:
        """Codes of scaled features (``[n_mels, frames]`` in ``[-1, 1]``, as ``features``
        returns them)."""
        x = np.ascontiguousarray(np.asarray(mel, dtype=np.float32))
        if x.ndim != 2:
            raise BsqError(f"features of shape {x.shape}: expected [n_mels, frames]")
        return self._native.encode_mel(x, crops_per_call=crops_per_call)

    def features(self, audio: Any) -> np.ndarray:
        """The scaled mel-db features the model takes, of mono 16 kHz samples: float32
        ``[n_mels, frames]`` in ``[-1, 1]`` (-80 dB to 0 dB below the clip's maximum)."""
        x = np.ascontiguousarray(np.asarray(audio, dtype=np.float32))
        if x.ndim != 1:
            raise BsqError(f"audio of shape {x.shape}: expected mono samples [samples]")
        return self._native.features(x)

    def decode(self, codes: Any, *, frames: Optional[int] = None) -> np.ndarray:
        """Mel-db in dB (float32 ``[n_mels, frames]``, ``[-80, 0]``) of codes ``[time_patches,
        freq_patches]`` (or flat, time-major); ``frames`` keeps that many (a clip's own length:
        ``1 + samples // 160``)."""
        c = np.ascontiguousarray(np.asarray(codes, dtype=np.int64).reshape(-1))
        return self._native.decode(c, frames=frames)

    def __repr__(self) -> str:
        return repr(self._native)

    def __reduce__(self) -> Any:
        return (_rebuild, self._args)


def _rebuild(model: str, weights: str, device: str, num_threads: int) -> BsqTokenizer:
    return BsqTokenizer(model, weights=weights, device=device, num_threads=num_threads)


def train(
    config: Optional[Union[Dict[str, Any], PathLike]],
    data: Union[PathLike, Sequence[PathLike]],
    out: PathLike,
    *,
    resume: bool = False,
    steps: Optional[int] = None,
    seed: Optional[int] = None,
    stop_at: Optional[int] = None,
    device: str = "cpu",
    progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """Runs ``audiotok bsq train``'s job. ``config``: a dict or a JSON file (``None`` with
    ``resume``: the run's own); ``steps``/``seed`` override ``total_steps``/``seed`` as the CLI's
    flags do (new runs only); ``stop_at`` stops with a checkpoint after that update. Returns the
    summary (``audiotok bsq train --json``) plus ``log``, the lines of ``metrics.jsonl``."""
    cfg: Optional[Dict[str, Any]]
    if config is None:
        cfg = None
    elif isinstance(config, dict):
        cfg = dict(config)
    else:
        with open(os.fspath(config), encoding="utf-8") as f:
            cfg = dict(json.load(f))
    if cfg is None and (steps is not None or seed is not None):
        raise BsqError("steps and seed change the run: with resume give them with the config as the run had them")
    if cfg is not None:
        if steps is not None:
            cfg["total_steps"] = int(steps)
        if seed is not None:
            cfg["seed"] = int(seed)
    text = _audiotok.bsq_train_json(
        None if cfg is None else json.dumps(cfg),
        _paths(data),
        os.fspath(out),
        resume=resume,
        stop_at=stop_at,
        device=device,
        progress=progress,
    )
    return dict(json.loads(text))


def encode_files(
    inputs: Union[PathLike, Sequence[PathLike]],
    output: PathLike,
    *,
    model: PathLike,
    weights: str = "ema",
    batch_size: int = 1000,
    crops_per_call: int = 8,
    group_scales: bool = True,
    device: str = "cpu",
    progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """Runs ``audiotok bsq encode``'s job: files or folders into the token store ``output``
    (scale 0 the ``bits``-bit codes, then the group scales unless ``group_scales=False``);
    undecodable or silent files are rejects. Returns the ``--json`` summary."""
    text = _audiotok.bsq_encode_files_json(
        os.fspath(model),
        _paths(inputs),
        os.fspath(output),
        weights=weights,
        batch_size=batch_size,
        crops_per_call=crops_per_call,
        group_scales=group_scales,
        device=device,
        progress=progress,
    )
    return dict(json.loads(text))


def decode_store(
    store: PathLike,
    out: PathLike,
    *,
    model: PathLike,
    weights: str = "ema",
    wav_iters: Optional[int] = None,
    device: str = "cpu",
    progress: Optional[Progress] = None,
) -> List[Dict[str, Any]]:
    """Runs ``audiotok bsq decode``'s job: each record to ``out/<name>.npy`` (mel-db in dB) and,
    with ``wav_iters``, a Griffin-Lim ``.wav`` (a listening aid, not a vocoder). Returns the
    records decoded."""
    text = _audiotok.bsq_decode_store_json(
        os.fspath(model), os.fspath(store), os.fspath(out), weights=weights, wav_iters=wav_iters,
        device=device, progress=progress,
    )
    return list(json.loads(text))


def evaluate(
    data: Union[PathLike, Sequence[PathLike]],
    *,
    model: PathLike,
    weights: str = "ema",
    device: str = "cpu",
    progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """Runs ``audiotok bsq eval``'s job: reconstruction error against the baselines, codebook
    usage, entropy, bitrate (the ``--json`` report)."""
    text = _audiotok.bsq_evaluate_json(
        os.fspath(model), _paths(data), weights=weights, device=device, progress=progress
    )
    return dict(json.loads(text))
