//! # audiotok-sources
//!
//! Audio as users have it, as inputs to every audiotok job: the arguments of a command are files,
//! folders or *sources*, and [`collect`] lists them all as [`Input`]s (records), each with a stable
//! id ([`Input::path`]) that manifests, rejects and resume name, and an output name
//! ([`Input::rel`]). The jobs decode an input with `audiotok_audio::load_input`, whatever it is.
//!
//! | source | detected by | record id | audio |
//! | --- | --- | --- | --- |
//! | audio files, folders | anything else | the path | the file |
//! | HF datasets Parquet | `*.parquet`, a folder of them (the hub cache's `datasets--*/snapshots/*` too) | `shard.parquet#row` | the `Audio` column's `bytes` (its `path` when bytes are null) |
//! | `datasets.save_to_disk` | a folder with `dataset_info.json` and `*.arrow` | `data-00000-of-00001.arrow#row` | as Parquet |
//! | webdataset | `*.tar`, `*.tar.gz`, `*.tgz` | `shard.tar#key` | the key's member with an audio extension |
//! | lhotse cuts | `*.jsonl[.gz]` whose lines are cuts | the cut id | the recording's file, segment and channel |
//! | manifests | `*.csv`, `*.tsv`, `*.jsonl[.gz]` | `manifest.csv#row` | the path column's file, optional offset/duration |
//!
//! Memory is bounded whatever the dataset's size: listing reads metadata columns only (Parquet by
//! row group without the audio bytes, tars and manifests in a stream), and a record's bytes are
//! fetched when it is decoded ([`audiotok_core::Fetch`]), with one row group, Arrow batch or tar
//! position cached per worker thread. Everything a record carries besides its audio (columns,
//! json/txt siblings, manifest columns, supervision text) is in [`Input::meta`].
//!
//! Bad input never stops the listing: a shard without an audio column, an unreadable file, a
//! manifest line without a path or naming a missing file, a truncated tar member are inputs that
//! fail with that reason (naming the source and row or member); an undecodable row fails when it
//! is decoded. Only an argument that does not exist, or arguments with nothing in them, are
//! errors ([`SourceError`]).

mod arrow;
mod columns;
mod manifest;
mod wds;

use std::path::{Path, PathBuf};

pub use audiotok_core::{Input, Inputs};

/// The kinds of source; [`SourceOptions::format`] forces one where detection guesses wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// Audio files (folders walked for audio extensions).
    Files,
    /// HF datasets Parquet shards.
    Parquet,
    /// Arrow IPC files as `datasets.save_to_disk` writes them.
    Arrow,
    /// webdataset tars, plain or gzipped.
    Webdataset,
    /// lhotse cut manifests (JSON Lines, optionally gzipped).
    Lhotse,
    /// CSV manifests.
    Csv,
    /// TSV manifests.
    Tsv,
    /// JSON Lines manifests.
    Jsonl,
}

/// Every [`SourceFormat`] by the name the CLI's `--source-format` takes.
pub const FORMAT_NAMES: &[(&str, SourceFormat)] = &[
    ("files", SourceFormat::Files),
    ("parquet", SourceFormat::Parquet),
    ("arrow", SourceFormat::Arrow),
    ("webdataset", SourceFormat::Webdataset),
    ("lhotse", SourceFormat::Lhotse),
    ("csv", SourceFormat::Csv),
    ("tsv", SourceFormat::Tsv),
    ("jsonl", SourceFormat::Jsonl),
];

impl std::str::FromStr for SourceFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FORMAT_NAMES.iter().find(|(n, _)| *n == s).map(|(_, f)| *f).ok_or_else(|| {
            let names: Vec<&str> = FORMAT_NAMES.iter().map(|(n, _)| *n).collect();
            format!("unknown source format {s:?} (one of {})", names.join(", "))
        })
    }
}

/// How [`collect`] reads sources. The default detects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceOptions {
    /// Read every argument as this kind; `None`: detect each by extension and folder layout.
    pub format: Option<SourceFormat>,
    /// Parquet/Arrow: the audio column; `None`: the column datasets' metadata calls `Audio`, else
    /// the first struct column of `bytes` and `path`.
    pub audio_column: Option<String>,
    /// Manifests: the column of audio paths; `None`: the first of `path`, `audio_filepath`,
    /// `audio_path`, `audio`, `file`, `filename`, `wav`.
    pub path_column: Option<String>,
}

/// What stops [`collect`] before it lists anything.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// An argument could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    CannotRead {
        /// The argument.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The arguments held no audio and no record.
    #[error("no audio files or records found in {0}")]
    NoAudio(String),
}

/// The kind `path` (a file) is, by its name; `None`: an audio file.
fn detect_file(path: &Path) -> Option<SourceFormat> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let ends = |s: &str| name.ends_with(s);
    if ends(".parquet") {
        Some(SourceFormat::Parquet)
    } else if ends(".arrow") {
        Some(SourceFormat::Arrow)
    } else if ends(".tar") || ends(".tar.gz") || ends(".tgz") {
        Some(SourceFormat::Webdataset)
    } else if ends(".csv") {
        Some(SourceFormat::Csv)
    } else if ends(".tsv") {
        Some(SourceFormat::Tsv)
    } else if ends(".jsonl") || ends(".jsonl.gz") {
        // Cuts or a plain manifest: decided by the first line (see `manifest::read`).
        Some(SourceFormat::Jsonl)
    } else {
        None
    }
}

/// The source files under a folder (Parquet shards, Arrow files, tars), sorted by path, links
/// followed (the hub cache's snapshots are links into `blobs/`); empty when it holds none (then
/// it is a folder of audio files). A `save_to_disk` folder is one Arrow source.
fn sources_under(dir: &Path, format: Option<SourceFormat>) -> Vec<(PathBuf, SourceFormat)> {
    if dir.join("dataset_info.json").is_file() && format.is_none_or(|f| f == SourceFormat::Arrow) {
        return arrow::saved_files(dir).into_iter().map(|p| (p, SourceFormat::Arrow)).collect();
    }
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(true).sort_by_file_name().into_iter().flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        let p = entry.path();
        let kind = match format {
            Some(f @ (SourceFormat::Parquet | SourceFormat::Arrow | SourceFormat::Webdataset)) => {
                detect_file(p).filter(|k| *k == f)
            }
            Some(_) => None,
            None => detect_file(p)
                .filter(|k| matches!(k, SourceFormat::Parquet | SourceFormat::Arrow | SourceFormat::Webdataset)),
        };
        if let Some(k) = kind {
            out.push((p.to_path_buf(), k));
        }
    }
    out
}

/// Lists the records of `args` (files, folders, sources) in argument order, each folder's in path
/// order, each source's in its own order (rows, tar members, manifest lines). See the crate docs
/// for what is detected; `opts` forces a kind or names columns.
///
/// Errors: an argument does not exist, or nothing at all was found. Everything else (a bad shard,
/// a bad line, a missing file) is an input that fails with its reason.
pub fn collect<P: AsRef<Path>>(args: &[P], opts: &SourceOptions) -> Result<Inputs, SourceError> {
    let mut files = Vec::new();
    let mut ignored = 0;
    for arg in args {
        let arg = arg.as_ref();
        let meta =
            std::fs::metadata(arg).map_err(|source| SourceError::CannotRead { path: arg.to_path_buf(), source })?;
        let plain_files = |files: &mut Vec<Input>, ignored: &mut usize| {
            match audiotok_core::collect(&[arg]) {
                Ok(found) => {
                    files.extend(found.files);
                    *ignored += found.ignored;
                }
                // Nothing audio in it: counted by the "nothing found" check below.
                Err(audiotok_core::CoreError::NoAudio(_)) => {}
                Err(e) => files.push(Input::failed(arg.to_path_buf(), arg.to_path_buf(), e.to_string())),
            }
        };
        if meta.is_dir() {
            let found = match opts.format {
                Some(SourceFormat::Files) => Vec::new(),
                f => sources_under(arg, f),
            };
            if found.is_empty() {
                plain_files(&mut files, &mut ignored);
            }
            for (path, kind) in found {
                read_source(&path, kind, opts, &mut files);
            }
            continue;
        }
        match opts.format.or_else(|| detect_file(arg)) {
            None | Some(SourceFormat::Files) => plain_files(&mut files, &mut ignored),
            Some(kind) => read_source(arg, kind, opts, &mut files),
        }
    }
    if files.is_empty() {
        let names: Vec<String> = args.iter().map(|a| a.as_ref().display().to_string()).collect();
        return Err(SourceError::NoAudio(names.join(", ")));
    }
    Ok(Inputs { files, ignored })
}

fn read_source(path: &Path, kind: SourceFormat, opts: &SourceOptions, out: &mut Vec<Input>) {
    match kind {
        SourceFormat::Files => out.push(Input::file(path)),
        SourceFormat::Parquet => columns::parquet_records(path, opts, out),
        SourceFormat::Arrow => arrow::arrow_records(path, opts, out),
        SourceFormat::Webdataset => wds::tar_records(path, out),
        SourceFormat::Lhotse | SourceFormat::Csv | SourceFormat::Tsv | SourceFormat::Jsonl => {
            manifest::manifest_records(path, kind, opts, out)
        }
    }
}

/// The output name of a record: `<source stem>/<name>`, `name` kept to safe path components (no
/// `..`, no root) and given `ext` (from the audio's own name) when it has none.
pub(crate) fn record_rel(source: &Path, name: &str, ext: Option<&str>) -> PathBuf {
    let stem = source_stem(source);
    let mut rel = PathBuf::from(stem);
    let mut any = false;
    for part in name.split(['/', '\\']) {
        if part.is_empty() || part == "." {
            continue;
        }
        rel.push(if part == ".." { "_" } else { part });
        any = true;
    }
    if !any {
        rel.push("_");
    }
    match ext.filter(|e| !e.is_empty()) {
        Some(e) => {
            let mut s = rel.into_os_string();
            s.push(".");
            s.push(e);
            PathBuf::from(s)
        }
        None => rel,
    }
}

/// A source's file name without its extensions (`shard.tar.gz` → `shard`).
fn source_stem(source: &Path) -> String {
    let name = source.file_name().map_or_else(|| "source".to_string(), |n| n.to_string_lossy().into_owned());
    for ext in [".tar.gz", ".jsonl.gz", ".parquet", ".arrow", ".tar", ".tgz", ".jsonl", ".csv", ".tsv"] {
        if let Some(s) = name.strip_suffix(ext).filter(|s| !s.is_empty()) {
            return s.to_string();
        }
    }
    name
}

/// `path#index`: a record's id.
pub(crate) fn record_id(source: &Path, what: impl std::fmt::Display) -> PathBuf {
    let mut s = source.as_os_str().to_os_string();
    s.push(format!("#{what}"));
    PathBuf::from(s)
}

/// The extension of an audio name (`clips/a.flac` → `flac`), lower-cased.
pub(crate) fn audio_ext(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next()?;
    let (_, ext) = base.rsplit_once('.')?;
    (!ext.is_empty() && ext.len() <= 8).then(|| ext.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_are_safe_paths_under_the_source_stem() {
        let src = Path::new("/d/train-00000-of-00002.parquet");
        assert_eq!(record_rel(src, "12", Some("flac")), Path::new("train-00000-of-00002/12.flac"));
        assert_eq!(record_rel(Path::new("s.tar.gz"), "../a/./b", None), Path::new("s/_/a/b"));
        assert_eq!(record_rel(Path::new("s.tar"), "/", Some("wav")), Path::new("s/_.wav"));
        assert_eq!(record_id(src, 3), Path::new("/d/train-00000-of-00002.parquet#3"));
        assert_eq!(audio_ext("x/y.FLAC").as_deref(), Some("flac"));
        assert_eq!(audio_ext("noext"), None);
        assert_eq!("webdataset".parse::<SourceFormat>(), Ok(SourceFormat::Webdataset));
        assert!("zip".parse::<SourceFormat>().unwrap_err().contains("one of files, parquet"));
    }
}
