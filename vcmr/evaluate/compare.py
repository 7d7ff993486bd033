"""Side-by-side comparison of evaluated models: a Markdown table, the difference of every pair
of models with its paired bootstrap interval (rows of
:func:`vcmr.evaluate.differences.pairwise_differences`) and a sentence per pair saying whether
it is larger than its interval, and a per-category bar chart.

Input is what ``evaluate_checkpoints`` returns (or the ``global_metrics.json`` files it wrote,
see :func:`load_results`). The headline overlap is the first of the evaluated overlap ratios;
the table also lists every overlap's overall numbers.

matplotlib (an optional dependency, ``train`` extra) is imported only when a chart is drawn.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from vcmr.errors import VcmrError
from vcmr.evaluate.differences import category_and_tag_differences


def _fmt(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def load_results(paths: list[str | Path]) -> dict[str, dict[str, Any]]:
    """``global_metrics.json`` files -> ``{model_name: metrics}``."""
    out = {}
    for p in paths:
        data = json.loads(Path(p).read_text())
        out[data.get("model_name") or Path(p).parent.name] = data
    return out


METRIC_NAMES = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC"}
FEW_SONGS = 20  # below this many songs the comparison says the intervals are only indicative


def _interval(r: dict[str, Any]) -> str:
    if r["difference"] is None or r["low"] is None:
        return "n/a"
    star = "*" if r["verdict"] in ("model better", "baseline better") else ""
    return f"{r['difference']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]{star}"


def _winner(r: dict[str, Any]) -> str:
    return r["model"] if r["verdict"] == "model better" else r["baseline"]


def _phrase(r: dict[str, Any], label: str) -> str:
    text = f"{label} {_interval(r).rstrip('*')}"
    if r["n_valid"] < r["n_boot"]:
        text += f" (from {r['n_valid']} of {r['n_boot']} resamples)"
    if r["verdict"] == "within noise":
        return text + ": within noise (the interval contains 0)"
    if r["verdict"] == "undefined":
        return text + ": undefined (no tag with a positive and a negative song)"
    return text + f": the interval excludes 0, {_winner(r)} is better"


def pair_sentence(rows: list[dict[str, Any]]) -> str:
    """One pair's rows (every metric and category) in words."""
    first = rows[0]
    overall = [_phrase(r, METRIC_NAMES[r["metric"]]) for r in rows if r["category"] == "all"]
    cats = [r for r in rows if r["category"] != "all"]
    clear = [r for r in cats if r["verdict"] in ("model better", "baseline better")]
    text = f"{first['model']} − {first['baseline']}: " + "; ".join(overall) + "."
    if cats and not clear:
        text += " By category, every difference is within noise (or undefined)."
    elif clear:
        named = [f"{r['category']} {METRIC_NAMES[r['metric']]} {_interval(r).rstrip('*')} ({_winner(r)} better)"
                 for r in clear]
        rest = len(cats) - len(clear)
        text += (f" By category, intervals that exclude 0: {'; '.join(named)}"
                 + (f"; the other {rest} are within noise (or undefined)." if rest else "."))
    return text


def differences_markdown(rows: list[dict[str, Any]]) -> str:
    """The pairwise differences as a table (one row per pair and metric) and a sentence per pair."""
    if not rows:
        return ""
    first = rows[0]
    groups = list(dict.fromkeys(r["category"] for r in rows))
    lines = ["", "## Differences between models (paired bootstrap over songs)", "",
             f"Model − baseline (the model listed earlier is the baseline), macro over tags at overlap "
             f"{first['overlap']}; in brackets the 95 % percentile interval over {first['n_boot']} "
             f"resamples of the {first['n_songs']} songs, the same resamples for every model. "
             f"* = the interval excludes 0: the difference is larger than the noise of the song sample."]
    if first["n_songs"] < FEW_SONGS:
        lines += ["", f"Only {first['n_songs']} songs: few distinct resamples exist, and the intervals "
                      f"understate the noise; treat them as indicative."]
    lines += ["", "| model − baseline | metric | " + " | ".join(groups) + " |", "|---|---|" + "---|" * len(groups)]
    pairs = list(dict.fromkeys((r["model"], r["baseline"]) for r in rows))
    for model, base in pairs:
        for metric in dict.fromkeys(r["metric"] for r in rows):
            cell = {r["category"]: _interval(r) for r in rows
                    if (r["model"], r["baseline"], r["metric"]) == (model, base, metric)}
            lines.append(f"| {model} − {base} | {METRIC_NAMES[metric]} | "
                         + " | ".join(cell.get(g, "n/a") for g in groups) + " |")
    lines += [""] + [f"- {pair_sentence([r for r in rows if (r['model'], r['baseline']) == p])}"
                     for p in pairs]
    return "\n".join(lines) + "\n"


def comparison_markdown(results: dict[str, dict[str, Any]],
                        differences: Optional[list[dict[str, Any]]] = None) -> str:
    first = next(iter(results.values()))
    overlaps = list(first["overlaps"])
    head = overlaps[0]
    groups = list(first["overlaps"][head].get("per_category", {}))
    lines = [f"Song-level tagging on {first['dataset']} ({first['subset']}, {first['n_songs']} songs, "
             f"aggregation {first['aggregation']}, overlap {head}). Macro ROC-AUC / PR-AUC.", ""]
    cols = ["model", "ROC-AUC", "PR-AUC"] + [f"{g} ROC / PR" for g in groups]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name, r in results.items():
        m = r["overlaps"][head]
        cells = [name, _fmt(m["roc_auc"]), _fmt(m["pr_auc"])]
        cells += [f"{_fmt(m['per_category'][g]['roc_auc'])} / {_fmt(m['per_category'][g]['pr_auc'])}"
                  if g in m.get("per_category", {}) else "n/a" for g in groups]
        lines.append("| " + " | ".join(cells) + " |")
    if len(overlaps) > 1:
        lines += ["", "All overlap ratios (ROC-AUC / PR-AUC):", "",
                  "| model | " + " | ".join(f"overlap {o}" for o in overlaps) + " |",
                  "|---|" + "---|" * len(overlaps)]
        for name, r in results.items():
            lines.append(f"| {name} | " + " | ".join(
                f"{_fmt(r['overlaps'][o]['roc_auc'])} / {_fmt(r['overlaps'][o]['pr_auc'])}"
                if o in r["overlaps"] else "n/a" for o in overlaps) + " |")
    missing = first["overlaps"][head].get("tags_without_positives", [])
    if missing:
        lines += ["", f"Tags without a positive example in this subset (left out of the averages): "
                      f"{', '.join(missing)}"]
    return "\n".join(lines) + "\n" + differences_markdown(differences or [])


def bar_chart(results: dict[str, dict[str, Any]], path: Path) -> None:
    """Grouped bars: one group per category (plus 'all'), one bar per model; ROC and PR panels."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(results.values()))
    head = list(first["overlaps"])[0]
    groups = ["all"] + list(first["overlaps"][head].get("per_category", {}))
    width = 0.8 / len(results)
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(groups) * 2), 4))
    for ax, metric, label in zip(axes, ("roc_auc", "pr_auc"), ("ROC-AUC", "PR-AUC")):
        for i, (name, r) in enumerate(results.items()):
            m = r["overlaps"][head]
            vals = [m[metric]] + [m["per_category"].get(g, {}).get(metric) for g in groups[1:]]
            ax.bar(np.arange(len(groups)) + i * width, [v if v is not None else 0 for v in vals],
                   width, label=name)
        ax.set_xticks(np.arange(len(groups)) + width * (len(results) - 1) / 2)
        ax.set_xticklabels(groups, rotation=30)
        ax.set_ylabel(label)
        ax.set_ylim(0, 1)
        ax.set_title(f"{label} by category")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)


def write_comparison(results: dict[str, dict[str, Any]], out_dir: str | Path,
                     differences: Optional[list[dict[str, Any]]] = None,
                     tag_differences: Optional[list[dict[str, Any]]] = None) -> dict[str, str]:
    """``comparison.md``, ``comparison.png`` and, given the pairwise ``differences``,
    ``differences.csv`` (and ``tag_differences.csv``, one row per tag) in ``out_dir``; returns
    their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, png = out_dir / "comparison.md", out_dir / "comparison.png"
    md.write_text(comparison_markdown(results, differences))
    bar_chart(results, png)
    files = {"comparison_md": str(md), "comparison_png": str(png)}
    if differences:
        files["differences_csv"] = str(out_dir / "differences.csv")
        _write_rows(Path(files["differences_csv"]), differences)
    if tag_differences:
        files["tag_differences_csv"] = str(out_dir / "tag_differences.csv")
        _write_rows(Path(files["tag_differences_csv"]), tag_differences)
    return files


def compare_results(folders: list[str | Path], out_dir: Optional[str | Path] = None, overlap: Any = None,
                    n_boot: int = 1000, seed: int = 42) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Compare models evaluated in separate runs: the results folders ``vcmr evaluate`` wrote
    (``<results_dir>/<dataset>/<name>``, baseline first). Writes the comparison files to
    ``out_dir`` (default: the first folder's parent); returns (difference rows, paths)."""
    if not 1 <= n_boot <= 65536:
        raise VcmrError(f"bootstrap_resamples must be between 1 and 65536, got {n_boot}")
    named: dict[str, Path] = {}
    results: dict[str, dict[str, Any]] = {}
    for folder in map(Path, folders):
        if not (folder / "global_metrics.json").is_file():
            raise VcmrError(f"{folder} holds no global_metrics.json: give the folders `vcmr evaluate` "
                            f"wrote, <results_dir>/<dataset>/<model name>")
        try:
            data = json.loads((folder / "global_metrics.json").read_text())
        except ValueError as e:
            raise VcmrError(f"{folder / 'global_metrics.json'} is not valid JSON ({e}); re-run "
                            f"`vcmr evaluate` for that model") from None
        if not isinstance(data, dict) or not isinstance(data.get("overlaps"), dict):
            raise VcmrError(f"{folder / 'global_metrics.json'} is not a `vcmr evaluate` result (no "
                            f"overlaps); re-run `vcmr evaluate` for that model")
        name = str(data.get("model_name") or folder.name)
        name = name if name not in named else str(folder)
        named[name], results[name] = folder, data
    rows, tag_rows = category_and_tag_differences(named, overlap=overlap, n_boot=n_boot, seed=seed)
    return rows, write_comparison(results, Path(out_dir) if out_dir else Path(folders[0]).parent, rows, tag_rows)
