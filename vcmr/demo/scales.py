"""The demo's scales and the configs of every stage it runs (resolved by the commands' loader).

Each scale sets the sizes of three synthetic sources: music videos as mp4 files (they go
through ``vcmr prepare``), a features-level corpus of many more videos (stages 1 and 2 train on
it; :mod:`vcmr.demo.synth.features`), and two tagging datasets in the real on-disk formats
(MagnaTagATune top-50 and MTG-Jamendo mood/theme).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vcmr.config import config_to_dict, load_config

# The four encoders whose tagging the demo compares, in report order (the baseline of each
# difference comes first).
ENCODERS = ("random", "audio_only", "video_conditioned", "mismatched_control")
DATASETS = ("magnatagatune", "mtg-jamendo")


@dataclass
class Scale:
    """Sizes of one demo scale. Geometry keys go to ``vcmr prepare``; model keys to every stage;
    ``world`` to :class:`vcmr.demo.synth.features.FeatureWorld` (its ``mode_salience`` also to
    the tagging datasets)."""
    n_videos: int
    video_seconds: float
    n_feature_videos: int
    n_tagging_clips: int
    n_jamendo_clips: int
    clip_seconds: float
    mus_epochs: int
    vid_epochs: int
    probe_epochs: int
    prepare: dict[str, Any]
    model: list[str]
    world: dict[str, Any]
    video_size: tuple[int, int] = (96, 72)
    video_fps: int = 8
    faults: dict[str, int] = field(default_factory=lambda: {"long_scene": 1, "too_short": 1, "corrupt": 1})


# SampleCNN at 8 kHz: 3 * 3**8 = 19683 samples = 2.46 s of audio, i.e. 2 s of video per crop.
_SMALL_MODEL = ["--sample_rate", "8000", "--audio_length", "19683", "--n_blocks", "8",
                "--n_channels", "16,16,32,32,32,32,64,64", "--first_block_params.conv_size", "3",
                "--first_block_params.out_channels", "16", "--output_size", "64"]
_MEDIUM_MODEL = ["--sample_rate", "16000", "--audio_length", "59049", "--n_blocks", "9",
                 "--n_channels", "32,32,64,64,64,64,128,128,128", "--first_block_params.conv_size", "3",
                 "--first_block_params.out_channels", "32", "--output_size", "128"]
# Scaled-down paper geometry: window 12 s = 4 x 3 s segments, scenes longer than 8 s dropped.
_SMALL_GEOMETRY = {"window_seconds": 12.0, "segment_seconds": 3.0, "n_segments": 4,
                   "max_scene_seconds": 8.0, "frames_per_second": 2}
_SMALL_WORLD = {"n_segments": 4, "segment_seconds": 3, "sample_rate": 8000, "mode_salience": 2.0}

SCALES: dict[str, Scale] = {
    "tiny": Scale(n_videos=12, video_seconds=14.0, n_feature_videos=24, n_tagging_clips=48,
                  n_jamendo_clips=48, clip_seconds=6.0, mus_epochs=1, vid_epochs=2, probe_epochs=10,
                  prepare=_SMALL_GEOMETRY, model=_SMALL_MODEL, world=_SMALL_WORLD),
    "small": Scale(n_videos=16, video_seconds=14.0, n_feature_videos=400, n_tagging_clips=160,
                   n_jamendo_clips=240, clip_seconds=10.0, mus_epochs=2, vid_epochs=6,
                   probe_epochs=30, prepare=_SMALL_GEOMETRY, model=_SMALL_MODEL, world=_SMALL_WORLD),
    # The paper's geometry: middle 120 s, 8 x 15 s segments, scenes <= 30 s, frames at 5 fps.
    "medium": Scale(n_videos=48, video_seconds=150.0, n_feature_videos=800, n_tagging_clips=300,
                    n_jamendo_clips=300, clip_seconds=29.1, mus_epochs=10, vid_epochs=15,
                    probe_epochs=50, model=_MEDIUM_MODEL,
                    prepare={"window_seconds": 120.0, "segment_seconds": 15.0, "n_segments": 8,
                             "max_scene_seconds": 30.0, "frames_per_second": 5},
                    world={"n_segments": 4, "segment_seconds": 15, "sample_rate": 16000,
                           "mode_salience": 2.0},
                    video_size=(160, 120), video_fps=10),
}


def data_dirs(out: Path) -> dict[str, Path]:
    d = out / "data"
    return {"videos": d / "videos", "prepared": d / "prepared", "features": d / "av_features",
            "magnatagatune": d / "magnatagatune", "mtg-jamendo": d / "mtg_jamendo"}


def _common_train(out: Path, seed: int, epochs: int, name: str) -> list[str]:
    return ["--log_dir", str(out / "runs"), "--experiment_name", name, "--seed", str(seed),
            "--m_epochs", str(epochs), "--workers", "0", "--accelerator", "cpu", "--devices", "1",
            "--progress_bar", "false", "--log_freq", "1", "--deterministic", "true",
            "--experiment_version", f"seed{seed}"]


def _probe_config(out: Path, scale: Scale, seed: int, enc: str, dataset: str):
    dirs = data_dirs(out)
    extra = (["--split", "pons2017"] if dataset == "magnatagatune" else
             ["--split", "split-0", "--subset_category", "moodtheme",
              "--tag_categories", str(dirs[dataset] / "data" / "tags" / "moodtheme_groups.yaml")])
    return load_config("tagging", None, scale.model + _common_train(out, seed, 1, f"probe_{enc}") + [
        "--dataset", dataset, "--dataset_dir", str(dirs[dataset]), "--batch_size", "16",
        "--learning_rate", "3e-3", "--probe_head", "linear", "--probe_epochs", str(scale.probe_epochs),
        "--patience", str(scale.probe_epochs), "--probe_keep", "last", "--results_dir", str(out / "results" / f"seed{seed}"),
        "--model_name", enc, "--cache_dir", str(out / "cache" / f"seed{seed}" / enc)] + extra)


def build_configs(out: Path, scale: Scale, seed: int, frame_encoder: str) -> dict[str, Any]:
    """Every stage's config for one seed of this demo."""
    dirs = data_dirs(out)
    # A fixed encoder batch: the measured fastest one can change between runs, and with it the
    # last bits of the features (the demo promises the same numbers for the same seed).
    prep = load_config("prepare", None, {**scale.prepare, "frame_encoder": frame_encoder,
                                         "encoder_batch_size": 16})
    seg = scale.world["segment_seconds"]
    mus = load_config("music", None, scale.model + _common_train(out, seed, scale.mus_epochs, "stage1_music") + [
        "--dataset_dir", str(dirs["features"] / "audio"), "--batch_size", "16",
        "--excerpt_seconds", str(seg), "--learning_rate", "1e-3"])
    video = {}
    for name, derange in (("video_conditioned", "false"), ("mismatched_control", "true")):
        video[name] = load_config("video", None, scale.model + _common_train(out, seed, scale.vid_epochs, f"stage2_{name}") + [
            "--dataset_dir", str(dirs["features"]), "--batch_size", "16", "--lstm_hidden", "128",
            "--video_hidden", "128", "--valid_fraction", "0.2", "--learning_rate", "1e-3",
            "--segment_seconds", str(int(seg)), "--derange_pairs", derange])
    probes = {ds: {enc: _probe_config(out, scale, seed, enc, ds) for enc in ENCODERS} for ds in DATASETS}
    return {"prepare": prep, "music": mus, "video": video, "probe": probes}


# Keys that only place files, name runs or set the console: not part of the recipe.
_NOT_RECIPE = {"dataset_dir", "log_dir", "experiment_name", "experiment_version", "results_dir",
               "cache_dir", "ckpt_path", "audio_encoder_ckpt_path", "pretrained_ckpt_path",
               "progress_bar", "log_freq", "model_name", "ckpt_paths", "ckpt_names",
               "tag_categories", "derange_pairs", "seed"}


def recipe_overrides(cfgs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage, every recipe key whose demo value differs from the stage default (the
    authors' recipe), so the report can say exactly where the scaled-down demo departs from it."""
    out: dict[str, dict[str, Any]] = {}
    stages = {"music": cfgs["music"], "video": cfgs["video"]["video_conditioned"],
              "tagging": cfgs["probe"]["magnatagatune"]["audio_only"]}
    for stage, cfg in stages.items():
        default = config_to_dict(load_config(stage))
        out[stage] = {k: v for k, v in config_to_dict(cfg).items()
                      if k not in _NOT_RECIPE and v != default.get(k)}
    return out


def save_configs(folder: Path, cfgs: dict[str, Any]) -> None:
    """One YAML per stage config (nested groups flattened into ``<group>_<name>.yaml``)."""
    folder.mkdir(parents=True, exist_ok=True)

    def walk(prefix: str, c: Any):
        if isinstance(c, dict):
            for k, v in c.items():
                walk(f"{prefix}_{k}" if prefix else k, v)
        else:
            (folder / f"{prefix}.yaml").write_text(yaml.safe_dump(config_to_dict(c), sort_keys=False))
    walk("", cfgs)
