//! Job plumbing shared by every audiotok stage, so that each pipeline lives once in its library
//! crate and the fronts (the `audiotok` CLI, the Python bindings) only convert arguments and
//! draw progress:
//!
//! - [`Observer`]: what a running job reports (phases, progress, warnings). The CLI turns it
//!   into progress bars on stderr; the Python bindings into a callback. [`Silent`] ignores it.
//! - [`inputs`]: FILE|DIR arguments walked into audio inputs, one bad path a failure of its own.
//! - [`paths`]: a path as text that names exactly one file (non-UTF-8 bytes escaped).
//! - [`parallel`]: a job per input on a bounded rayon pool of the job's own, results in input
//!   order (no global pool is started, so a forked process never inherits one).
//! - [`atomic`]: the one atomic-write mechanism, for user-named outputs (links followed, devices
//!   and FIFOs written in place, stale temporaries removed) and for the files of a folder a job
//!   owns (MDS shards, token store batches).

pub mod atomic;
pub mod inputs;
pub mod observer;
pub mod parallel;
pub mod paths;

pub use inputs::{collect, Clip, Fetch, Input, Inputs, Origin, AUDIO_EXTENSIONS};
pub use observer::{Observer, Recorder, Silent};
pub use parallel::{check_jobs, run_parallel, thread_pool, Outcome, MAX_JOBS};
pub use paths::{path_escaped, path_text, reason_about};

use std::path::PathBuf;

/// What can stop a job before its per-input work begins.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// An argument could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    CannotRead {
        /// The argument.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The arguments held no audio file.
    #[error("no audio files found in {0}")]
    NoAudio(String),
    /// A thread count above [`MAX_JOBS`].
    #[error("{0} threads: at most {MAX_JOBS} (0 uses one per core)")]
    TooManyJobs(usize),
    /// The worker threads could not be started.
    #[error("starting the thread pool: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
}

/// An error and its causes joined by ": ", leaving out a cause whose text an outer message
/// already quotes (library errors often say "PATH: {source}" and also expose the source): the
/// one way every front (the CLI, the Python exceptions) prints an error.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
