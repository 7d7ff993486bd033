"""Stage 2: model structure, checkpoint handling and training on the prepared layout."""
import json
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TINY_OVERRIDES
from prepared_layout import write_prepared

from vcmr.errors import CheckpointError
from vcmr.io.checkpoint import checkpoint_data, load_encoder, read_checkpoint
from vcmr.config import load_config
from vcmr.errors import VcmrError
from vcmr.train.video import VideoModule, train_video


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return write_prepared(tmp_path_factory.mktemp("av"), n_videos=6, n_segments=2, segment_seconds=2,
                          feature_dim=12)


def vid_cfg(tmp_path, *extra):
    return load_config("video", overrides=TINY_OVERRIDES + [
        "--log_dir", str(tmp_path / "runs"), "--batch_size", "4", "--workers", "0",
        "--progress_bar", "false", "--log_freq", "1", "--valid_fraction", "0.3", *extra])


def test_shapes_and_frozen_split(stage1_ckpt, tmp_path):
    cfg = vid_cfg(tmp_path, "--audio_encoder_ckpt_path", stage1_ckpt, "--feature_dim", "12")
    m = VideoModule(cfg)
    assert m.net.embed_audio(torch.randn(3, 2187)).shape == (3, 128)
    assert m.net.embed_video(torch.randn(3, 1, 12)).shape == (3, 128)
    assert m.net.video_encoder.lstm.num_layers == 2 and m.net.video_encoder.lstm.hidden_size == 12
    assert m.net.video_encoder.lstm.dropout == pytest.approx(0.1)
    frozen = {n for n, p in m.net.encoder.named_parameters() if not p.requires_grad}
    assert frozen and all(n.split(".")[1] in {"0", "1", "2", "3"} for n in frozen)
    assert all(p.requires_grad for n, p in m.net.encoder.named_parameters() if n.split(".")[1] not in "0123")
    # weights really come from stage 1
    enc1, _ = load_encoder(stage1_ckpt)
    torch.testing.assert_close(enc1.blocks[5][0].weight, m.net.encoder.blocks[5][0].weight)


def test_missing_and_mismatched_stage1_checkpoints(stage1_ckpt, tmp_path):
    with pytest.raises(VcmrError, match="not found"):
        VideoModule(vid_cfg(tmp_path, "--audio_encoder_ckpt_path", str(tmp_path / "x.ckpt"), "--feature_dim", "8"))
    with pytest.raises(CheckpointError, match="output_size: checkpoint 64 vs config 32"):
        VideoModule(vid_cfg(tmp_path, "--audio_encoder_ckpt_path", stage1_ckpt, "--feature_dim", "8",
                                 "--output_size", "32"))
    with pytest.raises(VcmrError, match="from_scratch"):
        VideoModule(vid_cfg(tmp_path, "--feature_dim", "8"))
    assert VideoModule(vid_cfg(tmp_path, "--feature_dim", "8", "--from_scratch", "true"))


@pytest.fixture(scope="module")
def stage2(prepared, stage1_ckpt, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("stage2")
    cfg = vid_cfg(tmp_path, "--dataset_dir", str(prepared), "--audio_encoder_ckpt_path", stage1_ckpt,
                  "--m_epochs", "2")
    return tmp_path, train_video(cfg)


def test_train_reload_resume(prepared, stage2):
    tmp_path, paths = stage2
    ckpt = read_checkpoint(paths["last"])
    assert ckpt["stage"] == "video" and ckpt["config"]["feature_dim"] == 12
    keys = {k.split(".")[0] for k in ckpt["state_dict"]}
    assert {"encoder", "projector", "video_encoder", "video_projector"} <= keys
    data = checkpoint_data(paths["last"])  # the model card's training-data summary
    assert data["dataset_dir"] == prepared.name and data["examples"] == "audio segments of prepared videos"
    assert data["train_videos"] >= 1 and data["valid_videos"] >= 1
    assert data["train_examples"] >= data["train_videos"] and data["valid_examples"] >= data["valid_videos"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    ea = EventAccumulator(paths["log_dir"])
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    assert {"Train/loss", "Valid/loss", "Valid/a2v_R@1", "Valid/v2a_R@5", "Valid/chance_R@1",
            "Valid/a2v_median_rank"} <= tags
    reloaded = VideoModule.load_from_checkpoint(paths["last"]).eval()
    x = torch.randn(2, 2187)
    assert torch.isfinite(reloaded.net.embed_audio(x)).all()
    more = vid_cfg(tmp_path, "--dataset_dir", str(prepared), "--m_epochs", "3", "--ckpt_path", paths["last"],
                   "--experiment_version", "resumed")
    resumed = train_video(more)
    assert torch.load(resumed["last"], weights_only=True)["epoch"] == 2


@pytest.mark.slow
def test_seed_compatible_script_runs(prepared, tmp_path):
    cmd = [sys.executable, str(ROOT / "vcmr" / "scripts" / "vid_pretrain.py"), "--dataset_dir", str(prepared),
           "--config", str(ROOT / "config" / "tiny.yaml"), "--from_scratch", "true", "--log_dir",
           str(tmp_path / "r"), "--max_steps", "2", "--m_epochs", "1", "--progress_bar", "false",
           "--batch_size", "4"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "last checkpoint" in out.stdout


def test_retrieve_command(prepared, stage2, capsys):
    from vcmr.cli import main
    _, paths = stage2
    assert main(["retrieve", "--ckpt", paths["last"], "--dataset_dir", str(prepared), "--video", "vid01",
                 "--top", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["results"]) == 3 and {"id", "segment", "score"} <= set(out["results"][0])
    scores = [r["score"] for r in out["results"]]
    assert scores == sorted(scores, reverse=True)
    wav = prepared / "audio" / "vid02" / "vid02_0.wav"
    assert main(["retrieve", "--ckpt", paths["last"], "--dataset_dir", str(prepared), "--audio", str(wav),
                 "--top", "2"]) == 0
    assert "videos for" in capsys.readouterr().out
    assert main(["retrieve", "--ckpt", paths["last"], "--dataset_dir", str(prepared), "--video", "nope"]) == 1


def test_ablation_checkpoint_reloads_as_trained_and_other_versions_are_refused(tmp_path):
    """A stage-2 checkpoint trained with the ablation options (no last block, cross-modal
    negatives, frozen BatchNorm) reloads into the module it was trained as; a checkpoint of
    another format version is refused."""
    torch.manual_seed(4)
    ablation = VideoModule(load_config("video", overrides=TINY_OVERRIDES + [
        "--feature_dim", "8", "--from_scratch", "true", "--last_block_kernel_size", "0",
        "--negatives", "cross", "--encoder_batchnorm", "frozen"]), load_audio_encoder=False).eval()
    path = tmp_path / "ablation.ckpt"
    saved = {"hyper_parameters": dict(ablation.hparams), "state_dict": ablation.state_dict(),
             "pytorch-lightning_version": "2.6.0"}
    torch.save(saved, path)
    reloaded = VideoModule.load_from_checkpoint(path).eval()
    assert (reloaded.cfg.last_block_kernel_size, reloaded.loss.negatives) == (0, "cross")
    x, v = torch.randn(3, 2187), torch.randn(3, 1, 8)
    with torch.no_grad():
        torch.testing.assert_close(reloaded.net.embed_audio(x), ablation.net.embed_audio(x), rtol=0, atol=0)
        torch.testing.assert_close(reloaded.net.embed_video(v), ablation.net.embed_video(v), rtol=0, atol=0)
    assert reloaded.cfg.encoder_batchnorm == "frozen" and not reloaded.train().net.encoder.blocks[0].training
    new = VideoModule(load_config("video", overrides=TINY_OVERRIDES + ["--feature_dim", "8", "--from_scratch", "true"]))
    assert (new.loss.negatives, new.net.projector[0].bias, new.net.video_projector[2].bias) == ("all", None, None)
    assert len(new.net.encoder.blocks) == 8  # stem, 6 blocks, last block
    assert new.cfg.encoder_batchnorm == "adapt" and new.train().net.encoder.blocks[0].training
    saved["hyper_parameters"].pop("format_version")
    torch.save(saved, path)
    with pytest.raises(CheckpointError, match="records no format version.*retrain with this vcmr"):
        VideoModule.load_from_checkpoint(path)


def test_make_loaders_derange_training_pairs_only(prepared, tmp_path):
    from vcmr.train.video import make_loaders
    cfg = vid_cfg(tmp_path, "--dataset_dir", str(prepared), "--from_scratch", "true", "--derange_pairs", "true")
    train, valid = make_loaders(cfg)
    assert train.dataset.ids and all(train.dataset.partner[v] != v for v in train.dataset.ids)
    assert valid.dataset.ids and valid.dataset.partner == {v: v for v in valid.dataset.ids}
    assert load_config("video").derange_pairs is False  # the default trains on the true pairs


def test_deranged_pairs_reach_the_model_through_worker_processes(prepared, tmp_path):
    """With 2 loader workers (each holding a pickled copy of the dataset) every training item
    carries rows of its partner's features, never its own, and the items equal the 0-worker ones."""
    import numpy as np
    from vcmr.train.video import make_loaders
    cfg = vid_cfg(tmp_path, "--dataset_dir", str(prepared), "--from_scratch", "true", "--derange_pairs", "true",
                  "--workers", "2")
    train, _ = make_loaders(cfg)
    ds = train.dataset
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, shuffle=False)
    seen = 0
    for _, video, idx in loader:
        for v, i in zip(video.numpy(), idx.tolist()):
            own, partner = ds.segments[i].video_id, ds.partner[ds.segments[i].video_id]
            assert partner != own

            def holds(vid):
                rows = np.load(prepared / "video" / f"{vid}.npy")
                return any(np.array_equal(rows[r:r + len(v)], v) for r in range(len(rows) - len(v) + 1))
            assert holds(partner) and not holds(own), (i, own, partner)
            seen += 1
    assert seen == len(ds)
    # a worker process draws the same items as the main process (same crops, same partners)
    serial = [ds[i][1] for i in range(len(ds))]
    parallel = [v for _, vs, _ in torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2) for v in vs]
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))


def test_derange_pairs_on_the_command_line_is_trained_and_recorded(prepared, tmp_path):
    from vcmr.cli import main
    code = main(["train", "video", *TINY_OVERRIDES, "--dataset_dir", str(prepared), "--from_scratch", "true",
                 "--derange_pairs", "true", "--log_dir", str(tmp_path / "runs"), "--batch_size", "4",
                 "--workers", "0", "--progress_bar", "false", "--valid_fraction", "0.3", "--m_epochs", "1"])
    assert code == 0
    last = next((tmp_path / "runs").rglob("last.ckpt"))
    assert read_checkpoint(last)["config"]["derange_pairs"] is True
