//! Temporary names for atomic writes.

use std::path::{Path, PathBuf};

/// A temporary sibling of `path` (same folder, so that `rename` is atomic): `.NAME.tmp-PID`.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}
