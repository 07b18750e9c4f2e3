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


@pytest.fixture(scope="session")
def goldens() -> dict:
    """goldens.json of tests/fixtures/golden (made by tools/gen_goldens.py with transformers,
    librosa and soxr at pinned versions)."""
    return json.loads((FIXTURES / "golden" / "goldens.json").read_text())["goldens"]


def golden_array(entry: dict) -> np.ndarray:
    """A golden's array (gzip'd .npy)."""
    return np.load(io.BytesIO(gzip.decompress((ROOT / entry["file"]).read_bytes())))
