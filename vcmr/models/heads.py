"""Projection and classification heads that sit on top of an encoder's features."""
from __future__ import annotations

from torch import nn


def projector(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """SimCLR projector: Linear - ReLU - Linear (512-512-128 in the paper), without biases as
    the authors' projectors (stage 1 and both stage-2 branches) and CLMR's."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim, bias=False), nn.ReLU(),
                         nn.Linear(hidden_dim, out_dim, bias=False))


def tagging_head(in_dim: int, n_tags: int, hidden: int = 128, dropout: float = 0.3) -> nn.Sequential:
    """Dropout - Linear(in, hidden) - ReLU - Linear(hidden, n_tags); outputs logits."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_tags))
