//! The text tokenizer: HF `tokenizers` loaded as transformers loads it.
//!
//! [`AudioTokenizer::load`] accepts
//! - a `tokenizer.json` file, or a folder that has one;
//! - a folder with the slow files `vocab.json` + `merges.txt` (Qwen2's byte-level BPE), from which
//!   the same pipeline as transformers' `Qwen2TokenizerFast` is built: NFC normaliser, the Qwen2
//!   split regex (isolated), byte-level pre-tokenizer and decoder without prefix space, BPE without
//!   unknown token. Added tokens come from `tokenizer_config.json`'s `added_tokens_decoder` when
//!   the folder has one, else the six Qwen2-Audio special tokens get the ids after the vocabulary
//!   (`<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, `<|AUDIO|>`, `<|audio_bos|>`, `<|audio_eos|>`:
//!   151643..151648 for Qwen2).
//!
//! A folder's chat template is found as transformers finds it: `chat_template.jinja`, then
//! `chat_template.json`, then `tokenizer_config.json`'s `chat_template` (a string, or a list of
//! named templates of which `default` is used).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tokenizers::{AddedToken, Tokenizer};

use crate::error::PackError;

/// The audio placeholder token.
pub const AUDIO_TOKEN: &str = "<|AUDIO|>";
/// Opens an audio span.
pub const AUDIO_BOS_TOKEN: &str = "<|audio_bos|>";
/// Closes an audio span.
pub const AUDIO_EOS_TOKEN: &str = "<|audio_eos|>";
/// Qwen2's end-of-text token, the notebook's pad.
pub const ENDOFTEXT_TOKEN: &str = "<|endoftext|>";
/// ChatML turn start.
pub const IM_START_TOKEN: &str = "<|im_start|>";
/// ChatML turn end.
pub const IM_END_TOKEN: &str = "<|im_end|>";

/// The special tokens of Qwen2-Audio, in id order after the base vocabulary.
pub const QWEN2_AUDIO_SPECIAL_TOKENS: [&str; 6] =
    [ENDOFTEXT_TOKEN, IM_START_TOKEN, IM_END_TOKEN, AUDIO_TOKEN, AUDIO_BOS_TOKEN, AUDIO_EOS_TOKEN];

/// Qwen2's pre-tokenizer split pattern (as in transformers' `Qwen2Tokenizer`).
const QWEN2_SPLIT_PATTERN: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Ids of the tokens packing needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialIds {
    /// `<|AUDIO|>`.
    pub audio: u32,
    /// `<|audio_bos|>`.
    pub audio_bos: u32,
    /// `<|audio_eos|>`.
    pub audio_eos: u32,
    /// The pad id blocks are filled with (`pad_token` from tokenizer_config.json, else
    /// `<|endoftext|>`).
    pub pad: u32,
}

/// One tokenized text: ids and the byte range of the text each came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Byte offsets `(start, end)` into the text, one per id.
    pub offsets: Vec<(usize, usize)>,
}

/// A tokenizer with the ids packing needs and the folder's chat template, if any.
pub struct AudioTokenizer {
    inner: Tokenizer,
    ids: SpecialIds,
    chat_template: Option<(String, String)>,
    source: PathBuf,
}

impl std::fmt::Debug for AudioTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioTokenizer").field("source", &self.source).field("ids", &self.ids).finish()
    }
}

fn tok_err(path: &Path, reason: impl Into<String>) -> PackError {
    PackError::Tokenizer { path: path.to_path_buf(), reason: reason.into() }
}

fn read_json(path: &Path) -> Result<Value, PackError> {
    let text = fs::read_to_string(path).map_err(|e| tok_err(path, e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| tok_err(path, format!("invalid JSON: {e}")))
}

impl AudioTokenizer {
    /// Loads a tokenizer file or folder (see the module docs).
    pub fn load(path: &Path) -> Result<AudioTokenizer, PackError> {
        let (dir, file) = if path.is_dir() {
            (Some(path.to_path_buf()), None)
        } else if path.is_file() {
            (None, Some(path.to_path_buf()))
        } else {
            return Err(tok_err(path, "no such file or folder"));
        };
        let config = match &dir {
            Some(d) if d.join("tokenizer_config.json").is_file() => Some(read_json(&d.join("tokenizer_config.json"))?),
            _ => None,
        };
        let json_file = file.or_else(|| dir.as_ref().map(|d| d.join("tokenizer.json")).filter(|p| p.is_file()));
        let inner = match (&json_file, &dir) {
            (Some(f), _) => Tokenizer::from_file(f).map_err(|e| tok_err(f, e.to_string()))?,
            (None, Some(d)) if d.join("vocab.json").is_file() && d.join("merges.txt").is_file() => {
                build_from_slow_files(d, config.as_ref())?
            }
            _ => return Err(tok_err(path, "expected tokenizer.json, or vocab.json + merges.txt")),
        };
        let lookup = |name: &str| {
            inner.token_to_id(name).ok_or_else(|| tok_err(path, format!("the tokenizer has no {name} token")))
        };
        let pad_name = config
            .as_ref()
            .and_then(|c| c.get("pad_token"))
            .and_then(|p| p.as_str().or_else(|| p.get("content").and_then(Value::as_str)))
            .unwrap_or(ENDOFTEXT_TOKEN)
            .to_string();
        let ids = SpecialIds {
            audio: lookup(AUDIO_TOKEN)?,
            audio_bos: lookup(AUDIO_BOS_TOKEN)?,
            audio_eos: lookup(AUDIO_EOS_TOKEN)?,
            pad: lookup(&pad_name)?,
        };
        let chat_template = match &dir {
            Some(d) => find_chat_template(d, config.as_ref())?,
            None => None,
        };
        Ok(AudioTokenizer { inner, ids, chat_template, source: path.to_path_buf() })
    }

    /// The ids packing needs.
    pub fn special_ids(&self) -> SpecialIds {
        self.ids
    }

    /// The folder's chat template as `(origin, source)`, if it has one.
    pub fn chat_template(&self) -> Option<(&str, &str)> {
        self.chat_template.as_ref().map(|(o, s)| (o.as_str(), s.as_str()))
    }

    /// Where the tokenizer was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The id of `token`, if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Tokenizes `text` as `tokenizer(text, add_special_tokens=False)`: special tokens written in
    /// the text are recognised, nothing is added.
    pub fn encode(&self, text: &str) -> Result<Encoded, String> {
        let enc = self.inner.encode(text, false).map_err(|e| e.to_string())?;
        Ok(Encoded { ids: enc.get_ids().to_vec(), offsets: enc.get_offsets().to_vec() })
    }

    /// Turns ids back into text (special tokens kept).
    pub fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.inner.decode(ids, false).map_err(|e| e.to_string())
    }
}

/// Builds Qwen2's fast tokenizer from `vocab.json` + `merges.txt`, with the added tokens of
/// `tokenizer_config.json` or, without one, the six Qwen2-Audio special tokens.
fn build_from_slow_files(dir: &Path, config: Option<&Value>) -> Result<Tokenizer, PackError> {
    // The vocabulary and merges are spliced into the JSON text as they are, and deserialised by
    // `tokenizers` itself: building a 150k-entry `serde_json::Value` first is needlessly slow.
    let vocab_path = dir.join("vocab.json");
    let vocab_text = fs::read_to_string(&vocab_path).map_err(|e| tok_err(&vocab_path, e.to_string()))?;
    if !vocab_text.trim_start().starts_with('{') {
        return Err(tok_err(&vocab_path, "expected a JSON object of token -> id"));
    }
    let merges_path = dir.join("merges.txt");
    let merges_text = fs::read_to_string(&merges_path).map_err(|e| tok_err(&merges_path, e.to_string()))?;
    let mut merges = String::with_capacity(merges_text.len() * 2);
    merges.push('[');
    for (i, line) in merges_text.lines().enumerate() {
        if (i == 0 && line.starts_with("#version")) || line.is_empty() {
            continue;
        }
        let mut parts = line.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) => {
                if merges.len() > 1 {
                    merges.push(',');
                }
                let pair = serde_json::to_string(&[a, b]).map_err(|e| tok_err(&merges_path, e.to_string()))?;
                merges.push_str(&pair);
            }
            _ => return Err(tok_err(&merges_path, format!("line {}: expected two symbols", i + 1))),
        }
    }
    merges.push(']');
    let mut added: Vec<(u32, String, bool)> = Vec::new();
    if let Some(map) = config.and_then(|c| c.get("added_tokens_decoder")).and_then(Value::as_object) {
        for (id, t) in map {
            let id: u32 =
                id.parse().map_err(|_| tok_err(&dir.join("tokenizer_config.json"), format!("bad token id `{id}`")))?;
            let content = t.get("content").and_then(Value::as_str).unwrap_or_default().to_string();
            let special = t.get("special").and_then(Value::as_bool).unwrap_or(true);
            added.push((id, content, special));
        }
        added.sort();
    }
    let added_tokens: Vec<Value> = added
        .iter()
        .map(|(id, content, special)| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": special})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false});
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT_PATTERN}, "behavior": "Isolated", "invert": false},
            byte_level,
        ]},
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": "@VOCAB@", "merges": "@MERGES@"},
    });
    let text = spec.to_string().replacen("\"@VOCAB@\"", &vocab_text, 1).replacen("\"@MERGES@\"", &merges, 1);
    let mut tok: Tokenizer =
        text.parse().map_err(|e| tok_err(dir, format!("building the tokenizer from vocab.json + merges.txt: {e}")))?;
    if added.is_empty() {
        // No tokenizer_config.json: Qwen2-Audio's special tokens take the ids after the vocabulary.
        let specials: Vec<AddedToken> =
            QWEN2_AUDIO_SPECIAL_TOKENS.iter().map(|t| AddedToken::from(t.to_string(), true)).collect();
        tok.add_special_tokens(specials).map_err(|e| tok_err(dir, format!("adding the special tokens: {e}")))?;
    }
    for (id, content, _) in &added {
        if tok.token_to_id(content) != Some(*id) {
            return Err(tok_err(
                dir,
                format!(
                    "added token {content} should have id {id}, the vocabulary gives {:?}",
                    tok.token_to_id(content)
                ),
            ));
        }
    }
    Ok(tok)
}

fn find_chat_template(dir: &Path, config: Option<&Value>) -> Result<Option<(String, String)>, PackError> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        let text = fs::read_to_string(&jinja).map_err(|e| tok_err(&jinja, e.to_string()))?;
        return Ok(Some((jinja.display().to_string(), text)));
    }
    let json_path = dir.join("chat_template.json");
    if json_path.is_file() {
        let v = read_json(&json_path)?;
        if let Some(t) = v.get("chat_template").and_then(template_text) {
            return Ok(Some((json_path.display().to_string(), t)));
        }
    }
    let from_config = config.and_then(|c| c.get("chat_template")).and_then(template_text);
    Ok(from_config.map(|t| (dir.join("tokenizer_config.json").display().to_string(), t)))
}

/// A template string, or the `default` of a list of `{"name", "template"}`.
fn template_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}
