//! Grouping tensor names into the components users name.
//!
//! | model | components |
//! |---|---|
//! | `qwen2`, `qwen3`, `llama`, `mistral` | embeddings, layers, norm, head |
//! | `hubert`, `wav2vec2` | feature_cnn, feature_projection, positional_conv, transformer (with `masked_spec_embed`), head (CTC) |
//! | `whisper` | encoder, decoder, head |
//! | `qwen2_audio` | audio_tower, projector, language_model |
//! | SNAC (a config with `encoder_rates` and `vq_strides`) | encoder, quantizer, decoder |
//!
//! A name a known model does not place goes under its first dot-separated segment; an unknown model
//! (or `--depth N`) groups by the first N segments.

use serde_json::Value;

/// The kind of model a `config.json` describes: its `model_type`, or `snac` for a SNAC config.
pub fn model_kind(config: &Value) -> Option<String> {
    if let Some(t) = config.get("model_type").and_then(Value::as_str) {
        return Some(t.to_string());
    }
    (config.get("encoder_rates").is_some() && config.get("vq_strides").is_some()).then(|| "snac".to_string())
}

/// Whether `kind` has named components.
pub fn is_known(kind: &str) -> bool {
    matches!(kind, "qwen2" | "qwen3" | "llama" | "mistral" | "hubert" | "wav2vec2" | "whisper" | "qwen2_audio" | "snac")
}

/// The first `depth` dot-separated segments of a name.
pub fn by_depth(name: &str, depth: usize) -> String {
    name.split('.').take(depth.max(1)).collect::<Vec<_>>().join(".")
}

/// The component of a tensor of a model of `kind` (`None`: unknown, grouped by `depth`).
pub fn component(kind: Option<&str>, name: &str, depth: usize) -> String {
    let found = match kind {
        Some("qwen2" | "qwen3" | "llama" | "mistral") => first(
            name,
            &[
                ("model.embed_tokens.", "embeddings"),
                ("model.layers.", "layers"),
                ("model.norm.", "norm"),
                ("lm_head.", "head"),
            ],
        ),
        Some(k @ ("hubert" | "wav2vec2")) => {
            let bare = name.strip_prefix(&format!("{k}.")).unwrap_or(name);
            first(
                bare,
                &[
                    ("feature_extractor.", "feature_cnn"),
                    ("feature_projection.", "feature_projection"),
                    ("encoder.pos_conv_embed.", "positional_conv"),
                    ("encoder.", "transformer"),
                    ("masked_spec_embed", "transformer"),
                    ("lm_head.", "head"),
                ],
            )
        }
        Some("whisper") => first(
            name,
            &[
                ("model.encoder.", "encoder"),
                ("model.decoder.", "decoder"),
                ("encoder.", "encoder"),
                ("decoder.", "decoder"),
                ("proj_out.", "head"),
            ],
        ),
        Some("qwen2_audio") => first(
            name,
            &[
                ("audio_tower.", "audio_tower"),
                ("model.audio_tower.", "audio_tower"),
                ("multi_modal_projector.", "projector"),
                ("model.multi_modal_projector.", "projector"),
                ("language_model.", "language_model"),
                ("model.language_model.", "language_model"),
                ("lm_head.", "language_model"),
            ],
        ),
        Some("snac") => first(name, &[("encoder.", "encoder"), ("quantizer.", "quantizer"), ("decoder.", "decoder")]),
        _ => return by_depth(name, depth),
    };
    found.map(str::to_string).unwrap_or_else(|| by_depth(name, 1))
}

/// The order a known model's components are reported in (data flow order).
pub fn order(kind: &str) -> &'static [&'static str] {
    match kind {
        "qwen2" | "qwen3" | "llama" | "mistral" => &["embeddings", "layers", "norm", "head"],
        "hubert" | "wav2vec2" => &["feature_cnn", "feature_projection", "positional_conv", "transformer", "head"],
        "whisper" => &["encoder", "decoder", "head"],
        "qwen2_audio" => &["audio_tower", "projector", "language_model"],
        "snac" => &["encoder", "quantizer", "decoder"],
        _ => &[],
    }
}

fn first(name: &str, rules: &[(&str, &'static str)]) -> Option<&'static str> {
    rules.iter().find(|(p, _)| name.starts_with(p)).map(|(_, c)| *c)
}

/// The output-embedding name a known model omits when `tie_word_embeddings` holds, with the name it
/// is tied to and the architecture's default for the flag (`None` for models without one).
pub fn tied_head(kind: &str) -> Option<(&'static str, &'static str, bool)> {
    match kind {
        "qwen2" | "qwen3" | "llama" | "mistral" => Some(("lm_head.weight", "model.embed_tokens.weight", false)),
        "whisper" => Some(("proj_out.weight", "model.decoder.embed_tokens.weight", true)),
        "qwen2_audio" => Some(("language_model.lm_head.weight", "language_model.model.embed_tokens.weight", false)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_go_to_their_components() {
        assert_eq!(component(Some("qwen3"), "model.layers.3.mlp.up_proj.weight", 2), "layers");
        assert_eq!(component(Some("hubert"), "hubert.encoder.pos_conv_embed.conv.bias", 2), "positional_conv");
        assert_eq!(component(Some("wav2vec2"), "wav2vec2.masked_spec_embed", 2), "transformer");
        assert_eq!(component(Some("qwen2_audio"), "language_model.lm_head.weight", 2), "language_model");
        assert_eq!(component(Some("whisper"), "something.else", 2), "something");
        assert_eq!(component(None, "a.b.c.d", 3), "a.b.c");
        assert_eq!(component(None, "a", 3), "a");
    }
}
