//! Input rows: a JSON array file or JSONL (one object per line), in two shapes:
//!
//! - `{"text": "<ChatML with <|AUDIO|> placeholders>", "audio": "a.wav" | ["a.wav", "b.wav"]}`
//!   (the notebook's shape; `audio` may be absent or null for text-only rows);
//! - `{"messages": [{"role": ..., "content": ...}, ...], "audio": [...]}`, rendered with a chat
//!   template. Without an `audio` field the paths are taken, in order, from content items
//!   `{"type": "audio", "audio_url": PATH}` (or `"audio": PATH`), as Qwen2-Audio's processor
//!   examples write them.
//!
//! A file that is not JSON at all is fatal; in JSONL each malformed line is one [`Reject`] with
//! its line number, and the other lines go on.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde_json::Value;

use crate::error::{PackError, Reject, RejectReason, RowSource};

/// What a row asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum RowContent {
    /// Text with `<|AUDIO|>` placeholders.
    Text(String),
    /// Chat messages to render with a template.
    Messages(Value),
}

/// One input row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// File and position.
    pub source: RowSource,
    /// Text or messages.
    pub content: RowContent,
    /// Audio paths as written, one per placeholder, in order.
    pub audio: Vec<String>,
}

/// The default row size limit: a JSONL line longer than this (in bytes, without its line
/// ending) is a [`RejectReason::TooLarge`] reject, skipped without being read whole.
pub const DEFAULT_MAX_ROW_BYTES: u64 = 16 << 20;

/// Reads every row of `path` with the default row size limit ([`DEFAULT_MAX_ROW_BYTES`]).
pub fn read_rows(path: &Path) -> Result<Vec<Result<Row, Reject>>, PackError> {
    read_rows_with(path, DEFAULT_MAX_ROW_BYTES)
}

/// Reads every row of `path`: rows that parse, and rejects for those that do not.
///
/// JSONL is streamed line by line: a line over `max_row_bytes` is skipped (never held whole in
/// memory) and rejected as [`RejectReason::TooLarge`]; a line that is not UTF-8 is rejected as
/// malformed JSON with its line. A JSON array file is read whole (JSON must be UTF-8: an invalid
/// byte is a fatal error with its line and column).
pub fn read_rows_with(path: &Path, max_row_bytes: u64) -> Result<Vec<Result<Row, Reject>>, PackError> {
    let input = |reason: String| PackError::Input { path: path.to_path_buf(), reason };
    let file = File::open(path).map_err(|e| input(e.to_string()))?;
    if file.metadata().map_err(|e| input(e.to_string()))?.is_dir() {
        return Err(input("is a folder, not a JSON / JSONL file".into()));
    }
    let mut r = BufReader::with_capacity(1 << 16, file);
    // A UTF-8 byte order mark, then whitespace (counting its lines), to see which format it is.
    if r.fill_buf().map_err(|e| input(e.to_string()))?.starts_with(b"\xef\xbb\xbf") {
        r.consume(3);
    }
    let mut newlines = 0u64;
    let first = loop {
        let buf = r.fill_buf().map_err(|e| input(e.to_string()))?;
        if buf.is_empty() {
            break None;
        }
        let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        newlines += buf[..ws].iter().filter(|&&b| b == b'\n').count() as u64;
        let next = buf.get(ws).copied();
        r.consume(ws);
        if next.is_some() {
            break next;
        }
    };
    if first == Some(b'[') {
        // Skipped lines are put back so that serde's line numbers are the file's.
        let mut bytes = vec![b'\n'; newlines as usize];
        r.read_to_end(&mut bytes).map_err(|e| input(e.to_string()))?;
        let items: Vec<Value> =
            serde_json::from_slice(&bytes).map_err(|e| input(format!("not a valid JSON array: {e}")))?;
        return Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, v)| parse_row(v, RowSource::index(path, i as u64)))
            .collect());
    }
    let mut out = Vec::new();
    let mut line = Vec::new();
    let mut number = newlines;
    loop {
        number += 1;
        let over =
            read_line_limited(&mut r, &mut line, max_row_bytes).map_err(|e| input(format!("line {number}: {e}")))?;
        let Some(over) = over else { break };
        let source = RowSource::line(path, number);
        if let Some(bytes) = over {
            out.push(Err(Reject { source, reason: RejectReason::TooLarge { bytes, limit: max_row_bytes } }));
            continue;
        }
        let text = match std::str::from_utf8(&line) {
            Ok(t) => t,
            Err(e) => {
                let reason = format!("invalid UTF-8 at byte {} of the line", e.valid_up_to());
                out.push(Err(Reject { source, reason: RejectReason::MalformedJson(reason) }));
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        out.push(match serde_json::from_str::<Value>(text) {
            Ok(v) => parse_row(v, source),
            Err(e) => Err(Reject { source, reason: RejectReason::MalformedJson(e.to_string()) }),
        });
    }
    Ok(out)
}

/// Reads the next line into `line`, without its line ending (`\n` or `\r\n`, as
/// [`str::lines`]). Returns `None` at the end of the input, `Some(None)` for a line within
/// `max` bytes, and `Some(Some(n))` for a line of `n` bytes over `max`: its bytes past the limit
/// are read and dropped, so memory holds at most `max` plus a buffer.
fn read_line_limited(r: &mut impl BufRead, line: &mut Vec<u8>, max: u64) -> std::io::Result<Option<Option<u64>>> {
    line.clear();
    let mut total = 0u64;
    let mut any = false;
    let mut over = false;
    let mut newline = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        any = true;
        let (take, end) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        total += take as u64;
        if !over {
            // Two bytes of slack for a `\r\n` ending.
            if total > max.saturating_add(2) {
                over = true;
                *line = Vec::new();
            } else {
                line.extend_from_slice(&buf[..take]);
            }
        }
        r.consume(take);
        if end {
            newline = true;
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if over {
        return Ok(Some(Some(total - u64::from(newline))));
    }
    let mut ending = 0;
    if line.last() == Some(&b'\n') {
        ending = 1;
        if line.len() >= 2 && line[line.len() - 2] == b'\r' {
            ending = 2;
        }
    }
    line.truncate(line.len() - ending);
    let len = line.len() as u64;
    Ok(Some((len > max).then_some(len)))
}

/// Rows given in memory, each a JSON value as one line of a JSONL file holds: row `i` is named
/// [`RowSource::memory`]`(i)` (`row i` in messages, `"index": i` in `rejects.jsonl`), and a value
/// that is not a row is a reject, as a bad line is. The row size limit does not apply (the rows
/// are already in memory).
pub fn rows_from_values(values: impl IntoIterator<Item = Value>) -> Vec<Result<Row, Reject>> {
    values.into_iter().enumerate().map(|(i, v)| parse_row(v, RowSource::memory(i as u64))).collect()
}

/// One row from its JSON value (`{"text", "audio"}` or `{"messages", "audio"}`, see the module
/// documentation), or the reject saying why it is not one.
pub fn parse_row(value: Value, source: RowSource) -> Result<Row, Reject> {
    let bad = |reason: String| Reject { source: source.clone(), reason: RejectReason::BadRow(reason) };
    let Value::Object(mut obj) = value else {
        return Err(bad("expected a JSON object with `text` or `messages`".into()));
    };
    let audio = match obj.remove("audio") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(vec![s]),
        Some(Value::Array(items)) => {
            let mut paths = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => paths.push(s),
                    other => return Err(bad(format!("`audio` entries must be path strings, found {other}"))),
                }
            }
            Some(paths)
        }
        Some(other) => return Err(bad(format!("`audio` must be a path or a list of paths, found {other}"))),
    };
    match (obj.remove("text"), obj.remove("messages")) {
        (Some(Value::String(text)), None) => {
            Ok(Row { source: source.clone(), content: RowContent::Text(text), audio: audio.unwrap_or_default() })
        }
        (None, Some(messages @ Value::Array(_))) => {
            check_messages(&messages).map_err(bad)?;
            let audio = match audio {
                Some(a) => a,
                None => audio_from_messages(&messages).map_err(bad)?,
            };
            Ok(Row { source: source.clone(), content: RowContent::Messages(messages), audio })
        }
        (Some(_), Some(_)) => Err(bad("give either `text` or `messages`, not both".into())),
        (Some(other), None) => Err(bad(format!("`text` must be a string, found {}", kind(&other)))),
        (None, Some(other)) => Err(bad(format!("`messages` must be a list, found {}", kind(&other)))),
        (None, None) => Err(bad("missing `text` or `messages`".into())),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Checks that every message is what a chat template (transformers' `apply_chat_template`, the
/// Qwen2-Audio template) can render: an object with a string `role` and a `content` that is a
/// string or a list of objects (content items such as `{"type": "text", "text": ...}`).
fn check_messages(messages: &Value) -> Result<(), String> {
    for (i, m) in messages.as_array().into_iter().flatten().enumerate() {
        let Value::Object(obj) = m else {
            return Err(format!("message {i}: expected an object with `role` and `content`, found {}", kind(m)));
        };
        match obj.get("role") {
            Some(Value::String(_)) => {}
            None => return Err(format!("message {i}: missing `role`")),
            Some(other) => return Err(format!("message {i}: `role` must be a string, found {}", kind(other))),
        }
        match obj.get("content") {
            Some(Value::String(_)) => {}
            Some(Value::Array(items)) => {
                if let Some((k, item)) = items.iter().enumerate().find(|(_, v)| !v.is_object()) {
                    return Err(format!("message {i}: content item {k} must be an object, found {}", kind(item)));
                }
            }
            None => return Err(format!("message {i}: missing `content`")),
            Some(other) => {
                return Err(format!(
                    "message {i}: `content` must be a string or a list of items, found {}",
                    kind(other)
                ))
            }
        }
    }
    Ok(())
}

/// Audio paths from content items, in order.
fn audio_from_messages(messages: &Value) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for m in messages.as_array().into_iter().flatten() {
        let Some(Value::Array(items)) = m.get("content") else { continue };
        for item in items {
            let is_audio = item.get("type").and_then(Value::as_str) == Some("audio")
                || item.get("audio_url").is_some()
                || item.get("audio").is_some();
            if !is_audio {
                continue;
            }
            match item.get("audio_url").or_else(|| item.get("audio")) {
                Some(Value::String(p)) => out.push(p.clone()),
                _ => return Err(format!("audio content item without a path string: {item}")),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::RowAt;
    use std::fs;

    fn rows(text: &str, name: &str) -> Vec<Result<Row, Reject>> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        fs::write(&p, text).unwrap();
        read_rows(&p).unwrap()
    }

    #[test]
    fn jsonl_rows_and_a_malformed_line_with_its_number() {
        let r = rows("{\"text\": \"a<|AUDIO|>\", \"audio\": \"x.wav\"}\n\n{oops\n{\"text\": \"b\"}\n", "r.jsonl");
        assert_eq!(r.len(), 3);
        let first = r[0].as_ref().unwrap();
        assert_eq!(first.audio, ["x.wav"]);
        assert_eq!(first.source.at, RowAt::Line(1));
        let bad = r[1].as_ref().unwrap_err();
        assert_eq!(bad.source.at, RowAt::Line(3));
        assert_eq!(bad.reason.kind(), "malformed_json");
        assert!(r[2].as_ref().unwrap().audio.is_empty());
    }

    #[test]
    fn json_array_and_message_rows() {
        let r = rows(
            r#"[{"messages": [{"role": "user", "content": [{"type": "audio", "audio_url": "a.wav"},
                {"type": "text", "text": "hi"}]}]}, {"text": 3}, {"text": "x", "audio": ["a", "b"]}]"#,
            "r.json",
        );
        assert_eq!(r[0].as_ref().unwrap().audio, ["a.wav"]);
        assert!(matches!(r[0].as_ref().unwrap().content, RowContent::Messages(_)));
        assert_eq!(r[1].as_ref().unwrap_err().source.at, RowAt::Index(1));
        assert_eq!(r[2].as_ref().unwrap().audio, ["a", "b"]);
    }

    #[test]
    fn lines_over_the_limit_are_rejected_and_the_next_ones_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        // 16 bytes is the limit: line 1 has exactly 16 (before its \r\n), line 2 has 17.
        let ok = r#"{"text": "abcde"}"#;
        assert_eq!(ok.len(), 17);
        let at_limit = r#"{"text": "abcd"}"#;
        fs::write(&p, format!("\u{feff}{at_limit}\r\n{ok}\n\n{at_limit}")).unwrap();
        let r = read_rows_with(&p, 16).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].as_ref().unwrap().source.at, RowAt::Line(1));
        let big = r[1].as_ref().unwrap_err();
        assert_eq!((big.source.at, &big.reason), (RowAt::Line(2), &RejectReason::TooLarge { bytes: 17, limit: 16 }));
        assert_eq!(r[2].as_ref().unwrap().source.at, RowAt::Line(4));
    }

    #[test]
    fn invalid_utf8_is_a_reject_on_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        fs::write(&p, b"\n{\"text\": \"a\xff\"}\n{\"text\": \"b\"}\n").unwrap();
        let r = read_rows_with(&p, 1 << 20).unwrap();
        let bad = r[0].as_ref().unwrap_err();
        assert_eq!(bad.source.at, RowAt::Line(2));
        assert_eq!(bad.reason, RejectReason::MalformedJson("invalid UTF-8 at byte 11 of the line".into()));
        assert_eq!(r[1].as_ref().unwrap().source.at, RowAt::Line(3));
    }

    #[test]
    fn a_broken_json_array_is_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        fs::write(&p, "[{\"text\": 1},").unwrap();
        assert!(matches!(read_rows(&p), Err(PackError::Input { .. })));
    }
}
