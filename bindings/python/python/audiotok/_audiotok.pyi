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
    "BpeError",
    "TokensError",
    "CodecError",
    "EmbedError",
    "BsqError",
    "BsqTokenizer",
    "bsq_train_json",
    "bsq_encode_files_json",
    "bsq_decode_store_json",
    "bsq_evaluate_json",
    "Encoder",
    "embed_files_json",
    "Snac",
    "TokenStore",
    "StoreWriter",
    "write_store",
    "decode_store_json",
    "encode_files_json",
    "AudioInfo",
    "load",
    "load_bytes",
    "info",
    "resample",
    "compute_features",
    "count_tokens_from_lengths",
    "compute_file_features",
    "FEATURE_KINDS",
    "PROFILES",
    "MdsDataset",
    "MdsWriter",
    "merge_index",
    "pack_json",
    "count_files_json",
    "PackedBlocks",
    "BlockIter",
    "plan_json",
    "BpeModel",
    "DEFAULT_MAX_ROW_BYTES",
]
__version__: str
FEATURE_KINDS: List[str]
PROFILES: List[str]
DEFAULT_MAX_ROW_BYTES: int

class AudiotokError(ValueError): ...
class AudioError(AudiotokError): ...
class FeatureError(AudiotokError): ...
class MdsError(AudiotokError): ...
class PackError(AudiotokError): ...
class TokensError(AudiotokError): ...
class CodecError(AudiotokError): ...
class EmbedError(AudiotokError): ...
class BsqError(AudiotokError): ...
class LoaderError(AudiotokError): ...
class BpeError(AudiotokError): ...

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
def load_bytes(
    data: bytes, sr: Optional[int] = 16000, mono: bool = True, name: str = "<bytes>"
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
class MdsWriter:
    def __new__(
        cls,
        out: _PathLike,
        columns: Sequence[Tuple[str, str]],
        *,
        compression: Optional[str] = None,
        hashes: Optional[Sequence[str]] = None,
        size_limit: Optional[int] = 67108864,
        overwrite: bool = False,
    ) -> MdsWriter: ...
    def write(self, sample: Dict[str, Any]) -> None: ...
    def finish(self) -> int: ...
    @property
    def out(self) -> str: ...
    @property
    def finished(self) -> bool: ...
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

@final
class BpeModel:
    @staticmethod
    def load(path: _PathLike) -> BpeModel: ...
    @staticmethod
    def train(
        streams: Sequence[npt.NDArray[np.uint32]],
        *,
        codebook_size: int,
        merges: Optional[int] = None,
        vocab_size: Optional[int] = None,
        variant: str = "plain",
    ) -> BpeModel: ...
    @staticmethod
    def from_json(text: str) -> BpeModel: ...
    def to_json(self) -> str: ...
    @property
    def variant(self) -> str: ...
    @property
    def codebook_size(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    def encode(self, tokens: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]: ...
    def decode(self, symbols: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]: ...
    def encode_scales(self, scales: Sequence[npt.NDArray[np.uint32]]) -> npt.NDArray[np.uint32]: ...
    def decode_scales(self, symbols: npt.NDArray[np.uint32]) -> List[npt.NDArray[np.uint32]]: ...
    def __reduce__(self) -> Tuple[Any, Tuple[str]]: ...

@final
class TokenStore:
    def __new__(cls, path: _PathLike) -> TokenStore: ...
    @property
    def path(self) -> str: ...
    @property
    def num_scales(self) -> int: ...
    @property
    def files(self) -> List[str]: ...
    def metadata_json(self) -> Optional[str]: ...
    def __arrow_c_schema__(self) -> object: ...
    def __arrow_c_stream__(self, requested_schema: Optional[object] = None, *, batch_rows: int = 1024) -> object: ...
    def __reduce__(self) -> Tuple[Any, Tuple[str]]: ...

def write_store(
    dir: _PathLike,
    file_paths: Sequence[str],
    durations: npt.NDArray[np.float64],
    scales: Sequence[
        Tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]
    ],
    *,
    batch_size: int = 1000,
    codebook_sizes: Optional[Sequence[int]] = None,
    rates_hz: Optional[Sequence[float]] = None,
    provenance: Optional[Dict[str, str]] = None,
) -> str: ...

@final
class StoreWriter:
    def __new__(
        cls,
        dir: _PathLike,
        num_scales: int,
        *,
        batch_size: int = 1000,
        codebook_sizes: Optional[Sequence[int]] = None,
        rates_hz: Optional[Sequence[float]] = None,
        provenance: Optional[Dict[str, str]] = None,
    ) -> StoreWriter: ...
    def push(
        self,
        file_paths: Sequence[str],
        durations: npt.NDArray[np.float64],
        scales: Sequence[
            Tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]
        ],
    ) -> None: ...
    def finish(self) -> str: ...

@final
class Snac:
    def __new__(
        cls, model: str, *, checkpoint: Optional[_PathLike] = None, device: str = "cpu", num_threads: int = 0
    ) -> Snac: ...
    @property
    def sampling_rate(self) -> int: ...
    @property
    def hop_length(self) -> int: ...
    @property
    def n_codebooks(self) -> int: ...
    @property
    def codebook_size(self) -> int: ...
    @property
    def rates_hz(self) -> List[float]: ...
    @property
    def vq_strides(self) -> List[int]: ...
    def config_json(self) -> str: ...
    def encode(self, samples: npt.NDArray[np.float32], rate: int) -> List[npt.NDArray[np.int64]]: ...
    def encode_segments(
        self, samples: npt.NDArray[np.float32], rate: int, segment_seconds: float
    ) -> List[Tuple[float, List[npt.NDArray[np.uint32]]]]: ...
    def encode_batch(self, samples: npt.NDArray[np.float32], rate: int) -> List[npt.NDArray[np.int64]]: ...
    def decode(
        self, codes: Sequence[npt.NDArray[np.int64]], *, duration: float = 0.0, noise_seed: Optional[int] = None
    ) -> npt.NDArray[np.float32]: ...
    def decode_batch(
        self, codes: Sequence[npt.NDArray[np.int64]], *, noise_seed: Optional[int] = None
    ) -> npt.NDArray[np.float32]: ...

def encode_files_json(
    options_json: str, *, device: str = "cpu", progress: Optional[Callable[[str, int, int], Any]] = None
) -> str: ...
def decode_store_json(
    options_json: str, *, device: str = "cpu", progress: Optional[Callable[[str, int, int], Any]] = None
) -> str: ...

@final
class Encoder:
    def __new__(cls, model: str, *, num_threads: int = 0) -> Encoder: ...
    @property
    def family(self) -> str: ...
    @property
    def num_layers(self) -> int: ...
    @property
    def min_samples(self) -> int: ...
    @property
    def config_sha1(self) -> str: ...
    @property
    def model_dir(self) -> str: ...
    def describe(
        self, layers: Optional[Union[str, int, Sequence[int]]] = None, stage: str = "encoder"
    ) -> Tuple[List[str], int, float]: ...
    def embed(
        self,
        clips: Sequence[npt.NDArray[np.float32]],
        rate: int,
        *,
        layers: Optional[Union[str, int, Sequence[int]]] = None,
        stage: str = "encoder",
        pool: Optional[str] = None,
        batch_size: int = 8,
    ) -> List[Tuple[Optional[npt.NDArray[np.float32]], Optional[str]]]: ...
    def __getnewargs_ex__(self) -> Tuple[Tuple[str], Dict[str, int]]: ...

def embed_files_json(
    inputs: Sequence[_PathLike],
    out: _PathLike,
    options_json: str,
    *,
    progress: Optional[Callable[[str, int, int], Any]] = None,
) -> str: ...

@final
class BsqTokenizer:
    def __new__(
        cls, model: _PathLike, *, weights: str = "ema", device: str = "cpu", num_threads: int = 0
    ) -> BsqTokenizer: ...
    def config_json(self) -> str: ...
    @property
    def bits(self) -> int: ...
    @property
    def group_size(self) -> int: ...
    @property
    def n_mels(self) -> int: ...
    @property
    def freq_patches(self) -> int: ...
    @property
    def time_patch(self) -> int: ...
    @property
    def sampling_rate(self) -> int: ...
    @property
    def rate_hz(self) -> float: ...
    @property
    def checkpoint(self) -> str: ...
    @property
    def weights(self) -> str: ...
    def store_layout_json(self, group_scales: bool = True) -> str: ...
    def encode(
        self, samples: npt.NDArray[np.float32], rate: int, *, crops_per_call: int = 8
    ) -> npt.NDArray[np.int64]: ...
    def encode_mel(self, mel: npt.NDArray[np.float32], *, crops_per_call: int = 8) -> npt.NDArray[np.int64]: ...
    def encode_clips(
        self,
        clips: Sequence[npt.NDArray[np.float32]],
        rate: int,
        *,
        names: Optional[Sequence[str]] = None,
        group_scales: bool = True,
        crops_per_call: int = 8,
    ) -> List[Tuple[Optional[float], Optional[List[npt.NDArray[np.uint32]]], Optional[str]]]: ...
    def decode(self, codes: npt.NDArray[np.int64], *, frames: Optional[int] = None) -> npt.NDArray[np.float32]: ...
    def features(self, samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...
    def __getnewargs_ex__(self) -> Tuple[Tuple[str], Dict[str, Any]]: ...

def bsq_train_json(
    config_json: Optional[str],
    data: Sequence[_PathLike],
    out: _PathLike,
    *,
    resume: bool = False,
    stop_at: Optional[int] = None,
    device: str = "cpu",
    progress: Optional[Callable[[str, int, int], Any]] = None,
) -> str: ...
def bsq_encode_files_json(
    model: _PathLike,
    inputs: Sequence[_PathLike],
    output: _PathLike,
    *,
    weights: str = "ema",
    batch_size: int = 1000,
    crops_per_call: int = 8,
    group_scales: bool = True,
    device: str = "cpu",
    progress: Optional[Callable[[str, int, int], Any]] = None,
) -> str: ...
def bsq_decode_store_json(
    model: _PathLike,
    input: _PathLike,
    out: _PathLike,
    *,
    weights: str = "ema",
    wav_iters: Optional[int] = None,
    device: str = "cpu",
    progress: Optional[Callable[[str, int, int], Any]] = None,
) -> str: ...
def bsq_evaluate_json(
    model: _PathLike,
    data: Sequence[_PathLike],
    *,
    weights: str = "ema",
    device: str = "cpu",
    progress: Optional[Callable[[str, int, int], Any]] = None,
) -> str: ...
