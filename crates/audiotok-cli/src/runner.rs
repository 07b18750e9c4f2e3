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
    /// Worker threads (0: one per core; at most 1024).
    #[arg(long, short, default_value_t = 0, value_parser = parse_jobs)]
    pub jobs: usize,
    /// Exit 0 even when some files failed (they are still reported).
    #[arg(long)]
    pub keep_going: bool,
    /// Audio files or directories (walked recursively).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub inputs: Vec<PathBuf>,
}

/// The most worker threads `--jobs` may ask for: far past any core count, far below what the
/// system's thread limit or the stacks' memory would refuse.
pub const MAX_JOBS: usize = 1024;

/// Parses `--jobs`: a thread count from 0 (one per core) to [`MAX_JOBS`].
pub fn parse_jobs(s: &str) -> std::result::Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{s:?} is not a thread count: {e}"))?;
    if n > MAX_JOBS {
        return Err(format!("{n} threads: at most {MAX_JOBS} (0 uses one per core)"));
    }
    Ok(n)
}

/// One input file and where it came from.
#[derive(Debug, Clone)]
pub struct Input {
    /// The file.
    pub path: PathBuf,
    /// Its path relative to the directory argument it was found under (its file name when it was
    /// named directly).
    pub rel: PathBuf,
    /// Why the walk could not read this path (a dangling symlink, a symlink loop, an unreadable
    /// folder): the input is a failure with this reason, and is not opened.
    pub unreadable: Option<String>,
}

impl Input {
    /// `Err(reason)` for a path the walk could not read.
    pub fn readable(&self) -> std::result::Result<(), String> {
        match &self.unreadable {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }
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
                let rel = |p: &Path| p.strip_prefix(arg).unwrap_or(p).to_path_buf();
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(e) => {
                        // One bad path is a failure of that path, not of the walk.
                        let path = e.path().unwrap_or(arg).to_path_buf();
                        let reason = walk_error_text(&path, &e);
                        found.push(Input { rel: rel(&path), path, unreadable: Some(reason) });
                        continue;
                    }
                };
                if entry.file_type().is_dir() {
                    continue;
                }
                if is_audio(entry.path()) && !entry.file_type().is_file() {
                    // Never opened (a FIFO would block the run), but reported.
                    let path = entry.path().to_path_buf();
                    let reason = format!("{}: not a regular file (a FIFO, socket or device)", path.display());
                    found.push(Input { rel: rel(&path), path, unreadable: Some(reason) });
                } else if is_audio(entry.path()) {
                    found.push(Input { path: entry.path().to_path_buf(), rel: rel(entry.path()), unreadable: None });
                } else {
                    ignored += 1;
                }
            }
            files.extend(found);
        } else {
            let rel = PathBuf::from(arg.file_name().unwrap_or(arg.as_os_str()));
            files.push(Input { path: arg.clone(), rel, unreadable: None });
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

/// What went wrong with one path of a walk, naming the path.
fn walk_error_text(path: &Path, e: &walkdir::Error) -> String {
    if let Some(ancestor) = e.loop_ancestor() {
        return format!("{}: symlink loop (leads back to {})", path.display(), ancestor.display());
    }
    let dangling = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
        && std::fs::metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
    if dangling {
        return format!("{}: dangling symlink (its target does not exist)", path.display());
    }
    match e.io_error() {
        Some(io) => format!("{}: cannot read: {io}", path.display()),
        None => format!("{}: cannot read: {e}", path.display()),
    }
}

/// `p` as text that says exactly which file it is: a UTF-8 path as it is; in any other path each
/// byte that is not UTF-8 is written `\xNN` and a backslash `\\` (see [`path_escaped`]).
pub fn path_text(p: &Path) -> String {
    if let Some(s) = p.to_str() {
        return s.to_string();
    }
    let mut out = String::new();
    for chunk in p.as_os_str().as_encoded_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Whether [`path_text`] escapes `p` (it is not UTF-8): manifests then say so.
pub fn path_escaped(p: &Path) -> bool {
    p.to_str().is_none()
}

/// A failure reason about `p` with the lossy rendering of a non-UTF-8 `p` (U+FFFD for each bad
/// byte, which two different names can share) replaced by [`path_text`].
pub fn reason_about(p: &Path, reason: String) -> String {
    if !path_escaped(p) {
        return reason;
    }
    reason.replace(&p.display().to_string(), &path_text(p))
}

/// The result of one file's job.
pub type Outcome<T> = std::result::Result<T, String>;

/// Runs `job` on every input with `jobs` threads (0: all cores), each thread owning a state made
/// by `init` (planned FFTs, buffers); `job` gets the input's index. Results come back in input order, whatever the scheduling.
/// An input the walk could not read fails with its reason, without `job`.
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
                let r = input.readable().and_then(|()| job(state, i, input)).map_err(|e| reason_about(&input.path, e));
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
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn path_text_escapes_only_non_utf8_paths_and_unambiguously() {
        assert_eq!(path_text(Path::new("a\\b/ü.wav")), "a\\b/ü.wav");
        assert!(!path_escaped(Path::new("a\\b/ü.wav")));
        let odd = Path::new(std::ffi::OsStr::from_bytes(b"a\\x/\xff\xfe.wav"));
        assert_eq!(path_text(odd), "a\\\\x/\\xff\\xfe.wav");
        assert!(path_escaped(odd));
        let reason = format!("{}: broken", odd.display());
        assert_eq!(reason_about(odd, reason), "a\\\\x/\\xff\\xfe.wav: broken");
    }

    #[test]
    fn jobs_are_bounded() {
        assert_eq!(parse_jobs("0"), Ok(0));
        assert_eq!(parse_jobs("1024"), Ok(1024));
        assert_eq!(parse_jobs("1025").unwrap_err(), "1025 threads: at most 1024 (0 uses one per core)");
        assert!(parse_jobs("-1").is_err());
    }
}
