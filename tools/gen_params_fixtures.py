#!/usr/bin/env python3
"""Reference counts for `audiotok params` (crates/audiotok-inspect), made with transformers, peft and snac.

Pinned versions (tools/requirements-params.txt): torch==2.15.0 (CPU), transformers==5.23.0, peft==0.21.2,
accelerate==1.15.0, psutil==7.2.2, snac==1.2.1, einops==0.8.2, safetensors==0.8.0, numpy==2.1.3.
Installed with --no-deps into a venv whose .pth points at the loader venv's site-packages.

Writes tests/fixtures/params/:
  tiny/<name>/       small models built by transformers at a fixed seed and saved as the libraries save
                     them (save_pretrained; `qwen2-tied-bin` is torch.save(model.state_dict()), so the tied
                     head and the embeddings are two names on one storage; `qwen3-sharded` is cut into two
                     shards with an index; `qwen3-adapter` is a PEFT LoRA adapter folder over qwen3-sharded;
                     `projector` a SwiGLU projector saved with safetensors.torch.save_file)
  published/<name>/config.json
                     configurations with the published models' hyperparameters, built on the `meta` device
                     (nothing allocated) for the reference counts
  hostile/pytorch_model.bin
                     a torch-style zip whose data.pkl calls os.system through REDUCE (it would create
                     /tmp/audiotok-params-pwned if it were ever unpickled)
  reference.json     sum(p.numel() for p in model.parameters()) per model and per component, and
                     peft's get_nb_trainable_parameters() (the figures print_trainable_parameters prints)
                     for LoRA configurations

Usage: python tools/gen_params_fixtures.py
The SNAC reference uses the committed tests/fixtures/snac/tiny24 model folder.
"""
import io
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import torch
from torch import nn
import transformers
from transformers import (
    HubertConfig, HubertModel, Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, Qwen2Config,
    Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM, Wav2Vec2Config, Wav2Vec2ForCTC, WhisperConfig,
    WhisperForConditionalGeneration,
)
import peft
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file

SEED = 0
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "params"


def numel(model):
    return sum(p.numel() for p in model.parameters())


def by_prefix(model, groups):
    """Parameters per component: `groups` maps a component to its name prefixes (first match wins)."""
    out = {g: 0 for g in groups}
    for name, p in model.named_parameters():
        for g, prefixes in groups.items():
            if any(name.startswith(x) for x in prefixes):
                out[g] += p.numel()
                break
        else:
            raise SystemExit(f"{name}: in no component")
    return out


LLM_GROUPS = {"embeddings": ["model.embed_tokens."], "layers": ["model.layers."], "norm": ["model.norm."],
              "head": ["lm_head."]}
SSL_GROUPS = {"feature_cnn": ["feature_extractor.", "wav2vec2.feature_extractor."],
              "feature_projection": ["feature_projection.", "wav2vec2.feature_projection."],
              "positional_conv": ["encoder.pos_conv_embed.", "wav2vec2.encoder.pos_conv_embed."],
              "transformer": ["encoder.", "wav2vec2.encoder.", "masked_spec_embed", "wav2vec2.masked_spec_embed"], "head": ["lm_head."]}
WHISPER_GROUPS = {"encoder": ["model.encoder."], "decoder": ["model.decoder."], "head": ["proj_out."]}
# transformers 5 names the modules model.audio_tower / model.multi_modal_projector / model.language_model + lm_head
# in memory and saves them under the older names audio_tower.*, multi_modal_projector.*, language_model.model.*,
# language_model.lm_head.*.
QA_GROUPS = {"audio_tower": ["audio_tower.", "model.audio_tower."],
             "projector": ["multi_modal_projector.", "model.multi_modal_projector."],
             "language_model": ["language_model.", "model.language_model.", "lm_head."]}


def lora_ref(build, targets, r=8, alpha=16):
    torch.manual_seed(SEED)
    model = build()
    pm = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, bias="none"))
    trainable, total = pm.get_nb_trainable_parameters()
    return {"r": r, "alpha": alpha, "targets": targets, "trainable": trainable, "all": total}


def tiny_qwen2():
    return Qwen2ForCausalLM(Qwen2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
                                        max_position_embeddings=64))


def tiny_qwen3():
    return Qwen3ForCausalLM(Qwen3Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=1, head_dim=8,
                                        tie_word_embeddings=False, max_position_embeddings=64))


SSL_TINY = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                conv_dim=(8, 8), conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=8,
                num_conv_pos_embedding_groups=2, num_feat_extract_layers=2)


def tiny_hubert():
    return HubertModel(HubertConfig(**SSL_TINY, feat_extract_norm="layer", conv_bias=True, do_stable_layer_norm=True))


def tiny_wav2vec2():
    return Wav2Vec2ForCTC(Wav2Vec2Config(**SSL_TINY, vocab_size=12))


def tiny_whisper():
    return WhisperForConditionalGeneration(WhisperConfig(
        vocab_size=64, num_mel_bins=8, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, d_model=16, max_source_positions=16,
        max_target_positions=16, pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1))


def tiny_qwen2_audio():
    return Qwen2AudioForConditionalGeneration(Qwen2AudioConfig(
        audio_config=dict(num_mel_bins=8, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32,
                          d_model=16, max_source_positions=16),
        text_config=dict(model_type="qwen2", vocab_size=64, hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=64, tie_word_embeddings=False),
        audio_token_index=63))


class SwiGLUProjector(nn.Module):
    """The projector of the seed class's HuBERT + Qwen3 ASR stack: frames stacked by k, SwiGLU, to the LLM width."""

    def __init__(self, d_in, d_hidden, d_out):
        super().__init__()
        self.gate = nn.Linear(d_in, d_hidden, bias=False)
        self.up = nn.Linear(d_in, d_hidden, bias=False)
        self.down = nn.Linear(d_hidden, d_out, bias=False)
        self.norm = nn.LayerNorm(d_out)


def save(model, name, **kw):
    d = OUT / "tiny" / name
    shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(d, **kw)
    return d


def hostile():
    class Pwn:
        def __reduce__(self):
            return (os.system, ("touch /tmp/audiotok-params-pwned",))
    d = OUT / "hostile"
    d.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        # A fixed date, so that reruns give identical bytes.
        z.writestr(zipfile.ZipInfo("archive/data.pkl", (1980, 1, 1, 0, 0, 0)), pickle.dumps({"weight": Pwn()}, protocol=2))
        z.writestr(zipfile.ZipInfo("archive/version", (1980, 1, 1, 0, 0, 0)), "3\n")
    (d / "pytorch_model.bin").write_bytes(buf.getvalue())


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    ref = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "peft": peft.__version__}, "tiny": {}, "published": {}}

    builds = {"qwen2-tied": (tiny_qwen2, LLM_GROUPS), "qwen3-sharded": (tiny_qwen3, LLM_GROUPS),
              "hubert": (tiny_hubert, SSL_GROUPS), "wav2vec2-ctc": (tiny_wav2vec2, SSL_GROUPS),
              "whisper": (tiny_whisper, WHISPER_GROUPS), "qwen2-audio": (tiny_qwen2_audio, QA_GROUPS)}
    loras = {"qwen2-tied": [["q_proj", "k_proj"], ["q_proj", "v_proj", "o_proj", "gate_proj"]],
             "qwen3-sharded": [["q_proj", "k_proj"]], "hubert": [["q_proj", "k_proj"]],
             "wav2vec2-ctc": [["q_proj", "v_proj"]], "whisper": [["q_proj", "v_proj", "fc1"]],
             "qwen2-audio": [["q_proj", "k_proj"]]}
    for name, (build, groups) in builds.items():
        torch.manual_seed(SEED)
        model = build()
        kw = {"max_shard_size": "12KB"} if name == "qwen3-sharded" else {}
        save(model, name, **kw)
        comps = by_prefix(model, groups)
        ref["tiny"][name] = {"total": numel(model), "components": {k: v for k, v in comps.items() if v}}
        ref["tiny"][name]["lora"] = [lora_ref(build, t) for t in loras[name]]
        if name == "qwen2-tied":
            d = OUT / "tiny" / "qwen2-tied-bin"
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
            shutil.copy(OUT / "tiny" / name / "config.json", d / "config.json")
            torch.save(model.state_dict(), d / "pytorch_model.bin")
            ref["tiny"]["qwen2-tied-bin"] = ref["tiny"][name]

    # A PEFT adapter over qwen3-sharded, its base named relative to the adapter folder.
    torch.manual_seed(SEED)
    base = tiny_qwen3()
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], bias="none")
    pm = get_peft_model(base, cfg)
    trainable, total = pm.get_nb_trainable_parameters()
    pm.peft_config["default"].base_model_name_or_path = "../qwen3-sharded"
    d = OUT / "tiny" / "qwen3-adapter"
    shutil.rmtree(d, ignore_errors=True)
    pm.save_pretrained(d)
    # peft keeps target_modules as a set: sorted, so that reruns give identical bytes.
    ac = json.loads((d / "adapter_config.json").read_text())
    ac["target_modules"] = sorted(ac["target_modules"])
    (d / "adapter_config.json").write_text(json.dumps(ac, indent=2, sort_keys=True) + "\n")
    ref["tiny"]["qwen3-adapter"] = {"trainable": trainable, "all": total}

    # The SwiGLU projector (HuBERT width 16 stacked by 2 -> Qwen3 width 16).
    torch.manual_seed(SEED)
    proj = SwiGLUProjector(32, 24, 16)
    d = OUT / "tiny" / "projector"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in proj.state_dict().items()}, d / "projector.safetensors")
    ref["tiny"]["projector"] = {"total": numel(proj)}
    # The composite ASR stack: hubert encoder frozen, projector trained, LoRA r=8 on the decoder's q,k.
    torch.manual_seed(SEED)
    dec = get_peft_model(tiny_qwen3(), LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj"]))
    dec_trainable, dec_all = dec.get_nb_trainable_parameters()
    ref["tiny"]["asr-stack"] = {"encoder": ref["tiny"]["hubert"]["total"], "projector": numel(proj),
                                "decoder_all": dec_all, "decoder_trainable": dec_trainable}

    # SNAC (the committed codec fixture).
    from snac import SNAC
    snac_cfg = json.loads((ROOT / "tests/fixtures/snac/tiny24/config.json").read_text())
    torch.manual_seed(SEED)
    sn = SNAC(**snac_cfg)
    snac_groups = {"encoder": ["encoder."], "quantizer": ["quantizer."], "decoder": ["decoder."]}
    ref["tiny"]["snac"] = {"total": numel(sn), "components": by_prefix(sn, snac_groups)}
    # tiny32 has local attention, whose rotary inv_freq is a persistent buffer: in the state dict, not a parameter.
    snac_cfg = json.loads((ROOT / "tests/fixtures/snac/tiny32/config.json").read_text())
    torch.manual_seed(SEED)
    sn = SNAC(**snac_cfg)
    ref["tiny"]["snac32"] = {"total": numel(sn), "components": by_prefix(sn, snac_groups),
                             "buffers": sorted(k for k in sn.state_dict() if k not in dict(sn.named_parameters()))}
    # Published SNAC sizes (hubertsiuzdak/snac_24khz, snac_32khz, snac_44khz config.json), on the meta device.
    for name, cfg in {
        "snac_24khz": dict(sampling_rate=24000, encoder_dim=48, encoder_rates=[2, 4, 8, 8], decoder_dim=1024,
                           decoder_rates=[8, 8, 4, 2], attn_window_size=None, codebook_size=4096, codebook_dim=8,
                           vq_strides=[4, 2, 1], noise=True, depthwise=True),
        "snac_32khz": dict(sampling_rate=32000, encoder_dim=64, encoder_rates=[2, 3, 8, 8], decoder_dim=1536,
                           decoder_rates=[8, 8, 3, 2], attn_window_size=32, codebook_size=4096, codebook_dim=8,
                           vq_strides=[8, 4, 2, 1], noise=True, depthwise=True),
        "snac_44khz": dict(sampling_rate=44100, encoder_dim=64, encoder_rates=[2, 3, 8, 8], decoder_dim=1536,
                           decoder_rates=[8, 8, 3, 2], attn_window_size=32, codebook_size=4096, codebook_dim=8,
                           vq_strides=[8, 4, 2, 1], noise=True, depthwise=True),
    }.items():
        with torch.device("meta"):
            sn = SNAC(**cfg)
        d = OUT / "published" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        ref["published"][name] = {"total": numel(sn), "components": by_prefix(sn, snac_groups)}

    # Published sizes on the meta device.
    published = {
        "qwen3-8b": (Qwen3ForCausalLM, Qwen3Config(vocab_size=151936, hidden_size=4096, intermediate_size=12288,
                     num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                     max_position_embeddings=40960, tie_word_embeddings=False), LLM_GROUPS),
        "qwen3-0.6b": (Qwen3ForCausalLM, Qwen3Config(vocab_size=151936, hidden_size=1024, intermediate_size=3072,
                       num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                       max_position_embeddings=40960, tie_word_embeddings=True), LLM_GROUPS),
        "qwen2-7b": (Qwen2ForCausalLM, Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944,
                     num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                     max_position_embeddings=131072, tie_word_embeddings=False), LLM_GROUPS),
        "hubert-xlarge": (HubertModel, HubertConfig(hidden_size=1280, num_hidden_layers=48, num_attention_heads=16,
                          intermediate_size=5120, feat_extract_norm="layer", conv_bias=True,
                          do_stable_layer_norm=True), SSL_GROUPS),
        "wav2vec2-base-960h": (Wav2Vec2ForCTC, Wav2Vec2Config(vocab_size=32), SSL_GROUPS),
        "whisper-large-v3": (WhisperForConditionalGeneration, WhisperConfig(
            vocab_size=51866, num_mel_bins=128, encoder_layers=32, decoder_layers=32, encoder_attention_heads=20,
            decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120, d_model=1280,
            max_source_positions=1500, max_target_positions=448), WHISPER_GROUPS),
        "qwen2-audio-7b": (Qwen2AudioForConditionalGeneration, Qwen2AudioConfig(
            text_config=dict(model_type="qwen2", vocab_size=156032, hidden_size=4096, intermediate_size=11008,
                             num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                             max_position_embeddings=8192, tie_word_embeddings=False)), QA_GROUPS),
    }
    for name, (cls, config, groups) in published.items():
        config.architectures = [cls.__name__]
        with torch.device("meta"):
            model = cls(config)
        d = OUT / "published" / name
        d.mkdir(parents=True, exist_ok=True)
        config.save_pretrained(d)
        comps = by_prefix(model, groups)
        ref["published"][name] = {"total": numel(model), "components": {k: v for k, v in comps.items() if v}}
        if name == "hubert-xlarge":
            with torch.device("meta"):
                pm = get_peft_model(cls(config), LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj"]))
            t, a = pm.get_nb_trainable_parameters()
            ref["published"][name]["lora"] = [{"r": 8, "alpha": 16, "targets": ["q_proj", "k_proj"],
                                               "trainable": t, "all": a}]

    hostile()
    (OUT / "reference.json").write_text(json.dumps(ref, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: v.get("total") for k, v in ref["published"].items()}))


if __name__ == "__main__":
    main()
