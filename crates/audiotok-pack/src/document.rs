//! One row's token ids: tokenize, then expand each `<|AUDIO|>` placeholder to its token count.
//!
//! Expansion follows transformers' `Qwen2AudioProcessor`: the k-th placeholder becomes
//! `count_k` × `<|AUDIO|>`, wrapped in `<|audio_bos|>` … `<|audio_eos|>` unless the placeholder
//! already has `<|audio_bos|>` right before it or `<|audio_eos|>` right after it. The text is
//! tokenized once with the placeholders unexpanded and the expansion is done on ids: the
//! placeholder and the wrappers are special tokens that split the text, so the result equals
//! tokenizing the expanded text (the cooking-mode golden test checks this against the
//! reference), at a fraction of the cost for long audio.

use crate::error::RejectReason;
use crate::tokenizer::{AudioTokenizer, IM_END_TOKEN, IM_START_TOKEN};

/// Which tokens get a loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainOn {
    /// Every token except audio tokens and padding.
    #[default]
    All,
    /// Only assistant turns: from the token after `<|im_start|>assistant\n` through the turn's
    /// `<|im_end|>`, still without audio tokens.
    Assistant,
}

/// A row ready to pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Token ids with audio expanded.
    pub ids: Vec<u32>,
    /// Per token, whether it is inside an assistant turn ([`TrainOn::Assistant`] only).
    pub assistant: Option<Vec<bool>>,
    /// The row's audio paths, as written.
    pub audio: Vec<String>,
}

/// Byte ranges of assistant turn contents in a ChatML `text`.
fn assistant_spans(text: &str) -> Vec<(usize, usize)> {
    let header = format!("{IM_START_TOKEN}assistant\n");
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(k) = text[from..].find(&header) {
        let start = from + k + header.len();
        let end = match text[start..].find(IM_END_TOKEN) {
            Some(e) => start + e + IM_END_TOKEN.len(),
            None => text.len(),
        };
        spans.push((start, end));
        from = end;
    }
    spans
}

/// Tokenizes `text` and expands its placeholders; `audio_tokens[k]` is the token count of the
/// k-th audio.
pub fn build_document(
    tok: &AudioTokenizer,
    text: &str,
    audio: Vec<String>,
    audio_tokens: &[usize],
    train_on: TrainOn,
) -> Result<Document, RejectReason> {
    let ids = tok.special_ids();
    let enc = tok.encode(text).map_err(RejectReason::Tokenizer)?;
    let placeholders = enc.ids.iter().filter(|&&t| t == ids.audio).count();
    if placeholders != audio_tokens.len() || placeholders != audio.len() {
        return Err(RejectReason::PlaceholderMismatch { placeholders, audios: audio.len() });
    }
    let inside: Option<Vec<bool>> = match train_on {
        TrainOn::All => None,
        TrainOn::Assistant => {
            let spans = assistant_spans(text);
            Some(enc.offsets.iter().map(|&(s, e)| spans.iter().any(|&(a, b)| s >= a && e <= b)).collect())
        }
    };
    let extra: usize = audio_tokens.iter().sum::<usize>() + 2 * placeholders;
    let mut out = Vec::with_capacity(enc.ids.len() + extra);
    let mut mask = inside.as_ref().map(|_| Vec::with_capacity(enc.ids.len() + extra));
    let mut k = 0;
    for (i, &t) in enc.ids.iter().enumerate() {
        let flag = inside.as_ref().is_some_and(|m| m[i]);
        let before = out.len();
        if t == ids.audio {
            let has_bos = i > 0 && enc.ids[i - 1] == ids.audio_bos;
            let has_eos = enc.ids.get(i + 1) == Some(&ids.audio_eos);
            let wrap = !has_bos && !has_eos;
            if wrap {
                out.push(ids.audio_bos);
            }
            out.extend(std::iter::repeat_n(ids.audio, audio_tokens[k]));
            if wrap {
                out.push(ids.audio_eos);
            }
            k += 1;
        } else {
            out.push(t);
        }
        if let Some(m) = mask.as_mut() {
            m.extend(std::iter::repeat_n(flag, out.len() - before));
        }
    }
    if out.is_empty() {
        return Err(RejectReason::BadRow("the text has no tokens".into()));
    }
    Ok(Document { ids: out, assistant: mask, audio })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assistant_spans_cover_content_and_im_end() {
        let t = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n<|im_start|>assistant\nz";
        let spans = assistant_spans(t);
        assert_eq!(spans.len(), 2);
        assert_eq!(&t[spans[0].0..spans[0].1], "yo<|im_end|>");
        assert_eq!(&t[spans[1].0..spans[1].1], "z");
    }
}
