//! Packing documents of known lengths into blocks of a fixed capacity.
//!
//! - [`Strategy::Greedy`]: next-fit in input order, as the Qwen2-Audio packing notebook does:
//!   when the next document does not fit, the current block is emitted and a new one started.
//! - [`Strategy::Bfd`]: best-fit decreasing, as TRL's `pack_dataset(strategy="bfd")`: documents
//!   sorted by length, longest first (ties keep input order); each goes into the open block with
//!   the least remaining space that still fits it (ties: the block that reached that space
//!   first), else a new block. Blocks are emitted in the order they were opened, documents in the
//!   order they were placed. Unlike TRL, documents longer than a block are never truncated:
//!   callers reject them before packing.

use std::collections::{BTreeMap, VecDeque};

/// How documents are assigned to blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Next-fit in input order (the notebook).
    #[default]
    Greedy,
    /// Best-fit decreasing (TRL).
    Bfd,
}

/// Assigns documents (by index into `lengths`) to blocks of `capacity` tokens. Every length must
/// be at most `capacity`; zero-length documents are placed like any other.
pub fn pack(lengths: &[usize], capacity: usize, strategy: Strategy) -> Vec<Vec<usize>> {
    match strategy {
        Strategy::Greedy => greedy(lengths, capacity),
        Strategy::Bfd => bfd(lengths, capacity),
    }
}

fn greedy(lengths: &[usize], capacity: usize) -> Vec<Vec<usize>> {
    let mut packer = GreedyPacker::new(capacity);
    let mut blocks: Vec<Vec<usize>> = lengths.iter().enumerate().filter_map(|(i, &len)| packer.push(i, len)).collect();
    blocks.extend(packer.finish());
    blocks
}

/// [`Strategy::Greedy`] one document at a time, for callers that write blocks while later
/// documents are still being made: feed documents in input order with [`GreedyPacker::push`],
/// which hands back each block as soon as it is complete, then [`GreedyPacker::finish`]. The
/// blocks are exactly those of [`pack`] with [`Strategy::Greedy`].
#[derive(Debug, Clone)]
pub struct GreedyPacker {
    capacity: usize,
    current: Vec<usize>,
    used: usize,
}

impl GreedyPacker {
    /// An empty packer for blocks of `capacity` tokens.
    pub fn new(capacity: usize) -> GreedyPacker {
        GreedyPacker { capacity, current: Vec::new(), used: 0 }
    }

    /// Adds document `index` of `len` tokens (at most the capacity); returns the block it
    /// closed, if it did not fit in the open one.
    pub fn push(&mut self, index: usize, len: usize) -> Option<Vec<usize>> {
        let closed = if !self.current.is_empty() && self.used + len > self.capacity {
            self.used = 0;
            Some(std::mem::take(&mut self.current))
        } else {
            None
        };
        self.current.push(index);
        self.used += len;
        closed
    }

    /// The first document of the open block: documents before it are in closed blocks.
    pub fn first_open(&self) -> Option<usize> {
        self.current.first().copied()
    }

    /// The last block, if any document is in it.
    pub fn finish(self) -> Option<Vec<usize>> {
        (!self.current.is_empty()).then_some(self.current)
    }
}

fn bfd(lengths: &[usize], capacity: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
    let mut blocks: Vec<Vec<usize>> = Vec::new();
    // Remaining space -> open blocks with that space, in the order they reached it.
    let mut by_space: BTreeMap<usize, VecDeque<usize>> = BTreeMap::new();
    for i in order {
        let len = lengths[i];
        let fit = by_space.range_mut(len..).next().and_then(|(&space, q)| q.pop_front().map(|b| (space, b)));
        let (space, block) = match fit {
            Some((space, b)) => {
                if by_space.get(&space).is_some_and(VecDeque::is_empty) {
                    by_space.remove(&space);
                }
                (space, b)
            }
            None => {
                blocks.push(Vec::new());
                (capacity, blocks.len() - 1)
            }
        };
        blocks[block].push(i);
        let left = space.saturating_sub(len);
        if left > 0 {
            by_space.entry(left).or_default().push_back(block);
        }
    }
    blocks
}

/// Real tokens over block tokens: `sum(lengths) / (blocks * capacity)`.
pub fn efficiency(lengths: &[usize], blocks: usize, capacity: usize) -> f64 {
    if blocks == 0 || capacity == 0 {
        return 0.0;
    }
    lengths.iter().sum::<usize>() as f64 / (blocks * capacity) as f64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{pack, Strategy};
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};

    #[test]
    fn greedy_is_next_fit_in_order() {
        assert_eq!(pack(&[3, 3, 5, 1, 10, 2], 10, Strategy::Greedy), vec![vec![0, 1], vec![2, 3], vec![4], vec![5]]);
    }

    #[test]
    fn streaming_greedy_reports_the_open_block() {
        let mut g = super::GreedyPacker::new(10);
        assert_eq!(g.first_open(), None);
        assert_eq!(g.push(0, 3), None);
        assert_eq!(g.push(1, 3), None);
        assert_eq!(g.first_open(), Some(0));
        // Document 2 does not fit: block [0, 1] closes, 2 opens the next; 0 and 1 may be freed.
        assert_eq!(g.push(2, 5), Some(vec![0, 1]));
        assert_eq!(g.first_open(), Some(2));
        assert_eq!(g.finish(), Some(vec![2]));
    }

    #[test]
    fn bfd_best_fit_decreasing() {
        // Sorted: 8(1) 6(3) 5(0) 4(4) 2(2) 2(5) 1(6); bins of 10.
        // 8 -> A(2); 6 -> B(4); 5 -> C(5); 4 -> B(0); 2 -> A(0); 2 -> C(3); 1 -> C(2).
        let blocks = pack(&[5, 8, 2, 6, 4, 2, 1], 10, Strategy::Bfd);
        assert_eq!(blocks, vec![vec![1, 2], vec![3, 4], vec![0, 5, 6]]);
    }

    #[test]
    fn bfd_ties_go_to_the_block_that_reached_the_space_first() {
        // 7 -> A(3); 7 -> B(3); 3 -> A (first to reach 3), 3 -> B.
        assert_eq!(pack(&[7, 7, 3, 3], 10, Strategy::Bfd), vec![vec![0, 2], vec![1, 3]]);
    }

    proptest! {
        #[test]
        fn every_document_once_and_no_block_overflows(
            lengths in proptest::collection::vec(0usize..=64, 0..200),
            bfd in any::<bool>(),
        ) {
            let strategy = if bfd { Strategy::Bfd } else { Strategy::Greedy };
            let blocks = pack(&lengths, 64, strategy);
            let mut seen: Vec<usize> = blocks.iter().flatten().copied().collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
            for b in &blocks {
                prop_assert!(!b.is_empty());
                prop_assert!(b.iter().map(|&i| lengths[i]).sum::<usize>() <= 64);
            }
            if !bfd {
                // Next-fit: a block plus the next block's first document would overflow.
                for w in blocks.windows(2) {
                    let used: usize = w[0].iter().map(|&i| lengths[i]).sum();
                    prop_assert!(used + lengths[w[1][0]] > 64);
                }
            }
        }
    }
}
