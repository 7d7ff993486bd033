"""Each augmentation checked on known signals (the reference's formulas: julius's FIR,
sox's reverb network run sample by sample, cents, the halved echo, relative noise), and the
chain's contract (shape, dtype, probabilities, reproducibility, per-item parameters)."""
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


def test_pitch_shift_by_cents():
    y = A.pitch_shift(sine(440.0), torch.tensor([0.5]))  # +50 cents, as the chain passes it
    expected = 440.0 * 2 ** (50 / 1200)  # 452.9 Hz
    spec = torch.fft.rfft(y * torch.hann_window(SR), n=8 * SR).abs()  # 1/8 Hz bins
    assert abs(spec.argmax().item() / 8 - expected) / expected < 0.005
    assert torch.equal(A.pitch_shift(sine(440.0), 0.0), sine(440.0))  # 0 cents: identity
    p = chain(pitch=1.0).sample(20000, 4000, generator=torch.Generator().manual_seed(0))
    cents = p.pitch_semitones * 100
    cents = cents.round()  # stored as cents / 100 in float32
    assert torch.allclose(p.pitch_semitones * 100, cents, atol=1e-3)
    assert cents.min() >= -700 and cents.max() <= 700
    assert (cents == 0).any() and (cents.remainder(100) != 0).float().mean() > 0.9
    old = AugmentChain(SR, 4000, pitch=1.0, pitch_unit="semitones").sample(512, 4000)
    assert set(old.pitch_semitones.tolist()) == set(range(-7, 0)) | set(range(1, 8))


def test_sinc_kernel_is_julius_design_and_filter_is_its_convolution():
    cutoff = torch.tensor([[2200.0 / SR], [1000.0 / SR]], dtype=torch.float64)
    k = A.sinc_lowpass_kernels(cutoff)
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
    y = A.sinc_filter(x, cutoff.flatten() * SR, SR, torch.tensor([True, False]))
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
    fir = A.sinc_filter(torch.cat([stop, keep]), cutoff, SR, lowpass)[:, middle]
    iir = A.biquad_filter(stop, cutoff, SR, lowpass)[:, middle]
    ref_db = rms_db(stop[:, middle]).item()
    assert ref_db - rms_db(fir[:1]).item() >= 40  # the FIR's stop band (measured ~62-72 dB)
    assert abs(rms_db(fir[1:]).item() - rms_db(keep[:, middle]).item()) < 0.1  # flat pass band
    if probe < SR / 2 - 1:
        assert ref_db - rms_db(iir).item() < 20  # the biquad: ~12 dB per octave


def sox_reverb_by_loop(x, reverberance, hf_damping, room_scale, sr=SR):
    """sox reverb.c's network (8 damped combs into 4 all-passes, two channels offset by the
    stereo spread, dry + 0.015 x wet, channels averaged), run sample by sample in float64."""
    a = -1 / math.log(1 - 0.3)
    b = 100 / (math.log(1 - 0.98) * a + 1)
    feedback = 1 - math.exp((reverberance - b) / (a * b))
    damping = hf_damping / 100 * 0.3 + 0.2
    scale, r = room_scale / 100 * 0.9 + 0.1, sr / 44100
    channels = []
    for offset in (0.0, 1.0):
        signs = [offset * (-1) ** i * 12 for i in range(12)]
        combs = [[[0.0] * int(scale * r * (n + signs[i]) + 0.5), 0, 0.0]
                 for i, n in enumerate(A.SOX_COMB_LENGTHS)]
        allpasses = [[[0.0] * int(r * (n + signs[8 + i]) + 0.5), 0]
                     for i, n in enumerate(A.SOX_ALLPASS_LENGTHS)]
        wet = []
        for v in x:
            acc = 0.0
            for c in combs:  # buffer, position, store
                buf, pos, store = c
                out = buf[pos]
                store = out + (store - out) * damping
                buf[pos] = v + store * feedback
                c[1], c[2] = (pos - 1) % len(buf), store
                acc += out
            for ap in allpasses:
                buf, pos = ap
                out = buf[pos]
                buf[pos] = acc + out * 0.5
                ap[1], acc = (pos - 1) % len(buf), out - acc
            wet.append(acc * 0.015)
        channels.append(wet)
    wet = torch.tensor(channels, dtype=torch.float64).mean(0)
    return (torch.tensor(x, dtype=torch.float64) + wet).clamp(-1, 1)


def test_sox_reverb_equals_its_network_run_sample_by_sample():
    x = torch.randn(3, 2500, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.2
    settings = torch.tensor([[50.0, 50.0, 100.0], [99.0, 0.0, 99.0], [0.0, 99.0, 0.0]],
                            dtype=torch.float64)
    y = A.sox_reverb(x, settings[:, 0], settings[:, 1], settings[:, 2], SR)  # batched
    for i, (rev, hf, room) in enumerate(settings.tolist()):
        ref = sox_reverb_by_loop(x[i].tolist(), rev, hf, room)
        assert (ref - x[i]).abs().max() > 0.05  # the reverb does something
        assert torch.allclose(y[i], ref, atol=1e-5)  # measured ~1e-6 (wet peaks ~0.15)
    y32 = A.sox_reverb(x.float(), settings[:, 0], settings[:, 1], settings[:, 2], SR)
    assert torch.allclose(y32.double(), y, atol=1e-5)  # float32: measured ~2e-6


def impulse_wet(reverberance, hf_damping, room_scale, n=3 * SR):
    x = torch.zeros(1, n)
    x[0, 0] = 0.5
    y = A.sox_reverb(x, reverberance, hf_damping, room_scale, SR)
    return y - x


def decay_time(wet, drop_db=30.0):
    """Seconds until the wet energy still to come is ``drop_db`` below its total."""
    remaining = wet[0].pow(2).flip(0).cumsum(0).flip(0)
    return (remaining > remaining[0] * 10 ** (-drop_db / 10)).sum().item() / SR


def test_sox_reverb_decays_longer_with_reverberance_and_room_scale():
    times = [decay_time(impulse_wet(r, 50, 100)) for r in (0, 50, 99)]
    assert times[0] < times[1] < times[2] and times[2] > 3 * times[0]
    rooms = [decay_time(impulse_wet(70, 50, s)) for s in (0, 50, 99)]
    assert rooms[0] < rooms[1] < rooms[2]
    tails = [A.sox_reverb_tail(r, s, SR) for r, s in ((0, 0), (50, 50), (99, 99))]
    assert tails[0] < tails[1] < tails[2] and 10 * SR < tails[2] < 14 * SR  # ~12 s to -60 dB


def test_sox_reverb_hf_damping_darkens_the_tail_and_keeps_the_dry_signal():
    def high_share(wet):  # energy above 4 kHz in the tail after 100 ms
        spec = torch.fft.rfft(wet[0, SR // 10:]).abs() ** 2
        return (spec[int(4000 / SR * (wet.shape[1] - SR // 10)):].sum() / spec.sum()).item()
    assert high_share(impulse_wet(80, 99, 80)) < 0.5 * high_share(impulse_wet(80, 0, 80))
    wet = impulse_wet(50, 50, 50)
    first_comb = int((0.5 * 0.9 + 0.1) * SR / 44100 * (1116 - 12) + 0.5)  # shortest delay
    assert wet[0, :first_comb].abs().max() < 1e-6  # before the first echo: the dry alone
    assert wet[0, first_comb:].abs().max() > 1e-3


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


def test_delay_is_the_reference_halved_echo():
    x = torch.zeros(2, 8000)
    x[:, 100] = 1.0
    y = A.delay(x, torch.tensor([3200, 4800]))  # 200 ms and 300 ms
    # (x + 0.5 x[n - d]) / 2: the direct sound at 0.5, the echo at 0.25
    assert y[0, 100] == pytest.approx(0.5) and y[0, 3300] == pytest.approx(0.25)
    assert y[1, 4900] == pytest.approx(0.25) and (y != 0).sum() == 4
    noise = torch.randn(1, 16000)
    echo = A.delay(noise, 4000)
    ac = torch.fft.irfft(torch.fft.rfft(echo, n=32000).abs() ** 2)[0, 1:8000]
    assert ac.argmax().item() + 1 == 4000
    params = chain(delay=1.0).sample(256, 4000, generator=torch.Generator().manual_seed(0))
    assert sorted(set((params.delay_samples * 1000 // SR).tolist())) == [200, 250, 300, 350, 400, 450]


def test_polarity_and_gain():
    x = torch.randn(3, 500)
    assert torch.equal(A.polarity_inversion(x), -x)
    y = A.apply_gain(x, torch.tensor([-6.0, 0.0, -20.0]))
    assert torch.allclose(rms_db(y) - rms_db(x), torch.tensor([-6.0, 0.0, -20.0]), atol=1e-4)


def test_white_noise_std_relative_to_the_signal():
    x = sine(440.0, batch=2) * torch.tensor([[0.3], [0.05]])
    y = A.add_white_noise(x, torch.tensor([0.01, 0.0001]),
                          generator=torch.Generator().manual_seed(1))
    ratio = (y - x).std(1) / x.std(1)
    assert torch.allclose(ratio, torch.tensor([0.01, 0.0001]), rtol=0.03)
    spectrum = torch.fft.rfft(y[0] - x[0]).abs() ** 2  # white: flat on average
    bands = spectrum[1:].reshape(8, -1).mean(-1)
    assert bands.max() / bands.min() < 1.5
    r = chain(noise=1.0).sample(512, 4000, generator=torch.Generator().manual_seed(0)).noise_std_ratio
    assert 0.0001 <= r.min() < 0.0012 and 0.0089 < r.max() <= 0.01


def test_noise_tail_reverb_spreads_an_impulse_with_decaying_energy():
    x = torch.zeros(1, 20000)
    x[0, 0] = 1.0
    y = A.noise_tail_reverb(x, 0.5, -6.0, SR, generator=torch.Generator().manual_seed(0))
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
    for name in ("offset", "noise_std_ratio", "gain_db", "filter_cutoff_hz", "delay_samples",
                 "pitch_semitones", "reverb_reverberance", "reverb_hf_damping",
                 "reverb_room_scale"):
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


def test_chain_draws_the_reference_parameters_and_keeps_the_old_effects_by_name():
    p = chain(reverb=1.0, filters=1.0).sample(2048, 4000, generator=torch.Generator().manual_seed(0))
    for name in ("reverb_reverberance", "reverb_hf_damping", "reverb_room_scale"):
        v = getattr(p, name)
        assert torch.equal(v, v.round()) and v.min() == 0 and v.max() == 99, name
    low = p.filter_cutoff_hz[p.filter_lowpass]
    high = p.filter_cutoff_hz[~p.filter_lowpass]
    assert 0.45 < p.filter_lowpass.float().mean() < 0.55
    assert 2200 <= low.min() and low.max() <= 4000 and 200 <= high.min() and high.max() <= 1200
    x = torch.randn(3, 4000)
    for kw in (dict(filter_design="biquad"), dict(reverb_model="noise_tail"),
               dict(pitch_unit="semitones")):
        y = AugmentChain(SR, 4000, **kw)(x, torch.Generator().manual_seed(0))
        assert y.shape == (3, 4000) and torch.isfinite(y).all()
    with pytest.raises(AugmentError, match="reverb_model"):
        AugmentChain(SR, 4000, reverb_model="freeverb2")


def test_sinc_chain_filter_equals_the_function():
    x = torch.randn(4, 4000)
    ch = chain(filters=1.0)
    p = ch.sample(4, 4000, generator=torch.Generator().manual_seed(2))
    y = ch.apply(x, p)
    ref = A.sinc_filter(x, p.filter_cutoff_hz, SR, p.filter_lowpass)
    assert torch.allclose(y, ref, atol=1e-6)


def test_two_views_are_cropped_independently_from_the_whole_excerpt():
    x = torch.randn(1, 15 * SR).repeat(64, 1)
    ch = chain(length=4000)
    a = ch.sample(64, x.shape[1], generator=torch.Generator().manual_seed(0)).offset
    b = ch.sample(64, x.shape[1], generator=torch.Generator().manual_seed(1)).offset
    assert (a != b).all() and (a - b).abs().float().mean() > 3 * SR  # not tied to each other
    assert a.max() > 10 * SR and a.min() < 2 * SR  # spread over the 15 s window


def test_config_defaults_are_the_reference_chain():
    cfg = load_config("mus")
    assert (cfg.filter_design, cfg.pitch_unit, cfg.reverb_model) == ("sinc", "cents", "sox")
    assert cfg.excerpt_seconds == 15.0
    ch = AugmentChain.from_config(cfg)
    assert (ch.filter_design, ch.pitch_unit, ch.reverb_model) == ("sinc", "cents", "sox")
    old = load_config("mus", overrides=["--filter_design", "biquad", "--pitch_unit", "semitones",
                                        "--reverb_model", "noise_tail"])
    ch = AugmentChain.from_config(old)
    assert (ch.filter_design, ch.pitch_unit, ch.reverb_model) == ("biquad", "semitones", "noise_tail")


def test_crops_avoid_the_zero_padding_of_short_files():
    x = torch.zeros(32, 15 * SR)
    x[:, : SR] = torch.randn(32, SR)  # a 1 s file read into a 15 s excerpt
    x[0] = torch.randn(15 * SR)  # a full-length one
    assert A.content_lengths(x, 4000).tolist() == [15 * SR] + [SR] * 31
    p = chain().sample(32, A.content_lengths(x, 4000), generator=torch.Generator().manual_seed(0))
    assert (p.offset[1:] <= SR - 4000).all() and p.offset[1:].unique().numel() > 10
    y = chain()(x)
    assert (y[1:].abs().amax(1) > 0).all()  # no crop is silence
    assert A.content_lengths(torch.zeros(2, 5000), 4000).tolist() == [5000, 5000]
