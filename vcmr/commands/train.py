"""``vcmr train STAGE``: train one stage from its config.

    vcmr train music --dataset_dir audio/                                  # stage 1 (SimCLR)
    vcmr train video --dataset_dir data/av --audio_encoder_ckpt_path S1    # stage 2
    vcmr train tagging --dataset magnatagatune --dataset_dir data/mtat \\
        --pretrained_ckpt_path S2                                          # stage 3

Every key of the stage's config (``config/<stage>.yaml``) can be given as ``--key value``.
The training function is looked up when the command runs (``vcmr.train.<stage>.train_<stage>``),
and Lightning (the ``train`` extra) is imported then, so ``--help`` answers without it.
"""
import importlib

from vcmr.config import load_config
from vcmr.paths import check_training_paths

# stage -> the config keys naming input checkpoints (a run must not overwrite them)
STAGES = {"music": (), "video": ("audio_encoder_ckpt_path",), "tagging": ("pretrained_ckpt_path",)}


def add_arguments(parser):
    parser.add_argument("stage", choices=tuple(STAGES),
                        help="music: stage 1 on a folder of audio; video: stage 2 on `vcmr prepare` "
                             "output; tagging: stage 3 on MagnaTagATune / MTG-Jamendo")
    parser.add_argument("--config", default=None,
                        help="YAML config (default: the built-in paper defaults = config/<stage>.yaml)")


def run(args) -> int:
    cfg = load_config(args.stage, args.config, args.overrides)
    check_training_paths(cfg, *STAGES[args.stage])
    train = getattr(importlib.import_module(f"vcmr.train.{args.stage}"), f"train_{args.stage}")
    from vcmr.train.trainer import summary
    paths = train(cfg)
    best = "best checkpoint (valid PR-AUC)" if args.stage == "tagging" else "best checkpoint"
    text = summary(paths, best)
    if text:  # rank 0 only
        print(text)
        if args.stage == "tagging":
            print(f"tags: {len(paths['tags'])}, train songs: {paths['n_train']}, "
                  f"valid songs: {paths['n_valid']}")
    return 0
