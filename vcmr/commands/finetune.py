"""``vcmr finetune``: stage 3, a tagging head on a (frozen) pre-trained encoder."""
from vcmr.config import load_config
from vcmr.paths import check_training_paths


def add_arguments(parser):
    parser.add_argument("--config", default=None, help="YAML config (default: built-in paper defaults = config/config_sup.yaml)")
    parser.add_argument("--dataset", choices=["magnatagatune", "mtg-jamendo"], help="dataset format")
    parser.add_argument("--dataset_dir", help="dataset folder (audio + split files)")
    parser.add_argument("--pretrained_ckpt_path", help="stage-1/2/3 checkpoint, or 'none' for a random encoder")


def config_from_args(args, stage: str):
    overrides = list(args.overrides)
    for key in ("dataset", "dataset_dir", "pretrained_ckpt_path"):
        if getattr(args, key, None):
            overrides += [f"--{key}", getattr(args, key)]
    return load_config(stage, args.config, overrides)


def run(args) -> int:
    cfg = config_from_args(args, "sup")
    check_training_paths(cfg, "pretrained_ckpt_path")
    from vcmr.train.trainer import summary
    from vcmr.train.tagging import finetune
    paths = finetune(cfg)
    text = summary(paths, "best checkpoint (valid PR-AUC)")
    if text:  # rank 0 only
        print(f"{text}\ntags: {len(paths['tags'])}, train songs: {paths['n_train']}, "
              f"valid songs: {paths['n_valid']}")
    return 0
