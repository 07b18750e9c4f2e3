//! Writing files atomically: the one mechanism every audiotok crate writes its outputs with.
//!
//! Two ways in, one commit ([`AtomicFile::commit`]: flush, optionally fsync, rename; dropped
//! uncommitted, the temporary file is removed and the output left as it was).
//!
//! [`AtomicFile::create`] (and [`write_with`]) for a file the user names (`--out`, `--json`,
//! models, PNGs, manifests, WAVs), without destroying what the name points at:
//!
//! - a new name, or an existing regular file: written to a temporary sibling `.NAME.tmp-PID-N`
//!   (created fresh, never through a link planted there), then renamed over `NAME`, so a reader
//!   never sees a half-written file and a failure leaves `NAME` as it was; a replaced file keeps
//!   its permissions;
//! - a symlink: followed (to the end of its chain, dangling or not) and its target replaced as
//!   above, in the target's folder; the link stays a link;
//! - an existing non-regular file (character device such as `/dev/null`, FIFO, socket), or an open
//!   file named through `/proc` (`/dev/stdout`, `/dev/fd/N`, whatever it is): written directly
//!   (opened with truncation, as the shell's `>`), since a rename would replace the node;
//! - a directory: refused.
//!
//! Stale temporary files: before writing `NAME`, the `.NAME.tmp-PID[-N]` siblings left by a killed
//! process (`PID` not running, as `/proc` tells) are removed. Where there is no `/proc`, nothing is
//! removed. [`temp_path`] and [`stale_temps`] give the same names to a caller that stages whole
//! folders (`audiotok mds merge`), so that a killed run's leftovers are recognised whichever part
//! of audiotok made them.
//!
//! [`AtomicFile::replace`] for a file inside a folder the job owns (MDS shards and `index.json`,
//! token store batches and `metadata.json`): written to the fixed temporary sibling `.NAME.tmp`
//! (one writer per folder; whatever a killed run, or anyone, left at that name, a link included,
//! is removed, never opened, so the write cannot be redirected out of the folder) and renamed
//! over `NAME` itself, whatever `NAME` is: a link there is replaced, not followed. The bytes go
//! to the file unbuffered (callers write whole pieces, or buffer themselves).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Symlinks followed before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// An I/O error of an atomic write, naming the file and the step that failed.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct WriteError {
    /// What was being done ("creating", "writing", "renaming to", ...).
    pub action: &'static str,
    /// The file concerned (the temporary file, or the output).
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl From<WriteError> for io::Error {
    fn from(e: WriteError) -> Self {
        io::Error::new(e.source.kind(), e)
    }
}

impl WriteError {
    fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        WriteError { action, path: path.to_path_buf(), source }
    }
}

/// Where the bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// Write a temporary sibling of this path and rename it over the path.
    Replace(PathBuf),
    /// Write this path in place (a device node, FIFO or socket).
    Direct(PathBuf),
}

/// Decides how `path` is written; see the module documentation.
fn resolve(path: &Path) -> Result<Target, WriteError> {
    let err = |e| WriteError::new("opening", path, e);
    let link = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Target::Replace(path.to_path_buf())),
        Err(e) => return Err(err(e)),
    };
    if !link.file_type().is_symlink() {
        return classify(path, &link);
    }
    if through_proc(path) {
        // `/dev/stdout`, `/dev/fd/N`, `/proc/PID/fd/N` name an open file, not a place in a
        // folder: write into it, whatever it is, as the shell's `>` would.
        let meta = fs::metadata(path).map_err(err)?;
        classify(path, &meta)?; // a folder is still refused
        return Ok(Target::Direct(path.to_path_buf()));
    }
    match fs::metadata(path) {
        Ok(m) if m.is_file() => {
            // A regular file at the end of the chain: replace it in its own folder.
            let real = fs::canonicalize(path).map_err(err)?;
            Ok(Target::Replace(real))
        }
        Ok(m) => classify(path, &m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => dangling_target(path),
        Err(e) => Err(err(e)),
    }
}

/// Whether the symlink chain from `path` passes through `/proc` (the magic links of open files).
fn through_proc(path: &Path) -> bool {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        if p.starts_with("/proc") {
            return true;
        }
        match fs::read_link(&p) {
            Ok(to) => {
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                }
            }
            Err(_) => return false,
        }
    }
    false
}

/// A non-link (or what a link points at) that exists.
fn classify(path: &Path, meta: &fs::Metadata) -> Result<Target, WriteError> {
    if meta.is_dir() {
        Err(WriteError::new("writing", path, io::Error::new(io::ErrorKind::IsADirectory, "is a directory")))
    } else if meta.is_file() {
        Ok(Target::Replace(path.to_path_buf()))
    } else {
        Ok(Target::Direct(path.to_path_buf()))
    }
}

/// The missing file a dangling symlink chain ends at.
fn dangling_target(path: &Path) -> Result<Target, WriteError> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&p).map_err(|e| WriteError::new("reading link", &p, e))?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            Ok(m) => return classify(&p, &m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Target::Replace(p)),
            Err(e) => return Err(WriteError::new("opening", &p, e)),
        }
    }
    Err(WriteError::new("opening", path, io::Error::other(format!("more than {MAX_LINKS} symlinks"))))
}

/// The folder of `path` as `read_dir` wants it.
fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `.NAME.tmp-` for `path`'s file name, bytes kept as they are.
fn temp_prefix(path: &Path) -> OsString {
    let mut s = OsString::from(".");
    s.push(path.file_name().unwrap_or(OsStr::new("out")));
    s.push(".tmp-");
    s
}

/// A fresh temporary sibling of `path` (same folder, so that `rename` is atomic):
/// `.NAME.tmp-PID-N`, `N` counting this process's temporary files.
pub fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut name = temp_prefix(path);
    name.push(format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    path.with_file_name(name)
}

/// The process id in a temporary name `PREFIX` + `PID` or `PID-N`.
fn temp_pid(name: &OsStr, prefix: &OsStr) -> Option<u32> {
    let rest = name.as_encoded_bytes().strip_prefix(prefix.as_encoded_bytes())?;
    parse_pid(std::str::from_utf8(rest).ok()?)
}

/// `PID` or `PID-N`, both decimal.
fn parse_pid(rest: &str) -> Option<u32> {
    let (pid, n) = rest.split_once('-').unwrap_or((rest, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(pid) && digits(n) {
        pid.parse().ok()
    } else {
        None
    }
}

/// Whether process `pid` runs on this machine; `None` when that cannot be told (no `/proc`).
fn alive(pid: u32) -> Option<bool> {
    if !Path::new("/proc/self").exists() {
        return None;
    }
    Some(Path::new("/proc").join(pid.to_string()).exists())
}

/// Folders already listed by this process, with the temporary files of dead processes found in
/// each, keyed by the name of the file they were for. One listing per folder, so that writing
/// many files into one folder stays linear.
static STALE: Mutex<Option<StaleMap>> = Mutex::new(None);

/// Per folder: stale temporary files by the (encoded) name they were for.
type StaleMap = HashMap<PathBuf, HashMap<Vec<u8>, Vec<PathBuf>>>;

/// Removes the `.NAME.tmp-PID[-N]` siblings of `path` whose process is gone. Best effort: a file
/// that cannot be listed or removed is left.
fn remove_stale_temps(path: &Path) {
    let Some(name) = path.file_name() else { return };
    if alive(std::process::id()) != Some(true) {
        return;
    }
    let dir = folder(path).to_path_buf();
    let ours = std::process::id();
    let found = {
        let Ok(mut guard) = STALE.lock() else { return };
        let map = guard.get_or_insert_with(HashMap::new);
        let per_dir = map.entry(dir.clone()).or_insert_with(|| list_stale(&dir, ours));
        per_dir.remove(name.as_encoded_bytes())
    };
    for p in found.unwrap_or_default() {
        let dead =
            p.file_name().and_then(|n| temp_pid(n, &temp_prefix(path))).is_some_and(|pid| alive(pid) == Some(false));
        let is_file = fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir());
        if dead && is_file {
            let _ = fs::remove_file(&p);
        }
    }
}

/// The temporary files in `dir` of processes not running, by the name they were for.
fn list_stale(dir: &Path, ours: u32) -> HashMap<Vec<u8>, Vec<PathBuf>> {
    let mut out: HashMap<Vec<u8>, Vec<PathBuf>> = HashMap::new();
    let Ok(entries) = fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let bytes = file.as_encoded_bytes();
        let Some(body) = bytes.strip_prefix(b".") else { continue };
        // NAME is everything before the last ".tmp-".
        let Some(at) = body.windows(5).rposition(|w| w == b".tmp-") else { continue };
        let Some(target) = body.get(..at) else { continue };
        if target.is_empty() {
            continue;
        }
        let Some(pid) = body.get(at + 5..).and_then(|b| std::str::from_utf8(b).ok()).and_then(parse_pid) else {
            continue;
        };
        if pid != ours && alive(pid) == Some(false) {
            out.entry(target.to_vec()).or_default().push(entry.path());
        }
    }
    out
}

/// The temporary siblings `.NAME.tmp-PID[-N]` of `path` (files or folders) whose process is not
/// running, for a caller that makes temporary folders (e.g. a staged copy) to remove; empty
/// where that cannot be told (no `/proc`).
pub fn stale_temps(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name() else { return Vec::new() };
    if alive(std::process::id()) != Some(true) {
        return Vec::new();
    }
    list_stale(folder(path), std::process::id()).remove(name.as_encoded_bytes()).unwrap_or_default()
}

/// An output file being written; see the module documentation. Dropped without
/// [`commit`](Self::commit), it removes its temporary file and leaves the output as it was.
pub struct AtomicFile {
    writer: BufWriter<File>,
    /// `(temporary file, final path)` when the output is replaced by a rename.
    rename: Option<(PathBuf, PathBuf)>,
    /// The name the caller gave, for messages.
    path: PathBuf,
}

impl AtomicFile {
    /// Opens `path`, a file the user named, for writing as the module documentation says
    /// (links followed, nodes written in place, stale temporaries removed).
    pub fn create(path: &Path) -> Result<AtomicFile, WriteError> {
        match resolve(path)? {
            Target::Direct(p) => {
                // Truncated as the shell's `>` does (a no-op on FIFOs and devices).
                let file = OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&p)
                    .map_err(|e| WriteError::new("opening", path, e))?;
                Ok(AtomicFile { writer: BufWriter::with_capacity(1 << 16, file), rename: None, path: path.into() })
            }
            Target::Replace(dest) => {
                remove_stale_temps(&dest);
                let tmp = temp_path(&dest);
                let file = create_fresh(&tmp)?;
                // A replaced file keeps its permissions.
                if let Ok(m) = fs::metadata(&dest) {
                    let _ = file.set_permissions(m.permissions());
                }
                Ok(AtomicFile {
                    writer: BufWriter::with_capacity(1 << 16, file),
                    rename: Some((tmp, dest)),
                    path: path.into(),
                })
            }
        }
    }

    /// Opens `path`, a file in a folder the caller owns, for writing as the module documentation
    /// says: to `.NAME.tmp` beside it, renamed over `path` itself on [`commit`](Self::commit).
    /// The writer is unbuffered.
    pub fn replace(path: &Path) -> Result<AtomicFile, WriteError> {
        let Some(name) = path.file_name() else {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "no file name");
            return Err(WriteError::new("creating", path, e));
        };
        let mut temp = OsString::from(".");
        temp.push(name);
        temp.push(".tmp");
        let tmp = path.with_file_name(temp);
        let file = create_fresh(&tmp)?;
        Ok(AtomicFile {
            writer: BufWriter::with_capacity(0, file),
            rename: Some((tmp, path.to_path_buf())),
            path: path.to_path_buf(),
        })
    }

    /// The writer to write the content into (buffered for [`create`](Self::create), not for
    /// [`replace`](Self::replace)).
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.writer
    }

    /// The file the bytes go to, for messages: the temporary file, or the output itself when
    /// it is written in place (a device, FIFO, socket or `/proc` link).
    pub fn written_path(&self) -> &Path {
        self.rename.as_ref().map_or(&self.path, |(tmp, _)| tmp)
    }

    /// Writes all of `bytes`; an error names [`written_path`](Self::written_path).
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.writer.write_all(bytes).map_err(|e| WriteError::new("writing", self.written_path(), e))
    }

    /// Flushes the content (and with `sync`, makes it durable before the rename) and puts it in
    /// place.
    pub fn commit(mut self, sync: bool) -> Result<(), WriteError> {
        let path = self.path.clone();
        if let Err(e) = self.writer.flush() {
            return Err(WriteError::new("writing", self.written_path(), e));
        }
        if let Some((tmp, dest)) = self.rename.take() {
            let result = (|| {
                if sync {
                    self.writer.get_ref().sync_all().map_err(|e| WriteError::new("writing", &tmp, e))?;
                }
                fs::rename(&tmp, &dest).map_err(|e| WriteError::new("renaming to", &path, e))
            })();
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result?;
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some((tmp, _)) = self.rename.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Creates the temporary file `tmp` fresh: a name already there (a file left by a crash, a link
/// planted by someone else) is removed, not followed: `create_new` never opens an existing file
/// or link.
fn create_fresh(tmp: &Path) -> Result<File, WriteError> {
    match fs::remove_file(tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(WriteError::new("creating", tmp, e)),
        _ => {}
    }
    OpenOptions::new().write(true).create_new(true).open(tmp).map_err(|e| WriteError::new("creating", tmp, e))
}

/// Writes `path` with `write` as [`AtomicFile::create`] does (no fsync); on any error `path` is left as it
/// was and no temporary file remains.
pub fn write_with<E: From<WriteError>>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), E>,
) -> Result<(), E> {
    let mut f = AtomicFile::create(path)?;
    write(f.writer())?;
    f.commit(false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn temp_names_carry_the_process_and_parse_back() {
        let p = Path::new("/x/out.wav");
        let t = temp_path(p);
        let name = t.file_name().unwrap();
        assert!(name.to_string_lossy().starts_with(&format!(".out.wav.tmp-{}-", std::process::id())));
        assert_eq!(temp_pid(name, &temp_prefix(p)), Some(std::process::id()));
        assert_ne!(temp_path(p), t, "two temporary names of one process collide");
        let prefix = temp_prefix(p);
        assert_eq!(temp_pid(OsStr::new(".out.wav.tmp-17"), &prefix), Some(17));
        assert_eq!(temp_pid(OsStr::new(".out.wav.tmp-17-2"), &prefix), Some(17));
        for bad in [".out.wav.tmp-", ".out.wav.tmp-x", ".out.wav.tmp-1-", ".out.wav.tmp-1-2-3", ".out.wavx.tmp-1"] {
            assert_eq!(temp_pid(OsStr::new(bad), &prefix), None, "{bad}");
        }
    }

    #[test]
    fn resolve_follows_links_and_writes_nodes_directly() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(resolve(&d.join("new")).unwrap(), Target::Replace(d.join("new")));
        std::fs::write(d.join("file"), b"x").unwrap();
        assert_eq!(resolve(&d.join("file")).unwrap(), Target::Replace(d.join("file")));
        std::os::unix::fs::symlink("file", d.join("l1")).unwrap();
        std::os::unix::fs::symlink("l1", d.join("l2")).unwrap();
        let real = std::fs::canonicalize(d.join("file")).unwrap();
        assert_eq!(resolve(&d.join("l2")).unwrap(), Target::Replace(real));
        std::fs::create_dir(d.join("sub")).unwrap();
        std::os::unix::fs::symlink("sub/missing", d.join("dangling")).unwrap();
        assert_eq!(resolve(&d.join("dangling")).unwrap(), Target::Replace(d.join("sub/missing")));
        std::os::unix::fs::symlink("/dev/null", d.join("null")).unwrap();
        assert_eq!(resolve(&d.join("null")).unwrap(), Target::Direct(d.join("null")));
        std::os::unix::fs::symlink("/dev/stdout", d.join("out")).unwrap();
        assert_eq!(resolve(&d.join("out")).unwrap(), Target::Direct(d.join("out")));
        let e = resolve(&d.join("sub")).unwrap_err();
        assert_eq!(e.source.kind(), io::ErrorKind::IsADirectory);
        std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
        assert!(resolve(&d.join("loop")).is_err());
    }

    #[test]
    fn writing_to_dev_null_leaves_a_character_device() {
        // /dev/null is written in place: writing through it changes nothing on disk.
        write_with::<io::Error>(Path::new("/dev/null"), |w| w.write_all(b"discarded")).unwrap();
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.txt");
        std::fs::write(&out, b"old").unwrap();
        let r = write_with::<io::Error>(&out, |w| {
            w.write_all(b"new")?;
            Err(io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&out).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temps_lists_files_and_folders_of_dead_processes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join(".p.tmp-999999999-0")).unwrap();
        std::fs::write(d.join(".p.tmp-999999998"), b"").unwrap();
        std::fs::create_dir(d.join(".p.tmp-1-0")).unwrap();
        std::fs::create_dir(d.join(".q.tmp-999999999-0")).unwrap();
        std::fs::create_dir(d.join(".p.tmp-x")).unwrap();
        std::fs::create_dir(d.join("p")).unwrap();
        let mut got = stale_temps(&d.join("p"));
        got.sort();
        assert_eq!(got, vec![d.join(".p.tmp-999999998"), d.join(".p.tmp-999999999-0")]);
    }

    #[test]
    fn stale_temporaries_of_dead_processes_only_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ours = format!(".a.tmp-{}-999999", std::process::id());
        for name in [".a.tmp-999999999", ".a.tmp-999999999-4", ".a.tmp-1", ".b.tmp-999999999", ".a.tmp-junk", &ours] {
            std::fs::write(d.join(name), b"partial").unwrap();
        }
        std::fs::create_dir(d.join(".a.tmp-999999997")).unwrap();
        write_with::<io::Error>(&d.join("a"), |w| w.write_all(b"A")).unwrap();
        let mut left: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        let mut want = vec![".a.tmp-1", ".a.tmp-999999997", ".a.tmp-junk", ".b.tmp-999999999", "a", ours.as_str()];
        want.sort();
        assert_eq!(left, want);
    }
    #[test]
    fn replace_writes_the_fixed_temporary_and_replaces_the_name_itself() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let victim = d.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        // A link at the temporary name is removed, not followed; a link at the name is replaced.
        std::os::unix::fs::symlink(&victim, d.join(".out.tmp")).unwrap();
        std::os::unix::fs::symlink(&victim, d.join("out")).unwrap();
        let mut f = AtomicFile::replace(&d.join("out")).unwrap();
        assert_eq!(f.written_path(), d.join(".out.tmp"));
        f.write_all(b"new").unwrap();
        assert_eq!(f.writer().buffer().len(), 0, "replace writes unbuffered");
        f.commit(true).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(d.join("out")).unwrap().file_type().is_file());
        assert_eq!(std::fs::read(d.join("out")).unwrap(), b"new");
        assert!(!d.join(".out.tmp").exists());
    }

    #[test]
    fn replace_dropped_or_blocked_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("out"), b"old").unwrap();
        let mut f = AtomicFile::replace(&d.join("out")).unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        assert_eq!(std::fs::read(d.join("out")).unwrap(), b"old");
        assert!(!d.join(".out.tmp").exists());
        // A folder at the temporary name cannot be removed: the error names the temporary.
        std::fs::create_dir(d.join(".out.tmp")).unwrap();
        let e = AtomicFile::replace(&d.join("out")).err().unwrap();
        assert_eq!((e.action, e.path.as_path()), ("creating", d.join(".out.tmp").as_path()));
        assert!(AtomicFile::replace(Path::new("/")).is_err());
    }
}
