"""Model input features and token counts.

``WhisperFeatureExtractor`` is called as transformers' ``WhisperFeatureExtractor`` and returns the
same keys, shapes and dtypes; the log-mel itself is audiotok's (``precision="fast"``: float32,
within 1e-4 of transformers' numpy path; ``"exact"``: float64 as that path, bit-identical).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Union, cast

import numpy as np

from . import _audiotok

logger = logging.getLogger("audiotok")

_KINDS = {80: "whisper-80", 128: "whisper-128"}


def features(
    signals: Union[np.ndarray, Sequence[np.ndarray]],
    kind: str = "whisper-128",
    *,
    padding: str = "max_length",
    precision: str = "fast",
    frames: Optional[int] = 1024,
    num_threads: int = 1,
) -> np.ndarray:
    """Features of one mono 16 kHz signal (shape ``(n,)``) or a list of them, for ``kind`` in
    ``audiotok.FEATURE_KINDS``: ``whisper-128``/``whisper-80`` log-mel ``(n_mels, 3000)`` (or the
    signal's own frames with ``padding="longest"``), ``wav2vec2`` normalised waveform, ``mel-db``.
    A list gives one stacked array; its signals must give one shape."""
    one = isinstance(signals, np.ndarray) and signals.ndim == 1
    batch = [signals] if one else list(signals)
    xs = [np.ascontiguousarray(s, dtype=np.float32) for s in batch]
    out, _ = _audiotok.compute_features(
        xs, kind, padding=padding, precision=precision, frames=frames, num_threads=num_threads
    )
    return out[0] if one else out


def features_from_files(
    paths: Sequence[Union[str, "os.PathLike[str]"]],
    kind: str = "whisper-128",
    *,
    padding: str = "max_length",
    precision: str = "fast",
    frames: Optional[int] = 1024,
    num_threads: int = 0,
    on_error: str = "raise",
    progress: Optional[Callable[[str, int, int], None]] = None,
) -> List[Optional[np.ndarray]]:
    """Decode each file (mono, 16 kHz, libsoxr HQ) and compute its ``kind`` features on Rust
    threads (``num_threads``, 0: one per core), as ``audiotok features`` does, returning the
    arrays in input order. ``on_error="raise"`` raises ``audiotok.AudioError`` naming the first
    file that failed (after all were tried); ``"skip"`` puts ``None`` in its place."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error={on_error!r}: expected 'raise' or 'skip'")
    got = _audiotok.compute_file_features(
        [os.fspath(p) for p in paths],
        kind,
        padding=padding,
        precision=precision,
        frames=frames,
        num_threads=num_threads,
        progress=progress,
    )
    failed = [reason for (_, _, _, reason) in got if reason is not None]
    if failed and on_error == "raise":
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise _audiotok.AudioError(failed[0] + more)
    return [f for (f, _, _, _) in got]


def count_tokens(
    paths_or_lengths: Union[int, "os.PathLike[str]", str, Sequence[Union[int, str, "os.PathLike[str]"]]],
    profile: str = "qwen2-audio",
    *,
    num_threads: int = 0,
) -> Union[int, List[int]]:
    """Audio tokens an encoder ``profile`` (``audiotok.PROFILES``) needs, as ``audiotok count``
    counts them: for clips of so many samples at the profile's rate (16 kHz for
    Qwen2-Audio/Whisper), or for audio files (their verified header length, else a decode keeping
    nothing; on ``num_threads`` threads). One int per clip (summed over the scales of
    multi-scale codecs); a single length or path gives a single int. A file that cannot be read
    raises ``audiotok.AudioError`` naming it."""
    single = isinstance(paths_or_lengths, (int, np.integer, str, os.PathLike))
    items: List[Any] = [paths_or_lengths] if single else list(cast(Sequence[Any], paths_or_lengths))
    if items and all(isinstance(i, (str, os.PathLike)) for i in items):
        report = json.loads(_audiotok.count_files_json([os.fspath(i) for i in items], profile, num_threads=num_threads))
        if report["failed"]:
            raise _audiotok.AudioError(report["failed"][0]["error"])
        counts = [int(f["total"]) for f in report["files"]]
    else:
        counts = [sum(c) for c in _audiotok.count_tokens_from_lengths([int(n) for n in items], profile)]
    return counts[0] if single else counts


class WhisperFeatureExtractor:
    """transformers' ``WhisperFeatureExtractor``, computed by audiotok.

    Same constructor arguments (``feature_size`` 80 or 128, ``sampling_rate`` 16000, ``hop_length``
    160, ``chunk_length`` 30, ``n_fft`` 400, ``padding_value`` 0.0, ``dither`` 0.0,
    ``return_attention_mask``) and the same call: ``raw_speech`` one signal or a batch,
    ``padding="max_length"`` (30 s, default) or ``"longest"``, ``max_length``, ``truncation``,
    ``pad_to_multiple_of``, ``return_attention_mask``, ``return_tensors`` (``None``/``"np"``: numpy,
    ``"pt"``: torch), ``sampling_rate``. Returns a dict with ``input_features`` float32
    ``(batch, feature_size, frames)`` and, when asked, ``attention_mask`` int32 ``(batch, frames)``.
    Only the defaults of the STFT geometry are computed; ``do_normalize`` and ``dither`` are not
    supported (transformers' defaults leave both off). ``precision`` and ``num_threads`` are
    audiotok's own.
    """

    model_input_names = ["input_features"]

    def __init__(
        self,
        feature_size: int = 80,
        sampling_rate: int = 16000,
        hop_length: int = 160,
        chunk_length: int = 30,
        n_fft: int = 400,
        padding_value: float = 0.0,
        dither: float = 0.0,
        return_attention_mask: bool = False,
        *,
        precision: str = "fast",
        num_threads: int = 1,
        **kwargs: Any,
    ) -> None:
        if feature_size not in _KINDS:
            raise ValueError(f"feature_size {feature_size}: audiotok computes 80 or 128 mel bins")
        if (sampling_rate, hop_length, n_fft, padding_value, dither) != (16000, 160, 400, 0.0, 0.0):
            raise ValueError(
                "audiotok computes Whisper features with sampling_rate=16000, hop_length=160, n_fft=400, "
                "padding_value=0.0 and dither=0.0 only"
            )
        self.feature_size = feature_size
        self.sampling_rate = sampling_rate
        self.hop_length = hop_length
        self.chunk_length = chunk_length
        self.n_fft = n_fft
        self.padding_value = padding_value
        self.dither = dither
        self.return_attention_mask = return_attention_mask
        self.n_samples = chunk_length * sampling_rate
        self.nb_max_frames = self.n_samples // hop_length
        self.precision = precision
        self.num_threads = num_threads
        self.padding_side = kwargs.pop("padding_side", "right")
        if self.padding_side != "right":
            raise ValueError("audiotok pads on the right only")

    def __repr__(self) -> str:
        return (
            f"audiotok.WhisperFeatureExtractor(feature_size={self.feature_size}, "
            f"chunk_length={self.chunk_length}, precision={self.precision!r})"
        )

    def from_files(
        self,
        paths: Sequence[Union[str, "os.PathLike[str]"]],
        return_tensors: Optional[str] = None,
        return_attention_mask: Optional[bool] = None,
        progress: Optional[Callable[[str, int, int], None]] = None,
    ) -> Dict[str, Any]:
        """``self(audiotok.load(p)[0] for p in paths, sampling_rate=16000, ...)`` with the decoding
        and the log-mel of every file on Rust threads (``num_threads``; 0: one per core) and only
        each file's first 30 s decoded: the same keys, values and dtypes, max-length padding.
        A file that cannot be decoded raises ``audiotok.AudioError`` naming it."""
        got = _audiotok.compute_file_features(
            [os.fspath(p) for p in paths],
            _KINDS[self.feature_size],
            padding="max_length",
            precision=self.precision,
            num_threads=self.num_threads,
            progress=progress,
        )
        failed = [reason for (_, _, _, reason) in got if reason is not None]
        if failed:
            raise _audiotok.AudioError(failed[0])
        feats = np.stack([f for (f, _, _, _) in got if f is not None]) if got else np.zeros((0, self.feature_size, self.nb_max_frames), np.float32)
        out: Dict[str, Any] = {"input_features": feats}
        if bool(return_attention_mask) or self.return_attention_mask:
            samples = [min(int(n or 0), self.n_samples) for (_, _, n, _) in got]
            mask = np.zeros((len(got), self.n_samples), dtype=np.int32)
            for i, n in enumerate(samples):
                mask[i, :n] = 1
            if return_attention_mask:
                mask = mask[:, :: self.hop_length]
            out["attention_mask"] = np.ascontiguousarray(mask)
        return _tensors(out, return_tensors)

    def __call__(
        self,
        raw_speech: Union[np.ndarray, Sequence[float], Sequence[np.ndarray]],
        truncation: bool = True,
        pad_to_multiple_of: Optional[int] = None,
        return_tensors: Optional[str] = None,
        return_attention_mask: Optional[bool] = None,
        padding: Union[str, bool, None] = "max_length",
        max_length: Optional[int] = None,
        sampling_rate: Optional[int] = None,
        do_normalize: Optional[bool] = None,
        device: Optional[str] = "cpu",
        **kwargs: Any,
    ) -> Dict[str, Any]:
        if sampling_rate is not None:
            if sampling_rate != self.sampling_rate:
                raise ValueError(
                    f"The model corresponding to this feature extractor: {type(self).__name__} was trained using a"
                    f" sampling rate of {self.sampling_rate}. Please make sure that the provided `raw_speech` input"
                    f" was sampled with {self.sampling_rate} and not {sampling_rate}."
                )
        else:
            logger.warning(
                f"It is strongly recommended to pass the `sampling_rate` argument to `{type(self).__name__}()`. "
                "Failing to do so can result in silent errors that might be hard to debug."
            )
        if do_normalize:
            raise ValueError("audiotok.WhisperFeatureExtractor: do_normalize=True is not supported")
        if device not in (None, "cpu"):
            raise ValueError(f"audiotok.WhisperFeatureExtractor computes on the CPU, not {device!r}")
        if padding is True:
            padding = "longest"
        if padding not in ("max_length", "longest"):
            raise ValueError(f"padding={padding!r}: audiotok supports 'max_length' and 'longest'")

        # The batch, as transformers reads it: a 2-D array or a list of sequences is a batch.
        batched = (isinstance(raw_speech, np.ndarray) and raw_speech.ndim > 1) or (
            isinstance(raw_speech, (list, tuple)) and isinstance(raw_speech[0], (np.ndarray, tuple, list))
        )
        if isinstance(raw_speech, np.ndarray) and raw_speech.ndim > 2:
            raise ValueError(f"Only mono-channel audio is supported for input to {self}")
        speech = list(raw_speech) if batched else [raw_speech]
        xs = [np.asarray(s, dtype=np.float32).reshape(-1) for s in speech]

        # Padding and truncation as SequenceFeatureExtractor.pad: one target length for all.
        lengths = [len(x) for x in xs]
        if padding == "longest":
            target = max(lengths)
        else:
            target = max_length if max_length else self.n_samples
        if pad_to_multiple_of is not None and target % pad_to_multiple_of != 0:
            target = (target // pad_to_multiple_of + 1) * pad_to_multiple_of
        if padding == "max_length" and not truncation and any(n > target for n in lengths):
            # transformers then leaves longer signals whole and cannot stack the batch either.
            raise ValueError("audiotok.WhisperFeatureExtractor: signals longer than max_length need truncation=True")
        kept = [min(n, target) for n in lengths]
        kind = _KINDS[self.feature_size]
        if padding == "max_length" and target == self.n_samples:
            # audiotok's max-length mode pads or truncates to 30 s itself (and skips the frames
            # wholly in padding): the signals go as they are.
            xs = [np.ascontiguousarray(x) for x in xs]
            feats, _ = _audiotok.compute_features(
                xs, kind, padding="max_length", precision=self.precision, num_threads=self.num_threads
            )
        else:
            # Every signal padded with zeros or cut to `target` samples: audiotok's "longest"
            # mode then computes target // hop frames, as transformers does (its STFT's last
            # frame dropped).
            padded = []
            for x, n in zip(xs, kept):
                p = np.zeros(target, dtype=np.float32)
                p[:n] = x[:n]
                padded.append(p)
            feats, _ = _audiotok.compute_features(
                padded, kind, padding="longest", precision=self.precision, num_threads=self.num_threads
            )
        out: Dict[str, Any] = {"input_features": feats}

        # transformers asks pad() for `return_attention_mask or do_normalize`: a False or None
        # there falls back to the constructor's default.
        wants_mask = bool(return_attention_mask) or self.return_attention_mask
        if wants_mask:
            mask = np.zeros((len(xs), target), dtype=np.int32)
            for i, n in enumerate(kept):
                mask[i, :n] = 1
            if return_attention_mask:
                # Rescaled from samples to feature frames only when asked for in the call (as
                # transformers does), dropping the partial last frame.
                mask = mask[:, :: self.hop_length]
                if target % self.hop_length != 0:
                    mask = mask[:, :-1]
            out["attention_mask"] = np.ascontiguousarray(mask)

        return _tensors(out, return_tensors)


def _tensors(out: Dict[str, Any], return_tensors: Optional[str]) -> Dict[str, Any]:
    """numpy arrays as they are, or as torch tensors (sharing their memory) for ``"pt"``."""
    if return_tensors == "pt":
        import torch  # type: ignore[import-not-found, unused-ignore]

        return {k: torch.from_numpy(v) for k, v in out.items()}
    if return_tensors not in (None, "np"):
        raise ValueError(f"return_tensors={return_tensors!r}: audiotok returns 'np' or 'pt'")
    return out
