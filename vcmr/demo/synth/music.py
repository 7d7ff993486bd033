"""Tagged music synthesis: a seed and a set of MagnaTagATune tags -> a music clip whose tags are
its ground truth.

Every tag changes the sound in a way a tagger can hear:

- instruments have their own timbre (harmonic profile, envelope, vibrato, register, playing
  pattern): piano, harpsichord, harp and guitar are plucked/struck with decaying partials,
  violin/cello/flute/strings are sustained with vibrato, synth is a bright saw/square, drums are
  noise and pitch-swept percussion;
- ``fast`` / ``slow`` set the tempo (140-168 / 58-76 BPM; 90-118 otherwise), hence the onset rate;
- ``loud`` is a hot, saturated mix; ``quiet`` a low-level one; ``soft`` a low-level, darker
  (low-passed) one with gentler attacks;
- ``beat`` is a four-on-the-floor kick on every beat (``drums`` alone is a rock back-beat);
- ``ambient`` is slow pads with a long reverb; ``solo`` is exactly one melodic instrument;
- ``techno``, ``electronic``, ``rock``, ``classical`` are instrument/rhythm combinations
  (see :func:`vcmr.demo.synth.tags.complete_tags`).

The key and the mode (major/minor) are drawn from the seed; they are not MagnaTagATune tags but
the video generator and the MTG-Jamendo writer use them (palette; happy / sad / dark).

Example::

    import numpy as np
    from vcmr.demo.synth.music import render_music
    from vcmr.demo.synth.tags import random_tags
    tags = random_tags(np.random.default_rng(0))
    clip = render_music(tags, duration=10.0, sample_rate=16000, seed=0)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vcmr.demo.synth.tags import DYNAMICS_TAGS, INSTRUMENTS, TEMPO_TAGS, complete_tags
from vcmr.demo.synth.timbres import hihat, kick, note, snare
from vcmr.errors import VcmrError

TEMPO_RANGES = {"fast": (140.0, 168.0), "slow": (58.0, 76.0), None: (90.0, 118.0)}
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_PROGRESSIONS = {"major": ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4)),
                 "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 4))}


@dataclass
class SynthClip:
    """A rendered clip. ``tags`` are the MagnaTagATune tags it was rendered with (ground truth);
    ``onsets`` maps each instrument to its note start times in seconds."""
    audio: np.ndarray
    sample_rate: int
    tags: list[str]
    tempo_bpm: float
    mode: str
    beat_times: np.ndarray
    instruments: list[str]
    key: int = 0
    dynamics: str = "normal"
    onsets: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


# ------------------------------------------------------------------------------ render
def render_music(tags, duration: float, sample_rate: int = 16000, seed: int = 0,
                 mode: str | None = None, mode_salience: float = 0.0) -> SynthClip:
    """Render ``duration`` seconds of mono float32 music at ``sample_rate`` with the given tags.

    ``mode``: "major" or "minor" (None: drawn from the seed). ``mode_salience`` >= 0: the level,
    relative to each instrument, of the mode's figure (the tonic triad arpeggiated on every beat,
    rising in major, falling in minor, in a random register) that makes the mode audible; 0
    leaves the mode only in the chord progression and melodies, where it is barely audible.

    Same (tags, duration, sample_rate, seed, mode, mode_salience) -> the same samples. Unknown or
    contradictory tags raise VcmrError; implied tags are added (see
    :func:`vcmr.demo.synth.tags.complete_tags`)."""
    if duration <= 0:
        raise VcmrError(f"duration must be positive, got {duration}")
    if sample_rate < 8000:
        raise VcmrError(f"sample_rate {sample_rate} is too low for the synthesiser; use >= 8000")
    tags = complete_tags(tags)
    rng = np.random.default_rng(seed)
    tempo_tag = next((t for t in TEMPO_TAGS if t in tags), None)
    tempo = float(np.round(rng.uniform(*TEMPO_RANGES[tempo_tag]), 1))
    drawn = "major" if rng.random() < 0.5 else "minor"
    mode = _check_mode(mode, mode_salience) or drawn
    key = int(rng.integers(0, 12))
    dynamics = next((t for t in DYNAMICS_TAGS if t in tags), "normal")
    song = _Song(tags, tempo, mode, key, duration, sample_rate, rng)
    instruments = [t for t in INSTRUMENTS if t in tags]
    tracks, onsets = {}, {}
    for inst in instruments:
        tracks[inst], onsets[inst] = song.play(inst)
    if mode_salience > 0:
        tracks["mode_voice"] = mode_salience * _unit_rms(song.mode_voice())
    audio = _mix(tracks, tags, dynamics, sample_rate, rng)[: int(round(duration * sample_rate))]
    beat_times = np.arange(0.0, duration, 60.0 / tempo)
    return SynthClip(audio=audio, sample_rate=sample_rate, tags=tags, tempo_bpm=tempo, mode=mode,
                     beat_times=beat_times, instruments=instruments, key=key, dynamics=dynamics,
                     onsets=onsets)


def _check_mode(mode, salience) -> str | None:
    if mode not in (None, "major", "minor"):
        raise VcmrError(f"mode must be 'major' or 'minor', got {mode!r}")
    if not np.isfinite(salience) or salience < 0:
        raise VcmrError(f"mode_salience must be a finite number >= 0, got {salience!r}")
    return mode


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-9)


class _Song:
    """Shared musical plan (key, chords, beat grid) from which each instrument plays a part."""

    def __init__(self, tags, tempo, mode, key, duration, sr, rng):
        self.tags, self.tempo, self.mode, self.duration, self.sr, self.rng = \
            tags, tempo, mode, duration, sr, rng
        self.beat = 60.0 / tempo
        self.scale = _SCALES[mode]
        self.root = 48 + key
        prog = _PROGRESSIONS[mode]
        self.progression = prog[int(rng.integers(0, len(prog)))]
        self.n = int(duration * sr) + int(3 * sr)
        self.soft = "soft" in tags

    def chord(self, t: float, octave: int = 0) -> list[int]:
        degree = self.progression[int(t / (4 * self.beat)) % len(self.progression)]
        return [self.pitch(degree + 2 * k, octave) for k in range(3)]

    def pitch(self, degree: int, octave: int = 0) -> int:
        return self.root + 12 * (octave + degree // 7) + self.scale[degree % 7]

    def times(self, step_beats: float, offset: float = 0.0) -> np.ndarray:
        return np.arange(offset * self.beat, self.duration, step_beats * self.beat)

    def play(self, inst: str) -> tuple[np.ndarray, np.ndarray]:
        if inst == "drums":
            return self._drums()
        notes = getattr(self, f"_part_{inst}")()
        buf = np.zeros(self.n, np.float32)
        for start, midi, dur, vel, timbre in notes:
            self._add(buf, note(timbre, midi, dur, self.sr, vel), start)
        onsets = np.unique(np.round([n[0] for n in notes], 4))
        return buf, onsets

    def _add(self, buf, x, start):
        i = int(start * self.sr)
        if i >= len(buf):
            return
        x = x[: len(buf) - i]
        buf[i: i + len(x)] += x

    def _vel(self):
        return float(self.rng.uniform(0.75, 1.0))

    def _melody(self, step: float, octave: int, timbre: str, legato: float = 0.95):
        notes, degree = [], int(self.rng.integers(0, 5))
        for t in self.times(step):
            on_bar = abs((t / self.beat) % 4) < 1e-6
            if on_bar:  # land on a chord tone at each bar
                degree = self.progression[int(t / (4 * self.beat)) % 4] + 2 * int(self.rng.integers(0, 3))
            else:
                degree = int(np.clip(degree + self.rng.choice([-2, -1, 1, 2]), -2, 9))
            notes.append((t, self.pitch(degree, octave), step * self.beat * legato, self._vel(), timbre))
        return notes

    def _arpeggio(self, step, octave, timbre, span=3, note_beats=None):
        notes = []
        for i, t in enumerate(self.times(step)):
            chord = self.chord(t, octave)
            k = i % (2 * span - 2) if span > 1 else 0
            k = k if k < span else 2 * span - 2 - k
            midi = chord[k % 3] + 12 * (k // 3)
            dur = (note_beats or step) * self.beat
            notes.append((t, midi, dur, self._vel(), timbre))
        return notes

    def _chords(self, step, octave, timbre, strum=0.0):
        notes = []
        for t in self.times(step):
            for j, midi in enumerate(self.chord(t, octave)):
                notes.append((t + j * strum, midi, step * self.beat * 0.95, 0.6 * self._vel(), timbre))
        return notes

    def _fast(self):
        return "fast" in self.tags

    def _part_piano(self):
        bass = [(t, self.chord(t, -1)[0], 2 * self.beat, 0.8, "piano") for t in self.times(2)]
        return self._arpeggio(0.5, 1, "piano", note_beats=1.0) + bass

    def _part_harpsichord(self):
        return self._arpeggio(0.25 if not self._fast() else 0.5, 1, "harpsichord", span=4)

    def _part_harp(self):
        return self._arpeggio(0.5, 0, "harp", span=6, note_beats=2.0)

    def _part_guitar(self):
        if "rock" in self.tags:   # power chords, eighth notes, distorted later
            notes = []
            for t in self.times(0.5):
                root = self.chord(t, -1)[0]
                notes += [(t, m, 0.45 * self.beat, 0.8, "guitar") for m in (root, root + 7, root + 12)]
            return notes
        return self._chords(1, 0, "guitar", strum=0.018)

    def _part_violin(self):
        return self._melody(0.5 if self._fast() else 1.0, 2, "violin")

    def _part_flute(self):
        return self._melody(0.5 if self._fast() else 1.0, 2, "flute")

    def _part_cello(self):
        return [(t, self.chord(t, -1)[0], 1.9 * self.beat, self._vel(), "cello") for t in self.times(2)]

    def _part_strings(self):
        return self._chords(4, 0, "strings")

    def _part_synth(self):
        if "ambient" in self.tags and "beat" not in self.tags:
            return self._chords(4, 0, "pad")
        bass = [(t, self.chord(t, -1)[0], 0.4 * self.beat, 0.9, "bass") for t in self.times(0.5)]
        return self._arpeggio(0.25 if not self._fast() else 0.5, 1, "synth", span=4) + bass

    def mode_voice(self) -> np.ndarray:
        """The mode's figure: on every beat, the tonic triad and its octave as four sixteenth
        notes, rising in major and falling in minor, one or two octaves above the key's root
        (drawn per song). Its pitch classes say nothing without the key; its direction and
        the third's size are what a listener (or a trained encoder) hears."""
        octave = int(self.rng.integers(0, 2))
        degrees = (0, 2, 4, 7) if self.mode == "major" else (7, 4, 2, 0)
        buf = np.zeros(self.n, np.float32)
        step = self.beat / 4
        for t in self.times(1):
            for k, degree in enumerate(degrees):
                self._add(buf, note("voice", self.pitch(degree, octave), 0.9 * step, self.sr, 0.8), t + k * step)
        return buf

    def _drums(self):
        sr, rng, buf = self.sr, self.rng, np.zeros(self.n, np.float32)
        kick_hit, snare_hit, hat = kick(sr), snare(sr, rng), hihat(sr, rng)
        four = "beat" in self.tags
        kicks = self.times(1) if four else self.times(2)
        snares = self.times(2, offset=1)
        hats = self.times(0.5, offset=0.5 if four else 0)
        for t in kicks:
            self._add(buf, 1.0 * kick_hit, t)
        for t in snares:
            self._add(buf, (0.5 if four else 0.8) * snare_hit, t)
        for t in hats:
            self._add(buf, 0.35 * hat, t)
        onsets = np.unique(np.round(np.concatenate([kicks, snares, hats]), 4))
        return buf, onsets


_LEVELS = {"loud": 0.28, "normal": 0.12, "soft": 0.05, "quiet": 0.03}   # target RMS


def _mix(tracks: dict, tags, dynamics: str, sr: int, rng) -> np.ndarray:
    mix = np.zeros_like(next(iter(tracks.values())))
    for inst, x in tracks.items():
        if inst == "mode_voice":   # already scaled by its salience
            mix += x
            continue
        if inst == "guitar" and "rock" in tags:
            x = np.tanh(6 * x / (np.abs(x).max() + 1e-9)) * 0.5
        rms = np.sqrt(np.mean(x ** 2)) + 1e-9
        mix += x / rms * (1.4 if inst == "drums" else 1.0)
    if "ambient" in tags or "classical" in tags:
        tail = 2.5 if "ambient" in tags else 0.8
        t = np.arange(int(tail * sr)) / sr
        ir = rng.standard_normal(len(t)) * np.exp(-t / (tail / 5))
        ir[0] = 8.0
        mix = _fft_convolve(mix, ir)
    if dynamics == "soft":   # 2nd-order Butterworth magnitude at 1.2 kHz, zero phase
        mix = _fft_filter(mix, lambda f: 1 / np.sqrt(1 + (f / 1200.0) ** 4), sr)
    mix *= _LEVELS[dynamics] / (np.sqrt(np.mean(mix ** 2)) + 1e-9)
    if dynamics == "loud":
        mix = np.tanh(1.6 * mix) / np.tanh(1.6)
    peak = np.abs(mix).max()
    if peak > 0.99:
        mix *= 0.99 / peak
    return mix.astype(np.float32)


def _fft_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Linear convolution, truncated to len(x) (numpy only: scipy.signal imports slowly)."""
    n = 1 << int(np.ceil(np.log2(len(x) + len(h))))
    y = np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(h, n), n)
    return y[: len(x)].astype(np.float32)


def _fft_filter(x: np.ndarray, gain, sr: int) -> np.ndarray:
    spec = np.fft.rfft(x)
    return np.fft.irfft(spec * gain(np.fft.rfftfreq(len(x), 1 / sr)), len(x)).astype(np.float32)
