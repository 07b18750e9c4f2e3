"""Fixtures shared by the Python tests: the repository's committed audio clips and goldens."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"
AUDIO = FIXTURES / "audio"

# 16 mels, 32-frame crops, 4 x 8 patches, 6 bits in groups of 3 (as the CLI tests' tiny run).
BSQ_CONFIG = {
    "model": {
        "n_mels": 16, "crop_frames": 32, "freq_patch": 8, "time_patch": 4, "width": 16,
        "encoder_depth": 1, "decoder_depth": 1, "heads": 2, "mlp_ratio": 2.0, "conv_kernel": 3,
        "head_dim": 16, "bits": 6, "group_size": 3, "inv_temperature": 10.0, "beta": 0.25,
    },
    "optim": {"lr": 0.005, "warmup_steps": 2, "ema_decay": 0.9},
    "data": {"batch_size": 2, "val_fraction": 0.34, "time_masks": 1, "time_mask_width": 4, "freq_masks": 1,
             "freq_mask_width": 2, "jobs": 1},
    "total_steps": 3, "checkpoint_every": 3, "keep_checkpoints": 1, "log_every": 1, "val_every": 3, "seed": 5,
}


@pytest.fixture(scope="session")
def goldens() -> dict:
    """goldens.json of tests/fixtures/golden (made by tools/gen_goldens.py with transformers,
    librosa and soxr at pinned versions)."""
    return json.loads((FIXTURES / "golden" / "goldens.json").read_text())["goldens"]


def golden_array(entry: dict) -> np.ndarray:
    """A golden's array (gzip'd .npy)."""
    return np.load(io.BytesIO(gzip.decompress((ROOT / entry["file"]).read_bytes())))
