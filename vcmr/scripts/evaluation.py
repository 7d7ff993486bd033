"""Seed-compatible entry point: ``python vcmr/scripts/evaluation.py --dataset NAME --dataset_dir DIR [--key value]``."""
import sys

from vcmr.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
