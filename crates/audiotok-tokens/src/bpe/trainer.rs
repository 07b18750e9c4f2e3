//! The merge learner: incremental pair counts over doubly linked symbol lists.
//!
//! State, as in HF tokenizers' `BpeTrainer` and SentencePiece's BPE trainer, but position-based so
//! that long sequences cost nothing extra:
//!
//! - every symbol of every sequence lives in one array of 16-byte slots (symbol, previous, next,
//!   sequence multiplicity) indexed by its original position; a merge writes the new symbol at the
//!   left position and unlinks the right one;
//! - `pairs`: for every adjacent pair, its current count (weighted by the sequence's multiplicity) and
//!   a list of the positions where it was created (chunks of six in one pool; a list whose pair
//!   count drops to zero is recycled whole). Entries go stale and are checked when used, never
//!   deleted one by one; a chunk's positions are checked together so their cache misses overlap;
//! - a merge collects the count changes and new positions of all its occurrences and applies them
//!   once per distinct pair (one hash lookup each);
//! - `heap`: a max-heap of `(count, smallest pair first)` with lazy deletion: an entry whose count is
//!   no longer the pair's count is dropped or pushed again with the current count when it surfaces.
//!   Every count increase pushes a fresh entry, so the top valid entry is always the exact arg-max.
//!
//! Counting rule (shared with encoding): a pair of two different symbols counts every adjacency; a
//! pair of equal symbols `(x, x)` counts the non-overlapping occurrences, `floor(k / 2)` in every
//! maximal run of `k` copies of `x`, which is exactly how many merges a left-to-right application
//! makes. A merge rewrites one window — the changed symbols plus the whole runs touching them on
//! either side — and updates the counts by the difference between the window's pair counts before
//! and after, so runs are always counted exactly.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::error::{BpeError, Result};
use super::hash::{pair_key, unpack, FastMap, PairMap};

/// "No neighbour" in `prev`/`next`.
pub(crate) const NONE: u32 = u32::MAX;
/// Symbol of an unlinked (merged-away) position.
const DEAD: u32 = u32::MAX;

/// One learned merge: `left` followed by `right` becomes `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MergeRec {
    pub left: u32,
    pub right: u32,
    pub id: u32,
}

/// Incremental pair-count state over a set of weighted sequences.
pub(crate) struct Learner {
    /// Every position of every sequence (one 16-byte record: one cache access per position).
    s: Vec<Slot>,
    /// First position of every non-empty sequence (never unlinked: merges keep the left position).
    starts: Vec<u32>,
    /// Count and occurrence list of every pair.
    pairs: PairMap<PairEntry>,
    /// Occurrence-list chunks; `spare` holds the heads of freed lists.
    nodes: Vec<Chunk>,
    spare: Vec<u32>,
    heap: BinaryHeap<(i64, Reverse<u64>)>,
    win: Vec<u32>,
    /// `(pair, count delta, position to record or NONE)` of one rewritten window.
    deltas: Vec<(u64, i64, u32)>,
}

/// One position: its symbol (`DEAD` once merged away), neighbours (`NONE` at the ends) and the
/// multiplicity of its sequence.
#[derive(Debug, Clone, Copy)]
struct Slot {
    sym: u32,
    prev: u32,
    next: u32,
    weight: u32,
}

/// Count of a pair and the head of its occurrence list.
#[derive(Debug, Clone, Copy)]
struct PairEntry {
    /// Weighted count (below 2^32: [`Learner::new`] checks the weighted corpus size).
    count: u32,
    head: u32,
}

impl Default for PairEntry {
    fn default() -> Self {
        PairEntry { count: 0, head: NONE }
    }
}

/// Positions per occurrence-list chunk (a chunk is 32 bytes).
const CHUNK: usize = 6;

/// A piece of an occurrence list: up to [`CHUNK`] positions, then the next (older) chunk.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    pos: [u32; CHUNK],
    len: u32,
    next: u32,
}

/// Adds `pos` to `e`'s occurrence list. New chunks come from the spare lists (whole freed lists,
/// taken apart one chunk at a time as they are reused, so freeing a list touches none of its chunks).
#[inline]
fn push_occ(nodes: &mut Vec<Chunk>, spare: &mut Vec<u32>, e: &mut PairEntry, pos: u32) {
    if e.head != NONE {
        let c = &mut nodes[e.head as usize];
        if (c.len as usize) < CHUNK {
            c.pos[c.len as usize] = pos;
            c.len += 1;
            return;
        }
    }
    let mut chunk = Chunk { pos: [0; CHUNK], len: 1, next: e.head };
    chunk.pos[0] = pos;
    e.head = match spare.pop() {
        Some(n) => {
            let rest = nodes[n as usize].next;
            if rest != NONE {
                spare.push(rest);
            }
            nodes[n as usize] = chunk;
            n
        }
        None => {
            nodes.push(chunk);
            (nodes.len() - 1) as u32
        }
    };
}

/// Appends the pair counts of `w` (a window whose first and last runs are maximal) times `sign`.
fn window_pairs(w: &[u32], sign: i64, out: &mut Vec<(u64, i64, u32)>) {
    let n = w.len();
    let mut s = 0;
    while s < n {
        let mut e = s;
        while e + 1 < n && w[e + 1] == w[s] {
            e += 1;
        }
        let len = (e - s + 1) as i64;
        if len >= 2 {
            out.push((pair_key(w[s], w[s]), sign * (len / 2), NONE));
        }
        if e + 1 < n {
            out.push((pair_key(w[e], w[e + 1]), sign, NONE));
        }
        s = e + 1;
    }
}

impl Learner {
    /// Builds the state for `words` (each with multiplicity `weights[i]`, or 1).
    pub(crate) fn new(words: &[Vec<u32>], weights: Option<&[u32]>) -> Result<Self> {
        let total: usize = words.iter().map(Vec::len).sum();
        let weighted: u64 = words
            .iter()
            .enumerate()
            .map(|(i, w)| w.len() as u64 * u64::from(weights.and_then(|ws| ws.get(i).copied()).unwrap_or(1)))
            .sum();
        if total >= NONE as usize || weighted >= u64::from(u32::MAX) {
            return Err(BpeError::Config(format!("corpus too large for one training run ({weighted} symbols)")));
        }
        let mut slots = Vec::with_capacity(total);
        let mut starts = Vec::with_capacity(words.len());
        for (wi, word) in words.iter().enumerate() {
            if word.is_empty() {
                continue;
            }
            let base = slots.len() as u32;
            starts.push(base);
            let weight = weights.and_then(|w| w.get(wi).copied()).unwrap_or(1);
            for (j, &sym) in word.iter().enumerate() {
                let p = base + j as u32;
                slots.push(Slot {
                    sym,
                    prev: if j == 0 { NONE } else { p - 1 },
                    next: if j + 1 == word.len() { NONE } else { p + 1 },
                    weight,
                });
            }
        }
        let mut learner = Learner {
            s: slots,
            starts,
            pairs: PairMap::with_capacity_and_hasher(total / 4, Default::default()),
            nodes: Vec::with_capacity(total / CHUNK + 1),
            spare: Vec::new(),
            heap: BinaryHeap::new(),
            win: Vec::new(),
            deltas: Vec::new(),
        };
        learner.count_all();
        Ok(learner)
    }

    #[inline]
    fn weight_at(&self, p: u32) -> i64 {
        i64::from(self.s[p as usize].weight)
    }

    /// Initial counts, occurrence lists and heap.
    fn count_all(&mut self) {
        for wi in 0..self.starts.len() {
            let start = self.starts[wi];
            let w = self.weight_at(start);
            let mut p = start;
            let mut run_off = 0u32;
            let mut prev_sym = NONE;
            loop {
                let q = self.s[p as usize].next;
                if q == NONE {
                    break;
                }
                let (a, b) = (self.s[p as usize].sym, self.s[q as usize].sym);
                run_off = if a == prev_sym { run_off + 1 } else { 0 };
                prev_sym = a;
                let e = self.pairs.entry(pair_key(a, b)).or_default();
                // Equal pairs count at even offsets of their run only: floor(k / 2) per run.
                if a != b || run_off % 2 == 0 {
                    e.count += w as u32;
                }
                push_occ(&mut self.nodes, &mut self.spare, e, p);
                p = q;
            }
        }
        let entries: Vec<(i64, Reverse<u64>)> =
            self.pairs.iter().filter(|(_, e)| e.count > 0).map(|(&k, e)| (i64::from(e.count), Reverse(k))).collect();
        self.heap = BinaryHeap::from(entries);
    }

    /// The pair to merge next: highest count, then smallest `(left, right)`; `None` when no pair is left.
    pub(crate) fn best(&mut self) -> Option<(u32, u32, i64)> {
        loop {
            let &(c, Reverse(k)) = self.heap.peek()?;
            let cur = self.pairs.get(&k).map_or(0, |e| i64::from(e.count));
            if cur == c {
                let (a, b) = unpack(k);
                return Some((a, b, c));
            }
            self.heap.pop();
            if cur > 0 && cur < c {
                self.heap.push((cur, Reverse(k)));
            }
        }
    }

    #[inline]
    fn is_pair_at(&self, p: u32, a: u32, b: u32) -> bool {
        let pu = p as usize;
        if self.s[pu].sym != a {
            return false;
        }
        let q = self.s[pu].next;
        q != NONE && self.s[q as usize].sym == b
    }

    /// Start of the window left of `lo`: the first position of the run holding `prev(lo)`.
    fn window_start(&self, lo: u32) -> u32 {
        let p = self.s[lo as usize].prev;
        if p == NONE {
            return lo;
        }
        let s = self.s[p as usize].sym;
        let mut q = p;
        loop {
            let r = self.s[q as usize].prev;
            if r == NONE || self.s[r as usize].sym != s {
                return q;
            }
            q = r;
        }
    }

    /// First position after the window right of `hi` (after the run holding `next(hi)`), or `NONE`.
    fn window_stop(&self, hi: u32) -> u32 {
        let n = self.s[hi as usize].next;
        if n == NONE {
            return NONE;
        }
        let s = self.s[n as usize].sym;
        let mut q = n;
        loop {
            let r = self.s[q as usize].next;
            if r == NONE || self.s[r as usize].sym != s {
                return r;
            }
            q = r;
        }
    }

    fn gather(&mut self, from: u32, stop: u32) {
        self.win.clear();
        let mut p = from;
        while p != stop {
            self.win.push(self.s[p as usize].sym);
            p = self.s[p as usize].next;
        }
    }

    #[inline]
    fn unlink(&mut self, q: u32) {
        let qu = q as usize;
        let (p, n) = (self.s[qu].prev, self.s[qu].next);
        if p != NONE {
            self.s[p as usize].next = n;
        }
        if n != NONE {
            self.s[n as usize].prev = p;
        }
        self.s[qu] = Slot { sym: DEAD, prev: NONE, next: NONE, weight: 0 };
    }

    /// Merges every (non-overlapping, left to right) occurrence of `(a, b)` into `m` and updates counts.
    pub(crate) fn merge(&mut self, a: u32, b: u32, m: u32) {
        let key = pair_key(a, b);
        let head = match self.pairs.get_mut(&key) {
            Some(e) => std::mem::replace(&mut e.head, NONE),
            None => NONE,
        };
        let mut node = head;
        self.deltas.clear();
        let mut batch = [0u32; CHUNK];
        while node != NONE {
            let chunk = self.nodes[node as usize];
            node = chunk.next;
            let n = chunk.len as usize;
            batch[..n].copy_from_slice(&chunk.pos[..n]);
            // Check the whole chunk first: independent loads overlap their cache misses. A position
            // that fails here cannot become valid during this merge; one that passes is checked again.
            let mut live = [false; CHUNK];
            for (l, &p0) in live.iter_mut().zip(&batch[..n]) {
                *l = self.is_pair_at(p0, a, b);
            }
            for (&p0, _) in batch[..n].iter().zip(live).filter(|(_, l)| *l) {
                self.merge_at(p0, a, b, m);
            }
        }
        // Count changes and new positions of all occurrences, applied once per distinct pair.
        self.apply_deltas(key);
        self.pairs.remove(&key);
        if head != NONE {
            self.spare.push(head);
        }
    }

    /// Merges the occurrence of `(a, b)` recorded at `p0` (the whole run when `a == b`), if still there.
    #[inline]
    fn merge_at(&mut self, p0: u32, a: u32, b: u32, m: u32) {
        if !self.is_pair_at(p0, a, b) {
            return;
        }
        if a != b {
            // Fast path: no run touches the pair and the neighbours differ from `m`, so only the two
            // neighbour pairs change (`NONE` never equals a symbol).
            let q = self.s[p0 as usize].next;
            let (lp, rn) = (self.s[p0 as usize].prev, self.s[q as usize].next);
            let l = if lp == NONE { NONE } else { self.s[lp as usize].sym };
            let r = if rn == NONE { NONE } else { self.s[rn as usize].sym };
            if l != a && r != b && l != m && r != m {
                let w = self.weight_at(p0);
                if lp != NONE {
                    self.deltas.push((pair_key(l, a), -w, NONE));
                    self.deltas.push((pair_key(l, m), w, lp));
                }
                if rn != NONE {
                    self.deltas.push((pair_key(b, r), -w, NONE));
                    self.deltas.push((pair_key(m, r), w, p0));
                }
                self.s[p0 as usize].sym = m;
                self.unlink(q);
                return;
            }
        }
        // The changed span [lo, hi]: one pair, or a whole run of `a` when a == b.
        let (lo, hi) = if a == b {
            let mut lo = p0;
            loop {
                let r = self.s[lo as usize].prev;
                if r == NONE || self.s[r as usize].sym != a {
                    break;
                }
                lo = r;
            }
            let mut hi = p0;
            loop {
                let r = self.s[hi as usize].next;
                if r == NONE || self.s[r as usize].sym != a {
                    break;
                }
                hi = r;
            }
            (lo, hi)
        } else {
            (p0, self.s[p0 as usize].next)
        };
        let w = self.weight_at(lo);
        let ws = self.window_start(lo);
        let stop = self.window_stop(hi);
        self.gather(ws, stop);
        window_pairs(&self.win, -w, &mut self.deltas);
        // Rewrite.
        let mut q = lo;
        loop {
            let r = self.s[q as usize].next;
            if r == NONE || self.s[q as usize].sym != a || self.s[r as usize].sym != b {
                break;
            }
            self.s[q as usize].sym = m;
            self.unlink(r);
            if a != b {
                break;
            }
            q = self.s[q as usize].next;
            if q == NONE {
                break;
            }
        }
        self.gather(ws, stop);
        window_pairs(&self.win, w, &mut self.deltas);
        // New pairs (all involve `m`) get their positions recorded.
        let mut p = ws;
        loop {
            let n = self.s[p as usize].next;
            if n == stop || n == NONE {
                break;
            }
            let (sp, sn) = (self.s[p as usize].sym, self.s[n as usize].sym);
            if sp == m || sn == m {
                self.deltas.push((pair_key(sp, sn), 0, p));
            }
            p = n;
        }
    }

    fn apply_deltas(&mut self, merged: u64) {
        self.deltas.sort_unstable_by_key(|d| d.0);
        let mut i = 0;
        while i < self.deltas.len() {
            let k = self.deltas[i].0;
            let mut j = i;
            let mut sum = 0;
            let mut record = false;
            while j < self.deltas.len() && self.deltas[j].0 == k {
                sum += self.deltas[j].1;
                record |= self.deltas[j].2 != NONE;
                j += 1;
            }
            if (sum == 0 && !record) || k == merged {
                i = j;
                continue;
            }
            let e = self.pairs.entry(k).or_default();
            let c = i64::from(e.count) + sum;
            debug_assert!((0..i64::from(u32::MAX)).contains(&c), "pair count out of range");
            e.count = c as u32;
            for d in &self.deltas[i..j] {
                if d.2 != NONE {
                    push_occ(&mut self.nodes, &mut self.spare, e, d.2);
                }
            }
            if sum > 0 {
                // Each pair appears once per merge here, so this is its final count for the step.
                self.heap.push((c, Reverse(k)));
            } else if e.count == 0 {
                let head = e.head;
                if head != NONE {
                    self.spare.push(head);
                }
                self.pairs.remove(&k);
            }
            i = j;
        }
    }

    /// The current symbol sequences (empty input sequences are skipped; test-only).
    #[cfg(test)]
    pub(crate) fn sequences(&self) -> Vec<Vec<u32>> {
        self.starts
            .iter()
            .map(|&s| {
                let mut v = Vec::new();
                let mut p = s;
                while p != NONE {
                    v.push(self.s[p as usize].sym);
                    p = self.s[p as usize].next;
                }
                v
            })
            .collect()
    }

    /// Recounts every pair from scratch (test-only cross-check of the incremental counts).
    #[cfg(test)]
    pub(crate) fn brute_counts(&self) -> PairMap<i64> {
        let mut m = PairMap::default();
        let seqs = self.sequences();
        for (seq, &s) in seqs.iter().zip(&self.starts) {
            let mut d = Vec::new();
            window_pairs(seq, self.weight_at(s), &mut d);
            for (k, c, _) in d {
                *m.entry(k).or_insert(0) += c;
            }
        }
        m.retain(|_, c| *c != 0);
        m
    }

    /// The incremental counts, zeros dropped (test-only).
    #[cfg(test)]
    pub(crate) fn counts(&self) -> PairMap<i64> {
        let mut m: PairMap<i64> = self.pairs.iter().map(|(&k, e)| (k, i64::from(e.count))).collect();
        m.retain(|_, c| *c != 0);
        m
    }
}

/// Symbol identities: a merged symbol is its expansion in base symbols; a merge whose expansion
/// already exists gets that symbol's id (as HF's trainer does), so every symbol is unique.
pub(crate) struct SymbolTable {
    base_size: u32,
    /// Expansion (in base symbols) of every merged symbol, indexed by `id - base_size`.
    exp: Vec<Vec<u32>>,
    by_exp: FastMap<Vec<u32>, u32>,
}

impl SymbolTable {
    pub(crate) fn new(base_size: u32) -> Self {
        SymbolTable { base_size, exp: Vec::new(), by_exp: FastMap::default() }
    }

    /// Number of symbols (base plus merged).
    pub(crate) fn len(&self) -> u32 {
        self.base_size + self.exp.len() as u32
    }

    fn push_expansion(&self, id: u32, out: &mut Vec<u32>) {
        if id < self.base_size {
            out.push(id);
        } else {
            out.extend_from_slice(&self.exp[(id - self.base_size) as usize]);
        }
    }

    /// The id of `left` followed by `right`, and whether it is new.
    pub(crate) fn intern(&mut self, left: u32, right: u32) -> (u32, bool) {
        let mut e = Vec::new();
        self.push_expansion(left, &mut e);
        self.push_expansion(right, &mut e);
        if let Some(&id) = self.by_exp.get(&e) {
            return (id, false);
        }
        let id = self.len();
        self.by_exp.insert(e.clone(), id);
        self.exp.push(e);
        (id, true)
    }
}

/// When to stop learning.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// At most this many merges.
    pub max_merges: Option<usize>,
    /// At most this many new symbols.
    pub max_new: Option<usize>,
    /// Stop when the best pair count is below this.
    pub min_count: i64,
}

/// Runs merges on `learner` until the budget is spent; returns the merges and the number of new ids.
pub(crate) fn learn(learner: &mut Learner, table: &mut SymbolTable, budget: Budget) -> (Vec<MergeRec>, usize) {
    let mut merges = Vec::new();
    let mut new = 0usize;
    loop {
        if budget.max_merges.is_some_and(|n| merges.len() >= n) || budget.max_new.is_some_and(|n| new >= n) {
            break;
        }
        let Some((a, b, c)) = learner.best() else { break };
        if c < budget.min_count.max(1) {
            break;
        }
        let (id, is_new) = table.intern(a, b);
        learner.merge(a, b, id);
        new += usize::from(is_new);
        merges.push(MergeRec { left: a, right: b, id });
    }
    (merges, new)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn check_run(words: Vec<Vec<u32>>, weights: Option<Vec<u32>>, steps: usize) {
        let base = words.iter().flatten().copied().max().map_or(1, |m| m + 1);
        let mut l = Learner::new(&words, weights.as_deref()).unwrap();
        let mut t = SymbolTable::new(base);
        assert_eq!(l.counts(), l.brute_counts());
        for _ in 0..steps {
            let Some((a, b, c)) = l.best() else { break };
            // The selected pair is the brute-force arg-max (count desc, then pair asc).
            let brute = l.brute_counts();
            let best = brute.iter().map(|(&k, &c)| (c, Reverse(k))).max().unwrap();
            assert_eq!((best.0, best.1 .0), (c, pair_key(a, b)));
            let (id, _) = t.intern(a, b);
            l.merge(a, b, id);
            assert_eq!(l.counts(), l.brute_counts());
        }
    }

    #[test]
    fn runs_count_non_overlapping() {
        let l = Learner::new(&[vec![1, 1, 1], vec![2, 2, 2, 2, 3]], None).unwrap();
        assert_eq!(l.counts().get(&pair_key(1, 1)), Some(&1));
        assert_eq!(l.counts().get(&pair_key(2, 2)), Some(&2));
        check_run(vec![vec![1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 2, 2]], None, 10);
    }

    /// The training state after `n` merges equals encoding the corpus with those merges.
    fn check_encode_matches(words: Vec<Vec<u32>>, steps: usize) {
        let base = words.iter().flatten().copied().max().map_or(1, |m| m + 1);
        let mut l = Learner::new(&words, None).unwrap();
        let mut t = SymbolTable::new(base);
        let (merges, _) = learn(&mut l, &mut t, Budget { max_merges: Some(steps), max_new: None, min_count: 1 });
        let ranks = super::super::encoder::Ranks::new(&merges, 0);
        let mut sc = super::super::encoder::Scratch::default();
        let encoded: Vec<Vec<u32>> = words
            .iter()
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut v = w.clone();
                super::super::encoder::apply(&mut v, &ranks, None, &mut sc);
                v
            })
            .collect();
        assert_eq!(encoded, l.sequences());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn training_state_equals_encoding(
            words in prop::collection::vec(prop::collection::vec(0u32..4, 0..30), 1..6),
            steps in 1usize..25,
        ) {
            check_encode_matches(words, steps);
        }

        #[test]
        fn incremental_counts_equal_recount(
            words in prop::collection::vec(prop::collection::vec(0u32..4, 0..30), 1..6),
            weighted in any::<bool>(),
            steps in 1usize..25,
        ) {
            let weights = weighted.then(|| (0..words.len() as u32).map(|i| i % 3 + 1).collect());
            check_run(words, weights, steps);
        }
    }
}
