"""``vcmr pretrain-music``: stage 1, contrastive pre-training on a folder of audio."""
from vcmr.config import load_config
from vcmr.paths import check_training_paths


def add_arguments(parser):
    parser.add_argument("--config", default=None, help="YAML config (default: built-in paper defaults = config/config_mus.yaml)")
    parser.add_argument("--dataset_dir", help="folder of audio files (searched recursively)")


def run(args) -> int:
    overrides = list(args.overrides)
    if args.dataset_dir:
        overrides += ["--dataset_dir", args.dataset_dir]
    cfg = load_config("mus", args.config, overrides)
    check_training_paths(cfg)
    from vcmr.train.trainer import summary
    from vcmr.train.music import pretrain_music
    paths = pretrain_music(cfg)
    text = summary(paths)
    if text:  # rank 0 only
        print(text)
    return 0
