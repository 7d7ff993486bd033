"""``vcmr pretrain-video``: stage 2, video-conditioned pre-training on prepared data."""
from vcmr.config import load_config
from vcmr.paths import check_training_paths


def add_arguments(parser):
    parser.add_argument("--config", default=None, help="YAML config (default: paper defaults = config/config_vid.yaml)")
    parser.add_argument("--dataset_dir", help="folder written by `vcmr prepare`")
    parser.add_argument("--audio_encoder_ckpt_path", help="stage-1 checkpoint to start from")


def run(args) -> int:
    overrides = list(args.overrides)
    for key in ("dataset_dir", "audio_encoder_ckpt_path"):
        if getattr(args, key):
            overrides += [f"--{key}", getattr(args, key)]
    cfg = load_config("vid", args.config, overrides)
    check_training_paths(cfg, "audio_encoder_ckpt_path")
    from vcmr.train.trainer import summary
    from vcmr.train.video import pretrain_video
    paths = pretrain_video(cfg)
    text = summary(paths)
    if text:  # rank 0 only
        print(text)
    return 0
