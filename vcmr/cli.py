"""The ``vcmr`` command. Each subcommand lives in ``vcmr/commands/<name>.py`` with two
functions, ``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when
their subcommand runs, so ``vcmr embed`` works from the core install. For the same reason
Lightning (``train`` extra) is imported only when ``--verbose`` asks for it.

Config-driven subcommands accept ``--config FILE`` and any ``--key value`` override; unknown
options are collected into ``args.overrides`` and checked by ``vcmr.config``.

Before anything imports torch, ``main`` sets the CPU thread defaults (``vcmr.threads``:
``VCMR_THREADS``, OpenMP threads that sleep instead of spinning while they wait).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from vcmr._version import __version__
from vcmr.errors import ConfigError, VcmrError
from vcmr.threads import configure_threads

# name -> (module under vcmr.commands, one-line help, takes --key value overrides)
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "demo": ("demo", "run the whole framework end to end on synthetic data and write a report", False),
    "synth": ("synth", "generate synthetic music, music videos and tagging datasets", False),
    "prepare": ("prepare", "turn music videos into 16 kHz audio segments + per-second frame embeddings", True),
    "train": ("train", "train a stage: music (1: SimCLR on audio), video (2: audio-video), "
                       "tagging (3: a tagging head on a pre-trained encoder)", True),
    "retrieve": ("retrieve", "rank music for a video (or videos for music) with a stage-2 model", False),
    "cache-audio": ("cache_audio", "decode and resample a tagging dataset once into a cache", True),
    "probe": ("probe", "fast linear/MLP probe on cached frozen embeddings", True),
    "evaluate": ("evaluate", "stage 4: song-level tagging evaluation (ROC-AUC, PR-AUC)", True),
    "compare": ("compare", "differences between evaluated models, with paired bootstrap intervals", False),
    "embed": ("embed", "compute embeddings of audio (or video) files with any model", False),
    "export": ("export", "export a checkpoint to a portable .safetensors model file (or a model to ONNX)", False),
}

# training commands: ``--verbose`` brings back Lightning's summaries and device lines
VERBOSE_COMMANDS = ("train",)


def _top_level_help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: vcmr <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_, _) in COMMANDS.items()]
    lines += ["", "Run `vcmr <command> --help` for the options of a command."]
    return "\n".join(lines)


def build_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    module_name, help_, takes_overrides = COMMANDS[name]
    module = importlib.import_module(f"vcmr.commands.{module_name}")
    parser = argparse.ArgumentParser(prog=f"vcmr {name}", description=help_)
    module.add_arguments(parser)
    if name in VERBOSE_COMMANDS:
        parser.add_argument("--verbose", action="store_true",
                            help="also show Lightning's model summaries, device lines and "
                                 "library warnings (same as VCMR_VERBOSE=1)")
    if takes_overrides:
        parser.epilog = "Any config key can be overridden as --key value (see config/*.yaml)."
    return parser, module


def _tolerate_odd_names() -> None:
    """File names that are not valid UTF-8 (possible on Linux) are printed with ``\\xNN``
    escapes instead of crashing a finished run in its last ``print``."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def split_overrides(parser: argparse.ArgumentParser, args: list[str]) -> tuple[list[str], list[str]]:
    """(the command's own arguments, the ``--key value`` config overrides).

    Done before argparse sees the line: given an unknown ``--key`` followed by a value,
    ``parse_known_args`` keeps the value as a positional input (``--window_seconds 12
    clip.mp4`` read 12 as an input and the key as a bare flag). An unknown ``--key`` takes the
    next token as its value unless that starts with ``--`` (write booleans as ``--key true``).
    """
    known = parser._option_string_actions
    own, overrides, i = [], [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            own += args[i:]
            break
        name = arg.split("=", 1)[0]
        is_known = name in known or sum(k.startswith(name) for k in known) == 1
        if arg.startswith("--") and not is_known:
            overrides.append(arg)
            if "=" not in arg and i + 1 < len(args) and not args[i + 1].startswith("--"):
                overrides.append(args[i + 1])
                i += 1
        else:
            own.append(arg)
        i += 1
    return own, overrides


def parse_command(name: str, argv: list[str]) -> tuple[argparse.Namespace, object]:
    """(the parsed arguments of ``vcmr NAME ARGV...``, the command's module); config-driven
    commands get the ``--key value`` overrides they do not declare in ``args.overrides``."""
    parser, module = build_parser(name)
    if not COMMANDS[name][2]:
        return parser.parse_args(argv), module
    rest, overrides = split_overrides(parser, argv)
    args = parser.parse_intermixed_args(rest)  # inputs may follow options
    args.overrides = overrides
    return args, module


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_level_help())
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    _tolerate_odd_names()
    try:
        configure_threads()  # before any subcommand imports torch: see vcmr.threads
    except VcmrError as e:
        print(f"vcmr: error: {e}", file=sys.stderr)
        return 2
    name = argv[0]
    if name not in COMMANDS:
        print(f"vcmr: unknown command {name!r}\n\n{_top_level_help()}", file=sys.stderr)
        return 2
    try:
        args, module = parse_command(name, argv[1:])
        if name in VERBOSE_COMMANDS and args.verbose:
            from vcmr.train.trainer import set_verbose  # Lightning: lazy, see the docstring
            set_verbose(True)
        return int(module.run(args) or 0)
    except (VcmrError, ConfigError, FileNotFoundError) as e:
        print(f"vcmr {name}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # last line of defence: disk full, permissions changed mid-run, ...
        print(f"vcmr {name}: error: {e}. Check the path, the free disk space and the "
              f"permissions, then run the command again", file=sys.stderr)
        return 1
    except ImportError as e:
        print(f"vcmr {name}: error: {e}. This command needs an optional dependency: "
              f"pip install 'vcmr[all]'", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"vcmr {name}: interrupted", file=sys.stderr)
        return 130


def run_seed_script(command: list[str], authors_file: str, args: list[str]) -> int:
    """What the original VCMR scripts did: read ``config/<authors_file>`` (their name, e.g.
    ``config_mus.yaml``) from the working folder when no ``--config`` is given (the authors' own
    file is accepted as it is, see ``vcmr.config.authors``), then run ``vcmr <command...>``."""
    default = Path("config") / authors_file
    given = any(a == "--config" or a.startswith("--config=") for a in args)
    if not given and default.is_file():
        args = ["--config", str(default), *args]
    return main([*command, *args])


if __name__ == "__main__":
    sys.exit(main())
