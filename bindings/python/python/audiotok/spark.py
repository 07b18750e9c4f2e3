"""Spark as a second engine over the same Python API as ``audiotok.ray``.

The ``audiotok.ray`` operators are plain callables on ``pyarrow.Table``: ``Stages`` chains them
into a function for ``DataFrame.mapInArrow`` (each Spark task builds its operators once, then runs
every Arrow batch of its partition through them), and ``MdsParts`` writes each partition as its
own MDS part folder, to be merged afterwards with ``audiotok.mds.merge_index(root)`` (what
``audiotok mds merge root`` does), so ``StreamingDataset(local=root)`` reads one dataset::

    from audiotok import mds, ray as ar, spark as asp

    counted = df.mapInArrow(
        asp.Stages((ar.Decode, {"sampling_rate": 16000}), (ar.CountTokens, {"profile": "qwen2-audio"}),
                   select=["row", "path", "num_samples", "audio_tokens", "error"]),
        "row long, path string, num_samples long, audio_tokens long, error string",
    )
    parts = rows.mapInArrow(asp.MdsParts("out/", {"id": "int", "text": "str"}, order_by="id"),
                            asp.MdsParts.SCHEMA).collect()
    mds.merge_index("out/")

Nothing here imports pyspark: the objects are what Spark pickles and ships to its workers, where
``audiotok`` is installed.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

__all__ = ["MdsParts", "Stages"]

Stage = Union[type, Tuple[type, Dict[str, Any]]]


class Stages:
    """A ``mapInArrow`` function running ``stages`` (operator classes, or ``(class, kwargs)``) on
    every batch in order; ``select`` keeps those columns (the output schema given to Spark must
    match them). Failed rows keep their ``error`` as in Ray."""

    def __init__(self, *stages: Stage, select: Optional[Sequence[str]] = None) -> None:
        self.stages: List[Tuple[type, Dict[str, Any]]] = [
            (s, {}) if isinstance(s, type) else (s[0], dict(s[1])) for s in stages
        ]
        self.select = list(select) if select is not None else None

    def __call__(self, batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa  # type: ignore[import-untyped]

        ops = [cls(**kwargs) for cls, kwargs in self.stages]
        for b in batches:
            t = pa.Table.from_batches([b])
            for op in ops:
                t = op(t)
            if self.select is not None:
                t = t.select(self.select)
            yield from t.to_batches()


class MdsParts:
    """A ``mapInArrow`` function writing its partition's rows as one MDS part ``root/part-<first
    key>`` (rows sorted by ``order_by``; ``columns`` name → MDS encoding as ``MdsWriter`` takes
    them; list columns with an ``ndarray:DTYPE`` encoding go in as numpy arrays of that dtype).
    Yields one row per part: ``part`` (its folder), ``rows``. Then merge the parts with
    ``audiotok.mds.merge_index(root)``."""

    #: The output schema to give ``mapInArrow``.
    SCHEMA = "part string, rows long"

    def __init__(
        self,
        root: Union[str, "os.PathLike[str]"],
        columns: Dict[str, str],
        *,
        order_by: str = "row",
        compression: Optional[str] = None,
        hashes: Optional[Sequence[str]] = None,
        size_limit: Optional[int] = 1 << 26,
    ) -> None:
        self.root = os.fspath(root)
        self.columns = dict(columns)
        self.order_by = order_by
        self.compression = compression
        self.hashes = list(hashes) if hashes is not None else None
        self.size_limit = size_limit

    def __call__(self, batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa

        from .mds import MdsWriter
        from .ray import _mds_value

        batches = [b for b in batches if b.num_rows]
        if not batches:
            return
        table = pa.Table.from_batches(batches).sort_by(self.order_by)
        first = table.column(self.order_by)[0].as_py()
        part = os.path.join(self.root, f"part-{int(first):012d}")
        with MdsWriter(
            out=part, columns=self.columns, compression=self.compression, hashes=self.hashes,
            size_limit=self.size_limit,
        ) as w:
            cols = {name: table.column(name).to_pylist() for name in self.columns}
            for i in range(table.num_rows):
                w.write({name: _mds_value(enc, cols[name][i]) for name, enc in self.columns.items()})
        yield pa.RecordBatch.from_pydict({"part": [part], "rows": [table.num_rows]})

