"""Signals and measurements shared by the augmentation tests (tests/audio/augment/)."""
import math

import torch

from vcmr.audio.augment import AugmentChain

SR = 16000


def sine(freq, seconds=1.0, sr=SR, batch=1):
    t = torch.arange(int(seconds * sr)) / sr
    return torch.sin(2 * math.pi * freq * t).repeat(batch, 1)


def dominant_hz(x, sr=SR):
    spec = torch.fft.rfft(x * torch.hann_window(x.shape[-1]), dim=-1).abs()
    return spec.argmax(-1).float() * sr / x.shape[-1]


def rms_db(x):
    return 10 * torch.log10(x.pow(2).mean(-1))


def chain(length=4000, **probs):
    """A chain with every effect off except those given."""
    p = {e: 0.0 for e in AugmentChain.EFFECTS}
    p.update(probs)
    return AugmentChain(SR, length, **p)
