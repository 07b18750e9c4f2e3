//! Temporary names for staged copies: `.NAME.tmp-PID-N`, the pattern of audiotok's atomic writer
//! (`audiotok_audio::atomic`, which this crate does not depend on), so that the leftovers of a
//! killed run are recognised whichever part of audiotok made them.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// `.NAME.tmp-` for `path`'s file name, bytes kept as they are.
fn prefix(path: &Path) -> OsString {
    let mut s = OsString::from(".");
    s.push(path.file_name().unwrap_or(OsStr::new("out")));
    s.push(".tmp-");
    s
}

/// A fresh temporary sibling of `path` (same folder, so that a rename into place is atomic):
/// `.NAME.tmp-PID-N`, `N` counting this process's temporary names.
pub(crate) fn temp_sibling(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut name = prefix(path);
    name.push(format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    path.with_file_name(name)
}

/// `PID` or `PID-N` (decimal): the PID.
fn pid_of(rest: &[u8]) -> Option<u32> {
    let rest = std::str::from_utf8(rest).ok()?;
    let (pid, n) = rest.split_once('-').unwrap_or((rest, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(pid) && digits(n) {
        pid.parse().ok()
    } else {
        None
    }
}

/// The temporary siblings `.NAME.tmp-PID[-N]` of `path` (files or folders) whose process is not
/// running; empty where that cannot be told (no `/proc`) or the folder cannot be listed.
pub(crate) fn stale_siblings(path: &Path) -> Vec<PathBuf> {
    let proc = Path::new("/proc");
    if path.file_name().is_none() || !proc.join("self").exists() {
        return Vec::new();
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
    let prefix = prefix(path);
    let ours = std::process::id();
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let pid = name.as_encoded_bytes().strip_prefix(prefix.as_encoded_bytes()).and_then(pid_of);
            pid.is_some_and(|pid| pid != ours && !proc.join(pid.to_string()).exists())
        })
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_siblings_are_those_of_dead_processes_for_this_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // No process has id 999999999 (pid_max is at most 2^22); process 1 is always alive.
        for name in [".p.tmp-999999999-0", ".p.tmp-999999998", ".p.tmp-1-0", ".q.tmp-999999999", ".p.tmp-x", "p"] {
            std::fs::create_dir(d.join(name)).unwrap();
        }
        let mut got = stale_siblings(&d.join("p"));
        got.sort();
        assert_eq!(got, [d.join(".p.tmp-999999998"), d.join(".p.tmp-999999999-0")]);
        let t = temp_sibling(&d.join("p"));
        let name = t.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        assert!(name.starts_with(&format!(".p.tmp-{}-", std::process::id())), "{name}");
    }
}
