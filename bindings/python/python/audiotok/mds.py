"""MosaicML MDS datasets, read as ``streaming.base.LocalDataset`` reads them.

``MdsDataset(dir)``: ``len``, ``ds[i]`` (negative indices too) and iteration; each sample is a
dict of column name to value (numpy arrays for ``ndarray`` columns, and for the Qwen2-Audio
notebook's variable ``uint32`` columns). ``merge_index(root)`` writes ``root/index.json`` over the
partitions below ``root`` as ``streaming.base.util.merge_index`` does.
"""

from __future__ import annotations

from ._audiotok import MdsDataset, MdsError, merge_index

__all__ = ["MdsDataset", "MdsError", "merge_index"]
