"""audiotok: audio collections into training data for audio language models.

The heavy work runs in Rust (the ``audiotok._audiotok`` native module) with the GIL released;
the functions here are named after what users already call:

- ``audiotok.load(path, sr=16000, mono=True) -> (np.ndarray, sr)`` as ``librosa.load``
- ``audiotok.info(path)`` as ``soundfile.info``
- ``audiotok.resample(y, orig_sr=..., target_sr=...)`` as ``librosa.resample`` (soxr HQ)
- ``audiotok.WhisperFeatureExtractor`` called as transformers' ``WhisperFeatureExtractor``
- ``audiotok.features(signals, kind)``, ``audiotok.count_tokens(lengths, profile=...)``
- ``audiotok.codecs.SNAC.from_pretrained(model)`` with ``encode``/``decode`` as the ``snac`` package's
- ``audiotok.encoders.Encoder.from_pretrained(model).embed(audio)``: HuBERT / wav2vec2, Qwen2-Audio tower, Whisper encoder outputs
- ``audiotok.bsq.BsqTokenizer.from_pretrained(run).encode(audio)`` and ``audiotok.bsq.train(config, data, out)``: BSQ spectrogram tokenizers
- ``audiotok.tokens.read_table(store)``: a token store as a ``pyarrow.Table`` (Arrow C stream, no copy)
"""

from __future__ import annotations

from . import _audiotok
from ._audiotok import (
    FEATURE_KINDS,
    PROFILES,
    AudioError,
    AudioInfo,
    AudiotokError,
    BpeError,
    BsqError,
    CodecError,
    EmbedError,
    FeatureError,
    LoaderError,
    MdsError,
    PackError,
    TokensError,
    __version__,
    info,
)
from .audio import load, resample
from . import bpe, bsq, codecs, encoders, loader, mds, tokens
from .features import WhisperFeatureExtractor, count_tokens, features, features_from_files
from .pack import count_files, pack

__all__ = [
    "FEATURE_KINDS",
    "PROFILES",
    "AudioError",
    "LoaderError",
    "MdsError",
    "PackError",
    "AudioInfo",
    "AudiotokError",
    "BpeError",
    "BsqError",
    "bsq",
    "CodecError",
    "EmbedError",
    "TokensError",
    "codecs",
    "encoders",
    "tokens",
    "FeatureError",
    "WhisperFeatureExtractor",
    "__version__",
    "bpe",
    "count_files",
    "count_tokens",
    "features",
    "features_from_files",
    "loader",
    "mds",
    "pack",
    "info",
    "load",
    "resample",
    "_audiotok",
]
