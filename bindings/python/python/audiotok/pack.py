"""Packing instruction rows with audio into fixed-length token blocks (MosaicML MDS shards).

``audiotok.pack(rows, tokenizer=..., out=...)`` runs the very job ``audiotok pack`` runs (same
bytes out), with rows from files or from memory, and returns its summary as a dict.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union, cast

from . import _audiotok

PathLike = Union[str, "os.PathLike[str]"]
Progress = Callable[[str, int, int], None]

_MAX_ROW_BYTES: int = _audiotok.DEFAULT_MAX_ROW_BYTES


def pack(
    rows: Union[PathLike, Sequence[PathLike], Iterable[Dict[str, Any]]],
    *,
    tokenizer: PathLike,
    out: PathLike,
    profile: str = "qwen2-audio",
    block_size: int = 4096,
    strategy: str = "greedy",
    compat: Optional[str] = None,
    train_on: str = "all",
    on_error: str = "skip",
    lengths: str = "header",
    audio_root: Optional[PathLike] = None,
    chat_template: Optional[PathLike] = None,
    max_row_bytes: int = _MAX_ROW_BYTES,
    num_threads: int = 0,
    progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """Pack ``rows`` into ``out`` (an MDS folder, built beside it and swapped in when complete).

    ``rows``: a row file (a JSON array or JSONL) or a list of them, or the rows themselves (dicts
    as a JSONL line holds them: ``{"text": "...<|AUDIO|>...", "audio": "a.wav"}`` or
    ``{"messages": [...], "audio": [...]}``; in-memory row ``i`` is named ``row i`` in rejects).
    The options are ``audiotok pack``'s (``compat="cooking"`` for the Qwen2-Audio notebook's
    layout, ``strategy="bfd"``, ``train_on="assistant"``, ``lengths="decode"``, ...).
    ``progress(phase, done, total)`` is called as the job goes.

    Returns the summary ``audiotok pack --json`` prints, plus ``"rejects"``: one dict per row
    left out (its file and line, or index, and reason), as ``out/rejects.jsonl`` lists them.
    Raises ``audiotok.PackError`` (a missing tokenizer, ``on_error="fail"`` with a bad row, ...).
    """
    layout = {None: "standard", "cooking": "cooking"}.get(compat)
    if layout is None:
        raise ValueError(f"compat={compat!r}: expected None or 'cooking'")
    options = {
        "tokenizer": os.fspath(tokenizer),
        "out": os.fspath(out),
        "chat_template": None if chat_template is None else os.fspath(chat_template),
        "config": {
            "profile": profile,
            "block_size": block_size,
            "strategy": strategy,
            "layout": layout,
            "train_on": train_on,
            "length_mode": lengths,
            "audio_root": None if audio_root is None else os.fspath(audio_root),
            "max_row_bytes": max_row_bytes,
        },
        "on_error": on_error,
        "jobs": num_threads,
    }
    text = json.dumps(options)
    if isinstance(rows, (str, os.PathLike)):
        summary, rejects = _audiotok.pack_json(text, files=[rows], progress=progress)
    else:
        items = list(rows)
        if items and all(isinstance(r, (str, os.PathLike)) for r in items):
            files = [os.fspath(cast(PathLike, r)) for r in items]
            summary, rejects = _audiotok.pack_json(text, files=files, progress=progress)
        else:
            summary, rejects = _audiotok.pack_json(text, rows_json=json.dumps(items), progress=progress)
    result: Dict[str, Any] = json.loads(summary)
    result["rejects"] = [json.loads(r) for r in rejects]
    return result


def count_files(
    paths: Sequence[PathLike], profile: str = "qwen2-audio", *, num_threads: int = 0, progress: Optional[Progress] = None
) -> Dict[str, Any]:
    """``audiotok count --json``'s report for audio files: per file its samples, duration and
    tokens; failures with their reasons; totals and a duration histogram."""
    report: Dict[str, Any] = json.loads(
        _audiotok.count_files_json([os.fspath(p) for p in paths], profile, num_threads=num_threads, progress=progress)
    )
    return report


__all__: List[str] = ["pack", "count_files"]
