"""The authors' waveform augmentation chain (CLMR / torchaudio-augmentations 0.2.4, which
VCMR's unpinned requirement installed in 2022), batched in torch on the input's device.

    chain = AugmentChain.from_config(load_config("music"))
    view_a = chain(batch)                 # batch: (B, T_src >= audio_length), any device
    view_b = chain(batch)                 # an independent second view (its own crop too)
    same = chain(batch, generator=torch.Generator().manual_seed(0))   # reproducible

The chain, in the reference's order, each effect applied to an item with its probability
(one module per effect):

==========  ==========================================================================
crop        random excerpt of ``audio_length`` samples (independent offset per item and
            per call, so the two views are placed independently in the item; trailing
            zero padding of files shorter than the excerpt read is not cropped from)
polarity    multiply by -1
noise       add white Gaussian noise whose std is U(0.0001, 0.01) x the clip's std
gain        U(-20, -1) dB
filters     50/50 low-pass U(2.2, 4) kHz or high-pass U(200, 1200) Hz: julius's
            windowed-sinc FIR (8 zero crossings, Hann window; high-pass = x - low-pass)
delay       (x + 0.5 x[n - d]) / 2, d uniform in {200, 250, ..., 450} ms
pitch       an integer number of cents uniform in [-700, 700] (0 and sub-semitone shifts
            included, as sox ``pitch`` in the reference), tempo kept, by a two-head
            delay-line shifter with 100 ms cross-faded grains (sox uses WSOLA)
reverb      sox ``reverb`` (its Freeverb network: 8 damped combs and 4 all-passes per
            channel, two channels from stereo-depth 100 mixed back to mono) with
            reverberance, HF damping and room scale each an integer uniform in [0, 99],
            wet gain 0 dB, pre-delay 0, dry kept; the network is linear and time
            invariant, so it is applied as its frequency response by FFT, per item, in one
            batched pass
==========  ==========================================================================

Every random number (offsets, masks, parameters, noise) is drawn for the whole batch before
any audio is processed, so the output depends only on the generator's state, never on
``chunk_size``. Effects are vectorised over the items that draw them: per-item parameters are
tensors, and each effect runs once on the selected rows. On CPU the batch is processed
``chunk_size`` items at a time, which keeps the working set of the FFT stages in cache (see
benchmarks/README.md); on other devices the whole batch goes at once.

Each effect is also a public function (``sinc_filter``, ``apply_delay``, ``pitch_shift``,
``sox_reverb``, ...) taking a (B, T) tensor and per-item parameters, so it can be checked on
known signals (tests/audio/augment/).
"""
from vcmr.audio.augment.chain import DEFAULT_CPU_CHUNK_SIZE, AugmentChain, AugmentParams
from vcmr.audio.augment.common import AugmentError, content_lengths, crop
from vcmr.audio.augment.delay import apply_delay
from vcmr.audio.augment.filters import sinc_filter, sinc_lowpass_kernels
from vcmr.audio.augment.gain import apply_gain
from vcmr.audio.augment.noise import add_white_noise
from vcmr.audio.augment.pitch import pitch_shift
from vcmr.audio.augment.polarity import polarity_inversion
from vcmr.audio.augment.reverb import sox_reverb, sox_reverb_response, sox_reverb_tail

__all__ = [
    "AugmentChain", "AugmentParams", "AugmentError", "crop", "content_lengths",
    "polarity_inversion", "add_white_noise", "apply_gain", "sinc_filter", "sinc_lowpass_kernels",
    "apply_delay", "pitch_shift", "sox_reverb", "sox_reverb_response", "sox_reverb_tail",
    "DEFAULT_CPU_CHUNK_SIZE",
]
