"""The chain's contract: shape, dtype, probabilities, reproducibility, per-item parameters,
independent crops, and the reference's parameter ranges."""
import pytest
import torch

from augment_helpers import SR, chain, dominant_hz, sine
from vcmr.audio.augment import AugmentChain, AugmentError
from vcmr.config import ConfigError, load_config


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
    cfg = load_config("music", overrides=["--transforms_delay", "0.5"])
    ch = AugmentChain.from_config(cfg)
    assert ch.audio_length == 98415 and ch.p["delay"] == 0.5 and ch.p["polarity"] == 0.8
    with pytest.raises(AugmentError, match="shorter than audio_length"):
        ch(torch.zeros(2, 1000))
    with pytest.raises(AugmentError, match="batch, samples"):
        ch(torch.zeros(98415))
    with pytest.raises(AugmentError, match="transforms_gain"):
        AugmentChain(SR, 100, gain=1.5)


def test_chain_draws_the_reference_parameters():
    p = chain(reverb=1.0, filters=1.0).sample(2048, 4000, generator=torch.Generator().manual_seed(0))
    for name in ("reverb_reverberance", "reverb_hf_damping", "reverb_room_scale"):
        v = getattr(p, name)
        assert torch.equal(v, v.round()) and v.min() == 0 and v.max() == 99, name
    low = p.filter_cutoff_hz[p.filter_lowpass]
    high = p.filter_cutoff_hz[~p.filter_lowpass]
    assert 0.45 < p.filter_lowpass.float().mean() < 0.55
    assert 2200 <= low.min() and low.max() <= 4000 and 200 <= high.min() and high.max() <= 1200


def test_two_views_are_cropped_independently_from_the_whole_excerpt():
    x = torch.randn(1, 15 * SR).repeat(64, 1)
    ch = chain(length=4000)
    a = ch.sample(64, x.shape[1], generator=torch.Generator().manual_seed(0)).offset
    b = ch.sample(64, x.shape[1], generator=torch.Generator().manual_seed(1)).offset
    assert (a != b).all() and (a - b).abs().float().mean() > 3 * SR  # not tied to each other
    assert a.max() > 10 * SR and a.min() < 2 * SR  # spread over the 15 s window


def test_config_defaults_are_the_reference_chain():
    cfg = load_config("music")
    assert cfg.excerpt_seconds == 15.0
    ch = AugmentChain.from_config(cfg)
    assert ch.p == dict(polarity=0.8, noise=0.01, gain=0.3, filters=0.8, delay=0.3, pitch=0.6,
                        reverb=0.6)
    for key in ("filter_design", "pitch_unit", "reverb_model"):  # one version of each effect
        with pytest.raises(ConfigError, match="unknown config key"):
            load_config("music", overrides=[f"--{key}", "x"])
