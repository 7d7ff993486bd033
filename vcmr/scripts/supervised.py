"""Seed-compatible entry point: ``python vcmr/scripts/supervised.py --dataset NAME --dataset_dir DIR [--key value]``."""
import sys

from vcmr.cli import main

if __name__ == "__main__":
    sys.exit(main(["finetune", *sys.argv[1:]]))
