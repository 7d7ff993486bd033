"""Gain in dB, per item."""
import torch

from augment_helpers import rms_db
from vcmr.audio.augment import apply_gain


def test_gain_changes_the_level_by_its_db_per_item():
    x = torch.randn(3, 500)
    y = apply_gain(x, torch.tensor([-6.0, 0.0, -20.0]))
    assert torch.allclose(rms_db(y) - rms_db(x), torch.tensor([-6.0, 0.0, -20.0]), atol=1e-4)
