"""Stage 2 learns the audio-video correspondence of synthetic music videos (slow).

Videos from the synthetic generator (palette from the mode, motion from the tempo, shapes from
the instruments, flashes on beats) -> ``vcmr prepare`` -> stage 2 from scratch with a small
SampleCNN. Held-out videos must be retrieved well above chance in both directions.
"""
import pytest

from vcmr.config import load_config

MODEL = ["--sample_rate", "8000", "--audio_length", "19683", "--n_blocks", "8",
         "--n_channels", "16,16,32,32,32,32,64,64", "--first_block_params.conv_size", "3",
         "--first_block_params.out_channels", "16", "--output_size", "64"]


@pytest.mark.slow
def test_held_out_recall_is_several_times_chance(tmp_path):
    from vcmr.evaluate.retrieval import build_index, video_retrieval_metrics
    from vcmr.prepare.pipeline import prepare_videos
    from vcmr.demo.synth.corpus import make_music_video_corpus
    from vcmr.train.video import train_video
    import vcmr
    from vcmr.data.audio_visual import kept_ids, split_ids

    make_music_video_corpus(tmp_path / "corpus", 64, seed=1, duration=12.0, size=(96, 72), fps=8,
                            sample_rate=16000, min_seconds=12.0, max_scene_seconds=30.0)
    prep = load_config("prepare", None, {"window_seconds": 12.0, "segment_seconds": 3.0, "n_segments": 4,
                                         "max_scene_seconds": 30.0, "frames_per_second": 2,
                                         "frame_encoder": "efficientnet-lite0", "workers": 2,
                                         "encoder_batch_size": 8})
    summary = prepare_videos([tmp_path / "corpus" / "videos"], tmp_path / "av", prep, progress=False)
    assert summary["counts"]["kept"] == 64
    cfg = load_config("video", overrides=MODEL + [
        "--dataset_dir", str(tmp_path / "av"), "--from_scratch", "true", "--freeze_blocks", "0",
        "--lstm_hidden", "128", "--video_hidden", "128", "--projection_dim", "32", "--batch_size", "16",
        "--learning_rate", "1e-3", "--m_epochs", "25", "--valid_fraction", "0.3", "--workers", "0",
        "--log_dir", str(tmp_path / "runs"), "--progress_bar", "false", "--seed", "0",
        "--segment_seconds", "3", "--deterministic", "true"])
    paths = train_video(cfg)
    ids = split_ids(kept_ids(tmp_path / "av"), "valid", 0.3)
    assert len(ids) == 16
    model = vcmr.load_model(paths["last"])
    index = build_index(model, tmp_path / "av", ids=ids, progress=False)
    # video level: each held-out video's music against every held-out video's pictures
    m = video_retrieval_metrics(index)
    print(m)
    # 16 held-out videos, chance R@1 = 1/16, so one hit moves R@1 by 0.06: R@1 is too coarse to
    # carry the test (it moved between 1.5x and 3.5x chance from run to run); the rank
    # distribution does. Measured on the 2-core development machine in four runs over two
    # versions of the frame features: R@1 0.12-0.25 (a2v) / 0.06-0.19 (v2a), R@5 0.69-0.88
    # (chance 0.31), median rank 2-3 (chance 8.5). Runs are not bit-identical (CPU kernels), so
    # the bounds sit below the worst run.
    for d in ("a2v", "v2a"):
        assert m[f"{d}_median_rank"] <= m["chance_median_rank"] / 2, d
        assert m[f"{d}_R@5"] >= 1.8 * m["chance_R@5"], d
