"""Gain in dB, per item."""
from __future__ import annotations

import torch

from vcmr.audio.augment.common import per_item

GAIN_DB = (-20.0, -1.0)


def apply_gain(x: torch.Tensor, gain_db) -> torch.Tensor:
    return x * 10.0 ** (per_item(gain_db, x) / 20.0)
