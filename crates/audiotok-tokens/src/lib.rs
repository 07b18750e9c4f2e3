//! # audiotok-tokens
//!
//! Discrete audio tokens (codec codes such as SNAC's multi-scale codebooks): reading token streams,
//! statistics over them, and BPE-style merge vocabularies learned on integer streams.
//!
//! - [`store`]: the token store (Parquet batches + `metadata.json`), writer and reader.
//! - [`input`]: token sequences from text, `.npy` and stores behind one iterator; the
//!   time-interleaved stream.
//! - [`stats`]: exact streaming statistics (entropy, Gini, n-grams, runs) and a BPE recommendation.
//! - [`bpe`]: merge learning and lossless encode/decode on integer token streams.

pub mod bpe;
pub mod input;
pub mod stats;
pub mod store;
