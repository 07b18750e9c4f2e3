#!/usr/bin/env python3
"""The `pytorch_model.bin` twin of an encoder fixture (tests/fixtures/embed/hubert_group_bin/).

Run by hand with the pinned reference environment (tools/requirements-embed.txt):

    /work/main/.venv-torch/bin/python tools/gen_embed_bin_fixture.py tests/fixtures/embed

The state dict of `hubert_group` (made by tools/gen_embed_fixtures.py; its positional convolution
as `weight_g`/`weight_v`, as the published facebook checkpoints store it) written by `torch.save`,
as transformers' `save_pretrained(safe_serialization=False)` and the older hub uploads write
`pytorch_model.bin`, beside the same config.json and preprocessor_config.json: audiotok must read
the same model from it (its pickle walked, never executed).
"""

import os
import shutil
import sys

import safetensors.torch
import torch


def main() -> None:
    root = sys.argv[1]
    src = os.path.join(root, "hubert_group")
    dst = os.path.join(root, "hubert_group_bin")
    os.makedirs(dst, exist_ok=True)
    sd = safetensors.torch.load_file(os.path.join(src, "model.safetensors"))
    # One tensor as a view into a larger storage, as state dicts of tied or sliced weights hold them.
    k = "feature_projection.projection.bias"
    sd[k] = torch.cat([torch.zeros(3), sd[k]])[3:]
    torch.save(sd, os.path.join(dst, "pytorch_model.bin"))
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copy(os.path.join(src, name), os.path.join(dst, name))
    print(f"torch {torch.__version__}: {len(sd)} tensors -> {dst}")


if __name__ == "__main__":
    main()
