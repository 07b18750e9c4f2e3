//! Exact counting of `u64` keys (hashed n-grams) in bounded memory.
//!
//! A [`CounterSet`] holds one counter per (stream, n-gram order). Keys are appended to a buffer;
//! when the buffers of all counters together reach a limit they are flushed: each buffer is
//! partition-sorted, run-length counted and merged, in place from the back, into that counter's
//! sorted table of distinct keys and counts (the orders in parallel). Sequential memory traffic
//! only, unlike a hash map whose probes miss the cache once it outgrows it.
//!
//! With a memory limit, the tables together may hold at most a share of it: before a flush that
//! could exceed it, the largest tables are written to anonymous temporary files as sorted runs
//! (delta-coded keys and counts as LEB128 varints, about 7 bytes per entry for high-entropy keys
//! instead of 16 in memory) and dropped from memory. [`CounterSet::finish`] merges each counter's
//! runs with its table (a k-way merge, streaming) into the number of distinct keys and the sum of
//! the 10 largest counts: the only figures the statistics need. Results are identical with and
//! without spilling.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Keys buffered per counter before a flush when memory is not limited.
const FLUSH_PER_COUNTER: usize = 1 << 23;

/// Smallest total buffer (keys), so that tiny limits still make progress.
const MIN_FLUSH: usize = 1 << 12;

/// Bytes of one in-memory table entry (key and count).
const ENTRY_BYTES: u64 = 16;

/// I/O chunk of a spilled run, written and read.
const IO_CHUNK: usize = 1 << 20;

/// Runs of one level a counter holds at most before they are merged into one run of the next
/// level (see [`KeyCounter::spill`]).
const RUN_FAN_IN: usize = 4;

/// The two figures the statistics need of one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tally {
    /// Distinct keys.
    pub distinct: u64,
    /// Sum of the 10 largest counts.
    pub top10: u64,
}

/// The 10 largest counts seen, ascending, in a fixed array.
#[derive(Default)]
struct Top10([u64; 10]);

impl Top10 {
    #[inline]
    fn push(&mut self, c: u64) {
        let top = &mut self.0;
        if c > top[0] {
            let mut i = 0;
            while i + 1 < top.len() && top[i + 1] < c {
                top[i] = top[i + 1];
                i += 1;
            }
            top[i] = c;
        }
    }

    fn sum(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// A sorted run of `(key, count)` written to a temporary file.
struct Run {
    file: File,
    /// 0 for a spilled table, `l + 1` for a merge of runs of level `l`.
    level: u32,
}

/// Writes a sorted run: delta-coded keys and counts as varints, a chunk at a time.
struct RunWriter {
    file: File,
    out: Vec<u8>,
    prev: u64,
    written: u64,
}

impl RunWriter {
    fn new(dir: &Path) -> io::Result<Self> {
        Ok(RunWriter { file: tempfile::tempfile_in(dir)?, out: Vec::with_capacity(IO_CHUNK + 20), prev: 0, written: 0 })
    }

    /// Appends `(k, c)`; keys must come in ascending order.
    fn push(&mut self, k: u64, c: u64) -> io::Result<()> {
        put_varint(&mut self.out, k - self.prev);
        put_varint(&mut self.out, c);
        self.prev = k;
        if self.out.len() >= IO_CHUNK {
            self.file.write_all(&self.out)?;
            self.written += self.out.len() as u64;
            self.out.clear();
        }
        Ok(())
    }

    /// The file and the bytes written.
    fn finish(mut self) -> io::Result<(File, u64)> {
        self.file.write_all(&self.out)?;
        self.written += self.out.len() as u64;
        self.file.flush()?;
        Ok((self.file, self.written))
    }
}

/// One counter: the buffer of keys not yet counted, the sorted table of distinct keys with their
/// counts, and the runs spilled to disk.
#[derive(Default)]
pub(crate) struct KeyCounter {
    pub(crate) buf: Vec<u64>,
    keys: Vec<u64>,
    counts: Vec<u64>,
    runs: Vec<Run>,
}

impl KeyCounter {
    /// Counts the buffer into the table.
    fn flush(&mut self, scratch: &mut Vec<u64>) {
        if self.buf.is_empty() {
            return;
        }
        partition_sort(&mut self.buf, scratch);
        // Count runs in place: the buffer becomes its own table of distinct keys.
        let b = &mut self.buf;
        let mut counts = Vec::new();
        let (mut w, mut i) = (0, 0);
        while i < b.len() {
            let k = b[i];
            let mut r = i + 1;
            while r < b.len() && b[r] == k {
                r += 1;
            }
            b[w] = k;
            counts.push((r - i) as u64);
            w += 1;
            i = r;
        }
        b.truncate(w);
        if self.keys.is_empty() {
            let mut keys = std::mem::take(&mut self.buf);
            if keys.capacity() > 2 * keys.len() {
                keys.shrink_to_fit();
            }
            self.keys = keys;
            self.counts = counts;
            return;
        }
        merge_into(&mut self.keys, &mut self.counts, &self.buf, &counts);
        self.buf.clear();
    }

    /// Writes the table to a temporary file in `dir` as a sorted run and frees it; returns the
    /// bytes written (merges included).
    ///
    /// The runs form levels, like the digits of a counter in base [`RUN_FAN_IN`]: when the last
    /// `RUN_FAN_IN` runs are of one level, they are merged into one run of the next. A counter
    /// so holds at most `RUN_FAN_IN - 1` runs per level, a number of open files and of read
    /// buffers (at [`CounterSet::finish`]) logarithmic in what was spilled, and each entry is
    /// rewritten once per level.
    fn spill(&mut self, dir: &Path) -> io::Result<u64> {
        if self.keys.is_empty() {
            return Ok(0);
        }
        let mut w = RunWriter::new(dir)?;
        for (&k, &c) in self.keys.iter().zip(&self.counts) {
            w.push(k, c)?;
        }
        let (file, mut written) = w.finish()?;
        self.runs.push(Run { file, level: 0 });
        self.keys = Vec::new();
        self.counts = Vec::new();
        loop {
            let n = self.runs.len();
            if n < RUN_FAN_IN {
                break;
            }
            let level = self.runs[n - 1].level;
            if self.runs[n - RUN_FAN_IN..].iter().any(|r| r.level != level) {
                break;
            }
            let (file, bytes) = merge_runs(&mut self.runs[n - RUN_FAN_IN..], dir)?;
            self.runs.truncate(n - RUN_FAN_IN);
            self.runs.push(Run { file, level: level + 1 });
            written += bytes;
        }
        Ok(written)
    }

    /// Distinct keys and the top-10 sum over the table and every spilled run.
    fn tally(&mut self) -> io::Result<Tally> {
        let mut top = Top10::default();
        if self.runs.is_empty() {
            for &c in &self.counts {
                top.push(c);
            }
            return Ok(Tally { distinct: self.keys.len() as u64, top10: top.sum() });
        }
        let table = self.keys.iter().zip(&self.counts).map(|(&k, &c)| (k, c));
        let mut distinct = 0u64;
        merge_sorted(&mut self.runs, table, |_, c| {
            distinct += 1;
            top.push(c);
            Ok(())
        })?;
        Ok(Tally { distinct, top10: top.sum() })
    }
}

/// Merges sorted runs into one new run in `dir` (counts of equal keys added); returns its file
/// and the bytes written.
fn merge_runs(runs: &mut [Run], dir: &Path) -> io::Result<(File, u64)> {
    let mut w = RunWriter::new(dir)?;
    merge_sorted(runs, std::iter::empty(), |k, c| w.push(k, c))?;
    w.finish()
}

/// K-way merge of sorted runs and a sorted in-memory table: calls `emit` once per distinct key,
/// in ascending order, with its counts added up.
fn merge_sorted(
    runs: &mut [Run],
    mut table: impl Iterator<Item = (u64, u64)>,
    mut emit: impl FnMut(u64, u64) -> io::Result<()>,
) -> io::Result<()> {
    let mut readers = Vec::with_capacity(runs.len());
    for run in runs.iter_mut() {
        run.file.seek(SeekFrom::Start(0))?;
        readers.push(RunReader::new(&mut run.file));
    }
    // Heap of (key, source); source `readers.len()` is the in-memory table.
    let table_src = readers.len();
    let mut heads: Vec<u64> = vec![0; table_src + 1];
    let mut heap = BinaryHeap::with_capacity(table_src + 1);
    for (i, r) in readers.iter_mut().enumerate() {
        if let Some((k, c)) = r.next()? {
            heads[i] = c;
            heap.push(Reverse((k, i)));
        }
    }
    if let Some((k, c)) = table.next() {
        heads[table_src] = c;
        heap.push(Reverse((k, table_src)));
    }
    let mut current: Option<(u64, u64)> = None;
    while let Some(Reverse((k, src))) = heap.pop() {
        let c = heads[src];
        match &mut current {
            Some((ck, cc)) if *ck == k => *cc += c,
            _ => {
                if let Some((pk, pc)) = current {
                    emit(pk, pc)?;
                }
                current = Some((k, c));
            }
        }
        let next = if src == table_src { table.next() } else { readers[src].next()? };
        if let Some((nk, nc)) = next {
            heads[src] = nc;
            heap.push(Reverse((nk, src)));
        }
    }
    if let Some((pk, pc)) = current {
        emit(pk, pc)?;
    }
    Ok(())
}

/// Merges a sorted table of distinct keys with counts (`nk`, `nc`) into another (`keys`,
/// `counts`), in place from the back: the table grows to the merged length (a reallocation the
/// allocator can do without copying) and no second table is ever built.
fn merge_into(keys: &mut Vec<u64>, counts: &mut Vec<u64>, nk: &[u64], nc: &[u64]) {
    let old = keys.len();
    // Merged length: old + new - common.
    let (mut i, mut j, mut common) = (0, 0, 0);
    while i < old && j < nk.len() {
        match keys[i].cmp(&nk[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let total = old + nk.len() - common;
    keys.reserve_exact(total - old);
    counts.reserve_exact(total - old);
    keys.resize(total, 0);
    counts.resize(total, 0);
    // Backward merge: the write position never passes the unread part of the old table.
    let (mut i, mut j, mut w) = (old, nk.len(), total);
    while j > 0 {
        w -= 1;
        if i > 0 && keys[i - 1] > nk[j - 1] {
            i -= 1;
            keys[w] = keys[i];
            counts[w] = counts[i];
        } else if i > 0 && keys[i - 1] == nk[j - 1] {
            i -= 1;
            j -= 1;
            keys[w] = nk[j];
            counts[w] = counts[i] + nc[j];
        } else {
            j -= 1;
            keys[w] = nk[j];
            counts[w] = nc[j];
        }
    }
    debug_assert_eq!(w, i);
}

/// Appends `v` as an unsigned LEB128 varint.
#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a spilled run back, a chunk at a time.
struct RunReader<'a> {
    file: &'a mut File,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    prev: u64,
}

impl<'a> RunReader<'a> {
    fn new(file: &'a mut File) -> Self {
        RunReader { file, buf: vec![0; IO_CHUNK], pos: 0, end: 0, eof: false, prev: 0 }
    }

    /// Keeps at least 20 bytes (two varints) in the buffer unless the file ends first.
    fn fill(&mut self) -> io::Result<()> {
        if self.end - self.pos >= 20 || self.eof {
            return Ok(());
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        while self.end < self.buf.len() {
            let n = self.file.read(&mut self.buf[self.end..])?;
            if n == 0 {
                self.eof = true;
                break;
            }
            self.end += n;
        }
        Ok(())
    }

    fn varint(&mut self) -> io::Result<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            if self.pos >= self.end || shift > 63 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "spilled n-gram run is truncated"));
            }
            let b = self.buf[self.pos];
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    fn next(&mut self) -> io::Result<Option<(u64, u64)>> {
        self.fill()?;
        if self.pos >= self.end {
            return Ok(None);
        }
        let k = self.prev + self.varint()?;
        let c = self.varint()?;
        self.prev = k;
        Ok(Some((k, c)))
    }
}

/// Sorts `u64` keys: one counting pass scatters them by their top 8 bits (the keys are well
/// mixed, so the buckets are even and each fits in cache), then each bucket is sorted.
pub(crate) fn partition_sort(v: &mut Vec<u64>, scratch: &mut Vec<u64>) {
    const TOP_BITS: u32 = 8;
    let shift = 64 - TOP_BITS;
    let mut hist = vec![0usize; 1 << TOP_BITS];
    for &x in v.iter() {
        hist[(x >> shift) as usize] += 1;
    }
    let mut off = Vec::with_capacity(hist.len() + 1);
    let mut sum = 0;
    for &c in &hist {
        off.push(sum);
        sum += c;
    }
    off.push(sum);
    let mut next = off.clone();
    scratch.clear();
    scratch.resize(v.len(), 0);
    for &x in v.iter() {
        let b = (x >> shift) as usize;
        scratch[next[b]] = x;
        next[b] += 1;
    }
    for w in off.windows(2) {
        scratch[w[0]..w[1]].sort_unstable();
    }
    std::mem::swap(v, scratch);
}

/// Runs `f` on every item, the items shared out over the available cores (largest first, dealt
/// round-robin); the first error wins.
fn for_each_parallel<T: Send>(
    items: Vec<&mut T>,
    size: impl Fn(&T) -> usize,
    f: impl Fn(&mut T, &mut Vec<u64>) -> io::Result<()> + Sync,
) -> io::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, items.len().max(1));
    let mut items = items;
    if threads == 1 {
        let mut scratch = Vec::new();
        for it in items {
            f(it, &mut scratch)?;
        }
        return Ok(());
    }
    items.sort_by_key(|c| Reverse(size(c)));
    let mut groups: Vec<Vec<&mut T>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, c) in items.into_iter().enumerate() {
        groups[i % threads].push(c);
    }
    let f = &f;
    std::thread::scope(|sc| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|g| {
                sc.spawn(move || {
                    let mut scratch = Vec::new();
                    for c in g {
                        f(c, &mut scratch)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().unwrap_or_else(|_| Err(io::Error::other("an n-gram counting thread panicked"))))
    })
}

/// Figures about spilling, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SpillTotals {
    pub runs: u64,
    pub bytes: u64,
}

/// The counters of an analyzer and the memory policy over all of them.
pub(crate) struct CounterSet {
    pub(crate) counters: Vec<KeyCounter>,
    /// Flush when the buffers hold this many keys in all.
    flush_keys: usize,
    /// Most table entries held in memory in all (no limit: `None`).
    table_limit: Option<u64>,
    spill_dir: PathBuf,
    pub(crate) spilled: SpillTotals,
}

/// A spill that failed: the directory and the I/O error.
#[derive(Debug)]
pub(crate) struct SpillError {
    pub dir: PathBuf,
    pub source: io::Error,
}

impl CounterSet {
    /// `n` counters. With `memory_limit` bytes, buffers take at most an eighth of it and tables
    /// half; without, buffers flush at 8M keys per counter and tables are never spilled.
    pub(crate) fn new(n: usize, memory_limit: Option<u64>, spill_dir: PathBuf) -> Self {
        let (flush_keys, table_limit) = match memory_limit {
            None => (FLUSH_PER_COUNTER * n.max(1), None),
            Some(m) => {
                let flush =
                    usize::try_from(m / 8 / 8).unwrap_or(usize::MAX).clamp(MIN_FLUSH, FLUSH_PER_COUNTER * n.max(1));
                // Tables: half the limit, and never below two flushes' worth of entries.
                let tables = (m / 2 / ENTRY_BYTES).max(2 * flush as u64);
                (flush, Some(tables))
            }
        };
        CounterSet {
            counters: (0..n).map(|_| KeyCounter::default()).collect(),
            flush_keys,
            table_limit,
            spill_dir,
            spilled: SpillTotals::default(),
        }
    }

    /// Flushes when the buffers are full.
    pub(crate) fn maybe_flush(&mut self) -> Result<(), SpillError> {
        let buffered: usize = self.counters.iter().map(|c| c.buf.len()).sum();
        if buffered >= self.flush_keys {
            self.flush()?;
        }
        Ok(())
    }

    /// Counts every buffer into its table, first spilling the largest tables when the result
    /// could pass the table limit.
    pub(crate) fn flush(&mut self) -> Result<(), SpillError> {
        let incoming: u64 = self.counters.iter().map(|c| c.buf.len() as u64).sum();
        if incoming == 0 {
            return Ok(());
        }
        let mut spill = vec![false; self.counters.len()];
        if let Some(limit) = self.table_limit {
            let mut held: u64 = self.counters.iter().map(|c| c.keys.len() as u64).sum();
            if held + incoming > limit {
                let mut order: Vec<usize> =
                    (0..self.counters.len()).filter(|&i| !self.counters[i].keys.is_empty()).collect();
                order.sort_by_key(|&i| (Reverse(self.counters[i].keys.len()), i));
                for i in order {
                    if held + incoming <= limit {
                        break;
                    }
                    spill[i] = true;
                    held -= self.counters[i].keys.len() as u64;
                }
            }
        }
        let dir = &self.spill_dir;
        let written = AtomicU64::new(0);
        let runs = AtomicU64::new(0);
        let mut items: Vec<(&mut KeyCounter, bool)> = self.counters.iter_mut().zip(spill).collect();
        let refs: Vec<&mut (&mut KeyCounter, bool)> = items.iter_mut().collect();
        for_each_parallel(
            refs,
            |(c, s)| c.buf.len() + if *s { c.keys.len() } else { 0 },
            |(c, s), scratch| {
                if *s {
                    let n = c.spill(dir)?;
                    written.fetch_add(n, Ordering::Relaxed);
                    runs.fetch_add(1, Ordering::Relaxed);
                }
                c.flush(scratch);
                Ok(())
            },
        )
        .map_err(|source| SpillError { dir: dir.clone(), source })?;
        self.spilled.bytes += written.into_inner();
        self.spilled.runs += runs.into_inner();
        Ok(())
    }

    /// Flushes the rest and gives each counter's tally, in order.
    pub(crate) fn finish(&mut self) -> Result<Vec<Tally>, SpillError> {
        self.flush()?;
        let mut tallies = vec![Tally::default(); self.counters.len()];
        let mut items: Vec<(&mut KeyCounter, &mut Tally)> = self.counters.iter_mut().zip(tallies.iter_mut()).collect();
        let refs: Vec<&mut (&mut KeyCounter, &mut Tally)> = items.iter_mut().collect();
        for_each_parallel(
            refs,
            |(c, _)| c.keys.len() + c.runs.len() * IO_CHUNK,
            |(c, t), _| {
                **t = c.tally()?;
                Ok(())
            },
        )
        .map_err(|source| SpillError { dir: self.spill_dir.clone(), source })?;
        Ok(tallies)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use super::*;

    fn keys(n: usize, seed: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                // Many repeats, and keys sharing high bytes.
                if i % 3 == 0 {
                    x % 97
                } else {
                    x >> (i % 5 * 8)
                }
            })
            .collect()
    }

    fn reference(keys: &[u64]) -> (BTreeMap<u64, u64>, Tally) {
        let mut m: BTreeMap<u64, u64> = BTreeMap::new();
        for &k in keys {
            *m.entry(k).or_insert(0) += 1;
        }
        let mut c: Vec<u64> = m.values().copied().collect();
        c.sort_unstable();
        let t = Tally { distinct: m.len() as u64, top10: c.iter().rev().take(10).sum() };
        (m, t)
    }

    #[test]
    fn partition_sort_sorts() {
        let k = keys(20000, 12345);
        let mut want = k.clone();
        want.sort_unstable();
        let mut sorted = k;
        partition_sort(&mut sorted, &mut Vec::new());
        assert_eq!(sorted, want);
    }

    #[test]
    fn flushes_merge_exactly() {
        let k = keys(20000, 12345);
        let (m, t) = reference(&k);
        let mut c = KeyCounter::default();
        let mut scratch = Vec::new();
        for (i, &x) in k.iter().enumerate() {
            c.buf.push(x);
            if i % 3001 == 0 {
                c.flush(&mut scratch);
            }
        }
        c.flush(&mut scratch);
        assert_eq!(c.keys, m.keys().copied().collect::<Vec<_>>());
        assert_eq!(c.counts, m.values().copied().collect::<Vec<_>>());
        assert_eq!(c.tally().unwrap(), t);
    }

    #[test]
    fn spilled_runs_give_the_same_tally() {
        let dir = tempfile::tempdir().unwrap();
        for seed in [1u64, 7, 99] {
            let k = keys(50000, seed);
            let (_, want) = reference(&k);
            // 1 KiB: buffers of 4096 keys (the floor), tables of 8192 entries: many spills.
            let mut set = CounterSet::new(3, Some(1024), dir.path().to_path_buf());
            for (i, &x) in k.iter().enumerate() {
                set.counters[i % 3].buf.push(x);
                // The same keys again, in another counter, one per position.
                set.counters[2].buf.push(x);
                set.maybe_flush().unwrap();
            }
            let got = set.finish().unwrap();
            assert!(set.spilled.runs > 3, "{:?}", set.spilled);
            let (_, t0) = reference(&k.iter().step_by(3).copied().collect::<Vec<_>>());
            assert_eq!(got[0], t0);
            let mut two: Vec<u64> = k.iter().skip(2).step_by(3).copied().collect();
            two.extend(&k);
            assert_eq!(got[2], reference(&two).1);
            // Unlimited: no spill, same figures.
            let mut free = CounterSet::new(1, None, dir.path().to_path_buf());
            free.counters[0].buf.extend(&k);
            assert_eq!(free.finish().unwrap()[0], want);
            assert_eq!(free.spilled, SpillTotals::default());
        }
        // Every run file was anonymous: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn varints_round_trip_through_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = KeyCounter {
            keys: vec![0, 1, 127, 128, 1 << 40, u64::MAX],
            counts: vec![1, 300, 1 << 33, 2, 5, 7],
            ..Default::default()
        };
        c.spill(dir.path()).unwrap();
        assert!(c.keys.is_empty());
        c.keys = vec![127, 5000];
        c.counts = vec![10, 1];
        // 127 appears in both: 1<<33 + 10.
        assert_eq!(c.tally().unwrap(), Tally { distinct: 7, top10: 1 + 300 + (1 << 33) + 10 + 2 + 5 + 7 + 1 });
    }

    #[test]
    fn backward_merge_matches_a_map() {
        let mut keys = vec![2, 4, 6, 8];
        let mut counts = vec![1, 1, 1, 1];
        merge_into(&mut keys, &mut counts, &[1, 4, 5, 9, 10], &[3, 3, 3, 3, 3]);
        assert_eq!(keys, vec![1, 2, 4, 5, 6, 8, 9, 10]);
        assert_eq!(counts, vec![3, 1, 4, 3, 1, 1, 3, 3]);
        let mut keys = vec![5];
        let mut counts = vec![2];
        merge_into(&mut keys, &mut counts, &[5], &[1]);
        assert_eq!((keys, counts), (vec![5], vec![3]));
    }
}

#[cfg(test)]
mod run_bound_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Each spilled run stays an open file (and gets a 1 MiB read buffer at the end) until
    /// `finish`, so the runs of a counter must stay few however much is spilled; here about
    /// 600 pile up (an open-file limit of 1024 is then near) and the 1 MiB limit is far exceeded
    /// by the read buffers.
    #[test]
    fn spilled_runs_per_counter_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = CounterSet::new(6, Some(1 << 20), dir.path().to_path_buf());
        let mut x = 3u64;
        let mut all: Vec<Vec<u64>> = vec![Vec::new(); 6];
        for _ in 0..300 {
            for _ in 0..2000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                for (j, c) in set.counters.iter_mut().enumerate() {
                    let k = x.rotate_left(j as u32 * 7) % (1000 << (j * 8).min(40));
                    c.buf.push(k);
                    all[j].push(k);
                }
            }
            set.maybe_flush().unwrap();
        }
        set.flush().unwrap();
        let most = set.counters.iter().map(|c| c.runs.len()).max().unwrap();
        let got = set.finish().unwrap();
        for (j, keys) in all.iter().enumerate() {
            let mut s = keys.clone();
            s.sort_unstable();
            s.dedup();
            assert_eq!(got[j].distinct, s.len() as u64, "counter {j}");
        }
        assert!(most <= 16, "{most} runs in one counter, {} in all", set.spilled.runs);
    }
}
