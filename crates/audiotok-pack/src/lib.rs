//! # audiotok-pack
//!
//! Audio-LLM instruction rows to fixed-length packed token blocks in MDS shards, the data
//! preparation of Qwen2-Audio fine-tuning:
//!
//! 1. [`rows`]: read JSON / JSONL rows (`text` with `<|AUDIO|>` placeholders, or chat
//!    `messages`) with their audio paths;
//! 2. [`template`]: render `messages` with the tokenizer's chat template (minijinja) or the
//!    built-in Qwen2-Audio one;
//! 3. [`lengths`]: each audio's length at the profile's rate (from the header where exact);
//! 4. [`document`]: tokenize ([`tokenizer`], HF `tokenizers`) and expand each placeholder to
//!    the profile's token count;
//! 5. [`packing`]: assign documents to blocks (greedy next-fit, or best-fit decreasing);
//! 6. [`output`]: write blocks as MDS samples (standard layout with labels, or the notebook's).
//!
//! [`Packer`] ties 2–4 together for one row; it is `Sync`, so callers run rows in parallel and
//! keep input order for reproducible output.
//!
//! The whole pipelines are job APIs that every front (the `audiotok` CLI, the Python bindings)
//! calls as they are, reporting progress through an [`audiotok_core::Observer`]:
//!
//! - [`job`]: `audiotok pack` ([`job::pack`]): rows from files or in memory, audio lengths, tokenizing,
//!   packing, the MDS dataset and `rejects.jsonl` swapped in whole, a [`job::PackSummary`];
//! - [`count`]: `audiotok count` ([`count::count_files`]): audio tokens per file for a profile,
//!   totals and a length histogram ([`count::CountReport`]); [`count::count_lengths`] from
//!   lengths alone.

pub mod count;
pub mod document;
pub mod error;
pub mod job;
pub mod lengths;
pub mod output;
pub mod packing;
pub mod rows;
pub mod staging;
pub mod template;
pub mod tokenizer;

use std::path::{Path, PathBuf};

use audiotok_features::profiles::Profile;

pub use count::{count_files, count_lengths, ClipCount, CountReport};
pub use document::{build_document, Document, TrainOn};
pub use error::{PackError, Reject, RejectReason, RowAt, RowSource};
pub use job::{OnError, PackOptions, PackSource, PackSummary};
pub use lengths::{audio_length, input_length, AudioLength, LengthCache, LengthMode};
pub use output::{BlockWriter, Layout};
pub use packing::{efficiency, pack, GreedyPacker, Strategy};
pub use rows::{parse_row, read_rows, read_rows_with, rows_from_values, Row, RowContent, DEFAULT_MAX_ROW_BYTES};
pub use staging::StagedDir;
pub use template::{ChatTemplate, TEMPLATE_FUEL};
pub use tokenizer::AudioTokenizer;

/// The largest block size: 2^20 tokens (a block's three int32 columns are 12 MiB then).
pub const MAX_BLOCK_SIZE: usize = 1 << 20;

/// What a packing run does. Serialises as plain data (the profile by its name, enums in
/// lowercase as the CLI spells them), so a front can store or send its configuration.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PackConfig {
    /// Token-count profile of the audio encoder (single stream, e.g. `qwen2-audio`).
    #[serde(with = "profile_name")]
    pub profile: Profile,
    /// Tokens per block.
    pub block_size: usize,
    /// Packing strategy.
    pub strategy: Strategy,
    /// Output layout.
    pub layout: Layout,
    /// Which tokens get labels.
    pub train_on: TrainOn,
    /// How audio lengths are found.
    pub length_mode: LengthMode,
    /// Folder that relative audio paths are resolved against (default: the current folder).
    pub audio_root: Option<PathBuf>,
    /// JSONL lines longer than this many bytes are rejected unread ([`DEFAULT_MAX_ROW_BYTES`]).
    pub max_row_bytes: u64,
}

impl PackConfig {
    /// The notebook's settings for `profile`: 4096-token blocks, greedy, standard layout.
    pub fn new(profile: Profile) -> PackConfig {
        PackConfig {
            profile,
            block_size: 4096,
            strategy: Strategy::Greedy,
            layout: Layout::Standard,
            train_on: TrainOn::All,
            length_mode: LengthMode::Header,
            audio_root: None,
            max_row_bytes: DEFAULT_MAX_ROW_BYTES,
        }
    }

    /// Where the audio path `p` of a row is read from.
    pub fn resolve(&self, p: &str) -> PathBuf {
        match &self.audio_root {
            Some(root) if Path::new(p).is_relative() => root.join(p),
            _ => PathBuf::from(p),
        }
    }

    /// The length of one audio file at the profile's rate.
    pub fn audio_length(&self, path: &Path) -> Result<AudioLength, String> {
        audio_length(path, self.profile.sample_rate(), self.length_mode)
    }
}

/// A [`Profile`] as its name (`qwen2-audio`, `custom:rate=R,hop=H`, ...) in serde formats.
pub(crate) mod profile_name {
    use audiotok_features::profiles::Profile;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the profile's name.
    pub fn serialize<S: Serializer>(p: &Profile, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(p)
    }

    /// Parses a profile name as the CLI does.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Profile, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Turns rows into documents: template, audio lengths, tokenization and expansion.
#[derive(Debug)]
pub struct Packer {
    cfg: PackConfig,
    tokenizer: AudioTokenizer,
    template: ChatTemplate,
}

impl Packer {
    /// A packer. `template` overrides the chat template; without it the tokenizer folder's own
    /// template is used, else the built-in Qwen2-Audio template.
    pub fn new(
        cfg: PackConfig,
        tokenizer: AudioTokenizer,
        template: Option<ChatTemplate>,
    ) -> Result<Packer, PackError> {
        let count = cfg.profile.count(16_000);
        if count.per_scale.len() != 1 || count.codebooks != 1 {
            return Err(PackError::Config(format!(
                "profile {} gives several token streams; packing expands one placeholder per audio into one \
                 stream of placeholder tokens, so use a single-stream encoder profile such as qwen2-audio",
                cfg.profile
            )));
        }
        if cfg.block_size == 0 || cfg.block_size > MAX_BLOCK_SIZE {
            return Err(PackError::Config(format!(
                "the block size must be 1..={MAX_BLOCK_SIZE} tokens, not {}",
                cfg.block_size
            )));
        }
        let template = match template {
            Some(t) => t,
            None => match tokenizer.chat_template() {
                Some((origin, source)) => ChatTemplate::new(source, origin)?,
                None => ChatTemplate::qwen2_audio(),
            },
        };
        Ok(Packer { cfg, tokenizer, template })
    }

    /// The configuration.
    pub fn config(&self) -> &PackConfig {
        &self.cfg
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &AudioTokenizer {
        &self.tokenizer
    }

    /// The chat template in use.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Where the audio path `p` of a row is read from.
    pub fn resolve(&self, p: &str) -> PathBuf {
        self.cfg.resolve(p)
    }

    /// The length of one audio file at the profile's rate.
    pub fn audio_length(&self, path: &Path) -> Result<AudioLength, String> {
        self.cfg.audio_length(path)
    }

    /// Placeholder tokens for an audio of `samples` samples at the profile's rate.
    pub fn audio_tokens(&self, samples: u64) -> usize {
        self.cfg.profile.count(samples).total() as usize
    }

    /// The text a row tokenizes: its `text`, or its rendered `messages`.
    pub fn row_text(&self, row: &Row) -> Result<String, RejectReason> {
        match &row.content {
            RowContent::Text(t) => Ok(t.clone()),
            RowContent::Messages(m) => self.template.render(m, false).map_err(RejectReason::Template),
        }
    }

    /// One row to a document; audio lengths come from `lengths` (filled for every resolved path
    /// beforehand) or are computed here.
    ///
    /// Before tokenizing, a row is rejected when an audio gives 0 tokens, or when it cannot fit a
    /// block: its audio tokens plus the fewest tokens its text can have
    /// ([`AudioTokenizer::max_token_bytes`]) exceed the block size. So a huge row costs a length
    /// check, not a tokenization.
    pub fn prepare(&self, row: &Row, lengths: &LengthCache) -> Result<Document, RejectReason> {
        let text = self.row_text(row)?;
        let mut counts = Vec::with_capacity(row.audio.len());
        for p in &row.audio {
            let path = self.resolve(p);
            let len = match lengths.get(&path) {
                Some(r) => r.clone(),
                None => self.audio_length(&path),
            };
            match len {
                Ok(l) => {
                    let n = self.audio_tokens(l.samples);
                    if n == 0 {
                        let reason = format!(
                            "0 tokens: {} samples at {} Hz are too short for {}",
                            l.samples,
                            self.cfg.profile.sample_rate(),
                            self.cfg.profile
                        );
                        return Err(RejectReason::Audio { path: p.clone(), reason });
                    }
                    counts.push(n);
                }
                Err(reason) => return Err(RejectReason::Audio { path: p.clone(), reason }),
            }
        }
        let audio_tokens: u64 = counts.iter().map(|&n| n as u64).sum();
        // Each placeholder is one token of the text, replaced by its audio's tokens.
        let text_tokens = match self.tokenizer.max_token_bytes() {
            Some(m) => (text.len().div_ceil(m.max(1)) as u64).saturating_sub(row.audio.len() as u64),
            None => 0,
        };
        let at_least = audio_tokens.saturating_add(text_tokens);
        if at_least > self.cfg.block_size as u64 {
            return Err(RejectReason::CannotFit {
                at_least,
                text_bytes: text.len(),
                audio_tokens,
                block_size: self.cfg.block_size,
            });
        }
        let doc = build_document(&self.tokenizer, &text, row.audio.clone(), &counts, self.cfg.train_on)?;
        if doc.ids.len() > self.cfg.block_size {
            return Err(RejectReason::TooLong { tokens: doc.ids.len(), block_size: self.cfg.block_size });
        }
        Ok(doc)
    }
}
