"""Seed-compatible entry point: ``python vcmr/scripts/mus_pretrain.py --dataset_dir DIR [--key value]``."""
import sys

from vcmr.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain-music", *sys.argv[1:]]))
