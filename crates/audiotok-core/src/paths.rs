//! Paths as text that says exactly which file it is.

use std::path::Path;

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
}
