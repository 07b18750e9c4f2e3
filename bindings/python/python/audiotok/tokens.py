"""The token store: discrete audio tokens of many files, as ``audiotok encode`` writes them.

``TokenStore(path)`` opens a store directory (``tokens_batch_*.parquet`` + ``metadata.json``), a
folder of Parquet batches pyarrow wrote in the store's columns, or one such file. It implements the
Arrow PyCapsule interface (``__arrow_c_stream__``), so ``pyarrow.table(store)``, polars and
DuckDB read it directly; ``store.to_table()`` / ``audiotok.tokens.read_table(path)`` return a
``pyarrow.Table``. The records are read and checked in Rust (checksums, nulls, negative codes,
counts that disagree: errors name the file and row) and their Arrow buffers are handed over
through the Arrow C stream interface without a copy. Columns: ``file_path`` (string),
``duration`` (float64), then per scale ``k`` (coarsest first) ``tokens_scale_k``
(list<int32>), ``n_tokens_scale_k`` (int64), ``shape_scale_k`` (list<int64>).

pyarrow is needed only for ``to_table``/``to_reader``/``read_table`` (``pip install pyarrow``).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from ._audiotok import TokensError
from ._audiotok import StoreWriter as _NativeWriter
from ._audiotok import TokenStore as _NativeStore
from ._audiotok import write_store as _write_store

if TYPE_CHECKING:
    import pyarrow  # type: ignore[import-untyped]

__all__ = ["StoreWriter", "TokenStore", "TokensError", "read_table", "write_store"]

PathLike = Union[str, "os.PathLike[str]"]

#: Records per Arrow batch handed to pyarrow.
DEFAULT_BATCH_ROWS = 1024


class _Stream:
    """An Arrow C stream of a store in batches of ``batch_rows`` records."""

    def __init__(self, native: _NativeStore, batch_rows: int) -> None:
        self._native = native
        self._rows = batch_rows

    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> object:
        return self._native.__arrow_c_stream__(requested_schema, batch_rows=self._rows)


def _pyarrow() -> Any:
    try:
        import pyarrow  # type: ignore[import-untyped]
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("audiotok.tokens: reading a store as a pyarrow.Table needs pyarrow (pip install pyarrow)") from e
    return pyarrow


def _store_error(e: Exception) -> TokensError:
    """A pyarrow error raised by our stream, as the TokensError the Rust reader meant."""
    msg = str(e)
    for prefix in ("External error: ",):
        i = msg.find(prefix)
        if i >= 0:
            msg = msg[i + len(prefix) :]
    return TokensError(msg)


class TokenStore:
    """A token store opened for reading (see the module docs). Pickles as its path."""

    def __init__(self, path: PathLike) -> None:
        self._native = _NativeStore(os.fspath(path))
        self._metadata: Optional[Dict[str, Any]] = None
        self._metadata_read = False

    @property
    def path(self) -> str:
        """The directory or file opened."""
        return os.fspath(self._native.path)

    @property
    def num_scales(self) -> int:
        """The number of scales (``tokens_scale_0 ..``)."""
        return self._native.num_scales

    @property
    def files(self) -> List[str]:
        """The Parquet files, in reading order."""
        return [os.fspath(p) for p in self._native.files]

    @property
    def metadata(self) -> Optional[Dict[str, Any]]:
        """``metadata.json`` (file list, durations, per-scale statistics, provenance), or ``None``
        for a single file or a folder without one."""
        if not self._metadata_read:
            text = self._native.metadata_json()
            self._metadata = None if text is None else json.loads(text)
            self._metadata_read = True
        return self._metadata

    def __len__(self) -> int:
        """The number of records: from ``metadata.json``, else by reading the files."""
        meta = self.metadata
        if meta is not None:
            return int(meta["num_files"])
        return int(self.to_reader().read_all().num_rows)

    def __arrow_c_schema__(self) -> object:
        return self._native.__arrow_c_schema__()

    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> object:
        return self._native.__arrow_c_stream__(requested_schema, batch_rows=DEFAULT_BATCH_ROWS)

    def to_reader(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> "pyarrow.RecordBatchReader":
        """The records as a ``pyarrow.RecordBatchReader`` of batches of ``batch_rows`` records.
        A bad record raises ``pyarrow.ArrowInvalid`` carrying the reader's reason when its batch is
        read; ``to_table`` raises it as ``TokensError``."""
        pa = _pyarrow()
        return pa.RecordBatchReader.from_stream(_Stream(self._native, batch_rows))

    def to_table(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> "pyarrow.Table":
        """Every record as one ``pyarrow.Table`` (no copy of the decoded buffers)."""
        pa = _pyarrow()
        try:
            return self.to_reader(batch_rows).read_all()
        except pa.ArrowException as e:
            raise _store_error(e) from None

    def __reduce__(self) -> Any:
        return (TokenStore, (self.path,))

    def __repr__(self) -> str:
        return f"TokenStore({self.path!r}, files={len(self.files)}, scales={self.num_scales})"


def read_table(path: PathLike, batch_rows: int = DEFAULT_BATCH_ROWS) -> "pyarrow.Table":
    """A store (directory or Parquet file) as a ``pyarrow.Table``, as ``pyarrow.parquet.read_table``
    reads a file, but with the store's checks and one schema whatever wrote it."""
    return TokenStore(path).to_table(batch_rows)


def _flat_list(column: Any, n: int) -> Any:
    """A list column's values and offsets as numpy arrays (offsets from 0)."""
    import numpy as np

    pa = _pyarrow()
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(arr) != n:
        raise TokensError(f"a column holds {len(arr)} values for {n} records")
    if arr.null_count:
        raise TokensError("a list column holds nulls")
    offsets = np.asarray(arr.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    values = arr.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_numpy(zero_copy_only=False)
    return values, offsets - offsets[0]


def _flat_records(table: "pyarrow.Table") -> Any:
    """A table in the store's columns as the native writer's flat arrays: ``(file_paths,
    durations, scales)``."""
    import numpy as np

    n = table.num_rows
    names = table.column_names
    scales = []
    k = 0
    while f"tokens_scale_{k}" in names:
        codes, offsets = _flat_list(table.column(f"tokens_scale_{k}"), n)
        if codes.size and (codes.min() < 0 or codes.max() > np.iinfo(np.uint32).max):
            raise TokensError(f"tokens_scale_{k} holds codes outside 0..2**32-1")
        if f"shape_scale_{k}" in names:
            shapes, shape_offsets = _flat_list(table.column(f"shape_scale_{k}"), n)
        else:
            shapes, shape_offsets = np.diff(offsets), np.arange(n + 1, dtype=np.int64)
        scales.append(
            (
                np.ascontiguousarray(codes, dtype=np.uint32),
                np.ascontiguousarray(offsets, dtype=np.int64),
                np.ascontiguousarray(shapes, dtype=np.int64),
                np.ascontiguousarray(shape_offsets, dtype=np.int64),
            )
        )
        k += 1
    if not scales:
        raise TokensError("no tokens_scale_0 column: not records in the token store's columns")
    for col in ("file_path", "duration"):
        if col not in names:
            raise TokensError(f"no {col} column")
    paths = [str(p) for p in table.column("file_path").to_pylist()]
    durations = np.ascontiguousarray(table.column("duration").to_numpy(), dtype=np.float64)
    return paths, durations, scales


def _num_scales(table: "pyarrow.Table") -> int:
    k = 0
    while f"tokens_scale_{k}" in table.column_names:
        k += 1
    return k


class StoreWriter:
    """A token store written a table at a time, in bounded memory (at most one batch of records
    held): ``write(table)`` appends records in the store's columns (as ``write_store`` takes
    them), ``finish()`` writes the last batch and ``metadata.json`` and returns the metadata.
    Also a context manager (``finish`` on a clean exit; on an exception no ``metadata.json`` is
    written, so the store stays unreadable rather than silently short)."""

    def __init__(
        self,
        path: PathLike,
        *,
        num_scales: int,
        batch_size: int = 1000,
        codebook_sizes: Optional[List[int]] = None,
        rates_hz: Optional[List[float]] = None,
        provenance: Optional[Dict[str, str]] = None,
    ) -> None:
        self.path = os.fspath(path)
        self.num_scales = int(num_scales)
        self._native = _NativeWriter(
            self.path,
            self.num_scales,
            batch_size=batch_size,
            codebook_sizes=codebook_sizes,
            rates_hz=rates_hz,
            provenance=provenance,
        )
        self.records = 0

    def write(self, data: Any) -> None:
        pa = _pyarrow()
        table = data if isinstance(data, pa.Table) else pa.table(data)
        if not table.num_rows:
            return
        paths, durations, scales = _flat_records(table)
        self._native.push(paths, durations, scales)
        self.records += table.num_rows

    def finish(self) -> Dict[str, Any]:
        result: Dict[str, Any] = json.loads(self._native.finish())
        return result

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.finish()


def write_store(
    path: PathLike,
    data: Any,
    *,
    batch_size: int = 1000,
    codebook_sizes: Optional[List[int]] = None,
    rates_hz: Optional[List[float]] = None,
    provenance: Optional[Dict[str, str]] = None,
) -> Dict[str, Any]:
    """Writes a token store at ``path`` from ``data``: a ``pyarrow.Table`` (or anything
    ``pyarrow.table`` takes, a ``TokenStore`` included) in the store's columns (``file_path``,
    ``duration``, per scale ``tokens_scale_k`` and, optionally, ``shape_scale_k``; other columns
    ignored), records in row order. Written as ``audiotok encode`` writes a store: batches of
    ``batch_size`` records (each atomic, zstd, checksummed), then ``metadata.json``, with the
    codebook sizes and frame rates per scale when given (codes are checked below the codebook
    size) and ``provenance`` (``key: value`` text) recorded. Returns the metadata. (For more
    records than fit in memory, ``StoreWriter`` takes them a table at a time.)"""
    pa = _pyarrow()
    table = data if isinstance(data, pa.Table) else pa.table(data)
    paths, durations, scales = _flat_records(table)
    meta = _write_store(
        os.fspath(path),
        paths,
        durations,
        scales,
        batch_size=batch_size,
        codebook_sizes=codebook_sizes,
        rates_hz=rates_hz,
        provenance=provenance,
    )
    result: Dict[str, Any] = json.loads(meta)
    return result
