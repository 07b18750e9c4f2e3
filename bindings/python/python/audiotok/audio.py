"""Audio in, named as librosa names it."""

from __future__ import annotations

import os
from typing import BinaryIO, Optional, Tuple, Union

import numpy as np

from . import _audiotok

PathLike = Union[str, "os.PathLike[str]"]


def load(
    path: Union[PathLike, bytes, bytearray, memoryview, BinaryIO],
    sr: Optional[int] = 16000,
    mono: bool = True,
    *,
    name: Optional[str] = None,
) -> Tuple[np.ndarray, int]:
    """Decode ``path`` (WAV, FLAC, MP3, Ogg Vorbis), downmix to mono when ``mono`` (channel mean),
    and resample to ``sr`` Hz with libsoxr HQ (``None`` keeps the file's rate), as
    ``librosa.load(path, sr=sr, mono=mono)`` with its default ``res_type="soxr_hq"``.

    ``path`` may also be the encoded file itself, in memory: ``bytes`` (a Parquet cell of an HF
    ``Audio`` column, an object-store download, a tar member) or a binary file object (read
    whole), as librosa and soundfile take file objects; it decodes to exactly the samples the same
    bytes on disk give. ``name`` then stands for it in errors (a record id such as
    ``"train-00000.parquet#12"``; default ``"<bytes>"``, or the file object's ``name``).

    Returns ``(y, sr)``: float32, shape ``(n,)`` when mono, else ``(channels, n)``. Raises
    ``FileNotFoundError`` for a missing file and ``audiotok.AudioError`` (naming the file) for one
    that cannot be decoded, is empty, truncated, or holds NaN samples.
    """
    if isinstance(path, (bytes, bytearray, memoryview)):
        return _audiotok.load_bytes(bytes(path), sr, mono, name or "<bytes>")
    if hasattr(path, "read"):
        data = path.read()  # type: ignore[union-attr]
        label = name or str(getattr(path, "name", "<bytes>"))
        return _audiotok.load_bytes(bytes(data), sr, mono, label)
    return _audiotok.load(path, sr, mono)


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample ``y`` (shape ``(n,)`` or ``(channels, n)``) from ``orig_sr`` to ``target_sr`` Hz with
    libsoxr HQ, as ``librosa.resample(y, orig_sr=..., target_sr=...)`` does by default. The result
    is float32 (librosa keeps float64 input as float64; audiotok computes in float32)."""
    x = np.asarray(y, dtype=np.float32)
    if x.ndim == 1:
        return _audiotok.resample(np.ascontiguousarray(x), orig_sr=orig_sr, target_sr=target_sr)
    if x.ndim != 2:
        raise ValueError(f"resample: expected shape (n,) or (channels, n), got {x.shape}")
    rows = [_audiotok.resample(np.ascontiguousarray(r), orig_sr=orig_sr, target_sr=target_sr) for r in x]
    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
