"""Seed-compatible entry point: ``python vcmr/scripts/preprocess_data.py INPUT... --out DIR``.

Same options as ``vcmr prepare`` (see ``vcmr prepare --help``).
"""
import sys

from vcmr.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare", *sys.argv[1:]]))
