//! Base symbols: how token streams become the symbol sequences BPE runs on, and back.
//!
//! | layout | variants | fixed ids | table symbols |
//! |---|---|---|---|
//! | `Codes` | plain, thresholded | `0..C`: the codes | none |
//! | `Runs` | rl | `0..C`: a single `t` (run of 1) | `[t, n]`, `2 <= n <= max_run` |
//! | `Tuples` | cross-scale | `s*C + c`: code `c` of scale `s` alone (escape) | one frame's codes |
//! | `TupleRuns` | rl+cross-scale | as `Tuples` | one frame's codes, then a run length `n` |
//! | `ScaleCodes` | hierarchical | `s*C + c` | none |
//!
//! `C` is the codebook size. A frame is one coarsest step: `ratios[s]` codes of every scale `s`,
//! laid out scale-major (all of scale 0's codes, then scale 1's, ...). Table symbols are those seen
//! at least `min_symbol_count` times in the training corpus, sorted, numbered after the fixed ids.
//! A frame (or run) of a held-out stream that is not in the table is written with smaller runs or
//! escapes, so every valid stream is encodable.

use super::error::{BpeError, Result};
use super::hash::FastMap;

/// How base symbols are formed (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    Codes,
    Runs,
    Tuples,
    TupleRuns,
    ScaleCodes,
}

impl Layout {
    pub(crate) fn multi_scale(self) -> bool {
        matches!(self, Layout::Tuples | Layout::TupleRuns | Layout::ScaleCodes)
    }

    pub(crate) fn has_runs(self) -> bool {
        matches!(self, Layout::Runs | Layout::TupleRuns)
    }

    pub(crate) fn symbol_layout(self) -> &'static str {
        match self {
            Layout::Codes => "no table: id i is code i",
            Layout::Runs => "ids 0..C: one code; table entry [t, n] (id C + index): code t repeated n times",
            Layout::Tuples => {
                "ids 0..S*C: s*C + c is code c of scale s alone (escape); table entry (id S*C + index): the codes \
                 of one frame, scale-major"
            }
            Layout::TupleRuns => {
                "ids 0..S*C: s*C + c is code c of scale s alone (escape); table entry (id S*C + index): the codes \
                 of one frame, scale-major, then the number n of identical consecutive frames"
            }
            Layout::ScaleCodes => "no table: id s*C + c is code c of scale s; sequences are frames, scale-major",
        }
    }
}

/// The base vocabulary of a model.
#[derive(Debug, Clone)]
pub(crate) struct BaseVocab {
    pub layout: Layout,
    pub codebook_size: u32,
    /// Codes per frame, per scale (`[1]` for single-stream layouts).
    pub ratios: Vec<u32>,
    pub max_run: u32,
    pub table: Vec<Vec<u32>>,
    lookup: FastMap<Vec<u32>, u32>,
}

/// Checks a single stream's tokens.
pub(crate) fn check_stream(seq: &[u32], codebook_size: u32, sequence: usize, scale: usize) -> Result<()> {
    if let Some(position) = seq.iter().position(|&t| t >= codebook_size) {
        return Err(BpeError::TokenOutOfRange { token: seq[position], sequence, scale, position, codebook_size });
    }
    Ok(())
}

/// Checks per-scale streams against `ratios` and the codebook; returns the number of frames.
pub(crate) fn check_scales(scales: &[Vec<u32>], ratios: &[u32], codebook_size: u32, sequence: usize) -> Result<usize> {
    let bad =
        || BpeError::ScaleLengths { sequence, lengths: scales.iter().map(Vec::len).collect(), ratios: ratios.to_vec() };
    if scales.len() != ratios.len() {
        return Err(bad());
    }
    let frames = scales[0].len() / ratios[0] as usize;
    for (s, (v, &r)) in scales.iter().zip(ratios).enumerate() {
        if v.len() != frames * r as usize {
            return Err(bad());
        }
        check_stream(v, codebook_size, sequence, s)?;
    }
    Ok(frames)
}

impl BaseVocab {
    /// A vocabulary with an empty table (filled by [`BaseVocab::learn_table`] or loaded).
    pub(crate) fn new(layout: Layout, codebook_size: u32, ratios: Vec<u32>, max_run: u32) -> Self {
        BaseVocab { layout, codebook_size, ratios, max_run, table: Vec::new(), lookup: FastMap::default() }
    }

    /// Number of scales (1 for single-stream layouts).
    pub(crate) fn scales(&self) -> usize {
        self.ratios.len()
    }

    /// Codes in one frame.
    pub(crate) fn frame_len(&self) -> usize {
        self.ratios.iter().map(|&r| r as usize).sum()
    }

    /// Ids before the table.
    pub(crate) fn fixed(&self) -> u32 {
        if self.layout.multi_scale() {
            self.codebook_size * self.scales() as u32
        } else {
            self.codebook_size
        }
    }

    /// Number of base symbols.
    pub(crate) fn size(&self) -> u32 {
        self.fixed() + self.table.len() as u32
    }

    /// Sets the table (sorted, deduplicated entries) and its lookup.
    pub(crate) fn set_table(&mut self, table: Vec<Vec<u32>>) -> Result<()> {
        let width = match self.layout {
            Layout::Codes | Layout::ScaleCodes => 0,
            Layout::Runs => 2,
            Layout::Tuples => self.frame_len(),
            Layout::TupleRuns => self.frame_len() + 1,
        };
        let fixed = self.fixed();
        let mut lookup = FastMap::default();
        for (i, e) in table.iter().enumerate() {
            if width == 0 || e.len() != width {
                return Err(BpeError::Model(format!("base symbol table entry {i} has the wrong shape: {e:?}")));
            }
            let (codes, run) = if self.layout.has_runs() { (&e[..width - 1], e[width - 1]) } else { (&e[..], 1) };
            if run == 0 || run > self.max_run || (self.layout == Layout::Runs && run < 2) {
                return Err(BpeError::Model(format!("base symbol table entry {i} has run length {run}")));
            }
            if let Some(&c) = codes.iter().find(|&&c| c >= self.codebook_size) {
                return Err(BpeError::Model(format!("base symbol table entry {i} holds code {c}")));
            }
            if lookup.insert(e.clone(), fixed + i as u32).is_some() {
                return Err(BpeError::Model(format!("base symbol table entry {i} is a duplicate")));
            }
        }
        self.table = table;
        self.lookup = lookup;
        Ok(())
    }

    /// Learns the table from training input (already validated): candidates seen at least `min_count`
    /// times.
    pub(crate) fn learn_table(&mut self, streams: &[Vec<u32>], multi: &[Vec<Vec<u32>>], min_count: u64) -> Result<()> {
        let mut counts: FastMap<Vec<u32>, u64> = FastMap::default();
        let max_run = self.max_run as usize;
        match self.layout {
            Layout::Codes | Layout::ScaleCodes => {}
            Layout::Runs => {
                for seq in streams {
                    for (t, mut n) in runs(seq) {
                        while n > 0 {
                            let l = n.min(max_run);
                            if l >= 2 {
                                *counts.entry(vec![t, l as u32]).or_insert(0) += 1;
                            }
                            n -= l;
                        }
                    }
                }
            }
            Layout::Tuples | Layout::TupleRuns => {
                let mut fbuf = Vec::new();
                for item in multi {
                    let frames = frame_codes(item, &self.ratios, &mut fbuf);
                    let fl = self.frame_len();
                    let mut f = 0;
                    while f < frames {
                        let cur = &fbuf[f * fl..(f + 1) * fl];
                        let mut n = 1;
                        if self.layout == Layout::TupleRuns {
                            while f + n < frames && &fbuf[(f + n) * fl..(f + n + 1) * fl] == cur {
                                n += 1;
                            }
                            let mut left = n;
                            while left > 0 {
                                let l = left.min(max_run);
                                let mut key = cur.to_vec();
                                key.push(l as u32);
                                *counts.entry(key).or_insert(0) += 1;
                                left -= l;
                            }
                        } else {
                            *counts.entry(cur.to_vec()).or_insert(0) += 1;
                        }
                        f += n;
                    }
                }
            }
        }
        let mut table: Vec<Vec<u32>> =
            counts.into_iter().filter(|&(_, c)| c >= min_count.max(1)).map(|(k, _)| k).collect();
        table.sort_unstable();
        let fixed = u64::from(self.fixed());
        if fixed + table.len() as u64 >= u64::from(u32::MAX / 2) {
            return Err(BpeError::Config(format!(
                "base vocabulary too large ({} symbols)",
                fixed + table.len() as u64
            )));
        }
        self.set_table(table)
    }

    /// Appends the base symbols of one validated single stream.
    pub(crate) fn stream_to_base(&self, seq: &[u32], out: &mut Vec<u32>) {
        match self.layout {
            Layout::Runs => {
                for (t, mut n) in runs(seq) {
                    while n > 0 {
                        let mut l = n.min(self.max_run as usize);
                        loop {
                            if l == 1 {
                                out.push(t);
                                break;
                            }
                            if let Some(&id) = self.lookup.get(&[t, l as u32][..]) {
                                out.push(id);
                                break;
                            }
                            l -= 1;
                        }
                        n -= l;
                    }
                }
            }
            _ => out.extend_from_slice(seq),
        }
    }

    /// Appends the base symbols of one validated multi-scale item; with `seg`, also marks the
    /// positions that start a new (frame, scale) segment (for the per-scale stage of `hierarchical`).
    pub(crate) fn scales_to_base(&self, item: &[Vec<u32>], out: &mut Vec<u32>, mut seg: Option<&mut Vec<bool>>) {
        let mut fbuf = Vec::new();
        let frames = frame_codes(item, &self.ratios, &mut fbuf);
        let fl = self.frame_len();
        let c = self.codebook_size;
        let scale_of: Vec<u32> =
            self.ratios.iter().enumerate().flat_map(|(s, &r)| std::iter::repeat_n(s as u32, r as usize)).collect();
        let escape = |frame: &[u32], out: &mut Vec<u32>| {
            for (j, &code) in frame.iter().enumerate() {
                out.push(scale_of[j] * c + code);
            }
        };
        match self.layout {
            Layout::ScaleCodes => {
                for f in 0..frames {
                    let frame = &fbuf[f * fl..(f + 1) * fl];
                    if let Some(seg) = seg.as_deref_mut() {
                        for j in 0..fl {
                            seg.push(j == 0 || scale_of[j] != scale_of[j - 1]);
                        }
                    }
                    escape(frame, out);
                }
            }
            Layout::Tuples => {
                for f in 0..frames {
                    let frame = &fbuf[f * fl..(f + 1) * fl];
                    match self.lookup.get(frame) {
                        Some(&id) => out.push(id),
                        None => escape(frame, out),
                    }
                }
            }
            Layout::TupleRuns => {
                let mut key = Vec::with_capacity(fl + 1);
                let mut f = 0;
                while f < frames {
                    let cur = &fbuf[f * fl..(f + 1) * fl];
                    let mut n = 1;
                    while f + n < frames && &fbuf[(f + n) * fl..(f + n + 1) * fl] == cur {
                        n += 1;
                    }
                    f += n;
                    while n > 0 {
                        let mut l = n.min(self.max_run as usize);
                        let mut done = false;
                        while l >= 1 {
                            key.clear();
                            key.extend_from_slice(cur);
                            key.push(l as u32);
                            if let Some(&id) = self.lookup.get(&key[..]) {
                                out.push(id);
                                n -= l;
                                done = true;
                                break;
                            }
                            l -= 1;
                        }
                        if !done {
                            escape(cur, out);
                            n -= 1;
                        }
                    }
                }
            }
            Layout::Codes | Layout::Runs => {}
        }
    }

    /// Number of units [`units_of`](Self::units_of) appends for base symbol `id`, computed
    /// without expanding it.
    pub(crate) fn units_len(&self, id: u32) -> u64 {
        let fixed = self.fixed();
        let Some(e) = id.checked_sub(fixed).and_then(|i| self.table.get(i as usize)) else {
            return 1;
        };
        let fl = self.frame_len() as u64;
        match self.layout {
            Layout::Codes | Layout::ScaleCodes => 1,
            Layout::Runs => e.get(1).map_or(0, |&n| u64::from(n)),
            Layout::Tuples => fl,
            Layout::TupleRuns => fl.saturating_mul(e.get(fl as usize).map_or(0, |&n| u64::from(n))),
        }
    }

    /// Appends the units of base symbol `id`: codes for single-stream layouts, scale-tagged codes
    /// `s*C + c` (frame order) for multi-scale ones.
    pub(crate) fn units_of(&self, id: u32, out: &mut Vec<u32>) {
        let fixed = self.fixed();
        if id < fixed {
            out.push(id);
            return;
        }
        let e = &self.table[(id - fixed) as usize];
        match self.layout {
            Layout::Codes | Layout::ScaleCodes => {}
            Layout::Runs => out.extend(std::iter::repeat_n(e[0], e[1] as usize)),
            Layout::Tuples | Layout::TupleRuns => {
                let fl = self.frame_len();
                let n = if self.layout == Layout::TupleRuns { e[fl] } else { 1 };
                let c = self.codebook_size;
                for _ in 0..n {
                    let mut j = 0;
                    for (s, &r) in self.ratios.iter().enumerate() {
                        for _ in 0..r {
                            out.push(s as u32 * c + e[j]);
                            j += 1;
                        }
                    }
                }
            }
        }
    }

    /// Splits scale-tagged units (whole frames) back into per-scale streams.
    pub(crate) fn units_to_scales(&self, units: &[u32]) -> Result<Vec<Vec<u32>>> {
        let fl = self.frame_len();
        if units.len() % fl != 0 {
            return Err(BpeError::Decode(format!("{} codes are not a whole number of {fl}-code frames", units.len())));
        }
        let frames = units.len() / fl;
        let c = self.codebook_size;
        let mut out: Vec<Vec<u32>> = self.ratios.iter().map(|&r| Vec::with_capacity(frames * r as usize)).collect();
        for (f, frame) in units.chunks_exact(fl).enumerate() {
            let mut j = 0;
            for (s, &r) in self.ratios.iter().enumerate() {
                for _ in 0..r {
                    let u = frame[j];
                    if u / c != s as u32 {
                        return Err(BpeError::Decode(format!(
                            "frame {f}: position {j} holds a code of scale {} where scale {s} belongs",
                            u / c
                        )));
                    }
                    out[s].push(u % c);
                    j += 1;
                }
            }
        }
        Ok(out)
    }
}

/// Maximal runs `(token, length)` of a stream.
fn runs(seq: &[u32]) -> impl Iterator<Item = (u32, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        if i >= seq.len() {
            return None;
        }
        let t = seq[i];
        let mut n = 1;
        while i + n < seq.len() && seq[i + n] == t {
            n += 1;
        }
        i += n;
        Some((t, n))
    })
}

/// Writes the frames of `item` (raw codes, scale-major within a frame) into `buf`; returns the frame count.
fn frame_codes(item: &[Vec<u32>], ratios: &[u32], buf: &mut Vec<u32>) -> usize {
    buf.clear();
    let frames = item.first().map_or(0, |v| v.len() / ratios[0] as usize);
    for f in 0..frames {
        for (s, &r) in ratios.iter().enumerate() {
            let r = r as usize;
            buf.extend_from_slice(&item[s][f * r..(f + 1) * r]);
        }
    }
    frames
}
