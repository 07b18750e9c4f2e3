//! Shared machinery of the batch subcommands: collecting input files, running a job per file on a
//! rayon pool with a progress bar, and the closing summary.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

/// File extensions treated as audio when walking a directory.
pub const AUDIO_EXTENSIONS: &[&str] =
    &["wav", "wave", "flac", "mp3", "ogg", "oga", "opus", "sph", "aif", "aiff", "m4a", "aac", "webm", "wma"];

/// Arguments shared by the batch subcommands (`features`, `count`).
#[derive(clap::Args)]
pub struct BatchArgs {
    /// Worker threads (0: one per core).
    #[arg(long, short, default_value_t = 0)]
    pub jobs: usize,
    /// Exit 0 even when some files failed (they are still reported).
    #[arg(long)]
    pub keep_going: bool,
    /// Audio files or directories (walked recursively).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub inputs: Vec<PathBuf>,
}

/// One input file and where it came from.
#[derive(Debug, Clone)]
pub struct Input {
    /// The file.
    pub path: PathBuf,
    /// Its path relative to the directory argument it was found under (its file name when it was
    /// named directly).
    pub rel: PathBuf,
}

/// What walking the arguments found.
pub struct Inputs {
    /// Audio files, in argument order, each directory's files sorted by path.
    pub files: Vec<Input>,
    /// Files under directories skipped because their extension is not audio.
    pub ignored: usize,
}

fn is_audio(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Expands FILE|DIR arguments: files are taken as given (whatever their extension, so that a
/// wrongly named file is reported, not skipped); directories are walked recursively for audio
/// extensions. A missing argument is an error.
pub fn collect(args: &[PathBuf]) -> Result<Inputs> {
    let mut files = Vec::new();
    let mut ignored = 0;
    for arg in args {
        let meta = std::fs::metadata(arg).with_context(|| format!("{}: cannot read", arg.display()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            for entry in walkdir::WalkDir::new(arg).follow_links(true).sort_by_file_name() {
                let entry = entry.with_context(|| format!("walking {}", arg.display()))?;
                if !entry.file_type().is_file() {
                    continue;
                }
                if is_audio(entry.path()) {
                    let rel = entry.path().strip_prefix(arg).unwrap_or(entry.path()).to_path_buf();
                    found.push(Input { path: entry.path().to_path_buf(), rel });
                } else {
                    ignored += 1;
                }
            }
            files.extend(found);
        } else {
            let rel = PathBuf::from(arg.file_name().unwrap_or(arg.as_os_str()));
            files.push(Input { path: arg.clone(), rel });
        }
    }
    if files.is_empty() {
        bail!(
            "no audio files found in {}",
            args.iter().map(|a| a.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(Inputs { files, ignored })
}

/// The result of one file's job.
pub type Outcome<T> = std::result::Result<T, String>;

/// Runs `job` on every input with `jobs` threads (0: all cores), each thread owning a state made
/// by `init` (planned FFTs, buffers); `job` gets the input's index. Results come back in input order, whatever the scheduling.
pub fn run_parallel<S, T, I, F>(inputs: &[Input], jobs: usize, label: &str, init: I, job: F) -> Result<Vec<Outcome<T>>>
where
    T: Send,
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, usize, &Input) -> Outcome<T> + Sync + Send,
{
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build().context("starting the thread pool")?;
    let bar = progress_bar(inputs.len() as u64, label, "files");
    let out = pool.install(|| {
        inputs
            .par_iter()
            .enumerate()
            .map_init(&init, |state, (i, input)| {
                let r = job(state, i, input);
                bar.inc(1);
                r
            })
            .collect()
    });
    bar.finish_and_clear();
    Ok(out)
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

/// Writes `bytes` to `path` through a temporary sibling and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| Ok(w.write_all(bytes)?))
}

/// Streams `write` into a temporary sibling of `path`, then renames it into place; on failure the
/// temporary file is removed and `path` is untouched.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<()> {
    let tmp = audiotok_audio::temp_path(path);
    let result = (|| {
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut w = BufWriter::with_capacity(1 << 16, file);
        write(&mut w)?;
        w.flush().with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
