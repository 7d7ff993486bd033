"""Cropping: crops are drawn from the audio, not from the zero padding of short files."""
import torch

from augment_helpers import SR, chain
from vcmr.audio.augment import content_lengths


def test_crops_avoid_the_zero_padding_of_short_files():
    x = torch.zeros(32, 15 * SR)
    x[:, : SR] = torch.randn(32, SR)  # a 1 s file read into a 15 s excerpt
    x[0] = torch.randn(15 * SR)  # a full-length one
    assert content_lengths(x, 4000).tolist() == [15 * SR] + [SR] * 31
    p = chain().sample(32, content_lengths(x, 4000), generator=torch.Generator().manual_seed(0))
    assert (p.offset[1:] <= SR - 4000).all() and p.offset[1:].unique().numel() > 10
    y = chain()(x)
    assert (y[1:].abs().amax(1) > 0).all()  # no crop is silence
    assert content_lengths(torch.zeros(2, 5000), 4000).tolist() == [5000, 5000]
