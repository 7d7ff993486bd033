"""The windowed-sinc FIR: julius's design, its convolution, its stop band, and the chain's use."""
import pytest
import torch

from augment_helpers import SR, chain, rms_db, sine
from vcmr.audio.augment import sinc_filter, sinc_lowpass_kernels


def test_sinc_kernel_is_julius_design_and_filter_is_its_convolution():
    cutoff = torch.tensor([[2200.0 / SR], [1000.0 / SR]], dtype=torch.float64)
    k = sinc_lowpass_kernels(cutoff)
    half = [int(8 / c / 2) for c in cutoff.flatten().tolist()]  # julius: int(zeros / c / 2)
    big = k.shape[1] // 2
    assert big == max(half) == 64
    for row, h, c in zip(k, half, cutoff.flatten().tolist()):
        t = torch.arange(-h, h + 1, dtype=torch.float64)
        window = torch.hann_window(2 * h + 1, periodic=False, dtype=torch.float64)
        expected = 2 * c * window * torch.sinc(2 * c * t)  # torch.sinc(u) = sin(pi u) / (pi u)
        assert torch.allclose(row[big - h: big + h + 1], expected, atol=1e-12)
        assert row[: big - h].abs().sum() == 0 and row[big + h + 1:].abs().sum() == 0
    x = torch.randn(2, 3000, dtype=torch.float64)
    y = sinc_filter(x, cutoff.flatten() * SR, SR, torch.tensor([True, False]))
    ref = torch.nn.functional.conv1d(x[None], k[:, None], padding=big, groups=2)[0]  # per row
    assert torch.allclose(y[0], ref[0], atol=1e-9)  # low-pass: zero-padded FIR convolution
    assert torch.allclose(y[1], x[1] - ref[1], atol=1e-9)  # high-pass: x - low-pass


@pytest.mark.parametrize("cutoff, lowpass", [(2200.0, True), (4000.0, True), (1000.0, False),
                                             (200.0, False)])
def test_sinc_filter_attenuates_one_octave_past_the_cutoff(cutoff, lowpass):
    probe, passband = (2 * cutoff, cutoff / 2) if lowpass else (cutoff / 2, 2 * cutoff)
    probe = min(probe, SR / 2 - 1)
    middle = slice(2000, -2000)  # away from the zero-padded edges
    stop, keep = sine(probe), sine(passband)
    fir = sinc_filter(torch.cat([stop, keep]), cutoff, SR, lowpass)[:, middle]
    ref_db = rms_db(stop[:, middle]).item()
    assert ref_db - rms_db(fir[:1]).item() >= 40  # the FIR's stop band (measured ~62-72 dB)
    assert abs(rms_db(fir[1:]).item() - rms_db(keep[:, middle]).item()) < 0.1  # flat pass band


def test_sinc_chain_filter_equals_the_function():
    x = torch.randn(4, 4000)
    ch = chain(filters=1.0)
    p = ch.sample(4, 4000, generator=torch.Generator().manual_seed(2))
    y = ch.apply(x, p)
    ref = sinc_filter(x, p.filter_cutoff_hz, SR, p.filter_lowpass)
    assert torch.allclose(y, ref, atol=1e-6)
