//! Continuous audio encoders for audiotok, on [candle](https://github.com/huggingface/candle).
//!
//! - [`hubert::Wav2Vec2`]: HuBERT and wav2vec2 (`model_type` `hubert` / `wav2vec2`, `*ForCTC`
//!   checkpoints' `hubert.` / `wav2vec2.` prefixes accepted, heads ignored);
//! - [`whisper::Tower`]: the Qwen2-Audio audio tower with its projector (`qwen2_audio`,
//!   `qwen2_audio_encoder`) and the Whisper encoder (`whisper`), sharing their layers.
//!
//! [`Encoder::load`] reads an HF model folder (or a hub id in the HF cache) by its `config.json`,
//! [`Encoder::embed`] embeds a batch of 16 kHz clips, returning the tensors [`Tap`]s select;
//! Batches give the numbers of one clip at a time:
//! clips never share a convolution, a norm's statistics or an attention key.
//!
//! Build with `--features cuda` for candle's CUDA backend (needs the CUDA toolkit); the models run
//! on the CPU device today.

pub mod config;
pub mod cpu;
mod error;
pub mod gemm;
pub mod hubert;
pub mod job;
mod kernels;
mod model;
pub mod nn;
pub mod weights;
pub mod whisper;

pub use config::{ModelConfig, TowerConfig, Wav2Vec2Config};
pub use error::{Error, Mismatch, Result};
pub use model::{Embedding, Encoder, Net, Tap, WINDOW_SAMPLES};
