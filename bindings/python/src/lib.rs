//! `audiotok._audiotok`: the native module of the `audiotok` Python package.
//!
//! Thin conversions over the library crates, as HF tokenizers' bindings are: arguments from
//! Python objects, the GIL released around every piece of I/O and DSP, results handed back as
//! numpy arrays that own the Rust buffers (no copy), library errors raised as Python exceptions
//! carrying the same reasons the CLI prints. No logic of its own: the pure-Python adapters beside
//! this module (`audiotok/*.py`) shape the calls users know (librosa, soundfile, transformers).
//! Nothing is started at import: each call that runs in parallel builds its own thread pool, so a
//! forked DataLoader worker inherits no pool.

use pyo3::prelude::*;

mod audio;
mod bpe;
mod bsq;
mod codecs;
mod encoders;
mod errors;
mod features;
mod loader;
mod mds;
mod pack;
mod progress;
mod tokens;

/// The native module.
#[pymodule]
fn _audiotok(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    audio::register(m)?;
    bpe::register(m)?;
    bsq::register(m)?;
    codecs::register(m)?;
    encoders::register(m)?;
    features::register(m)?;
    loader::register(m)?;
    mds::register(m)?;
    pack::register(m)?;
    tokens::register(m)?;
    Ok(())
}
