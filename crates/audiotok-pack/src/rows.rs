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

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::error::{PackError, Reject, RejectReason, RowAt, RowSource};

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

/// Reads every row of `path`: rows that parse, and rejects for those that do not.
pub fn read_rows(path: &Path) -> Result<Vec<Result<Row, Reject>>, PackError> {
    let text =
        fs::read_to_string(path).map_err(|e| PackError::Input { path: path.to_path_buf(), reason: e.to_string() })?;
    let body = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if body.trim_start().starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(body).map_err(|e| PackError::Input {
            path: path.to_path_buf(),
            reason: format!("not a valid JSON array: {e}"),
        })?;
        Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, v)| parse_row(v, RowSource { file: path.to_path_buf(), at: RowAt::Index(i as u64) }))
            .collect())
    } else {
        let mut out = Vec::new();
        for (i, line) in body.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let source = RowSource { file: path.to_path_buf(), at: RowAt::Line(i as u64 + 1) };
            out.push(match serde_json::from_str::<Value>(line) {
                Ok(v) => parse_row(v, source),
                Err(e) => Err(Reject { source, reason: RejectReason::MalformedJson(e.to_string()) }),
            });
        }
        Ok(out)
    }
}

fn parse_row(value: Value, source: RowSource) -> Result<Row, Reject> {
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
    fn a_broken_json_array_is_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        fs::write(&p, "[{\"text\": 1},").unwrap();
        assert!(matches!(read_rows(&p), Err(PackError::Input { .. })));
    }
}
