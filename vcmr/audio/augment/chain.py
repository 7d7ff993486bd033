"""``AugmentChain``: the reference's effects in its order, with its probabilities, on a batch.

Every random number is drawn for the whole batch first (``sample``), then the effects run
on the rows that drew them (``apply``), a chunk of rows at a time on CPU.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from vcmr.audio.augment.common import (AugmentError, content_lengths, crop, integers, on_rows,
                                       randn, uniform)
from vcmr.audio.augment.delay import DELAY_MS, apply_delay
from vcmr.audio.augment.filters import HIGHPASS_HZ, LOWPASS_HZ, sinc_filter
from vcmr.audio.augment.gain import GAIN_DB
from vcmr.audio.augment.noise import NOISE_STD_RATIO, add_white_noise
from vcmr.audio.augment.pitch import PITCH_CENTS, pitch_shift
from vcmr.audio.augment.reverb import REVERB_PERCENT, sox_reverb

# Measured by benchmarks/bench_augment.py on the 2-core development machine (see README).
DEFAULT_CPU_CHUNK_SIZE = 16


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
    pitch_semitones: torch.Tensor  # integer cents / 100
    reverb: torch.Tensor
    reverb_reverberance: torch.Tensor  # percent
    reverb_hf_damping: torch.Tensor
    reverb_room_scale: torch.Tensor
    noise_unit: torch.Tensor  # (B, audio_length) rows used only where ``noise``; else (0, L)

    def rows(self, start: int, stop: int) -> "AugmentParams":
        """The parameters of items start..stop-1 (the pre-drawn noise follows its items)."""
        out = {f.name: getattr(self, f.name)[start:stop] for f in fields(self)}
        first = int(self.noise[:start].sum())
        out["noise_unit"] = self.noise_unit[first: first + int(self.noise[start:stop].sum())]
        return AugmentParams(**out)


class AugmentChain:
    """The reference's augmentation chain for a batch of waveforms (see ``vcmr.audio.augment``)."""

    EFFECTS = ("polarity", "noise", "gain", "filters", "delay", "pitch", "reverb")

    def __init__(self, sample_rate: int, audio_length: int, polarity: float = 0.8,
                 noise: float = 0.01, gain: float = 0.3, filters: float = 0.8,
                 delay: float = 0.3, pitch: float = 0.6, reverb: float = 0.6,
                 chunk_size: int | None = DEFAULT_CPU_CHUNK_SIZE):
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

    @classmethod
    def from_config(cls, cfg, chunk_size: int | None = DEFAULT_CPU_CHUNK_SIZE) -> "AugmentChain":
        """Build from a ``MusicConfig`` (sample_rate, audio_length, transforms_*)."""
        return cls(cfg.sample_rate, cfg.audio_length,
                   **{e: getattr(cfg, f"transforms_{e}") for e in cls.EFFECTS},
                   chunk_size=chunk_size)

    def __repr__(self) -> str:
        probs = ", ".join(f"{k}={v}" for k, v in self.p.items())
        return (f"AugmentChain(sample_rate={self.sample_rate}, audio_length={self.audio_length}, "
                f"{probs}, chunk_size={self.chunk_size})")

    # -------------------------------------------------------------------------- sampling
    def sample(self, batch: int, source_length, device: torch.device | str = "cpu",
               generator: torch.Generator | None = None) -> AugmentParams:
        """Draw every random choice for a batch, in a fixed order (reproducible).

        ``source_length``: the samples each crop may start in, an int or a (B,) tensor."""
        dev = torch.device(device)
        u = lambda: uniform(0.0, 1.0, batch, generator, dev)  # noqa: E731
        room = torch.as_tensor(source_length, device=dev) - self.audio_length  # (B,) or ()
        offset = torch.minimum((u() * (room + 1)).long(), room)
        masks = {e: u() < self.p[e] for e in self.EFFECTS}
        lowpass = u() < 0.5
        cutoff = torch.where(lowpass, uniform(*LOWPASS_HZ, batch, generator, dev),
                             uniform(*HIGHPASS_HZ, batch, generator, dev))
        delay_ms = torch.tensor(DELAY_MS, device=dev)[
            (u() * len(DELAY_MS)).long().clamp_max(len(DELAY_MS) - 1)]
        params = dict(
            offset=offset, filter_lowpass=lowpass, filter_cutoff_hz=cutoff,
            delay_samples=delay_ms * self.sample_rate // 1000,
            pitch_semitones=integers(*PITCH_CENTS, u()) / 100,
            noise_std_ratio=uniform(*NOISE_STD_RATIO, batch, generator, dev),
            gain_db=uniform(*GAIN_DB, batch, generator, dev),
            reverb_reverberance=integers(*REVERB_PERCENT, u()),
            reverb_hf_damping=integers(*REVERB_PERCENT, u()),
            reverb_room_scale=integers(*REVERB_PERCENT, u()), **masks)
        params["noise_unit"] = randn((int(masks["noise"].sum()), self.audio_length),
                                     generator, dev)
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
            y = on_rows(y, p.noise, lambda r: add_white_noise(
                r, p.noise_std_ratio[p.noise], noise=p.noise_unit.to(r)))
            sign_gain = torch.ones_like(sign_gain)
        sign_gain = sign_gain * torch.where(p.gain, 10.0 ** (p.gain_db / 20.0), 1.0).to(y)
        y = y * sign_gain.unsqueeze(1)  # also makes a copy, so the input is never modified
        y = on_rows(y, p.filters, lambda r: sinc_filter(
            r, p.filter_cutoff_hz[p.filters], self.sample_rate, p.filter_lowpass[p.filters]))
        y = on_rows(y, p.delay, lambda r: apply_delay(r, p.delay_samples[p.delay]))
        y = on_rows(y, p.pitch, lambda r: pitch_shift(r, p.pitch_semitones[p.pitch]))
        m = p.reverb
        return on_rows(y, m, lambda r: sox_reverb(
            r, p.reverb_reverberance[m], p.reverb_hf_damping[m], p.reverb_room_scale[m],
            self.sample_rate))

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
