"""MosaicML MDS datasets, read as ``streaming.base.LocalDataset`` reads them.

``MdsDataset(dir)``: ``len``, ``ds[i]`` (negative indices too) and iteration; each sample is a
dict of column name to value (numpy arrays for ``ndarray`` columns, and for the Qwen2-Audio
notebook's variable ``uint32`` columns). ``merge_index(root)`` writes ``root/index.json`` over the
partitions below ``root`` as ``streaming.base.util.merge_index`` does.

``MdsWriter(out=..., columns=...)`` (also ``MDSWriter``) writes a dataset folder exactly as
``streaming.MDSWriter`` writes it (the same shard bytes, shard boundaries and ``index.json``), with
the same keyword arguments (``compression``, ``hashes``, ``size_limit``; ``exist_ok`` as
``overwrite``) and as a context manager; values as streaming's encodings take them (numpy arrays
for ``ndarray``, ``bytes`` passed through for any column). ``pkl`` and image encodings are refused.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any, Dict, Mapping, Optional, Sequence, Type, Union

from . import _audiotok
from ._audiotok import MdsDataset, MdsError, merge_index

__all__ = ["MdsDataset", "MdsError", "MdsWriter", "MDSWriter", "merge_index"]

PathLike = Union[str, "os.PathLike[str]"]


class MdsWriter:
    """Writes samples (dicts with exactly ``columns``' keys) into MDS shards under ``out``, as
    ``streaming.MDSWriter(out=out, columns=columns, compression=..., hashes=..., size_limit=...)``
    does; ``finish()`` (or leaving the ``with`` block) writes the last shard and ``index.json``.
    A folder that already holds files is refused unless ``exist_ok`` (then its ``index.json`` and
    ``shard.*`` files are replaced). Leaving the ``with`` block on an exception writes no index."""

    def __init__(
        self,
        *,
        out: PathLike,
        columns: Mapping[str, str],
        compression: Optional[str] = None,
        hashes: Optional[Sequence[str]] = None,
        size_limit: Optional[int] = 1 << 26,
        exist_ok: bool = False,
    ) -> None:
        self.out = os.fspath(out)
        self.columns = dict(columns)
        self._native = _audiotok.MdsWriter(
            self.out,
            list(self.columns.items()),
            compression=compression,
            hashes=list(hashes) if hashes is not None else None,
            size_limit=size_limit,
            overwrite=exist_ok,
        )

    def write(self, sample: Dict[str, Any]) -> None:
        """Adds one sample."""
        self._native.write(sample)

    def finish(self) -> int:
        """Writes the last shard and ``index.json``; returns the number of shards."""
        return self._native.finish()

    def __enter__(self) -> "MdsWriter":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc_type is None and not self._native.finished:
            self.finish()


#: streaming's name for the writer.
MDSWriter = MdsWriter
