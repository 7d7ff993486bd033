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
    from vcmr.evaluate.retrieval import build_index, retrieval_metrics
    from vcmr.prepare.pipeline import prepare_videos
    from vcmr.synth.corpus import make_music_video_corpus
    from vcmr.train.video import pretrain_video
    import numpy as np
    import torch

    import vcmr
    from vcmr.data.audio_visual import kept_ids, split_ids

    make_music_video_corpus(tmp_path / "corpus", 48, seed=1, duration=9.0, size=(64, 48), fps=8,
                            sample_rate=16000, min_seconds=9.0, max_scene_seconds=8.0)
    prep = load_config("prepare", None, {"window_seconds": 9.0, "segment_seconds": 3.0, "n_segments": 3,
                                         "max_scene_seconds": 30.0, "frames_per_second": 1,
                                         "frame_encoder": "efficientnet-lite0", "workers": 2})
    summary = prepare_videos([tmp_path / "corpus" / "videos"], tmp_path / "av", prep, progress=False)
    assert summary["counts"]["kept"] == 48
    cfg = load_config("vid", overrides=MODEL + [
        "--dataset_dir", str(tmp_path / "av"), "--from_scratch", "true", "--freeze_blocks", "0",
        "--lstm_hidden", "128", "--video_hidden", "128", "--projection_dim", "32", "--batch_size", "16",
        "--learning_rate", "1e-3", "--m_epochs", "30", "--valid_fraction", "0.3", "--workers", "0",
        "--log_dir", str(tmp_path / "runs"), "--progress_bar", "false", "--seed", "0",
        "--segment_seconds", "3"])
    paths = pretrain_video(cfg)
    ids = split_ids(kept_ids(tmp_path / "av"), "valid", 0.3)
    assert len(ids) >= 8
    model = vcmr.load_model(paths["last"])
    index = build_index(model, tmp_path / "av", ids=ids, progress=False)
    # video level: each held-out video's music against every held-out video's pictures
    audio = np.stack([index["audio"][[i for i, (v, _) in enumerate(index["segments"]) if v == vid]].mean(0)
                      for vid in ids])
    m = retrieval_metrics(torch.as_tensor(audio), torch.as_tensor(index["video_level"]))
    print(m)
    assert m["a2v_R@1"] >= 3 * m["chance_R@1"] and m["v2a_R@1"] >= 3 * m["chance_R@1"]
    assert m["a2v_median_rank"] < m["chance_median_rank"] and m["v2a_median_rank"] < m["chance_median_rank"]
