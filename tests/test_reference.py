"""Embeddings that stay the same: a stored tiny model's embeddings of a stored WAV are pinned.

``tests/data/reference/``: ``tiny.safetensors`` (a stage-3 model, 16 kHz), ``audio.wav`` (1 s at
22050 Hz, so the resampler is pinned too), ``expected.npz`` and ``regenerate.py`` (when one may
regenerate: its docstring and docs/using-models.md, "Embeddings that stay the same").

Tolerance, measured on this machine (CPU; torch 2.13.0, numpy 2.4.6, soxr 0.5.0.post1): the largest difference between runs that
should agree is 1.4e-7 of the largest embedding value (OMP_NUM_THREADS=1 vs 2), 4.1e-7 (batches
of 1 vs 32 segments), 2.5e-7 (float64 vs float32 encoder): float32 rounding. The smallest real
change measured is 2.3e-4 (soxr quality "MQ" instead of "HQ"; "VHQ" 3.5e-4; BatchNorm eps 1e-6
instead of 1e-5: 8.2e-4). ``REL_TOL`` = 1e-5 lies 25x above the first and 23x below the second.
Tag probabilities (in [0, 1]): threads change them by 1.5e-8, soxr "MQ" by 1.4e-5; ``PROB_TOL``
= 1e-6.
"""
import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from vcmr.io.versions import PACKAGES

REFERENCE = Path(__file__).parent / "data" / "reference"
REL_TOL = 1e-5  # of max |expected embedding|
PROB_TOL = 1e-6


def _regenerate():
    spec = importlib.util.spec_from_file_location("vcmr_reference_regenerate", REFERENCE / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def regen():
    return _regenerate()


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(REFERENCE / "expected.npz"))


def differences(numbers: dict, expected: dict) -> tuple[float, float]:
    """(max |embedding diff| / max |expected|, max |tag probability diff|)."""
    ref = expected["embeddings"]
    assert numbers["embeddings"].shape == ref.shape
    rel = float(np.abs(numbers["embeddings"] - ref).max() / np.abs(ref).max())
    return rel, float(np.abs(numbers["tag_probabilities"] - expected["tag_probabilities"]).max())


def test_reference_embeddings_are_unchanged(regen, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a VersionWarning here is expected after an upgrade
        rel, prob = differences(regen.expected_numbers(), expected)
    assert rel <= REL_TOL and prob <= PROB_TOL, (
        f"embeddings of the reference model moved by {rel:.3g} of their scale (tolerance {REL_TOL}), "
        f"tag probabilities by {prob:.3g} (tolerance {PROB_TOL}): a library or code change alters "
        f"users' results; see docs/using-models.md, 'Embeddings that stay the same'")


def test_the_tolerance_catches_a_changed_resampler(regen, expected, monkeypatch):
    import soxr
    original, stream = soxr.resample, soxr.ResampleStream   # whole-signal and streaming paths
    monkeypatch.setattr(soxr, "resample", lambda x, a, b, quality="HQ": original(x, a, b, quality="VHQ"))
    monkeypatch.setattr(soxr, "ResampleStream", lambda *a, quality="HQ", **k: stream(*a, quality="VHQ", **k))
    rel, _ = differences(regen.expected_numbers(), expected)
    assert rel > 10 * REL_TOL


def test_the_tolerance_catches_a_changed_batchnorm_eps(regen, expected, monkeypatch):
    original = torch.nn.BatchNorm1d.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **{**kwargs, "eps": 1e-6})  # torch's default is 1e-5
    monkeypatch.setattr(torch.nn.BatchNorm1d, "__init__", init)
    rel, _ = differences(regen.expected_numbers(), expected)
    assert rel > 10 * REL_TOL


def test_the_reference_model_file_records_its_versions():
    with safe_open(str(REFERENCE / "tiny.safetensors"), framework="pt") as f:
        versions = json.loads(f.metadata()["versions"])
    assert set(versions) == set(PACKAGES) and all(versions.values())
