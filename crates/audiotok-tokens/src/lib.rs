//! # audiotok-tokens
//!
//! Discrete audio tokens (codec codes such as SNAC's multi-scale codebooks): reading token streams,
//! statistics over them, and BPE-style merge vocabularies learned on integer streams.
//!
//! - [`store`]: the token store (Parquet batches + `metadata.json`), writer and reader.
//! - [`input`]: token sequences from text, `.npy` and stores behind one iterator; the
//!   time-interleaved stream.
//! - [`stats`]: exact streaming statistics (entropy, Gini, n-grams, runs) and a BPE recommendation.
//! - [`bpe`]: merge learning and lossless encode/decode on integer token streams; [`bpe::job`]:
//!   the `audiotok bpe` jobs on files (train, encode/decode, inspect, export).
//! - [`streams`]: every sequence of some inputs as one stream or per-scale streams, and streams
//!   written back (text, `.npy`, token stores).

pub mod bpe;
pub mod input;
pub mod stats;
pub mod store;
pub mod streams;
