//! The CLI side of the batch subcommands: shared arguments, progress bars drawn from the jobs'
//! [`Observer`] events, the closing summary, and atomic writes of user-named outputs. Walking
//! (`collect`) is the library's (`audiotok_core`), re-exported here.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use audiotok_core::Inputs;
pub use audiotok_core::Observer;
use audiotok_sources::{SourceFormat, SourceOptions};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments shared by the batch subcommands (`features`, `count`).
#[derive(clap::Args)]
pub struct BatchArgs {
    /// Worker threads (0: one per core; at most 1024).
    #[arg(long, short, default_value_t = 0, value_parser = parse_jobs)]
    pub jobs: usize,
    /// Exit 0 even when some files failed (they are still reported).
    #[arg(long)]
    pub keep_going: bool,
    /// Audio files, directories (walked recursively) or sources: Parquet shards or folders of
    /// them (HF datasets, the hub cache), `save_to_disk` folders, webdataset tars, lhotse cuts,
    /// CSV/TSV/JSONL manifests.
    #[arg(required = true, value_name = "FILE|DIR|SOURCE")]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub sources: SourceArgs,
}

/// How sources among the inputs are read (see `audiotok_sources`).
#[derive(clap::Args, Clone, Default)]
pub struct SourceArgs {
    /// Read every input as this kind instead of detecting it by extension and folder layout.
    #[arg(long, value_name = "KIND", value_parser = parse_format)]
    pub source_format: Option<SourceFormat>,
    /// Parquet/Arrow: the audio column (default: the one datasets types `Audio`, else the first
    /// struct of bytes and path).
    #[arg(long, value_name = "COLUMN")]
    pub audio_column: Option<String>,
    /// Manifests: the column of audio paths (default: path, audio_filepath, audio_path, audio,
    /// file, filename or wav).
    #[arg(long, value_name = "COLUMN")]
    pub path_column: Option<String>,
}

fn parse_format(s: &str) -> std::result::Result<SourceFormat, String> {
    s.parse()
}

impl SourceArgs {
    /// The options of `audiotok_sources::collect`.
    pub fn options(&self) -> SourceOptions {
        SourceOptions {
            format: self.source_format,
            audio_column: self.audio_column.clone(),
            path_column: self.path_column.clone(),
        }
    }
}

/// Lists the records of FILE|DIR|SOURCE arguments ([`audiotok_sources::collect`]).
pub fn collect(inputs: &[PathBuf], sources: &SourceArgs) -> Result<Inputs> {
    Ok(audiotok_sources::collect(inputs, &sources.options())?)
}

/// Parses `--jobs`: a thread count from 0 (one per core) to [`audiotok_core::MAX_JOBS`].
pub fn parse_jobs(s: &str) -> std::result::Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{s:?} is not a thread count: {e}"))?;
    audiotok_core::check_jobs(n).map_err(|e| e.to_string())
}

/// Draws a job's phases as progress bars on stderr ([`progress_bar`]) and prints its warnings.
#[derive(Default)]
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    fn with(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        match self.bar.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

impl Observer for Bars {
    fn begin(&self, phase: &str, total: u64, unit: &str) {
        self.with(|b| {
            if let Some(old) = b.replace(progress_bar(total, phase, unit)) {
                old.finish_and_clear();
            }
        });
    }
    fn advance(&self, n: u64) {
        self.with(|b| {
            if let Some(bar) = b.as_ref() {
                bar.inc(n);
            }
        });
    }
    fn end(&self) {
        self.with(|b| {
            if let Some(bar) = b.take() {
                bar.finish_and_clear();
            }
        });
    }
    fn warn(&self, message: &str) {
        self.with(|b| match b.as_ref() {
            Some(bar) => bar.suspend(|| eprintln!("warning: {message}")),
            None => eprintln!("warning: {message}"),
        });
    }
}

/// A progress bar on stderr: `PREFIX [====>   ] pos/len UNIT  elapsed (eta)`.
pub fn progress_bar(len: u64, prefix: &str, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template = format!("{{prefix:>10}} [{{bar:30}}] {{pos}}/{{len}} {unit}  {{elapsed_precise}} (eta {{eta}})");
    bar.set_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}

/// Totals printed at the end of a batch run.
pub struct Summary<'a> {
    /// Verb for the line, e.g. "features".
    pub label: &'a str,
    /// Files that succeeded.
    pub done: usize,
    /// `(file, reason)` for every failure, in input order; the reason names the file.
    pub failed: Vec<(&'a Path, String)>,
    /// Files ignored under directories (not audio).
    pub ignored: usize,
    /// Seconds of audio processed.
    pub audio_secs: f64,
    /// Wall time.
    pub elapsed: Duration,
}

impl Summary<'_> {
    /// Prints the summary to stderr and returns the exit code: 1 when a file failed, unless
    /// `keep_going`.
    pub fn finish(&self, keep_going: bool) -> ExitCode {
        for (_, reason) in &self.failed {
            eprintln!("failed: {reason}");
        }
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut line = format!(
            "{}: {} done, {} failed, {:.3} h of audio in {:.2} s ({:.1} files/s, {:.0}x real time)",
            self.label,
            self.done,
            self.failed.len(),
            self.audio_secs / 3600.0,
            secs,
            (self.done + self.failed.len()) as f64 / secs,
            self.audio_secs / secs
        );
        if self.ignored > 0 {
            line.push_str(&format!("; {} non-audio files ignored", self.ignored));
        }
        eprintln!("{line}");
        if !self.failed.is_empty() && !keep_going {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// A stopwatch for summaries.
pub fn start() -> Instant {
    Instant::now()
}

/// Writes `bytes` to the user-named output `path` atomically; see [`write_atomic_with`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| Ok(w.write_all(bytes)?))
}

/// Streams `write` into the user-named output `path` as [`audiotok_audio::atomic`] does for every
/// output: a temporary sibling renamed into place (through a symlink to its target; a FIFO or
/// device written directly); on failure `path` is untouched and no temporary file remains.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<()> {
    audiotok_audio::atomic::write_with(path, write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_bounded() {
        assert_eq!(parse_jobs("0"), Ok(0));
        assert_eq!(parse_jobs("1024"), Ok(1024));
        assert_eq!(parse_jobs("1025").unwrap_err(), "1025 threads: at most 1024 (0 uses one per core)");
        assert!(parse_jobs("-1").is_err());
    }
}
