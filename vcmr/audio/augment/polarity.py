"""Polarity inversion: the waveform multiplied by -1."""
from __future__ import annotations

import torch


def polarity_inversion(x: torch.Tensor) -> torch.Tensor:
    return -x
