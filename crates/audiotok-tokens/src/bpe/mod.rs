//! BPE-style merge learning on integer token streams (codec codes), lossless by construction:
//! `decode(encode(x)) == x` for every valid stream.
//!
//! No string round trip: symbols are `u32` ids throughout. Training keeps incremental pair counts
//! over doubly linked symbol lists with a lazy-deletion max-heap and per-pair position lists (the
//! design of HF tokenizers' `BpeTrainer` and SentencePiece, but position-based, so sequences of
//! thousands of codes cost no more than short ones); the corpus is never recounted.
//!
//! # Variants
//!
//! | [`Variant`] | input | base symbols |
//! |---|---|---|
//! | `plain` | [`Corpus::Streams`] | the codes `0..C` |
//! | `thresholded` | [`Corpus::Streams`] | as `plain`; stops when the best pair count falls below `min_freq` |
//! | `rl` | [`Corpus::Streams`] | a run of `n` copies of `t` is one symbol `(t, n)` for `n <= max_run` (longer runs are split into chunks of `max_run` and a rest) |
//! | `cross-scale` | [`Corpus::Scales`] | the codes of one coarsest frame across all scales (SNAC 24 kHz, ratios 1:2:4: 1+2+4 = 7 codes) are one tuple symbol |
//! | `rl+cross-scale` | [`Corpus::Scales`] | runs of identical frame tuples, as `rl` over tuples |
//! | `hierarchical` | [`Corpus::Scales`] | scale-tagged codes `s*C + c` in frame order; a per-scale stage first merges only within one scale's codes of one frame, then a cross-scale stage merges freely over the frame sequence |
//!
//! A multi-scale item is one stream per scale (coarsest first) whose lengths are in the ratios
//! `scale_ratios` (any positive integers; a frame holds `scale_ratios[s]` codes of scale `s`,
//! laid out scale-major). Tuples (and tuple runs) seen fewer than `min_symbol_count` times in the
//! training corpus, and any unseen at encoding time, are written as escapes: one symbol `s*C + c`
//! per code. `rl` runs are always encodable (a run of one is a fixed symbol).
//!
//! # Ids, merges and tie-breaking
//!
//! Base symbols take ids `0..B` ([`BpeModel::base_size`]); for `plain` these are the codes themselves
//! (`B = codebook_size`). Every merge `(left, right)` gets the next free id, `B + k` for the `k`-th
//! new symbol, except when its expansion (in base symbols) equals an existing symbol's, which is
//! then reused, as HF's trainer does (so the export's vocabulary stays unique). Training stops after
//! `merges` merges or when the vocabulary (base + new symbols) reaches `vocab_size`, whichever is
//! given, or earlier when no pair is left or the best count is below `min_freq`.
//!
//! **Tie-breaking** (deterministic and documented): the pair with the highest count wins; among
//! equal counts, the smallest `(left, right)` by left id, then right id. This is also HF's rule.
//!
//! **Counting** is non-overlapping: a pair of two equal symbols counts `floor(k/2)` in a run of `k`
//! (`a a a` holds one `(a, a)`), which is exactly what merging left to right produces, in training
//! and in encoding alike.
//!
//! **Encoding** applies merges by rank, lowest first, equal ranks left to right (HF's BPE model
//! algorithm, one heap per sequence), so an exported `plain` model gives the same ids in HF
//! `tokenizers` ([`BpeModel::to_hf_tokenizer_json`]).
//!
//! # Example
//!
//! ```
//! use audiotok_tokens::bpe::{train, Corpus, TrainerConfig, Variant};
//!
//! let corpus = vec![vec![1, 2, 1, 2, 1, 2], vec![1, 2, 3]];
//! let mut cfg = TrainerConfig::new(Variant::Plain, 4);
//! cfg.merges = Some(2);
//! let model = train(&cfg, &Corpus::Streams(&corpus)).unwrap();
//! // (1,2) has count 4 and becomes 4; then (4,3) and (4,4) both have count 1, and the smaller pair
//! // (4,3) wins the tie and becomes 5.
//! assert_eq!(model.merges(), vec![(1, 2, 4), (4, 3, 5)]);
//! assert_eq!(model.encode(&[1, 2, 1, 2, 1, 2]).unwrap(), vec![4, 4, 4]);
//! assert_eq!(model.encode(&[1, 2, 3]).unwrap(), vec![5]);
//! assert_eq!(model.decode(&[4, 5, 0]).unwrap(), vec![1, 2, 1, 2, 3, 0]);
//! ```

mod base;
mod encoder;
mod error;
mod hash;
mod hf;
pub mod job;
mod model;
mod trainer;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use error::{BpeError, Result};
pub use hf::{hf_char, HF_CHAR_BASE};
pub use model::{BpeModel, BpeStats, CompressionStats, MergeStat, SymbolStat, FORMAT_NAME, FORMAT_VERSION};

use base::{check_scales, check_stream, BaseVocab, Layout};
use encoder::{Ranks, Scratch};
use trainer::{learn, Budget, Learner, SymbolTable};

/// The most base tokens (codes; scale-tagged codes for multi-scale variants) one symbol may stand
/// for: a model with a longer symbol (base or merged) is refused at load, and training that would
/// make one fails. 2^20 codes is over 3 hours of one SNAC 24 kHz scale.
pub const MAX_SYMBOL_TOKENS: usize = 1 << 20;

/// The most base tokens all symbols of a model may stand for together (their expansions are kept
/// in memory, 4 bytes each: 1 GiB at this limit).
pub const MAX_MODEL_TOKENS: usize = 1 << 28;

/// The kind of base symbols and stages (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Variant {
    /// Standard BPE over each sequence.
    #[serde(rename = "plain")]
    Plain,
    /// Run-length symbols `(token, run)` first, then BPE.
    #[serde(rename = "rl")]
    Rl,
    /// One tuple symbol per coarsest frame across scales, then BPE over frames.
    #[serde(rename = "cross-scale")]
    CrossScale,
    /// `plain` that stops when the best pair count falls below `min_freq`.
    #[serde(rename = "thresholded")]
    Thresholded,
    /// Per-scale merges (within one frame's codes of one scale) first, then a cross-scale stage.
    #[serde(rename = "hierarchical")]
    Hierarchical,
    /// Runs of identical frame tuples first, then BPE.
    #[serde(rename = "rl+cross-scale")]
    RlCrossScale,
}

impl Variant {
    /// All variants.
    pub const ALL: [Variant; 6] = [
        Variant::Plain,
        Variant::Rl,
        Variant::CrossScale,
        Variant::Thresholded,
        Variant::Hierarchical,
        Variant::RlCrossScale,
    ];

    /// The name used in model files and on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Rl => "rl",
            Variant::CrossScale => "cross-scale",
            Variant::Thresholded => "thresholded",
            Variant::Hierarchical => "hierarchical",
            Variant::RlCrossScale => "rl+cross-scale",
        }
    }

    /// Whether the variant takes per-scale streams ([`Corpus::Scales`]).
    pub fn is_multi_scale(self) -> bool {
        matches!(self, Variant::CrossScale | Variant::Hierarchical | Variant::RlCrossScale)
    }

    fn layout(self) -> Layout {
        match self {
            Variant::Plain | Variant::Thresholded => Layout::Codes,
            Variant::Rl => Layout::Runs,
            Variant::CrossScale => Layout::Tuples,
            Variant::RlCrossScale => Layout::TupleRuns,
            Variant::Hierarchical => Layout::ScaleCodes,
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = BpeError;

    fn from_str(s: &str) -> Result<Self> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| BpeError::Config(format!("unknown BPE variant {s:?}")))
    }
}

/// Training input.
#[derive(Debug, Clone, Copy)]
pub enum Corpus<'a> {
    /// One token stream per sequence (`plain`, `thresholded`, `rl`).
    Streams(&'a [Vec<u32>]),
    /// Per sequence, one stream per scale, coarsest first, lengths in the ratios `scale_ratios`
    /// (`cross-scale`, `hierarchical`, `rl+cross-scale`).
    Scales(&'a [Vec<Vec<u32>>]),
}

/// Training options. [`TrainerConfig::new`] gives the defaults; set `merges` or `vocab_size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainerConfig {
    /// Which variant to learn.
    pub variant: Variant,
    /// Stop after this many merges (give this or `vocab_size`, not both).
    pub merges: Option<usize>,
    /// Stop when base symbols + merged symbols reach this size (give this or `merges`).
    pub vocab_size: Option<usize>,
    /// Stop when the best pair count is below this. Required by `thresholded` (where it may replace
    /// `merges`/`vocab_size`); optional for the others (default 1: merge while any pair is left).
    pub min_freq: Option<u64>,
    /// Longest run folded into one symbol by `rl` and `rl+cross-scale` (default 16).
    pub max_run: u32,
    /// Codes are `0..codebook_size` (every scale shares it).
    pub codebook_size: u32,
    /// Codes per coarsest frame of each scale, coarsest first (SNAC 24 kHz: `[1, 2, 4]`); required by
    /// multi-scale variants, empty (or `[1]`) for the others.
    pub scale_ratios: Vec<u32>,
    /// `rl` run symbols and frame tuples become base symbols when seen at least this often in the
    /// training corpus (default 1); rarer ones are written as smaller runs or per-code escapes.
    pub min_symbol_count: u64,
    /// `hierarchical`: merges (or, with `vocab_size`, new symbols) given to the per-scale stage
    /// (default: half of the total).
    pub scale_merges: Option<usize>,
}

impl TrainerConfig {
    /// Defaults for `variant` over codes `0..codebook_size`: no limit set yet, `max_run` 16,
    /// `min_symbol_count` 1.
    pub fn new(variant: Variant, codebook_size: u32) -> Self {
        TrainerConfig {
            variant,
            merges: None,
            vocab_size: None,
            min_freq: None,
            max_run: 16,
            codebook_size,
            scale_ratios: Vec::new(),
            min_symbol_count: 1,
            scale_merges: None,
        }
    }

    fn ratios(&self) -> Result<Vec<u32>> {
        if self.variant.is_multi_scale() {
            if self.scale_ratios.is_empty() || self.scale_ratios.contains(&0) {
                return Err(BpeError::Config(format!(
                    "{} needs scale_ratios, positive integers (e.g. [1, 2, 4]); got {:?}",
                    self.variant, self.scale_ratios
                )));
            }
            let s = self.scale_ratios.len() as u64;
            if s * u64::from(self.codebook_size) >= u64::from(u32::MAX / 4) {
                return Err(BpeError::Config("codebook_size times the number of scales is too large".into()));
            }
            Ok(self.scale_ratios.clone())
        } else if self.scale_ratios.is_empty() || self.scale_ratios == [1] {
            Ok(vec![1])
        } else {
            Err(BpeError::Config(format!(
                "{} is single-stream; scale_ratios {:?} need a multi-scale variant",
                self.variant, self.scale_ratios
            )))
        }
    }

    fn validate(&self) -> Result<()> {
        if self.codebook_size == 0 || self.codebook_size >= u32::MAX / 4 {
            return Err(BpeError::Config(format!("codebook_size {} is out of range", self.codebook_size)));
        }
        if self.merges.is_some() && self.vocab_size.is_some() {
            return Err(BpeError::Config("give merges or vocab_size, not both".into()));
        }
        if self.variant == Variant::Thresholded && self.min_freq.is_none() {
            return Err(BpeError::Config("thresholded needs min_freq".into()));
        }
        if self.merges.is_none() && self.vocab_size.is_none() && self.min_freq.is_none_or(|f| f <= 1) {
            return Err(BpeError::Config("give merges, vocab_size or (thresholded) a min_freq above 1".into()));
        }
        if self.variant.layout().has_runs() && self.max_run == 0 {
            return Err(BpeError::Config("max_run must be at least 1".into()));
        }
        Ok(())
    }
}

/// Learns a model on `corpus` (see the module docs for the variants and rules).
///
/// Errors: an invalid configuration, a corpus of the wrong kind for the variant, an empty corpus
/// (no tokens at all), a token `>= codebook_size`, scale streams whose lengths are not in the ratios.
pub fn train(cfg: &TrainerConfig, corpus: &Corpus<'_>) -> Result<BpeModel> {
    cfg.validate()?;
    let ratios = cfg.ratios()?;
    let variant = cfg.variant;
    let c = cfg.codebook_size;
    let no_streams: &[Vec<u32>] = &[];
    let no_scales: &[Vec<Vec<u32>>] = &[];
    let (streams, multi) = match (*corpus, variant.is_multi_scale()) {
        (Corpus::Streams(s), false) => (s, no_scales),
        (Corpus::Scales(m), true) => (no_streams, m),
        (_, true) => return Err(BpeError::WrongInput { variant, expected: "per-scale streams (Corpus::Scales)" }),
        (_, false) => return Err(BpeError::WrongInput { variant, expected: "single streams (Corpus::Streams)" }),
    };
    let mut tokens = 0usize;
    for (i, s) in streams.iter().enumerate() {
        check_stream(s, c, i, 0)?;
        tokens += s.len();
    }
    for (i, item) in multi.iter().enumerate() {
        tokens += check_scales(item, &ratios, c, i)?;
    }
    if tokens == 0 {
        return Err(BpeError::Empty("the training corpus holds no tokens"));
    }

    let mut base = BaseVocab::new(variant.layout(), c, ratios, cfg.max_run);
    base.learn_table(streams, multi, cfg.min_symbol_count)?;
    let base_size = base.size();
    let mut table = SymbolTable::new(base_size);
    let min_count = cfg.min_freq.unwrap_or(1).min(i64::MAX as u64) as i64;
    let by_vocab = cfg.vocab_size.is_some();
    let total = cfg.merges.or(cfg.vocab_size.map(|v| v.saturating_sub(base_size as usize)));
    let budget = |n: Option<usize>| Budget {
        max_merges: if by_vocab { None } else { n },
        max_new: if by_vocab { n } else { None },
        min_count,
    };

    let (merges, stages) = if variant == Variant::Hierarchical {
        // Stage 1: within (frame, scale) segments, deduplicated with multiplicities.
        let mut segs: hash::FastMap<Vec<u32>, u32> = hash::FastMap::default();
        let mut seqs = Vec::with_capacity(multi.len());
        let mut starts = Vec::with_capacity(multi.len());
        for item in multi {
            let (mut seq, mut seg) = (Vec::new(), Vec::new());
            base.scales_to_base(item, &mut seq, Some(&mut seg));
            let mut i = 0;
            while i < seq.len() {
                let mut j = i + 1;
                while j < seq.len() && !seg[j] {
                    j += 1;
                }
                if j - i >= 2 {
                    *segs.entry(seq[i..j].to_vec()).or_insert(0) += 1;
                }
                i = j;
            }
            seqs.push(seq);
            starts.push(seg);
        }
        let mut words: Vec<(Vec<u32>, u32)> = segs.into_iter().collect();
        words.sort_unstable();
        let (w, wt): (Vec<Vec<u32>>, Vec<u32>) = words.into_iter().unzip();
        let stage1_total = cfg.scale_merges.or(total.map(|t| t / 2)).map(|s| total.map_or(s, |t| s.min(t)));
        let mut learner = Learner::new(&w, Some(&wt))?;
        let (m1, new1) = learn(&mut learner, &mut table, budget(stage1_total));
        drop(learner);
        // Stage 2: whole sequences after the per-scale merges.
        let ranks = Ranks::new(&m1, 0);
        let mut sc = Scratch::default();
        for (seq, seg) in seqs.iter_mut().zip(&starts) {
            encoder::apply(seq, &ranks, Some(seg), &mut sc);
        }
        let used = if by_vocab { new1 } else { m1.len() };
        let mut learner = Learner::new(&seqs, None)?;
        let (m2, _) = learn(&mut learner, &mut table, budget(total.map(|t| t.saturating_sub(used))));
        let stages = vec![m1.len(), m2.len()];
        let mut all = m1;
        all.extend(m2);
        (all, stages)
    } else {
        let mut seqs: Vec<Vec<u32>> = Vec::with_capacity(streams.len() + multi.len());
        for s in streams {
            let mut v = Vec::with_capacity(s.len());
            base.stream_to_base(s, &mut v);
            seqs.push(v);
        }
        for item in multi {
            let mut v = Vec::new();
            base.scales_to_base(item, &mut v, None);
            seqs.push(v);
        }
        let mut learner = Learner::new(&seqs, None)?;
        let (m, _) = learn(&mut learner, &mut table, budget(total));
        let n = m.len();
        (m, vec![n])
    };
    BpeModel::from_parts(variant, base, merges, stages)
}
