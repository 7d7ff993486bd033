"""One module per ``vcmr`` subcommand: ``add_arguments(parser)`` and ``run(args)``; no logic.

Flags are written with underscores, as config keys are (``--batch_size``); every flag of more
than one word also answers to its dashed spelling (``--batch-size``), listed second so that
``--help`` and the error messages show the underscore form.
"""


def flag_names(key: str) -> list[str]:
    """``["--key_name", "--key-name"]`` for a key with underscores, else ``["--key"]``."""
    return [f"--{key}"] + ([f"--{key.replace('_', '-')}"] if "_" in key else [])
