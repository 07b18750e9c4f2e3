//! Replacing an output folder without ever losing the previous one.
//!
//! A run builds its dataset in a stage folder beside the target, `.NAME.pack-new-PID` in the
//! same parent (so a rename moves it), and only a complete dataset is swapped in
//! ([`StagedDir::commit`]): the old folder is renamed to `.NAME.pack-old-PID`, the stage to
//! `NAME`, and the old one removed. At every moment `NAME` is the old complete dataset or the new
//! complete one, except between the two renames (two system calls), when the old one is at
//! `.NAME.pack-old-PID`.
//!
//! What a killed run leaves (a stage, or an old folder not yet removed) is cleaned by the next
//! [`StagedDir::new`] for the same target: an old folder is renamed back to `NAME` when `NAME`
//! is missing (the run died between the renames), every other `.NAME.pack-*` folder is removed.
//! Two runs writing the same target at once are not supported.
//!
//! A target folder is only ever replaced when it holds nothing but a pack output (`index.json`,
//! `shard.*` files, `rejects.jsonl` and their temporary files): a swap removes the old folder
//! whole, so a folder with anything else in it is refused rather than deleted.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::PackError;

/// A stage folder for a new version of a target folder; removed on drop unless committed.
#[derive(Debug)]
pub struct StagedDir {
    target: PathBuf,
    stage: PathBuf,
    old: PathBuf,
    committed: bool,
}

fn io(path: &Path, source: std::io::Error) -> PackError {
    PackError::Io { path: path.to_path_buf(), source }
}

/// Whether `name` is a file a pack run writes into its output folder.
fn is_pack_output(name: &str) -> bool {
    matches!(name, "index.json" | "rejects.jsonl" | ".index.json.tmp")
        || name.starts_with("shard.")
        || name.starts_with(".shard.")
        || name.starts_with(".rejects.jsonl.tmp")
}

impl StagedDir {
    /// Prepares to replace `target` (which need not exist; a symlink to a folder is followed,
    /// so the folder it points to is replaced): checks that an existing target is a pack
    /// output, cleans what killed runs left beside it, and creates an empty stage folder.
    pub fn new(target: &Path) -> Result<StagedDir, PackError> {
        let target = resolve(target)?;
        let (parent, name) = match (target.parent(), target.file_name()) {
            (Some(p), Some(n)) => (p.to_path_buf(), n.to_string_lossy().into_owned()),
            _ => {
                return Err(PackError::Config(format!(
                    "cannot replace {}: choose a folder inside it",
                    target.display()
                )))
            }
        };
        let prefix = format!(".{name}.pack-");
        let mut leftovers = Vec::new();
        for entry in fs::read_dir(&parent).map_err(|e| io(&parent, e))? {
            let entry = entry.map_err(|e| io(&parent, e))?;
            let n = entry.file_name().to_string_lossy().into_owned();
            if n.starts_with(&prefix) {
                leftovers.push(entry.path());
            }
        }
        leftovers.sort();
        for p in leftovers {
            let is_old = p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("{prefix}old-")));
            if is_old && !exists(&target)? && p.join("index.json").is_file() {
                // Killed between the two renames: the old dataset goes back in place.
                fs::rename(&p, &target).map_err(|e| io(&p, e))?;
            } else if p.is_dir() && !p.is_symlink() {
                fs::remove_dir_all(&p).map_err(|e| io(&p, e))?;
            } else {
                fs::remove_file(&p).map_err(|e| io(&p, e))?;
            }
        }
        if exists(&target)? {
            if !target.is_dir() {
                return Err(PackError::Config(format!("{} exists and is not a folder", target.display())));
            }
            let mut foreign: Vec<String> = Vec::new();
            for entry in fs::read_dir(&target).map_err(|e| io(&target, e))? {
                let entry = entry.map_err(|e| io(&target, e))?;
                let n = entry.file_name().to_string_lossy().into_owned();
                let is_file = entry.file_type().map_err(|e| io(&entry.path(), e))?.is_file();
                if !(is_file && is_pack_output(&n)) {
                    foreign.push(n);
                }
            }
            if !foreign.is_empty() {
                foreign.sort();
                return Err(PackError::Config(format!(
                    "{} holds {}, which is not a pack output: refusing to replace the folder (choose another \
                     output folder, or empty this one)",
                    target.display(),
                    foreign.join(", ")
                )));
            }
        }
        let pid = std::process::id();
        let stage = parent.join(format!("{prefix}new-{pid}"));
        let old = parent.join(format!("{prefix}old-{pid}"));
        fs::create_dir(&stage).map_err(|e| io(&stage, e))?;
        Ok(StagedDir { target, stage, old, committed: false })
    }

    /// The stage folder to write the new dataset into.
    pub fn path(&self) -> &Path {
        &self.stage
    }

    /// The folder that [`StagedDir::commit`] replaces (symlinks resolved).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Swaps the complete stage in for the target. On an error the target is left as it was.
    pub fn commit(mut self) -> Result<(), PackError> {
        if exists(&self.target)? {
            fs::rename(&self.target, &self.old).map_err(|e| io(&self.target, e))?;
            if let Err(e) = fs::rename(&self.stage, &self.target) {
                // Put the old one back; the stage is removed on drop.
                let _ = fs::rename(&self.old, &self.target);
                return Err(io(&self.target, e));
            }
            self.committed = true;
            // The new dataset is in place; an old folder that cannot be removed now is removed
            // by the next run.
            let _ = fs::remove_dir_all(&self.old);
        } else {
            fs::rename(&self.stage, &self.target).map_err(|e| io(&self.target, e))?;
            self.committed = true;
        }
        if let Some(parent) = self.target.parent() {
            // Make the renames durable where the platform allows syncing a folder.
            if let Ok(f) = fs::File::open(parent) {
                let _ = f.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.stage);
        }
    }
}

fn exists(p: &Path) -> Result<bool, PackError> {
    p.try_exists().map_err(|e| io(p, e))
}

/// `target` as an absolute path with its parent's symlinks resolved, and itself when it is a
/// symlink; its parent folder is created.
fn resolve(target: &Path) -> Result<PathBuf, PackError> {
    if exists(target)? {
        return fs::canonicalize(target).map_err(|e| io(target, e));
    }
    let name =
        target.file_name().ok_or_else(|| PackError::Config(format!("{}: not a folder name", target.display())))?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
    Ok(fs::canonicalize(&parent).map_err(|e| io(&parent, e))?.join(name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn commit_replaces_and_drop_discards() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let s = StagedDir::new(&out).unwrap();
        fs::write(s.path().join("index.json"), "1").unwrap();
        s.commit().unwrap();
        assert_eq!(fs::read_to_string(out.join("index.json")).unwrap(), "1");
        // An uncommitted stage leaves the target alone and goes away.
        let s = StagedDir::new(&out).unwrap();
        fs::write(s.path().join("index.json"), "2").unwrap();
        drop(s);
        assert_eq!(fs::read_to_string(out.join("index.json")).unwrap(), "1");
        assert_eq!(names(tmp.path()), ["out"]);
        let s = StagedDir::new(&out).unwrap();
        fs::write(s.path().join("index.json"), "3").unwrap();
        s.commit().unwrap();
        assert_eq!(fs::read_to_string(out.join("index.json")).unwrap(), "3");
        assert_eq!(names(tmp.path()), ["out"]);
    }

    #[test]
    fn what_a_killed_run_left_is_cleaned_or_put_back() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        // Killed between the renames: no `out`, the old dataset beside it, a complete stage.
        let old = tmp.path().join(".out.pack-old-1");
        fs::create_dir(&old).unwrap();
        fs::write(old.join("index.json"), "old").unwrap();
        fs::create_dir(tmp.path().join(".out.pack-new-1")).unwrap();
        fs::create_dir(tmp.path().join(".out.pack-new-2")).unwrap();
        fs::write(tmp.path().join(".out.pack-new-2/shard.00000.mds"), "x").unwrap();
        let s = StagedDir::new(&out).unwrap();
        assert_eq!(fs::read_to_string(out.join("index.json")).unwrap(), "old");
        let stage = s.path().file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(names(tmp.path()), [stage, "out".to_string()]);
    }

    #[test]
    fn a_folder_with_other_files_is_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        fs::create_dir_all(out.join("sub")).unwrap();
        fs::write(out.join("index.json"), "").unwrap();
        let err = StagedDir::new(&out).unwrap_err().to_string();
        assert!(err.contains("holds sub, which is not a pack output"), "{err}");
        assert_eq!(names(tmp.path()), ["out"]);
    }
}
