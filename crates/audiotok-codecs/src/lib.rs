//! Neural audio codecs for audiotok, on [candle](https://github.com/huggingface/candle).
//!
//! [`Snac`] is the multi-scale neural audio codec SNAC (Siuzdak et al.): a convolutional encoder,
//! a strided residual vector quantiser whose codebooks run at different frame rates, and a decoder.
//! It follows candle's model convention: a [`Config`] deserialised from the published `config.json`,
//! then `Snac::new(&cfg, vb)`. [`weights`] finds and loads published and fine-tuned weights.
//! [`job`] holds the encode and decode jobs (audio files to a resumable token store and back to
//! WAV) that the `audiotok` CLI and the Python bindings call.
//!
//! ```no_run
//! # fn main() -> Result<(), audiotok_codecs::Error> {
//! use audiotok_codecs::{weights, Snac};
//! let model: Snac = weights::load_snac("hubertsiuzdak/snac_24khz", None, &candle_core::Device::Cpu)?;
//! let samples = vec![0.0f32; 24000]; // one second at the model's rate, mono
//! let codes = model.encode_samples(&samples)?; // 3 levels: 12, 24 and 48 codes
//! let audio = model.decode_codes(&codes, None)?; // noise layers off
//! # Ok(()) }
//! ```
//!
//! Build with `--features cuda` for candle's CUDA backend (needs the CUDA toolkit); the model then runs
//! on `Device::new_cuda(0)`, with candle's own ops in place of this crate's CPU kernels.

mod config;
mod error;
pub mod job;
mod kernels;
mod layers;
mod snac;
mod vq;
pub mod weights;

pub use config::Config;
pub use error::{Error, Mismatch};
pub use layers::NoiseRng;
pub use snac::Snac;
