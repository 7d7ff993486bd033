"""White Gaussian noise scaled to each clip's level."""
from __future__ import annotations

import torch

from vcmr.audio.augment.common import per_item, randn

NOISE_STD_RATIO = (0.0001, 0.01)  # noise std relative to the clip's std


def add_white_noise(x: torch.Tensor, relative_std, noise: torch.Tensor | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Add Gaussian noise whose std is ``relative_std`` times each clip's std (the
    reference's ``Noise``: noise std drawn uniformly between 0.0001 and 0.01 x signal std).

    ``noise`` (same shape as ``x``, unit variance) may be given; otherwise it is drawn.
    """
    if noise is None:
        noise = randn(x.shape, generator, x.device, x.dtype)
    std = x.std(dim=1, keepdim=True)
    return x + noise * std * per_item(relative_std, x)
