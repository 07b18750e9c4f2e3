//! The tensors a known architecture has, from its `config.json` alone (`--config-only`): the same
//! names and shapes that `save_pretrained` writes, by the transformers modelling code's own shape
//! rules, so every count downstream (components, dtypes, LoRA) works as on real headers.
//!
//! Known: `qwen2`, `qwen3` (`*ForCausalLM` or the bare `*Model`), `hubert` and `wav2vec2` (the bare
//! model or `*ForCTC`), `whisper` (`WhisperForConditionalGeneration` or `WhisperModel`) and
//! `qwen2_audio` (`Qwen2AudioForConditionalGeneration`, saved with the older names
//! `audio_tower.*`, `multi_modal_projector.*`, `language_model.model.*`, `language_model.lm_head.*`),
//! and SNAC (the `snac` package's `config.json`, weight norm saved as `parametrizations.weight.original0/1`;
//! the local attention's persistent `rel_pos.inv_freq` buffer is listed, as it is saved: see
//! [`is_buffer`]).

use serde_json::Value;

use crate::Dtype;

/// One tensor of an architecture: its saved name and shape.
pub type Spec = (String, Vec<u64>);

/// Tensors of the model a configuration describes, and the dtype it names (`dtype` / `torch_dtype`,
/// float32 when absent). `Err` says why the configuration is not one of the known ones.
pub fn tensors_of_config(config: &Value) -> Result<(Vec<Spec>, Dtype), String> {
    let model_type = config.get("model_type").and_then(Value::as_str).unwrap_or_default();
    let arch = config
        .get("architectures")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut out = Vec::new();
    match model_type {
        "qwen2" | "qwen3" => {
            let causal = arch.is_empty() || arch.ends_with("ForCausalLM");
            let prefix = if causal { "model." } else { "" };
            decoder_lm(config, model_type, prefix, &mut out)?;
            if causal && !tied(config, false) {
                out.push(("lm_head.weight".into(), vec![get(config, "vocab_size")?, get(config, "hidden_size")?]));
            }
        }
        "hubert" | "wav2vec2" => {
            let ctc = arch.ends_with("ForCTC");
            if !(arch.is_empty() || ctc || arch.ends_with("Model")) {
                return Err(format!("the {arch} head is not known (only the bare model and *ForCTC)"));
            }
            let prefix = if ctc { format!("{model_type}.") } else { String::new() };
            ssl(config, model_type, &prefix, &mut out)?;
            if ctc {
                let h = get(config, "hidden_size")?;
                let v = get(config, "vocab_size")?;
                out.push(("lm_head.weight".into(), vec![v, h]));
                out.push(("lm_head.bias".into(), vec![v]));
            }
        }
        "whisper" => {
            let full = arch.is_empty() || arch == "WhisperForConditionalGeneration";
            let prefix = if full { "model." } else { "" };
            whisper_encoder(config, &format!("{prefix}encoder."), &mut out)?;
            whisper_decoder(config, &format!("{prefix}decoder."), &mut out)?;
            if full && !tied(config, true) {
                out.push(("proj_out.weight".into(), vec![get(config, "vocab_size")?, get(config, "d_model")?]));
            }
        }
        "qwen2_audio" => {
            let audio = config.get("audio_config").ok_or("no audio_config")?;
            let text = config.get("text_config").ok_or("no text_config")?;
            whisper_encoder(audio, "audio_tower.", &mut out)?;
            let (d, h) = (get(audio, "d_model")?, get(text, "hidden_size")?);
            out.push(("multi_modal_projector.linear.weight".into(), vec![h, d]));
            out.push(("multi_modal_projector.linear.bias".into(), vec![h]));
            decoder_lm(text, "qwen2", "language_model.model.", &mut out)?;
            if !tied(text, false) {
                out.push(("language_model.lm_head.weight".into(), vec![get(text, "vocab_size")?, h]));
            }
        }
        "" if config.get("encoder_rates").is_some() && config.get("vq_strides").is_some() => snac(config, &mut out)?,
        "" => return Err("config.json names no model_type".into()),
        other => {
            return Err(format!(
                "model_type {other:?} has no shape rules (known: qwen2, qwen3, hubert, wav2vec2, whisper, qwen2_audio, SNAC)"
            ))
        }
    }
    Ok((out, config_dtype(config)))
}

/// The dtype a configuration names, float32 when it names none.
pub fn config_dtype(config: &Value) -> Dtype {
    let name = ["dtype", "torch_dtype"].iter().find_map(|k| config.get(*k).and_then(Value::as_str));
    match name {
        Some("bfloat16") => Dtype::BF16,
        Some("float16") => Dtype::F16,
        Some("float64") => Dtype::F64,
        _ => Dtype::F32,
    }
}

/// `tie_word_embeddings`, with the architecture's default when absent.
pub fn tied(config: &Value, default: bool) -> bool {
    config.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(default)
}

fn get(c: &Value, key: &str) -> Result<u64, String> {
    c.get(key).and_then(Value::as_u64).ok_or_else(|| format!("{key} is missing or not a non-negative integer"))
}

fn get_or(c: &Value, key: &str, default: u64) -> Result<u64, String> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().ok_or_else(|| format!("{key} is not a non-negative integer")),
    }
}

fn flag(c: &Value, key: &str, default: bool) -> bool {
    c.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn list(c: &Value, key: &str) -> Result<Vec<u64>, String> {
    c.get(key)
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
        .ok_or_else(|| format!("{key} is missing or not a list of non-negative integers"))
}

fn linear(out: &mut Vec<Spec>, name: &str, o: u64, i: u64, bias: bool) {
    out.push((format!("{name}.weight"), vec![o, i]));
    if bias {
        out.push((format!("{name}.bias"), vec![o]));
    }
}

fn norm(out: &mut Vec<Spec>, name: &str, n: u64, bias: bool) {
    out.push((format!("{name}.weight"), vec![n]));
    if bias {
        out.push((format!("{name}.bias"), vec![n]));
    }
}

/// Qwen2 / Qwen3 decoder stack under `prefix` (`model.`): embeddings, layers, final norm.
fn decoder_lm(c: &Value, kind: &str, prefix: &str, out: &mut Vec<Spec>) -> Result<(), String> {
    let (v, h, i) = (get(c, "vocab_size")?, get(c, "hidden_size")?, get(c, "intermediate_size")?);
    let (layers, heads) = (get(c, "num_hidden_layers")?, get(c, "num_attention_heads")?);
    let kv = get_or(c, "num_key_value_heads", heads)?;
    if heads == 0 {
        return Err("num_attention_heads is 0".into());
    }
    let hd = get_or(c, "head_dim", h / heads)?;
    // Qwen2: biases on q, k, v (not o); Qwen3: `attention_bias` on all four, q/k RMS norms over head_dim.
    let (qkv_bias, o_bias) = if kind == "qwen2" {
        (true, false)
    } else {
        let b = flag(c, "attention_bias", false);
        (b, b)
    };
    out.push((format!("{prefix}embed_tokens.weight"), vec![v, h]));
    for l in 0..layers {
        let p = format!("{prefix}layers.{l}");
        linear(out, &format!("{p}.self_attn.q_proj"), heads * hd, h, qkv_bias);
        linear(out, &format!("{p}.self_attn.k_proj"), kv * hd, h, qkv_bias);
        linear(out, &format!("{p}.self_attn.v_proj"), kv * hd, h, qkv_bias);
        linear(out, &format!("{p}.self_attn.o_proj"), h, heads * hd, o_bias);
        if kind == "qwen3" {
            norm(out, &format!("{p}.self_attn.q_norm"), hd, false);
            norm(out, &format!("{p}.self_attn.k_norm"), hd, false);
        }
        linear(out, &format!("{p}.mlp.gate_proj"), i, h, false);
        linear(out, &format!("{p}.mlp.up_proj"), i, h, false);
        linear(out, &format!("{p}.mlp.down_proj"), h, i, false);
        norm(out, &format!("{p}.input_layernorm"), h, false);
        norm(out, &format!("{p}.post_attention_layernorm"), h, false);
    }
    norm(out, &format!("{prefix}norm"), h, false);
    Ok(())
}

/// HuBERT / wav2vec2 (transformers' Hubert/Wav2Vec2 Model) under `prefix`.
fn ssl(c: &Value, kind: &str, prefix: &str, out: &mut Vec<Spec>) -> Result<(), String> {
    let (h, i, layers) = (get(c, "hidden_size")?, get(c, "intermediate_size")?, get(c, "num_hidden_layers")?);
    let (dims, kernels) = (list(c, "conv_dim")?, list(c, "conv_kernel")?);
    if dims.is_empty() || dims.len() != kernels.len() {
        return Err("conv_dim and conv_kernel differ in length (or are empty)".into());
    }
    if flag(c, "add_adapter", false) {
        return Err("add_adapter: the wav2vec2 adapter has no shape rules here".into());
    }
    if flag(c, "conv_pos_batch_norm", false) {
        return Err("conv_pos_batch_norm: the batch-norm positional conv has no shape rules here".into());
    }
    let conv_bias = flag(c, "conv_bias", false);
    let layer_norm = match c.get("feat_extract_norm").and_then(Value::as_str).unwrap_or("group") {
        "layer" => true,
        "group" => false,
        other => return Err(format!("feat_extract_norm {other:?} is neither group nor layer")),
    };
    let mut fin = 1;
    for (l, (&d, &k)) in dims.iter().zip(&kernels).enumerate() {
        let p = format!("{prefix}feature_extractor.conv_layers.{l}");
        out.push((format!("{p}.conv.weight"), vec![d, fin, k]));
        if conv_bias {
            out.push((format!("{p}.conv.bias"), vec![d]));
        }
        if layer_norm || l == 0 {
            norm(out, &format!("{p}.layer_norm"), d, true);
        }
        fin = d;
    }
    let last = fin;
    if kind == "wav2vec2" || flag(c, "feat_proj_layer_norm", true) {
        norm(out, &format!("{prefix}feature_projection.layer_norm"), last, true);
    }
    linear(out, &format!("{prefix}feature_projection.projection"), h, last, true);
    let mask = |k: &str| c.get(k).and_then(Value::as_f64).is_some_and(|p| p > 0.0);
    if mask("mask_time_prob") || mask("mask_feature_prob") {
        out.push((format!("{prefix}masked_spec_embed"), vec![h]));
    }
    let (k, g) = (get(c, "num_conv_pos_embeddings")?, get(c, "num_conv_pos_embedding_groups")?);
    if g == 0 || h % g != 0 {
        return Err(format!("hidden_size {h} is not a multiple of num_conv_pos_embedding_groups {g}"));
    }
    let p = format!("{prefix}encoder.pos_conv_embed.conv");
    out.push((format!("{p}.bias"), vec![h]));
    // weight_norm(dim=2): g keeps the kernel axis, v is the whole kernel.
    out.push((format!("{p}.parametrizations.weight.original0"), vec![1, 1, k]));
    out.push((format!("{p}.parametrizations.weight.original1"), vec![h, h / g, k]));
    norm(out, &format!("{prefix}encoder.layer_norm"), h, true);
    for l in 0..layers {
        let p = format!("{prefix}encoder.layers.{l}");
        for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            linear(out, &format!("{p}.attention.{proj}"), h, h, true);
        }
        norm(out, &format!("{p}.layer_norm"), h, true);
        linear(out, &format!("{p}.feed_forward.intermediate_dense"), i, h, true);
        linear(out, &format!("{p}.feed_forward.output_dense"), h, i, true);
        norm(out, &format!("{p}.final_layer_norm"), h, true);
    }
    Ok(())
}

fn whisper_attention(out: &mut Vec<Spec>, p: &str, d: u64) {
    linear(out, &format!("{p}.q_proj"), d, d, true);
    linear(out, &format!("{p}.k_proj"), d, d, false);
    linear(out, &format!("{p}.v_proj"), d, d, true);
    linear(out, &format!("{p}.out_proj"), d, d, true);
}

/// The Whisper encoder (also Qwen2-Audio's audio tower) under `prefix`.
fn whisper_encoder(c: &Value, prefix: &str, out: &mut Vec<Spec>) -> Result<(), String> {
    let (d, mel, pos) = (get(c, "d_model")?, get(c, "num_mel_bins")?, get(c, "max_source_positions")?);
    let (layers, ffn) = (get(c, "encoder_layers")?, get(c, "encoder_ffn_dim")?);
    out.push((format!("{prefix}conv1.weight"), vec![d, mel, 3]));
    out.push((format!("{prefix}conv1.bias"), vec![d]));
    out.push((format!("{prefix}conv2.weight"), vec![d, d, 3]));
    out.push((format!("{prefix}conv2.bias"), vec![d]));
    out.push((format!("{prefix}embed_positions.weight"), vec![pos, d]));
    for l in 0..layers {
        let p = format!("{prefix}layers.{l}");
        whisper_attention(out, &format!("{p}.self_attn"), d);
        norm(out, &format!("{p}.self_attn_layer_norm"), d, true);
        linear(out, &format!("{p}.fc1"), ffn, d, true);
        linear(out, &format!("{p}.fc2"), d, ffn, true);
        norm(out, &format!("{p}.final_layer_norm"), d, true);
    }
    norm(out, &format!("{prefix}layer_norm"), d, true);
    Ok(())
}

/// The Whisper decoder under `prefix`.
fn whisper_decoder(c: &Value, prefix: &str, out: &mut Vec<Spec>) -> Result<(), String> {
    let (d, v, pos) = (get(c, "d_model")?, get(c, "vocab_size")?, get(c, "max_target_positions")?);
    let (layers, ffn) = (get(c, "decoder_layers")?, get(c, "decoder_ffn_dim")?);
    out.push((format!("{prefix}embed_tokens.weight"), vec![v, d]));
    out.push((format!("{prefix}embed_positions.weight"), vec![pos, d]));
    for l in 0..layers {
        let p = format!("{prefix}layers.{l}");
        whisper_attention(out, &format!("{p}.self_attn"), d);
        norm(out, &format!("{p}.self_attn_layer_norm"), d, true);
        whisper_attention(out, &format!("{p}.encoder_attn"), d);
        norm(out, &format!("{p}.encoder_attn_layer_norm"), d, true);
        linear(out, &format!("{p}.fc1"), ffn, d, true);
        linear(out, &format!("{p}.fc2"), d, ffn, true);
        norm(out, &format!("{p}.final_layer_norm"), d, true);
    }
    norm(out, &format!("{prefix}layer_norm"), d, true);
    Ok(())
}

/// Whether a saved tensor of a model of `kind` is a persistent buffer, not a parameter (not counted:
/// `sum(p.numel() for p in model.parameters())` leaves it out). SNAC's local attention saves its
/// rotary `inv_freq`.
pub fn is_buffer(kind: &str, name: &str) -> bool {
    kind == "snac" && name.ends_with(".rel_pos.inv_freq")
}

/// A weight-normed convolution (`torch.nn.utils.parametrizations.weight_norm`, dim 0): g `[out, 1, 1]`,
/// v `[out, in / groups, k]`, bias `[out]`.
fn wn_conv(out: &mut Vec<Spec>, name: &str, cin: u64, cout: u64, k: u64, groups: u64, bias: bool) {
    out.push((format!("{name}.parametrizations.weight.original0"), vec![cout, 1, 1]));
    out.push((format!("{name}.parametrizations.weight.original1"), vec![cout, cin / groups.max(1), k]));
    if bias {
        out.push((format!("{name}.bias"), vec![cout]));
    }
}

fn snake(out: &mut Vec<Spec>, name: &str, c: u64) {
    out.push((format!("{name}.alpha"), vec![1, c, 1]));
}

fn residual_unit(out: &mut Vec<Spec>, p: &str, dim: u64, groups: u64) {
    snake(out, &format!("{p}.block.0"), dim);
    wn_conv(out, &format!("{p}.block.1"), dim, dim, 7, groups, true);
    snake(out, &format!("{p}.block.2"), dim);
    wn_conv(out, &format!("{p}.block.3"), dim, dim, 1, 1, true);
}

fn local_mha(out: &mut Vec<Spec>, p: &str, dim: u64) {
    norm(out, &format!("{p}.norm"), dim, true);
    out.push((format!("{p}.to_qkv.weight"), vec![3 * dim, dim]));
    out.push((format!("{p}.rel_pos.inv_freq"), vec![32])); // dim_head 64
    out.push((format!("{p}.to_out.weight"), vec![dim, dim]));
}

/// SNAC (the `snac` package): encoder, residual VQ, decoder.
fn snac(c: &Value, out: &mut Vec<Spec>) -> Result<(), String> {
    let (enc_dim, dec_dim) = (get(c, "encoder_dim")?, get(c, "decoder_dim")?);
    let (enc_rates, dec_rates, strides) =
        (list(c, "encoder_rates")?, list(c, "decoder_rates")?, list(c, "vq_strides")?);
    let (cb_size, cb_dim) = (get(c, "codebook_size")?, get(c, "codebook_dim")?);
    let window = c.get("attn_window_size").is_some_and(|w| !w.is_null());
    let depthwise = flag(c, "depthwise", true);
    let noise = flag(c, "noise", true);
    let latent = match c.get("latent_dim") {
        None | Some(Value::Null) => enc_dim
            .checked_mul(1u64.checked_shl(enc_rates.len() as u32).ok_or("too many encoder_rates")?)
            .ok_or("latent size overflows")?,
        Some(v) => v.as_u64().ok_or("latent_dim is not a non-negative integer")?,
    };
    // Encoder.
    let mut j = 0;
    let mut d = enc_dim;
    wn_conv(out, "encoder.block.0", 1, d, 7, 1, true);
    for &stride in &enc_rates {
        j += 1;
        d = d.checked_mul(2).ok_or("encoder width overflows")?;
        let half = d / 2;
        let groups = if depthwise { half } else { 1 };
        let p = format!("encoder.block.{j}");
        for u in 0..3 {
            residual_unit(out, &format!("{p}.block.{u}"), half, groups);
        }
        snake(out, &format!("{p}.block.3"), half);
        wn_conv(out, &format!("{p}.block.4"), half, d, 2 * stride, 1, true);
    }
    if window {
        j += 1;
        local_mha(out, &format!("encoder.block.{j}"), d);
    }
    j += 1;
    wn_conv(out, &format!("encoder.block.{j}"), d, d, 7, if depthwise { d } else { 1 }, true);
    // Quantizer.
    for (i, _) in strides.iter().enumerate() {
        let p = format!("quantizer.quantizers.{i}");
        wn_conv(out, &format!("{p}.in_proj"), latent, cb_dim, 1, 1, true);
        wn_conv(out, &format!("{p}.out_proj"), cb_dim, latent, 1, 1, true);
        out.push((format!("{p}.codebook.weight"), vec![cb_size, cb_dim]));
    }
    // Decoder.
    let mut j = 0;
    if depthwise {
        wn_conv(out, "decoder.model.0", latent, latent, 7, latent, true);
        wn_conv(out, "decoder.model.1", latent, dec_dim, 1, 1, true);
        j = 1;
    } else {
        wn_conv(out, "decoder.model.0", latent, dec_dim, 7, 1, true);
    }
    if window {
        j += 1;
        local_mha(out, &format!("decoder.model.{j}"), dec_dim);
    }
    let mut out_dim = dec_dim;
    for (i, &stride) in dec_rates.iter().enumerate() {
        j += 1;
        let input = dec_dim >> i;
        out_dim = dec_dim >> (i + 1);
        let groups = if depthwise { out_dim } else { 1 };
        let p = format!("decoder.model.{j}");
        snake(out, &format!("{p}.block.0"), input);
        // ConvTranspose1d weight [in, out, k], weight norm over dim 0: g [in, 1, 1].
        out.push((format!("{p}.block.1.parametrizations.weight.original0"), vec![input, 1, 1]));
        out.push((format!("{p}.block.1.parametrizations.weight.original1"), vec![input, out_dim, 2 * stride]));
        out.push((format!("{p}.block.1.bias"), vec![out_dim]));
        let mut b = 2;
        if noise {
            wn_conv(out, &format!("{p}.block.2.linear"), out_dim, out_dim, 1, 1, false);
            b = 3;
        }
        for u in 0..3 {
            residual_unit(out, &format!("{p}.block.{}", b + u), out_dim, groups);
        }
    }
    snake(out, &format!("decoder.model.{}", j + 1), out_dim);
    wn_conv(out, &format!("decoder.model.{}", j + 2), out_dim, 1, 7, 1, true);
    Ok(())
}
