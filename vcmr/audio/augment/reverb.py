"""sox's ``reverb`` (its Freeverb network) on mono clips, applied as its frequency response.

The network is 8 damped combs into 4 all-passes per output channel, two channels (stereo
depth 100) mixed back to mono. It is linear and time invariant, so each item's response is
computed once on an FFT grid and applied by batched FFT convolution (``sox_reverb``).
"""
from __future__ import annotations

import functools
import math

import torch

from vcmr.audio.augment.common import per_item

REVERB_PERCENT = (0, 99)  # torch.randint(0, 100): integers 0..99

# sox reverb.c (Freeverb): delay lengths at 44.1 kHz, the stereo spread, the feedback range.
SOX_COMB_LENGTHS = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
SOX_ALLPASS_LENGTHS = (225, 341, 441, 556)
SOX_STEREO_ADJUST = 12
SOX_TAIL_DB = 60.0  # sox_reverb_tail: samples until the response decayed by this much
SOX_ALIAS_FLOOR = 1e-5  # sox_reverb: how much the exponential window shrinks the wrapped tail
SOX_BLOCK_FLOATS = 1 << 18  # sox_reverb on CPU: buffer size (floats) of its per-item blocks


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
    sample by sample: within 2e-6 in float32 and float64, tests/audio/augment/test_reverb.py).
    """
    n = x.shape[1]
    rev, damp, room = (per_item(v, x, torch.float64).reshape(-1)
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
