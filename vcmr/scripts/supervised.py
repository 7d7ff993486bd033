"""Seed-compatible entry point: ``python vcmr/scripts/supervised.py [--dataset NAME --dataset_dir DIR] [--key value]``.

Like the original script, it reads ``config/config_sup.yaml`` from the working folder when
no ``--config`` is given (the authors' file is accepted as it is: see ``vcmr.compat``), then
runs ``vcmr finetune``.
"""
import sys
from pathlib import Path

from vcmr.cli import main

CONFIG = Path("config") / "config_sup.yaml"


def with_default_config(args: list[str]) -> list[str]:
    given = any(a == "--config" or a.startswith("--config=") for a in args)
    return args if given or not CONFIG.is_file() else ["--config", str(CONFIG), *args]


if __name__ == "__main__":
    sys.exit(main(["finetune", *with_default_config(sys.argv[1:])]))
