"""``vcmr demo``: the paper's whole experiment in miniature, on synthetic data, with a report.

    vcmr demo --out demo_out --scale small --seed 0

Stages (each calls the same function as the corresponding command):

1. ``vcmr synth``: a music-video corpus (with videos the filter must drop and a broken file)
   and a MagnaTagATune-format tagging dataset;
2. ``vcmr prepare``: middle window, scene filter, audio segments, per-second frame features;
3. ``vcmr train music`` on the prepared audio;
4. ``vcmr train video`` from the stage-1 checkpoint;
5. ``vcmr train tagging`` for three encoders: random, audio-only (stage 1), video-conditioned (stage 2);
6. ``vcmr evaluate`` of the three, and audio-video retrieval of the stage-2 model on held-out
   videos.

The scales shrink the paper's geometry (window, segments, longest scene) and the model so that
the run fits a laptop; the report lists every setting it used.
"""
from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

import vcmr
from vcmr.config import config_to_dict, load_config
from vcmr.data.audio_visual import kept_ids, split_ids
from vcmr.demo.report import ENCODER_LABELS, prepare_rows, write_report
from vcmr.demo.synth.corpus import make_music_video_corpus
from vcmr.demo.synth.formats import write_magnatagatune
from vcmr.errors import VcmrError
from vcmr.evaluate.retrieval import build_index, segment_retrieval_metrics, video_retrieval_metrics
from vcmr.evaluate.tagging import evaluate_checkpoints
from vcmr.prepare.manifest import read_manifest
from vcmr.prepare.pipeline import prepare_videos
from vcmr.train.music import train_music
from vcmr.train.tagging import train_tagging
from vcmr.train.video import train_video


@dataclass
class Scale:
    """Sizes of one demo scale. Geometry keys go to ``vcmr prepare``; model keys to every stage."""
    n_videos: int
    video_seconds: float
    n_tagging_clips: int
    clip_seconds: float
    mus_epochs: int
    vid_epochs: int
    sup_epochs: int
    prepare: dict[str, Any]
    model: list[str]
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

SCALES: dict[str, Scale] = {
    "tiny": Scale(n_videos=14, video_seconds=14.0, n_tagging_clips=48, clip_seconds=6.0,
                  mus_epochs=2, vid_epochs=3, sup_epochs=3, prepare=_SMALL_GEOMETRY, model=_SMALL_MODEL),
    "small": Scale(n_videos=64, video_seconds=14.0, n_tagging_clips=160, clip_seconds=10.0,
                   mus_epochs=8, vid_epochs=25, sup_epochs=10, prepare=_SMALL_GEOMETRY, model=_SMALL_MODEL),
    # The paper's geometry: middle 120 s, 8 x 15 s segments, scenes <= 30 s, frames at 5 fps.
    "medium": Scale(n_videos=48, video_seconds=150.0, n_tagging_clips=300, clip_seconds=29.1,
                    mus_epochs=10, vid_epochs=15, sup_epochs=15, model=_MEDIUM_MODEL,
                    prepare={"window_seconds": 120.0, "segment_seconds": 15.0, "n_segments": 8,
                             "max_scene_seconds": 30.0, "frames_per_second": 5},
                    video_size=(160, 120), video_fps=10),
}


class StageTimer:
    """Prints ``[i/n] name ...``, then ``[i/n] done in T s: <summary>`` (one line with the
    stage's key numbers), and records the wall time of each stage."""

    def __init__(self, n: int, echo: Callable[[str], None] = print):
        self.n, self.i, self.echo, self.times = n, 0, echo, {}

    def run(self, name: str, fn: Callable[[], Any], summary: Callable[[Any], str] | None = None) -> Any:
        self.i += 1
        self.echo(f"[{self.i}/{self.n}] {name} ...")
        t0 = time.perf_counter()
        out = fn()
        self.times[name] = time.perf_counter() - t0
        said = f": {summary(out)}" if summary else ""
        self.echo(f"[{self.i}/{self.n}] done in {self.times[name]:.1f} s{said}")
        return out


def _rel(path: str | None, out: Path) -> str:
    try:
        return str(Path(path).relative_to(out))
    except (TypeError, ValueError):
        return str(path)


def _say_data(data: dict) -> str:
    faulty = sum(1 for v in data["videos"] if v["expected"] != "kept")
    return f"{len(data['videos'])} music videos ({faulty} with planted faults), {len(data['clips'])} tagging clips"


def _say_prepare(prep: dict) -> str:
    by: dict[str, list[tuple[str, int]]] = {}
    for outcome, reason, n in prepare_rows(prep):
        by.setdefault(outcome, []).append((reason, int(n)))
    parts = []
    for outcome, rows in by.items():
        named = [f"{r} {n}" for r, n in rows if r != "—"]
        parts.append(f"{outcome} {sum(n for _, n in rows)}" + (f" ({', '.join(named)})" if named else ""))
    return "; ".join(parts)


def _say_tagging(tagging: dict, retrieval: dict) -> str:
    auc = ", ".join(f"{ENCODER_LABELS[e].split(' (')[0]} {r['overlaps'][next(iter(r['overlaps']))]['roc_auc']:.3f}"
                    for e, r in tagging.items())
    seg = retrieval["segments"]
    return (f"test ROC-AUC {auc}; segment retrieval R@1 audio→video {seg['a2v_R@1']:.3f} "
            f"(chance {seg['chance_R@1']:.3f})")


def _common_train(out: Path, seed: int, epochs: int, name: str) -> list[str]:
    return ["--log_dir", str(out / "runs"), "--experiment_name", name, "--seed", str(seed),
            "--m_epochs", str(epochs), "--workers", "0", "--accelerator", "cpu", "--devices", "1",
            "--progress_bar", "false", "--log_freq", "1", "--deterministic", "true",
            "--experiment_version", "demo"]


def build_configs(out: Path, scale: Scale, seed: int, frame_encoder: str) -> dict[str, Any]:
    """Every stage's config for this demo (resolved through the same loader as the commands)."""
    av, mtat = out / "data" / "prepared", out / "data" / "magnatagatune"
    # A fixed encoder batch: the measured fastest one can change between runs, and with it the
    # last bits of the features (the demo promises the same numbers for the same seed).
    prep = load_config("prepare", None, {**scale.prepare, "frame_encoder": frame_encoder,
                                         "encoder_batch_size": 16})
    seg = scale.prepare["segment_seconds"]
    mus = load_config("music", None, scale.model + _common_train(out, seed, scale.mus_epochs, "stage1_music") + [
        "--dataset_dir", str(av / "audio"), "--batch_size", "16", "--excerpt_seconds", str(seg),
        "--learning_rate", "1e-3"])
    vid = load_config("video", None, scale.model + _common_train(out, seed, scale.vid_epochs, "stage2_video") + [
        "--dataset_dir", str(av), "--batch_size", "16", "--lstm_hidden", "128", "--video_hidden", "128",
        "--valid_fraction", "0.2", "--learning_rate", "1e-3", "--segment_seconds", str(int(seg))])
    sup = {}
    for enc in ENCODERS:
        sup[enc] = load_config("tagging", None, scale.model + _common_train(out, seed, scale.sup_epochs, f"stage3_{enc}") + [
            "--dataset", "magnatagatune", "--dataset_dir", str(mtat), "--split", "pons2017",
            "--batch_size", "16", "--learning_rate", "3e-3", "--patience", str(scale.sup_epochs)])
    ev = load_config("evaluate", None, {"dataset": "magnatagatune", "dataset_dir": str(mtat), "split": "pons2017",
                                    "subset": "test", "results_dir": str(out / "results"),
                                    "overlap_ratios": [0.0, 0.5], "accelerator": "cpu", "workers": 0})
    return {"prepare": prep, "music": mus, "video": vid, "tagging": sup, "evaluate": ev}


ENCODERS = ("random", "audio_only", "video_conditioned")

# Keys that only place files, name runs or set the console: not part of the recipe.
_NOT_RECIPE = {"dataset_dir", "log_dir", "experiment_name", "experiment_version", "results_dir",
               "cache_dir", "ckpt_path", "audio_encoder_ckpt_path", "pretrained_ckpt_path",
               "progress_bar", "log_freq", "model_name", "ckpt_paths", "ckpt_names"}


def recipe_overrides(cfgs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage, every recipe key whose demo value differs from the stage default (the
    authors' recipe), so the report can say exactly where the scaled-down demo departs from it."""
    out: dict[str, dict[str, Any]] = {}
    stages = {"music": cfgs["music"], "video": cfgs["video"], "tagging": cfgs["tagging"][ENCODERS[1]]}
    for stage, cfg in stages.items():
        default = config_to_dict(load_config(stage))
        out[stage] = {k: v for k, v in config_to_dict(cfg).items()
                      if k not in _NOT_RECIPE and v != default.get(k)}
    return out


def save_configs(out: Path, cfgs: dict[str, Any]) -> None:
    folder = out / "configs"
    folder.mkdir(parents=True, exist_ok=True)
    for name, cfg in cfgs.items():
        items = cfg.items() if isinstance(cfg, dict) else [(name, cfg)]
        for sub, c in items:
            fname = f"{name}.yaml" if sub == name else f"{name}_{sub}.yaml"
            (folder / fname).write_text(yaml.safe_dump(config_to_dict(c), sort_keys=False))


def generate_data(out: Path, scale: Scale, seed: int) -> dict[str, Any]:
    geo = scale.prepare
    videos = make_music_video_corpus(
        out / "data" / "videos", scale.n_videos, seed=seed, duration=scale.video_seconds,
        size=scale.video_size, fps=scale.video_fps, sample_rate=16000, workers=2,
        n_long_scene=scale.faults["long_scene"], n_too_short=scale.faults["too_short"],
        n_corrupt=scale.faults["corrupt"], min_seconds=geo["window_seconds"],
        max_scene_seconds=geo["max_scene_seconds"])
    clips = write_magnatagatune(out / "data" / "magnatagatune", scale.n_tagging_clips, seed=seed,
                                duration=scale.clip_seconds, sample_rate=16000, workers=2)
    return {"videos": videos, "clips": clips}


def retrieval_on_held_out(stage2_ckpt: str, cfg) -> dict[str, Any]:
    """Segment-level and video-level audio<->video retrieval on the stage-2 validation videos."""
    ids = split_ids(kept_ids(Path(cfg.dataset_dir)), "valid", cfg.valid_fraction)
    model = vcmr.load_model(stage2_ckpt, device="cpu")
    index = build_index(model, cfg.dataset_dir, ids=ids, progress=False)
    return {"held_out_videos": len(ids), "segments": segment_retrieval_metrics(index),
            "videos": video_retrieval_metrics(index)}


def run_demo(out: str | Path = "demo_out", scale: str = "small", frame_encoder: str = "efficientnet-lite0",
             seed: int = 0, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every stage into ``out`` and write ``report.md`` / ``report.html``; returns the facts."""
    if scale not in SCALES:
        raise VcmrError(f"unknown --scale {scale!r}; choose one of {', '.join(SCALES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sc = SCALES[scale]
    cfgs = build_configs(out, sc, seed, frame_encoder)
    save_configs(out, cfgs)
    timer = StageTimer(6, echo)
    facts: dict[str, Any] = {"scale": scale, "seed": seed, "frame_encoder": frame_encoder,
                             "scale_settings": asdict(sc), "machine": _machine(),
                             "recipe_overrides": recipe_overrides(cfgs)}
    t0 = time.perf_counter()
    _data_stages(out, sc, seed, cfgs, timer, facts)
    _training_stages(out, cfgs, timer, facts)
    save_configs(out, cfgs)  # now with the checkpoint paths filled in
    _evaluation_stage(cfgs, timer, facts)
    facts["stage_seconds"] = timer.times
    facts["total_seconds"] = time.perf_counter() - t0
    facts["report"] = write_report(out, facts, cfgs)
    (out / "facts.json").write_text(json.dumps(facts, indent=1, default=str))
    echo(f"report: {facts['report']['md']} and {facts['report']['html']} "
         f"(total {facts['total_seconds'] / 60:.1f} min)")
    return facts


def _data_stages(out: Path, sc: Scale, seed: int, cfgs: dict[str, Any], timer: StageTimer,
                 facts: dict[str, Any]) -> None:
    """Synthetic data, then ``prepare`` on its music videos."""
    data = timer.run("generate synthetic music videos and a MagnaTagATune-format dataset",
                     lambda: generate_data(out, sc, seed), _say_data)
    facts["corpus"] = _corpus_summary(data)
    summary = timer.run("prepare the videos (scene filter, audio segments, frame features)",
                        lambda: prepare_videos([out / "data" / "videos" / "videos"], cfgs["video"].dataset_dir,
                                               cfgs["prepare"], progress=False),
                        lambda sm: _say_prepare(_prepare_summary(sm, Path(cfgs["video"].dataset_dir))))
    facts["prepare"] = _prepare_summary(summary, Path(cfgs["video"].dataset_dir))


def _training_stages(out: Path, cfgs: dict[str, Any], timer: StageTimer, facts: dict[str, Any]) -> None:
    """Stages 1 and 2, then a tagging head on each of the three encoders (stage 3)."""
    s1 = timer.run("stage 1: music pre-training (SimCLR)", lambda: train_music(cfgs["music"]),
                   lambda r: f"best checkpoint {_rel(r.get('best') or r.get('last'), out)}")
    cfgs["video"].audio_encoder_ckpt_path = s1["best"]
    s2 = timer.run("stage 2: video-conditioned pre-training", lambda: train_video(cfgs["video"]),
                   lambda r: f"best checkpoint {_rel(r.get('best') or r.get('last'), out)}")
    facts["runs"] = {"stage1": s1, "stage2": s2}
    pretrained = {"random": "none", "audio_only": s1["best"], "video_conditioned": s2["best"]}

    def stage3():
        res = {}
        for enc in ENCODERS:
            cfgs["tagging"][enc].pretrained_ckpt_path = pretrained[enc]
            res[enc] = train_tagging(cfgs["tagging"][enc])
        return res
    s3 = timer.run("stage 3: tagging heads on frozen encoders (random, stage 1, stage 2)", stage3,
                   lambda r: f"{len(r)} heads trained ({', '.join(ENCODER_LABELS[e] for e in r)})")
    facts["runs"]["stage3"] = s3


def _evaluation_stage(cfgs: dict[str, Any], timer: StageTimer, facts: dict[str, Any]) -> None:
    """Stage 4: song-level tagging of the three heads, retrieval of the stage-2 model."""
    runs = facts["runs"]

    def stage4():
        tagging = evaluate_checkpoints(cfgs["evaluate"], [runs["stage3"][e]["best"] for e in ENCODERS], list(ENCODERS))
        return tagging, retrieval_on_held_out(runs["stage2"]["best"], cfgs["video"])
    tagging, retrieval = timer.run("stage 4: evaluation (tagging, retrieval)", stage4,
                                   lambda r: _say_tagging(*r))
    facts["tagging"] = {k: _strip(v) for k, v in tagging.items()}
    facts["retrieval"] = retrieval


def _strip(result: dict) -> dict:
    """The evaluation result without per-tag rows (they are in per_tag_metrics.csv)."""
    out = dict(result)
    out["overlaps"] = {ov: {k: v for k, v in m.items() if k != "per_tag"} for ov, m in result["overlaps"].items()}
    return out


def _machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "platform": platform.platform(), "gpu": torch.cuda.is_available()}


def _corpus_summary(data: dict) -> dict[str, Any]:
    return {"videos": len(data["videos"]), "expected": dict(Counter(v["expected"] for v in data["videos"])),
            "tagging_clips": len(data["clips"]),
            "tagging_splits": dict(Counter(c["split"] for c in data["clips"]))}


def _prepare_summary(summary: dict, data_dir: Path) -> dict[str, Any]:
    rows = list(read_manifest(data_dir).values())
    return {"counts": dict(Counter(r["status"] for r in rows)),
            "reasons": dict(Counter(f"{r['status']}:{r['reason']}" for r in rows if r.get("reason"))),
            "seconds": summary.get("seconds"),
            "feature_dim": next((r.get("feature_dim") for r in rows if r["status"] == "kept"), None)}
