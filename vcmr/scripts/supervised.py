"""Seed-compatible entry point: ``python vcmr/scripts/supervised.py [--dataset NAME --dataset_dir DIR] [--key value]``.

Like the original script, it reads ``config/config_sup.yaml`` from the working folder when
no ``--config`` is given (the authors' file is accepted as it is: see ``vcmr.config.authors``), then
runs ``vcmr train tagging``.
"""
import sys

from vcmr.cli import run_seed_script

if __name__ == "__main__":
    sys.exit(run_seed_script(["train", "tagging"], "config_sup.yaml", sys.argv[1:]))
