"""Polarity inversion."""
import torch

from vcmr.audio.augment import polarity_inversion


def test_polarity_inversion_negates():
    x = torch.randn(3, 500)
    assert torch.equal(polarity_inversion(x), -x)
