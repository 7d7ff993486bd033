"""The reference's halved echo and the chain's delay draws."""
import pytest
import torch

from augment_helpers import SR, chain
from vcmr.audio.augment import apply_delay


def test_delay_is_the_reference_halved_echo():
    x = torch.zeros(2, 8000)
    x[:, 100] = 1.0
    y = apply_delay(x, torch.tensor([3200, 4800]))  # 200 ms and 300 ms
    # (x + 0.5 x[n - d]) / 2: the direct sound at 0.5, the echo at 0.25
    assert y[0, 100] == pytest.approx(0.5) and y[0, 3300] == pytest.approx(0.25)
    assert y[1, 4900] == pytest.approx(0.25) and (y != 0).sum() == 4
    noise = torch.randn(1, 16000)
    echo = apply_delay(noise, 4000)
    ac = torch.fft.irfft(torch.fft.rfft(echo, n=32000).abs() ** 2)[0, 1:8000]
    assert ac.argmax().item() + 1 == 4000
    params = chain(delay=1.0).sample(256, 4000, generator=torch.Generator().manual_seed(0))
    assert sorted(set((params.delay_samples * 1000 // SR).tolist())) == [200, 250, 300, 350, 400, 450]
