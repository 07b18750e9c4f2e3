"""Speed of audiotok-bsq against the PyTorch reference (tools/bsq_reference.py) on CPU: the same
configuration, batch, crop and thread count, one run. Prints both and the ratios (audiotok / torch).

    cargo build --release -p audiotok-bsq --example bench_bsq
    /work/main/.venv-torch/bin/python tools/bench_bsq.py [--threads 2] [--batch 8] [--frames 256] [--steps 5]

Training: one update (forward in train mode, L1 + 0.1 x BSQ loss, backward, clipping, AdamW with
decoupled weight decay on matrices, EMA in the Rust run; torch's foreach AdamW) on a fixed batch;
encoding: eval-mode encoder + projection + sign to integer indices, no gradient.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bsq_reference import BsqRef, decays, indices  # noqa: E402

# the small configuration: a few M parameters, 256-frame crops
SMALL = dict(n_mels=128, crop_frames=1024, freq_patch=16, time_patch=16, width=256, encoder_depth=3,
             decoder_depth=3, heads=4, mlp_ratio=4.0, conformer=True, conv_kernel=7, head_dim=512, bits=18,
             group_size=9, inv_temperature=100.0, beta=0.0, gamma0=1.0, gamma=1.0, zeta=1.0,
             persample_entropy="group")


def torch_run(cfg, batch, frames, steps):
    torch.manual_seed(0)
    model = BsqRef(cfg)
    named = dict(model.named_parameters())
    opt = torch.optim.AdamW([
        {"params": [p for k, p in named.items() if decays(k, p)], "weight_decay": 0.05},
        {"params": [p for k, p in named.items() if not decays(k, p)], "weight_decay": 0.0},
    ], lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    ema = {k: p.detach().clone() for k, p in named.items()}
    x = torch.rand(batch, cfg["n_mels"], frames) * 2 - 1

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(x, "l1", 0.1)
        out["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for k, p in named.items():
                ema[k].mul_(0.999).add_(p.detach(), alpha=0.001)

    model.train()
    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    train = steps / (time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        indices(model.encode_latent(x), cfg["bits"])
        t0 = time.perf_counter()
        for _ in range(steps):
            indices(model.encode_latent(x), cfg["bits"])
        encode = steps * batch / (time.perf_counter() - t0)
    return dict(train_steps_per_s=train, encode_crops_per_s=encode, params=sum(p.numel() for p in named.values()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "release",
                                                    "examples", "bench_bsq"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ref = torch_run(SMALL, a.batch, a.frames, a.steps)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(SMALL, f)
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    out = subprocess.run([a.binary, f.name, str(a.batch), str(a.frames), str(a.steps)], env=env, check=True,
                         capture_output=True, text=True).stdout
    os.unlink(f.name)
    ours = json.loads(out.strip().splitlines()[-1])
    assert ours["params"] == ref["params"], (ours["params"], ref["params"])
    print(f"torch {torch.__version__}, {a.threads} threads, batch {a.batch} x {a.frames} frames, "
          f"{ref['params']} parameters")
    for k in ["train_steps_per_s", "encode_crops_per_s"]:
        print(f"{k}: audiotok {ours[k]:.3f}, torch {ref[k]:.3f}, ratio {ours[k] / ref[k]:.2f}x")


if __name__ == "__main__":
    main()
