//! Library errors as Python exceptions.
//!
//! `AudiotokError` (a `ValueError`) is the base of every error the library raises for bad
//! input; `AudioError` (reading, decoding, resampling) and `FeatureError` derive from it. A file
//! that does not exist raises `FileNotFoundError` with the same text. Messages are the library's own Display: the file, and the row or line where there
//! is one.

use pyo3::create_exception;
use pyo3::exceptions::{PyFileNotFoundError, PyValueError};
use pyo3::prelude::*;

create_exception!(_audiotok, AudiotokError, PyValueError, "Base of the errors audiotok raises for bad input.");
create_exception!(_audiotok, AudioError, AudiotokError, "Audio that cannot be read, decoded or resampled.");
create_exception!(_audiotok, FeatureError, AudiotokError, "Input a feature extractor cannot use.");
create_exception!(
    _audiotok,
    PackError,
    AudiotokError,
    "Rows, a tokenizer or a template that cannot be packed, or a row file that cannot be read."
);
create_exception!(
    _audiotok,
    LoaderError,
    AudiotokError,
    "A packed block that cannot be read: its audio, or its audio tokens against its audios."
);
create_exception!(
    _audiotok,
    BpeError,
    AudiotokError,
    "A BPE model that cannot be read, or tokens it cannot encode or decode."
);
create_exception!(_audiotok, MdsError, AudiotokError, "An MDS dataset that cannot be read or written.");
create_exception!(
    _audiotok,
    TokensError,
    AudiotokError,
    "A token store that cannot be read: its files, rows or metadata."
);
create_exception!(
    _audiotok,
    CodecError,
    AudiotokError,
    "A codec model that cannot be loaded, or audio or codes it cannot encode or decode."
);

create_exception!(
    _audiotok,
    EmbedError,
    AudiotokError,
    "An encoder model that cannot be loaded, or audio or options it cannot embed."
);

create_exception!(
    _audiotok,
    BsqError,
    AudiotokError,
    "A BSQ tokenizer, configuration or training run that cannot be used, or audio or codes it cannot take."
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("AudiotokError", py.get_type::<AudiotokError>())?;
    m.add("AudioError", py.get_type::<AudioError>())?;
    m.add("FeatureError", py.get_type::<FeatureError>())?;
    m.add("MdsError", py.get_type::<MdsError>())?;
    m.add("PackError", py.get_type::<PackError>())?;
    m.add("LoaderError", py.get_type::<LoaderError>())?;
    m.add("BpeError", py.get_type::<BpeError>())?;
    m.add("TokensError", py.get_type::<TokensError>())?;
    m.add("CodecError", py.get_type::<CodecError>())?;
    m.add("EmbedError", py.get_type::<EmbedError>())?;
    m.add("BsqError", py.get_type::<BsqError>())?;
    Ok(())
}

/// An audio error as `FileNotFoundError` (a missing file) or `AudioError`.
pub(crate) fn audio(e: audiotok_audio::AudioError) -> PyErr {
    let missing =
        matches!(&e, audiotok_audio::AudioError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound);
    if missing {
        PyFileNotFoundError::new_err(audiotok_core::error_text(&e))
    } else {
        AudioError::new_err(audiotok_core::error_text(&e))
    }
}

/// A feature error as `FeatureError`.
pub(crate) fn feature(e: audiotok_features::FeatureError) -> PyErr {
    FeatureError::new_err(audiotok_core::error_text(&e))
}
