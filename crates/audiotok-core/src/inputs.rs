//! FILE|DIR arguments walked into audio inputs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::CoreError;

/// File extensions treated as audio when walking a directory.
pub const AUDIO_EXTENSIONS: &[&str] =
    &["wav", "wave", "flac", "mp3", "ogg", "oga", "opus", "sph", "aif", "aiff", "m4a", "aac", "webm", "wma"];

/// The encoded bytes of a record that is not a file of its own (a Parquet cell, a tar member),
/// fetched when the record is decoded, not when it is listed: a source lists millions of records
/// in little memory. Implemented by `audiotok-sources`; the reason names the record.
pub trait Fetch: Send + Sync + std::fmt::Debug {
    /// The record's encoded audio file, or why it cannot be had (a reason naming the record).
    fn fetch(&self) -> Result<Vec<u8>, String>;
}

/// Where an input's encoded audio is.
#[derive(Debug, Clone, Default)]
pub enum Origin {
    /// The file at [`Input::path`].
    #[default]
    Path,
    /// Another file: [`Input::path`] is then the record's id (a manifest line, a lhotse cut).
    File(PathBuf),
    /// Bytes fetched on demand; [`Input::path`] is the record's id (`shard.parquet#12`,
    /// `shard.tar#key`), whose extension hints the container.
    Bytes(Arc<dyn Fetch>),
}

/// A segment of the decoded signal: frames `round(start_s * rate)` to `round((start_s +
/// duration_s) * rate)` at the file's own rate (lhotse's `compute_num_samples` rounding), and
/// optionally one channel, taken before any downmix or resampling.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Clip {
    /// Start in seconds.
    pub start_s: f64,
    /// Length in seconds; `None`: to the end of the stream.
    pub duration_s: Option<f64>,
    /// Keep only this channel (0-based); `None`: all.
    pub channel: Option<usize>,
}

/// One input file and where it came from.
#[derive(Debug, Clone)]
pub struct Input {
    /// The file, or for a record of a source (see [`Origin`]) its stable id: what manifests,
    /// rejects and resume name.
    pub path: PathBuf,
    /// Its path relative to the directory argument it was found under (its file name when it was
    /// named directly); for a record, `<source stem>/<row, key or cut id>` with its extension.
    /// Outputs are named after it.
    pub rel: PathBuf,
    /// Why the walk could not read this path (a dangling symlink, a symlink loop, an unreadable
    /// folder, a FIFO), or why a source could not give this record: the input is a failure with
    /// this reason, and is not opened.
    pub unreadable: Option<String>,
    /// Where the encoded audio is.
    pub origin: Origin,
    /// The segment of it to take; `None`: all of it.
    pub clip: Option<Clip>,
    /// The record's other fields (Parquet columns, tar json/txt siblings, manifest columns,
    /// supervision text) as one JSON object; `None` for plain files.
    pub meta: Option<Arc<str>>,
}

impl Input {
    /// An input named directly (not found under a directory).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let rel = PathBuf::from(path.file_name().unwrap_or(path.as_os_str()));
        Self::found(path, rel)
    }

    /// The input `path`, output name `rel`: a plain file, readable, no clip or metadata.
    pub fn found(path: PathBuf, rel: PathBuf) -> Self {
        Self { path, rel, unreadable: None, origin: Origin::Path, clip: None, meta: None }
    }

    /// An input that fails with `reason` without being opened.
    pub fn failed(path: PathBuf, rel: PathBuf, reason: String) -> Self {
        Self { unreadable: Some(reason), ..Self::found(path, rel) }
    }

    /// The file to open when the bytes are a file's: [`Origin::File`]'s, else [`Input::path`].
    pub fn file_path(&self) -> &Path {
        match &self.origin {
            Origin::File(p) => p,
            _ => &self.path,
        }
    }

    /// `Err(reason)` for a path the walk could not read.
    pub fn readable(&self) -> Result<(), String> {
        match &self.unreadable {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }
}

/// What walking the arguments found.
#[derive(Debug, Clone)]
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
/// wrongly named file is reported, not skipped); directories are walked recursively (following
/// links) for audio extensions, each sorted by file name. A missing argument is an error; a path
/// the walk cannot read (dangling link, loop, unreadable folder, FIFO) is an input that fails
/// with its reason. No audio at all is an error.
pub fn collect<P: AsRef<Path>>(args: &[P]) -> Result<Inputs, CoreError> {
    let mut files = Vec::new();
    let mut ignored = 0;
    for arg in args {
        let arg = arg.as_ref();
        let meta =
            std::fs::metadata(arg).map_err(|source| CoreError::CannotRead { path: arg.to_path_buf(), source })?;
        if !meta.is_dir() {
            files.push(Input::file(arg));
            continue;
        }
        for entry in walkdir::WalkDir::new(arg).follow_links(true).sort_by_file_name() {
            let rel = |p: &Path| p.strip_prefix(arg).unwrap_or(p).to_path_buf();
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    // One bad path is a failure of that path, not of the walk.
                    let path = e.path().unwrap_or(arg).to_path_buf();
                    let reason = walk_error_text(&path, &e);
                    files.push(Input::failed(path.clone(), rel(&path), reason));
                    continue;
                }
            };
            if entry.file_type().is_dir() {
                continue;
            }
            if !is_audio(entry.path()) {
                ignored += 1;
            } else if !entry.file_type().is_file() {
                // Never opened (a FIFO would block the run), but reported.
                let path = entry.path().to_path_buf();
                let reason = format!("{}: not a regular file (a FIFO, socket or device)", path.display());
                files.push(Input::failed(path.clone(), rel(&path), reason));
            } else {
                files.push(Input::found(entry.path().to_path_buf(), rel(entry.path())));
            }
        }
    }
    if files.is_empty() {
        let names: Vec<String> = args.iter().map(|a| a.as_ref().display().to_string()).collect();
        return Err(CoreError::NoAudio(names.join(", ")));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_sorted_audio_counts_the_rest_and_reports_bad_paths() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        for name in ["b.wav", "a.FLAC", "sub/c.mp3", "notes.txt"] {
            std::fs::write(d.join(name), b"x").unwrap();
        }
        std::os::unix::fs::symlink(d.join("gone.wav"), d.join("link.wav")).unwrap();
        let found = collect(&[d]).unwrap();
        let rels: Vec<_> = found.files.iter().map(|i| i.rel.to_string_lossy().into_owned()).collect();
        assert_eq!(rels, ["a.FLAC", "b.wav", "link.wav", "sub/c.mp3"]);
        assert_eq!(found.ignored, 1);
        let bad = &found.files[2];
        assert!(bad.readable().unwrap_err().ends_with("link.wav: dangling symlink (its target does not exist)"));
        assert!(found.files[0].readable().is_ok());
    }

    #[test]
    fn files_are_taken_as_named_and_missing_or_empty_arguments_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("clip.txt");
        std::fs::write(&f, b"x").unwrap();
        let found = collect(&[&f]).unwrap();
        assert_eq!(found.files[0].rel, Path::new("clip.txt"));
        let missing = dir.path().join("missing.wav");
        let e = collect(&[&missing]).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: cannot read: ", missing.display())), "{e}");
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert_eq!(collect(&[&empty]).unwrap_err().to_string(), format!("no audio files found in {}", empty.display()));
    }
}
