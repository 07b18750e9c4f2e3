//! Applying learned merges to one sequence, as HF tokenizers' BPE model does: a min-heap of
//! `(rank, position)` over the sequence's adjacent pairs; the lowest rank is merged first and equal
//! ranks left to right, so `a a a` becomes `[a a] a` exactly as in training.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::hash::{pair_key, PairMap};
use super::trainer::{MergeRec, NONE};

/// `pair -> (rank << 32) | id` for one stage; the first (lowest-rank) merge of a pair wins.
#[derive(Debug, Default, Clone)]
pub(crate) struct Ranks(PairMap<u64>);

impl Ranks {
    /// Ranks of `merges`, numbered from `first_rank`.
    pub(crate) fn new(merges: &[MergeRec], first_rank: u32) -> Self {
        let mut m = PairMap::default();
        for (i, r) in merges.iter().enumerate() {
            let rank = first_rank + i as u32;
            m.entry(pair_key(r.left, r.right)).or_insert((u64::from(rank) << 32) | u64::from(r.id));
        }
        Ranks(m)
    }

    #[inline]
    fn get(&self, a: u32, b: u32) -> Option<u64> {
        self.0.get(&pair_key(a, b)).copied()
    }
}

/// Reusable buffers for [`apply`].
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    prev: Vec<u32>,
    next: Vec<u32>,
    heap: BinaryHeap<Reverse<u64>>,
}

/// Applies `ranks` to `seq` in place. With `seg_start`, a pair whose right symbol starts at a position
/// marked `true` is never merged (the sequence is a concatenation of independent segments).
pub(crate) fn apply(seq: &mut Vec<u32>, ranks: &Ranks, seg_start: Option<&[bool]>, sc: &mut Scratch) {
    let n = seq.len();
    if n < 2 || ranks.0.is_empty() {
        return;
    }
    let blocked = |q: usize| seg_start.is_some_and(|s| s[q]);
    sc.prev.clear();
    sc.next.clear();
    sc.prev.extend((0..n as u32).map(|i| if i == 0 { NONE } else { i - 1 }));
    sc.next.extend((0..n as u32).map(|i| if i as usize + 1 == n { NONE } else { i + 1 }));
    sc.heap.clear();
    for i in 0..n - 1 {
        if blocked(i + 1) {
            continue;
        }
        if let Some(v) = ranks.get(seq[i], seq[i + 1]) {
            sc.heap.push(Reverse(((v >> 32) << 32) | i as u64));
        }
    }
    const GONE: u32 = u32::MAX;
    while let Some(Reverse(top)) = sc.heap.pop() {
        let rank = top >> 32;
        let p = (top & 0xffff_ffff) as usize;
        let a = seq[p];
        let q = sc.next[p];
        if a == GONE || q == NONE {
            continue;
        }
        let q = q as usize;
        let Some(v) = ranks.get(a, seq[q]) else { continue };
        if v >> 32 != rank {
            continue;
        }
        // Merge p and q.
        seq[p] = v as u32;
        seq[q] = GONE;
        let nn = sc.next[q];
        sc.next[p] = nn;
        if nn != NONE {
            sc.prev[nn as usize] = p as u32;
        }
        let pp = sc.prev[p];
        if pp != NONE {
            if let Some(v2) = ranks.get(seq[pp as usize], seq[p]) {
                if !blocked(p) {
                    sc.heap.push(Reverse(((v2 >> 32) << 32) | u64::from(pp)));
                }
            }
        }
        if nn != NONE && !blocked(nn as usize) {
            if let Some(v2) = ranks.get(seq[p], seq[nn as usize]) {
                sc.heap.push(Reverse(((v2 >> 32) << 32) | p as u64));
            }
        }
    }
    seq.retain(|&s| s != GONE);
}
