"""Per-epoch randomness reaches persistent data-loader workers; summary lines; bf16 on CPU."""
import numpy as np
import pytest
import torch
from conftest import TINY_OVERRIDES
from torch.utils.data import DataLoader

from vcmr.config import load_config
from vcmr.data.audio_folder import AudioFolder, collate_indexed
from vcmr.data.sampling import EpochSampler, ResumeSamplerEpoch, epoch_loader_kwargs, resume_epoch


def excerpts(loader, epoch):
    loader.sampler.set_epoch(epoch)
    out = {}
    for x, idx in loader:
        out.update({int(i): x[k].clone() for k, i in enumerate(idx)})
    return out


def test_persistent_workers_read_fresh_excerpts_each_epoch(synth_audio_dir):
    ds = AudioFolder(synth_audio_dir, "train", 16000, 4374, seed=7)
    loader = DataLoader(**epoch_loader_kwargs(ds, True, 7, with_index=True), batch_size=4, num_workers=2,
                        persistent_workers=True, collate_fn=collate_indexed)
    e0, e1, e0_again = excerpts(loader, 0), excerpts(loader, 1), excerpts(loader, 0)
    assert sorted(e0) == sorted(e1) == list(range(len(ds)))
    assert all(not torch.equal(e0[i], e1[i]) for i in e0)  # fresh excerpt of every file
    assert all(torch.equal(e0[i], e0_again[i]) for i in e0)  # reproducible for a fixed seed
    ds.epoch = 1  # the main process's copy agrees with what the workers read
    assert all(torch.equal(ds[i], e1[i]) for i in range(len(ds)))


def test_sampler_order_and_epochs():
    s = EpochSampler(10, shuffle=True, seed=3)
    first, second = list(s), list(s)  # without set_epoch each pass is the next epoch
    assert {e for _, e in first} == {0} and {e for _, e in second} == {1}
    assert sorted(i for i, _ in first) == list(range(10)) and first != [(i, 0) for i in range(10)]
    s.set_epoch(0)
    assert list(s) == first
    assert list(EpochSampler(4, shuffle=False)) == [(0, 0), (1, 0), (2, 0), (3, 0)]
    resumed = EpochSampler(10, True, 3)
    ResumeSamplerEpoch(resumed).on_load_checkpoint(None, None, {
        "epoch": 4, "loops": {"fit_loop": {"epoch_progress": {"current": {"processed": 5}}}}})
    assert resumed.epoch == 5 and resume_epoch({"epoch": 2}) == 2


def test_max_steps_1_prints_summary_once_with_no_best_line(synth_audio_dir, tmp_path, capsys):
    from vcmr.cli import main
    rc = main(["train", "music", "--dataset_dir", str(synth_audio_dir), *TINY_OVERRIDES,
               "--log_dir", str(tmp_path), "--max_steps", "1", "--m_epochs", "1", "--batch_size", "4",
               "--workers", "0", "--progress_bar", "false"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.count("best checkpoint: none yet: no validation has run") == 1, out
    assert out.count("last checkpoint: ") == 1 and "last.ckpt" in out


@pytest.mark.slow
def test_bf16_mixed_stage1_and_2_on_cpu(synth_audio_dir, tmp_path, stage1_ckpt):
    """bf16 autocast for the models; the augmentation chain stays float32 (MusicModule._views)."""
    from prepared_layout import write_prepared

    from vcmr.train.music import MusicModule, train_music
    from vcmr.train.video import train_video
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    common = ["--log_dir", str(tmp_path / "runs"), "--workers", "0", "--progress_bar", "false",
              "--precision", "bf16-mixed", "--accelerator", "cpu", "--log_freq", "1", "--m_epochs", "1"]
    mus = load_config("music", overrides=TINY_OVERRIDES + common + [
        "--dataset_dir", str(synth_audio_dir), "--batch_size", "4", "--max_steps", "3"])
    paths = [train_music(mus)["log_dir"]]
    data = write_prepared(tmp_path / "av", n_videos=4, n_segments=2, segment_seconds=2, feature_dim=8)
    vid = load_config("video", overrides=TINY_OVERRIDES + common + [
        "--dataset_dir", str(data), "--audio_encoder_ckpt_path", stage1_ckpt, "--batch_size", "2",
        "--max_steps", "3", "--valid_fraction", "0.3"])
    paths.append(train_video(vid)["log_dir"])
    for log_dir in paths:
        ea = EventAccumulator(log_dir)
        ea.Reload()
        losses = [e.value for e in ea.Scalars("Train/loss")]
        assert len(losses) >= 2 and np.isfinite(losses).all(), (log_dir, losses)
    # the views are float32 inside bf16 autocast
    module = MusicModule(mus)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = module._views(torch.randn(2, 4374), torch.Generator().manual_seed(0))
        assert a.dtype == b.dtype == torch.float32
        assert module.net.encoder(a).dtype == torch.bfloat16
