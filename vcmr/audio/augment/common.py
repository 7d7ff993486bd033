"""Helpers shared by the effects and the chain: the error type, per-item parameters, FFT
sizes, applying an effect to some rows, cropping, and drawing random numbers on the right
device."""
from __future__ import annotations

import torch

from vcmr.errors import VcmrError


class AugmentError(VcmrError, ValueError):
    """Wrong input to the augmentation chain (shape, length, probability)."""


def per_item(value, x: torch.Tensor, dtype=None) -> torch.Tensor:
    """A scalar or (B,) parameter as a (B, 1) tensor on ``x``'s device."""
    t = torch.as_tensor(value, device=x.device, dtype=dtype or x.dtype)
    if t.dim() == 0:
        t = t.expand(x.shape[0])
    return t.reshape(-1, 1)


def fast_len(n: int) -> int:
    """Smallest integer >= n whose prime factors are 2, 3 and 5 (fast FFT sizes)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def on_rows(y: torch.Tensor, mask: torch.Tensor, effect) -> torch.Tensor:
    """Apply ``effect`` to the rows where ``mask`` is set (all rows: no copy)."""
    if mask.all():
        return effect(y)
    if not mask.any():
        return y
    idx = mask.nonzero().squeeze(1)
    return y.index_copy(0, idx, effect(y.index_select(0, idx)))


# ------------------------------------------------------------------------------- cropping
def crop(x: torch.Tensor, offsets: torch.Tensor, length: int) -> torch.Tensor:
    """Row ``i`` of the result is ``x[i, offsets[i]: offsets[i] + length]``."""
    if x.shape[1] == length:
        return x
    windows = x.unfold(1, length, 1)  # a view: (B, T - length + 1, length)
    return windows[torch.arange(x.shape[0], device=x.device), offsets.to(x.device)]


def content_lengths(x: torch.Tensor, minimum: int) -> torch.Tensor:
    """(B,) samples up to each row's last non-zero one, at least ``minimum``: a file shorter
    than the excerpt read for it arrives zero-padded at the end, and its crops should be
    drawn from the audio, not from the padding (an all-zero row keeps its full length)."""
    nonzero = x != 0
    tail = nonzero.flip(1).to(torch.uint8).argmax(1)  # trailing zeros per row
    lengths = torch.where(nonzero.any(1), x.shape[1] - tail, x.shape[1])
    return lengths.clamp_min(minimum)


# ----------------------------------------------------------------------------- randomness
def _rng_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def rand(shape, generator, device, dtype=torch.float32) -> torch.Tensor:
    """Uniform(0, 1) numbers drawn on the generator's device, returned on ``device``."""
    return torch.rand(shape, generator=generator, device=_rng_device(generator, device),
                      dtype=dtype).to(device)


def randn(shape, generator, device, dtype=torch.float32) -> torch.Tensor:
    """Standard normal numbers drawn on the generator's device, returned on ``device``."""
    return torch.randn(shape, generator=generator, device=_rng_device(generator, device),
                       dtype=dtype).to(device)


def uniform(low: float, high: float, n: int, generator, device) -> torch.Tensor:
    return low + (high - low) * rand(n, generator, device)


def integers(low: int, high: int, u: torch.Tensor) -> torch.Tensor:
    """Uniform integers in [low, high] (both included) from uniform(0, 1) draws, as floats."""
    k = (u * (high - low + 1)).long().clamp_max(high - low)
    return (low + k).to(torch.float32)
