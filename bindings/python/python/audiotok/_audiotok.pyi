"""Type stubs of the native module audiotok._audiotok (checked by mypy.stubtest)."""

import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__",
    "AudiotokError",
    "AudioError",
    "FeatureError",
    "MdsError",
    "PackError",
    "LoaderError",
    "AudioInfo",
    "load",
    "info",
    "resample",
    "compute_features",
    "count_tokens_from_lengths",
    "compute_file_features",
    "FEATURE_KINDS",
    "PROFILES",
    "MdsDataset",
    "merge_index",
    "pack_json",
    "count_files_json",
    "PackedBlocks",
    "BlockIter",
    "plan_json",
]
__version__: str
FEATURE_KINDS: List[str]
PROFILES: List[str]

class AudiotokError(ValueError): ...
class AudioError(AudiotokError): ...
class FeatureError(AudiotokError): ...
class MdsError(AudiotokError): ...
class PackError(AudiotokError): ...
class LoaderError(AudiotokError): ...

@final
class AudioInfo:
    @property
    def name(self) -> str: ...
    @property
    def samplerate(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def frames(self) -> Optional[int]: ...
    @property
    def duration(self) -> Optional[float]: ...
    @property
    def format(self) -> str: ...
    @property
    def subtype(self) -> str: ...
    @property
    def bits_per_sample(self) -> Optional[int]: ...
    @property
    def exact_length(self) -> bool: ...

def load(
    path: Union[str, os.PathLike[str]], sr: Optional[int] = 16000, mono: bool = True
) -> Tuple[npt.NDArray[np.float32], int]: ...
def info(path: Union[str, os.PathLike[str]]) -> AudioInfo: ...
def resample(y: npt.NDArray[np.float32], *, orig_sr: int, target_sr: int) -> npt.NDArray[np.float32]: ...
def compute_features(
    signals: Sequence[npt.NDArray[np.float32]],
    kind: str,
    *,
    padding: str = "max_length",
    precision: str = "fast",
    frames: Optional[int] = 1024,
    num_threads: int = 1,
) -> Tuple[npt.NDArray[np.float32], List[Optional[int]]]: ...
def count_tokens_from_lengths(lengths: Sequence[int], profile: str) -> List[List[int]]: ...

_Progress = Callable[[str, int, int], None]
_PathLike = Union[str, os.PathLike[str]]

def compute_file_features(
    paths: Sequence[_PathLike],
    kind: str,
    *,
    padding: str = "max_length",
    precision: str = "fast",
    frames: Optional[int] = 1024,
    num_threads: int = 0,
    progress: Optional[_Progress] = None,
) -> List[Tuple[Optional[npt.NDArray[np.float32]], Optional[int], Optional[int], Optional[str]]]: ...
def pack_json(
    options_json: str,
    *,
    files: Optional[Sequence[_PathLike]] = None,
    rows_json: Optional[str] = None,
    progress: Optional[_Progress] = None,
) -> Tuple[str, List[str]]: ...
def count_files_json(
    paths: Sequence[_PathLike], profile: str, *, num_threads: int = 0, progress: Optional[_Progress] = None
) -> str: ...
def merge_index(root: _PathLike) -> int: ...
@final
class MdsDataset:
    def __new__(cls, dir: _PathLike) -> MdsDataset: ...
    def __len__(self) -> int: ...
    def __getitem__(self, index: int, /) -> Dict[str, Any]: ...
    def __reduce__(self) -> Tuple[Any, Tuple[str]]: ...
    @property
    def dir(self) -> str: ...
    @property
    def columns(self) -> List[str]: ...
@final
class BlockIter:
    def __iter__(self) -> BlockIter: ...
    def __next__(self) -> Dict[str, Any]: ...
    def close(self) -> None: ...

@final
class PackedBlocks:
    def __new__(cls, dir: _PathLike, options_json: str) -> PackedBlocks: ...
    def __len__(self) -> int: ...
    def block(self, i: int) -> Dict[str, Any]: ...
    def tokens(self, i: int) -> Dict[str, Any]: ...
    def prefetch(self, indices: Sequence[int], *, num_threads: int = 2, window: int = 4) -> BlockIter: ...

def plan_json(n: int, plan_json: str) -> List[int]: ...
