//! The learned model: encoding, decoding, JSON and statistics.

use serde::{Deserialize, Serialize};

use super::base::{check_scales, check_stream, BaseVocab, Layout};
use super::encoder::{self, Ranks, Scratch};
use super::error::{BpeError, Result};
use super::trainer::MergeRec;
use super::{Corpus, Variant, MAX_MODEL_TOKENS, MAX_SYMBOL_TOKENS};

/// The `format` field of a model file.
pub const FORMAT_NAME: &str = "audiotok-bpe";
/// The model file version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A learned merge vocabulary (see the [module docs](super)).
#[derive(Debug, Clone)]
pub struct BpeModel {
    variant: Variant,
    base: BaseVocab,
    merges: Vec<MergeRec>,
    /// Merges per stage (two for `hierarchical`: per-scale, cross-scale; one otherwise).
    stages: Vec<usize>,
    vocab_size: u32,
    ranks: Vec<Ranks>,
    /// Units of symbol `id` are `units[unit_off[id]..unit_off[id + 1]]`.
    unit_off: Vec<usize>,
    units: Vec<u32>,
}

/// The model file (JSON).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    format: String,
    version: u32,
    variant: Variant,
    base: BaseFile,
    vocab_size: u32,
    tie_break: String,
    stages: Vec<StageFile>,
    /// `[left, right, id]` in rank order.
    merges: Vec<[u32; 3]>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaseFile {
    codebook_size: u32,
    /// Codes per coarsest frame of each scale; empty for single-stream variants.
    scale_ratios: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_run: Option<u32>,
    /// Number of base symbols (ids `0..size`).
    size: u32,
    id_layout: String,
    symbols: Vec<Vec<u32>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StageFile {
    name: String,
    merges: usize,
    scope: String,
}

const TIE_BREAK: &str = "highest count, then smallest (left, right) ids; equal-symbol pairs count floor(run/2)";

/// Statistics of a model, optionally over a corpus ([`BpeModel::stats`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BpeStats {
    /// The variant.
    pub variant: Variant,
    /// Number of base symbols.
    pub base_size: u32,
    /// Base plus merged symbols.
    pub vocab_size: u32,
    /// Number of merges.
    pub merges: usize,
    /// Merges per stage.
    pub stage_merges: Vec<usize>,
    /// Every merge in rank order.
    pub merge_table: Vec<MergeStat>,
    /// The (up to) ten longest merged symbols, longest first (ties: smaller id first).
    pub longest: Vec<SymbolStat>,
    /// Compression over the corpus given to [`BpeModel::stats`].
    pub compression: Option<CompressionStats>,
}

/// One merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergeStat {
    /// Rank (0 = applied first).
    pub rank: usize,
    /// Left symbol id.
    pub left: u32,
    /// Right symbol id.
    pub right: u32,
    /// Resulting symbol id.
    pub id: u32,
    /// Length of the result in base tokens.
    pub tokens: usize,
}

/// A symbol and the base tokens it stands for: codes for single-stream variants, scale-tagged codes
/// `s * codebook_size + c` in frame order for multi-scale ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymbolStat {
    /// Symbol id.
    pub id: u32,
    /// Its base tokens.
    pub tokens: Vec<u32>,
}

/// Compression over a corpus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompressionStats {
    /// Sequences (items) encoded.
    pub sequences: usize,
    /// Input tokens (all scales).
    pub base_tokens: u64,
    /// Input tokens per scale (one entry for single-stream variants).
    pub scale_tokens: Vec<u64>,
    /// Base symbols before any merge (after run-length / tuple forming).
    pub base_symbols: u64,
    /// Symbols after all merges.
    pub encoded_symbols: u64,
    /// `base_tokens / encoded_symbols`.
    pub ratio: f64,
    /// Coarsest frames (multi-scale variants; 0 otherwise).
    pub frames: u64,
    /// Encoded symbols per frame (multi-scale variants).
    pub symbols_per_frame: Option<f64>,
}

impl BpeModel {
    pub(crate) fn from_parts(
        variant: Variant,
        base: BaseVocab,
        merges: Vec<MergeRec>,
        stages: Vec<usize>,
    ) -> Result<Self> {
        let bs = base.size();
        check_expansion(&base, &merges)?;
        let mut units = Vec::new();
        let mut unit_off = vec![0usize];
        for id in 0..bs {
            base.units_of(id, &mut units);
            unit_off.push(units.len());
        }
        let mut next = bs;
        let mut exp = Vec::new();
        for (r, m) in merges.iter().enumerate() {
            if m.left >= next || m.right >= next {
                return Err(BpeError::Model(format!("merge {r} uses an undefined symbol: {m:?}")));
            }
            exp.clear();
            for s in [m.left, m.right] {
                exp.extend_from_slice(&units[unit_off[s as usize]..unit_off[s as usize + 1]]);
            }
            if m.id == next {
                units.extend_from_slice(&exp);
                unit_off.push(units.len());
                next += 1;
            } else if m.id < bs || m.id > next || units[unit_off[m.id as usize]..unit_off[m.id as usize + 1]] != exp[..]
            {
                return Err(BpeError::Model(format!("merge {r} has an inconsistent result id: {m:?}")));
            }
        }
        if stages.iter().sum::<usize>() != merges.len() || stages.len() != Self::stage_names(variant).len() {
            return Err(BpeError::Model(format!("stage sizes {stages:?} do not fit {} merges", merges.len())));
        }
        let mut ranks = Vec::new();
        let mut first = 0;
        for &n in &stages {
            ranks.push(Ranks::new(&merges[first..first + n], first as u32));
            first += n;
        }
        Ok(BpeModel { variant, base, merges, stages, vocab_size: next, ranks, unit_off, units })
    }

    fn stage_names(variant: Variant) -> &'static [(&'static str, &'static str)] {
        if variant == Variant::Hierarchical {
            &[
                ("per-scale", "within the codes of one scale of one frame"),
                ("cross-scale", "whole sequences of frames, scale-major"),
            ]
        } else {
            &[("bpe", "whole sequences")]
        }
    }

    /// The variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Codes are `0..codebook_size`.
    pub fn codebook_size(&self) -> u32 {
        self.base.codebook_size
    }

    /// Codes per coarsest frame of each scale (empty for single-stream variants).
    pub fn scale_ratios(&self) -> &[u32] {
        if self.variant.is_multi_scale() {
            &self.base.ratios
        } else {
            &[]
        }
    }

    /// Number of base symbols (ids `0..base_size`).
    pub fn base_size(&self) -> u32 {
        self.base.size()
    }

    /// Base plus merged symbols (ids `0..vocab_size`).
    pub fn vocab_size(&self) -> u32 {
        self.vocab_size
    }

    /// The merges in rank order, as `(left, right, result)` ids.
    pub fn merges(&self) -> Vec<(u32, u32, u32)> {
        self.merges.iter().map(|m| (m.left, m.right, m.id)).collect()
    }

    /// Merges per stage (per-scale then cross-scale for `hierarchical`; one stage otherwise).
    pub fn stage_merges(&self) -> &[usize] {
        &self.stages
    }

    /// The base tokens symbol `id` stands for (codes; scale-tagged codes `s*C + c` for multi-scale
    /// variants), or `None` outside the vocabulary.
    pub fn symbol_tokens(&self, id: u32) -> Option<&[u32]> {
        let i = id as usize;
        (i + 1 < self.unit_off.len()).then(|| &self.units[self.unit_off[i]..self.unit_off[i + 1]])
    }

    fn single(&self) -> Result<()> {
        if self.variant.is_multi_scale() {
            return Err(BpeError::WrongInput { variant: self.variant, expected: "per-scale streams (encode_scales)" });
        }
        Ok(())
    }

    fn multi(&self) -> Result<()> {
        if !self.variant.is_multi_scale() {
            return Err(BpeError::WrongInput { variant: self.variant, expected: "a single stream (encode)" });
        }
        Ok(())
    }

    fn merge_all(&self, seq: &mut Vec<u32>, seg: Option<&[bool]>, sc: &mut Scratch) {
        for (i, r) in self.ranks.iter().enumerate() {
            encoder::apply(seq, r, if i == 0 { seg } else { None }, sc);
        }
    }

    /// Encodes one stream (single-stream variants). Errors for tokens `>= codebook_size`.
    pub fn encode(&self, seq: &[u32]) -> Result<Vec<u32>> {
        self.single()?;
        check_stream(seq, self.base.codebook_size, 0, 0)?;
        let mut out = Vec::with_capacity(seq.len());
        self.base.stream_to_base(seq, &mut out);
        self.merge_all(&mut out, None, &mut Scratch::default());
        Ok(out)
    }

    /// Encodes one multi-scale item (one stream per scale, lengths in the ratios).
    pub fn encode_scales(&self, scales: &[Vec<u32>]) -> Result<Vec<u32>> {
        self.multi()?;
        check_scales(scales, &self.base.ratios, self.base.codebook_size, 0)?;
        let mut out = Vec::new();
        let mut seg = Vec::new();
        let hier = self.base.layout == Layout::ScaleCodes;
        self.base.scales_to_base(scales, &mut out, hier.then_some(&mut seg));
        self.merge_all(&mut out, hier.then_some(&seg[..]), &mut Scratch::default());
        Ok(out)
    }

    /// Encodes every sequence of a corpus of the model's kind.
    pub fn encode_corpus(&self, corpus: &Corpus<'_>) -> Result<Vec<Vec<u32>>> {
        match *corpus {
            Corpus::Streams(s) => s.iter().map(|x| self.encode(x)).collect(),
            Corpus::Scales(m) => m.iter().map(|x| self.encode_scales(x)).collect(),
        }
    }

    fn units(&self, ids: &[u32]) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(ids.len() * 2);
        for &id in ids {
            match self.symbol_tokens(id) {
                Some(u) => out.extend_from_slice(u),
                None => {
                    return Err(BpeError::Decode(format!(
                        "symbol {id} is outside the vocabulary (size {})",
                        self.vocab_size
                    )))
                }
            }
        }
        Ok(out)
    }

    /// Decodes symbols back to the stream (single-stream variants).
    pub fn decode(&self, ids: &[u32]) -> Result<Vec<u32>> {
        self.single()?;
        self.units(ids)
    }

    /// Decodes symbols back to per-scale streams (multi-scale variants).
    pub fn decode_scales(&self, ids: &[u32]) -> Result<Vec<Vec<u32>>> {
        self.multi()?;
        self.base.units_to_scales(&self.units(ids)?)
    }

    /// The model as pretty JSON (format [`FORMAT_NAME`], version [`FORMAT_VERSION`]).
    pub fn to_json(&self) -> Result<String> {
        let names = Self::stage_names(self.variant);
        let file = ModelFile {
            format: FORMAT_NAME.to_string(),
            version: FORMAT_VERSION,
            variant: self.variant,
            base: BaseFile {
                codebook_size: self.base.codebook_size,
                scale_ratios: self.scale_ratios().to_vec(),
                max_run: self.base.layout.has_runs().then_some(self.base.max_run),
                size: self.base.size(),
                id_layout: self.base.layout.symbol_layout().to_string(),
                symbols: self.base.table.clone(),
            },
            vocab_size: self.vocab_size,
            tie_break: TIE_BREAK.to_string(),
            stages: names
                .iter()
                .zip(&self.stages)
                .map(|(&(name, scope), &merges)| StageFile { name: name.into(), merges, scope: scope.into() })
                .collect(),
            merges: self.merges.iter().map(|m| [m.left, m.right, m.id]).collect(),
        };
        let mut s = serde_json::to_string_pretty(&file)?;
        // One merge per line rather than one number per line.
        s = compact_arrays(&s);
        s.push('\n');
        Ok(s)
    }

    /// Loads a model written by [`BpeModel::to_json`]. Another format or version is an error.
    pub fn from_json(json: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(json)?;
        let format = v.get("format").and_then(|f| f.as_str()).unwrap_or("");
        if format != FORMAT_NAME {
            return Err(BpeError::Format { found: format.to_string(), expected: FORMAT_NAME });
        }
        match v.get("version").and_then(serde_json::Value::as_u64) {
            Some(n) if n == u64::from(FORMAT_VERSION) => {}
            found => return Err(BpeError::Version { found: found.unwrap_or(0), supported: FORMAT_VERSION }),
        }
        let f: ModelFile = serde_json::from_value(v)?;
        let layout = f.variant.layout();
        let ratios = if f.variant.is_multi_scale() {
            if f.base.scale_ratios.is_empty() || f.base.scale_ratios.contains(&0) {
                return Err(BpeError::Model("a multi-scale model needs positive scale_ratios".into()));
            }
            f.base.scale_ratios.clone()
        } else {
            if !f.base.scale_ratios.is_empty() {
                return Err(BpeError::Model("a single-stream model has no scale_ratios".into()));
            }
            vec![1]
        };
        if f.base.codebook_size == 0 || u64::from(f.base.codebook_size) * ratios.len() as u64 >= u64::from(u32::MAX / 4)
        {
            return Err(BpeError::Model(format!("codebook_size {} is out of range", f.base.codebook_size)));
        }
        let max_run = match (layout.has_runs(), f.base.max_run) {
            (true, Some(r)) if r > 0 => r,
            (false, None) => 1,
            _ => return Err(BpeError::Model("max_run is required (and only allowed) for run-length variants".into())),
        };
        let mut base = BaseVocab::new(layout, f.base.codebook_size, ratios, max_run);
        base.set_table(f.base.symbols)?;
        if base.size() != f.base.size {
            return Err(BpeError::Model(format!(
                "base size {} does not match the table ({})",
                f.base.size,
                base.size()
            )));
        }
        let merges = f.merges.iter().map(|&[left, right, id]| MergeRec { left, right, id }).collect();
        let stages = f.stages.iter().map(|s| s.merges).collect();
        let model = BpeModel::from_parts(f.variant, base, merges, stages)?;
        if model.vocab_size != f.vocab_size {
            return Err(BpeError::Model(format!(
                "vocab_size {} does not match the merges ({})",
                f.vocab_size, model.vocab_size
            )));
        }
        Ok(model)
    }

    /// Merge table, longest symbols and, with a corpus, compression (base tokens / encoded symbols).
    pub fn stats(&self, corpus: Option<&Corpus<'_>>) -> Result<BpeStats> {
        let len = |id: u32| self.symbol_tokens(id).map_or(0, <[u32]>::len);
        let merge_table = self
            .merges
            .iter()
            .enumerate()
            .map(|(rank, m)| MergeStat { rank, left: m.left, right: m.right, id: m.id, tokens: len(m.id) })
            .collect();
        let mut ids: Vec<u32> = (self.base.size()..self.vocab_size).collect();
        ids.sort_by_key(|&id| (std::cmp::Reverse(len(id)), id));
        let longest = ids
            .iter()
            .take(10)
            .map(|&id| SymbolStat { id, tokens: self.symbol_tokens(id).unwrap_or(&[]).to_vec() })
            .collect();
        let compression = match corpus {
            None => None,
            Some(c) => Some(self.compression(c)?),
        };
        Ok(BpeStats {
            variant: self.variant,
            base_size: self.base.size(),
            vocab_size: self.vocab_size,
            merges: self.merges.len(),
            stage_merges: self.stages.clone(),
            merge_table,
            longest,
            compression,
        })
    }

    fn compression(&self, corpus: &Corpus<'_>) -> Result<CompressionStats> {
        let mut sc = Scratch::default();
        let nscales = if self.variant.is_multi_scale() { self.base.scales() } else { 1 };
        let mut st = CompressionStats {
            sequences: 0,
            base_tokens: 0,
            scale_tokens: vec![0; nscales],
            base_symbols: 0,
            encoded_symbols: 0,
            ratio: 0.0,
            frames: 0,
            symbols_per_frame: None,
        };
        let mut seq = Vec::new();
        let mut seg = Vec::new();
        match (*corpus, self.variant.is_multi_scale()) {
            (Corpus::Streams(s), false) => {
                for (i, x) in s.iter().enumerate() {
                    check_stream(x, self.base.codebook_size, i, 0)?;
                    seq.clear();
                    self.base.stream_to_base(x, &mut seq);
                    st.base_symbols += seq.len() as u64;
                    self.merge_all(&mut seq, None, &mut sc);
                    st.encoded_symbols += seq.len() as u64;
                    st.scale_tokens[0] += x.len() as u64;
                }
                st.sequences = s.len();
            }
            (Corpus::Scales(m), true) => {
                let hier = self.base.layout == Layout::ScaleCodes;
                for (i, x) in m.iter().enumerate() {
                    st.frames += check_scales(x, &self.base.ratios, self.base.codebook_size, i)? as u64;
                    seq.clear();
                    seg.clear();
                    self.base.scales_to_base(x, &mut seq, hier.then_some(&mut seg));
                    st.base_symbols += seq.len() as u64;
                    self.merge_all(&mut seq, hier.then_some(&seg[..]), &mut sc);
                    st.encoded_symbols += seq.len() as u64;
                    for (t, v) in st.scale_tokens.iter_mut().zip(x) {
                        *t += v.len() as u64;
                    }
                }
                st.sequences = m.len();
                if st.frames > 0 {
                    st.symbols_per_frame = Some(st.encoded_symbols as f64 / st.frames as f64);
                }
            }
            (_, multi) => {
                return Err(BpeError::WrongInput {
                    variant: self.variant,
                    expected: if multi {
                        "per-scale streams (Corpus::Scales)"
                    } else {
                        "single streams (Corpus::Streams)"
                    },
                })
            }
        }
        st.base_tokens = st.scale_tokens.iter().sum();
        if st.encoded_symbols > 0 {
            st.ratio = st.base_tokens as f64 / st.encoded_symbols as f64;
        }
        Ok(st)
    }
}

/// Refuses a model whose symbols would expand beyond [`MAX_SYMBOL_TOKENS`] base tokens each or
/// [`MAX_MODEL_TOKENS`] in all, from lengths computed without expanding anything (a merge's
/// length is the sum of its parts'), so a small file cannot make loading take unbounded memory.
fn check_expansion(base: &BaseVocab, merges: &[MergeRec]) -> Result<()> {
    let over = |what: String, n: u64| {
        BpeError::Model(format!("{what} for {n} base tokens, above the limit of {MAX_SYMBOL_TOKENS}"))
    };
    let mut len: Vec<u64> = Vec::with_capacity(base.size() as usize + merges.len());
    let mut total = 0u64;
    for id in 0..base.size() {
        let n = base.units_len(id);
        if n > MAX_SYMBOL_TOKENS as u64 {
            return Err(over(format!("base symbol {id} stands"), n));
        }
        total += n;
        len.push(n);
    }
    for (r, m) in merges.iter().enumerate() {
        let part = |s: u32| len.get(s as usize).copied();
        let (Some(a), Some(b)) = (part(m.left), part(m.right)) else {
            return Err(BpeError::Model(format!("merge {r} uses an undefined symbol: {m:?}")));
        };
        let n = a + b;
        if n > MAX_SYMBOL_TOKENS as u64 {
            return Err(over(format!("merge {r} makes symbol {} stand", m.id), n));
        }
        if m.id as usize == len.len() {
            total += n;
            len.push(n);
        }
        if total > MAX_MODEL_TOKENS as u64 {
            return Err(BpeError::Model(format!(
                "the symbols expand to more than {MAX_MODEL_TOKENS} base tokens in all (at merge {r})"
            )));
        }
    }
    Ok(())
}

/// Puts arrays of numbers (pretty-printed one number per line by serde_json) on one line.
fn compact_arrays(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut lines = s.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_end();
        if t.ends_with('[') {
            // Collect following lines while they are numbers.
            let mut items = Vec::new();
            let mut close = None;
            for l in lines.clone() {
                let lt = l.trim();
                let num = lt.trim_end_matches(',');
                if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) {
                    items.push(num.to_string());
                } else if lt.starts_with(']') && !items.is_empty() {
                    close = Some((lt.to_string(), items.len() + 1));
                    break;
                } else {
                    break;
                }
            }
            if let Some((end, consumed)) = close {
                out.push_str(t);
                out.push_str(&items.join(", "));
                out.push_str(&end);
                out.push('\n');
                for _ in 0..consumed {
                    lines.next();
                }
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out.pop();
    out
}
