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

use serde_json::Value;
use tokenizers::models::bpe::{Merges, Vocab, BPE};
use tokenizers::normalizers::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

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
    max_token_bytes: Option<usize>,
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
            (Some(f), _) => load_tokenizer_json(f)?,
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
        let max_token_bytes = max_token_bytes(&inner);
        Ok(AudioTokenizer { inner, ids, max_token_bytes, chat_template, source: path.to_path_buf() })
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

    /// The most bytes of input text one token can stand for, when the pipeline bounds it (see
    /// [`max_token_bytes`]): a text of `n` bytes then has at least `n / max` tokens, which lets
    /// a row that cannot fit a block be rejected before it is tokenized.
    pub fn max_token_bytes(&self) -> Option<usize> {
        self.max_token_bytes
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

/// The most bytes of input text one token can cover, or `None` where the pipeline may drop or
/// fuse text without bound (so that no token count follows from the text length): a
/// normaliser other than Unicode normal forms and lowercasing (which shrink text at most 3x
/// each, e.g. a fullwidth letter to ASCII), a pre-tokenizer that removes what it splits on
/// (whitespace, BERT), a model other than BPE or a BPE that fuses unknown characters, or
/// truncation. Otherwise every token is a vocabulary or added token, a byte-level or
/// byte-fallback piece or one unknown character (at most 4 bytes), so its input is at most its
/// own length in bytes (at least 4) times the normalisers' shrink factors.
fn max_token_bytes(tok: &Tokenizer) -> Option<usize> {
    fn types(v: &Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(t)) = m.get("type") {
                    out.push((t.clone(), v.clone()));
                }
                for inner in m.values() {
                    types(inner, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| types(i, out)),
            _ => {}
        }
    }
    if tok.get_truncation().is_some() {
        return None;
    }
    let tokenizers::ModelWrapper::BPE(bpe) = tok.get_model() else { return None };
    if bpe.fuse_unk && bpe.unk_token.is_some() {
        return None;
    }
    let mut shrink = 1usize;
    if let Some(n) = tok.get_normalizer() {
        let mut found = Vec::new();
        types(&serde_json::to_value(n).ok()?, &mut found);
        for (t, _) in found {
            match t.as_str() {
                "Sequence" => {}
                "NFC" | "NFD" | "NFKC" | "NFKD" | "Lowercase" => shrink = shrink.checked_mul(3)?,
                _ => return None,
            }
        }
    }
    if let Some(p) = tok.get_pre_tokenizer() {
        let mut found = Vec::new();
        types(&serde_json::to_value(p).ok()?, &mut found);
        for (t, v) in found {
            let removes = v.get("behavior").and_then(Value::as_str) == Some("Removed");
            match t.as_str() {
                "Sequence" | "ByteLevel" | "Metaspace" | "Digits" | "UnicodeScripts" => {}
                "Split" | "Punctuation" if !removes => {}
                _ => return None,
            }
        }
    }
    let longest = tok.get_vocab(true).keys().map(String::len).max().unwrap_or(0);
    longest.max(4).checked_mul(shrink)
}

/// Builds Qwen2's fast tokenizer from `vocab.json` + `merges.txt`, with the added tokens of
/// `tokenizer_config.json` or, without one, the six Qwen2-Audio special tokens.
///
/// The result is the tokenizer `tokenizers` deserialises from the equivalent `tokenizer.json`
/// (the tests compare both, serialised, and their ids), built directly: the vocabulary is read
/// into the model's own map, the merges straight from the text, while the other file is read on
/// another worker (`rayon::join`, inside the caller's pool), and the BPE model and pipeline are
/// made with the same settings. Going through `tokenizers`' serde path instead buffers the 151k
/// merges as generic content first and costs several times more.
fn build_from_slow_files(dir: &Path, config: Option<&Value>) -> Result<Tokenizer, PackError> {
    let vocab_path = dir.join("vocab.json");
    let merges_path = dir.join("merges.txt");
    let (vocab, merges) = rayon::join(|| read_vocab(&vocab_path), || read_merges(&merges_path));
    let (vocab, merges) = (vocab?, merges?);
    let added = config_added_tokens(dir, config)?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .continuing_subword_prefix(String::new())
        .end_of_word_suffix(String::new())
        .fuse_unk(false)
        .byte_fallback(false)
        .ignore_merges(false)
        .build()
        .map_err(|e| tok_err(dir, format!("building the tokenizer from vocab.json + merges.txt: {e}")))?;
    let mut tok = Tokenizer::new(bpe);
    let split = Split::new(SplitPattern::Regex(QWEN2_SPLIT_PATTERN.into()), SplitDelimiterBehavior::Isolated, false)
        .map_err(|e| tok_err(dir, format!("the Qwen2 split pattern: {e}")))?;
    let byte_level = ByteLevel::new(false, false, false);
    tok.with_normalizer(Some(NFC)).map_err(|e| tok_err(dir, e.to_string()))?;
    tok.with_pre_tokenizer(Some(PreTokenizerSequence::new(vec![
        PreTokenizerWrapper::Split(split),
        PreTokenizerWrapper::ByteLevel(byte_level),
    ])));
    tok.with_post_processor(Some(byte_level));
    tok.with_decoder(Some(byte_level));
    if added.is_empty() {
        // No tokenizer_config.json: Qwen2-Audio's special tokens take the ids after the vocabulary.
        let specials: Vec<AddedToken> =
            QWEN2_AUDIO_SPECIAL_TOKENS.iter().map(|t| AddedToken::from(t.to_string(), true)).collect();
        tok.add_special_tokens(specials).map_err(|e| tok_err(dir, format!("adding the special tokens: {e}")))?;
    } else {
        // As `tokenizers` adds a tokenizer.json's `added_tokens`: all of them, in id order.
        let tokens = added.iter().map(|(_, content, special)| {
            AddedToken::from(content.clone(), *special)
                .single_word(false)
                .lstrip(false)
                .rstrip(false)
                .normalized(false)
                .special(*special)
        });
        tok.add_tokens(tokens).map_err(|e| tok_err(dir, format!("adding the added tokens: {e}")))?;
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

/// Loads a `tokenizer.json`. A BPE model's vocabulary and merges (most of the file) are read
/// directly into the model's own types and the model built with the file's settings; the rest
/// of the file (normaliser, pre-tokenizer, post-processor, decoder, padding, truncation) goes
/// through `tokenizers`' own deserialisation, and the added tokens are added last, as
/// `tokenizers` adds them. Any other model, or a file this does not understand, is left to
/// `tokenizers` entirely (which then also gives the error message).
fn load_tokenizer_json(path: &Path) -> Result<Tokenizer, PackError> {
    let text = fs::read_to_string(path).map_err(|e| tok_err(path, e.to_string()))?;
    // The syntax first: `tokenizers`' decoder deserialiser panics on a syntax error inside
    // `decoder` (`expect("Helper")`) instead of returning it, so it only ever sees valid JSON.
    serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|e| tok_err(path, format!("invalid JSON: {e}")))?;
    match bpe_tokenizer_json(&text) {
        Some(tok) => Ok(tok),
        None => text.parse().map_err(|e: tokenizers::Error| tok_err(path, e.to_string())),
    }
}

/// A BPE model as `tokenizers` reads it (unknown fields ignored, as there).
#[derive(serde::Deserialize)]
struct BpeModelFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    dropout: Option<f32>,
    #[serde(default)]
    unk_token: Option<String>,
    #[serde(default)]
    continuing_subword_prefix: Option<String>,
    #[serde(default)]
    end_of_word_suffix: Option<String>,
    #[serde(default)]
    fuse_unk: Option<bool>,
    #[serde(default)]
    byte_fallback: Option<bool>,
    #[serde(default)]
    ignore_merges: Option<bool>,
    vocab: Vocab,
    merges: MergesFile,
}

/// `merges`: all `["a", "b"]` pairs, or all legacy `"a b"` strings (`#version` lines dropped).
struct MergesFile(Merges);

impl<'de> serde::Deserialize<'de> for MergesFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, SeqAccess, Visitor};

        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Item {
            Pair(String, String),
            Legacy(String),
        }
        struct MergesVisitor;
        impl<'de> Visitor<'de> for MergesVisitor {
            type Value = MergesFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of merges")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MergesFile, A::Error> {
                let mut merges = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                let (mut pairs, mut legacy) = (false, false);
                let mut rank = 0;
                while let Some(item) = seq.next_element::<Item>()? {
                    match item {
                        Item::Pair(a, b) => {
                            pairs = true;
                            merges.push((a, b));
                        }
                        Item::Legacy(line) => {
                            legacy = true;
                            if line.starts_with("#version") {
                                continue;
                            }
                            rank += 1;
                            match merge_pair(&line) {
                                Some(pair) => merges.push(pair),
                                None => return Err(A::Error::custom(format!("bad merge {rank}"))),
                            }
                        }
                    }
                    if pairs && legacy {
                        return Err(A::Error::custom("merges mix pairs and strings"));
                    }
                }
                Ok(MergesFile(merges))
            }
        }
        deserializer.deserialize_seq(MergesVisitor)
    }
}

/// An added token with its id, as `tokenizer.json` lists them.
#[derive(serde::Deserialize)]
struct AddedTokenWithId {
    #[allow(dead_code)]
    id: u32,
    #[serde(flatten)]
    token: AddedToken,
}

/// The tokenizer of a `tokenizer.json` text whose model is BPE (see [`load_tokenizer_json`]);
/// `None` where `tokenizers` itself should read the text.
fn bpe_tokenizer_json(text: &str) -> Option<Tokenizer> {
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;

    let mut top: BTreeMap<String, &RawValue> = serde_json::from_str(text).ok()?;
    let model: BpeModelFile = serde_json::from_str(top.get("model")?.get()).ok()?;
    if model.kind.as_deref() != Some("BPE") {
        return None;
    }
    let added: Vec<AddedTokenWithId> = match top.get("added_tokens") {
        Some(raw) => serde_json::from_str(raw.get()).ok()?,
        None => Vec::new(),
    };
    // BPEVisitor's settings, in its terms.
    let mut builder = BPE::builder().vocab_and_merges(model.vocab, model.merges.0);
    if let Some(d) = model.dropout {
        builder = builder.dropout(d);
    }
    if let Some(u) = model.unk_token {
        builder = builder.unk_token(u);
    }
    if let Some(p) = model.continuing_subword_prefix {
        builder = builder.continuing_subword_prefix(p);
    }
    if let Some(s) = model.end_of_word_suffix {
        builder = builder.end_of_word_suffix(s);
    }
    if let Some(f) = model.fuse_unk {
        builder = builder.fuse_unk(f);
    }
    if let Some(b) = model.byte_fallback {
        builder = builder.byte_fallback(b);
    }
    if let Some(i) = model.ignore_merges {
        builder = builder.ignore_merges(i);
    }
    let bpe = builder.build().ok()?;
    // Everything else through tokenizers, around an empty model that is then replaced.
    let empty = RawValue::from_string(r#"{"type": "BPE", "vocab": {}, "merges": []}"#.into()).ok()?;
    let no_tokens = RawValue::from_string("[]".into()).ok()?;
    top.insert("model".into(), &empty);
    top.insert("added_tokens".into(), &no_tokens);
    let mut tok: Tokenizer = serde_json::to_string(&top).ok()?.parse().ok()?;
    tok.with_model(bpe);
    tok.add_tokens(added.into_iter().map(|t| t.token)).ok()?;
    Some(tok)
}

/// `vocab.json`: a JSON object of token -> id.
fn read_vocab(path: &Path) -> Result<Vocab, PackError> {
    let bytes = fs::read(path).map_err(|e| tok_err(path, e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| tok_err(path, format!("expected a JSON object of token -> id: {e}")))
}

/// `merges.txt`: an optional `#version` line, then one `a b` pair per line (empty lines skipped).
fn read_merges(path: &Path) -> Result<Merges, PackError> {
    let text = fs::read_to_string(path).map_err(|e| tok_err(path, e.to_string()))?;
    let mut merges = Vec::with_capacity(text.len() / 8);
    for (i, line) in text.lines().enumerate() {
        if (i == 0 && line.starts_with("#version")) || line.is_empty() {
            continue;
        }
        match merge_pair(line) {
            Some(pair) => merges.push(pair),
            None => return Err(tok_err(path, format!("line {}: expected two symbols", i + 1))),
        }
    }
    Ok(merges)
}

/// A merge written as text, `"a b"`: exactly two symbols separated by one space.
fn merge_pair(line: &str) -> Option<(String, String)> {
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), None) => Some((a.to_string(), b.to_string())),
        _ => None,
    }
}

/// `tokenizer_config.json`'s `added_tokens_decoder` as `(id, content, special)`, by id.
fn config_added_tokens(dir: &Path, config: Option<&Value>) -> Result<Vec<(u32, String, bool)>, PackError> {
    let mut added = Vec::new();
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
    Ok(added)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::{Path, PathBuf};

    use serde_json::{json, Value};
    use tokenizers::{AddedToken, Tokenizer};

    use super::{
        bpe_tokenizer_json, build_from_slow_files, load_tokenizer_json, AudioTokenizer, QWEN2_AUDIO_SPECIAL_TOKENS,
        QWEN2_SPLIT_PATTERN,
    };

    fn qwen2_dir() -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pack/qwen2-tokenizer");
        assert!(dir.join("vocab.json").is_file(), "{} is missing: run tools/fetch_qwen_tokenizer.sh", dir.display());
        dir
    }

    /// The reference build: the equivalent tokenizer.json text, deserialised by `tokenizers`.
    fn build_through_serde(dir: &Path, added: &[(u32, &str, bool)]) -> Tokenizer {
        let vocab: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("vocab.json")).unwrap()).unwrap();
        let merges: Vec<Value> = std::fs::read_to_string(dir.join("merges.txt"))
            .unwrap()
            .lines()
            .enumerate()
            .filter(|(i, l)| !(l.is_empty() || (*i == 0 && l.starts_with("#version"))))
            .map(|(_, l)| {
                let (a, b) = l.split_once(' ').unwrap();
                json!([a, b])
            })
            .collect();
        let added_tokens: Vec<Value> = added
            .iter()
            .map(|(id, content, special)| {
                json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
                       "normalized": false, "special": special})
            })
            .collect();
        let byte_level =
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false});
        let spec = json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": added_tokens,
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT_PATTERN}, "behavior": "Isolated", "invert": false},
                byte_level,
            ]},
            "post_processor": byte_level,
            "decoder": byte_level,
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges},
        });
        let mut tok: Tokenizer = spec.to_string().parse().unwrap();
        if added.is_empty() {
            let specials: Vec<AddedToken> =
                QWEN2_AUDIO_SPECIAL_TOKENS.iter().map(|t| AddedToken::from(t.to_string(), true)).collect();
            tok.add_special_tokens(specials).unwrap();
        }
        tok
    }

    fn golden_strings() -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pack/tokenizer_ids.json");
        let g: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        g["strings"].as_array().unwrap().iter().map(|c| c["text"].as_str().unwrap().to_string()).collect()
    }

    fn assert_same(fast: &Tokenizer, reference: &Tokenizer) {
        // Serialised, the two are the same tokenizer: model (vocab, merges by rank, settings),
        // pipeline and added tokens.
        assert_eq!(fast.to_string(false).unwrap(), reference.to_string(false).unwrap());
        let strings = golden_strings();
        assert!(strings.len() >= 40);
        for text in &strings {
            let (a, b) = (fast.encode(text.as_str(), false).unwrap(), reference.encode(text.as_str(), false).unwrap());
            assert_eq!(a.get_ids(), b.get_ids(), "{text:?}");
            assert_eq!(a.get_offsets(), b.get_offsets(), "{text:?}");
        }
    }

    #[test]
    fn direct_build_equals_the_serde_build_with_the_qwen2_audio_specials() {
        let dir = qwen2_dir();
        let fast = build_from_slow_files(&dir, None).unwrap();
        assert_same(&fast, &build_through_serde(&dir, &[]));
        assert_eq!(fast.token_to_id("<|audio_eos|>"), Some(151648));
    }

    #[test]
    fn direct_build_equals_the_serde_build_with_a_config_s_added_tokens() {
        let dir = qwen2_dir();
        let added = [
            (151643, "<|endoftext|>", true),
            (151644, "<|im_start|>", true),
            (151645, "<|im_end|>", true),
            (151646, "<|AUDIO|>", true),
            (151647, "<|audio_bos|>", true),
            (151648, "<|audio_eos|>", true),
            (151649, "plain added", false),
        ];
        let decoder: serde_json::Map<String, Value> =
            added.iter().map(|(id, c, s)| (id.to_string(), json!({"content": c, "special": s}))).collect();
        let config = json!({ "added_tokens_decoder": decoder });
        let fast = build_from_slow_files(&dir, Some(&config)).unwrap();
        assert_same(&fast, &build_through_serde(&dir, &added));
    }

    /// A tokenizer.json read the fast way and by `tokenizers` itself, compared.
    fn check_tokenizer_json(text: &str) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("tokenizer.json");
        std::fs::write(&path, text).unwrap();
        assert!(bpe_tokenizer_json(text).is_some(), "the fast path should take this file");
        let fast = load_tokenizer_json(&path).unwrap();
        assert_same(&fast, &Tokenizer::from_file(&path).unwrap());
        // And as a folder, through AudioTokenizer.
        let tok = AudioTokenizer::load(tmp.path()).unwrap();
        assert_eq!(tok.special_ids().audio, 151646);
    }

    #[test]
    fn tokenizer_json_fast_read_equals_tokenizers_read() {
        let dir = qwen2_dir();
        let mut added: Vec<(u32, &str, bool)> =
            QWEN2_AUDIO_SPECIAL_TOKENS.iter().enumerate().map(|(i, t)| (151643 + i as u32, *t, true)).collect();
        added.push((151649, "plain added", false));
        let text = build_through_serde(&dir, &added).to_string(false).unwrap();
        check_tokenizer_json(&text);

        // Legacy merges ("a b" strings, as tokenizers < 0.20 wrote them), settings spelled out
        // differently, and padding / truncation set.
        let mut v: Value = serde_json::from_str(&text).unwrap();
        let legacy: Vec<Value> = v["model"]["merges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| json!(format!("{} {}", m[0].as_str().unwrap(), m[1].as_str().unwrap())))
            .collect();
        v["model"]["merges"] = Value::Array(legacy);
        v["model"]["continuing_subword_prefix"] = Value::Null;
        v["model"]["unk_token"] = json!("<|endoftext|>");
        v["model"]["dropout"] = json!(0.0);
        v["truncation"] = json!({"direction": "Right", "max_length": 7, "strategy": "LongestFirst", "stride": 0});
        check_tokenizer_json(&v.to_string());
    }

    #[test]
    fn other_tokenizer_json_files_go_to_tokenizers() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("tokenizer.json");
        // A WordLevel model: read by tokenizers itself.
        let word_level = json!({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "hello": 1}, "unk_token": "<unk>"}})
        .to_string();
        assert!(bpe_tokenizer_json(&word_level).is_none());
        std::fs::write(&path, &word_level).unwrap();
        let tok = load_tokenizer_json(&path).unwrap();
        assert_eq!(tok.encode("hello there", false).unwrap().get_ids(), &[1, 0]);
        // Mixed merges, a merge of unknown tokens, a bad version: tokenizers' own error.
        for bad in [
            r#"{"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", ["a", "b"]]}}"#,
            r#"{"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "x"]]}}"#,
            r#"{"version": "2.0", "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}}"#,
        ] {
            assert!(bpe_tokenizer_json(bad).is_none(), "{bad}");
            std::fs::write(&path, bad).unwrap();
            assert!(load_tokenizer_json(&path).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_slow_files_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("vocab.json"), r#"{"a": 0, "b": 1, "ab": 2}"#).unwrap();
        std::fs::write(dir.join("merges.txt"), "#version: 0.2\na b c\n").unwrap();
        let err = AudioTokenizer::load(dir).unwrap_err().to_string();
        assert!(err.contains("line 2: expected two symbols"), "{err}");
        std::fs::write(dir.join("merges.txt"), "a x\n").unwrap();
        let err = AudioTokenizer::load(dir).unwrap_err().to_string();
        assert!(err.contains("building the tokenizer"), "{err}");
        std::fs::write(dir.join("vocab.json"), "[1, 2]").unwrap();
        let err = AudioTokenizer::load(dir).unwrap_err().to_string();
        assert!(err.contains("expected a JSON object"), "{err}");
    }

    /// Found by the fuzz harness (issue 16): a syntax error inside `decoder` reached
    /// `tokenizers`' decoder deserialiser, which panics on it (`expect("Helper")`) instead of
    /// returning an error. It must be a typed error naming the file and the place.
    #[test]
    fn invalid_json_in_a_tokenizer_json_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("tokenizer.json");
        let text = r#"{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": null, "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": false,, "trim_offsets": false},
            "model": {"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "a"}}"#;
        std::fs::write(&path, text).unwrap();
        let err = std::panic::catch_unwind(|| load_tokenizer_json(&path).map(|_| ()).map_err(|e| e.to_string()));
        let err = err.expect("loading must not panic").unwrap_err();
        assert!(err.contains("tokenizer.json") && err.contains("invalid JSON") && err.contains("line 3"), "{err}");
    }
}
