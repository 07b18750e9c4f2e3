//! Blocks read ahead on threads, handed back in order.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::{Block, LoaderError, PackedDataset};

struct State {
    /// Position (in `indices`) the next idle thread takes.
    next: usize,
    /// Position the consumer waits for.
    wanted: usize,
    /// Finished blocks not yet taken, by position.
    done: BTreeMap<usize, Result<Block, LoaderError>>,
    /// Set when the consumer is dropped: threads stop.
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a block is done (the consumer waits) or one is taken (threads wait).
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads `indices` of a [`PackedDataset`] on `threads` threads of its own, at most `window`
/// blocks ahead of the consumer, and yields them in the order of `indices` (an iterator of
/// `Result<Block>`; a block that fails is an `Err` in its place and the others go on). The
/// threads end when the iterator is exhausted or dropped.
pub struct Prefetch {
    shared: Arc<Shared>,
    len: usize,
    threads: Vec<JoinHandle<()>>,
}

impl Prefetch {
    /// Starts the threads (`threads` at least 1, `window` at least `threads`).
    pub fn new(dataset: Arc<PackedDataset>, indices: Vec<u64>, threads: usize, window: usize) -> Prefetch {
        let threads = threads.max(1);
        let window = window.max(threads);
        let len = indices.len();
        let shared = Arc::new(Shared {
            state: Mutex::new(State { next: 0, wanted: 0, done: BTreeMap::new(), stop: false }),
            changed: Condvar::new(),
        });
        let indices = Arc::new(indices);
        let handles = (0..threads.min(len))
            .map(|_| {
                let (shared, ds, indices) = (Arc::clone(&shared), Arc::clone(&dataset), Arc::clone(&indices));
                std::thread::spawn(move || {
                    let mut fx = ds.extractor();
                    loop {
                        let pos = {
                            let mut s = shared.lock();
                            loop {
                                if s.stop || s.next >= indices.len() {
                                    return;
                                }
                                if s.next < s.wanted + window {
                                    break;
                                }
                                s = shared.changed.wait(s).unwrap_or_else(|p| p.into_inner());
                            }
                            s.next += 1;
                            s.next - 1
                        };
                        // A panic (a bug, never input) becomes this block's error, not a hang.
                        let r =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ds.block(indices[pos], &mut fx)))
                                .unwrap_or_else(|_| {
                                    Err(LoaderError::Options(format!(
                                        "block {}: the reading thread panicked",
                                        indices[pos]
                                    )))
                                });
                        shared.lock().done.insert(pos, r);
                        shared.changed.notify_all();
                    }
                })
            })
            .collect();
        Prefetch { shared, len, threads: handles }
    }
}

impl Iterator for Prefetch {
    type Item = Result<Block, LoaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut s = self.shared.lock();
        if s.wanted >= self.len {
            return None;
        }
        loop {
            let wanted = s.wanted;
            if let Some(r) = s.done.remove(&wanted) {
                s.wanted += 1;
                drop(s);
                self.shared.changed.notify_all();
                return Some(r);
            }
            s = self.shared.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.shared.lock().wanted.min(self.len);
        (left, Some(left))
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
