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

pub mod document;
pub mod error;
pub mod lengths;
pub mod output;
pub mod packing;
pub mod rows;
pub mod template;
pub mod tokenizer;

use std::path::{Path, PathBuf};

use audiotok_features::profiles::Profile;

pub use document::{build_document, Document, TrainOn};
pub use error::{PackError, Reject, RejectReason, RowAt, RowSource};
pub use lengths::{audio_length, AudioLength, LengthCache, LengthMode};
pub use output::{BlockWriter, Layout};
pub use packing::{efficiency, pack, GreedyPacker, Strategy};
pub use rows::{read_rows, Row, RowContent};
pub use template::ChatTemplate;
pub use tokenizer::AudioTokenizer;

/// What a packing run does.
#[derive(Debug, Clone)]
pub struct PackConfig {
    /// Token-count profile of the audio encoder (single stream, e.g. `qwen2-audio`).
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
        if cfg.block_size == 0 {
            return Err(PackError::Config("the block size must be at least 1".into()));
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
                Ok(l) => counts.push(self.audio_tokens(l.samples)),
                Err(reason) => return Err(RejectReason::Audio { path: p.clone(), reason }),
            }
        }
        let doc = build_document(&self.tokenizer, &text, row.audio.clone(), &counts, self.cfg.train_on)?;
        if doc.ids.len() > self.cfg.block_size {
            return Err(RejectReason::TooLong { tokens: doc.ids.len(), block_size: self.cfg.block_size });
        }
        Ok(doc)
    }
}
