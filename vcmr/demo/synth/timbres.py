"""Instrument sounds of the synthesiser: band-limited wavetable notes with vibrato, an
attack/decay/release envelope and a bright-to-dull crossfade for struck and plucked
instruments (:func:`note`), and drum hits (kick, snare, hi-hat).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


# name: (harmonic amplitudes exponent, number of harmonics, extra shaping)
@dataclass(frozen=True)
class Timbre:
    rolloff: float          # harmonic n has amplitude n ** -rolloff
    n_harmonics: int
    attack: float           # seconds
    decay: float            # seconds (exp. time constant); 0 -> sustained
    release: float
    bright_decay: float     # time constant of the bright -> dull crossfade (0: always bright)
    vibrato: float = 0.0    # relative depth
    odd_only: bool = False
    pluck: float = 0.0      # pluck position (0: none) -> comb-shaped spectrum
    detune: float = 0.0     # relative detune of a second voice
    gain: float = 1.0


TIMBRES = {
    "piano": Timbre(1.3, 14, 0.004, 1.1, 0.08, 0.25, gain=1.0),
    "harpsichord": Timbre(0.55, 24, 0.001, 0.7, 0.05, 0.5, pluck=0.13, gain=0.7),
    "harp": Timbre(2.4, 6, 0.006, 1.6, 0.2, 0.4, pluck=0.5, gain=1.0),
    "guitar": Timbre(1.5, 16, 0.003, 0.9, 0.06, 0.2, pluck=0.2, gain=0.9),
    "violin": Timbre(0.9, 18, 0.09, 0.0, 0.12, 0.0, vibrato=0.006, gain=0.55),
    "cello": Timbre(1.0, 16, 0.12, 0.0, 0.15, 0.0, vibrato=0.005, gain=0.8),
    "flute": Timbre(3.0, 4, 0.07, 0.0, 0.1, 0.0, vibrato=0.004, gain=0.9),
    "strings": Timbre(1.4, 10, 0.35, 0.0, 0.4, 0.0, vibrato=0.003, detune=0.006, gain=0.35),
    "synth": Timbre(1.0, 30, 0.005, 0.0, 0.05, 0.15, detune=0.01, gain=0.35),
    "pad": Timbre(1.6, 12, 0.9, 0.0, 1.0, 0.0, detune=0.008, gain=0.3),
    "voice": Timbre(1.8, 6, 0.008, 0.3, 0.05, 0.0, gain=0.8),
    "bass": Timbre(1.0, 20, 0.004, 0.35, 0.05, 0.08, gain=0.6),
}
_TABLE = 2048


@lru_cache(maxsize=1024)
def _wavetables(name: str, midi: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(bright, dull) single-cycle tables for an instrument at a pitch, band-limited."""
    tb = TIMBRES[name]
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    n_max = max(1, min(tb.n_harmonics, int(0.45 * sample_rate / f0)))
    n = np.arange(1, n_max + 1)
    amp = n ** -tb.rolloff
    if tb.odd_only:
        amp[n % 2 == 0] = 0
    if tb.pluck:
        amp *= np.abs(np.sin(np.pi * n * tb.pluck)) + 0.05
    if name == "flute":
        amp = amp.copy()
        amp[0] = 1.0
    dull = amp * np.exp(-(n - 1) / 2.0)
    phase = np.arange(_TABLE) / _TABLE * 2 * np.pi
    basis = np.sin(np.outer(n, phase))
    bright, dull_t = amp @ basis, dull @ basis
    return ((bright / np.abs(bright).max()).astype(np.float32),
            (dull_t / np.abs(dull_t).max()).astype(np.float32))


def note(name: str, midi: int, dur: float, sr: int, velocity: float) -> np.ndarray:
    """One note: wavetable oscillator(s) with vibrato, attack/decay/release envelope and a
    bright-to-dull crossfade for struck/plucked instruments."""
    tb = TIMBRES[name]
    length = dur + tb.release
    n = max(1, int(length * sr))
    t = np.arange(n, dtype=np.float32) / sr
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    bright, dull = _wavetables(name, midi, sr)
    freq = f0 * (1 + tb.vibrato * np.sin(2 * np.pi * 5.5 * t)) if tb.vibrato else f0
    out = _osc(bright, dull, freq, t, sr, tb)
    if tb.detune:
        out = 0.5 * (out + _osc(bright, dull, freq * (1 + tb.detune), t, sr, tb))
    return out * _envelope(t, dur, tb) * velocity * tb.gain


def _osc(bright, dull, freq, t, sr, tb: Timbre) -> np.ndarray:
    phase = np.cumsum(np.broadcast_to(freq, t.shape) / sr) if np.ndim(freq) else freq * t
    idx = (np.asarray(phase) * _TABLE).astype(np.int64) % _TABLE
    if not tb.bright_decay:
        return bright[idx]
    mix = np.exp(-t / tb.bright_decay)
    return mix * bright[idx] + (1 - mix) * dull[idx]


def _envelope(t: np.ndarray, dur: float, tb: Timbre) -> np.ndarray:
    env = np.minimum(1.0, t / tb.attack) if tb.attack else np.ones_like(t)
    if tb.decay:
        env = env * np.exp(-t / tb.decay)
    rel = np.clip((t - dur) / tb.release, 0, 1)
    return (env * (1 - rel)).astype(np.float32)


# ------------------------------------------------------------------------------- drums
def kick(sr: int) -> np.ndarray:
    t = np.arange(int(0.3 * sr)) / sr
    f = 45 + 110 * np.exp(-t / 0.04)
    phase = 2 * np.pi * np.cumsum(f) / sr
    return (np.sin(phase) * np.exp(-t / 0.12)).astype(np.float32)


def snare(sr: int, rng) -> np.ndarray:
    t = np.arange(int(0.2 * sr)) / sr
    noise = np.diff(rng.standard_normal(len(t) + 1)) * 0.5
    tone = np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.03)
    return ((0.8 * noise * np.exp(-t / 0.06)) + 0.5 * tone).astype(np.float32)


def hihat(sr: int, rng, length: float = 0.05) -> np.ndarray:
    t = np.arange(int(4 * length * sr)) / sr
    noise = np.diff(rng.standard_normal(len(t) + 2), n=2) * 0.25
    return (noise * np.exp(-t / length)).astype(np.float32)
