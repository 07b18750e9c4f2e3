"""audiotok stages as Ray Data operators and sinks: from a folder (or bucket) of audio to MDS
training shards and to a codec token store on a cluster.

Operators are callable classes for ``Dataset.map_batches(Op, fn_constructor_kwargs={...},
batch_format="pyarrow", concurrency=N, num_cpus=C)``: each opens its Rust handle (a model, a
feature extractor) once per actor, takes a ``pyarrow.Table`` batch and returns one with its
columns added, in plain Arrow types (lists and fixed-size lists, never Ray's tensor extension
type), so every Parquet reader reads the result. A row that fails gets its reason in the
``error`` column (null when it went through) and nulls in the operator's columns; later operators
pass it through untouched. Every operator keeps the columns it was given (``keep_bytes=False``
drops the encoded audio once decoded).

``Embed(model, layers=...)`` adds HuBERT / wav2vec2 / Qwen2-Audio tower / Whisper encoder outputs
(``embedding``: list<fixed_size_list<float32, dim>>), as ``audiotok.encoders.Encoder.embed``
computes them; ``ds.write_parquet(...)`` stores them for training. ``BsqEncode(run)`` adds a
trained BSQ tokenizer's codes in the token store's columns, as ``audiotok bsq encode`` computes
them; ``TokenStoreDatasink(path, bsq=run)`` writes them as that command does.

Sinks (``Dataset.write_datasink``):

- ``MdsDatasink(out, columns=...)``: each write task writes its own MDS part under ``out``
  (``part-<first row>``), and the driver merges the parts' indexes into ``out/index.json``
  exactly as ``audiotok mds merge`` / ``streaming.base.util.merge_index`` do, so
  ``StreamingDataset(local=out)`` reads one dataset.
- ``PackDatasink(out, tokenizer=...)``: packing across a cluster. Each write task tokenizes,
  expands ``<|AUDIO|>`` and packs its partition's rows with ``audiotok.pack`` (greedy or bfd,
  per partition) into its own MDS part; the driver merges the index. Packing per partition
  leaves at most one part-filled block per partition more than packing globally (measured in
  BENCHMARKS.md).
- ``TokenStoreDatasink(path)``: each write task writes its records to ``path/_parts/`` (one
  Parquet file per task, named by its first row, written atomically); the driver then writes
  the token store in input order (by the ``row`` column) exactly as ``audiotok encode`` lays it
  out, lists failed rows in ``path/rejects.jsonl`` and removes ``_parts``. A job killed mid-way
  keeps its finished parts: ``done_rows(path)`` tells the rerun which rows to skip, and the
  store it writes is the same.

``python -m audiotok.ray --help``: the pipeline from a folder or manifest of audio to MDS shards
and a SNAC token store. Ray is needed only here (``pip install "ray[data]"``).

CPUs: give decoding and feature operators ``num_cpus=1`` per actor (the Rust work runs on the
calling thread, the GIL released) and SNAC one CPU per thread it is given (``num_threads``);
on a small machine give actor stages fractional CPUs (``num_cpus=0.5``), or Ray waits for CPUs
that the other stages hold.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Set, Union, cast

import numpy as np

from . import _audiotok
from .audio import load
from .features import count_tokens, features
from .mds import MdsWriter, merge_index
from .tokens import write_store

if TYPE_CHECKING:
    import pyarrow  # type: ignore[import-untyped]

__all__ = [
    "Decode",
    "WhisperFeatures",
    "CountTokens",
    "SnacEncode",
    "Embed",
    "BsqEncode",
    "MdsDatasink",
    "PackDatasink",
    "TokenStoreDatasink",
    "done_rows",
    "list_audio",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Extensions ``list_audio`` walks for (those audiotok decodes).
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")


def _pa() -> Any:
    import pyarrow as pa  # type: ignore[import-untyped]

    return pa


def _column(batch: "pyarrow.Table", name: str) -> Optional[List[Any]]:
    return batch.column(name).to_pylist() if name in batch.column_names else None


def _errors(batch: "pyarrow.Table") -> List[Optional[str]]:
    got = _column(batch, "error")
    return got if got is not None else [None] * batch.num_rows


def _list_rows(batch: "pyarrow.Table", name: str) -> List[Optional[np.ndarray]]:
    """A list column's rows as numpy views of its values buffer (no Python floats), None for nulls."""
    arr = batch.column(name).combine_chunks()
    if len(arr) == 0:
        return []
    offsets = arr.offsets.to_numpy()
    values = arr.values.to_numpy(zero_copy_only=False)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    return [values[offsets[i] : offsets[i + 1]] if valid[i] else None for i in range(len(arr))]


def _list_array(rows: Sequence[Optional[np.ndarray]], value_type: Any) -> Any:
    """A list array of ``value_type`` from numpy rows (None: null) with one copy of the values."""
    pa = _pa()
    lengths = np.array([0 if r is None else len(r) for r in rows], dtype=np.int64)
    offsets = np.zeros(len(rows) + 1, dtype=np.int32 if lengths.sum() < 2**31 else np.int64)
    np.cumsum(lengths, out=offsets[1:])
    dtype = value_type.to_pandas_dtype()
    parts = [np.asarray(r, dtype=dtype) for r in rows if r is not None]
    values = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
    mask = pa.array([r is None for r in rows], type=pa.bool_())
    cls = pa.ListArray if offsets.dtype == np.int32 else pa.LargeListArray
    out = cls.from_arrays(pa.array(offsets), pa.array(values, type=value_type), mask=mask)
    return out.cast(pa.list_(value_type)) if cls is not pa.ListArray else out


def _with(batch: "pyarrow.Table", columns: Dict[str, Any]) -> "pyarrow.Table":
    """``batch`` with ``columns`` set (replaced when present, appended otherwise)."""
    for name, arr in columns.items():
        if name in batch.column_names:
            batch = batch.set_column(batch.column_names.index(name), name, arr)
        else:
            batch = batch.append_column(name, arr)
    return batch


def list_audio(inputs: Union[PathLike, Sequence[PathLike]]) -> List[str]:
    """Audio files under ``inputs`` (files as given, folders walked), sorted within each
    folder as ``audiotok`` commands walk them: the input order the sinks keep."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    out: List[str] = []
    for item in items:
        p = os.fspath(item)
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    if f.lower().endswith(AUDIO_EXTENSIONS):
                        out.append(os.path.join(root, f))
        else:
            out.append(p)
    return out


class Decode:
    """Encoded audio to mono float32 at ``sampling_rate`` (libsoxr HQ; ``None`` keeps each
    file's rate), as ``audiotok.load`` decodes it. Reads ``bytes_column`` (the encoded file, as
    ``ray.data.read_binary_files`` gives it) when present, else opens ``path_column``. Adds
    ``audio`` (list<float32>), ``sampling_rate`` (int32), ``num_samples`` (int64) and ``error``.
    CPU: 1 per actor."""

    def __init__(
        self,
        sampling_rate: Optional[int] = 16000,
        *,
        path_column: str = "path",
        bytes_column: str = "bytes",
        keep_bytes: bool = False,
    ) -> None:
        self.sampling_rate = sampling_rate
        self.path_column = path_column
        self.bytes_column = bytes_column
        self.keep_bytes = keep_bytes

    def __call__(self, batch: "pyarrow.Table") -> "pyarrow.Table":
        pa = _pa()
        paths = _column(batch, self.path_column)
        blobs = _column(batch, self.bytes_column)
        if paths is None and blobs is None:
            raise ValueError(f"Decode: the batch has neither a {self.path_column!r} nor a {self.bytes_column!r} column")
        errors = _errors(batch)
        audio: List[Optional[np.ndarray]] = []
        rates: List[Optional[int]] = []
        for i in range(batch.num_rows):
            name = paths[i] if paths is not None else f"row {i}"
            if errors[i] is not None:
                audio.append(None)
                rates.append(None)
                continue
            try:
                if blobs is not None and blobs[i] is not None:
                    y, sr = load(blobs[i], sr=self.sampling_rate, name=str(name))
                else:
                    y, sr = load(str(name), sr=self.sampling_rate)
                audio.append(y)
                rates.append(sr)
            except (OSError, ValueError) as e:
                audio.append(None)
                rates.append(None)
                errors[i] = str(e)
        out = _with(
            batch,
            {
                "audio": _list_array(audio, pa.float32()),
                "sampling_rate": pa.array(rates, type=pa.int32()),
                "num_samples": pa.array([None if a is None else len(a) for a in audio], type=pa.int64()),
                "error": pa.array(errors, type=pa.string()),
            },
        )
        if not self.keep_bytes and self.bytes_column in out.column_names:
            out = out.drop_columns([self.bytes_column])
        return out


class WhisperFeatures:
    """Whisper log-mel features of the ``audio`` column (16 kHz mono, from ``Decode``), as
    ``audiotok.WhisperFeatureExtractor`` / ``audiotok features --kind whisper-128`` compute them:
    ``input_features`` as fixed_size_list<fixed_size_list<float32, 3000>, feature_size> (30 s
    windows; longer audio is cut as the extractor cuts it) and ``feature_frames`` (the valid
    frames: the attention mask's length). CPU: 1 per actor."""

    def __init__(self, feature_size: int = 128, *, drop_audio: bool = False) -> None:
        if feature_size not in (80, 128):
            raise ValueError(f"feature_size={feature_size}: expected 80 or 128")
        self.kind = f"whisper-{feature_size}"
        self.feature_size = feature_size
        self.drop_audio = drop_audio

    def __call__(self, batch: "pyarrow.Table") -> "pyarrow.Table":
        pa = _pa()
        errors = _errors(batch)
        if "audio" not in batch.column_names:
            raise ValueError("WhisperFeatures: the batch has no 'audio' column (run Decode first)")
        audio = _list_rows(batch, "audio")
        rates = _column(batch, "sampling_rate")
        frames_per_window = 3000
        rows: List[Optional[np.ndarray]] = []
        valid: List[Optional[int]] = []
        for i, a in enumerate(audio):
            if errors[i] is not None or a is None:
                rows.append(None)
                valid.append(None)
                continue
            if rates is not None and rates[i] != 16000:
                errors[i] = f"WhisperFeatures needs 16 kHz audio, got {rates[i]} Hz (Decode(sampling_rate=16000))"
                rows.append(None)
                valid.append(None)
                continue
            try:
                x = np.asarray(a, dtype=np.float32)
                rows.append(features(x, self.kind))
                valid.append(min(frames_per_window, len(x) // 160))
            except ValueError as e:
                errors[i] = str(e)
                rows.append(None)
                valid.append(None)
        # Fixed-size lists over one dense buffer, null rows masked (their slots zero).
        fill = np.zeros((self.feature_size, frames_per_window), dtype=np.float32)
        dense = np.stack([fill if r is None else r for r in rows]).reshape(-1) if rows else np.zeros(0, np.float32)
        fsl = pa.FixedSizeListArray.from_arrays(
            pa.FixedSizeListArray.from_arrays(pa.array(dense, type=pa.float32()), frames_per_window),
            self.feature_size,
            mask=pa.array([r is None for r in rows], type=pa.bool_()),
        )
        out = _with(
            batch,
            {
                "input_features": fsl,
                "feature_frames": pa.array(valid, type=pa.int64()),
                "error": pa.array(errors, type=pa.string()),
            },
        )
        return out.drop_columns(["audio"]) if self.drop_audio else out


class CountTokens:
    """Audio tokens an encoder ``profile`` (``audiotok.PROFILES``) needs for each row, as
    ``audiotok count`` counts them: from ``num_samples`` (at the profile's rate, from ``Decode``)
    when the batch has it, else from the file at ``path_column`` (its verified header length).
    Adds ``audio_tokens`` (int64) and ``error``. CPU: 0.25 per actor (headers only)."""

    def __init__(self, profile: str = "qwen2-audio", *, path_column: str = "path") -> None:
        if profile not in _audiotok.PROFILES:
            raise ValueError(f"profile={profile!r}: expected one of {sorted(_audiotok.PROFILES)}")
        self.profile = profile
        self.path_column = path_column

    def __call__(self, batch: "pyarrow.Table") -> "pyarrow.Table":
        pa = _pa()
        errors = _errors(batch)
        lengths = _column(batch, "num_samples")
        paths = _column(batch, self.path_column)
        counts: List[Optional[int]] = []
        for i in range(batch.num_rows):
            if errors[i] is not None:
                counts.append(None)
                continue
            try:
                if lengths is not None and lengths[i] is not None:
                    counts.append(int(cast(int, count_tokens(int(lengths[i]), self.profile))))
                elif paths is not None:
                    counts.append(int(cast(int, count_tokens(str(paths[i]), self.profile))))
                else:
                    raise ValueError(f"CountTokens: no 'num_samples' or {self.path_column!r} column")
            except (OSError, ValueError) as e:
                counts.append(None)
                errors[i] = str(e)
        return _with(
            batch,
            {"audio_tokens": pa.array(counts, type=pa.int64()), "error": pa.array(errors, type=pa.string())},
        )


class SnacEncode:
    """SNAC codes of the ``audio`` column (mono, any rate: resampled to the model's), cut into
    ``segment_seconds`` segments as ``audiotok encode`` cuts a file. One output row per segment,
    in the token store's columns: ``file_path`` (the record name, ``path#k`` per segment as the
    CLI names them), ``duration``, and per scale ``tokens_scale_k`` (list<int32>),
    ``n_tokens_scale_k`` (int64), ``shape_scale_k`` (list<int64>); plus ``segment`` (int64) and the
    input's other columns except ``audio``. A failed row stays one row with its ``error``.
    ``model``: an HF folder / hub id in the cache / ``snac_24khz``-style name as ``audiotok
    encode --model`` takes it. CPU: ``num_threads`` per actor."""

    def __init__(
        self,
        model: str,
        *,
        checkpoint: Optional[PathLike] = None,
        segment_seconds: float = 4.0,
        device: str = "cpu",
        num_threads: int = 1,
        path_column: str = "path",
    ) -> None:
        self._native = _audiotok.Snac(
            model,
            checkpoint=None if checkpoint is None else os.fspath(checkpoint),
            device=device,
            num_threads=num_threads,
        )
        self.segment_seconds = float(segment_seconds)
        self.path_column = path_column

    @property
    def n_codebooks(self) -> int:
        return self._native.n_codebooks

    def __call__(self, batch: "pyarrow.Table") -> "pyarrow.Table":
        pa = _pa()
        errors = _errors(batch)
        audio = _list_rows(batch, "audio")
        rates = _column(batch, "sampling_rate") or [self._native.sampling_rate] * batch.num_rows
        paths = _column(batch, self.path_column) or [f"row {i}" for i in range(batch.num_rows)]
        rest = [c for c in batch.column_names if c not in ("audio", "error")]
        take: List[int] = []
        names: List[Optional[str]] = []
        durations: List[Optional[float]] = []
        segments: List[Optional[int]] = []
        codes: List[List[Optional[np.ndarray]]] = [[] for _ in range(self.n_codebooks)]
        out_errors: List[Optional[str]] = []

        def failed(i: int, why: str) -> None:
            take.append(i)
            names.append(str(paths[i]))
            durations.append(None)
            segments.append(None)
            for c in codes:
                c.append(None)
            out_errors.append(why)

        for i, a in enumerate(audio):
            if errors[i] is not None or a is None:
                failed(i, errors[i] or "no audio")
                continue
            try:
                got = self._native.encode_segments(np.asarray(a, dtype=np.float32), int(rates[i]), self.segment_seconds)
            except ValueError as e:
                failed(i, f"{paths[i]}: {e}")
                continue
            for k, (duration, cs) in enumerate(got):
                take.append(i)
                names.append(str(paths[i]) if self.segment_seconds == 0 else f"{paths[i]}#{k}")
                durations.append(duration)
                segments.append(k)
                for c, arr in zip(codes, cs):
                    c.append(arr)
                out_errors.append(None)
        out = batch.select(rest).take(pa.array(take, type=pa.int64()))
        columns: Dict[str, Any] = {
            "file_path": pa.array(names, type=pa.string()),
            "duration": pa.array(durations, type=pa.float64()),
        }
        for k, c in enumerate(codes):
            columns[f"tokens_scale_{k}"] = _list_array(c, pa.int32())
            columns[f"n_tokens_scale_{k}"] = pa.array([None if x is None else len(x) for x in c], type=pa.int64())
            columns[f"shape_scale_{k}"] = pa.array(
                [None if x is None else [len(x)] for x in c], type=pa.list_(pa.int64())
            )
        columns["segment"] = pa.array(segments, type=pa.int64())
        columns["error"] = pa.array(out_errors, type=pa.string())
        return _with(out, columns)


class Embed:
    """Encoder outputs of the ``audio`` column (mono, any rate: resampled to 16 kHz with libsoxr
    HQ), as ``audiotok embed`` / ``audiotok.encoders.Encoder.embed`` compute them: HuBERT /
    wav2vec2, the Qwen2-Audio tower (``stage="projected"``: its projector) or the Whisper encoder.
    The rows of a batch are embedded together in exact batches (each row's numbers are the ones it
    gives alone, whatever the batch). Adds, in plain Arrow types, ``embedding`` for one selected
    layer, or ``embedding_<label>`` per layer for several (``layers="all"`` or a list: labels are
    the hidden-state indices): list<fixed_size_list<float32, dim>> (frames x dim), or
    fixed_size_list<float32, dim> with ``pool="mean"``; plus ``embedding_frames`` (int64) and
    ``error``. ``drop_audio`` drops the samples once embedded. CPU: ``num_threads`` per actor
    (matrix products split across them)."""

    def __init__(
        self,
        model: PathLike,
        *,
        layers: Union[str, int, Sequence[int]] = "final",
        stage: str = "encoder",
        pool: Optional[str] = None,
        batch_size: int = 8,
        num_threads: int = 1,
        drop_audio: bool = False,
    ) -> None:
        from .encoders import Encoder

        self._encoder = Encoder(model, num_threads=num_threads)
        self.layers = layers
        self.stage = stage
        self.pool = pool
        self.batch_size = int(batch_size)
        self.drop_audio = drop_audio
        info = self._encoder.describe(layers, stage)
        self.labels: List[str] = list(info["layers"])
        self.dim = int(info["dim"])
        self.frame_rate_hz = float(info["frame_rate_hz"])

    def column_names(self) -> List[str]:
        """The embedding columns this operator adds, outermost layer first."""
        if len(self.labels) == 1:
            return ["embedding"]
        return [f"embedding_{label}" for label in self.labels]

    def __call__(self, batch: "pyarrow.Table") -> "pyarrow.Table":
        pa = _pa()
        if "audio" not in batch.column_names:
            raise ValueError("Embed: the batch has no 'audio' column (run Decode first)")
        errors = _errors(batch)
        audio = _list_rows(batch, "audio")
        rates = _column(batch, "sampling_rate") or [16000] * batch.num_rows
        todo = [i for i, a in enumerate(audio) if errors[i] is None and a is not None]
        by_rate: Dict[int, List[int]] = {}
        for i in todo:
            by_rate.setdefault(int(rates[i]), []).append(i)
        arrays: List[Optional[np.ndarray]] = [None] * batch.num_rows
        for rate, rows in by_rate.items():
            clips = [np.ascontiguousarray(audio[i], dtype=np.float32) for i in rows]
            got = self._encoder._native.embed(
                clips, rate, layers=self.layers, stage=self.stage, pool=self.pool, batch_size=self.batch_size
            )
            for i, (arr, err) in zip(rows, got):
                if arr is None:
                    errors[i] = f"Embed: {err}"
                else:
                    arrays[i] = arr
        for i, a in enumerate(audio):
            if errors[i] is None and a is None:
                errors[i] = "Embed: no audio"
        n = len(self.labels)
        pooled = self.pool == "mean"
        columns: Dict[str, Any] = {}
        for k, name in enumerate(self.column_names()):
            per_row = [None if a is None else (a if n == 1 else a[k]) for a in arrays]
            columns[name] = self._column(pa, per_row, pooled)
        frames = [None if a is None else (1 if pooled else int(a.shape[-2])) for a in arrays]
        columns["embedding_frames"] = pa.array(frames, type=pa.int64())
        columns["error"] = pa.array(errors, type=pa.string())
        out = _with(batch, columns)
        return out.drop_columns(["audio"]) if self.drop_audio else out

    def _column(self, pa: Any, rows: Sequence[Optional[np.ndarray]], pooled: bool) -> Any:
        mask = pa.array([r is None for r in rows], type=pa.bool_())
        if pooled:
            fill = np.zeros(self.dim, dtype=np.float32)
            dense = np.concatenate([fill if r is None else r for r in rows]) if rows else np.zeros(0, np.float32)
            return pa.FixedSizeListArray.from_arrays(pa.array(dense, type=pa.float32()), self.dim, mask=mask)
        lengths = np.array([0 if r is None else r.shape[0] for r in rows], dtype=np.int64)
        offsets = np.zeros(len(rows) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        parts = [r.reshape(-1) for r in rows if r is not None]
        values = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        inner = pa.FixedSizeListArray.from_arrays(pa.array(values, type=pa.float32()), self.dim)
        return pa.ListArray.from_arrays(pa.array(offsets), inner, mask=mask)


class BsqEncode:
    """BSQ codes of the ``audio`` column (mono, any rate: resampled to 16 kHz with libsoxr HQ), as
    ``audiotok bsq encode`` / ``audiotok.bsq.BsqTokenizer`` encode a file: one output row per
    input row in the token store's columns: ``file_path`` (the ``path_column`` value),
    ``duration``, and per scale ``tokens_scale_k`` (list<int32>, time-major), ``n_tokens_scale_k``
    (int64), ``shape_scale_k`` (list<int64>: ``[time_patches, freq_patches]``): scale 0 the
    ``bits``-bit codes, then the group scales (when ``group_scales`` and ``g < L``); plus the
    input's other columns except ``audio``, and ``error`` (an empty, non-finite or silent clip
    fails there, as the CLI rejects it). ``model``: a run folder or a checkpoint folder. Write the
    rows with ``TokenStoreDatasink(path, bsq=model)``. CPU: ``num_threads`` per actor (the
    model's matrix products)."""

    def __init__(
        self,
        model: PathLike,
        *,
        weights: str = "ema",
        group_scales: bool = True,
        crops_per_call: int = 8,
        num_threads: int = 1,
        path_column: str = "path",
    ) -> None:
        from .bsq import BsqTokenizer

        self._tokenizer = BsqTokenizer(model, weights=weights, num_threads=num_threads)
        self.group_scales = group_scales
        self.crops_per_call = int(crops_per_call)
        self.path_column = path_column
        self.num_scales = int(self._tokenizer.store_layout(group_scales)["num_scales"])

    def __call__(self, batch: "pyarrow.Table") -> "pyarrow.Table":
        pa = _pa()
        if "audio" not in batch.column_names:
            raise ValueError("BsqEncode: the batch has no 'audio' column (run Decode first)")
        errors = _errors(batch)
        audio = _list_rows(batch, "audio")
        rates = _column(batch, "sampling_rate") or [16000] * batch.num_rows
        paths = _column(batch, self.path_column) or [f"row {i}" for i in range(batch.num_rows)]
        durations: List[Optional[float]] = [None] * batch.num_rows
        codes: List[List[Optional[np.ndarray]]] = [[None] * batch.num_rows for _ in range(self.num_scales)]
        by_rate: Dict[int, List[int]] = {}
        for i, a in enumerate(audio):
            if errors[i] is None and a is None:
                errors[i] = "BsqEncode: no audio"
            elif errors[i] is None:
                by_rate.setdefault(int(rates[i]), []).append(i)
        for rate, rows in by_rate.items():
            clips = [np.ascontiguousarray(audio[i], dtype=np.float32) for i in rows]
            got = self._tokenizer._native.encode_clips(
                clips,
                rate,
                names=[str(paths[i]) for i in rows],
                group_scales=self.group_scales,
                crops_per_call=self.crops_per_call,
            )
            for i, (duration, scales, err) in zip(rows, got):
                if scales is None:
                    errors[i] = f"BsqEncode: {err}"
                    continue
                durations[i] = duration
                for k, arr in enumerate(scales):
                    codes[k][i] = arr
        rest = [c for c in batch.column_names if c not in ("audio", "error")]
        columns: Dict[str, Any] = {
            "file_path": pa.array([str(p) for p in paths], type=pa.string()),
            "duration": pa.array(durations, type=pa.float64()),
        }
        for k, c in enumerate(codes):
            columns[f"tokens_scale_{k}"] = _list_array([None if x is None else x.reshape(-1) for x in c], pa.int32())
            columns[f"n_tokens_scale_{k}"] = pa.array([None if x is None else x.size for x in c], type=pa.int64())
            columns[f"shape_scale_{k}"] = pa.array(
                [None if x is None else list(x.shape) for x in c], type=pa.list_(pa.int64())
            )
        columns["error"] = pa.array(errors, type=pa.string())
        return _with(batch.select(rest), columns)


def _write_table_atomic(table: "pyarrow.Table", path: str) -> None:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _first_row(table: "pyarrow.Table", fallback: int) -> int:
    if "row" in table.column_names and table.num_rows:
        return int(_pa().compute.min(table.column("row")).as_py())
    return fallback


def _datasink_base() -> Any:
    from ray.data import Datasink  # type: ignore[import-not-found]

    return Datasink


def _concat(blocks: Iterable[Any]) -> "pyarrow.Table":
    pa = _pa()
    tables = []
    for b in blocks:
        tables.append(b if isinstance(b, pa.Table) else pa.Table.from_pandas(b, preserve_index=False))
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="default")


def done_rows(path: PathLike) -> Set[int]:
    """The ``row`` values a ``TokenStoreDatasink`` at ``path`` already holds in its parts (left by
    a run that was stopped before it finished): filter them out of the rerun's input."""
    import pyarrow.parquet as pq

    parts = os.path.join(os.fspath(path), "_parts")
    if not os.path.isdir(parts):
        return set()
    out: Set[int] = set()
    for name in sorted(os.listdir(parts)):
        if name.endswith(".parquet") and not name.startswith("."):
            t = pq.read_table(os.path.join(parts, name), columns=["row"])
            out.update(int(r) for r in t.column("row").to_pylist())
    return out


def _sink_classes() -> Dict[str, Any]:
    Datasink = _datasink_base()

    class TokenStoreDatasink(Datasink):  # type: ignore[misc, valid-type]
        """Writes ``SnacEncode`` or ``BsqEncode`` rows as a token store at ``path`` (see the module
        docs). The input order is the ``row`` column (then ``segment``); ``codebook_sizes``/
        ``rates_hz`` (or a SNAC ``model`` to read them from) go to the metadata as ``audiotok
        encode`` writes them; ``bsq`` (a BSQ run or checkpoint folder, with ``bsq_weights`` and
        ``group_scales`` as ``BsqEncode`` was given them) gives the sizes, rates and provenance
        ``audiotok bsq encode`` writes."""

        def __init__(
            self,
            path: PathLike,
            *,
            batch_size: int = 1000,
            model: Optional[str] = None,
            checkpoint: Optional[PathLike] = None,
            bsq: Optional[PathLike] = None,
            bsq_weights: str = "ema",
            group_scales: bool = True,
            codebook_sizes: Optional[List[int]] = None,
            rates_hz: Optional[List[float]] = None,
            provenance: Optional[Dict[str, str]] = None,
        ) -> None:
            self.path = os.fspath(path)
            self.batch_size = batch_size
            if bsq is not None:
                from .bsq import BsqTokenizer

                layout = BsqTokenizer(bsq, weights=bsq_weights).store_layout(group_scales)
                codebook_sizes = layout["codebook_sizes"] if codebook_sizes is None else codebook_sizes
                rates_hz = layout["rates_hz"] if rates_hz is None else rates_hz
                provenance = {**layout["provenance"], **(provenance or {})}
            elif model is not None and codebook_sizes is None:
                snac = _audiotok.Snac(model, checkpoint=None if checkpoint is None else os.fspath(checkpoint))
                n = snac.n_codebooks
                codebook_sizes = [snac.codebook_size] * n
                rates_hz = snac.rates_hz
            self.codebook_sizes = codebook_sizes
            self.rates_hz = rates_hz
            self.provenance = dict(provenance or {})
            self.summary: Dict[str, Any] = {}

        def on_write_start(self, schema: Any = None) -> None:
            os.makedirs(os.path.join(self.path, "_parts"), exist_ok=True)

        def write(self, blocks: Iterable[Any], ctx: Any) -> Dict[str, Any]:
            table = _concat(blocks)
            if not table.num_rows:
                return {"part": None, "rows": 0}
            if "row" not in table.column_names:
                raise ValueError("TokenStoreDatasink: the rows need a 'row' column (their input order)")
            if "segment" in table.column_names:
                table = table.sort_by([("row", "ascending"), ("segment", "ascending")])
            else:
                table = table.sort_by("row")
            name = f"part-{_first_row(table, ctx.task_idx):012d}-{uuid.uuid4().hex[:8]}.parquet"
            _write_table_atomic(table, os.path.join(self.path, "_parts", name))
            return {"part": name, "rows": table.num_rows}

        def on_write_complete(self, write_result: Any) -> None:
            self.summary = finish_token_store(
                self.path,
                batch_size=self.batch_size,
                codebook_sizes=self.codebook_sizes,
                rates_hz=self.rates_hz,
                provenance=self.provenance,
            )

    class _PartsDatasink(Datasink):  # type: ignore[misc, valid-type]
        """A sink whose write tasks each write one MDS part folder under ``out``
        (``part-<first row>``) and whose driver step merges the parts' indexes into
        ``out/index.json``."""

        def __init__(self, out: PathLike) -> None:
            self.out = os.fspath(out)
            self.shards = 0

        def on_write_start(self, schema: Any = None) -> None:
            os.makedirs(self.out, exist_ok=True)

        def _part(self, table: "pyarrow.Table", ctx: Any) -> str:
            return os.path.join(self.out, f"part-{_first_row(table, ctx.task_idx):012d}")

        def on_write_complete(self, write_result: Any) -> None:
            self.shards = merge_index(self.out)

    class MdsDatasink(_PartsDatasink):
        """Writes rows as MDS shards (columns name → MDS encoding, as ``streaming.MDSWriter``
        takes them) under ``out``, one part per write task, then ``out/index.json`` merged over the
        parts as ``audiotok mds merge`` does. List columns with an ``ndarray:DTYPE`` encoding go in
        as numpy arrays of that dtype."""

        def __init__(
            self,
            out: PathLike,
            *,
            columns: Dict[str, str],
            compression: Optional[str] = None,
            hashes: Optional[Sequence[str]] = None,
            size_limit: Optional[int] = 1 << 26,
        ) -> None:
            super().__init__(out)
            self.columns = dict(columns)
            self.compression = compression
            self.hashes = list(hashes) if hashes is not None else None
            self.size_limit = size_limit

        def write(self, blocks: Iterable[Any], ctx: Any) -> Dict[str, Any]:
            table = _concat(blocks)
            if not table.num_rows:
                return {"part": None, "rows": 0}
            part = self._part(table, ctx)
            with MdsWriter(
                out=part,
                columns=self.columns,
                compression=self.compression,
                hashes=self.hashes,
                size_limit=self.size_limit,
                exist_ok=True,
            ) as w:
                cols = {name: table.column(name).to_pylist() for name in self.columns}
                for i in range(table.num_rows):
                    w.write({name: _mds_value(enc, cols[name][i]) for name, enc in self.columns.items()})
            return {"part": os.path.basename(part), "rows": table.num_rows}

    class PackDatasink(_PartsDatasink):
        """Packs the rows (``{"text": ..., "audio": ...}`` or ``{"messages": ..., "audio": ...}``,
        as ``audiotok pack`` takes them, other columns ignored; or each row as JSON text in a
        ``row_json`` column, for rows whose shapes differ) per write task with
        ``audiotok.pack(**pack_options)`` into ``out/part-<first row>``, then merges the index.
        Rejected rows are listed in each part's ``rejects.jsonl``."""

        def __init__(self, out: PathLike, **pack_options: Any) -> None:
            super().__init__(out)
            self.pack_options = pack_options
            self.summaries: List[Dict[str, Any]] = []

        def write(self, blocks: Iterable[Any], ctx: Any) -> Dict[str, Any]:
            from .pack import pack

            table = _concat(blocks)
            if not table.num_rows:
                return {"part": None, "rows": 0}
            if "row" in table.column_names:
                table = table.sort_by("row")
            if "row_json" in table.column_names:
                # Rows as JSON text: any shape (messages with mixed content), no Arrow schema to agree on.
                rows = [json.loads(x) for x in table.column("row_json").to_pylist()]
            else:
                keep = [c for c in ("text", "messages", "audio", "audios") if c in table.column_names]
                rows = [{k: v for k, v in r.items() if v is not None} for r in table.select(keep).to_pylist()]
            part = self._part(table, ctx)
            summary = pack(rows, out=part, **self.pack_options)
            summary["part"] = os.path.basename(part)
            return summary

        def on_write_complete(self, write_result: Any) -> None:
            self.summaries = [r for r in write_result.write_returns if r.get("part")]
            super().on_write_complete(write_result)

    return {"TokenStoreDatasink": TokenStoreDatasink, "MdsDatasink": MdsDatasink, "PackDatasink": PackDatasink}


def _mds_value(encoding: str, value: Any) -> Any:
    if encoding.startswith("ndarray") and isinstance(value, list):
        parts = encoding.split(":")
        dtype = parts[1] if len(parts) > 1 else None
        return np.asarray(value, dtype=dtype)
    return value


def _sorted_part_rows(path: str, batch_rows: int) -> Iterable[Any]:
    """A part's rows in order as ``(row, segment, table, index, error)`` (segment -1 for a failed row),
    read a Parquet batch at a time; a part not in ``row`` order is an error naming it."""
    import pyarrow.parquet as pq

    pa = _pa()
    last = None
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        t = pa.Table.from_batches([batch])
        rows = t.column("row").to_pylist()
        seg = t.column("segment") if "segment" in t.column_names else pa.nulls(t.num_rows, pa.int64())
        segs = pa.compute.fill_null(seg, -1).to_pylist()
        errors = _errors(t)
        for i, key in enumerate(zip(rows, segs)):
            if last is not None and key < last:
                raise ValueError(f"{path}: rows out of order ({last} then {key}): not a part this sink wrote")
            last = key
            yield key[0], key[1], t, i, errors[i]


def finish_token_store(
    path: PathLike,
    *,
    batch_size: int = 1000,
    codebook_sizes: Optional[List[int]] = None,
    rates_hz: Optional[List[float]] = None,
    provenance: Optional[Dict[str, str]] = None,
    read_rows: int = 1024,
) -> Dict[str, Any]:
    """The driver's step of ``TokenStoreDatasink``: every part under ``path/_parts`` (this run's
    and a stopped run's; each sorted by ``row`` then ``segment``) merged in that order, a row
    written twice by a rerun taken once, and written as the token store at ``path``; failed
    rows to ``path/rejects.jsonl``; then ``_parts`` removed. Memory stays bounded whatever the
    job's size: the parts are merged ``read_rows`` rows at a time each (a k-way merge) and the
    store is written a batch at a time. Returns a summary (records, rejects, the store's
    metadata)."""
    import heapq

    import pyarrow.parquet as pq

    from .tokens import StoreWriter

    pa = _pa()
    root = os.fspath(path)
    parts_dir = os.path.join(root, "_parts")
    names = sorted(n for n in os.listdir(parts_dir) if n.endswith(".parquet") and not n.startswith("."))
    files = [os.path.join(parts_dir, n) for n in names]
    num_scales = 0
    for f in files:
        schema = pq.read_schema(f)
        while f"tokens_scale_{num_scales}" in schema.names:
            num_scales += 1
    if not files or num_scales == 0:
        raise ValueError(f"{root}: nothing to write: no rows reached the token store sink")
    keep = ["file_path", "duration"] + [
        c for k in range(num_scales) for c in (f"tokens_scale_{k}", f"shape_scale_{k}")
    ]
    merged = heapq.merge(*(_sorted_part_rows(f, read_rows) for f in files), key=lambda x: (x[0], x[1]))
    rejects: List[Dict[str, Any]] = []
    pending: List[Any] = []  # slices of part tables, in order
    pending_rows = 0
    run: Optional[List[Any]] = None  # [table, start, stop]
    last_key = None
    records = 0
    writer = StoreWriter(
        root,
        num_scales=num_scales,
        batch_size=batch_size,
        codebook_sizes=codebook_sizes,
        rates_hz=rates_hz,
        provenance=provenance,
    )

    def flush_run() -> None:
        nonlocal run, pending_rows
        if run is not None:
            t, a, b = run
            pending.append(t.slice(a, b - a).select([c for c in keep if c in t.column_names]))
            pending_rows += b - a
            run = None

    def flush_pending() -> None:
        nonlocal pending, pending_rows
        if pending:
            writer.write(pa.concat_tables(pending, promote_options="default"))
        pending, pending_rows = [], 0

    for row, segment, t, i, error in merged:
        if (row, segment) == last_key:
            continue  # written again by a rerun: identical by construction
        last_key = (row, segment)
        if error is not None:
            rejects.append({"row": row, "file_path": t.column("file_path")[i].as_py(), "error": error})
            continue
        records += 1
        if run is not None and run[0] is t and run[2] == i:
            run[2] = i + 1
        else:
            flush_run()
            run = [t, i, i + 1]
        if pending_rows + (run[2] - run[1]) >= batch_size:
            flush_run()
            flush_pending()
    flush_run()
    flush_pending()
    meta = writer.finish()
    text = "".join(json.dumps(r) + "\n" for r in rejects)
    tmp = os.path.join(root, f".rejects.jsonl.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, os.path.join(root, "rejects.jsonl"))
    shutil.rmtree(parts_dir)
    return {"records": records, "rejects": rejects, "metadata": meta}


def __getattr__(name: str) -> Any:
    # The sinks subclass ray.data.Datasink, so they exist once Ray is importable.
    if name in ("TokenStoreDatasink", "MdsDatasink", "PackDatasink"):
        classes = _sink_classes()
        globals().update(classes)
        return classes[name]
    raise AttributeError(f"module 'audiotok.ray' has no attribute {name!r}")


def _main(argv: Optional[List[str]] = None) -> int:
    import argparse
    import time

    p = argparse.ArgumentParser(
        prog="python -m audiotok.ray",
        description="audiotok pipelines on Ray Data: audio files to a SNAC token store (`tokens`) or a BSQ "
        "token store (`bsq`), to encoder embeddings in Parquet (`embed`), rows to packed MDS training shards "
        "(`pack`). Connects to RAY_ADDRESS, or starts a local Ray. Prints a JSON summary on stdout.",
    )
    p.add_argument("--num-cpus", type=float, default=None, help="CPUs of a local Ray (default: all)")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tokens", help="audio files or folders -> SNAC token store")
    t.add_argument("inputs", nargs="+", help="audio files or folders (walked, sorted)")
    t.add_argument("--model", required=True, help="SNAC model folder or hub id (as `audiotok encode --model`)")
    t.add_argument("--out", required=True, help="token store directory")
    t.add_argument("--segment-seconds", type=float, default=4.0)
    t.add_argument("--batch-size", type=int, default=1000, help="records per store batch file")
    t.add_argument("--actors", type=int, default=1, help="SNAC actors (each one thread, one CPU)")
    b = sub.add_parser("bsq", help="audio files or folders -> BSQ token store (as `audiotok bsq encode`)")
    b.add_argument("inputs", nargs="+", help="audio files or folders (walked, sorted)")
    b.add_argument("--model", required=True, help="BSQ run folder or checkpoint folder")
    b.add_argument("--out", required=True, help="token store directory")
    b.add_argument("--weights", choices=["ema", "live"], default="ema")
    b.add_argument("--no-group-scales", action="store_true", help="scale 0 only (no per-group indices)")
    b.add_argument("--batch-size", type=int, default=1000, help="records per store batch file")
    b.add_argument("--actors", type=int, default=1, help="BSQ actors (each one thread, one CPU)")
    e = sub.add_parser("embed", help="audio files or folders -> encoder outputs in Parquet (as `audiotok embed`)")
    e.add_argument("inputs", nargs="+", help="audio files or folders (walked, sorted)")
    e.add_argument("--model", required=True, help="encoder model folder or hub id (as `audiotok embed --model`)")
    e.add_argument("--out", required=True, help="Parquet folder (one file per write task)")
    e.add_argument("--layers", default="final", help="final, all, or comma-separated hidden-state indices")
    e.add_argument("--stage", choices=["encoder", "projected"], default="encoder")
    e.add_argument("--pool", choices=["none", "mean"], default="none")
    e.add_argument("--batch-size", type=int, default=8, help="clips per exact batch")
    e.add_argument("--actors", type=int, default=1, help="encoder actors (each one thread, one CPU)")
    k = sub.add_parser("pack", help="rows (JSONL files) -> packed MDS shards, packed per partition")
    k.add_argument("rows", nargs="+", help="JSONL row files as `audiotok pack` takes them")
    k.add_argument("--tokenizer", required=True)
    k.add_argument("--out", required=True, help="MDS folder (one part per partition + merged index.json)")
    k.add_argument("--block-size", type=int, default=4096)
    k.add_argument("--strategy", choices=["greedy", "bfd"], default="greedy")
    k.add_argument("--audio-root", default=None)
    k.add_argument("--partitions", type=int, default=None, help="partitions to pack (default: Ray's choice)")
    args = p.parse_args(argv)

    import ray  # type: ignore[import-not-found]

    if not ray.is_initialized():
        ray.init(num_cpus=args.num_cpus, log_to_driver=False)
    start = time.time()
    if args.command in ("tokens", "bsq", "embed"):
        paths = list_audio(args.inputs)
        skip = done_rows(args.out) if args.command != "embed" else set()
        rows = [{"row": i, "path": p} for i, p in enumerate(paths) if i not in skip]
        ds: Any = ray.data.from_items(rows)
        ds = ds.map_batches(
            Decode, fn_constructor_kwargs={"sampling_rate": None}, batch_format="pyarrow", num_cpus=0.5, batch_size=16
        )
        op: Any
        if args.command == "tokens":
            op = SnacEncode
            op_kwargs: Dict[str, Any] = {"model": args.model, "segment_seconds": args.segment_seconds}
            sink_kwargs: Dict[str, Any] = {"model": args.model}
        elif args.command == "bsq":
            op = BsqEncode
            op_kwargs = {"model": args.model, "weights": args.weights, "group_scales": not args.no_group_scales}
            sink_kwargs = {"bsq": args.model, "bsq_weights": args.weights, "group_scales": not args.no_group_scales}
        else:
            op = Embed
            layers: Any = args.layers
            if layers not in ("final", "all"):
                layers = [int(x) for x in layers.split(",")]
            op_kwargs = {
                "model": args.model,
                "layers": layers,
                "stage": args.stage,
                "pool": None if args.pool == "none" else args.pool,
                "batch_size": args.batch_size,
                "drop_audio": True,
            }
        ds = ds.map_batches(
            op, fn_constructor_kwargs=op_kwargs, batch_format="pyarrow", concurrency=args.actors, num_cpus=1,
            batch_size=8,
        )
        if args.command == "embed":
            import pyarrow.parquet as pq

            ds.write_parquet(args.out)
            errors = pq.read_table(args.out, columns=["error"]).column("error").to_pylist()
            failed = sum(e is not None for e in errors)
            print(
                json.dumps(
                    {
                        "out": args.out,
                        "files": len(paths),
                        "embedded": len(errors) - failed,
                        "errors": failed,
                        "seconds": round(time.time() - start, 3),
                    }
                )
            )
            return 0 if not failed else 1
        sink = _sink_classes()["TokenStoreDatasink"](args.out, batch_size=args.batch_size, **sink_kwargs)
        ds.write_datasink(sink)
        s = sink.summary
        print(
            json.dumps(
                {
                    "out": args.out,
                    "files": len(paths),
                    "skipped_done": len(skip),
                    "records": s["records"],
                    "rejects": len(s["rejects"]),
                    "seconds": round(time.time() - start, 3),
                }
            )
        )
        return 0 if not s["rejects"] else 1
    rows_all: List[Dict[str, Any]] = []
    bad_lines: List[Dict[str, Any]] = []
    for f in args.rows:
        with open(f, encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    json.loads(line)
                except json.JSONDecodeError as e:
                    bad_lines.append({"file": f, "line": n, "reason": f"not JSON: {e}"})
                    continue
                rows_all.append({"row": len(rows_all), "row_json": line})
    if not rows_all:
        raise SystemExit(f"no rows in {args.rows}")
    pack_ds: Any = ray.data.from_items(rows_all, override_num_blocks=args.partitions)
    pack_sink = _sink_classes()["PackDatasink"](
        args.out, tokenizer=args.tokenizer, block_size=args.block_size, strategy=args.strategy, audio_root=args.audio_root
    )
    pack_ds.write_datasink(pack_sink)
    blocks = sum(int(x.get("blocks", 0)) for x in pack_sink.summaries)
    rejected = sum(int(x.get("rejected_rows", 0)) for x in pack_sink.summaries)
    print(
        json.dumps(
            {
                "out": args.out,
                "rows": len(rows_all),
                "parts": len(pack_sink.summaries),
                "blocks": blocks,
                "rejected_rows": rejected + len(bad_lines),
                "malformed_lines": bad_lines,
                "shards": pack_sink.shards,
                "seconds": round(time.time() - start, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
