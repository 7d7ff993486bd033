"""One flag style on the `vcmr` command line: underscores (as config keys), dashes accepted too."""
import pytest

from vcmr.cli import COMMANDS, build_parser, parse_command
from vcmr.config import load_config, parse_overrides

# command -> (arguments with underscore flags, what they must set: args attribute or config key)
CASES = {
    "embed": (["a.wav", "--ckpt", "m.ckpt", "--out", "e.npz", "--song_level", "--batch_size", "4"],
              {"song_level": True, "batch_size": 4}),
    "export": (["last.ckpt", "--hub_dir", "hub"], {"hub_dir": "hub"}),
    "demo": (["--frame_encoder", "clip"], {"frame_encoder": "clip"}),
    "synth": (["music-videos", "--out", "o", "--n", "3", "--n_long_scene", "1", "--n_no_audio", "2",
               "--sample_rate", "16000", "--no_progress"],
              {"n_long_scene": 1, "n_no_audio": 2, "sample_rate": 16000, "no_progress": True}),
    "retrieve": (["--ckpt", "m.ckpt", "--dataset_dir", "data", "--video", "v1"], {"dataset_dir": "data"}),
    "cache-audio": (["--dataset_dir", "data", "--cache_dir", "cache"],
                    {"dataset_dir": "data", "cache_dir": "cache"}),
    "evaluate": (["--dataset_dir", "data", "--overlap_ratios", "0,0.5"],
                 {"dataset_dir": "data", "overrides": {"overlap_ratios": "0,0.5"}}),
    "compare": (["res/a", "res/b", "--bootstrap_resamples", "200"], {"results": ["res/a", "res/b"],
                                                                     "bootstrap_resamples": 200}),
    "probe": (["--probe_head", "mlp", "--probe_epochs", "3"],
              {"overrides": {"probe_head": "mlp", "probe_epochs": "3"}}),
    "prepare": (["videos/", "--out", "data", "--frame_encoder", "clip", "--ray_address", "auto",
                 "--no_progress", "--window_seconds", "12"],
                {"frame_encoder": "clip", "ray_address": "auto", "no_progress": True,
                 "overrides": {"window_seconds": "12"}}),
    "train": (["music", "--batch_size", "4", "--first_block_params.conv_size", "3"],
              {"stage": "music", "overrides": {"batch_size": "4", "first_block_params": {"conv_size": "3"}}}),
}


def dashed(argv: list[str]) -> list[str]:
    return [a.replace("_", "-") if a.startswith("--") else a for a in argv]


def parsed(name: str, argv: list[str]) -> dict:
    args, _ = parse_command(name, argv)
    out = vars(args)
    if "overrides" in out:
        out["overrides"] = parse_overrides(out["overrides"])
    return out


def test_every_command_is_covered():
    assert set(CASES) == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_underscore_and_dash_spellings_parse_alike(name):
    argv, expected = CASES[name]
    assert dashed(argv) != argv
    with_underscores, with_dashes = parsed(name, argv), parsed(name, dashed(argv))
    assert with_underscores == with_dashes
    assert {k: with_underscores[k] for k in expected} == expected


def test_help_shows_the_underscore_spelling_first():
    text = build_parser("embed")[0].format_help()
    assert "--song_level, --song-level" in text and "--batch_size BATCH_SIZE, --batch-size" in text


def test_dashed_config_overrides_reach_the_config():
    args, _ = parse_command("train", dashed(CASES["train"][0]))
    cfg = load_config("music", None, args.overrides)
    assert (cfg.batch_size, cfg.first_block_params.conv_size) == (4, 3)
