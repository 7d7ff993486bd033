"""Each augmentation checked on known signals, and the chain's contract (shape, dtype,
probabilities, reproducibility, per-item parameters)."""
import math

import pytest
import torch

from vcmr.audio import augment as A
from vcmr.audio.augment import AugmentChain, AugmentError
from vcmr.config import load_config

SR = 16000


def sine(freq, seconds=1.0, sr=SR, batch=1):
    t = torch.arange(int(seconds * sr)) / sr
    return torch.sin(2 * math.pi * freq * t).repeat(batch, 1)


def dominant_hz(x, sr=SR):
    spec = torch.fft.rfft(x * torch.hann_window(x.shape[-1]), dim=-1).abs()
    return spec.argmax(-1).float() * sr / x.shape[-1]


def rms_db(x):
    return 10 * torch.log10(x.pow(2).mean(-1))


def chain(length=4000, **probs):
    p = {e: 0.0 for e in AugmentChain.EFFECTS}
    p.update(probs)
    return AugmentChain(SR, length, **p)


@pytest.mark.parametrize("method", ["delay_line", "phase_vocoder"])
@pytest.mark.parametrize("semitones", [12, -12, 7, -5])
def test_pitch_shift_scales_the_dominant_frequency(semitones, method):
    y = A.pitch_shift(sine(440.0), semitones, method=method)
    expected = 440.0 * 2 ** (semitones / 12)
    assert abs(dominant_hz(y).item() - expected) / expected < 0.02
    assert y.shape == (1, SR)
    assert abs(rms_db(y).item() - rms_db(sine(440.0)).item()) < 1.0  # loudness kept


@pytest.mark.parametrize("method", ["delay_line", "phase_vocoder"])
def test_pitch_shift_per_item_and_tempo_preserved(method):
    x = sine(440.0, batch=3)
    x[:, SR // 2:] = 0  # a tone, then silence: the onset of silence must not move
    y = A.pitch_shift(x, torch.tensor([0.0, 12.0, -7.0]), method=method)
    assert torch.allclose(y[0], x[0], atol=1e-6)
    assert abs(dominant_hz(y[1:2, : SR // 2]).item() - 880) < 880 * 0.02
    late = 22 if method == "phase_vocoder" else 24  # the heads reach half a grain around
    for row in y[1:]:
        env = row.abs().unfold(0, 400, 400).amax(-1)  # 25 ms windows
        assert env[: 18].min() > 0.3 and env[late:].max() < 0.1  # the edge stays near 0.5 s
    with pytest.raises(AugmentError, match="method"):
        A.pitch_shift(x, 1.0, method="sox")


def test_lowpass_attenuates_high_sine_and_highpass_the_low_one():
    hi, lo = sine(6000.0), sine(1000.0 / 6)
    low = A.biquad_filter(torch.cat([hi, lo]), 1000.0, SR, lowpass=True)
    assert rms_db(hi) - rms_db(low[:1]) >= 20
    assert abs(rms_db(lo) - rms_db(low[1:])).item() < 1.0  # passband kept
    high = A.biquad_filter(torch.cat([hi, lo]), 1000.0, SR, lowpass=False)
    assert rms_db(lo) - rms_db(high[1:]) >= 20
    assert abs(rms_db(hi) - rms_db(high[:1])).item() < 1.0


def test_biquad_matches_its_difference_equation():
    x = torch.randn(2, 3000, dtype=torch.float64)
    cutoff = torch.tensor([2500.0, 600.0], dtype=torch.float64)
    lowpass = torch.tensor([True, False])
    y = A.biquad_filter(x, cutoff, SR, lowpass)
    b0, b1, b2, a1, a2 = (c.squeeze(1) for c in A._biquad_coefficients(
        cutoff.reshape(-1, 1), SR, lowpass.reshape(-1, 1), 0.7071))
    ref = torch.zeros_like(x)
    for n in range(x.shape[1]):  # direct-form I IIR, the textbook definition
        acc = b0 * x[:, n]
        if n >= 1:
            acc = acc + b1 * x[:, n - 1] - a1 * ref[:, n - 1]
        if n >= 2:
            acc = acc + b2 * x[:, n - 2] - a2 * ref[:, n - 2]
        ref[:, n] = acc
    assert torch.allclose(y, ref, atol=1e-9)


def test_delay_adds_echo_at_the_lag():
    x = torch.zeros(2, 8000)
    x[:, 100] = 1.0
    y = A.delay(x, torch.tensor([3200, 4800]))  # 200 ms and 300 ms
    assert y[0, 100] == 1.0 and y[0, 3300] == pytest.approx(0.5) and y[1, 4900] == pytest.approx(0.5)
    assert (y != 0).sum() == 4
    noise = torch.randn(1, 16000)
    echo = A.delay(noise, 4000)
    ac = torch.fft.irfft(torch.fft.rfft(echo, n=32000).abs() ** 2)[0, 1:8000]
    assert ac.argmax().item() + 1 == 4000


def test_polarity_and_gain():
    x = torch.randn(3, 500)
    assert torch.equal(A.polarity_inversion(x), -x)
    y = A.apply_gain(x, torch.tensor([-6.0, 0.0, -20.0]))
    assert torch.allclose(rms_db(y) - rms_db(x), torch.tensor([-6.0, 0.0, -20.0]), atol=1e-4)


def test_white_noise_at_configured_snr():
    x = sine(440.0, batch=2) * 0.3
    y = A.add_white_noise(x, torch.tensor([20.0, 50.0]),
                          generator=torch.Generator().manual_seed(1))
    snr = rms_db(x) - rms_db(y - x)
    assert torch.allclose(snr, torch.tensor([20.0, 50.0]), atol=0.3)
    spectrum = torch.fft.rfft(y[0] - x[0]).abs() ** 2  # white: flat on average
    bands = spectrum[1:].reshape(8, -1).mean(-1)
    assert bands.max() / bands.min() < 1.5


def test_reverb_spreads_an_impulse_with_decaying_energy():
    x = torch.zeros(1, 20000)
    x[0, 0] = 1.0
    y = A.reverb(x, 0.5, -6.0, SR, generator=torch.Generator().manual_seed(0))
    assert y[0, 0] == pytest.approx(1.0, abs=1e-4)  # the direct path
    tail = y[0, 1:]
    assert 10 * math.log10(tail.pow(2).sum().item()) == pytest.approx(-6.0, abs=0.1)
    energy = tail[: 12000].reshape(6, -1).pow(2).sum(-1)  # 6 windows of 125 ms
    assert torch.all(energy[1:] < energy[:-1])
    decay_db = 10 * torch.log10(energy[0] / energy[4])  # 0.5 s apart = one RT60
    assert 50 < decay_db < 70
    assert tail[8000:].abs().max() < 1e-2  # nothing audible past one RT60


def test_synthetic_impulse_response_is_batched():
    ir = A.synthetic_impulse_response(torch.tensor([0.2, 1.0]), torch.tensor([-12.0, -3.0]),
                                      SR, 16000, generator=torch.Generator().manual_seed(0))
    assert ir.shape == (2, 16000) and torch.all(ir[:, 0] == 1)
    assert ir[0, 8000:].abs().max() < ir[1, 8000:].abs().max()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_chain_preserves_shape_dtype_and_is_finite(dtype):
    x = torch.randn(5, 6000).to(dtype)
    y = chain(**{e: 1.0 for e in AugmentChain.EFFECTS})(x)
    assert y.shape == (5, 4000) and y.dtype == dtype and y.device == x.device
    assert torch.isfinite(y.float()).all()


def test_probability_zero_is_a_crop():
    x = torch.randn(4, 7000)
    y = chain()(x)
    for i in range(4):  # each row is an excerpt of its own input row
        hits = [o for o in range(3001) if torch.equal(x[i, o: o + 4000], y[i])]
        assert len(hits) == 1
    same = torch.randn(4, 4000)
    assert torch.equal(chain()(same), same)


def test_probability_one_always_applies():
    x = torch.randn(16, 4000)
    params = chain(**{e: 1.0 for e in AugmentChain.EFFECTS}).sample(16, 4000)
    for e in AugmentChain.EFFECTS:
        assert getattr(params, e).all()
    y = chain(polarity=1.0)(x)
    assert torch.equal(y, -x)


def test_same_generator_same_output_and_chunking_does_not_matter():
    x = torch.randn(6, 5000)
    full = {e: 0.7 for e in AugmentChain.EFFECTS}
    ys = [AugmentChain(SR, 4000, **full, chunk_size=c)(x, torch.Generator().manual_seed(3))
          for c in (None, 1, 4)]
    # equal up to float32 rounding (batched FFTs round differently; signal std is 1)
    assert torch.allclose(ys[0], ys[1], atol=1e-3) and torch.allclose(ys[0], ys[2], atol=1e-3)
    again = AugmentChain(SR, 4000, **full, chunk_size=None)(x, torch.Generator().manual_seed(3))
    assert torch.equal(again, ys[0])
    other = AugmentChain(SR, 4000, **full)(x, torch.Generator().manual_seed(4))
    assert not torch.allclose(ys[0], other)


def test_items_get_different_parameters():
    params = chain(**{e: 0.5 for e in AugmentChain.EFFECTS}).sample(
        64, 8000, generator=torch.Generator().manual_seed(0))
    for name in ("offset", "noise_snr_db", "gain_db", "filter_cutoff_hz", "delay_samples",
                 "pitch_semitones", "reverb_rt60_s", "reverb_wet_db"):
        assert getattr(params, name).unique().numel() > 3, name
    for e in AugmentChain.EFFECTS:
        assert 0 < getattr(params, e).sum() < 64, e
    x = sine(440.0, batch=4)[:, :4000]
    y = chain(pitch=1.0)(x)  # identical inputs, different shifts
    assert dominant_hz(y).unique().numel() > 1


def test_from_config_and_errors():
    cfg = load_config("mus", overrides=["--transforms_delay", "0.5"])
    ch = AugmentChain.from_config(cfg)
    assert ch.audio_length == 98415 and ch.p["delay"] == 0.5 and ch.p["polarity"] == 0.8
    with pytest.raises(AugmentError, match="shorter than audio_length"):
        ch(torch.zeros(2, 1000))
    with pytest.raises(AugmentError, match="batch, samples"):
        ch(torch.zeros(98415))
    with pytest.raises(AugmentError, match="transforms_gain"):
        AugmentChain(SR, 100, gain=1.5)
