//! The packed-audio training loader: what a Qwen2-Audio fine-tuning step reads from an
//! `audiotok pack` output, computed in Rust.
//!
//! [`PackedDataset`] opens the MDS folder (standard layout or `--compat cooking`) and gives, per
//! block, a [`Block`]: the token ids, labels (-100 on audio tokens, padding and every document's
//! first token), position ids, document lengths and their cumulative offsets, and the block's
//! audios as Whisper-128 log-mel features with their attention masks, in placeholder order. The
//! `<|AUDIO|>` count of a block must equal what its audios give (Qwen2-Audio scatters the
//! features into those tokens in row-major order); a mismatch is an error naming the block.
//!
//! [`Prefetch`] reads a list of blocks on threads of its own, a bounded window ahead of the
//! consumer, and hands them back in order. [`plan`] is the sample order of one epoch for one
//! rank and data-loader worker: deterministic shuffle, disjoint and complete shards, resumable
//! from a count of samples already seen.

mod block;
mod plan;
mod prefetch;

pub use block::{Block, LoaderOptions, PackedDataset, TokenIds};
pub use plan::{plan, Plan};
pub use prefetch::Prefetch;

use std::path::PathBuf;

/// Why a block could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    /// The MDS folder or a sample could not be read.
    #[error(transparent)]
    Mds(#[from] audiotok_mds::MdsError),
    /// The folder is not an `audiotok pack` output (a column is missing or of another type).
    #[error("{dir}: not an audiotok pack output: {reason}")]
    Layout {
        /// The folder.
        dir: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A block's contents are inconsistent (audio tokens against audios, lengths against ids).
    #[error("{dir}: block {block}: {reason}")]
    Block {
        /// The folder.
        dir: PathBuf,
        /// The block's index.
        block: u64,
        /// What is wrong.
        reason: String,
    },
    /// An audio of a block could not be decoded or featurised.
    #[error("{dir}: block {block}: audio {audio}: {reason}")]
    Audio {
        /// The folder.
        dir: PathBuf,
        /// The block's index.
        block: u64,
        /// The audio's position in the block.
        audio: usize,
        /// Why (naming the file).
        reason: String,
    },
    /// Options out of range.
    #[error("{0}")]
    Options(String),
}
