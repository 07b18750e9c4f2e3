//! webdataset shards: tars (plain or gzipped) whose members are grouped into samples by key, as
//! webdataset does it: a member `dir/abc.seg.flac` is key `dir/abc`, extension `seg.flac` (the
//! name up to its first dot); consecutive members of one key are one sample. The sample's audio is
//! its first member whose last extension is audio (`flac`, `wav`, `mp3`, ...); its `json`
//! siblings are carried as parsed JSON and its other siblings (`txt`, `cls`) as text, under their
//! extension, in [`Input::meta`].
//!
//! Listing streams the archive once (members are read, audio data skipped, nothing unpacked to
//! disk), recording where each audio member's data lies in the (decompressed) stream. A member cut
//! short by the end of the archive is a record that fails with that reason. A record's bytes are
//! then read at that offset: a seek for a plain tar; for a gzipped one, the thread that decodes it
//! keeps its decompressor at the position it reached, so members taken in order cost one pass.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use audiotok_core::{Fetch, Input, Origin, AUDIO_EXTENSIONS};
use serde_json::{Map, Value};

use crate::{record_id, record_rel};

/// Text siblings larger than this are not carried in the metadata.
const MAX_SIBLING: u64 = 1 << 20;

fn is_gz(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == [0x1f, 0x8b]
}

fn open_stream(path: &Path, gz: bool) -> std::io::Result<Box<dyn Read>> {
    let f = BufReader::new(File::open(path)?);
    Ok(if gz { Box::new(flate2::read::MultiGzDecoder::new(f)) } else { Box::new(f) })
}

/// One sample being gathered.
#[derive(Default)]
struct Sample {
    key: String,
    audio: Option<Member>,
    meta: Map<String, Value>,
    truncated: Option<String>,
}

struct Member {
    name: String,
    ext: String,
    offset: u64,
    size: u64,
}

/// `(key, extension)` of a member name, as webdataset splits it; `None` without an extension.
fn split_key(name: &str) -> Option<(&str, &str)> {
    let base_at = name.rfind('/').map_or(0, |i| i + 1);
    let dot = name[base_at..].find('.')? + base_at;
    let (key, ext) = (&name[..dot], &name[dot + 1..]);
    (!ext.is_empty()).then_some((key, ext))
}

fn is_audio_ext(ext: &str) -> bool {
    let last = ext.rsplit('.').next().unwrap_or(ext).to_ascii_lowercase();
    AUDIO_EXTENSIONS.contains(&last.as_str())
}

/// Lists the samples of the tar `path` into `out`.
pub(crate) fn tar_records(path: &Path, out: &mut Vec<Input>) {
    let gz = is_gz(path);
    let file: Arc<Path> = Arc::from(path);
    if let Err(reason) = list(&file, gz, out) {
        let rel = record_rel(path, "_", None);
        out.push(Input::failed(path.to_path_buf(), rel, format!("{}: {reason}", path.display())));
    }
}

fn list(file: &Arc<Path>, gz: bool, out: &mut Vec<Input>) -> Result<(), String> {
    let stream = open_stream(file, gz).map_err(|e| format!("cannot read: {e}"))?;
    let mut archive = tar::Archive::new(stream);
    let entries = archive.entries().map_err(|e| format!("not a tar archive: {e}"))?;
    let mut cur = Sample::default();
    let mut cut_short = false;
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                if cut_short {
                    break; // the member already reported says why
                }
                flush(file, gz, std::mem::take(&mut cur), out);
                return Err(format!("corrupt or cut short after {} samples: {e}", out.len()));
            }
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = match entry.path() {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(_) => continue,
        };
        let Some((key, ext)) = split_key(&name) else { continue };
        let (key, ext) = (key.to_string(), ext.to_string());
        if key != cur.key {
            flush(file, gz, std::mem::take(&mut cur), out);
            cur.key = key;
        }
        let size = entry.size();
        let offset = entry.raw_file_position();
        if is_audio_ext(&ext) && cur.audio.is_none() {
            let read = std::io::copy(&mut entry, &mut std::io::sink()).unwrap_or(0);
            if read < size {
                cur.truncated = Some(format!("truncated: member {name} holds {read} of its {size} bytes"));
                cut_short = true;
            }
            cur.audio = Some(Member { name, ext, offset, size });
            continue;
        }
        if size > MAX_SIBLING {
            continue;
        }
        let mut data = Vec::new();
        if entry.read_to_end(&mut data).is_err() || (data.len() as u64) < size {
            cut_short = true;
            continue;
        }
        let lower = ext.to_ascii_lowercase();
        let value = if lower.ends_with("json") {
            serde_json::from_slice::<Value>(&data).unwrap_or_else(|_| Value::from(String::from_utf8_lossy(&data)))
        } else {
            match String::from_utf8(data) {
                Ok(s) => Value::from(s),
                Err(_) => continue,
            }
        };
        cur.meta.insert(ext, value);
    }
    flush(file, gz, cur, out);
    Ok(())
}

fn flush(file: &Arc<Path>, gz: bool, s: Sample, out: &mut Vec<Input>) {
    if s.key.is_empty() {
        return;
    }
    let id = record_id(file, &s.key);
    let ext = s.audio.as_ref().map(|m| m.ext.rsplit('.').next().unwrap_or(&m.ext).to_ascii_lowercase());
    let rel = record_rel(file, &s.key, ext.as_deref());
    let Some(audio) = s.audio else {
        let have: Vec<&str> = s.meta.keys().map(String::as_str).collect();
        let reason = format!("{}: no audio member (has {})", id.display(), have.join(", "));
        out.push(Input::failed(id, rel, reason));
        return;
    };
    if let Some(t) = s.truncated {
        let reason = format!("{}: {t}", id.display());
        out.push(Input::failed(id, rel, reason));
        return;
    }
    let mut meta = s.meta;
    meta.insert("__key__".into(), Value::from(s.key.as_str()));
    meta.insert("audio_member".into(), Value::from(audio.name.as_str()));
    let member =
        TarMember { file: file.clone(), gz, offset: audio.offset, size: audio.size, id: id.display().to_string() };
    out.push(Input {
        origin: Origin::Bytes(Arc::new(member)),
        meta: Some(Value::Object(meta).to_string().into()),
        ..Input::found(id, rel)
    });
}

/// One audio member of a tar, read on demand.
#[derive(Debug)]
struct TarMember {
    file: Arc<Path>,
    gz: bool,
    /// Where its data starts in the (decompressed) stream.
    offset: u64,
    size: u64,
    id: String,
}

/// A gzipped tar's decompressor and its position, kept by the thread that read it.
struct GzCursor {
    file: Arc<Path>,
    stream: Box<dyn Read>,
    pos: u64,
}

thread_local! {
    static GZ: RefCell<Option<GzCursor>> = const { RefCell::new(None) };
}

impl TarMember {
    fn read(&self) -> std::io::Result<Vec<u8>> {
        let len = usize::try_from(self.size).map_err(std::io::Error::other)?;
        let mut buf = vec![0u8; len];
        if !self.gz {
            let mut f = File::open(&self.file)?;
            f.seek(SeekFrom::Start(self.offset))?;
            f.read_exact(&mut buf)?;
            return Ok(buf);
        }
        GZ.with(|cell| {
            let mut cell = cell.borrow_mut();
            let usable = cell
                .as_ref()
                .is_some_and(|c| c.pos <= self.offset && (Arc::ptr_eq(&c.file, &self.file) || c.file == self.file));
            if !usable {
                *cell = Some(GzCursor { file: self.file.clone(), stream: open_stream(&self.file, true)?, pos: 0 });
            }
            let c = cell.as_mut().ok_or_else(|| std::io::Error::other("gzip cursor"))?;
            let skip = self.offset - c.pos;
            let skipped = std::io::copy(&mut (&mut c.stream).take(skip), &mut std::io::sink())?;
            c.pos += skipped;
            if skipped < skip {
                *cell = None;
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let r = c.stream.read_exact(&mut buf);
            if r.is_err() {
                *cell = None;
                r?;
            } else {
                c.pos += self.size;
            }
            Ok(buf)
        })
    }
}

impl Fetch for TarMember {
    fn fetch(&self) -> Result<Vec<u8>, String> {
        self.read().map_err(|e| format!("{}: reading the member: {e}", self.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_at_the_first_dot_of_the_file_name() {
        assert_eq!(split_key("dir.x/abc.seg.flac"), Some(("dir.x/abc", "seg.flac")));
        assert_eq!(split_key("abc.json"), Some(("abc", "json")));
        assert_eq!(split_key("noext"), None);
        assert!(is_audio_ext("seg.FLAC") && !is_audio_ext("json"));
    }
}
