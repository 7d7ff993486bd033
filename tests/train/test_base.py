"""The skeleton the three stages share (vcmr.train.base): the hyper-parameters every checkpoint
carries, one reload path, one DataLoader set-up, seeding before a stage's set-up, training mode
when fitting starts."""
import warnings
from types import SimpleNamespace

import numpy as np

import pytest
import pytorch_lightning as pl
import soundfile as sf
import torch
from conftest import TINY_OVERRIDES
from prepared_layout import write_prepared

from vcmr.config import config_to_dict, load_config
from vcmr.data.sampling import EpochSampler
from vcmr.demo.synth.formats import write_magnatagatune
from vcmr.errors import CheckpointError
from vcmr.io.checkpoint import FORMAT_VERSION
from vcmr.models.stages import NETWORKS
from vcmr.train import music, tagging, video
from vcmr.train.base import fit_stage, loader


def tiny_modules():
    return {
        "music": music.MusicModule(load_config("music", overrides=TINY_OVERRIDES)),
        "video": video.VideoModule(load_config("video", overrides=TINY_OVERRIDES + [
            "--feature_dim", "8", "--from_scratch", "true"])),
        "tagging": tagging.TaggingModule(load_config("tagging", overrides=TINY_OVERRIDES), ["rock", "calm"]),
    }


def save(module, path, **changes):
    """A checkpoint as Lightning writes it: the module's weights and hyper-parameters."""
    torch.save({"state_dict": module.state_dict(), "pytorch-lightning_version": pl.__version__,
                "hyper_parameters": {**dict(module.hparams), **changes}}, path)
    return path


def test_every_stage_saves_stage_config_and_version_and_reloads(tmp_path):
    modules = tiny_modules()
    for stage, module in modules.items():
        hp = dict(module.hparams)
        assert hp["stage"] == stage and hp["format_version"] == FORMAT_VERSION
        assert hp["config"] == config_to_dict(module.cfg)
        assert hp.get("tags") == (["rock", "calm"] if stage == "tagging" else None)
        assert type(module.net) is NETWORKS[stage]
        assert all(k.startswith("net.") for k in module.state_dict())
        again = type(module).load_from_checkpoint(save(module, tmp_path / f"{stage}.ckpt"), weights_only=True)
        assert dict(again.hparams) == hp
        for (name, a), b in zip(module.state_dict().items(), again.state_dict().values()):
            assert torch.equal(a, b), (stage, name)
    # a file of another stage, or of another format version, is refused by every module
    for stage, other in (("music", "video"), ("video", "tagging"), ("tagging", "music")):
        cls, tags = type(modules[stage]), ({"tags": ["rock"]} if stage == "tagging" else {})
        with pytest.raises(CheckpointError, match="cannot be loaded as"):
            cls.load_from_checkpoint(tmp_path / f"{other}.ckpt", weights_only=True, **tags)
        with pytest.raises(CheckpointError, match="format version"):
            cls.load_from_checkpoint(save(modules[stage], tmp_path / "old.ckpt", format_version=0),
                                     weights_only=True)


def test_fitting_starts_in_training_mode_as_the_network_decides():
    for stage, module in tiny_modules().items():
        assert getattr(module.cfg, "encoder_batchnorm", "adapt") == "adapt"
        module.eval()
        module.on_train_start()
        assert all(m.training for m in module.net.modules()), stage
    frozen = tagging.TaggingModule(load_config("tagging", overrides=TINY_OVERRIDES + [
        "--encoder_batchnorm", "frozen"]), ["rock"]).eval()
    frozen.on_train_start()
    assert frozen.net.head.training and not any(m.training for m in frozen.net.encoder.modules())


def settings(dl):
    return (type(dl.sampler), dl.sampler.shuffle, dl.batch_size, dl.drop_last, dl.num_workers,
            dl.persistent_workers, dl.pin_memory)


def test_the_three_stages_load_data_the_same_way(synth_audio_dir, tmp_path):
    common = TINY_OVERRIDES + ["--workers", "2", "--batch_size", "4", "--seed", "3"]
    write_prepared(tmp_path / "av", n_videos=6, n_segments=2, segment_seconds=2, feature_dim=8)
    write_magnatagatune(tmp_path / "mtat", 12, seed=5, duration=0.4, sample_rate=16000, workers=1)
    mus = load_config("music", overrides=common + ["--dataset_dir", str(synth_audio_dir)])
    vid = load_config("video", overrides=common + ["--dataset_dir", str(tmp_path / "av"), "--valid_fraction", "0.3"])
    tag = load_config("tagging", overrides=common + ["--dataset_dir", str(tmp_path / "mtat")])
    splits = [tagging.load_split_from_config(tag, s) for s in ("train", "valid")]
    for train, valid in (music.make_loaders(mus), video.make_loaders(vid), tagging.make_loaders(tag, *splits)):
        cuda = torch.cuda.is_available()
        assert settings(train) == (EpochSampler, True, 4, len(train.dataset) > 4, 2, True, cuda)
        assert settings(valid) == (EpochSampler, False, 4, False, 2, True, cuda)
        assert train.sampler.seed == valid.sampler.seed == 3


class Numbers(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n, self.epoch = n, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.tensor([float(i)])


def test_loader_drops_a_partial_training_batch_only_when_there_are_several():
    cfg = SimpleNamespace(seed=0, batch_size=4, workers=0)
    assert [len(b) for b in loader(Numbers(10), cfg, True)] == [4, 4]
    assert [len(b) for b in loader(Numbers(10), cfg, False)] == [4, 4, 2]
    assert [len(b) for b in loader(Numbers(3), cfg, True)] == [3]  # one batch: kept
    x, index = next(iter(loader(Numbers(10), cfg, False, with_index=True)))
    assert index.tolist() == [0, 1, 2, 3] and x.flatten().tolist() == [0.0, 1.0, 2.0, 3.0]


class _Stop(Exception):
    pass


def test_fit_stage_seeds_before_the_stage_setup():
    cfg = load_config("music", overrides=TINY_OVERRIDES + ["--seed", "7"])
    drawn = []

    def setup(c):
        drawn.append(torch.rand(3))
        raise _Stop

    torch.manual_seed(123)
    with pytest.raises(_Stop):
        fit_stage(cfg, setup)
    torch.manual_seed(7)
    assert torch.equal(drawn[0], torch.rand(3))


def _constant_loss_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "at every one of the" in str(w.message)]


def test_a_whole_epoch_at_one_loss_is_warned_once_naming_the_cause(tmp_path):
    # issue 23 row 15: 16 silent files trained at a constant loss ln 7 for whole epochs
    silent = tmp_path / "silent"
    silent.mkdir()
    for i in range(16):
        sf.write(str(silent / f"clip{i:02d}.wav"), np.zeros(16000, dtype=np.float32), 16000)
    cfg = load_config("music", overrides=TINY_OVERRIDES + [
        "--dataset_dir", str(silent), "--log_dir", str(tmp_path / "runs"), "--batch_size", "4",
        "--workers", "0", "--progress_bar", "false", "--m_epochs", "2", "--accelerator", "cpu"])
    with pytest.warns(UserWarning) as record:
        music.train_music(cfg)
    said = _constant_loss_warnings(record)
    assert len(said) == 1, [str(w.message) for w in record]  # two such epochs, one warning
    assert "silent or identical inputs" in said[0] and str(silent) in said[0]
    assert f"{np.log(7):.6g}" in said[0]  # NT-Xent of identical views, batch 4: ln(2*4 - 1)


def test_a_learning_run_is_not_warned_of_a_constant_loss(synth_audio_dir, tmp_path):
    cfg = load_config("music", overrides=TINY_OVERRIDES + [
        "--dataset_dir", str(synth_audio_dir), "--log_dir", str(tmp_path / "runs"), "--batch_size", "4",
        "--workers", "0", "--progress_bar", "false", "--m_epochs", "1", "--accelerator", "cpu"])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        music.train_music(cfg)
    assert not _constant_loss_warnings(record)
