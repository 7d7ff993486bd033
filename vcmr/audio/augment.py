"""CLMR's waveform augmentation chain, batched in torch on the input's device.

    chain = AugmentChain.from_config(load_config("mus"))
    view_a = chain(batch)                 # batch: (B, T_src >= audio_length), any device
    view_b = chain(batch)                 # an independent second view
    same = chain(batch, generator=torch.Generator().manual_seed(0))   # reproducible

The chain, in CLMR's order, each effect applied to an item with its configured probability:

==========  ==========================================================================
crop        random excerpt of ``audio_length`` samples (independent offset per item)
polarity    multiply by -1
noise       white Gaussian noise at an SNR of 46-60 dB (CLMR: noise std = 0.001-0.005 x
            signal std)
gain        -20 to -1 dB (CLMR's ``Gain`` range)
filters     one RBJ biquad (Q = 0.707), low-pass 2.2-4 kHz or high-pass 200-1200 Hz
            (50/50); applied exactly as the causal IIR filter's frequency response, by FFT
delay       echo of half the amplitude after 200, 250, ..., 500 ms
pitch       -7 to +7 whole semitones (not 0), tempo preserving: a two-head delay-line
            shifter with 100 ms cross-faded grains (``pitch_method="phase_vocoder"``: phase
            vocoder + FFT resampling, cleaner and about ten times slower)
reverb      convolution (FFT) with a synthetic impulse response: the direct path plus
            exponentially decaying white noise, RT60 0.2-1.0 s, wet level -12 to -3 dB
==========  ==========================================================================

Every random number (offsets, masks, parameters, noise, impulse responses) is drawn for the
whole batch before any audio is processed, so the output depends only on the generator's state,
never on ``chunk_size``. Effects are vectorised over the items that draw them: per-item
parameters are tensors, and each effect runs once on the selected rows. On CPU the batch is
processed ``chunk_size`` items at a time, which keeps the working set of the FFT and STFT
stages in cache (see benchmarks/README.md for the measurement behind the default); on other
devices the whole batch goes at once.

Each effect is also a public function (``biquad_filter``, ``delay``, ``pitch_shift``, ...)
taking a (B, T) tensor and per-item parameters, so it can be checked on known signals.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from vcmr.errors import VcmrError

__all__ = [
    "AugmentChain", "AugmentParams", "AugmentError", "crop", "polarity_inversion",
    "add_white_noise", "apply_gain", "biquad_filter", "delay", "pitch_shift", "reverb",
    "synthetic_impulse_response", "time_stretch", "fft_resample", "DEFAULT_CPU_CHUNK_SIZE",
]

# Measured by benchmarks/bench_augment.py on the 2-core development machine (see README).
DEFAULT_CPU_CHUNK_SIZE = 16

NOISE_SNR_DB = (46.0, 60.0)
GAIN_DB = (-20.0, -1.0)
LOWPASS_HZ = (2200.0, 4000.0)
HIGHPASS_HZ = (200.0, 1200.0)
DELAY_MS = tuple(range(200, 501, 50))
DELAY_VOLUME = 0.5
PITCH_SEMITONES = (-7, 7)  # integers, 0 excluded
REVERB_RT60_S = (0.2, 1.0)
REVERB_WET_DB = (-12.0, -3.0)
PITCH_N_FFT, PITCH_HOP = 1024, 256
PITCH_GRAIN = 1600  # 100 ms at 16 kHz


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


# ------------------------------------------------------------------------------- effects
def crop(x: torch.Tensor, offsets: torch.Tensor, length: int) -> torch.Tensor:
    """Row ``i`` of the result is ``x[i, offsets[i]: offsets[i] + length]``."""
    if x.shape[1] == length:
        return x
    windows = x.unfold(1, length, 1)  # a view: (B, T - length + 1, length)
    return windows[torch.arange(x.shape[0], device=x.device), offsets.to(x.device)]


def polarity_inversion(x: torch.Tensor) -> torch.Tensor:
    return -x


def add_white_noise(x: torch.Tensor, snr_db, noise: torch.Tensor | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Add Gaussian noise whose std is the signal's std times 10^(-snr_db/20).

    ``noise`` (same shape as ``x``, unit variance) may be given; otherwise it is drawn.
    """
    if noise is None:
        noise = _randn(x.shape, generator, x.device, x.dtype)
    std = x.std(dim=1, keepdim=True)
    return x + noise * std * 10.0 ** (-_per_item(snr_db, x) / 20.0)


def apply_gain(x: torch.Tensor, gain_db) -> torch.Tensor:
    return x * 10.0 ** (_per_item(gain_db, x) / 20.0)


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
    """Add an echo: ``y[n] = x[n] + volume * x[n - d]`` with a per-item lag ``d`` (samples)."""
    d = _per_item(delay_samples, x, dtype=torch.long)
    idx = torch.arange(x.shape[1], device=x.device).expand_as(x) - d
    echo = x.gather(1, idx.clamp_min(0)) * (idx >= 0)
    return x + volume * echo


def pitch_shift(x: torch.Tensor, semitones, method: str = "delay_line",
                grain: int = PITCH_GRAIN) -> torch.Tensor:
    """Tempo-preserving pitch shift by a per-item number of semitones (scalar or (B,)).

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
    left = pos.floor()
    frac = pos - left
    left = left.long().clamp_max(x.shape[1] - 2)
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


def reverb(x: torch.Tensor, rt60_s, wet_db, sample_rate: int,
           ir_noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
           ir_length: int | None = None) -> torch.Tensor:
    """Convolve each item with its synthetic impulse response (batched FFT, causal, same length)."""
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


@dataclass
class AugmentParams:
    """Every random choice for one batch; (B,) tensors unless noted."""
    offset: torch.Tensor
    polarity: torch.Tensor
    noise: torch.Tensor
    noise_snr_db: torch.Tensor
    gain: torch.Tensor
    gain_db: torch.Tensor
    filters: torch.Tensor
    filter_lowpass: torch.Tensor
    filter_cutoff_hz: torch.Tensor
    delay: torch.Tensor
    delay_samples: torch.Tensor
    pitch: torch.Tensor
    pitch_semitones: torch.Tensor
    reverb: torch.Tensor
    reverb_rt60_s: torch.Tensor
    reverb_wet_db: torch.Tensor
    noise_unit: torch.Tensor  # (B, audio_length) rows used only where ``noise``; else (0, L)
    ir_noise: torch.Tensor  # (B, ir_length - 1) rows used only where ``reverb``

    def rows(self, start: int, stop: int) -> "AugmentParams":
        """The parameters of items start..stop-1 (the pre-drawn noise follows its items)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("noise_unit", "ir_noise"):
                mask = self.noise if f.name == "noise_unit" else self.reverb
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


class AugmentChain:
    """CLMR's augmentation chain for a batch of waveforms (see the module docstring)."""

    EFFECTS = ("polarity", "noise", "gain", "filters", "delay", "pitch", "reverb")

    def __init__(self, sample_rate: int, audio_length: int, polarity: float = 0.8,
                 noise: float = 0.01, gain: float = 0.3, filters: float = 0.8,
                 delay: float = 0.3, pitch: float = 0.6, reverb: float = 0.6,
                 chunk_size: int | None = DEFAULT_CPU_CHUNK_SIZE,
                 pitch_method: str = "delay_line"):
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
        if pitch_method not in ("delay_line", "phase_vocoder"):
            raise AugmentError(f"pitch_method {pitch_method!r} is unknown; use 'delay_line' "
                               f"or 'phase_vocoder'")
        self.pitch_method = pitch_method
        self.ir_length = int(REVERB_RT60_S[1] * self.sample_rate)

    @classmethod
    def from_config(cls, cfg, chunk_size: int | None = DEFAULT_CPU_CHUNK_SIZE,
                    pitch_method: str = "delay_line") -> "AugmentChain":
        """Build from a ``MusicConfig`` (sample_rate, audio_length, transforms_*)."""
        return cls(cfg.sample_rate, cfg.audio_length,
                   **{e: getattr(cfg, f"transforms_{e}") for e in cls.EFFECTS},
                   chunk_size=chunk_size, pitch_method=pitch_method)

    def __repr__(self) -> str:
        probs = ", ".join(f"{k}={v}" for k, v in self.p.items())
        return (f"AugmentChain(sample_rate={self.sample_rate}, audio_length={self.audio_length}, "
                f"{probs}, chunk_size={self.chunk_size}, pitch_method={self.pitch_method!r})")

    # -------------------------------------------------------------------------- sampling
    def sample(self, batch: int, source_length: int, device: torch.device | str = "cpu",
               generator: torch.Generator | None = None) -> AugmentParams:
        """Draw every random choice for a batch, in a fixed order (reproducible)."""
        dev = torch.device(device)
        u = lambda: _uniform(0.0, 1.0, batch, generator, dev)  # noqa: E731
        offset = (u() * (source_length - self.audio_length + 1)).long()
        offset = offset.clamp_max(source_length - self.audio_length)
        masks = {e: u() < self.p[e] for e in self.EFFECTS}
        lowpass = u() < 0.5
        cutoff = torch.where(lowpass, _uniform(*LOWPASS_HZ, batch, generator, dev),
                             _uniform(*HIGHPASS_HZ, batch, generator, dev))
        delay_ms = torch.tensor(DELAY_MS, device=dev)[
            (u() * len(DELAY_MS)).long().clamp_max(len(DELAY_MS) - 1)]
        params = dict(
            offset=offset, noise_snr_db=_uniform(*NOISE_SNR_DB, batch, generator, dev),
            gain_db=_uniform(*GAIN_DB, batch, generator, dev), filter_lowpass=lowpass,
            filter_cutoff_hz=cutoff, delay_samples=delay_ms * self.sample_rate // 1000,
            pitch_semitones=_semitones(u()),
            reverb_rt60_s=_uniform(*REVERB_RT60_S, batch, generator, dev),
            reverb_wet_db=_uniform(*REVERB_WET_DB, batch, generator, dev), **masks)
        params["noise_unit"] = _randn((int(masks["noise"].sum()), self.audio_length),
                                      generator, dev)
        params["ir_noise"] = _randn((int(masks["reverb"].sum()), self.ir_length - 1),
                                    generator, dev)
        return AugmentParams(**params)

    # ------------------------------------------------------------------------- applying
    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, T_src >= audio_length) waveforms -> (B, audio_length) augmented views."""
        self._check(x)
        params = self.sample(x.shape[0], x.shape[1], x.device, generator)
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
                r, p.noise_snr_db[p.noise], noise=p.noise_unit.to(r)))
            sign_gain = torch.ones_like(sign_gain)
        sign_gain = sign_gain * torch.where(p.gain, 10.0 ** (p.gain_db / 20.0), 1.0).to(y)
        y = y * sign_gain.unsqueeze(1)  # also makes a copy, so the input is never modified
        y = _on_rows(y, p.filters, lambda r: biquad_filter(
            r, p.filter_cutoff_hz[p.filters], self.sample_rate, p.filter_lowpass[p.filters]))
        y = _on_rows(y, p.delay, lambda r: delay(r, p.delay_samples[p.delay]))
        y = _on_rows(y, p.pitch, lambda r: pitch_shift(
            r, p.pitch_semitones[p.pitch], method=self.pitch_method))
        y = _on_rows(y, p.reverb, lambda r: reverb(
            r, p.reverb_rt60_s[p.reverb], p.reverb_wet_db[p.reverb], self.sample_rate,
            ir_noise=p.ir_noise.to(r)))
        return y

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


def _on_rows(y: torch.Tensor, mask: torch.Tensor, effect) -> torch.Tensor:
    """Apply ``effect`` to the rows where ``mask`` is set (all rows: no copy)."""
    if mask.all():
        return effect(y)
    if not mask.any():
        return y
    idx = mask.nonzero().squeeze(1)
    return y.index_copy(0, idx, effect(y.index_select(0, idx)))
