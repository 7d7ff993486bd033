"""Pitch shift: frequencies scaled by 2^(semitones/12), tempo and loudness kept, cents."""
import pytest
import torch

from augment_helpers import SR, chain, dominant_hz, rms_db, sine
from vcmr.audio.augment import pitch_shift


@pytest.mark.parametrize("semitones", [12, -12, 7, -5])
def test_pitch_shift_scales_the_dominant_frequency(semitones):
    y = pitch_shift(sine(440.0), semitones)
    expected = 440.0 * 2 ** (semitones / 12)
    assert abs(dominant_hz(y).item() - expected) / expected < 0.02
    assert y.shape == (1, SR)
    assert abs(rms_db(y).item() - rms_db(sine(440.0)).item()) < 1.0  # loudness kept


def test_pitch_shift_per_item_and_tempo_preserved():
    x = sine(440.0, batch=3)
    x[:, SR // 2:] = 0  # a tone, then silence: the onset of silence must not move
    y = pitch_shift(x, torch.tensor([0.0, 12.0, -7.0]))
    assert torch.allclose(y[0], x[0], atol=1e-6)
    assert abs(dominant_hz(y[1:2, : SR // 2]).item() - 880) < 880 * 0.02
    for row in y[1:]:
        env = row.abs().unfold(0, 400, 400).amax(-1)  # 25 ms windows
        # the heads reach half a grain around: the edge stays near 0.5 s
        assert env[: 18].min() > 0.3 and env[24:].max() < 0.1


def test_pitch_shift_by_cents():
    y = pitch_shift(sine(440.0), torch.tensor([0.5]))  # +50 cents, as the chain passes it
    expected = 440.0 * 2 ** (50 / 1200)  # 452.9 Hz
    spec = torch.fft.rfft(y * torch.hann_window(SR), n=8 * SR).abs()  # 1/8 Hz bins
    assert abs(spec.argmax().item() / 8 - expected) / expected < 0.005
    assert torch.equal(pitch_shift(sine(440.0), 0.0), sine(440.0))  # 0 cents: identity
    p = chain(pitch=1.0).sample(20000, 4000, generator=torch.Generator().manual_seed(0))
    cents = p.pitch_semitones * 100
    cents = cents.round()  # stored as cents / 100 in float32
    assert torch.allclose(p.pitch_semitones * 100, cents, atol=1e-3)
    assert cents.min() >= -700 and cents.max() <= 700
    assert (cents == 0).any() and (cents.remainder(100) != 0).float().mean() > 0.9
