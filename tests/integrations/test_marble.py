"""vcmr models as MARBLE v2 encoders (vcmr/integrations/marble.py, docs/marble.md)."""
import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from vcmr.errors import VcmrError
from vcmr.integrations.marble import VcmrEncoder, token_centres
from vcmr.io.model_file import save_model_file

from embed_helpers import SR, music, tiny_model

SECONDS = 30


@pytest.fixture(scope="module")
def clips():
    """Two 30 s clips of synthetic music at the tiny model's rate."""
    return torch.from_numpy(np.stack([music(SECONDS, SR, seed=1), music(SECONDS, SR, seed=2, tags=("drums",))]))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, clips):
    """The tiny tagging model with BatchNorm statistics measured on the clips: with the default
    statistics (mean 0, variance 1) its random weights give nearly the same vector for any input,
    and the tests below could not tell one window from another."""
    model = tiny_model("tagging", seed=5)
    encoder, seg = model.net.encoder, model.segment_samples
    for m in encoder.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.momentum = None  # a plain average over the calibration batch
            m.reset_running_stats()
    encoder.train()
    with torch.no_grad():
        encoder(clips[:, : clips.shape[1] // seg * seg].reshape(-1, seg))
    encoder.eval()
    path = tmp_path_factory.mktemp("marble") / "tiny.safetensors"
    save_model_file(model, path)
    return path


def assert_close(got, want):
    """Equal up to float32 rounding, which depends on how many windows share a batch."""
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))


def centred_window(x, centre, seg):
    """The window of ``seg`` samples centred on ``centre`` (``seg // 2`` before it), zero-padded."""
    w = torch.zeros(seg)
    lo, hi = centre - seg // 2, centre - seg // 2 + seg
    w[max(lo, 0) - lo: min(hi, len(x)) - lo] = x[max(lo, 0): min(hi, len(x))]
    return w


def test_shapes_token_rate_and_each_token_is_its_centred_window(model_file, clips):
    enc = VcmrEncoder(str(model_file), token_rate=4)
    assert (enc.SAMPLING_RATE, enc.sample_rate, enc.TOKEN_RATE, enc.NUM_FEATURES, enc.N_TRANSFORMER_LAYERS) == \
        (SR, SR, 4, 64, 0)
    out = enc(clips)
    assert isinstance(out, tuple) and len(out) == enc.N_TRANSFORMER_LAYERS + 1
    assert out[0].shape == (2, SECONDS * enc.TOKEN_RATE, enc.NUM_FEATURES)
    assert out[0].shape[1] / (clips.shape[1] / enc.SAMPLING_RATE) == enc.TOKEN_RATE
    model, seg = enc.model, enc.model.segment_samples
    centres = token_centres(clips.shape[1], SR, 4)
    assert centres[0] == SR // 8 and centres[-1] == SECONDS * SR - SR // 8
    for k in (0, 1, 60, len(centres) - 1):  # the first, padded at the front; the last, at the end
        want = model.embed_segments(centred_window(clips[1], int(centres[k]), seg)[None])[0]
        assert_close(out[0][1, k], want)
    # the control: the window STARTING at the token's time is another embedding
    k = 60
    start = int(centres[k]) - SR // 8
    uncentred = model.embed_segments(clips[1, start:start + seg][None])[0]
    with pytest.raises(AssertionError):
        assert_close(out[0][1, k], uncentred)
    # tokens differ along time (a constant output would pass the shape checks)
    assert (out[0][0, 1:] - out[0][0, :-1]).abs().max() > 0.1 * out[0].abs().max()


def test_deterministic_and_independent_of_the_batch(model_file, clips):
    enc = VcmrEncoder(str(model_file), token_rate=2, batch_size=7)  # chunks that split the tokens unevenly
    a, b = enc(clips)[0], enc(clips)[0]
    assert torch.equal(a, b)
    alone = VcmrEncoder(str(model_file), token_rate=2, batch_size=64)(clips[1:])[0]
    assert_close(a[1:], alone)
    assert enc(clips[:, None, :])[0].shape == a.shape  # (batch, 1, samples) as some data modules give


def test_frozen_by_default_and_full_lets_gradients_through(model_file, clips):
    enc = VcmrEncoder(str(model_file))
    assert not any(p.requires_grad for p in enc.parameters())
    bn = enc.model.net.encoder.blocks[1][1]
    before = bn.running_mean.clone()
    enc.train()  # MARBLE's task calls train() on the whole module
    assert not enc.training and not bn.training
    out = enc(clips[:, : 5 * SR])[0]
    assert not out.requires_grad and torch.equal(bn.running_mean, before)
    full = VcmrEncoder(str(model_file), train_mode="full").train()
    full(clips[:, : 5 * SR])[0].sum().backward()
    conv = full.model.net.encoder.blocks[0][0].weight
    assert conv.requires_grad and conv.grad is not None and conv.grad.abs().sum() > 0
    assert torch.equal(full.model.net.encoder.blocks[1][1].running_mean, before)  # BatchNorm stays in eval


def test_short_clip_gives_one_token_and_bad_arguments_are_named(model_file):
    enc = VcmrEncoder(str(model_file))
    assert enc(torch.zeros(3, SR // 2))[0].shape == (3, 1, 64)
    for kwargs, said in (({"train_mode": "lora"}, "train_mode='lora'"), ({"token_rate": 0}, "token_rate"),
                         ({"token_rate": 2.5}, "token_rate"), ({"space": "joint"}, "space='joint'"),
                         ({"token_rate": SR + 1}, "above the model's sampling rate")):
        with pytest.raises(VcmrError, match=said):
            VcmrEncoder(str(model_file), **kwargs)
    with pytest.raises(VcmrError, match=r"expected \(batch, samples\)"):
        enc(torch.zeros(2, 2, SR))


def docs_encoder_block(model_file):
    """The ``encoder:`` block of docs/marble.md's YAML, with the model path filled in."""
    text = (Path(__file__).parents[2] / "docs" / "marble.md").read_text()
    snippet = text[text.index("```yaml") + len("```yaml"):].split("```")[0]
    block = yaml.safe_load(snippet)["model"]["init_args"]["encoder"]
    block["init_args"]["model"] = str(model_file)
    return block


def test_docs_yaml_builds_the_encoder_as_marble_does(model_file, clips):
    """MARBLE's loader imports ``class_path`` and calls it with ``init_args``."""
    block = docs_encoder_block(model_file)
    module, name = block["class_path"].rsplit(".", 1)
    enc = getattr(importlib.import_module(module), name)(**block["init_args"])
    assert isinstance(enc, VcmrEncoder) and enc.TOKEN_RATE == 1
    assert enc(clips)[0].shape == (2, SECONDS, enc.NUM_FEATURES)


def test_through_marbles_own_loader_and_base_class(model_file, clips):
    """Runs where a MARBLE clone is importable (MARBLE is not on PyPI): MARBLE's own
    ``instantiate_from_config`` builds the encoder from the docs' block, and a subclass of
    MARBLE's abstract ``BaseEncoder`` with VcmrEncoder in front can be instantiated (its
    abstract ``forward`` is implemented) and gives the same hidden states."""
    utils = pytest.importorskip("marble.core.utils", reason="MARBLE is not importable (clone it onto PYTHONPATH)")
    base = pytest.importorskip("marble.core.base_encoder")
    enc = utils.instantiate_from_config(docs_encoder_block(model_file))
    hidden = enc(clips)
    assert len(hidden) == 1 and hidden[0].shape == (2, SECONDS, enc.NUM_FEATURES)

    class MarbleVcmr(VcmrEncoder, base.BaseEncoder):
        pass
    sub = MarbleVcmr(str(model_file))
    assert isinstance(sub, base.BaseEncoder)
    assert torch.equal(sub(clips)[0], hidden[0])


def test_marbles_transforms_stack_and_pool_the_hidden_states(model_file, clips):
    """MARBLE's LayerSelector + TimeAvgPool (they need torchaudio and einops) give
    (batch, layers, 1, features), the time mean of the tokens."""
    pytest.importorskip("marble.core.utils", reason="MARBLE is not importable (clone it onto PYTHONPATH)")
    transforms = pytest.importorskip("marble.modules.transforms")
    enc = VcmrEncoder(str(model_file))
    hidden = enc(clips)
    pooled = transforms.TimeAvgPool()(transforms.LayerSelector([0])(hidden))
    assert pooled.shape == (2, 1, 1, enc.NUM_FEATURES)
    assert_close(pooled[:, 0, 0], hidden[0].mean(dim=1))
