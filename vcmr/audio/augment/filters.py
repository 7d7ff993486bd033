"""Low-pass and high-pass filters: julius's windowed-sinc FIR, per item, applied by FFT."""
from __future__ import annotations

import math

import torch

from vcmr.audio.augment.common import AugmentError, fast_len, per_item

LOWPASS_HZ = (2200.0, 4000.0)
HIGHPASS_HZ = (200.0, 1200.0)
SINC_ZEROS = 8  # julius's default number of zero crossings of the windowed sinc


def sinc_lowpass_kernels(cutoff: torch.Tensor, zeros: float = SINC_ZEROS) -> torch.Tensor:
    """julius's windowed-sinc low-pass FIR for each (B, 1) cutoff (a fraction of the sample
    rate), as (B, 2H + 1) kernels centred on column H (H: the largest half size).

    Design (julius.lowpass): half size h = int(zeros / cutoff / 2), taps
    2 c w(t) sinc(2 pi c t) for |t| <= h with a symmetric Hann window w of 2h + 1 points;
    not renormalised. Shorter kernels are zero outside their own half size.
    """
    half = torch.floor(zeros / cutoff.double() / 2)  # (B, 1), as Python's int() truncates
    big = int(half.max())
    t = torch.arange(-big, big + 1, device=cutoff.device, dtype=torch.float64)
    window = 0.5 + 0.5 * torch.cos(math.pi * t / half)  # hann_window(2h + 1, periodic=False)
    arg = 2 * math.pi * cutoff.double() * t
    sinc = torch.where(t == 0, 1.0, torch.sin(arg) / torch.where(t == 0, 1.0, arg))
    kernel = 2 * cutoff.double() * window * sinc
    return torch.where(t.abs() <= half, kernel, 0.0)


def sinc_filter(x: torch.Tensor, cutoff_hz, sample_rate: int, lowpass=True,
                zeros: float = SINC_ZEROS) -> torch.Tensor:
    """julius's FIR low-pass (``lowpass`` True) or high-pass (x - low-pass) per item, output
    as long as the input (zero padding at both ends, as julius pads), applied by FFT.

    The Hann-windowed sinc with 8 zero crossings has a transition band about
    cutoff / 2 wide and a stop band near -44 dB.
    """
    n = x.shape[1]
    cutoff = per_item(cutoff_hz, x) / sample_rate
    if (cutoff <= 0).any() or (cutoff > 0.5).any():
        raise AugmentError(f"sinc_filter cutoffs must be in (0, {sample_rate / 2}] Hz "
                           f"(0 < cutoff <= Nyquist)")
    kernels = sinc_lowpass_kernels(cutoff, zeros).to(x.dtype)
    big = kernels.shape[1] // 2
    n_fft = fast_len(n + 2 * big)
    circular = torch.zeros(x.shape[0], n_fft, device=x.device, dtype=x.dtype)
    circular[:, : big + 1] = kernels[:, big:]  # taps t >= 0 at the start, t < 0 at the end
    if big:
        circular[:, -big:] = kernels[:, :big]
    spectrum = torch.fft.rfft(x, n=n_fft) * torch.fft.rfft(circular)
    low = torch.fft.irfft(spectrum, n=n_fft)[:, :n]
    return torch.where(per_item(lowpass, x, dtype=torch.bool), low, x - low)
