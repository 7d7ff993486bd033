"""Seed-compatible entry point: ``python vcmr/scripts/vid_pretrain.py --dataset_dir DIR [--key value]``."""
import sys

from vcmr.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain-video", *sys.argv[1:]]))
