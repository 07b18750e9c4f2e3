//! Which blocks one rank's one data-loader worker reads in an epoch, and in what order.

use serde::{Deserialize, Serialize};

use crate::LoaderError;

/// An epoch's sharding, as StreamingDataset users expect it.
///
/// The epoch's order is `0..n`, or with `shuffle` a permutation that depends only on `seed` and
/// `epoch`. Rank `r` of `world` takes every `world`-th sample of it from `r` (with `drop_last`,
/// the order is first cut to a multiple of `world` so that every rank gets as many). The first
/// `samples_seen / world` samples of the rank's share are skipped (resuming mid-epoch:
/// `samples_seen` counts samples all ranks consumed, as StreamingDataset's `num_samples` does).
/// The rest is cut into batches of `batch_size`, and worker `w` of `workers` reads batches
/// `w, w + workers, ...`: a PyTorch DataLoader, which takes batches from its workers in turn,
/// then yields the rank's share in order. Shares are disjoint and, without `drop_last`,
/// together complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Permute the order each epoch.
    pub shuffle: bool,
    /// The shuffle's seed.
    pub seed: u64,
    /// The epoch (a different permutation each).
    pub epoch: u64,
    /// This process's rank.
    pub rank: u64,
    /// Ranks in all.
    pub world: u64,
    /// This data-loader worker.
    pub worker: u64,
    /// Data-loader workers per rank (1 without workers).
    pub workers: u64,
    /// Samples per data-loader batch.
    pub batch_size: u64,
    /// Samples all ranks consumed already this epoch.
    pub samples_seen: u64,
    /// Cut the order to a multiple of `world`.
    pub drop_last: bool,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            shuffle: false,
            seed: 0,
            epoch: 0,
            rank: 0,
            world: 1,
            worker: 0,
            workers: 1,
            batch_size: 1,
            samples_seen: 0,
            drop_last: false,
        }
    }
}

/// splitmix64: a fixed, portable generator (the permutation must not change between versions).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform draw below `bound` (> 0), without modulo bias (Lemire's method).
fn below(state: &mut u64, bound: u64) -> u64 {
    loop {
        let m = u128::from(splitmix(state)) * u128::from(bound);
        let low = m as u64;
        if low >= bound.wrapping_neg() % bound {
            return (m >> 64) as u64;
        }
    }
}

/// The block indices of `n` that `p` reads, in the order it reads them.
pub fn plan(n: u64, p: &Plan) -> Result<Vec<u64>, LoaderError> {
    if p.world == 0 || p.rank >= p.world {
        return Err(LoaderError::Options(format!("rank {} of world size {}", p.rank, p.world)));
    }
    if p.workers == 0 || p.worker >= p.workers {
        return Err(LoaderError::Options(format!("worker {} of {} workers", p.worker, p.workers)));
    }
    if p.batch_size == 0 {
        return Err(LoaderError::Options("batch size 0".into()));
    }
    let mut order: Vec<u64> = (0..n).collect();
    if p.shuffle {
        let mut state = p.seed ^ p.epoch.wrapping_mul(0xD1B5_4A32_D192_ED03);
        for i in (1..order.len()).rev() {
            let j = below(&mut state, i as u64 + 1) as usize;
            order.swap(i, j);
        }
    }
    if p.drop_last {
        order.truncate((n - n % p.world) as usize);
    }
    let share: Vec<u64> = order.into_iter().skip(p.rank as usize).step_by(p.world as usize).collect();
    let skip = (p.samples_seen / p.world) as usize;
    let rest = share.get(skip.min(share.len())..).unwrap_or(&[]);
    Ok(rest
        .chunks(p.batch_size as usize)
        .enumerate()
        .filter(|(j, _)| *j as u64 % p.workers == p.worker)
        .flat_map(|(_, b)| b.iter().copied())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a DataLoader yields: batches taken from the workers in turn.
    fn loader_order(n: u64, base: Plan) -> Vec<u64> {
        let per: Vec<Vec<u64>> = (0..base.workers).map(|w| plan(n, &Plan { worker: w, ..base }).unwrap()).collect();
        let mut batches: Vec<std::collections::VecDeque<Vec<u64>>> =
            per.iter().map(|v| v.chunks(base.batch_size as usize).map(<[u64]>::to_vec).collect()).collect();
        let mut out = Vec::new();
        'outer: loop {
            for q in batches.iter_mut() {
                match q.pop_front() {
                    Some(b) => out.extend(b),
                    None => break 'outer,
                }
            }
        }
        for q in &batches {
            for b in q {
                out.extend(b);
            }
        }
        out
    }

    #[test]
    fn shards_are_disjoint_complete_and_in_loader_order() {
        for (n, world, workers, batch) in [(10u64, 1u64, 1u64, 1u64), (103, 4, 3, 5), (7, 8, 2, 2), (64, 2, 4, 4)] {
            for shuffle in [false, true] {
                let mut all = Vec::new();
                for rank in 0..world {
                    let base =
                        Plan { shuffle, seed: 7, epoch: 1, rank, world, workers, batch_size: batch, ..Plan::default() };
                    let whole = plan(n, &Plan { workers: 1, worker: 0, ..base }).unwrap();
                    assert_eq!(loader_order(n, base), whole, "n={n} world={world} workers={workers}");
                    all.extend(whole);
                }
                all.sort_unstable();
                assert_eq!(all, (0..n).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn shuffles_depend_on_seed_and_epoch_only_and_resume_skips_what_was_seen() {
        let p = Plan { shuffle: true, seed: 3, epoch: 0, ..Plan::default() };
        let a = plan(50, &p).unwrap();
        assert_eq!(a, plan(50, &p).unwrap());
        assert_ne!(a, plan(50, &Plan { epoch: 1, ..p }).unwrap());
        assert_ne!(a, plan(50, &Plan { seed: 4, ..p }).unwrap());
        assert_ne!(a, (0..50).collect::<Vec<_>>());
        // Two ranks having consumed 20 samples in all: each skips its first 10.
        for rank in 0..2 {
            let full = plan(50, &Plan { rank, world: 2, ..p }).unwrap();
            let resumed = plan(50, &Plan { rank, world: 2, samples_seen: 20, ..p }).unwrap();
            assert_eq!(resumed, full[10..]);
        }
        let even = plan(7, &Plan { world: 2, rank: 1, drop_last: true, ..Plan::default() }).unwrap();
        assert_eq!(even, [1, 3, 5]);
        assert!(plan(5, &Plan { rank: 2, world: 2, ..Plan::default() }).is_err());
        assert!(plan(5, &Plan { batch_size: 0, ..Plan::default() }).is_err());
    }
}
