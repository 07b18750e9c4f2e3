//! Export of `plain` / `thresholded` models as a HF `tokenizers` `tokenizer.json`.
//!
//! Code `i` becomes the character U+4E00 + i (the CJK block, as ESPnet and codec-bpe do), a merged
//! symbol the concatenation of its codes' characters. The model is `BPE` with no normalizer, no
//! pre-tokenizer, no unknown token and no added tokens; vocabulary ids equal ours (code `i` -> `i`,
//! merged symbols -> their ids), so HF's `encode(chars).ids` equals [`BpeModel::encode`]. A merge of a
//! pair already merged earlier is left out of the list (our encoder uses the first rank too).

use std::collections::HashSet;
use std::fmt::Write as _;

use super::error::{BpeError, Result};
use super::{BpeModel, Variant};

/// First code point of the mapping.
pub const HF_CHAR_BASE: u32 = 0x4E00;

/// The character code `code` is written as in the export (`None` past the surrogate range).
pub fn hf_char(code: u32) -> Option<char> {
    HF_CHAR_BASE.checked_add(code).filter(|&c| c < 0xD800).and_then(char::from_u32)
}

impl BpeModel {
    /// A HF `tokenizers` `tokenizer.json` for a `plain` or `thresholded` model (see [`hf_char`]).
    ///
    /// Errors for other variants and for codebooks too large for the character mapping (more than
    /// 35,328 codes).
    pub fn to_hf_tokenizer_json(&self) -> Result<String> {
        if !matches!(self.variant(), Variant::Plain | Variant::Thresholded) {
            return Err(BpeError::Export(format!(
                "only plain and thresholded models export to HF tokenizers, not {}",
                self.variant()
            )));
        }
        let c = self.codebook_size();
        if hf_char(c - 1).is_none() {
            return Err(BpeError::Export(format!("codebook size {c} is too large for the U+4E00 + i mapping")));
        }
        let text =
            |id: u32| -> String { self.symbol_tokens(id).unwrap_or(&[]).iter().filter_map(|&t| hf_char(t)).collect() };
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let mut out = String::new();
        out.push_str("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n");
        out.push_str("  \"added_tokens\": [],\n  \"normalizer\": null,\n  \"pre_tokenizer\": null,\n");
        out.push_str("  \"post_processor\": null,\n  \"decoder\": null,\n  \"model\": {\n");
        out.push_str("    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n");
        out.push_str("    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n");
        out.push_str("    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n");
        out.push_str("    \"vocab\": {");
        for id in 0..self.vocab_size() {
            let sep = if id == 0 { "\n" } else { ",\n" };
            let _ = write!(out, "{sep}      {}: {id}", q(&text(id)));
        }
        out.push_str("\n    },\n    \"merges\": [");
        let mut seen = HashSet::new();
        let mut first = true;
        for (l, r, _) in self.merges() {
            if !seen.insert((l, r)) {
                continue;
            }
            let sep = if first { "\n" } else { ",\n" };
            first = false;
            let _ = write!(out, "{sep}      [{}, {}]", q(&text(l)), q(&text(r)));
        }
        out.push_str("\n    ]\n  }\n}\n");
        Ok(out)
    }
}
