"""``vcmr demo``: the paper's experiment in miniature, on a synthetic world built so that it can
test the paper's claim, with a negative control and intervals.

    vcmr demo --out demo_out --scale small --seed 0 --seeds 2

Stages (each calls the same function as the corresponding command):

1. ``vcmr synth``: music videos as mp4 files (with planted faults), a features-level corpus of
   many more videos whose pictures show the mode (major/minor) that the audio carries only as a
   chord quality, and two tagging datasets (MagnaTagATune top-50, MTG-Jamendo mood/theme);
2. ``vcmr prepare`` on the mp4 videos: middle window, scene filter, audio, frame features;
3. per seed: ``vcmr train music`` on the features-level corpus' audio;
4. ``vcmr train video`` from that checkpoint on the true pairs (video-conditioned) and
   ``--derange_pairs true`` (the mismatched control: each video's audio with another video's
   frames), both kept at the same, last epoch;
5. ``vcmr probe`` (a linear head on frozen embeddings, song-level test metrics) for the four
   encoders (random, audio-only, video-conditioned, control) on both datasets, and
   audio-video retrieval of both stage-2 models on held-out videos;
6. paired bootstrap differences between the encoders (``vcmr compare``) and the report.

See docs/demo.md for the world's design and what the demo measured.
"""
from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

import vcmr
from vcmr.data.audio_visual import kept_ids, split_ids
from vcmr.demo.report import prepare_rows, write_report
from vcmr.demo.scales import (DATASETS, ENCODERS, SCALES, Scale, build_configs, data_dirs,
                              recipe_overrides, save_configs)
from vcmr.demo.example import explain_example
from vcmr.demo.stats import seed_summary
from vcmr.demo.synth.corpus import make_music_video_corpus
from vcmr.demo.synth.features import FeatureWorld, write_feature_corpus
from vcmr.demo.synth.formats import (JAMENDO_PREFIX, MOOD_GROUNDING, write_magnatagatune,
                                     write_mtg_jamendo)
from vcmr.errors import VcmrError
from vcmr.evaluate.probe import probe
from vcmr.evaluate.retrieval import build_index, segment_retrieval_metrics, video_level
from vcmr.metrics.retrieval import match_ranks, retrieval_metrics
from vcmr.prepare.manifest import read_manifest
from vcmr.prepare.pipeline import prepare_videos
from vcmr.train.music import train_music
from vcmr.train.video import train_video


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
    return (f"{len(data['videos'])} mp4 music videos ({faulty} with planted faults), "
            f"{len(data['features'])} features-level videos, {len(data['clips'])} MagnaTagATune-format "
            f"clips, {len(data['jamendo'])} MTG-Jamendo-format tracks")


def _say_prepare(prep: dict) -> str:
    by: dict[str, list[tuple[str, int]]] = {}
    for outcome, reason, n in prepare_rows(prep):
        by.setdefault(outcome, []).append((reason, int(n)))
    parts = []
    for outcome, rows in by.items():
        named = [f"{r} {n}" for r, n in rows if r != "—"]
        parts.append(f"{outcome} {sum(n for _, n in rows)}" + (f" ({', '.join(named)})" if named else ""))
    return "; ".join(parts)


def _say_probe(res: dict) -> str:
    parts = []
    for ds in DATASETS:
        aucs = ", ".join(f"{e.replace('_', '-')} {res[ds][e]['test']['roc_auc']:.3f}" for e in ENCODERS)
        parts.append(f"{ds} ROC-AUC {aucs}")
    return "; ".join(parts)


def _say_retrieval(ret: dict) -> str:
    v = {k: r["videos"] for k, r in ret.items()}
    return (f"held-out video R@1 audio→video: video-conditioned {v['video_conditioned']['a2v_R@1']:.3f}, "
            f"control {v['mismatched_control']['a2v_R@1']:.3f} (chance {v['video_conditioned']['chance_R@1']:.3f})")


def generate_data(out: Path, scale: Scale, seed: int) -> dict[str, Any]:
    """The mp4 corpus, the features-level corpus and the two tagging datasets."""
    geo, dirs, world = scale.prepare, data_dirs(out), FeatureWorld(**scale.world)
    videos = make_music_video_corpus(
        dirs["videos"], scale.n_videos, seed=seed, duration=scale.video_seconds,
        size=scale.video_size, fps=scale.video_fps, sample_rate=16000, workers=2,
        n_long_scene=scale.faults["long_scene"], n_too_short=scale.faults["too_short"],
        n_corrupt=scale.faults["corrupt"], min_seconds=geo["window_seconds"],
        max_scene_seconds=geo["max_scene_seconds"])
    features = write_feature_corpus(dirs["features"], scale.n_feature_videos, seed=seed, world=world, workers=2)
    salience = world.mode_salience
    clips = write_magnatagatune(dirs["magnatagatune"], scale.n_tagging_clips, seed=seed,
                                duration=scale.clip_seconds, sample_rate=16000, workers=2,
                                mode_salience=salience)
    jamendo = write_mtg_jamendo(dirs["mtg-jamendo"], scale.n_jamendo_clips, seed=seed,
                                duration=scale.clip_seconds, sample_rate=16000, workers=2,
                                mode_salience=salience)
    groups = {g: [JAMENDO_PREFIX["moodtheme"] + t for t in ts] for g, ts in MOOD_GROUNDING.items()}
    (dirs["mtg-jamendo"] / "data" / "tags" / "moodtheme_groups.yaml").write_text(yaml.safe_dump(groups))
    return {"videos": videos, "features": features, "clips": clips, "jamendo": jamendo}


def retrieval_on_held_out(stage2_ckpt: str, cfg) -> dict[str, Any]:
    """Segment-level and video-level audio<->video retrieval on the stage-2 validation videos
    (always with their true pairs, also for the control), with each video's match rank (for
    the bootstrap intervals of :func:`vcmr.demo.stats.retrieval_summary`)."""
    ids = split_ids(kept_ids(Path(cfg.dataset_dir)), "valid", cfg.valid_fraction)
    model = vcmr.load_model(stage2_ckpt, device="cpu")
    index = build_index(model, cfg.dataset_dir, ids=ids, progress=False)
    audio, video = video_level(index)
    return {"held_out_videos": len(ids), "segments": segment_retrieval_metrics(index),
            "videos": retrieval_metrics(audio, video), "video_ids": list(ids),
            "video_ranks": match_ranks(audio, video)}


def run_demo(out: str | Path = "demo_out", scale: str = "small", frame_encoder: str = "efficientnet-lite0",
             seed: int = 0, seeds: int = 1, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every stage into ``out`` and write ``report.md`` / ``report.html``; returns the facts.

    ``seeds``: the pre-training stages (1, 2, control) and the probes run for seeds ``seed`` ..
    ``seed + seeds - 1`` on the same data; the report gives mean ± spread over them."""
    if scale not in SCALES:
        raise VcmrError(f"unknown --scale {scale!r}; choose one of {', '.join(SCALES)}")
    if seeds < 1:
        raise VcmrError(f"--seeds must be at least 1, got {seeds}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sc = SCALES[scale]
    seed_list = list(range(seed, seed + seeds))
    cfgs = {s: build_configs(out, sc, s, frame_encoder) for s in seed_list}
    timer = StageTimer(2 + 4 * seeds + 1, echo)
    facts: dict[str, Any] = {"scale": scale, "seed": seed, "seeds": seed_list, "frame_encoder": frame_encoder,
                             "scale_settings": asdict(sc), "machine": _machine(),
                             "recipe_overrides": recipe_overrides(cfgs[seed]), "per_seed": {}}
    t0 = time.perf_counter()
    _data_stages(out, sc, seed, cfgs[seed], timer, facts)
    for s in seed_list:
        facts["per_seed"][s] = _seed_stages(out, s, cfgs[s], timer)
        save_configs(out / "configs" / f"seed{s}", cfgs[s])  # with the checkpoint paths filled in
    facts["summary"] = timer.run("paired bootstrap differences between the encoders",
                                 lambda: seed_summary(facts["per_seed"]), _say_summary)
    facts["stage_seconds"] = timer.times
    facts["total_seconds"] = time.perf_counter() - t0
    facts["report"] = write_report(out, facts)
    (out / "facts.json").write_text(json.dumps(facts, indent=1, default=str))
    echo(f"report: {facts['report']['md']} and {facts['report']['html']} "
         f"(total {facts['total_seconds'] / 60:.1f} min)")
    return facts


def _say_summary(summary: dict) -> str:
    row = next((r for r in summary["differences"] if r["dataset"] == "mtg-jamendo" and r["category"] == "visual"
                and r["model"] == "video_conditioned" and r["baseline"] == "audio_only"
                and r["metric"] == "roc_auc"), None)
    if row is None:
        return "no visually grounded category in the test songs"
    return (f"MTG-Jamendo visual tags, video-conditioned − audio-only ROC-AUC {row['difference']:+.3f} "
            f"[{row['low']:+.3f}, {row['high']:+.3f}]")


def _data_stages(out: Path, sc: Scale, seed: int, cfgs: dict[str, Any], timer: StageTimer,
                 facts: dict[str, Any]) -> None:
    """Synthetic data, then ``prepare`` on its mp4 music videos."""
    dirs = data_dirs(out)
    data = timer.run("generate synthetic music videos, a features-level corpus and two tagging datasets",
                     lambda: generate_data(out, sc, seed), _say_data)
    facts["corpus"] = _corpus_summary(data)
    summary = timer.run("prepare the mp4 videos (scene filter, audio segments, frame features)",
                        lambda: prepare_videos([dirs["videos"] / "videos"], dirs["prepared"],
                                               cfgs["prepare"], progress=False),
                        lambda sm: _say_prepare(_prepare_summary(sm, dirs["prepared"])))
    facts["prepare"] = _prepare_summary(summary, dirs["prepared"])


def _seed_stages(out: Path, seed: int, cfgs: dict[str, Any], timer: StageTimer) -> dict[str, Any]:
    """Stage 1, the real and the control stage 2, probes of the four encoders, retrieval."""
    tag = f" (seed {seed})"
    s1 = timer.run("stage 1: music pre-training (SimCLR)" + tag, lambda: train_music(cfgs["music"]),
                   lambda r: f"checkpoint {_rel(r.get('last'), out)}")
    runs: dict[str, Any] = {"stage1": s1}
    for name in ("video_conditioned", "mismatched_control"):
        cfgs["video"][name].audio_encoder_ckpt_path = s1["last"]
    for name, what in (("video_conditioned", "true pairs"), ("mismatched_control", "deranged pairs: the control")):
        runs[name] = timer.run(f"stage 2: video-conditioned pre-training on {what}{tag}",
                               lambda n=name: train_video(cfgs["video"][n]),
                               lambda r: f"last-epoch checkpoint {_rel(r.get('last'), out)}")
    ckpts = {"random": "none", "audio_only": s1["last"], "video_conditioned": runs["video_conditioned"]["last"],
             "mismatched_control": runs["mismatched_control"]["last"]}

    def evaluate():
        res = {ds: {} for ds in DATASETS}
        for ds in DATASETS:
            for enc in ENCODERS:
                cfgs["probe"][ds][enc].pretrained_ckpt_path = ckpts[enc]
                res[ds][enc] = _slim(probe(cfgs["probe"][ds][enc]))
        ret = {n: retrieval_on_held_out(ckpts[n], cfgs["video"][n]) for n in ("video_conditioned", "mismatched_control")}
        ex = explain_example(ckpts["video_conditioned"], cfgs["video"]["video_conditioned"],
                             out / "figures" / f"seed{seed}")
        return res, ret, ex
    probes, retrieval, example = timer.run("stages 3-4: linear probes on frozen encoders, retrieval" + tag,
                                           evaluate, lambda r: _say_probe(r[0]) + "; " + _say_retrieval(r[1]))
    return {"runs": runs, "checkpoints": ckpts, "probes": probes, "retrieval": retrieval, "example": example}


def _slim(result: dict) -> dict:
    """A probe result without per-tag rows (they are in per_tag_metrics.csv)."""
    keep = ("model_name", "dataset", "n_songs", "categories", "files", "epochs", "best_valid_pr_auc", "timing")
    out = {k: result[k] for k in keep if k in result}
    out["test"] = {k: v for k, v in result["test"].items() if k != "per_tag"}
    return out


def _machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "platform": platform.platform(), "gpu": torch.cuda.is_available()}


def _corpus_summary(data: dict) -> dict[str, Any]:
    return {"videos": len(data["videos"]), "expected": dict(Counter(v["expected"] for v in data["videos"])),
            "feature_videos": len(data["features"]),
            "feature_modes": dict(Counter(v["mode"] for v in data["features"])),
            "tagging_clips": len(data["clips"]),
            "tagging_splits": dict(Counter(c["split"] for c in data["clips"])),
            "jamendo_tracks": len(data["jamendo"]),
            "jamendo_splits": dict(Counter(c["split"] for c in data["jamendo"]))}


def _prepare_summary(summary: dict, data_dir: Path) -> dict[str, Any]:
    rows = list(read_manifest(data_dir).values())
    return {"counts": dict(Counter(r["status"] for r in rows)),
            "reasons": dict(Counter(f"{r['status']}:{r['reason']}" for r in rows if r.get("reason"))),
            "seconds": summary.get("seconds"),
            "feature_dim": next((r.get("feature_dim") for r in rows if r["status"] == "kept"), None)}
