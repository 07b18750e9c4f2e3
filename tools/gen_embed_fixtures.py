#!/usr/bin/env python3
"""Golden fixtures for audiotok-encoders (tests/fixtures/embed/), made with transformers itself.

Run by hand with the pinned reference environment (tools/requirements-embed.txt):

    /work/main/.venv-torch/bin/python tools/gen_embed_fixtures.py tests/fixtures/embed

Every model is built by transformers at a fixed seed (torch.manual_seed) in a SMALL configuration
covering one variant of the published families, saved with save_pretrained, then run on
deterministic speech-like signals. Saved per model folder:

- the model folder (config.json, safetensors; preprocessor_config.json for the wav2vec2 family);
- `audio_<i>.npy` (top folder): the input clips (float32, 16 kHz), shared by all models;
- `ref_<name>_layers.npy`: (layers+1, frames, dim): entry 0 is the input of the first encoder
  layer, entry k the raw output of layer k (recorded by forward hooks, so the meaning does not
  depend on how a transformers version fills `hidden_states`);
- `ref_<name>_final.npy`: `last_hidden_state`; `ref_<name>_projected.npy` (qwen2_audio): the
  multi-modal projector's output; only the valid frames are kept.
- `hs_semantics.json`: for each model, which recorded tensor each entry of transformers'
  `output_hidden_states` equals (the per-layer semantics of transformers 5.23).
"""

import json
import os
import sys

import numpy as np
import safetensors.torch
import torch
import transformers
from transformers import (
    HubertConfig,
    HubertForCTC,
    HubertModel,
    Qwen2AudioConfig,
    Qwen2AudioForConditionalGeneration,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperModel,
)

assert torch.__version__.startswith("2.15.0"), torch.__version__
assert transformers.__version__ == "5.23.0", transformers.__version__

SR = 16000


def speech_like(n, seed):
    """A deterministic voiced/unvoiced signal: harmonics of a gliding f0 under a syllable envelope, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    f0 = 110 + 40 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum((0.6 / k) * np.sin(k * phase + rng.uniform(0, 6.28)) for k in range(1, 12))
    env = 0.5 * (1 + np.sin(2 * np.pi * 3.1 * t + seed)) ** 2
    x = x * env + 0.02 * rng.standard_normal(n)
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def hooked(layers, pre_module):
    """Forward hooks recording the input of the first layer and every layer's raw output."""
    rec = {}
    hs = []

    def pre(_m, args, kwargs):
        x = args[0] if args else kwargs["hidden_states"]
        rec["input"] = x.detach().clone()

    def post(_m, _args, out):
        out = out[0] if isinstance(out, tuple) else out
        hs.append(out.detach().clone())

    handles = [pre_module.register_forward_pre_hook(pre, with_kwargs=True)]
    handles += [layer.register_forward_hook(post) for layer in layers]
    return rec, hs, handles


def semantics(tf_hidden, recorded, final):
    """For each entry of transformers' hidden_states, the index of the recorded tensor it equals or 'final'."""
    out = []
    for h in tf_hidden:
        hit = None
        for i, r in enumerate(recorded):
            if r.shape == h.shape and torch.equal(r, h):
                hit = i
                break
        if hit is None and final.shape == h.shape and torch.equal(final, h):
            hit = "final"
        out.append(hit)
    return out


def rename_weight_norm_legacy(folder):
    """Rewrites parametrizations.weight.original0/1 as weight_g/weight_v (the published facebook layout)."""
    path = os.path.join(folder, "model.safetensors")
    sd = safetensors.torch.load_file(path)
    out = {}
    for k, v in sd.items():
        k = k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        )
        out[k] = v.contiguous()
    assert any(k.endswith("weight_g") for k in out), "no weight-norm keys to rename"
    safetensors.torch.save_file(out, path, metadata={"format": "pt"})


def wav2vec2_family(out, name, model, clips, do_normalize, legacy_wn):
    folder = os.path.join(out, name)
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SR, padding_value=0.0, do_normalize=do_normalize, return_attention_mask=True
    ).save_pretrained(folder)
    if legacy_wn:
        rename_weight_norm_legacy(folder)
    base = model.base_model
    sem = None
    for i, clip in enumerate(clips):
        x = clip
        if do_normalize:
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        rec, hs, handles = hooked(base.encoder.layers, base.encoder.layers[0])
        with torch.no_grad():
            o = base(torch.from_numpy(x)[None], output_hidden_states=True)
        for h in handles:
            h.remove()
        recorded = [rec["input"]] + hs
        if i == 0:
            sem = semantics(o.hidden_states, recorded, o.last_hidden_state)
        np.save(os.path.join(folder, f"ref_{i}_layers.npy"), torch.cat(recorded).numpy())
        np.save(os.path.join(folder, f"ref_{i}_final.npy"), o.last_hidden_state[0].numpy())
    return sem


def randomize_batch_norm(bn, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bn.running_mean.copy_(0.1 * torch.randn(bn.running_mean.shape, generator=g))
        bn.running_var.copy_(0.5 + torch.rand(bn.running_var.shape, generator=g))
        bn.weight.copy_(1 + 0.1 * torch.randn(bn.weight.shape, generator=g))
        bn.bias.copy_(0.1 * torch.randn(bn.bias.shape, generator=g))


SMALL_CONV = dict(
    conv_dim=(16, 16, 16, 16, 16, 16, 16),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    hidden_act="gelu",
    feat_extract_activation="gelu",
)


def main(out):
    os.makedirs(out, exist_ok=True)
    clips = [speech_like(3 * SR, 1), speech_like(21937, 2)]  # 3 s (149 frames) and 1.371 s (not a multiple of 160)
    for i, clip in enumerate(clips):
        np.save(os.path.join(out, f"audio_{i}.npy"), clip)
    sem = {}

    torch.manual_seed(0)
    cfg = HubertConfig(**SMALL_CONV, feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False)
    sem["hubert_group"] = wav2vec2_family(out, "hubert_group", HubertModel(cfg), clips, True, legacy_wn=True)

    torch.manual_seed(1)
    cfg = HubertConfig(
        **SMALL_CONV, feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, feat_proj_layer_norm=False
    )
    sem["hubert_layer_ctc"] = wav2vec2_family(
        out, "hubert_layer_ctc", HubertForCTC(cfg), clips, True, legacy_wn=False
    )

    torch.manual_seed(2)
    cfg = HubertConfig(**SMALL_CONV, feat_extract_norm="group", conv_pos_batch_norm=True)
    m = HubertModel(cfg)
    randomize_batch_norm(m.encoder.pos_conv_embed.batch_norm, 7)
    sem["hubert_bn"] = wav2vec2_family(out, "hubert_bn", m, clips, False, legacy_wn=False)

    torch.manual_seed(3)
    cfg = Wav2Vec2Config(**SMALL_CONV, feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)
    sem["wav2vec2_layer_ctc"] = wav2vec2_family(
        out, "wav2vec2_layer_ctc", Wav2Vec2ForCTC(cfg), clips, True, legacy_wn=True
    )

    torch.manual_seed(4)
    cfg = Wav2Vec2Config(**SMALL_CONV, feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False)
    sem["wav2vec2_group"] = wav2vec2_family(out, "wav2vec2_group", Wav2Vec2ForCTC(cfg), clips, True, legacy_wn=False)

    fe128 = WhisperFeatureExtractor(feature_size=128)

    # Qwen2-Audio: a full (tiny) Qwen2AudioForConditionalGeneration, saved sharded with an index.
    torch.manual_seed(5)
    cfg = Qwen2AudioConfig(
        audio_config=dict(
            num_mel_bins=128,
            encoder_layers=2,
            encoder_attention_heads=4,
            encoder_ffn_dim=32,
            d_model=16,
            max_source_positions=1500,
        ),
        text_config=dict(
            model_type="qwen2",
            hidden_size=24,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            vocab_size=64,
        ),
    )
    m = Qwen2AudioForConditionalGeneration(cfg).eval()
    folder = os.path.join(out, "qwen2_audio")
    m.save_pretrained(folder, safe_serialization=True, max_shard_size="60KB")
    assert os.path.exists(os.path.join(folder, "model.safetensors.index.json"))
    tower = m.model.audio_tower if hasattr(m, "model") else m.audio_tower
    proj = m.model.multi_modal_projector if hasattr(m, "model") else m.multi_modal_projector
    qclips = clips
    for i, clip in enumerate(qclips):
        f = fe128(clip, sampling_rate=SR, return_attention_mask=True, return_tensors="pt")
        feats, fmask = f["input_features"], f["attention_mask"]
        L = int(fmask.sum())
        feat_len = (L - 1) // 2 + 1
        out_len = (feat_len - 2) // 2 + 1
        # The mask as Qwen2AudioModel.forward builds it (key mask, -inf on padded keys).
        max_seq = (feats.shape[-1] - 2) // 2 + 1
        pad = torch.arange(max_seq)[None] >= feat_len
        mask4 = torch.zeros(1, 1, max_seq, max_seq)
        mask4[:, :, :, pad[0]] = torch.finfo(torch.float32).min
        rec, hs, handles = hooked(tower.layers, tower.layers[0])
        with torch.no_grad():
            o = tower(feats, attention_mask=mask4, output_hidden_states=True)
            projected = proj(o.last_hidden_state)
        for h in handles:
            h.remove()
        recorded = [rec["input"]] + hs
        if i == 0:
            sem["qwen2_audio"] = semantics(o.hidden_states, recorded, o.last_hidden_state)
        np.save(os.path.join(folder, f"ref_{i}_layers.npy"), torch.cat(recorded)[:, :feat_len].numpy())
        np.save(os.path.join(folder, f"ref_{i}_final.npy"), o.last_hidden_state[0, :out_len].numpy())
        np.save(os.path.join(folder, f"ref_{i}_projected.npy"), projected[0, :out_len].numpy())

    # Whisper encoder (the full 30 s window, no mask).
    torch.manual_seed(6)
    cfg = WhisperConfig(
        num_mel_bins=80,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        d_model=8,
        encoder_ffn_dim=16,
        decoder_ffn_dim=16,
        vocab_size=64,
        max_source_positions=1500,
        max_target_positions=16,
        decoder_start_token_id=1,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        suppress_tokens=[],
        begin_suppress_tokens=[],
    )
    m = WhisperModel(cfg).eval()
    folder = os.path.join(out, "whisper")
    m.save_pretrained(folder, safe_serialization=True)
    fe80 = WhisperFeatureExtractor(feature_size=80)
    clip = clips[1]
    feats = fe80(clip, sampling_rate=SR, return_tensors="pt")["input_features"]
    enc = m.encoder
    rec, hs, handles = hooked(enc.layers, enc.layers[0])
    with torch.no_grad():
        o = enc(feats, output_hidden_states=True)
    for h in handles:
        h.remove()
    recorded = [rec["input"]] + hs
    sem["whisper"] = semantics(o.hidden_states, recorded, o.last_hidden_state)
    np.save(os.path.join(folder, "ref_0_layers.npy"), torch.cat(recorded).numpy())
    np.save(os.path.join(folder, "ref_0_final.npy"), o.last_hidden_state[0].numpy())

    with open(os.path.join(out, "hs_semantics.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "models": sem}, f, indent=1)
    print(json.dumps(sem))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/embed")
