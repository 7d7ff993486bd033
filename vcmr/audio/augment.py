"""The authors' waveform augmentation chain (CLMR / torchaudio-augmentations 0.2.4, which
VCMR's unpinned requirement installed in 2022), batched in torch on the input's device.

    chain = AugmentChain.from_config(load_config("mus"))
    view_a = chain(batch)                 # batch: (B, T_src >= audio_length), any device
    view_b = chain(batch)                 # an independent second view (its own crop too)
    same = chain(batch, generator=torch.Generator().manual_seed(0))   # reproducible

The chain, in the reference's order, each effect applied to an item with its probability:

==========  ==========================================================================
crop        random excerpt of ``audio_length`` samples (independent offset per item and
            per call, so the two views are placed independently in the item; trailing
            zero padding of files shorter than the excerpt read is not cropped from)
polarity    multiply by -1
noise       add white Gaussian noise whose std is U(0.0001, 0.01) x the clip's std
gain        U(-20, -1) dB
filters     50/50 low-pass U(2.2, 4) kHz or high-pass U(200, 1200) Hz; ``filter_design``
            "sinc": julius's windowed-sinc FIR (8 zero crossings, Hann window; high-pass =
            x - low-pass), about 44 dB down an octave past the cutoff; "biquad": an RBJ
            biquad (Q = 0.707, 12 dB/octave), the previous vcmr default
delay       (x + 0.5 x[n - d]) / 2, d uniform in {200, 250, ..., 450} ms
pitch       ``pitch_unit`` "cents": an integer number of cents uniform in [-700, 700] (0
            and sub-semitone shifts included, as sox ``pitch`` in the reference);
            "semitones": +-1..7 whole semitones, 0 excluded (the previous default). Tempo
            kept, by a two-head delay-line shifter with 100 ms cross-faded grains (sox uses
            WSOLA; ``pitch_method="phase_vocoder"`` is the cleaner, slower alternative)
reverb      ``reverb_model`` "sox": sox ``reverb`` (its Freeverb network: 8 damped combs
            and 4 all-passes per channel, two channels from stereo-depth 100 mixed back to
            mono) with reverberance, HF damping and room scale each an integer uniform in
            [0, 99], wet gain 0 dB, pre-delay 0, dry kept; the network is linear and time
            invariant, so it is applied as its frequency response by FFT, per item, in one
            batched pass; "noise_tail": the previous default, convolution with the direct
            path plus a decaying white-noise tail (RT60 0.2-1.0 s, wet -12 to -3 dB)
==========  ==========================================================================

Every random number (offsets, masks, parameters, noise) is drawn for the whole batch before
any audio is processed, so the output depends only on the generator's state, never on
``chunk_size``. Effects are vectorised over the items that draw them: per-item parameters are
tensors, and each effect runs once on the selected rows. On CPU the batch is processed
``chunk_size`` items at a time, which keeps the working set of the FFT stages in cache (see
benchmarks/README.md); on other devices the whole batch goes at once.

Each effect is also a public function (``sinc_filter``, ``delay``, ``pitch_shift``,
``sox_reverb``, ...) taking a (B, T) tensor and per-item parameters, so it can be checked on
known signals (tests/audio/test_augment.py).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields

import torch

from vcmr.errors import VcmrError

__all__ = [
    "AugmentChain", "AugmentParams", "AugmentError", "crop", "content_lengths",
    "polarity_inversion", "add_white_noise", "apply_gain", "sinc_filter", "sinc_lowpass_kernels",
    "biquad_filter", "delay", "pitch_shift", "sox_reverb", "sox_reverb_response",
    "sox_reverb_tail", "noise_tail_reverb", "synthetic_impulse_response", "time_stretch",
    "fft_resample", "DEFAULT_CPU_CHUNK_SIZE", "FILTER_DESIGNS", "PITCH_UNITS", "REVERB_MODELS",
]

# Measured by benchmarks/bench_augment.py on the 2-core development machine (see README).
DEFAULT_CPU_CHUNK_SIZE = 16

FILTER_DESIGNS = ("sinc", "biquad")
PITCH_UNITS = ("cents", "semitones")
REVERB_MODELS = ("sox", "noise_tail")

NOISE_STD_RATIO = (0.0001, 0.01)  # noise std relative to the clip's std
GAIN_DB = (-20.0, -1.0)
LOWPASS_HZ = (2200.0, 4000.0)
HIGHPASS_HZ = (200.0, 1200.0)
SINC_ZEROS = 8  # julius's default number of zero crossings of the windowed sinc
DELAY_MS = tuple(range(200, 451, 50))  # numpy.arange(200, 500, 50) in the reference
DELAY_VOLUME = 0.5
PITCH_CENTS = (-700, 700)  # integers, both ends included (random.randint)
PITCH_SEMITONES = (-7, 7)  # integers, 0 excluded
REVERB_PERCENT = (0, 99)  # torch.randint(0, 100): integers 0..99
REVERB_RT60_S = (0.2, 1.0)
REVERB_WET_DB = (-12.0, -3.0)
PITCH_N_FFT, PITCH_HOP = 1024, 256
PITCH_GRAIN = 1600  # 100 ms at 16 kHz

# sox reverb.c (Freeverb): delay lengths at 44.1 kHz, the stereo spread, the feedback range.
SOX_COMB_LENGTHS = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
SOX_ALLPASS_LENGTHS = (225, 341, 441, 556)
SOX_STEREO_ADJUST = 12
SOX_TAIL_DB = 60.0  # sox_reverb_tail: samples until the response decayed by this much
SOX_ALIAS_FLOOR = 1e-5  # sox_reverb: how much the exponential window shrinks the wrapped tail
SOX_BLOCK_FLOATS = 1 << 18  # sox_reverb on CPU: buffer size (floats) of its per-item blocks


class AugmentError(VcmrError, ValueError):
    """Wrong input to the augmentation chain (shape, length, probability)."""


def _per_item(value, x: torch.Tensor, dtype=None) -> torch.Tensor:
    """A scalar or (B,) parameter as a (B, 1) tensor on ``x``'s device."""
    t = torch.as_tensor(value, device=x.device, dtype=dtype or x.dtype)
    if t.dim() == 0:
        t = t.expand(x.shape[0])
    return t.reshape(-1, 1)


def _fast_len(n: int) -> int:
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


def _reverb_fft_len(n: int) -> int:
    """Smallest 2^a x (1, 3, 5, 9 or 15) >= 5n/4: a power of two times a small odd factor,
    which MKL and pocketfft transform fastest, also for a single row (where a size such as
    2 x 3^9 x 5 = 196830 costs about 3x as much as 3 x 2^16 = 196608)."""
    need = -(-5 * n // 4)
    best = None
    for odd in (1, 3, 5, 9, 15):
        size = odd
        while size < need:
            size *= 2
        best = size if best is None else min(best, size)
    return best


# ------------------------------------------------------------------------------- effects
def crop(x: torch.Tensor, offsets: torch.Tensor, length: int) -> torch.Tensor:
    """Row ``i`` of the result is ``x[i, offsets[i]: offsets[i] + length]``."""
    if x.shape[1] == length:
        return x
    windows = x.unfold(1, length, 1)  # a view: (B, T - length + 1, length)
    return windows[torch.arange(x.shape[0], device=x.device), offsets.to(x.device)]


def polarity_inversion(x: torch.Tensor) -> torch.Tensor:
    return -x


def add_white_noise(x: torch.Tensor, relative_std, noise: torch.Tensor | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Add Gaussian noise whose std is ``relative_std`` times each clip's std (the
    reference's ``Noise``: noise std drawn uniformly between 0.0001 and 0.01 x signal std).

    ``noise`` (same shape as ``x``, unit variance) may be given; otherwise it is drawn.
    """
    if noise is None:
        noise = _randn(x.shape, generator, x.device, x.dtype)
    std = x.std(dim=1, keepdim=True)
    return x + noise * std * _per_item(relative_std, x)


def apply_gain(x: torch.Tensor, gain_db) -> torch.Tensor:
    return x * 10.0 ** (_per_item(gain_db, x) / 20.0)


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
    cutoff / 2 wide and a stop band near -44 dB, far steeper than a biquad's 12 dB/octave.
    """
    n = x.shape[1]
    cutoff = _per_item(cutoff_hz, x) / sample_rate
    if (cutoff <= 0).any() or (cutoff > 0.5).any():
        raise AugmentError(f"sinc_filter cutoffs must be in (0, {sample_rate / 2}] Hz "
                           f"(0 < cutoff <= Nyquist)")
    kernels = sinc_lowpass_kernels(cutoff, zeros).to(x.dtype)
    big = kernels.shape[1] // 2
    n_fft = _fast_len(n + 2 * big)
    circular = torch.zeros(x.shape[0], n_fft, device=x.device, dtype=x.dtype)
    circular[:, : big + 1] = kernels[:, big:]  # taps t >= 0 at the start, t < 0 at the end
    if big:
        circular[:, -big:] = kernels[:, :big]
    spectrum = torch.fft.rfft(x, n=n_fft) * torch.fft.rfft(circular)
    low = torch.fft.irfft(spectrum, n=n_fft)[:, :n]
    return torch.where(_per_item(lowpass, x, dtype=torch.bool), low, x - low)


def _biquad_coefficients(cutoff: torch.Tensor, sample_rate: int, lowpass: torch.Tensor, q: float):
    """RBJ audio-EQ-cookbook low/high-pass biquads; each tensor is (B, 1), a0-normalised."""
    w0 = 2 * math.pi * cutoff / sample_rate
    cos, alpha = torch.cos(w0), torch.sin(w0) / (2 * q)
    b0 = torch.where(lowpass, (1 - cos) / 2, (1 + cos) / 2)
    b1 = torch.where(lowpass, 1 - cos, -(1 + cos))
    a0 = 1 + alpha
    return b0 / a0, b1 / a0, b0 / a0, -2 * cos / a0, (1 - alpha) / a0


def biquad_filter(x: torch.Tensor, cutoff_hz, sample_rate: int, lowpass=True,
                  q: float = 0.7071, tail: int = 4096) -> torch.Tensor:
    """Causal second-order low-pass (``lowpass`` True) or high-pass filter, per item.

    Multiplies the spectrum by the biquad's frequency response; ``tail`` samples of zero
    padding hold the impulse response's decay (below -100 dB after 4096 samples for cutoffs
    >= 100 Hz at 16 kHz), so the result equals running the IIR filter on the excerpt.
    """
    n = x.shape[1]
    n_fft = _fast_len(n + tail)
    cutoff = _per_item(cutoff_hz, x)
    lowpass = _per_item(lowpass, x, dtype=torch.bool)
    b0, b1, b2, a1, a2 = _biquad_coefficients(cutoff, sample_rate, lowpass, q)
    z1 = torch.exp(-1j * torch.linspace(0, math.pi, n_fft // 2 + 1, device=x.device,
                                        dtype=x.dtype))  # e^{-j w}, w = 2 pi k / n_fft
    z2 = z1 * z1
    response = (b0 + b1 * z1 + b2 * z2) / (1 + a1 * z1 + a2 * z2)
    spectrum = torch.fft.rfft(x, n=n_fft) * response
    return torch.fft.irfft(spectrum, n=n_fft)[:, :n]


def delay(x: torch.Tensor, delay_samples, volume: float = DELAY_VOLUME) -> torch.Tensor:
    """The reference's echo: ``y[n] = (x[n] + volume * x[n - d]) / 2`` with a per-item lag
    ``d`` in samples (the halving keeps the level below the input's; it is part of the
    augmentation the published models saw)."""
    d = _per_item(delay_samples, x, dtype=torch.long)
    idx = torch.arange(x.shape[1], device=x.device).expand_as(x) - d
    echo = x.gather(1, idx.clamp_min(0)) * (idx >= 0)
    return (x + volume * echo) / 2


def pitch_shift(x: torch.Tensor, semitones, method: str = "delay_line",
                grain: int = PITCH_GRAIN) -> torch.Tensor:
    """Tempo-preserving pitch shift by a per-item number of semitones (scalar or (B,);
    fractional values are fine: the chain passes the reference's cents / 100).

    ``method="delay_line"`` (default, fast, fully vectorised): two read heads sweep through
    the clip at r = 2^(semitones/12) times real time, each jumping back by ``grain`` samples
    when it drifts too far, and cross-fade (sin^2 / cos^2) so that the jump is silent; every
    frequency is scaled by r while the duration stays the same (heads are centred on the
    current time, so there is no latency and 0 semitones is the identity). Four gathers per
    sample. Like every time-domain shifter it adds a slight warble at the grain rate.
    ``method="phase_vocoder"``: phase-vocoder time stretch with identity phase locking, then
    band-limited FFT resampling (cleaner, about ten times slower on CPU).
    """
    if method == "phase_vocoder":
        return _pitch_shift_vocoder(x, semitones)
    if method != "delay_line":
        raise AugmentError(f"pitch_shift method {method!r} is unknown; use 'delay_line' or "
                           f"'phase_vocoder'")
    ratio = 2.0 ** (_per_item(semitones, x) / 12.0)  # (B, 1)
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


def _pitch_shift_vocoder(x: torch.Tensor, semitones, n_fft: int = PITCH_N_FFT,
                         hop: int = PITCH_HOP) -> torch.Tensor:
    """Phase-vocoder pitch shift (as librosa does it): stretch the clip in time by r with a
    phase vocoder, then resample it back to the original length by FFT. Items that share a
    shift are processed together (one pass per distinct value)."""
    steps = _per_item(semitones, x).reshape(-1)
    out = x.clone()
    for value in torch.unique(steps).tolist():
        if value == 0:
            continue
        idx = (steps == value).nonzero().squeeze(1)
        ratio = 2.0 ** (value / 12.0)
        stretched = time_stretch(x.index_select(0, idx), ratio, n_fft, hop)
        out.index_copy_(0, idx, fft_resample(stretched, x.shape[1]))
    return out


def time_stretch(x: torch.Tensor, factor: float, n_fft: int = PITCH_N_FFT,
                 hop: int = PITCH_HOP) -> torch.Tensor:
    """Phase-vocoder time stretch: (B, T) -> (B, round(T * factor)), pitch unchanged."""
    n_out = int(round(x.shape[1] * factor))
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop, window=window, return_complex=True)
    spec = torch.nn.functional.pad(spec.transpose(1, 2), (0, 0, 0, 2))  # (B, frames + 2, K)
    n_frames = spec.shape[1] - 2
    # Output frame j reads the (fractional) input frame j / factor; past the end reads zeros.
    pos = torch.arange(0, n_frames, 1.0 / factor, device=x.device, dtype=x.dtype)
    left = pos.floor().long()
    frac = (pos - left).unsqueeze(-1)
    magnitude, angle = spec.abs(), spec.angle()  # once per input frame, then gathered
    expected = (2 * math.pi * hop / n_fft) * torch.arange(
        spec.shape[2], device=x.device, dtype=x.dtype)
    advance = torch.diff(angle, dim=1) - expected  # (B, frames + 1, K): frame f -> f + 1
    advance = advance - 2 * math.pi * torch.round(advance / (2 * math.pi)) + expected
    mag = torch.lerp(magnitude[:, left], magnitude[:, left + 1], frac)  # (B, J, K)
    angle0 = angle[:, left]
    phase = torch.cat([angle[:, :1], advance[:, left[:-1]]], dim=1).cumsum(1)
    phase = _lock_to_peaks(phase, mag, angle0)
    out = torch.polar(mag, phase).transpose(1, 2)
    return torch.istft(out, n_fft, hop, window=window, length=n_out)


def _lock_to_peaks(phase: torch.Tensor, mag: torch.Tensor, analysis: torch.Tensor) -> torch.Tensor:
    """Identity phase locking (Laroche & Dolson 1999), vectorised over (B, frames, bins).

    Every bin takes the accumulated phase of the nearest spectral peak plus its analysed
    phase offset from that peak, so the bins of one partial stay coherent. Without it, errors
    in the instantaneous frequency of weak bins (onsets, clip edges) accumulate and the
    partials smear ("phasiness"), losing up to half their amplitude on a plain sine.
    """
    n_bins = mag.shape[-1]
    k = torch.arange(n_bins, device=mag.device, dtype=torch.int32).expand_as(mag)
    pad = torch.nn.functional.pad(mag, (1, 1), value=-1.0)
    is_peak = (mag > pad[..., :-2]) & (mag >= pad[..., 2:])
    before = torch.where(is_peak, k, -n_bins).cummax(dim=-1).values
    after = torch.where(is_peak, k, 2 * n_bins).flip(-1).cummin(dim=-1).values.flip(-1)
    peak = torch.where(after - k < k - before, after, before).clamp(0, n_bins - 1).long()
    return phase.gather(-1, peak) + analysis - analysis.gather(-1, peak)


def fft_resample(x: torch.Tensor, length: int) -> torch.Tensor:
    """Band-limited resampling of (B, T) to (B, length) by truncating or zero-padding the
    spectrum (frequencies scale by T / length; content above the new Nyquist is dropped)."""
    n_in = x.shape[1]
    spec = torch.fft.rfft(x)
    n_bins = length // 2 + 1
    if spec.shape[1] >= n_bins:
        spec = spec[:, :n_bins]
    else:
        spec = torch.nn.functional.pad(spec, (0, n_bins - spec.shape[1]))
    return torch.fft.irfft(spec, n=length) * (length / n_in)


def synthetic_impulse_response(rt60_s, wet_db, sample_rate: int, length: int,
                               noise: torch.Tensor | None = None,
                               generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, length) impulse responses: a unit direct path plus a decaying white-noise tail.

    The tail decays by 60 dB after ``rt60_s`` seconds and has ``wet_db`` of the direct
    path's energy. ``noise`` (B, length - 1), unit variance, may be given; else it is drawn.
    """
    rt60 = torch.as_tensor(rt60_s, dtype=torch.float32).reshape(-1, 1)
    if noise is None:
        noise = _randn((rt60.shape[0], length - 1), generator, rt60.device, torch.float32)
    rt60 = rt60.to(noise)
    t = torch.arange(1, length, device=noise.device, dtype=noise.dtype) / sample_rate
    tail = noise * torch.exp(-math.log(1000.0) * t / rt60)  # 1000 = 60 dB in amplitude
    tail = tail / tail.pow(2).sum(1, keepdim=True).sqrt().clamp_min(1e-12)
    tail = tail * 10.0 ** (torch.as_tensor(wet_db).to(noise).reshape(-1, 1) / 20.0)
    return torch.cat([torch.ones_like(tail[:, :1]), tail], dim=1)


def noise_tail_reverb(x: torch.Tensor, rt60_s, wet_db, sample_rate: int,
                      ir_noise: torch.Tensor | None = None,
                      generator: torch.Generator | None = None,
                      ir_length: int | None = None) -> torch.Tensor:
    """Convolve each item with its synthetic impulse response (batched FFT, causal, same
    length): the previous vcmr reverb, kept as ``reverb_model: noise_tail``."""
    n = x.shape[1]
    if ir_length is None:
        ir_length = ir_noise.shape[1] + 1 if ir_noise is not None else \
            int(REVERB_RT60_S[1] * sample_rate)
    rt60 = _per_item(rt60_s, x).reshape(-1)
    ir = synthetic_impulse_response(rt60, _per_item(wet_db, x).reshape(-1), sample_rate,
                                    ir_length, noise=ir_noise, generator=generator).to(x)
    n_fft = _fast_len(n + ir_length - 1)
    y = torch.fft.irfft(torch.fft.rfft(x, n=n_fft) * torch.fft.rfft(ir, n=n_fft), n=n_fft)
    return y[:, :n]


def _sox_reverb_settings(reverberance, hf_damping, room_scale, sample_rate, stereo_depth):
    """sox reverb.c's derived constants, per item: comb feedback, damping, the delay lengths
    (B, 8) and (B, 4) of each output channel (the second one offset by the stereo spread,
    alternating in sign from filter to filter)."""
    a = -1.0 / math.log(1 - 0.3)  # feedback 0.3 at reverberance 0 ...
    b = 100.0 / (math.log(1 - 0.98) * a + 1)  # ... and 0.98 at 100
    feedback = 1 - torch.exp((reverberance - b) / (a * b))
    damping = hf_damping / 100 * 0.3 + 0.2
    scale = room_scale / 100 * 0.9 + 0.1
    r = sample_rate / 44100.0
    depth = stereo_depth / 100
    channels = []
    for offset in ([0.0, depth] if depth > 0 else [0.0]):
        signs = torch.tensor([(-1.0) ** i for i in range(12)], dtype=torch.float64,
                             device=scale.device) * offset * SOX_STEREO_ADJUST
        combs = torch.tensor(SOX_COMB_LENGTHS, dtype=torch.float64, device=scale.device)
        allpasses = torch.tensor(SOX_ALLPASS_LENGTHS, dtype=torch.float64, device=scale.device)
        comb_n = torch.floor(scale * r * (combs + signs[:8]) + 0.5)  # (B, 8)
        allpass_n = torch.floor(r * (allpasses + signs[8:]) + 0.5).expand(scale.shape[0], -1)
        channels.append((comb_n, allpass_n))
    return feedback, damping, channels


def _grid(n_fft: int) -> tuple[int, int]:
    """The response grid's K = n_fft // 2 + 1 points as Q rows of M (Q * M >= K, M a power of
    two near sqrt(K)): z^N on it is an outer product of Q coarse and M fine rotations."""
    k = n_fft // 2 + 1
    m = 1 << max(0, math.ceil(math.log2(math.sqrt(k))))
    return -(-k // m), m


def _rotations(n: torch.Tensor, n_fft: int, radius: float, grid: tuple[int, int], dtype):
    """The factors of z^N = r^-N e^{j 2 pi k N / n_fft} on the grid, for every item and comb
    (n: (B, C) integer delays): coarse (B, C, Q, 1) and fine (B, C, 1, M) rotations, real
    and imaginary parts, so that z^N at k = q M + p is coarse[q] x fine[p]. The angles are
    reduced exactly (integer k N mod n_fft) and evaluated in float64 at Q + M points only,
    once per batch; filling the grid then takes four multiply passes (``_powers_of_z``),
    where cos and sin at every point would cost more and, with angles up to ~2000 rad in
    float32, lose about 1e-4 rad."""
    (q_n, m_n), ni = grid, n.long().unsqueeze(2)  # (B, C, 1)
    step = 2 * math.pi / n_fft
    coarse = ((torch.arange(q_n, device=n.device) * m_n * ni) % n_fft).double() * step
    fine = ((torch.arange(m_n, device=n.device) * ni) % n_fft).double() * step
    rho = radius ** -n.double().unsqueeze(2)
    return ((torch.cos(coarse) * rho).to(dtype).unsqueeze(3),
            (torch.sin(coarse) * rho).to(dtype).unsqueeze(3),
            torch.cos(fine).to(dtype).unsqueeze(2), torch.sin(fine).to(dtype).unsqueeze(2))


def _powers_of_z(rotations, out_re: torch.Tensor, out_im: torch.Tensor) -> None:
    """z^N on the grid from one comb's (coarse, fine) rotations of a block of items, written
    into ``out_re`` / ``out_im`` (B, Q * M)."""
    a_re, a_im, b_re, b_im = rotations
    rows, q_n, m_n = out_re.shape[0], a_re.shape[1], b_re.shape[2]
    re, im = out_re.view(rows, q_n, m_n), out_im.view(rows, q_n, m_n)
    torch.mul(a_re, b_re, out=re).addcmul_(a_im, b_im, value=-1.0)
    torch.mul(a_re, b_im, out=im).addcmul_(a_im, b_re)


def _comb_bank(rotations, l_re, l_im, g, buffers):
    """Sum over the combs of 1 / (L z^N - g) (each comb is z^-N L / (L - g z^-N)), in real
    arithmetic into preallocated (B, Q * M) buffers: returns (re, im). ``rotations``: the
    block's ``_rotations``. About fourteen in-place passes per comb, the costliest part of
    the reverb."""
    c, s, den_re, den_im, inv, acc_re, acc_im = buffers
    minus_g = -g
    for i in range(rotations[0].shape[1]):
        _powers_of_z([r[:, i] for r in rotations], c, s)
        torch.addcmul(minus_g, l_re, c, out=den_re).addcmul_(l_im, s, value=-1.0)
        torch.mul(l_re, s, out=den_im).addcmul_(l_im, c)
        torch.mul(den_re, den_re, out=inv).addcmul_(den_im, den_im).reciprocal_()
        if i == 0:
            torch.mul(den_re, inv, out=acc_re)
            torch.mul(den_im, inv, out=acc_im).neg_()
        else:
            acc_re.addcmul_(den_re, inv)
            acc_im.addcmul_(den_im, inv, value=-1.0)
    return acc_re, acc_im


@functools.lru_cache(maxsize=8)
def _allpass_responses(n_fft: int, radius: float, sample_rate: int, stereo_depth: float,
                       gain: float) -> tuple[torch.Tensor, ...]:
    """Per output channel, the (1, K) product of its 4 all-passes (1.5 z^-N - 1) /
    (1 - 0.5 z^-N) times ``gain``, in complex128 on the CPU: the same for every item and
    every call with the same grid, so it is computed once (read-only; callers copy)."""
    zero = torch.zeros(1, 1, dtype=torch.float64)
    _, _, channels = _sox_reverb_settings(zero, zero, zero, sample_rate, stereo_depth)
    k = torch.arange(n_fft // 2 + 1)
    responses = []
    for _, allpass_n in channels:
        out = torch.full((1, k.shape[0]), gain, dtype=torch.complex128)
        for n in allpass_n[0].tolist():
            angle = ((k * int(n)) % n_fft).double() * (2 * math.pi / n_fft)
            zn = torch.polar(torch.full_like(angle, radius ** -n), angle)  # z^N
            out *= (1.5 - zn) / (zn - 0.5)
        responses.append(out)
    return tuple(responses)


def _sox_wet_response(reverberance, hf_damping, room_scale, sample_rate, n_fft, stereo_depth,
                      wet_gain_db, radius, dtype, device, mix) -> torch.Tensor:
    """The wet path's response per channel (C, B, K), or the channels' mean (1, B, K) with
    ``mix``. On CPU the items go a few at a time, so that the comb bank's buffers (about
    1 MiB each) stay in cache; elsewhere all at once."""
    rev, damp, room = (torch.as_tensor(v, dtype=torch.float64, device=device).reshape(-1, 1)
                       for v in (reverberance, hf_damping, room_scale))
    feedback, d, channels = _sox_reverb_settings(rev, damp, room, sample_rate, stereo_depth)
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    grid = _grid(n_fft)
    k, cols, batch = n_fft // 2 + 1, grid[0] * grid[1], rev.shape[0]
    w = torch.arange(cols, dtype=torch.float64, device=device) * (2 * math.pi / n_fft)
    cos_w, sin_w = (torch.cos(w) * radius).to(real), (torch.sin(w) * radius).to(real)
    d, feedback = d.to(real), feedback.to(real)
    rotations = [_rotations(comb_n, n_fft, radius, grid, real) for comb_n, _ in channels]
    gain = 10 ** (wet_gain_db / 20) * 0.015
    share = 1.0 / len(channels) if mix else 1.0  # the channels' mean
    allpasses = []  # (2, 1, cols): real and imaginary parts, zero past the K grid points
    for response in _allpass_responses(n_fft, float(radius), int(sample_rate),
                                       float(stereo_depth), gain * share):
        parts = torch.zeros(2, 1, cols, dtype=real, device=device)
        parts[:, :, :k] = torch.view_as_real(response).permute(2, 0, 1).to(device, real)
        allpasses.append(parts)
    rows = batch if device.type != "cpu" else max(1, min(batch, SOX_BLOCK_FLOATS // cols))
    buffers = [torch.empty(rows, cols, dtype=real, device=device) for _ in range(9)]
    out = torch.empty(1 if mix else len(channels), batch, k, dtype=dtype, device=device)
    for start in range(0, batch, rows):
        part = slice(start, min(start + rows, batch))
        bufs = [b[: part.stop - start] for b in buffers]
        mix_re, mix_im = bufs[7:]
        # L = 1 - d z^-1 with z^-1 = r e^{-jw}: the combs' shared one-pole numerator
        l_re, l_im = (d[part] * cos_w).neg_().add_(1.0), d[part] * sin_w
        g = feedback[part] * (1 - d[part])
        for c, (rot, (a_re, a_im)) in enumerate(zip(rotations, allpasses)):
            acc_re, acc_im = _comb_bank([r[part] for r in rot], l_re, l_im, g, bufs[:7])
            if c == 0 or not mix:  # mix = acc x all-passes (summed over channels)
                torch.mul(acc_re, a_re, out=mix_re)
                torch.mul(acc_re, a_im, out=mix_im)
            else:
                mix_re.addcmul_(acc_re, a_re)
                mix_im.addcmul_(acc_re, a_im)
            mix_re.addcmul_(acc_im, a_im, value=-1.0)
            mix_im.addcmul_(acc_im, a_re)
            if not mix or c == len(channels) - 1:  # out = mix x L
                o = torch.view_as_real(out[0 if mix else c, part])
                torch.mul(mix_re[:, :k], l_re[:, :k], out=o[..., 0])
                o[..., 0].addcmul_(mix_im[:, :k], l_im[:, :k], value=-1.0)
                torch.mul(mix_re[:, :k], l_im[:, :k], out=o[..., 1])
                o[..., 1].addcmul_(mix_im[:, :k], l_re[:, :k])
    return out


def sox_reverb_response(reverberance, hf_damping, room_scale, sample_rate: int, n_fft: int,
                        stereo_depth: float = 100.0, wet_gain_db: float = 0.0,
                        radius: float = 1.0, dtype: torch.dtype = torch.complex64,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """Frequency responses (C, B, n_fft // 2 + 1) of the wet path of sox's reverb for each
    of its C output channels (2 at stereo depth > 0), per item, at z = e^{jw} / ``radius``.

    Each channel: gain x (product of 4 all-passes) x (sum of 8 damped combs), with
    comb  z^-N (1 - d z^-1) / (1 - d z^-1 - f (1 - d) z^-N)  (store = out + (store - out) d,
    buffer = in + f store) and all-pass (1.5 z^-N - 1) / (1 - 0.5 z^-N), gain 0.015 x the
    wet gain. With ``radius`` r < 1 the inverse FFT gives h[m] r^m, time-aliased: the
    exponential window shrinks the wrapped tail by r^n_fft (see ``sox_reverb``).
    """
    device = torch.device(device) if device is not None else (
        reverberance.device if isinstance(reverberance, torch.Tensor) else torch.device("cpu"))
    return _sox_wet_response(reverberance, hf_damping, room_scale, sample_rate, n_fft,
                             stereo_depth, wet_gain_db, radius, dtype, device, mix=False)


def sox_reverb_tail(reverberance, room_scale, sample_rate: int) -> int:
    """Samples until sox's reverb has decayed by SOX_TAIL_DB, the largest over the items:
    the slowest comb (loop gain: the feedback per longest comb delay) then the all-passes."""
    rev = torch.as_tensor(reverberance, dtype=torch.float64).reshape(-1, 1)
    room = torch.as_tensor(room_scale, dtype=torch.float64).reshape(-1, 1)
    feedback, _, channels = _sox_reverb_settings(rev, room * 0, room, sample_rate, 100.0)
    longest = torch.stack([c[0].amax(1) for c in channels]).amax(0)  # (B,)
    loops = math.log(10 ** (-SOX_TAIL_DB / 20)) / torch.log(feedback.reshape(-1))
    # Each all-pass rings at 0.5 per its own delay; in series their tails add up.
    allpass = (sum(SOX_ALLPASS_LENGTHS) + 4 * SOX_STEREO_ADJUST) * sample_rate / 44100.0
    allpass_loops = math.log(10 ** (-SOX_TAIL_DB / 20)) / math.log(0.5)
    return int((longest * loops).max()) + int(allpass * allpass_loops) + 1


def sox_reverb(x: torch.Tensor, reverberance, hf_damping, room_scale, sample_rate: int,
               stereo_depth: float = 100.0, wet_gain_db: float = 0.0) -> torch.Tensor:
    """sox ``reverb reverberance hf_damping room_scale`` on mono clips, mixed back to mono
    (``channels 1``), per-item parameters in percent (scalars or (B,)).

    sox's defaults otherwise: stereo depth 100 (a mono input gives two wet channels whose
    delay lines differ by the stereo spread), pre-delay 0, wet gain 0 dB, dry signal kept:
    the output is dry + the mean of the two wet channels, clipped to [-1, 1] as sox's sample
    conversion does (sox clips each channel before ``channels 1`` averages them: the two
    differ only where one channel alone exceeds full scale). The network is linear and time
    invariant, so each item's frequency response is computed once and applied by batched
    FFT convolution, in exponentially weighted form: x[m] r^m is convolved with the response
    sampled just inside the unit circle (radius r, r^n_fft = 1e-5) and the result divided by
    r^m. Any grid of n_fft >= T points then gives the T output samples however long the
    reverb rings (``sox_reverb_tail``: about 12 s to -60 dB at reverberance and room scale
    99): the wrapped tail comes back scaled by r^n_fft = 1e-5. The grid used,
    ``_reverb_fft_len`` (>= 5T/4), bounds what unwarping by r^-m does to the FFT's float32
    round-off: at most 1e5^(4/5) = 1e4x at the clip's end (measured against the network run
    sample by sample: within 2e-6 in float32 and float64, tests/audio/test_augment.py).
    """
    n = x.shape[1]
    rev, damp, room = (_per_item(v, x, torch.float64).reshape(-1)
                       for v in (reverberance, hf_damping, room_scale))
    n_fft = _reverb_fft_len(n)
    radius = SOX_ALIAS_FLOOR ** (1.0 / n_fft)
    warp = torch.arange(n, device=x.device, dtype=torch.float64).mul_(math.log(radius)).exp_()
    spectrum = torch.fft.rfft(x * warp.to(x.dtype), n=n_fft)  # of x[m] r^m
    response = _sox_wet_response(rev, damp, room, sample_rate, n_fft, stereo_depth,
                                 wet_gain_db, radius, spectrum.dtype, x.device, mix=True)[0]
    # (x * h)[m] r^m = (x r^m) * (h r^m): convolve the warped pair, then unwarp the output
    wet = torch.fft.irfft(spectrum.mul_(response), n=n_fft)[:, :n] / warp.to(x.dtype)
    return (x + wet).clamp(-1.0, 1.0)


# ----------------------------------------------------------------------------- randomness
def _rng_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def _rand(shape, generator, device, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=_rng_device(generator, device),
                      dtype=dtype).to(device)


def _randn(shape, generator, device, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=_rng_device(generator, device),
                       dtype=dtype).to(device)


def _uniform(low: float, high: float, n: int, generator, device) -> torch.Tensor:
    return low + (high - low) * _rand(n, generator, device)


def _integers(low: int, high: int, u: torch.Tensor) -> torch.Tensor:
    """Uniform integers in [low, high] (both included) from uniform(0, 1) draws, as floats."""
    k = (u * (high - low + 1)).long().clamp_max(high - low)
    return (low + k).to(torch.float32)


@dataclass
class AugmentParams:
    """Every random choice for one batch; (B,) tensors unless noted."""
    offset: torch.Tensor
    polarity: torch.Tensor
    noise: torch.Tensor
    noise_std_ratio: torch.Tensor
    gain: torch.Tensor
    gain_db: torch.Tensor
    filters: torch.Tensor
    filter_lowpass: torch.Tensor
    filter_cutoff_hz: torch.Tensor
    delay: torch.Tensor
    delay_samples: torch.Tensor
    pitch: torch.Tensor
    pitch_semitones: torch.Tensor  # cents / 100 with pitch_unit "cents"
    reverb: torch.Tensor
    reverb_reverberance: torch.Tensor  # sox model, percent
    reverb_hf_damping: torch.Tensor
    reverb_room_scale: torch.Tensor
    reverb_rt60_s: torch.Tensor  # noise-tail model
    reverb_wet_db: torch.Tensor
    noise_unit: torch.Tensor  # (B, audio_length) rows used only where ``noise``; else (0, L)
    ir_noise: torch.Tensor  # noise-tail model: (B, ir_length - 1) rows where ``reverb``

    def rows(self, start: int, stop: int) -> "AugmentParams":
        """The parameters of items start..stop-1 (the pre-drawn noise follows its items)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("noise_unit", "ir_noise"):
                mask = self.noise if f.name == "noise_unit" else self.reverb
                if value.shape[0] == 0:
                    out[f.name] = value
                    continue
                first = int(mask[:start].sum())
                value = value[first: first + int(mask[start:stop].sum())]
            else:
                value = value[start:stop]
            out[f.name] = value
        return AugmentParams(**out)


def _semitones(u: torch.Tensor) -> torch.Tensor:
    """Uniform over the non-zero integers of PITCH_SEMITONES from uniform(0, 1) draws."""
    low, high = PITCH_SEMITONES
    values = torch.tensor([s for s in range(low, high + 1) if s != 0], device=u.device,
                          dtype=torch.float32)
    return values[(u * len(values)).long().clamp_max(len(values) - 1)]


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise AugmentError(f"{name} {value!r} is unknown; use one of {', '.join(allowed)}")


class AugmentChain:
    """The reference's augmentation chain for a batch of waveforms (see the module docstring)."""

    EFFECTS = ("polarity", "noise", "gain", "filters", "delay", "pitch", "reverb")

    def __init__(self, sample_rate: int, audio_length: int, polarity: float = 0.8,
                 noise: float = 0.01, gain: float = 0.3, filters: float = 0.8,
                 delay: float = 0.3, pitch: float = 0.6, reverb: float = 0.6,
                 chunk_size: int | None = DEFAULT_CPU_CHUNK_SIZE,
                 pitch_method: str = "delay_line", filter_design: str = "sinc",
                 pitch_unit: str = "cents", reverb_model: str = "sox"):
        self.sample_rate, self.audio_length = int(sample_rate), int(audio_length)
        self.p = dict(polarity=polarity, noise=noise, gain=gain, filters=filters,
                      delay=delay, pitch=pitch, reverb=reverb)
        for name, p in self.p.items():
            if not 0.0 <= float(p) <= 1.0:
                raise AugmentError(f"transforms_{name}={p} is not a probability; set it "
                                   f"between 0 (never applied) and 1 (always applied)")
        if chunk_size is not None and chunk_size < 1:
            raise AugmentError(f"chunk_size={chunk_size} must be >= 1 (or None: whole batch)")
        self.chunk_size = chunk_size
        _check_choice("pitch_method", pitch_method, ("delay_line", "phase_vocoder"))
        _check_choice("filter_design", filter_design, FILTER_DESIGNS)
        _check_choice("pitch_unit", pitch_unit, PITCH_UNITS)
        _check_choice("reverb_model", reverb_model, REVERB_MODELS)
        self.pitch_method, self.filter_design = pitch_method, filter_design
        self.pitch_unit, self.reverb_model = pitch_unit, reverb_model
        self.ir_length = int(REVERB_RT60_S[1] * self.sample_rate)

    @classmethod
    def from_config(cls, cfg, chunk_size: int | None = DEFAULT_CPU_CHUNK_SIZE,
                    pitch_method: str = "delay_line") -> "AugmentChain":
        """Build from a ``MusicConfig`` (sample_rate, audio_length, transforms_*, and the
        effect variants filter_design / pitch_unit / reverb_model; a config without them,
        from an earlier vcmr, gets the reference's effects)."""
        variants = {k: getattr(cfg, k, default) for k, default in
                    (("filter_design", "sinc"), ("pitch_unit", "cents"), ("reverb_model", "sox"))}
        return cls(cfg.sample_rate, cfg.audio_length,
                   **{e: getattr(cfg, f"transforms_{e}") for e in cls.EFFECTS},
                   chunk_size=chunk_size, pitch_method=pitch_method, **variants)

    def __repr__(self) -> str:
        probs = ", ".join(f"{k}={v}" for k, v in self.p.items())
        return (f"AugmentChain(sample_rate={self.sample_rate}, audio_length={self.audio_length}, "
                f"{probs}, chunk_size={self.chunk_size}, filter_design={self.filter_design!r}, "
                f"pitch_unit={self.pitch_unit!r}, pitch_method={self.pitch_method!r}, "
                f"reverb_model={self.reverb_model!r})")

    # -------------------------------------------------------------------------- sampling
    def sample(self, batch: int, source_length, device: torch.device | str = "cpu",
               generator: torch.Generator | None = None) -> AugmentParams:
        """Draw every random choice for a batch, in a fixed order (reproducible).

        ``source_length``: the samples each crop may start in, an int or a (B,) tensor."""
        dev = torch.device(device)
        u = lambda: _uniform(0.0, 1.0, batch, generator, dev)  # noqa: E731
        room = torch.as_tensor(source_length, device=dev) - self.audio_length  # (B,) or ()
        offset = torch.minimum((u() * (room + 1)).long(), room)
        masks = {e: u() < self.p[e] for e in self.EFFECTS}
        lowpass = u() < 0.5
        cutoff = torch.where(lowpass, _uniform(*LOWPASS_HZ, batch, generator, dev),
                             _uniform(*HIGHPASS_HZ, batch, generator, dev))
        delay_ms = torch.tensor(DELAY_MS, device=dev)[
            (u() * len(DELAY_MS)).long().clamp_max(len(DELAY_MS) - 1)]
        pitch = (_integers(*PITCH_CENTS, u()) / 100 if self.pitch_unit == "cents"
                 else _semitones(u()))
        params = dict(
            offset=offset, noise_std_ratio=_uniform(*NOISE_STD_RATIO, batch, generator, dev),
            gain_db=_uniform(*GAIN_DB, batch, generator, dev), filter_lowpass=lowpass,
            filter_cutoff_hz=cutoff, delay_samples=delay_ms * self.sample_rate // 1000,
            pitch_semitones=pitch,
            reverb_reverberance=_integers(*REVERB_PERCENT, u()),
            reverb_hf_damping=_integers(*REVERB_PERCENT, u()),
            reverb_room_scale=_integers(*REVERB_PERCENT, u()),
            reverb_rt60_s=_uniform(*REVERB_RT60_S, batch, generator, dev),
            reverb_wet_db=_uniform(*REVERB_WET_DB, batch, generator, dev), **masks)
        params["noise_unit"] = _randn((int(masks["noise"].sum()), self.audio_length),
                                      generator, dev)
        n_ir = int(masks["reverb"].sum()) if self.reverb_model == "noise_tail" else 0
        params["ir_noise"] = _randn((n_ir, self.ir_length - 1), generator, dev)
        return AugmentParams(**params)

    # ------------------------------------------------------------------------- applying
    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, T_src >= audio_length) waveforms -> (B, audio_length) augmented views."""
        self._check(x)
        params = self.sample(x.shape[0], content_lengths(x, self.audio_length), x.device,
                             generator)
        return self.apply(x, params)

    def apply(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Apply pre-drawn ``params`` (from ``sample``); chunked on CPU."""
        self._check(x)
        work = x if x.dtype in (torch.float32, torch.float64) else x.float()
        batch = x.shape[0]
        step = batch if x.device.type != "cpu" or not self.chunk_size else self.chunk_size
        if step >= batch:
            return self._apply_chunk(work, params).to(x.dtype)
        out = torch.empty(batch, self.audio_length, dtype=work.dtype, device=x.device)
        for start in range(0, batch, step):
            stop = min(start + step, batch)
            out[start:stop] = self._apply_chunk(work[start:stop], params.rows(start, stop))
        return out.to(x.dtype)

    def _apply_chunk(self, x: torch.Tensor, p: AugmentParams) -> torch.Tensor:
        y = crop(x, p.offset, self.audio_length)
        sign_gain = torch.where(p.polarity, -1.0, 1.0).to(y)
        if p.noise.any():
            y = y * sign_gain.unsqueeze(1)  # noise goes between polarity and gain
            y = _on_rows(y, p.noise, lambda r: add_white_noise(
                r, p.noise_std_ratio[p.noise], noise=p.noise_unit.to(r)))
            sign_gain = torch.ones_like(sign_gain)
        sign_gain = sign_gain * torch.where(p.gain, 10.0 ** (p.gain_db / 20.0), 1.0).to(y)
        y = y * sign_gain.unsqueeze(1)  # also makes a copy, so the input is never modified
        filt = sinc_filter if self.filter_design == "sinc" else biquad_filter
        y = _on_rows(y, p.filters, lambda r: filt(
            r, p.filter_cutoff_hz[p.filters], self.sample_rate, p.filter_lowpass[p.filters]))
        y = _on_rows(y, p.delay, lambda r: delay(r, p.delay_samples[p.delay]))
        y = _on_rows(y, p.pitch, lambda r: pitch_shift(
            r, p.pitch_semitones[p.pitch], method=self.pitch_method))
        return _on_rows(y, p.reverb, lambda r: self._reverb(r, p))

    def _reverb(self, rows: torch.Tensor, p: AugmentParams) -> torch.Tensor:
        m = p.reverb
        if self.reverb_model == "sox":
            return sox_reverb(rows, p.reverb_reverberance[m], p.reverb_hf_damping[m],
                              p.reverb_room_scale[m], self.sample_rate)
        return noise_tail_reverb(rows, p.reverb_rt60_s[m], p.reverb_wet_db[m], self.sample_rate,
                                 ir_noise=p.ir_noise.to(rows))

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise AugmentError(f"AugmentChain expects a (batch, samples) tensor, got {shape}; "
                               f"use x.unsqueeze(0) for one clip or x.mean(1) to mix channels")
        if not x.is_floating_point():
            raise AugmentError(f"AugmentChain expects float waveforms, got {x.dtype}; "
                               f"convert with x.float() (scaled to -1..1)")
        if x.shape[1] < self.audio_length:
            raise AugmentError(f"clips of {x.shape[1]} samples are shorter than audio_length="
                               f"{self.audio_length}; pad them or lower audio_length")


def content_lengths(x: torch.Tensor, minimum: int) -> torch.Tensor:
    """(B,) samples up to each row's last non-zero one, at least ``minimum``: a file shorter
    than the excerpt read for it arrives zero-padded at the end, and its crops should be
    drawn from the audio, not from the padding (an all-zero row keeps its full length)."""
    nonzero = x != 0
    tail = nonzero.flip(1).to(torch.uint8).argmax(1)  # trailing zeros per row
    lengths = torch.where(nonzero.any(1), x.shape[1] - tail, x.shape[1])
    return lengths.clamp_min(minimum)


def _on_rows(y: torch.Tensor, mask: torch.Tensor, effect) -> torch.Tensor:
    """Apply ``effect`` to the rows where ``mask`` is set (all rows: no copy)."""
    if mask.all():
        return effect(y)
    if not mask.any():
        return y
    idx = mask.nonzero().squeeze(1)
    return y.index_copy(0, idx, effect(y.index_select(0, idx)))
