import pytest
import torch

from vcmr.config import ConfigError, load_config
from vcmr.models import SampleCNN, projector, tagging_head

TINY = ["--n_blocks", "6", "--n_channels", "16,16,32,32,32,64", "--audio_length", "2187",
        "--first_block_params.conv_size", "3", "--first_block_params.out_channels", "16"]


def test_paper_configuration_parameter_count():
    model = SampleCNN(load_config("mus"))
    # stem 5*128+128 + BN; 9 blocks conv3 + BN; fc is the identity (512 -> 512).
    assert sum(p.numel() for p in model.parameters()) == 2_171_392
    assert model(torch.randn(2, 98415)).shape == (2, 512)


@pytest.mark.parametrize("extra,out", [([], 512), (["--output_size", "64"], 64), (["--output_size", "32"], 32)])
def test_shapes_of_several_configurations(extra, out):
    model = SampleCNN(load_config("mus", overrides=TINY + extra)).eval()
    assert model(torch.randn(3, 2187)).shape == (3, out)
    assert model(torch.randn(3, 1, 2187)).shape == (3, out)


def test_other_valid_geometry():
    cfg = load_config("mus", overrides=["--audio_length", "59049", "--first_block_params.conv_size", "3"])
    assert SampleCNN(cfg)(torch.randn(1, 59049)).shape == (1, 512)


def test_wrong_audio_length_names_valid_lengths():
    with pytest.raises(ConfigError, match=r"audio_length=59049.*98415.*nearest valid lengths"):
        SampleCNN(load_config("mus", overrides=["--audio_length", "59049"]))


def test_wrong_input_length_is_clear():
    model = SampleCNN(load_config("mus", overrides=TINY))
    with pytest.raises(ValueError, match="expects 2187 samples"):
        model(torch.randn(1, 2000))


def test_freeze_blocks_keeps_batchnorm_statistics():
    model = SampleCNN(load_config("mus", overrides=TINY))
    model.freeze_blocks(4)
    model.train()
    frozen = [p for b in model.blocks[:4] for p in b.parameters()]
    assert all(not p.requires_grad for p in frozen)
    assert all(p.requires_grad for b in model.blocks[4:] for p in b.parameters())
    before = model.blocks[0][1].running_mean.clone()
    model(torch.randn(4, 2187))
    assert torch.equal(before, model.blocks[0][1].running_mean)
    assert not model.blocks[0].training and model.blocks[5].training


def test_heads():
    assert projector(512, 512, 128)(torch.randn(2, 512)).shape == (2, 128)
    head = tagging_head(512, 50)
    assert head(torch.randn(2, 512)).shape == (2, 50)
    assert isinstance(head[0], torch.nn.Dropout) and head[0].p == 0.3
