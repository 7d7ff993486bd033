"""White noise at a level relative to the clip's."""
import torch

from augment_helpers import chain, sine
from vcmr.audio.augment import add_white_noise


def test_white_noise_std_relative_to_the_signal():
    x = sine(440.0, batch=2) * torch.tensor([[0.3], [0.05]])
    y = add_white_noise(x, torch.tensor([0.01, 0.0001]),
                        generator=torch.Generator().manual_seed(1))
    ratio = (y - x).std(1) / x.std(1)
    assert torch.allclose(ratio, torch.tensor([0.01, 0.0001]), rtol=0.03)
    spectrum = torch.fft.rfft(y[0] - x[0]).abs() ** 2  # white: flat on average
    bands = spectrum[1:].reshape(8, -1).mean(-1)
    assert bands.max() / bands.min() < 1.5
    r = chain(noise=1.0).sample(512, 4000, generator=torch.Generator().manual_seed(0)).noise_std_ratio
    assert 0.0001 <= r.min() < 0.0012 and 0.0089 < r.max() <= 0.01
