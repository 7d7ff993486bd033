"""sox's reverb: the batched FFT form equals its network run sample by sample; decay and
damping follow the parameters."""
import math

import torch

from augment_helpers import SR
from vcmr.audio.augment import sox_reverb, sox_reverb_tail
from vcmr.audio.augment.reverb import SOX_ALLPASS_LENGTHS, SOX_COMB_LENGTHS


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
                 for i, n in enumerate(SOX_COMB_LENGTHS)]
        allpasses = [[[0.0] * int(r * (n + signs[8 + i]) + 0.5), 0]
                     for i, n in enumerate(SOX_ALLPASS_LENGTHS)]
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
    y = sox_reverb(x, settings[:, 0], settings[:, 1], settings[:, 2], SR)  # batched
    for i, (rev, hf, room) in enumerate(settings.tolist()):
        ref = sox_reverb_by_loop(x[i].tolist(), rev, hf, room)
        assert (ref - x[i]).abs().max() > 0.05  # the reverb does something
        assert torch.allclose(y[i], ref, atol=1e-5)  # measured ~1e-6 (wet peaks ~0.15)
    y32 = sox_reverb(x.float(), settings[:, 0], settings[:, 1], settings[:, 2], SR)
    assert torch.allclose(y32.double(), y, atol=1e-5)  # float32: measured ~2e-6


def impulse_wet(reverberance, hf_damping, room_scale, n=3 * SR):
    x = torch.zeros(1, n)
    x[0, 0] = 0.5
    y = sox_reverb(x, reverberance, hf_damping, room_scale, SR)
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
    tails = [sox_reverb_tail(r, s, SR) for r, s in ((0, 0), (50, 50), (99, 99))]
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
