"""Tempo-preserving pitch shift by a two-head delay line (the chain's pitch effect)."""
from __future__ import annotations

import math

import torch

from vcmr.audio.augment.common import per_item

PITCH_CENTS = (-700, 700)  # integers, both ends included (random.randint)
PITCH_GRAIN = 1600  # 100 ms at 16 kHz


def pitch_shift(x: torch.Tensor, semitones, grain: int = PITCH_GRAIN) -> torch.Tensor:
    """Tempo-preserving pitch shift by a per-item number of semitones (scalar or (B,);
    fractional values are fine: the chain passes the reference's cents / 100).

    Two read heads sweep through the clip at r = 2^(semitones/12) times real time, each
    jumping back by ``grain`` samples when it drifts too far, and cross-fade (sin^2 / cos^2)
    so that the jump is silent; every frequency is scaled by r while the duration stays the
    same (heads are centred on the current time, so there is no latency and 0 semitones is
    the identity). Fully vectorised, four gathers per sample. Like every time-domain shifter
    (sox's ``pitch`` in the reference uses WSOLA) it adds a slight warble at the grain rate.
    """
    ratio = 2.0 ** (per_item(semitones, x) / 12.0)  # (B, 1)
    n = torch.arange(x.shape[1], device=x.device, dtype=x.dtype)
    lag = torch.remainder((1.0 - ratio) * n, grain)  # tap 1: lag sweeps 0..grain, slope 1 - r
    out = torch.zeros_like(x)
    last = x.shape[1] - 1
    for tap_lag in (lag, torch.remainder(lag + grain / 2, grain)):
        weight = torch.sin(math.pi * tap_lag / grain) ** 2  # 0 where the lag jumps
        pos = (n + grain / 2 - tap_lag).abs()  # centred: no latency; r = 1 is the identity
        pos = torch.where(pos > last, 2 * last - pos, pos)  # reflect at both ends
        out = out + weight * _read_at(x, pos)
    return out


def _read_at(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """x sampled at fractional positions ``pos`` (B, T) by linear interpolation."""
    left = pos.floor().clamp_max(x.shape[1] - 2)  # the last sample: left + 1 at weight 1
    frac = pos - left
    left = left.long()
    return torch.lerp(x.gather(1, left), x.gather(1, left + 1), frac)
