"""Seed-compatible entry point: ``python vcmr/scripts/mus_pretrain.py [--dataset_dir DIR] [--key value]``.

Like the original script, it reads ``config/config_mus.yaml`` from the working folder when
no ``--config`` is given (the authors' file is accepted as it is: see ``vcmr.compat``), then
runs ``vcmr pretrain-music``.
"""
import sys
from pathlib import Path

from vcmr.cli import main

CONFIG = Path("config") / "config_mus.yaml"


def with_default_config(args: list[str]) -> list[str]:
    given = any(a == "--config" or a.startswith("--config=") for a in args)
    return args if given or not CONFIG.is_file() else ["--config", str(CONFIG), *args]


if __name__ == "__main__":
    sys.exit(main(["pretrain-music", *with_default_config(sys.argv[1:])]))
