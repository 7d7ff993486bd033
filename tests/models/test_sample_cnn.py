import pytest
import torch
from conftest import tiny_overrides

from vcmr.config import ConfigError, load_config
from vcmr.models import SampleCNN, projector, tagging_head

TINY = tiny_overrides(output_size=512)  # the tiny geometry with the paper's 512-D output


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_paper_configuration_parameter_count():
    """The authors' SampleCNN (stem, 9 blocks, last block Conv1d(512, 512, 1) - BN - ReLU)."""
    model = SampleCNN(load_config("music"))
    assert n_params(model) == 2_435_072
    assert model(torch.randn(2, 98415)).shape == (2, 512)
    assert isinstance(model.fc, torch.nn.Identity)
    # blocks[i] is the authors' all_blocks[i]: stem, 9 blocks, last block (their checkpoint keys)
    assert len(model.blocks) == 11
    last = model.blocks[10]
    assert [type(m).__name__ for m in last] == ["Conv1d", "BatchNorm1d", "ReLU"]
    assert (last[0].in_channels, last[0].out_channels, last[0].kernel_size) == (512, 512, (1,))
    assert n_params(last) == 512 * 512 + 512 + 2 * 512
    assert [type(m).__name__ for m in model.blocks[9]] == ["Conv1d", "BatchNorm1d", "ReLU", "MaxPool1d"]


def test_without_last_block():
    """last_block_kernel_size 0: no last block, the other blocks' key names unchanged."""
    old = SampleCNN(load_config("music", overrides=["--last_block_kernel_size", "0"]))
    assert n_params(old) == 2_171_392 and len(old.blocks) == 10
    new_keys = set(SampleCNN(load_config("music")).state_dict())
    assert set(old.state_dict()) < new_keys
    assert {k.split(".")[1] for k in new_keys - set(old.state_dict())} == {"10"}


def test_last_block_output_is_the_embedding():
    model = SampleCNN(load_config("music", overrides=TINY + ["--output_size", "32"])).eval()
    assert model.blocks[-1][0].out_channels == 32 and isinstance(model.fc, torch.nn.Identity)
    x = torch.randn(3, 2187)
    h = x.unsqueeze(1)
    for block in model.blocks:
        h = block(h)
    torch.testing.assert_close(model(x), h.flatten(1))
    assert (model(x) >= 0).all()  # ReLU of the last block
    wide = SampleCNN(load_config("music", overrides=TINY + ["--output_size", "64",
                                                          "--last_block_kernel_size", "3"])).eval()
    assert wide.blocks[-1][0].kernel_size == (3,) and wide(x).shape == (3, 64)


def test_single_clip_in_training_mode_is_a_clear_error():
    """The last block's BatchNorm sees one value per channel per clip (time axis 1)."""
    model = SampleCNN(load_config("music", overrides=TINY))
    with pytest.raises(ValueError, match="at least 2 clips.*eval"):
        model(torch.randn(1, 2187))
    assert model.eval()(torch.randn(1, 2187)).shape == (1, 512)


@pytest.mark.parametrize("extra,out", [([], 512), (["--output_size", "64"], 64), (["--output_size", "32"], 32)])
def test_shapes_of_several_configurations(extra, out):
    model = SampleCNN(load_config("music", overrides=TINY + extra)).eval()
    assert model(torch.randn(3, 2187)).shape == (3, out)
    assert model(torch.randn(3, 1, 2187)).shape == (3, out)


def test_other_valid_geometry():
    cfg = load_config("music", overrides=["--audio_length", "59049", "--first_block_params.conv_size", "3"])
    assert SampleCNN(cfg).eval()(torch.randn(1, 59049)).shape == (1, 512)


def test_wrong_audio_length_names_valid_lengths():
    with pytest.raises(ConfigError, match=r"audio_length=59049.*98415.*nearest valid lengths"):
        SampleCNN(load_config("music", overrides=["--audio_length", "59049"]))


def test_wrong_input_length_is_clear():
    model = SampleCNN(load_config("music", overrides=TINY))
    with pytest.raises(ValueError, match="expects 2187 samples"):
        model(torch.randn(1, 2000))


def test_freeze_blocks_keeps_batchnorm_statistics():
    model = SampleCNN(load_config("music", overrides=TINY))
    model.freeze_blocks(4)
    model.train()
    frozen = [p for b in model.blocks[:4] for p in b.parameters()]
    assert all(not p.requires_grad for p in frozen)
    assert all(p.requires_grad for b in model.blocks[4:] for p in b.parameters())
    before = model.blocks[0][1].running_mean.clone()
    model(torch.randn(4, 2187))
    assert torch.equal(before, model.blocks[0][1].running_mean)
    assert not model.blocks[0].training and model.blocks[5].training


def test_freeze_blocks_adapt_moves_batchnorm_statistics_only():
    """The authors' stage 2 turns off the gradients of the first blocks and nothing else."""
    model = SampleCNN(load_config("music", overrides=TINY))
    model.freeze_blocks(4, batchnorm="adapt")
    model.train()
    assert all(not p.requires_grad for b in model.blocks[:4] for p in b.parameters())
    assert model.blocks[0].training
    weight, before = model.blocks[0][0].weight.clone(), model.blocks[0][1].running_mean.clone()
    model(torch.randn(4, 2187)).sum().backward()
    assert not torch.equal(before, model.blocks[0][1].running_mean)
    assert model.blocks[0][0].weight.grad is None and torch.equal(weight, model.blocks[0][0].weight)
    with pytest.raises(ValueError, match="'frozen' or 'adapt'"):
        model.freeze_blocks(4, batchnorm="yes")


def test_heads():
    assert projector(512, 512, 128)(torch.randn(2, 512)).shape == (2, 128)
    # the authors' projector has no biases
    assert n_params(projector(512, 512, 128)) == 512 * 512 + 512 * 128
    head = tagging_head(512, 50)
    assert head(torch.randn(2, 512)).shape == (2, 50)
    assert isinstance(head[0], torch.nn.Dropout) and head[0].p == 0.3
