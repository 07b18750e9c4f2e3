"""Golden fixtures for crates/audiotok-bsq/tests/parity.rs from tools/bsq_reference.py.

Run by hand (pinned versions in tools/requirements-bsq.txt):
    /work/main/.venv-torch/bin/python tools/gen_bsq_fixtures.py
Writes tests/fixtures/bsq/<case>/{config.json, weights.safetensors, expected.safetensors} for each case:
the reference's own seeded initialisation (LayerNorm/BatchNorm affine and running statistics perturbed
so that a mix-up of them shows), an input crop, the eval-mode forward (recon, z, indices), the
train-mode forward (every loss term, BatchNorm running statistics after it), every parameter's
gradient, the global gradient norm, and the parameter updates of gradient clipping and one AdamW
step at warm-up step 1. The reference runs in float64; the fixtures are float32 (indices int64).
"""

import json
import math
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from bsq_reference import BsqRef, decays  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "crates", "audiotok-bsq", "tests", "fixtures", "bsq")

BASE = dict(n_mels=16, crop_frames=32, freq_patch=8, time_patch=4, width=16, encoder_depth=2, decoder_depth=2,
            heads=2, mlp_ratio=2.0, conformer=True, conv_kernel=3, head_dim=24, bits=6, group_size=3,
            inv_temperature=10.0, beta=0.25, gamma0=1.0, gamma=1.0, zeta=1.0, persample_entropy="group")
CASES = {
    "group": dict(BASE),
    "analytical": dict(BASE, persample_entropy="analytical", inv_temperature=100.0, conv_kernel=5,
                       bits=8, group_size=4),
    "plain_mse": dict(BASE, conformer=False, bits=4, group_size=2, inv_temperature=1.0, beta=0.0),
}
# lr large enough that one update (~lr/10) stands well above the float32 spacing of the weights
TRAIN = dict(lr=1e-2, warmup_steps=10, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.05, bsq_weight=0.5)


def make(name, cfg, seed):
    torch.manual_seed(seed)
    model = BsqRef(cfg).double()
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if k.endswith("num_batches_tracked"):
                continue
            if ("ln" in k or ".bn." in k) and k.endswith(".weight"):
                v.add_(0.1 * torch.randn_like(v))
            elif ("ln" in k or ".bn." in k) and k.endswith(".bias"):
                v.add_(0.05 * torch.randn_like(v))
            elif k.endswith("running_mean"):
                v.add_(0.1 * torch.randn_like(v))
            elif k.endswith("running_var"):
                v.mul_(1 + 0.2 * torch.rand_like(v))
    weights = {k: v.float() for k, v in model.state().items()}
    # the reference runs on exactly the float32 values the Rust side loads
    model.load_state_dict({k: v.double() for k, v in weights.items()}, strict=False)
    t = cfg["crop_frames"] if name != "plain_mse" else cfg["crop_frames"] // 2
    x = (torch.rand(2, cfg["n_mels"], t, dtype=torch.float64) * 2 - 1) * 0.9
    x = x.float().double()  # the values the Rust side reads
    exp = {"x": x}
    recon_loss = "mse" if name == "plain_mse" else "l1"

    model.eval()
    with torch.no_grad():
        ev = model(x, recon_loss, TRAIN["bsq_weight"])
    exp.update({"eval.recon": ev["recon"], "eval.z": ev["z"], "eval.indices": ev["indices"],
                "eval.group_indices": ev["group_indices"]})
    margin = ev["z"].abs().min().item()

    model.train()
    tr = model(x, recon_loss, TRAIN["bsq_weight"])
    for k in ["recon", "z", "zq", "commit", "persample_entropy", "codebook_entropy", "bsq_loss", "avg_prob",
              "recon_loss", "total", "indices", "group_indices"]:
        exp["train." + k] = tr[k].detach()
    margin = min(margin, tr["z"].abs().min().item())
    tr["total"].backward()
    named = dict(model.named_parameters())
    for k, p in named.items():
        exp["grad." + k] = p.grad.detach().clone()
    for k, v in model.state().items():
        if "running" in k:
            exp["after." + k] = v
    # clip to half the global norm (so the clip acts), then one AdamW step at warm-up step 1
    norm = math.sqrt(sum(float((p.grad ** 2).sum()) for p in named.values()))
    max_norm = 0.5 * norm
    total = torch.nn.utils.clip_grad_norm_(list(named.values()), max_norm)
    exp["grad_norm"] = torch.tensor(float(total))
    lr = TRAIN["lr"] * 1 / TRAIN["warmup_steps"]
    groups = [
        {"params": [p for k, p in named.items() if decays(k, p)], "weight_decay": TRAIN["weight_decay"]},
        {"params": [p for k, p in named.items() if not decays(k, p)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=lr, betas=TRAIN["betas"], eps=TRAIN["eps"])
    before = {k: p.detach().clone() for k, p in named.items()}
    opt.step()
    for k, p in named.items():
        # the update itself, in float64 before rounding (new weights rounded to float32 would carry
        # an error of 1e-4 of the update)
        exp["adam_update." + k] = p.detach() - before[k]

    out = os.path.join(ROOT, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1, sort_keys=True)
    with open(os.path.join(out, "train.json"), "w") as f:
        json.dump(dict(TRAIN, max_norm=max_norm, recon_loss=recon_loss, step=1), f, indent=1, sort_keys=True)
    save_file(weights, os.path.join(out, "weights.safetensors"))
    save_file({k: (v if v.dtype == torch.int64 else v.float()).contiguous() for k, v in exp.items()},
              os.path.join(out, "expected.safetensors"))
    n = sum(p.numel() for p in named.values())
    print(f"{name}: {n} parameters, min |z| {margin:.2e}, grad norm {norm:.4f}, loss {float(tr['total'].detach()):.6f}")
    assert margin > 1e-5, "a latent too close to zero: index parity would hang on rounding; pick another seed"


if __name__ == "__main__":
    print("torch", torch.__version__)
    for i, (name, cfg) in enumerate(CASES.items()):
        make(name, cfg, seed=1234 + i)
