"""The results part of the demo report: tagging of the four encoders on both datasets (mean ±
spread over seeds), the paired differences with their intervals and in words, the verdict on
the paper's claim, and retrieval of the real and control stage 2."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vcmr.demo.scales import DATASETS, ENCODERS

ENCODER_LABELS = {"random": "random init", "audio_only": "audio-only (stage 1)",
                  "video_conditioned": "video-conditioned (stage 2)",
                  "mismatched_control": "mismatched control (stage 2, deranged pairs)"}
DATASET_LABELS = {"magnatagatune": "MagnaTagATune-format (top-50)",
                  "mtg-jamendo": "MTG-Jamendo-format (mood/theme)"}
GROUP_NOTES = {"visual": "the mode, visually grounded (happy = major, sad = minor)",
               "audible": "tempo, dynamics, style"}


def _pm(s: dict[str, Any]) -> str:
    if s.get("mean") is None:
        return "n/a"
    return f"{s['mean']:.3f}" + (f" ± {s['sd']:.3f}" if len(s["values"]) > 1 else "")


def _iv(r: dict[str, Any]) -> str:
    if r["difference"] is None or r["low"] is None:
        return "n/a"
    return f"{r['difference']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"


def tagging_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Rows: encoders; columns: ROC-AUC of all tags and of each category, then PR-AUC of all."""
    groups = [g for g in summary["groups"]
              if any(summary["means"][e][g]["roc_auc"]["mean"] is not None for e in ENCODERS)]
    header = ["encoder"] + [f"{g} ROC-AUC" for g in groups] + ["all PR-AUC"]
    rows = []
    for enc in ENCODERS:
        m = summary["means"][enc]
        rows.append([ENCODER_LABELS[enc]] + [_pm(m[g]["roc_auc"]) for g in groups] + [_pm(m["all"]["pr_auc"])])
    return header, rows


def differences_table(rows: list[dict], ds: str) -> tuple[list[str], list[list[str]]]:
    header = ["model − baseline", "category", "ROC-AUC difference [95 % interval]", "verdict"]
    out = []
    for r in rows:
        if r["dataset"] == ds and r["metric"] == "roc_auc" and r["difference"] is not None:
            out.append([f"{ENCODER_LABELS[r['model']]} − {ENCODER_LABELS[r['baseline']]}", r["category"],
                        _iv(r), r["verdict"]])
    return header, out


def _find(rows, ds, model, base, cat, metric="roc_auc"):
    return next((r for r in rows if r["dataset"] == ds and r["model"] == model and r["baseline"] == base
                 and r["category"] == cat and r["metric"] == metric), None)


def claim_text(summary: dict[str, Any]) -> str:
    """The paper's claim tested on the visually grounded tags, in words, whatever it shows."""
    rows = summary["differences"]
    vs_audio = _find(rows, "mtg-jamendo", "video_conditioned", "audio_only", "visual")
    vs_ctrl = _find(rows, "mtg-jamendo", "video_conditioned", "mismatched_control", "visual")
    if vs_audio is None or vs_ctrl is None or vs_audio["low"] is None or vs_ctrl["low"] is None:
        return "The test songs hold no visually grounded tag with a positive and a negative song: no verdict."
    held = vs_audio["low"] > 0 and vs_ctrl["low"] > 0

    def say(r, other):
        word = ("larger than its interval (the interval excludes 0)" if r["low"] > 0 else
                "smaller than 0 beyond its interval" if r["high"] < 0 else "within noise (the interval contains 0)")
        return f"video-conditioned − {other}: {_iv(r)}, {word}"
    return (f"**On the visually grounded tags (MTG-Jamendo-format happy / sad), the claim "
            f"{'holds' if held else 'is not shown'}**: {say(vs_audio, 'audio-only')}; "
            f"{say(vs_ctrl, 'mismatched control')} (ROC-AUC, mean over {vs_audio['n_seeds']} seed(s), paired "
            f"bootstrap over {vs_audio['n_songs']} test songs). " + retrieval_text(summary))


def _ci(x: tuple[float, float]) -> str:
    return f"[{x[0]:.3f}, {x[1]:.3f}]"


def retrieval_text(summary: dict[str, Any]) -> str:
    """Held-out video-level retrieval in words: R@1 with intervals and the real − control verdict."""
    ret = summary["retrieval"]
    real, ctrl = ret["video_conditioned"]["videos"], ret["mismatched_control"]["videos"]
    rows = summary["retrieval_differences"]
    parts = []
    for direction, label in (("a2v", "audio → video"), ("v2a", "video → audio")):
        r = next(r for r in rows if r["direction"] == direction and r["k"] == 1)
        word = {"model better": "larger than its interval", "baseline better": "below 0 beyond its interval",
                "within noise": "within noise", "undefined": "undefined"}[r["verdict"]]
        parts.append(f"{label} R@1 {r['real']:.3f} {_ci(r['real_interval'])} for the real stage 2 "
                     f"({r['real'] / r['chance']:.1f}× chance {r['chance']:.3f}) and {r['control']:.3f} "
                     f"{_ci(r['control_interval'])} for the control; real − control "
                     f"{r['difference']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}], {word}")
    n = rows[0]["n_videos"]
    return (f"Held-out video-level retrieval ({n} videos, bootstrap 95 % intervals over them; median rank "
            f"audio → video {real['a2v_median_rank']['mean']:.1f} for the real stage 2, "
            f"{ctrl['a2v_median_rank']['mean']:.1f} for the control, chance {real['chance_median_rank']['mean']:.1f}): "
            + "; ".join(parts) + ".")


def retrieval_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["stage 2", "level", "R@1 a→v", "R@5 a→v", "R@1 v→a", "median rank a→v", "chance R@1"]
    rows = []
    for name in ("video_conditioned", "mismatched_control"):
        for level in ("videos", "segments"):
            m = summary["retrieval"][name][level]
            rows.append([ENCODER_LABELS[name], level, _pm(m["a2v_R@1"]), _pm(m["a2v_R@5"]), _pm(m["v2a_R@1"]),
                         _pm(m["a2v_median_rank"]), _pm(m["chance_R@1"])])
    return header, rows


def retrieval_differences_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["direction", "Recall@K", "real stage 2 [95 %]", "control [95 %]", "chance",
              "real − control [95 %]", "verdict"]
    out = [[{"a2v": "audio → video", "v2a": "video → audio"}[r["direction"]], f"R@{r['k']}",
            f"{r['real']:.3f} {_ci(r['real_interval'])}", f"{r['control']:.3f} {_ci(r['control_interval'])}",
            f"{r['chance']:.3f}", f"{r['difference']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]", r["verdict"]]
           for r in rows]
    return header, out


def plot_tagging(summary: dict[str, Any], path: Path) -> Path:
    """ROC-AUC per category for each encoder, one panel per dataset, error bars = seed spread."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(DATASETS), figsize=(12, 3.8), layout="constrained")
    width = 0.8 / len(ENCODERS)
    for ax, ds in zip(axes, DATASETS):
        s = summary["datasets"][ds]
        groups = list(s["groups"])
        for i, enc in enumerate(ENCODERS):
            vals = [s["means"][enc][g]["roc_auc"] for g in groups]
            ax.bar(np.arange(len(groups)) + i * width, [v["mean"] if v["mean"] is not None else np.nan for v in vals],
                   width, yerr=[v["sd"] or 0 for v in vals], label=ENCODER_LABELS[enc])
        ax.set_xticks(np.arange(len(groups)) + width * (len(ENCODERS) - 1) / 2, groups, rotation=20)
        ax.set_ylim(0.3, 1)
        ax.axhline(0.5, color="grey", lw=0.8)
        ax.set_ylabel("ROC-AUC")
        ax.set_title(DATASET_LABELS[ds])
        ax.grid(axis="y", alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def result_sections(facts: dict[str, Any], images: dict[str, Path]) -> list[tuple[str, Any]]:
    s: list[tuple[str, Any]] = []
    summary = facts["summary"]
    seeds = facts["seeds"]
    s.append(("h2", "Does visual context help? (the paper's claim, with a control)"))
    s.append(("p", claim_text(summary)))
    s.append(("h2", "Tagging: linear probes on frozen encoders (stage 3), song-level test metrics (stage 4)"))
    s.append(("p", f"A linear head on each frozen encoder's segment embeddings, segment probabilities "
                   f"averaged per song; mean ± standard deviation over {len(seeds)} seed(s) of the "
                   f"pre-training stages ({', '.join(map(str, seeds))}). Both stage-2 models are taken at "
                   f"their last epoch (the same for both), so checkpoint selection cannot favour either."))
    for ds in DATASETS:
        d = summary["datasets"][ds]
        notes = "; ".join(f"{g}: {GROUP_NOTES[g]}" for g in d["groups"] if g in GROUP_NOTES)
        empty = [g for g in d["groups"] if g != "all" and all(d["means"][e][g]["roc_auc"]["mean"] is None
                                                               for e in ENCODERS)]
        if empty:
            notes += ("; " if notes else "") + f"left out, no tag of it in the synthetic world: {', '.join(empty)}"
        s.append(("p", f"**{DATASET_LABELS[ds]}**, {d['n_songs']} test songs" + (f" ({notes})." if notes else ".")))
        s.append(("table", tagging_table(d)))
    if "tagging" in images:
        s.append(("img", images["tagging"]))
    s.append(("h2", "Differences between encoders, with paired bootstrap intervals"))
    s.append(("p", "Each difference is model − baseline in macro ROC-AUC, averaged over the seeds, with "
                   "a 95 % percentile interval from 1000 resamples of the test songs (the same resamples "
                   "for every encoder and seed). \"model better\" / \"baseline better\": the interval "
                   "excludes 0; \"within noise\": it contains 0. The interval covers the test-song "
                   "sample; the spread over seeds is in the tables above."))
    for ds in DATASETS:
        s.append(("p", f"**{DATASET_LABELS[ds]}**"))
        s.append(("table", differences_table(summary["differences"], ds)))
    s.append(("h2", "Audio-video retrieval on held-out videos (true pairs for both stage-2 models)"))
    s.append(("table", retrieval_table(summary)))
    s.append(("p", "Video level, with a bootstrap 95 % interval over the held-out videos (1000 resamples, "
                   "the same for both models, so the difference is paired):"))
    s.append(("table", retrieval_differences_table(summary["retrieval_differences"])))
    s += example_sections(summary.get("example"), images.get("example"))
    return s


def example_sections(ex: dict[str, Any] | None, image: Path | None) -> list[tuple[str, Any]]:
    """Which seconds matched, on one held-out video (``vcmr retrieve --explain``)."""
    if not ex or image is None:
        return []
    return [("h2", "Which moments matched: one held-out example (`vcmr retrieve --explain`)"),
            ("p", f"The frames of held-out video `{ex['video']}` ({ex['video_mode']}) against music that is its own "
                  f"until {ex['switch_second']:g} s and then the music of `{ex['other']}` ({ex['other_mode']}); per "
                  f"second, the cosine between the real stage 2's audio and video embeddings around that second. "
                  f"Mean similarity: {ex['mean_own']:.3f} on its own music, {ex['mean_other']:.3f} on the other."),
            ("img", image)]
