"""Seed-compatible entry point: ``python vcmr/scripts/vid_pretrain.py [--dataset_dir DIR] [--key value]``.

Like the original script, it reads ``config/config_vid.yaml`` from the working folder when
no ``--config`` is given (the authors' file is accepted as it is: see ``vcmr.config.authors``), then
runs ``vcmr train video``.
"""
import sys

from vcmr.cli import run_seed_script

if __name__ == "__main__":
    sys.exit(run_seed_script(["train", "video"], "config_vid.yaml", sys.argv[1:]))
