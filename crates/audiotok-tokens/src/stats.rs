//! Token statistics, exact and streaming: per scale and for the time-interleaved stream.
//!
//! [`Analyzer`] takes [`TokenSequence`]s one at a time ([`Analyzer::add`], or a single-stream
//! sequence piece by piece with [`Analyzer::add_piece`]) and keeps, per stream,
//! the unigram counts, run lengths and n-gram counts for `n = 2..=max_n` (default 7); nothing of
//! the sequences themselves. [`Analyzer::finish`] gives a [`Report`].
//!
//! # Definitions (per stream)
//!
//! Counts never cross sequence boundaries: an n-gram, a run or a repetition lies within one
//! sequence (one text line, one `.npy` file, one audio file of a store).
//!
//! - `entropy_bits` = `-sum p log2 p` over the unigram distribution; `perplexity` = `2^entropy`.
//! - `gini`: Gini coefficient of the counts of the observed tokens,
//!   `sum_i (2i - V - 1) x_i / (V sum x)` with `x` ascending, `i = 1..V`; 0 when every observed
//!   token is equally frequent, towards 1 when a few dominate.
//! - `utilisation` = observed vocabulary `V` / codebook size (when the size is known).
//! - `top_k_coverage[K]`: share of all tokens taken by the `K` most frequent ones (K = 1, 10,
//!   100, 1000).
//! - `ngrams[n]`: total n-grams (`sum max(0, len - n + 1)` over sequences), unique n-grams,
//!   `diversity` = unique / total, `top10_coverage` = the 10 most frequent n-grams' share.
//! - `bigram_diversity` = unique bigrams / `V^2`; `transition_sparsity` = 1 - unique bigrams / `V^2`
//!   (the share of possible transitions between observed tokens never seen).
//! - `repetition_rate`: share of positions (after the first of each sequence) equal to the previous
//!   token; runs are maximal blocks of one token; `mean_run_length` = tokens / runs.
//!
//! # Exactness and hashing
//!
//! Unigram and bigram counts are exact (a bigram's key is a bijective 64-bit mix of the pair).
//! N-grams for `n >= 3` are hashed into `u64` keys by chaining that mixer over the tokens; two
//! different n-grams share a key with probability about `2^-64` per pair, so over `m` distinct
//! n-grams the chance of any collision is about `m^2 / 2^65` (`2.7e-4` for `m = 10^8`). Keys are
//! buffered, then partition-sorted and merged into a sorted table of distinct keys with their
//! counts, all orders in parallel: no hash-map probing, only sequential memory traffic.
//!
//! # Memory
//!
//! A table costs 16 bytes per distinct n-gram per order, and high-entropy codes have nearly as
//! many distinct 4- to 7-grams as tokens (100M Zipf-distributed codes at `max_n = 7`: 4.6 GB held in
//! memory, see BENCHMARKS.md).
//! So memory is bounded ([`AnalyzerOptions::memory_limit`], default 2 GiB): buffers take at most
//! an eighth of the limit and the tables half; before a flush could pass that, the largest tables
//! are written to anonymous temporary files as sorted runs (delta-coded varints, about 7 bytes
//! per entry) and freed; runs are merged by levels (four into one) so that few stay open, and
//! [`Analyzer::finish`] merges each order's runs in one streaming pass.
//! The figures are identical with or without spilling; [`Report::counting`] says what was
//! spilled. Long sequences are fed a chunk of positions at a time, so one huge file cannot
//! overrun the buffers either; and a single-stream sequence can be added in pieces
//! ([`Analyzer::add_piece`]: runs and n-gram windows continue across pieces, the figures are
//! identical), so that a text line need never be held whole.
//!
//! # Recommendation
//!
//! [`Report::recommendation`] applies the bands (Gini > 0.8 high skew, 0.6-0.8 moderate,
//! < 0.6 low; transition sparsity > 0.95 very sparse, 0.8-0.95 moderate, < 0.8 dense) plus the
//! repetition rate and n-gram diversity, and names the BPE variant to try first (see
//! [`recommend`]).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::input::TokenSequence;

mod counter;

use counter::{CounterSet, SpillError, Tally};

/// N-gram orders counted for `max_n`: 2..=max_n, and bigrams even when `max_n` is 1 (the
/// transition figures need them).
fn counted_orders(max_n: usize) -> usize {
    max_n.max(2) - 1
}

/// Start positions whose n-gram keys are buffered between two checks of the memory limit.
const POSITIONS_PER_CHECK: usize = 1 << 16;

/// Default memory limit of the n-gram tables and buffers (2 GiB).
pub const DEFAULT_MEMORY_LIMIT: u64 = 2 << 30;

/// The K of `top_k_coverage`.
pub const TOP_K: [usize; 4] = [1, 10, 100, 1000];

/// Largest n-gram order counted.
pub const MAX_N: usize = 7;

/// Dense unigram counts up to this id; larger ids go to a map.
const DENSE_LIMIT: u32 = 1 << 22;

/// Run lengths up to this go to a vector; longer ones to a map.
const RUN_DENSE: usize = 4096;

/// The murmur3 64-bit finaliser (a bijection on `u64`).
#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Extends an n-gram key by one token.
#[inline]
fn chain(h: u64, t: u32) -> u64 {
    fmix64(h ^ (u64::from(t) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Pushes the keys of the n-grams starting at `w[0]` of orders 2 to `orders + 1` (`w` holds at
/// least `orders + 1` tokens).
#[inline]
fn push_keys(w: &[u32], orders: usize, counters: &mut [counter::KeyCounter]) {
    let mut h = fmix64((u64::from(w[0]) << 32) | u64::from(w[1]));
    counters[0].buf.push(h);
    for j in 1..orders {
        h = chain(h, w[j + 1]);
        counters[j].buf.push(h);
    }
}

/// Running counts of one stream.
#[derive(Clone)]
struct StreamAcc {
    sequences: u64,
    tokens: u64,
    dense: Vec<u64>,
    sparse: HashMap<u32, u64>,
    runs: u64,
    repeats: u64,
    run_dense: Vec<u64>,
    run_sparse: BTreeMap<u64, u64>,
    /// Counter `ngram_base + n - 2` of the analyzer's [`CounterSet`] counts the n-grams,
    /// `n = 2..=max_n`.
    ngram_base: usize,
    orders: usize,
    ngram_totals: Vec<u64>,
    /// Tokens of the sequence being added piece by piece (before the current piece).
    open_len: u64,
    /// The open run: its token and length (0: none).
    run_value: u32,
    run_len: u64,
    /// The last `tail_len` (at most `orders`) tokens of the open sequence: the start positions
    /// whose n-grams are not yet counted.
    tail: [u32; MAX_N - 1],
    tail_len: usize,
}

impl StreamAcc {
    fn new(max_n: usize, ngram_base: usize) -> Self {
        StreamAcc {
            sequences: 0,
            tokens: 0,
            dense: Vec::new(),
            sparse: HashMap::new(),
            runs: 0,
            repeats: 0,
            run_dense: Vec::new(),
            run_sparse: BTreeMap::new(),
            ngram_base,
            orders: counted_orders(max_n),
            ngram_totals: vec![0; max_n.saturating_sub(1)],
            open_len: 0,
            run_value: 0,
            run_len: 0,
            tail: [0; MAX_N - 1],
            tail_len: 0,
        }
    }

    /// Adds a whole sequence: the one-piece case of [`StreamAcc::piece`].
    fn add(&mut self, s: &[u32], set: &mut CounterSet) -> Result<(), SpillError> {
        self.piece(s, true, set)
    }

    /// Adds the next piece of the current sequence (`last`: the piece that ends it; pieces may be
    /// empty). Runs and n-gram windows continue across pieces: a start position's n-grams are
    /// counted once its longest window is complete (`orders` more tokens), the last `orders`
    /// positions of the sequence when it ends; per-sequence figures are counted at the end.
    fn piece(&mut self, s: &[u32], last: bool, set: &mut CounterSet) -> Result<(), SpillError> {
        self.tokens += s.len() as u64;
        for &t in s {
            if t < DENSE_LIMIT {
                let i = t as usize;
                if i >= self.dense.len() {
                    self.dense.resize((i + 1).next_power_of_two(), 0);
                }
                self.dense[i] += 1;
            } else {
                *self.sparse.entry(t).or_insert(0) += 1;
            }
        }
        // Runs: the open run (value, length) continues into the piece.
        let (mut value, mut len) = (self.run_value, self.run_len);
        for &t in s {
            if len > 0 && t == value {
                len += 1;
            } else {
                if len > 0 {
                    self.close_run(len);
                }
                (value, len) = (t, 1);
            }
        }
        if last && len > 0 {
            self.close_run(len);
            len = 0;
        }
        (self.run_value, self.run_len) = (value, len);
        // N-grams: per start position, the key of the bigram (exact: a bijection of the pair),
        // then each longer order's key chained from the shorter one.
        let orders = self.orders;
        // Start positions of the earlier pieces still to count (the tail), with the first tokens
        // of this piece after them.
        let t = self.tail_len;
        let mut stitch = [0u32; 2 * (MAX_N - 1)];
        let take = s.len().min(orders);
        stitch[..t].copy_from_slice(&self.tail[..t]);
        stitch[t..t + take].copy_from_slice(&s[..take]);
        let n = t + take;
        if t > 0 {
            let counters = &mut set.counters[self.ngram_base..self.ngram_base + orders];
            for i in 0..t {
                let after = n - i - 1;
                if after == 0 || (!last && after < orders) {
                    break;
                }
                push_keys(&stitch[i..n], orders.min(after), counters);
            }
            set.maybe_flush()?;
        }
        // This piece's start positions whose windows lie within it (all of them in the last
        // piece), a chunk of positions at a time, so that the buffers stay within the memory
        // limit whatever a sequence's length.
        let starts = if last { s.len().saturating_sub(1) } else { s.len().saturating_sub(orders) };
        let mut from = 0;
        while from < starts {
            let to = (from + POSITIONS_PER_CHECK).min(starts);
            let counters = &mut set.counters[self.ngram_base..self.ngram_base + orders];
            for i in from..to {
                push_keys(&s[i..], orders.min(s.len() - i - 1), counters);
            }
            set.maybe_flush()?;
            from = to;
        }
        if last {
            let len = self.open_len + s.len() as u64;
            if len > 0 {
                self.sequences += 1;
                for (j, total) in self.ngram_totals.iter_mut().enumerate() {
                    *total += (len + 1).saturating_sub(j as u64 + 2);
                }
            }
            self.open_len = 0;
            self.tail_len = 0;
        } else {
            self.open_len += s.len() as u64;
            // The new tail: the last `orders` tokens of the sequence so far.
            let keep = if s.len() >= orders { &s[s.len() - orders..] } else { &stitch[n - n.min(orders)..n] };
            self.tail[..keep.len()].copy_from_slice(keep);
            self.tail_len = keep.len();
        }
        Ok(())
    }

    /// Counts a maximal run of `len` tokens.
    fn close_run(&mut self, len: u64) {
        self.runs += 1;
        self.repeats += len - 1;
        if len < RUN_DENSE as u64 {
            let l = len as usize;
            if l >= self.run_dense.len() {
                self.run_dense.resize(l + 1, 0);
            }
            self.run_dense[l] += 1;
        } else {
            *self.run_sparse.entry(len).or_insert(0) += 1;
        }
    }

    /// The report; `tallies` are this stream's n-gram counters' (orders 2..=max_n).
    fn report(&self, name: String, codebook_size: Option<u32>, tallies: &[Tally]) -> StreamReport {
        let mut counts: Vec<(u32, u64)> = self
            .dense
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(t, &c)| (t as u32, c))
            .chain(self.sparse.iter().map(|(&t, &c)| (t, c)))
            .collect();
        let total = self.tokens as f64;
        let v = counts.len() as u64;
        let entropy = if self.tokens == 0 {
            0.0
        } else {
            -counts
                .iter()
                .map(|&(_, c)| {
                    let p = c as f64 / total;
                    p * p.log2()
                })
                .sum::<f64>()
        };
        // Rank order: count descending, then id ascending.
        counts.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let gini = {
            // Ascending order is the reverse of the rank order.
            let n = counts.len() as f64;
            let sum: f64 = counts.iter().map(|&(_, c)| c as f64).sum();
            if counts.is_empty() || sum == 0.0 {
                0.0
            } else {
                let num: f64 = counts
                    .iter()
                    .rev()
                    .enumerate()
                    .map(|(i, &(_, c))| (2.0 * (i as f64 + 1.0) - n - 1.0) * c as f64)
                    .sum();
                num / (n * sum)
            }
        };
        let coverage = |k: usize| -> f64 {
            if self.tokens == 0 {
                return 0.0;
            }
            counts.iter().take(k).map(|&(_, c)| c).sum::<u64>() as f64 / total
        };
        let mut ngrams = vec![NgramStat {
            n: 1,
            total: self.tokens,
            unique: v,
            diversity: ratio(v, self.tokens),
            top10_coverage: coverage(10),
        }];
        // Bigrams are always counted (for the transition figures); n-grams are reported to max_n.
        for (j, (tally, &t)) in tallies.iter().zip(&self.ngram_totals).enumerate() {
            let (unique, top) = (tally.distinct, tally.top10);
            ngrams.push(NgramStat {
                n: j + 2,
                total: t,
                unique,
                diversity: ratio(unique, t),
                top10_coverage: ratio(top, t),
            });
        }
        let unique_bigrams = tallies.first().map_or(0, |t| t.distinct);
        let v2 = (v as f64) * (v as f64);
        let bigram_diversity = if v2 > 0.0 { unique_bigrams as f64 / v2 } else { 0.0 };
        let mut run_hist: Vec<(u64, u64)> = self
            .run_dense
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(l, &c)| (l as u64, c))
            .chain(self.run_sparse.iter().map(|(&l, &c)| (l, c)))
            .collect();
        run_hist.sort_unstable();
        StreamReport {
            name,
            sequences: self.sequences,
            total_tokens: self.tokens,
            unique_tokens: v,
            codebook_size,
            utilisation: codebook_size.map(|c| v as f64 / f64::from(c)),
            entropy_bits: entropy,
            perplexity: entropy.exp2(),
            gini,
            top_k_coverage: TOP_K.iter().map(|&k| (k, coverage(k))).collect(),
            ngrams,
            unique_bigrams,
            bigram_diversity,
            transition_sparsity: if v2 > 0.0 { 1.0 - bigram_diversity } else { 0.0 },
            repetition_rate: ratio(self.repeats, self.tokens - self.sequences),
            runs: self.runs,
            mean_run_length: ratio(self.tokens, self.runs),
            max_run_length: run_hist.last().map_or(0, |&(l, _)| l),
            run_length_histogram: run_hist,
            rank_frequency: counts.iter().map(|&(_, c)| c).collect(),
            most_common: counts.iter().take(20).copied().collect(),
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Statistics of n-grams of one order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NgramStat {
    /// The order.
    pub n: usize,
    /// Number of n-gram positions.
    pub total: u64,
    /// Distinct n-grams.
    pub unique: u64,
    /// `unique / total`.
    pub diversity: f64,
    /// Share of the 10 most frequent n-grams.
    pub top10_coverage: f64,
}

/// Statistics of one stream (a scale, a codebook, or the interleaved stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamReport {
    /// `scale 0`, ..., or `interleaved`.
    pub name: String,
    /// Non-empty sequences.
    pub sequences: u64,
    /// Tokens.
    pub total_tokens: u64,
    /// Distinct tokens (the observed vocabulary `V`).
    pub unique_tokens: u64,
    /// Declared codebook size.
    pub codebook_size: Option<u32>,
    /// `V / codebook_size`.
    pub utilisation: Option<f64>,
    /// Unigram entropy in bits.
    pub entropy_bits: f64,
    /// `2^entropy_bits`.
    pub perplexity: f64,
    /// Gini coefficient of the observed tokens' counts.
    pub gini: f64,
    /// `(K, share of the K most frequent tokens)` for K in [`TOP_K`].
    pub top_k_coverage: Vec<(usize, f64)>,
    /// Orders 1 to `max_n`.
    pub ngrams: Vec<NgramStat>,
    /// Distinct bigrams.
    pub unique_bigrams: u64,
    /// Distinct bigrams / `V^2`.
    pub bigram_diversity: f64,
    /// `1 - distinct bigrams / V^2`.
    pub transition_sparsity: f64,
    /// Share of positions (after each sequence's first) equal to the previous token.
    pub repetition_rate: f64,
    /// Number of maximal runs.
    pub runs: u64,
    /// Tokens / runs.
    pub mean_run_length: f64,
    /// Longest run.
    pub max_run_length: u64,
    /// `(run length, number of runs)`, ascending by length.
    pub run_length_histogram: Vec<(u64, u64)>,
    /// Token counts in rank order (descending), for the Zipf plot.
    #[serde(skip)]
    pub rank_frequency: Vec<u64>,
    /// The 20 most frequent tokens as `(token, count)`.
    pub most_common: Vec<(u32, u64)>,
}

/// The result of [`Analyzer::finish`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Sequences read.
    pub sequences: u64,
    /// Number of scales (or codebooks) per sequence.
    pub num_scales: usize,
    /// Codes per coarsest frame of each scale (when every sequence agreed).
    pub scale_ratios: Option<Vec<u32>>,
    /// One report per scale, in order.
    pub scales: Vec<StreamReport>,
    /// The time-interleaved stream (only with more than one scale).
    pub interleaved: Option<StreamReport>,
    /// The recommendation in plain words.
    pub recommendation: Recommendation,
    /// How the n-grams were counted: the memory limit and what was spilled to disk.
    #[serde(default)]
    pub counting: Counting,
}

/// How the n-grams were counted (the figures do not depend on it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counting {
    /// The memory limit in bytes (`None`: unlimited).
    pub memory_limit: Option<u64>,
    /// Sorted runs of counts written to temporary files.
    pub spilled_runs: u64,
    /// Bytes written to them (merges of runs into longer runs included).
    pub spilled_bytes: u64,
}

/// A recommendation and the figures behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The BPE variant to try first (`plain`, `rl`, `cross-scale`, ...).
    pub variant: String,
    /// The explanation, one sentence per line.
    pub text: Vec<String>,
}

/// Options of an [`Analyzer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzerOptions {
    /// Count n-grams up to this order (1 to [`MAX_N`], default 7).
    pub max_n: usize,
    /// Codebook size per scale when known (one value applies to every scale).
    pub codebook_size: Option<u32>,
    /// Only these scales (default: all); the interleaved stream is computed only with all scales.
    pub scales: Option<Vec<usize>>,
    /// Memory for counting n-grams, in bytes (default [`DEFAULT_MEMORY_LIMIT`]; `None`: no
    /// limit). Past it, count tables are spilled to temporary files in `spill_dir` as sorted
    /// runs and merged at the end; the figures are the same either way.
    pub memory_limit: Option<u64>,
    /// Directory of the spilled runs (default: the system's temporary directory). The files are
    /// anonymous: nothing is left behind, even when the process is killed.
    pub spill_dir: Option<std::path::PathBuf>,
}

impl Default for AnalyzerOptions {
    fn default() -> Self {
        AnalyzerOptions {
            max_n: MAX_N,
            codebook_size: None,
            scales: None,
            memory_limit: Some(DEFAULT_MEMORY_LIMIT),
            spill_dir: None,
        }
    }
}

/// Errors of the analyzer.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// Sequences with different numbers of scales, or a selected scale that does not exist.
    #[error("{source_name}: {msg}")]
    Scales {
        /// The sequence's source.
        source_name: String,
        /// What is wrong.
        msg: String,
    },
    /// Nothing was added.
    #[error("no tokens to analyse")]
    Empty,
    /// Spilling n-gram counts to disk (or reading them back) failed.
    #[error("{}: spilling n-gram counts: {source}", dir.display())]
    Spill {
        /// The spill directory.
        dir: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl From<SpillError> for StatsError {
    fn from(e: SpillError) -> Self {
        StatsError::Spill { dir: e.dir, source: e.source }
    }
}

/// Streaming statistics over token sequences (see the [module docs](self)).
pub struct Analyzer {
    opts: AnalyzerOptions,
    num_scales: Option<usize>,
    ratios: Option<Option<Vec<u32>>>,
    scales: Vec<StreamAcc>,
    interleaved: Option<StreamAcc>,
    sequences: u64,
    counters: Option<CounterSet>,
    /// The source of the sequence being added piece by piece.
    open: Option<String>,
}

impl Analyzer {
    /// A new analyzer (`max_n` is clamped to `1..=7`).
    pub fn new(mut opts: AnalyzerOptions) -> Self {
        opts.max_n = opts.max_n.clamp(1, MAX_N);
        Analyzer {
            opts,
            num_scales: None,
            ratios: None,
            scales: Vec::new(),
            interleaved: None,
            sequences: 0,
            counters: None,
            open: None,
        }
    }

    /// Adds one sequence. Every sequence must have the same number of scales. The interleaved
    /// stream takes sequences whose scale lengths are whole multiples of scale 0's in the same
    /// ratios as the first; when one disagrees, the interleaved report is dropped (and the
    /// `scale_ratios` of the report is `None`).
    pub fn add(&mut self, seq: &TokenSequence) -> Result<(), StatsError> {
        if let Some(open) = &self.open {
            return Err(StatsError::Scales {
                source_name: seq.source.clone(),
                msg: format!("a whole sequence added while {open} is still open (add_piece without last)"),
            });
        }
        self.scales_of(&seq.source, seq.scales.len())?;
        self.sequences += 1;
        let Some(set) = self.counters.as_mut() else {
            return Ok(());
        };
        for (i, (acc, s)) in self.scales.iter_mut().zip(&seq.scales).enumerate() {
            if self.opts.scales.as_ref().is_none_or(|sel| sel.contains(&i)) {
                acc.add(s, set)?;
            }
        }
        if self.interleaved.is_some() {
            let r = seq.ratios();
            let agree = match &self.ratios {
                None => {
                    self.ratios = Some(r.clone());
                    r.is_some()
                }
                Some(first) => r.is_some() && *first == r,
            };
            match (agree, seq.interleaved()) {
                (true, Some(stream)) => {
                    if let Some(acc) = &mut self.interleaved {
                        acc.add(&stream, set)?;
                    }
                }
                _ => {
                    self.interleaved = None;
                    self.ratios = Some(None);
                }
            }
        }
        Ok(())
    }

    /// Adds the next piece of a single-stream sequence (a text line read in pieces, so that one
    /// huge line costs bounded memory); `last` ends the sequence (pieces may be empty). The
    /// figures are identical to [`Analyzer::add`] of the whole sequence: runs and n-grams continue
    /// across pieces, and the sequence counts when it ends.
    pub fn add_piece(&mut self, source: &str, piece: &[u32], last: bool) -> Result<(), StatsError> {
        self.scales_of(source, 1)?;
        if last {
            self.open = None;
            self.sequences += 1;
        } else if self.open.is_none() {
            self.open = Some(source.to_string());
        }
        let Some(set) = self.counters.as_mut() else {
            return Ok(());
        };
        if self.opts.scales.as_ref().is_none_or(|sel| sel.contains(&0)) {
            if let Some(acc) = self.scales.first_mut() {
                acc.piece(piece, last, set)?;
            }
        }
        Ok(())
    }

    /// Sets up the streams for `k` scales at the first sequence; checks `k` at the others.
    fn scales_of(&mut self, source: &str, k: usize) -> Result<(), StatsError> {
        match self.num_scales {
            None => {
                if let Some(bad) = self.opts.scales.iter().flatten().find(|&&s| s >= k) {
                    return Err(StatsError::Scales {
                        source_name: source.to_string(),
                        msg: format!("scale {bad} requested, the input has {k} scale(s)"),
                    });
                }
                self.num_scales = Some(k);
                let orders = counted_orders(self.opts.max_n);
                self.scales = (0..k).map(|i| StreamAcc::new(self.opts.max_n, i * orders)).collect();
                let streams = if k > 1 && self.opts.scales.is_none() {
                    self.interleaved = Some(StreamAcc::new(self.opts.max_n, k * orders));
                    k + 1
                } else {
                    k
                };
                let dir = self.opts.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
                self.counters = Some(CounterSet::new(streams * orders, self.opts.memory_limit, dir));
                Ok(())
            }
            Some(n) if n != k => Err(StatsError::Scales {
                source_name: source.to_string(),
                msg: format!("{k} scale(s), earlier sequences had {n}"),
            }),
            Some(_) => Ok(()),
        }
    }

    /// The report (with the recommendation). A sequence still open (pieces without the last) is
    /// ended first.
    pub fn finish(mut self) -> Result<Report, StatsError> {
        if let Some(open) = self.open.clone() {
            self.add_piece(&open, &[], true)?;
        }
        if self.scales.iter().all(|a| a.tokens == 0) {
            return Err(StatsError::Empty);
        }
        let cb = self.opts.codebook_size;
        let sel = self.opts.scales.clone();
        let (tallies, spilled) = match self.counters.as_mut() {
            Some(set) => (set.finish()?, set.spilled),
            None => (Vec::new(), Default::default()),
        };
        let orders = counted_orders(self.opts.max_n);
        let of = |a: &StreamAcc| tallies.get(a.ngram_base..a.ngram_base + orders).unwrap_or(&[]);
        let scales: Vec<StreamReport> = self
            .scales
            .iter()
            .enumerate()
            .filter(|(i, _)| sel.as_ref().is_none_or(|sel| sel.contains(i)))
            .map(|(i, a)| a.report(format!("scale {i}"), cb, of(a)))
            .collect();
        let interleaved = self.interleaved.as_ref().map(|a| a.report("interleaved".into(), cb, of(a)));
        let num_scales = self.num_scales.unwrap_or(0);
        let recommendation = recommend(&scales, interleaved.as_ref(), num_scales);
        Ok(Report {
            sequences: self.sequences,
            num_scales,
            scale_ratios: self.ratios.flatten().filter(|_| num_scales > 1),
            scales,
            interleaved,
            recommendation,
            counting: Counting {
                memory_limit: self.opts.memory_limit,
                spilled_runs: spilled.runs,
                spilled_bytes: spilled.bytes,
            },
        })
    }
}

/// Band of the Gini coefficient (the thresholds).
pub fn gini_band(g: f64) -> &'static str {
    if g > 0.8 {
        "high skew (BPE very effective)"
    } else if g >= 0.6 {
        "moderate skew"
    } else {
        "low skew"
    }
}

/// Band of the transition sparsity.
pub fn sparsity_band(s: f64) -> &'static str {
    if s > 0.95 {
        "very sparse"
    } else if s >= 0.8 {
        "moderately sparse"
    } else {
        "dense"
    }
}

/// Repetition rate at or above which run-length symbols come first.
pub const HIGH_REPETITION: f64 = 0.2;

/// The recommendation: the figures of the main stream (the interleaved one for multi-scale input,
/// else scale 0 or the single selected scale) in the bands, and the variant to try first:
///
/// - repetition rate >= [`HIGH_REPETITION`]: `rl` (`rl+cross-scale` for multi-scale input): runs
///   are cheap to fold before any merge;
/// - multi-scale input otherwise: `cross-scale` when the interleaved stream's transitions are very
///   sparse (frames recur as wholes), else `hierarchical` (merge within scales first);
/// - single stream: `plain` when the skew is at least moderate or the transitions at least
///   moderately sparse; otherwise `thresholded` (only pairs that recur often), with the warning
///   that BPE will gain little.
pub fn recommend(scales: &[StreamReport], interleaved: Option<&StreamReport>, num_scales: usize) -> Recommendation {
    let Some(main) = interleaved.or(scales.first()) else {
        return Recommendation { variant: "plain".into(), text: vec!["No tokens.".into()] };
    };
    let multi = interleaved.is_some() && num_scales > 1;
    let mut text = vec![format!(
        "{}: Gini {:.3}: {}; transition sparsity {:.3}: {}; repetition rate {:.3} (mean run {:.2}, max {}).",
        main.name,
        main.gini,
        gini_band(main.gini),
        main.transition_sparsity,
        sparsity_band(main.transition_sparsity),
        main.repetition_rate,
        main.mean_run_length,
        main.max_run_length
    )];
    if let Some(n4) = main.ngrams.iter().find(|g| g.n == 4).or(main.ngrams.last()) {
        text.push(format!(
            "{}-gram diversity {:.3} ({}): {}.",
            n4.n,
            n4.diversity,
            if n4.diversity < 0.5 { "low" } else { "high" },
            if n4.diversity < 0.5 {
                "longer patterns recur, so merges keep paying off beyond pairs"
            } else {
                "most longer patterns are unique, so expect gains mainly from short merges"
            }
        ));
    }
    let skewed = main.gini >= 0.6;
    let sparse = main.transition_sparsity >= 0.8;
    let variant = if main.repetition_rate >= HIGH_REPETITION {
        text.push(format!(
            "Repetition rate {:.3} >= {HIGH_REPETITION}: fold runs into run-length symbols before merging.",
            main.repetition_rate
        ));
        if multi {
            "rl+cross-scale"
        } else {
            "rl"
        }
    } else if multi {
        if main.transition_sparsity > 0.95 {
            text.push("Multi-scale input with very sparse transitions: whole frames recur, merge frame tuples.".into());
            "cross-scale"
        } else {
            text.push("Multi-scale input with denser transitions: merge within each scale first.".into());
            "hierarchical"
        }
    } else if skewed || sparse {
        text.push(format!(
            "{} and {} transitions: standard BPE should shorten sequences well.",
            if skewed { "Skewed frequencies" } else { "Even frequencies" },
            sparsity_band(main.transition_sparsity)
        ));
        "plain"
    } else {
        text.push("Low skew and dense transitions: BPE will gain little; merge only pairs that recur often.".into());
        "thresholded"
    };
    text.push(format!("Try --variant {variant} first."));
    Recommendation { variant: variant.into(), text }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn seq(scales: Vec<Vec<u32>>) -> TokenSequence {
        TokenSequence { source: "test".into(), scales }
    }

    fn analyse(seqs: &[TokenSequence]) -> Report {
        let mut a = Analyzer::new(AnalyzerOptions { codebook_size: Some(8), ..AnalyzerOptions::default() });
        for s in seqs {
            a.add(s).unwrap();
        }
        a.finish().unwrap()
    }

    #[test]
    fn hand_computed_single_stream() {
        // Two sequences: [1 1 1 2 2 3] and [3 1].
        let r = analyse(&[seq(vec![vec![1, 1, 1, 2, 2, 3]]), seq(vec![vec![3, 1]])]);
        let s = &r.scales[0];
        assert_eq!((s.total_tokens, s.unique_tokens, s.sequences), (8, 3, 2));
        assert_eq!(s.utilisation, Some(3.0 / 8.0));
        // Counts 1:4, 2:2, 3:2 -> p = 1/2, 1/4, 1/4 -> H = 1.5 bits exactly.
        assert_eq!(s.entropy_bits, 1.5);
        assert_eq!(s.perplexity, 2f64.powf(1.5));
        // Gini over ascending [2, 2, 4]: (-2*2 + 0*2 + 2*4) / (3 * 8) = 4/24.
        assert!((s.gini - 1.0 / 6.0).abs() < 1e-15);
        assert_eq!(s.top_k_coverage, vec![(1, 0.5), (10, 1.0), (100, 1.0), (1000, 1.0)]);
        // Runs: [1x3, 2x2, 3x1] and [3x1, 1x1]: 5 runs, repeats 2+1 = 3 of 8-2 = 6 positions.
        assert_eq!(s.runs, 5);
        assert_eq!(s.repetition_rate, 0.5);
        assert_eq!(s.mean_run_length, 8.0 / 5.0);
        assert_eq!(s.max_run_length, 3);
        assert_eq!(s.run_length_histogram, vec![(1, 3), (2, 1), (3, 1)]);
        // Bigrams: (1,1)x2 (1,2) (2,2) (2,3) | (3,1): 6 total, 5 unique.
        assert_eq!(s.ngrams[1], NgramStat { n: 2, total: 6, unique: 5, diversity: 5.0 / 6.0, top10_coverage: 1.0 });
        assert_eq!(s.unique_bigrams, 5);
        assert_eq!(s.bigram_diversity, 5.0 / 9.0);
        assert_eq!(s.transition_sparsity, 1.0 - 5.0 / 9.0);
        // Trigrams: (1,1,1) (1,1,2) (1,2,2) (2,2,3): 4, all unique; the 2-token sequence has none.
        assert_eq!((s.ngrams[2].total, s.ngrams[2].unique), (4, 4));
        // 6-grams: one; 7-grams: none.
        assert_eq!((s.ngrams[5].total, s.ngrams[5].unique), (1, 1));
        assert_eq!((s.ngrams[6].total, s.ngrams[6].unique, s.ngrams[6].diversity), (0, 0, 0.0));
        assert_eq!(s.most_common, vec![(1, 4), (2, 2), (3, 2)]);
        assert_eq!(s.rank_frequency, vec![4, 2, 2]);
        assert!(r.interleaved.is_none());
    }

    #[test]
    fn top10_coverage_and_uniform_gini() {
        // 0..12 each twice as one long sequence, then the same again: every bigram of the cycle
        // appears twice (once more across the join).
        let one: Vec<u32> = (0..12).chain(0..12).collect();
        let r = analyse(&[seq(vec![one])]);
        let s = &r.scales[0];
        assert_eq!(s.gini, 0.0);
        assert_eq!(s.entropy_bits, 12f64.log2());
        assert_eq!(s.top_k_coverage[1], (10, 20.0 / 24.0));
        // Bigrams: 23 positions, 12 distinct (11 of the cycle appearing twice, (11,0) once).
        let b = &s.ngrams[1];
        assert_eq!((b.total, b.unique), (23, 12));
        assert_eq!(b.top10_coverage, 20.0 / 23.0);
        assert_eq!(s.repetition_rate, 0.0);
    }

    #[test]
    fn interleaved_stream_of_scales() {
        // Two scales 1:2; interleaved [a0 b0 b1 a1 b2 b3].
        let r = analyse(&[seq(vec![vec![5, 5], vec![1, 1, 1, 2]])]);
        assert_eq!(r.scale_ratios, Some(vec![1, 2]));
        let i = r.interleaved.as_ref().unwrap();
        assert_eq!(i.total_tokens, 6);
        // [5 1 1 5 1 2]: runs 5,11,5,1,2 -> 5 runs, 1 repeat of 5 positions.
        assert_eq!((i.runs, i.repetition_rate), (5, 0.2));
        assert_eq!(r.scales[0].repetition_rate, 1.0);
        // Mixed ratios drop the interleaved stream.
        let r = analyse(&[seq(vec![vec![5, 5], vec![1, 1, 1, 2]]), seq(vec![vec![1], vec![1, 2, 3]])]);
        assert!(r.interleaved.is_none() && r.scale_ratios.is_none());
    }

    #[test]
    fn scale_selection_and_errors() {
        let mut a = Analyzer::new(AnalyzerOptions { scales: Some(vec![1]), ..AnalyzerOptions::default() });
        a.add(&seq(vec![vec![1, 2], vec![3, 3, 3, 3]])).unwrap();
        let e = a.add(&seq(vec![vec![1]])).unwrap_err().to_string();
        assert!(e.contains("1 scale(s), earlier sequences had 2"), "{e}");
        let r = a.finish().unwrap();
        assert_eq!(r.scales.len(), 1);
        assert_eq!(r.scales[0].name, "scale 1");
        assert_eq!(r.scales[0].repetition_rate, 1.0);
        let mut a = Analyzer::new(AnalyzerOptions { scales: Some(vec![3]), ..AnalyzerOptions::default() });
        assert!(a.add(&seq(vec![vec![1]])).is_err());
        assert!(matches!(Analyzer::new(AnalyzerOptions::default()).finish(), Err(StatsError::Empty)));
    }

    #[test]
    fn recommendation_bands_and_variants() {
        assert_eq!(gini_band(0.81), "high skew (BPE very effective)");
        assert_eq!(gini_band(0.7), "moderate skew");
        assert_eq!(gini_band(0.5), "low skew");
        assert_eq!(sparsity_band(0.96), "very sparse");
        assert_eq!(sparsity_band(0.9), "moderately sparse");
        assert_eq!(sparsity_band(0.5), "dense");
        // Long runs -> rl.
        let r = analyse(&[seq(vec![vec![1, 1, 1, 1, 2, 2, 2, 2, 3, 3]])]);
        assert_eq!(r.recommendation.variant, "rl");
        // No runs, uniform, dense (all 9 transitions of 3 tokens seen) -> thresholded.
        // No repeats, low skew, 6 of the 9 transitions seen (sparsity 1/3, dense) -> thresholded.
        let r = analyse(&[seq(vec![vec![0, 1, 2, 0, 2, 1, 0]])]);
        assert_eq!(r.scales[0].transition_sparsity, 1.0 - 6.0 / 9.0);
        assert_eq!(r.recommendation.variant, "thresholded");
        assert!(r.recommendation.text[0].contains("low skew") && r.recommendation.text[0].contains("dense"));
        // Multi-scale without runs.
        let a: Vec<u32> = (0..8).collect();
        let b: Vec<u32> = (0..16).rev().collect();
        let r = analyse(&[seq(vec![a, b])]);
        // 16 observed tokens, at most 23 distinct bigrams of 256: sparsity above 0.9, not above 0.95.
        assert_eq!(r.recommendation.variant, "hierarchical");
        assert!(r.recommendation.text.last().unwrap().starts_with("Try --variant"));
    }

    /// Analyses with a given memory limit.
    fn analyse_with(seqs: &[TokenSequence], limit: Option<u64>, dir: &std::path::Path) -> Report {
        let opts =
            AnalyzerOptions { memory_limit: limit, spill_dir: Some(dir.to_path_buf()), ..AnalyzerOptions::default() };
        let mut a = Analyzer::new(opts);
        for s in seqs {
            a.add(s).unwrap();
        }
        a.finish().unwrap()
    }

    #[test]
    fn spilling_changes_no_figure() {
        // Two scales 1:2, high-entropy codes (many distinct n-grams), and one sequence far longer
        // than the buffers (checked within a sequence).
        let mut x = 99u64;
        let mut next = |m: u64| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 33) % m) as u32
        };
        let mut seqs = Vec::new();
        for len in [300usize, 5, 1, 40000, 2000] {
            let a: Vec<u32> = (0..len).map(|_| next(50)).collect();
            let b: Vec<u32> = (0..2 * len).map(|_| if len % 2 == 0 { next(4) } else { next(5000) }).collect();
            seqs.push(seq(vec![a, b]));
        }
        let dir = tempfile::tempdir().unwrap();
        let free = analyse_with(&seqs, None, dir.path());
        assert_eq!(free.counting, Counting { memory_limit: None, spilled_runs: 0, spilled_bytes: 0 });
        let tight = analyse_with(&seqs, Some(64 << 10), dir.path());
        assert!(tight.counting.spilled_runs >= 10, "{:?}", tight.counting);
        assert_eq!(Report { counting: free.counting, ..tight.clone() }, free);
        // The default limit does not spill on this little data.
        assert_eq!(analyse_with(&seqs, Some(DEFAULT_MEMORY_LIMIT), dir.path()).counting.spilled_runs, 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn unigrams_only() {
        let opts = AnalyzerOptions { max_n: 1, ..AnalyzerOptions::default() };
        let mut a = Analyzer::new(opts);
        a.add(&seq(vec![vec![1, 2, 3, 3]])).unwrap();
        let r = a.finish().unwrap();
        let s = &r.scales[0];
        assert_eq!(s.ngrams.len(), 1);
        // Bigrams are still counted for the transition figures: (1,2) (2,3) (3,3) of 3^2.
        assert_eq!((s.total_tokens, s.unique_tokens, s.unique_bigrams), (4, 3, 3));
        assert_eq!(s.transition_sparsity, 1.0 - 3.0 / 9.0);
        assert_eq!(s.repetition_rate, 1.0 / 3.0);
    }

    #[test]
    fn spill_directory_errors_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("missing");
        let opts =
            AnalyzerOptions { memory_limit: Some(1), spill_dir: Some(gone.clone()), ..AnalyzerOptions::default() };
        let mut a = Analyzer::new(opts);
        let long: Vec<u32> = (0..100_000u32).map(|i| i.wrapping_mul(2654435761) % 100_000).collect();
        let err = a.add(&seq(vec![long])).and_then(|()| a.finish().map(|_| ())).unwrap_err();
        assert!(matches!(err, StatsError::Spill { .. }), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
    }

    /// `seqs` added whole, or each cut at `cuts` (positions taken modulo its length + 1, so
    /// repeated cuts give empty pieces) and added piece by piece.
    fn analyse_pieces(seqs: &[Vec<u32>], cuts: Option<&[usize]>, opts: &AnalyzerOptions) -> Report {
        let mut a = Analyzer::new(opts.clone());
        for s in seqs {
            match cuts {
                None => a.add(&seq(vec![s.clone()])).unwrap(),
                Some(cuts) => {
                    let mut at: Vec<usize> = cuts.iter().map(|c| c % (s.len() + 1)).collect();
                    at.sort_unstable();
                    let mut from = 0;
                    for &to in &at {
                        a.add_piece("test", &s[from..to], false).unwrap();
                        from = to;
                    }
                    a.add_piece("test", &s[from..], true).unwrap();
                }
            }
        }
        a.finish().unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Pieces of any length (0 and 1 included, sequences shorter than max_n too) give the
        /// whole sequences' report, to the byte of its JSON.
        #[test]
        fn pieces_give_the_whole_sequences_figures(
            seqs in proptest::collection::vec(proptest::collection::vec(0u32..6, 0..40), 1..6),
            cuts in proptest::collection::vec(0usize..64, 0..12),
            max_n in 1usize..=MAX_N,
            big in 0u32..2,
        ) {
            // Some ids past the dense table, as a code of a large codebook would be.
            let seqs: Vec<Vec<u32>> =
                seqs.into_iter().map(|s| s.into_iter().map(|t| if big == 1 && t == 5 { DENSE_LIMIT } else { t }).collect()).collect();
            proptest::prop_assume!(seqs.iter().any(|s| !s.is_empty()));
            let opts = AnalyzerOptions { max_n, memory_limit: None, codebook_size: Some(8), ..AnalyzerOptions::default() };
            let whole = analyse_pieces(&seqs, None, &opts);
            let pieces = analyse_pieces(&seqs, Some(&cuts), &opts);
            proptest::prop_assert_eq!(serde_json::to_string(&pieces).unwrap(), serde_json::to_string(&whole).unwrap());
            proptest::prop_assert_eq!(pieces, whole);
        }
    }

    #[test]
    fn pieces_spilled_change_no_figure() {
        let mut x = 7u64;
        let long: Vec<u32> = (0..50_000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 33) % 300) as u32
            })
            .collect();
        let seqs = vec![long, vec![1, 2], vec![3]];
        let dir = tempfile::tempdir().unwrap();
        let free = AnalyzerOptions { memory_limit: None, ..AnalyzerOptions::default() };
        let whole = analyse_pieces(&seqs, None, &free);
        let cuts: Vec<usize> = (1..60).map(|i| i * 977).collect();
        let tight = AnalyzerOptions { memory_limit: Some(64 << 10), spill_dir: Some(dir.path().to_path_buf()), ..free };
        let pieces = analyse_pieces(&seqs, Some(&cuts), &tight);
        assert!(pieces.counting.spilled_runs >= 10, "{:?}", pieces.counting);
        assert_eq!(Report { counting: whole.counting, ..pieces }, whole);
        assert_eq!((whole.sequences, whole.scales[0].sequences, whole.scales[0].total_tokens), (3, 3, 50_003));
    }

    #[test]
    fn open_piecewise_sequence_rules() {
        // A whole sequence while one is open is refused; finish ends an open one.
        let mut a = Analyzer::new(AnalyzerOptions::default());
        a.add_piece("t.txt:1", &[1, 1], false).unwrap();
        let e = a.add(&seq(vec![vec![1]])).unwrap_err().to_string();
        assert!(e.contains("t.txt:1 is still open"), "{e}");
        a.add_piece("t.txt:1", &[1, 2], false).unwrap();
        let r = a.finish().unwrap();
        assert_eq!((r.sequences, r.scales[0].total_tokens, r.scales[0].max_run_length), (1, 4, 3));
        // Pieces after a multi-scale sequence: the scale counts disagree.
        let mut a = Analyzer::new(AnalyzerOptions::default());
        a.add(&seq(vec![vec![1], vec![2, 3]])).unwrap();
        let e = a.add_piece("t.txt:1", &[1], true).unwrap_err().to_string();
        assert_eq!(e, "t.txt:1: 1 scale(s), earlier sequences had 2");
    }

    #[test]
    fn chained_keys_distinguish_order() {
        let k = |w: &[u32]| w.iter().fold(0u64, |h, &t| chain(h, t));
        assert_ne!(k(&[1, 2, 3]), k(&[3, 2, 1]));
        assert_ne!(k(&[0, 0, 0]), k(&[0, 0]));
        assert_ne!(k(&[1, 0]), k(&[0, 1]));
    }
}
