"""HEAR interface: shapes, timestamps, and agreement with the embedding API."""
import numpy as np
import pytest
import torch

from vcmr import hear
from vcmr.errors import VcmrError

from embed_helpers import SR, music, stage1_checkpoint


@pytest.fixture(scope="session")
def hear_model(tmp_path_factory):
    return hear.load_model(str(stage1_checkpoint(tmp_path_factory.mktemp("embed_models"))), device="cpu")


def _audio(n_sounds=2, seconds=0.6):
    return torch.from_numpy(np.stack([music(seconds, SR, seed=20 + i) for i in range(n_sounds)]))


def test_attributes(hear_model):
    assert isinstance(hear_model, torch.nn.Module)
    assert (hear_model.sample_rate, hear_model.scene_embedding_size, hear_model.timestamp_embedding_size) == (SR, 64, 64)


def test_scene_embeddings(hear_model):
    audio = _audio(3)
    emb = hear.get_scene_embeddings(audio, hear_model)
    assert emb.shape == (3, 64) and emb.dtype == torch.float32
    np.testing.assert_allclose(emb[1].numpy(), hear_model.model.embed_song(audio[1].numpy(), SR), rtol=1e-6)


def test_timestamp_embeddings(hear_model):
    audio = _audio(2, 0.6)  # 9600 samples
    emb, ts = hear.get_timestamp_embeddings(audio, hear_model)
    n = int(np.ceil(0.6 / 0.25))  # frames at 0, 250, 500 ms
    assert emb.shape == (2, n, 64) and ts.shape == (2, n)
    np.testing.assert_allclose(ts[0].numpy(), [0.0, 250.0, 500.0])
    assert torch.equal(ts[0], ts[1])
    # frame k is the window centred on its timestamp, zero-padded outside the sound
    seg = hear_model.model.segment_samples
    centre = 4000
    window = np.zeros(seg, np.float32)
    lo = centre - seg // 2
    window[max(0, -lo): max(0, -lo) + min(seg, 9600 - max(0, lo))] = audio[0, max(0, lo): lo + seg].numpy()
    expected = hear_model.model.embed_segments(window[None])[0]
    torch.testing.assert_close(emb[0, 1], expected, rtol=1e-5, atol=1e-6)


def test_timestamp_hop_option(tmp_path_factory):
    model = hear.load_model(str(stage1_checkpoint(tmp_path_factory.mktemp("embed_models"))), timestamp_hop_ms=50)
    emb, ts = hear.get_timestamp_embeddings(_audio(1, 0.2), model)
    assert emb.shape == (1, 4, 64)
    np.testing.assert_allclose(ts[0].numpy(), [0, 50, 100, 150])


def test_errors(hear_model):
    with pytest.raises(VcmrError, match="model_file_path"):
        hear.load_model("")
    with pytest.raises(VcmrError, match="n_sounds, n_samples"):
        hear.get_scene_embeddings(torch.zeros(100), hear_model)
    with pytest.raises(VcmrError, match="positive"):
        hear.HearModel(hear_model.model, timestamp_hop_ms=0)
