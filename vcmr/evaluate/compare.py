"""Side-by-side comparison of evaluated models: a Markdown table and a per-category bar chart.

Input is what ``evaluate_checkpoints`` returns (or the ``global_metrics.json`` files it wrote,
see :func:`load_results`). The headline overlap is the first of the evaluated overlap ratios;
the table also lists every overlap's overall numbers.

matplotlib (an optional dependency, ``train`` extra) is imported only when a chart is drawn.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np


def _fmt(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def load_results(paths: list[str | Path]) -> dict[str, dict[str, Any]]:
    """``global_metrics.json`` files -> ``{model_name: metrics}``."""
    out = {}
    for p in paths:
        data = json.loads(Path(p).read_text())
        out[data.get("model_name") or Path(p).parent.name] = data
    return out


def comparison_markdown(results: dict[str, dict[str, Any]]) -> str:
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
    return "\n".join(lines) + "\n"


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


def write_comparison(results: dict[str, dict[str, Any]], out_dir: str | Path) -> dict[str, str]:
    """``comparison.md`` and ``comparison.png`` in ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, png = out_dir / "comparison.md", out_dir / "comparison.png"
    md.write_text(comparison_markdown(results))
    bar_chart(results, png)
    return {"comparison_md": str(md), "comparison_png": str(png)}
