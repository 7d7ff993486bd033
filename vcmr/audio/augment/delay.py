"""The reference's echo (a single delayed copy, then halved)."""
from __future__ import annotations

import torch

from vcmr.audio.augment.common import per_item

DELAY_MS = tuple(range(200, 451, 50))  # numpy.arange(200, 500, 50) in the reference
DELAY_VOLUME = 0.5


def apply_delay(x: torch.Tensor, delay_samples, volume: float = DELAY_VOLUME) -> torch.Tensor:
    """The reference's echo: ``y[n] = (x[n] + volume * x[n - d]) / 2`` with a per-item lag
    ``d`` in samples (the halving keeps the level below the input's; it is part of the
    augmentation the published models saw)."""
    d = per_item(delay_samples, x, dtype=torch.long)
    idx = torch.arange(x.shape[1], device=x.device).expand_as(x) - d
    echo = x.gather(1, idx.clamp_min(0)) * (idx >= 0)
    return (x + volume * echo) / 2
