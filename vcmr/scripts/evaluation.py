"""Seed-compatible entry point: ``python vcmr/scripts/evaluation.py [--dataset NAME --dataset_dir DIR] [--key value]``.

Like the original script, it reads ``config/config_eval.yaml`` from the working folder when
no ``--config`` is given (the authors' file is accepted as it is: see ``vcmr.config.authors``), then
runs ``vcmr evaluate``.
"""
import sys

from vcmr.cli import run_seed_script

if __name__ == "__main__":
    sys.exit(run_seed_script(["evaluate"], "config_eval.yaml", sys.argv[1:]))
