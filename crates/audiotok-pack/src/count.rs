//! The count job: how many audio tokens an encoder profile gives each file, with totals and a
//! length histogram, the whole of `audiotok count`.
//!
//! [`count_files`] measures each input's length at the profile's rate ([`input_length`] in
//! header mode: the verified header length where the container states one, else a decode that
//! keeps nothing, the same length as decoding and resampling, in constant memory), in parallel
//! on a pool of its own, and counts its tokens ([`Profile::count`]); a file that cannot be read
//! is a [`Failure`] with its reason, and the job goes on. The [`CountReport`] serialises to the
//! document `audiotok count --json` prints.
//!
//! [`count_lengths`] is the same count from lengths alone (samples at the profile's rate),
//! without files.

use std::path::{Path, PathBuf};

use audiotok_core::{path_text, Input, Observer};
use audiotok_features::profiles::Profile;
use serde::Serialize;

use crate::lengths::{input_length, LengthMode};
use crate::PackError;

/// The tokens of one clip.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClipCount {
    /// Samples at the profile's rate (mono).
    pub samples: u64,
    /// `samples` in seconds.
    pub duration_s: f64,
    /// Tokens per scale (one entry for single-rate encoders), coarsest first, per codebook.
    pub tokens: Vec<u64>,
    /// Parallel codebooks at each scale.
    pub codebooks: u32,
    /// All tokens over scales and codebooks.
    pub total: u64,
}

/// The tokens `profile` gives a clip of `samples` samples at its rate.
pub fn count_samples(profile: &Profile, samples: u64) -> ClipCount {
    let c = profile.count(samples);
    ClipCount {
        samples,
        duration_s: samples as f64 / f64::from(profile.sample_rate()),
        total: c.total(),
        tokens: c.per_scale,
        codebooks: c.codebooks,
    }
}

/// The tokens `profile` gives each clip of `lengths` (samples at the profile's rate), in order.
pub fn count_lengths(profile: &Profile, lengths: &[u64]) -> Vec<ClipCount> {
    lengths.iter().map(|&n| count_samples(profile, n)).collect()
}

/// One counted file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileCount {
    /// The file ([`path_text`]: non-UTF-8 bytes escaped).
    pub path: String,
    /// Samples at the profile's rate (mono).
    pub samples: u64,
    /// `samples` in seconds.
    pub duration_s: f64,
    /// Tokens per scale, coarsest first, per codebook.
    pub tokens: Vec<u64>,
    /// Parallel codebooks at each scale.
    pub codebooks: u32,
    /// All tokens over scales and codebooks.
    pub total: u64,
}

impl FileCount {
    /// The count `clip` of the file `path`.
    pub fn new(path: &Path, clip: ClipCount) -> FileCount {
        FileCount {
            path: path_text(path),
            samples: clip.samples,
            duration_s: clip.duration_s,
            tokens: clip.tokens,
            codebooks: clip.codebooks,
            total: clip.total,
        }
    }
}

/// A file that could not be counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// The file ([`path_text`]).
    pub path: String,
    /// Why, naming the file.
    pub error: String,
    /// The file as given (not serialised).
    #[serde(skip)]
    pub file: PathBuf,
}

/// Files whose duration lies in `[from_s, to_s)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Lower edge in seconds.
    pub from_s: f64,
    /// Upper edge in seconds (`None`: the last, open bucket).
    pub to_s: Option<f64>,
    /// Files in it.
    pub files: usize,
}

/// Sums over the counted files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Files counted.
    pub files: usize,
    /// Files that failed.
    pub failed: usize,
    /// Seconds of audio counted.
    pub duration_s: f64,
    /// Tokens per scale (the first file's number of scales).
    pub tokens: Vec<u64>,
    /// All tokens.
    pub total: u64,
}

/// What a count job found; serialises to the document `audiotok count --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountReport {
    /// The profile's name.
    pub profile: String,
    /// The rate the lengths are at.
    pub sample_rate: u32,
    /// Counted files, in input order.
    pub files: Vec<FileCount>,
    /// Failed files, in input order.
    pub failed: Vec<Failure>,
    /// Sums.
    pub totals: Totals,
    /// Files by duration ([`EDGES`]).
    pub histogram: Vec<Bucket>,
}

impl CountReport {
    /// The report of `files` and `failed` counted with `profile`: totals and histogram.
    pub fn new(profile: &Profile, files: Vec<FileCount>, failed: Vec<Failure>) -> CountReport {
        let scales = files.first().map_or(1, |f| f.tokens.len());
        let mut tokens = vec![0u64; scales];
        for f in &files {
            for (t, v) in tokens.iter_mut().zip(&f.tokens) {
                *t += v;
            }
        }
        let duration_s: f64 = files.iter().map(|f| f.duration_s).sum();
        CountReport {
            profile: profile.to_string(),
            sample_rate: profile.sample_rate(),
            histogram: histogram(files.iter().map(|f| f.duration_s)),
            totals: Totals {
                files: files.len(),
                failed: failed.len(),
                duration_s,
                total: files.iter().map(|f| f.total).sum(),
                tokens,
            },
            files,
            failed,
        }
    }
}

/// Duration bucket edges in seconds: buckets `[0, 1)`, `[1, 2)`, ..., `[60, ∞)`.
pub const EDGES: &[f64] = &[0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0];

/// Files per duration bucket ([`EDGES`]).
pub fn histogram(durations: impl Iterator<Item = f64>) -> Vec<Bucket> {
    let mut counts = vec![0usize; EDGES.len()];
    for d in durations {
        let i = EDGES.iter().rposition(|&e| d >= e).unwrap_or(0);
        counts[i] += 1;
    }
    EDGES
        .iter()
        .enumerate()
        .map(|(i, &from)| Bucket { from_s: from, to_s: EDGES.get(i + 1).copied(), files: counts[i] })
        .collect()
}

/// Counts the tokens `profile` gives each of `inputs` with `jobs` threads (0: one per core) on a
/// pool of the job's own, progress to `observer` as the phase `count` (in files). Results are
/// in input order; a file that cannot be read (or that the walk could not read) is a
/// [`Failure`]. Errors: only a thread pool that cannot start.
pub fn count_files(
    inputs: &[Input],
    profile: &Profile,
    jobs: usize,
    observer: &dyn Observer,
) -> Result<CountReport, PackError> {
    let rate = profile.sample_rate();
    let results = audiotok_core::run_parallel(
        inputs,
        jobs,
        "count",
        observer,
        || (),
        |_, _, input| {
            let n = input_length(input, rate, LengthMode::Header)?.samples;
            Ok(FileCount::new(&input.path, count_samples(profile, n)))
        },
    )?;
    let mut files = Vec::new();
    let mut failed = Vec::new();
    for (input, r) in inputs.iter().zip(results) {
        match r {
            Ok(f) => files.push(f),
            Err(error) => failed.push(Failure { path: path_text(&input.path), error, file: input.path.clone() }),
        }
    }
    Ok(CountReport::new(profile, files, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_half_open() {
        let h = histogram([0.0, 0.99, 1.0, 59.9, 60.0, 3600.0].into_iter());
        let files: Vec<usize> = h.iter().map(|b| b.files).collect();
        assert_eq!(files, [2, 1, 0, 0, 0, 0, 1, 2]);
        assert_eq!((h[0].from_s, h[0].to_s), (0.0, Some(1.0)));
        assert_eq!((h[7].from_s, h[7].to_s), (60.0, None));
    }

    #[test]
    fn counts_from_lengths_alone() {
        let c = count_lengths(&Profile::Qwen2Audio, &[16_000, 7 * 16_000, 0]);
        assert_eq!(c.iter().map(|c| c.total).collect::<Vec<_>>(), [25, 175, 0]);
        assert_eq!(c[1].duration_s, 7.0);
        let snac = count_samples(&Profile::Snac24, 24_000);
        assert_eq!((snac.tokens, snac.total), (vec![12, 24, 48], 84));
    }
}
