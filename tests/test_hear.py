"""HEAR interface: the official validator's checks, at every rate vcmr trains, and agreement
with the embedding API.

``hearvalidator`` itself needs TensorFlow and Python <= 3.9 wheels, so CI does not install it;
``vcmr.hear_validator.validate`` repeats its checks (hearvalidator 2021.0.x ``ValidateModel``): the module is a
torch Module, its sample rate is one HEAR accepts, embedding sizes are ints, timestamp embeddings
of white noise batches (2 x 1.07 s, 1.98 s, 4.0 s) have consistent float32 shapes, regular
spacing (<= 1 ms deviation) of at most 50 ms (the validator's warning), start at 0 and end
within one hop (and 50 ms) of the end of the audio without passing it; scene embeddings of
4 x 2.74 s are float32 (4, scene_embedding_size).
"""
import warnings

import numpy as np
import pytest
import torch

from vcmr import hear
from vcmr.errors import VcmrError
from vcmr.hear_validator import validate

from embed_helpers import SR, music, stage1_checkpoint, tiny_model


@pytest.mark.parametrize("model_rate, declared", [(8000, 16000), (16000, 16000), (22050, 22050)])
def test_validator_checks_pass_without_warnings(model_rate, declared):
    model = hear.HearModel(tiny_model(sample_rate=model_rate))
    assert model.sample_rate == declared and model.model.sample_rate == model_rate
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the wrapper itself warns about nothing
        assert validate(model) == []


def test_a_250_ms_hop_would_warn():
    """The check is live: a 250 ms hop trips the validator's warning."""
    assert any("> 50 ms" in w for w in validate(hear.HearModel(tiny_model(sample_rate=16000), timestamp_hop_ms=250)))


@pytest.mark.parametrize("rate, expected", [(8000, 16000), (16000, 16000), (16001, 22050), (22050, 22050),
                                            (24000, 32000), (32000, 32000), (32001, 44100), (44100, 44100), (48000, 48000), (96000, 48000)])
def test_declared_rate(rate, expected):
    assert hear.hear_rate(rate) == expected


def test_resampled_inside_matches_embedding_api():
    """An 8 kHz model given 16 kHz audio embeds what EmbeddingModel.embed_song embeds."""
    model = hear.HearModel(tiny_model(sample_rate=8000))
    audio = torch.from_numpy(np.stack([music(1.3, 16000, seed=s) for s in (1, 2)]))
    scene = hear.get_scene_embeddings(audio, model)
    for i in range(2):
        np.testing.assert_allclose(scene[i].numpy(), model.model.embed_song(audio[i].numpy(), 16000),
                                   rtol=1e-4, atol=1e-5)


def test_timestamps_reach_the_end_with_exact_counts():
    assert len(hear.timestamps_ms(48000 * 1200, 48000, 50.0)) == 24001  # 20 min at 48 kHz
    ts = hear.timestamps_ms(22050 * 3 + 100, 22050, 50.0)
    assert ts[-1] == 3000.0 and len(ts) == 61
    ts = hear.timestamps_ms(44100 * 60, 44100, 25.0)  # hop of 1102.5 samples: no drift
    assert len(ts) == 2401 and ts[-1] == 60000.0
    assert len(hear.timestamps_ms(0, 16000, 50.0)) == 1


def test_batch_equals_one_at_a_time_and_batch_size_is_free():
    model = hear.HearModel(tiny_model(sample_rate=22050), batch_size=3)
    audio = torch.rand((3, 22050)) * 2 - 1
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    one, ts1 = hear.get_timestamp_embeddings(audio[1:2], hear.HearModel(tiny_model(sample_rate=22050), batch_size=50))
    torch.testing.assert_close(emb[1:2], one, rtol=1e-5, atol=1e-6)
    assert torch.equal(ts[1:2], ts1) and torch.equal(ts[0], ts[2])


def test_empty_batch_gives_empty_outputs():
    model = hear.HearModel(tiny_model(sample_rate=16000))
    emb, ts = hear.get_timestamp_embeddings(torch.zeros(0, 16000), model)
    assert emb.shape == (0, 21, 64) and ts.shape == (0, 21)
    assert hear.get_scene_embeddings(torch.zeros(0, 16000), model).shape == (0, 64)


@pytest.fixture(scope="session")
def hear_model(tmp_path_factory):
    return hear.load_model(str(stage1_checkpoint(tmp_path_factory.mktemp("embed_models"))), device="cpu")


def _audio(n_sounds=2, seconds=0.6):
    return torch.from_numpy(np.stack([music(seconds, SR, seed=20 + i) for i in range(n_sounds)]))


def test_trained_checkpoint(hear_model):
    assert isinstance(hear_model, torch.nn.Module)
    assert (hear_model.sample_rate, hear_model.scene_embedding_size, hear_model.timestamp_embedding_size) == (SR, 64, 64)
    assert hear_model.timestamp_hop_ms == 50.0
    audio = _audio(3)
    emb = hear.get_scene_embeddings(audio, hear_model)
    assert emb.shape == (3, 64) and emb.dtype == torch.float32
    np.testing.assert_allclose(emb[1].numpy(), hear_model.model.embed_song(audio[1].numpy(), SR), rtol=1e-5, atol=1e-6)


def test_timestamp_embedding_is_the_centred_window(hear_model):
    audio = _audio(2, 0.6)  # 9600 samples: frames at 0, 50, ..., 600 ms
    emb, ts = hear.get_timestamp_embeddings(audio, hear_model)
    assert emb.shape == (2, 13, 64) and ts.shape == (2, 13)
    np.testing.assert_allclose(ts[0].numpy(), np.arange(13) * 50.0)
    seg = hear_model.model.segment_samples
    for k, centre in ((5, 4000), (12, 9600)):  # inside, and at the very end (zero-padded)
        lo = centre - seg // 2
        window = np.zeros(seg, np.float32)
        part = audio[0, max(0, lo): lo + seg].numpy()
        window[max(0, -lo): max(0, -lo) + len(part)] = part
        expected = hear_model.model.embed_segments(window[None])[0]
        torch.testing.assert_close(emb[0, k], expected, rtol=1e-5, atol=1e-6)


def test_errors(hear_model):
    with pytest.raises(VcmrError, match="model_file_path"):
        hear.load_model("")
    with pytest.raises(VcmrError, match="n_sounds, n_samples"):
        hear.get_scene_embeddings(torch.zeros(100), hear_model)
    with pytest.raises(VcmrError, match="NaN"):
        hear.get_scene_embeddings(torch.full((1, 100), float("nan")), hear_model)
    with pytest.raises(VcmrError, match="positive"):
        hear.HearModel(hear_model.model, timestamp_hop_ms=0)
    with pytest.raises(VcmrError, match="batch_size"):
        hear.HearModel(hear_model.model, batch_size=0)


def test_integer_pcm_scaled_like_floats_and_bools_refused():
    """Issue 23 rows 1 and 15: int16/int32/uint8 HEAR audio is scaled to [-1, 1] (it was
    cast unscaled); a bf16 tensor is converted; bool/complex samples and ``True`` as a
    batch size or hop are clear errors."""
    model = hear.HearModel(tiny_model(sample_rate=16000))
    x = torch.from_numpy(0.5 * music(1.0, 16000, seed=3)).unsqueeze(0)
    want = hear.get_scene_embeddings(x, model)
    pcm16 = torch.round(x * 32767).to(torch.int16)
    for ints, floats in ((pcm16, pcm16 / 32768.0), (pcm16.to(torch.int32) * 65536, pcm16 / 32768.0)):
        torch.testing.assert_close(hear.get_scene_embeddings(ints, model),
                                   hear.get_scene_embeddings(floats.float(), model))
    assert torch.nn.functional.cosine_similarity(hear.get_scene_embeddings(pcm16, model), want).item() > 0.9999
    u8 = torch.round(x * 127 + 128).to(torch.uint8)
    torch.testing.assert_close(hear.get_scene_embeddings(u8, model),
                               hear.get_scene_embeddings((u8.float() - 128) / 128, model))
    torch.testing.assert_close(hear.get_scene_embeddings(x.bfloat16(), model),
                               hear.get_scene_embeddings(x.bfloat16().float(), model))
    for bad in (x > 0, x.to(torch.complex64), pcm16.to(torch.int64)):
        with pytest.raises(VcmrError, match="HEAR audio has samples of type"):
            hear.get_scene_embeddings(bad, model)
    with pytest.raises(VcmrError, match="batch_size"):
        hear.HearModel(model.model, batch_size=True)
    with pytest.raises(VcmrError, match="timestamp_hop_ms"):
        hear.HearModel(model.model, timestamp_hop_ms=True)
