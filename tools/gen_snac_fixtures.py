#!/usr/bin/env python3
"""Parity fixtures for audiotok's SNAC (crates/audiotok-codecs), made with the reference `snac` package.

Pinned versions (tools/requirements-snac.txt): snac==1.2.1, torch==2.15.0 (CPU), numpy==2.1.3,
soundfile, soxr==1.1.0, einops==0.8.2.

For each configuration the script
  1. builds `snac.SNAC(**config)` after `torch.manual_seed(SEED)` (the package's own initialisation),
     then re-draws every codebook from a standard normal (so codes spread like a trained model's) and,
     so that a loader bug cannot hide behind identity values, scales every weight-norm magnitude g by
     U(0.5, 1.5) (fresh init has g = ||v||), draws Snake alphas from U(0.5, 1.5) and LayerNorm
     weights/biases from N(1, 0.1) / N(0, 0.1), and zeroes the encoder's and in_proj's biases (their
     default init would otherwise make every frame pick the same code);
  2. saves `config.json` + `pytorch_model.bin` (`torch.save(model.state_dict())`, i.e. the published HF
     layout with weight norm stored as `parametrizations.weight.original0/1`);
  3. loads test clips (tests/fixtures/audio), resamples them to the model rate with soxr HQ, and saves
     `<clip>_input.npy` (float32), `<clip>_codes<i>.npy` (int64, one per codebook, from `model.encode`),
     `<clip>_latent.npy` (encoder output) and `<clip>_decoded.npy` (`model.decode(codes)`, float32,
     padded length), with the decoder's noise blocks OFF (NoiseBlock.forward patched to identity).

Usage:
  python tools/gen_snac_fixtures.py            # the small committed fixtures -> tests/fixtures/snac/
  python tools/gen_snac_fixtures.py --full     # + published-size 24 kHz / 32 kHz -> bench-data/snac/ (ignored)
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from torch import nn

import snac
from snac import SNAC
from snac.layers import NoiseBlock

SEED = 1234
ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "tests" / "fixtures" / "audio"

CONFIGS = {
    # Small, same structure as the 24 kHz model (no attention, 3 codebooks, strides 4/2/1).
    "tiny24": dict(sampling_rate=24000, encoder_dim=4, encoder_rates=[2, 4, 8, 8], decoder_dim=64,
                   decoder_rates=[8, 8, 4, 2], attn_window_size=None, codebook_size=1024, codebook_dim=8,
                   vq_strides=[4, 2, 1], noise=True, depthwise=True),
    # Small, same structure as the 32 kHz model (local attention with 1 / 2 heads, 4 codebooks, strides 8/4/2/1).
    "tiny32": dict(sampling_rate=32000, encoder_dim=4, encoder_rates=[2, 3, 8, 8], decoder_dim=128,
                   decoder_rates=[8, 8, 3, 2], attn_window_size=32, codebook_size=1024, codebook_dim=8,
                   vq_strides=[8, 4, 2, 1], noise=True, depthwise=True),
    # Published sizes (hubertsiuzdak/snac_24khz and snac_32khz config.json).
    "snac_24khz": dict(sampling_rate=24000, encoder_dim=48, encoder_rates=[2, 4, 8, 8], decoder_dim=1024,
                       decoder_rates=[8, 8, 4, 2], attn_window_size=None, codebook_size=4096, codebook_dim=8,
                       vq_strides=[4, 2, 1], noise=True, depthwise=True),
    "snac_32khz": dict(sampling_rate=32000, encoder_dim=64, encoder_rates=[2, 3, 8, 8], decoder_dim=1536,
                       decoder_rates=[8, 8, 3, 2], attn_window_size=32, codebook_size=4096, codebook_dim=8,
                       vq_strides=[8, 4, 2, 1], noise=True, depthwise=True),
}


def noise_off():
    NoiseBlock.forward = lambda self, x: x


def build(cfg):
    torch.manual_seed(SEED)
    model = SNAC(**cfg)
    gen = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for q in model.quantizer.quantizers:
            q.codebook.weight.copy_(torch.randn(q.codebook.weight.shape, generator=gen))
        for name, p in model.named_parameters():
            if name.endswith("parametrizations.weight.original0"):
                p.mul_(torch.rand(p.shape, generator=gen) + 0.5)
            elif name.endswith(".alpha"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            elif ".norm." in name and name.endswith(".weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif ".norm." in name and name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias") and (name.startswith("encoder.") or ".in_proj." in name):
                # PyTorch's default bias init dominates a random network's latent, so that every frame
                # would pick the same code; without these biases the codes follow the audio.
                p.zero_()
    model.eval()
    return model


def load_clip(name, rate):
    x, sr = sf.read(AUDIO / name, dtype="float32", always_2d=True)
    x = x.mean(axis=1).astype(np.float32)
    if sr != rate:
        x = soxr.resample(x, sr, rate, quality="HQ").astype(np.float32)
    return x


def make(name, out_dir, clips, legacy_checkpoint=False):
    cfg = CONFIGS[name]
    out = out_dir / name
    out.mkdir(parents=True, exist_ok=True)
    model = build(cfg)
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    sd = model.state_dict()
    torch.save(sd, out / "pytorch_model.bin")
    if legacy_checkpoint:
        # A fine-tuning style checkpoint: nested under "model", DataParallel "module." prefixes, old
        # weight_g / weight_v weight-norm names, and non-tensor entries.
        legacy = {}
        for k, v in sd.items():
            k = k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v")
            legacy["module." + k] = v.clone()
        torch.save({"model": legacy, "epoch": 7, "optimizer": {"lr": 1e-4}}, out / "best_model.pt")
    manifest = {"config": name, "seed": SEED, "snac": snac.__version__ if hasattr(snac, "__version__") else "1.2.1",
                "torch": torch.__version__, "clips": {}}
    for clip in clips:
        stem = Path(clip).stem.replace("speech_", "").replace(".", "p")
        x = load_clip(clip, cfg["sampling_rate"])
        with torch.no_grad():
            t = torch.from_numpy(x)[None, None, :]
            latent = model.encoder(model.preprocess(t))
            codes = model.encode(t)
            decoded = model.decode(codes)
        np.save(out / f"{stem}_input.npy", x)
        np.save(out / f"{stem}_latent.npy", latent[0].numpy().astype(np.float32))
        for i, c in enumerate(codes):
            np.save(out / f"{stem}_codes{i}.npy", c[0].numpy().astype(np.int64))
        np.save(out / f"{stem}_decoded.npy", decoded[0, 0].numpy().astype(np.float32))
        manifest["clips"][stem] = {"source": clip, "samples": len(x), "codes": [int(c.shape[-1]) for c in codes],
                                   "decoded_samples": int(decoded.shape[-1])}
        print(f"{name}/{stem}: {len(x)} samples, codes {[int(c.shape[-1]) for c in codes]}", file=sys.stderr)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="also the published-size configurations (bench-data/snac/)")
    ap.add_argument("--only-full", action="store_true", help="only the published-size configurations")
    args = ap.parse_args()
    torch.set_num_threads(1)
    noise_off()
    if not args.only_full:
        small = ROOT / "tests" / "fixtures" / "snac"
        make("tiny24", small, ["speech_1s.wav", "speech_0.1s.wav"], legacy_checkpoint=True)
        make("tiny32", small, ["speech_1s.wav"])
    if args.full or args.only_full:
        big = ROOT / "bench-data" / "snac"
        make("snac_24khz", big, ["speech_7s.flac"])
        make("snac_32khz", big, ["speech_7s.flac"])


if __name__ == "__main__":
    main()
