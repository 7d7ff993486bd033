"""The model card (README.md with YAML front matter) ``vcmr export --hub_dir`` writes: only
facts the export measured or the files recorded; a field that is unknown is left out.

Sections: usage (a snippet that runs), the model (stage, input, sizes, versions), its stored
configuration, its training data (``checkpoint_data``: what training recorded), the metrics the
checkpoint carries, the HEAR validator's result (``--hear_check``), the tagging numbers of a
results folder of ``vcmr evaluate`` (``--results``: every ``global_metrics.json`` under it,
intervals included when the files hold them, and any ``comparison.md``), licence, citation.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vcmr.errors import VcmrError
from vcmr.io.checkpoint import STAGE_NAMES

CITATION = """@inproceedings{avramidis2023vcmr,
  title     = {On the Role of Visual Context in Enriching Music Representations},
  author    = {Avramidis, Kleanthis and Stewart, Shanti and Narayanan, Shrikanth},
  booktitle = {IEEE International Conference on Acoustics, Speech and Signal Processing (ICASSP)},
  year      = {2023},
  note      = {arXiv:2210.15828}
}"""
STAGE_TAGS = {"music": ["contrastive-learning"], "video": ["contrastive-learning", "audio-visual"],
              "tagging": ["music-tagging"]}
PRIVATE_SUFFIXES = ("_dir", "_path", "_file")  # config keys holding paths: only the last name shown
MAX_RESULT_FILES = 50
RUNTIME_KEYS = {"accelerator", "devices", "num_nodes", "strategy", "workers", "progress_bar", "log_dir",
                "log_freq", "experiment_name", "ckpt_path", "cache_dir", "results_dir"}  # not the model's
NOT_METRICS = {"per_tag", "per_category", "tags_without_positives", "tags_without_negatives", "n_songs"}


def fmt(value: Any) -> str:
    """A value for a Markdown cell: numbers to 4 significant digits, pairs as [lo, hi]."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k} {fmt(v)}" for k, v in value.items())
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."


def config_rows(config: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """The stored config flattened (``a.b``); unset values and where/how a run ran
    (``RUNTIME_KEYS``) left out, paths shown by their last name only."""
    rows = []
    for key, value in sorted(config.items()):
        name = f"{prefix}{key}"
        if not prefix and key in RUNTIME_KEYS:
            continue
        if isinstance(value, dict):
            rows += config_rows(value, name + ".")
        elif value is None or value == "" or value == []:
            continue
        elif key.endswith(PRIVATE_SUFFIXES) and isinstance(value, str):
            rows.append((name, f"`{Path(value).name}`"))
        else:
            rows.append((name, fmt(value)))
    return rows


def training_data_lines(model, data: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """Bullet points of what the checkpoint recorded about the training data (none: [])."""
    cfg, lines = model.config, []
    folder = data.get("dataset_dir") or Path(str(cfg.get("dataset_dir") or "")).name
    if model.stage == "tagging" and cfg.get("dataset"):
        lines.append(f"- dataset: {cfg['dataset']}" + (f", split `{cfg['split']}`" if cfg.get("split") else ""))
    if folder:
        lines.append(f"- data folder: `{folder}`")
    unit = data.get("examples", "examples")
    for split in ("train", "valid"):
        if f"{split}_examples" in data:
            videos = f" from {data[f'{split}_videos']} videos" if f"{split}_videos" in data else ""
            lines.append(f"- {'training' if split == 'train' else 'validation'}: "
                         f"{data[f'{split}_examples']:,} {unit}{videos}")
    for key, what in (("audio_encoder_ckpt_path", "stage-1 encoder"), ("pretrained_ckpt_path", "encoder")):
        if model.stage != "music" and cfg.get(key) and str(cfg[key]).lower() not in ("none", "random"):
            lines.append(f"- {what} started from: `{Path(str(cfg[key])).name}`")
    if "epoch" in metrics or "global_step" in metrics:
        lines.append("- checkpoint saved at " + ", ".join(
            f"{k.replace('_', ' ')} {metrics[k]:,}" for k in ("epoch", "global_step") if k in metrics)
            + (" (epochs counted from 0)" if "epoch" in metrics else ""))
    return lines


def hear_lines(report: dict[str, Any], spec: str) -> list[str]:
    """The HEAR section from ``vcmr.hear_validator.hear_report``."""
    rate = f"Declared sample rate {report['sample_rate']} Hz"
    if report.get("model_sample_rate") != report["sample_rate"]:
        rate += f" (the model runs at {report['model_sample_rate']} Hz; vcmr.hear resamples inside)"
    if report["passed"]:
        result = "passes" + (f", with warnings: {'; '.join(report['warnings'])}" if report["warnings"]
                             else ", without warnings")
    else:
        result = f"fails: {report.get('error', 'see the export log')}"
    return [f"The checks of {report['validator']} (repeated by `vcmr.hear_validator`; the "
            f"validator itself needs TensorFlow), run on this model through `vcmr.hear` at export: "
            f"{result}. {rate}, timestamp hop {report['timestamp_hop_ms']:g} ms, "
            f"{report['embedding_size']}-D scene and timestamp embeddings.", "",
            "```bash", f"python -m heareval.embeddings.runner vcmr.hear --model {spec}", "```"]


# ------------------------------------------------------------------------------ --results
def read_results(folder: str | Path) -> dict[str, Any]:
    """``{"metrics": [(label, global_metrics.json content)], "comparisons": [(label, text)]}``
    of every ``global_metrics.json`` and ``comparison.md`` under ``folder`` (sorted by path;
    label: the path of its folder relative to ``folder``)."""
    root = Path(folder)
    if not root.is_dir():
        raise VcmrError(f"--results {str(folder)!r} is not a folder: give the results folder of "
                        f"`vcmr evaluate` (its results_dir, or one dataset or model folder in it)")
    files = sorted(root.rglob("global_metrics.json"))
    if not files:
        raise VcmrError(f"--results {str(folder)!r} holds no global_metrics.json: run `vcmr "
                        f"evaluate --ckpt CKPT --results_dir {folder}` first, or leave --results out")
    if len(files) > MAX_RESULT_FILES:
        raise VcmrError(f"--results {str(folder)!r} holds {len(files)} global_metrics.json files "
                        f"(at most {MAX_RESULT_FILES}): give the folder of one dataset")
    out: dict[str, Any] = {"metrics": [], "comparisons": []}
    for f in files:
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise VcmrError(f"{f}: not a readable global_metrics.json ({type(e).__name__}: {e}); "
                            f"evaluate again or remove it from --results") from None
        if not isinstance(data, dict):
            raise VcmrError(f"{f}: not a global_metrics.json of `vcmr evaluate` (not a JSON object)")
        out["metrics"].append((f.parent.relative_to(root).as_posix() or ".", data))
    for f in sorted(root.rglob("comparison.md"))[:MAX_RESULT_FILES]:
        out["comparisons"].append((f.relative_to(root).as_posix(), f.read_text(encoding="utf-8", errors="replace")))
    return out


def _headline(data: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(overlap, metrics) of the first overlap ratio evaluated (the one comparison.md uses)."""
    overlaps = data.get("overlaps")
    if isinstance(overlaps, dict) and overlaps:
        ov = next(iter(overlaps))
        return ov, overlaps[ov] if isinstance(overlaps[ov], dict) else {}
    return None, data


def _is_metric(key: str, value: Any) -> bool:
    if key in NOT_METRICS or isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return (isinstance(value, (list, tuple)) and 0 < len(value) <= 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))


def results_lines(results: dict[str, Any], ckpt: str | Path) -> list[str]:
    """A table of every model's headline tagging numbers (every numeric entry, intervals
    included), the row of the exported checkpoint marked, then each comparison.md."""
    rows = [(label, data, *_headline(data)) for label, data in results["metrics"]]
    keys = ["roc_auc", "pr_auc"]
    keys += sorted({k for *_, m in rows for k, v in m.items() if _is_metric(k, v)} - set(keys))
    lines = ["Song-level tagging numbers from `vcmr evaluate` (macro over tags, at the first "
             "overlap ratio evaluated; each file's own numbers, nothing recomputed):", "",
             "| results | dataset | songs | overlap | " + " | ".join(keys) + " |",
             "|---|---|---:|---:|" + "---:|" * len(keys)]
    for label, data, ov, m in rows:
        mine = _same_file(data.get("checkpoint"), ckpt)
        what = " / ".join(str(data[k]) for k in ("dataset", "subset") if data.get(k))
        lines.append(f"| {fmt(label)}{' (this model)' if mine else ''} | {fmt(what)} | "
                     f"{fmt(data.get('n_songs', ''))} | {ov or ''} | "
                     + " | ".join(fmt(m[k]) if k in m else "" for k in keys) + " |")
    for label, text in results["comparisons"]:
        lines += ["", f"### {label}", "", text.strip()]
    return lines


def _same_file(a: Any, b: str | Path) -> bool:
    try:
        return a is not None and Path(str(a)).resolve() == Path(b).resolve()
    except (OSError, ValueError):
        return False


# ------------------------------------------------------------------------------ the card
def front_matter(model, license: str | None) -> list[str]:
    tags = ["audio", "music", "vcmr", "sample-cnn", *STAGE_TAGS[model.stage]]
    return ["---", "library_name: vcmr", *([f"license: {license}"] if license else []),
            "pipeline_tag: feature-extraction", "tags:", *[f"- {t}" for t in tags], "---"]


def usage_lines(model, spec: str) -> list[str]:
    code = ["import vcmr", f'model = vcmr.load_model("{spec}")',
            'emb = vcmr.embed_file("song.wav", model)  # per segment: emb.embeddings, emb.starts, emb.ends',
            'song = vcmr.embed_file("song.wav", model, song_level=True)  # one vector, the mean']
    if model.stage == "tagging":
        code += ["from vcmr.audio.io import read_audio",
                 'print(model.predict_tags(*read_audio("song.wav")))  # {tag: probability}']
    return ["```bash", 'pip install "vcmr[hub]"', "```", "", "```python", *code, "```"]


def model_rows(model, versions: dict[str, str] | None) -> list[str]:
    params = sum(p.numel() for p in model.parameters())
    rows = [("stage", STAGE_NAMES[model.stage]),
            ("input", f"mono audio at {model.sample_rate} Hz (other rates are resampled), windows of "
                      f"{model.segment_samples} samples ({model.segment_seconds:.2f} s)"),
            ("embedding", f"{model.embedding_size}-D (encoder)"
             + (f", {model.joint_size}-D joint audio-video space" if model.joint_size else "")),
            ("parameters", f"{params:,}")]
    if model.tags:
        rows.append((f"tags ({len(model.tags)})", ", ".join(model.tags)))
    if versions:
        rows.append(("exported with", ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))))
    return ["| | |", "|---|---|", *[f"| {k} | {v.replace('|', '/')} |" for k, v in rows]]


def model_card(model, name: str, metrics: dict[str, Any], license: str | None = None, *,
               spec: str | None = None, data: dict[str, Any] | None = None,
               hear: dict[str, Any] | None = None, results: dict[str, Any] | None = None,
               ckpt: str | Path = "", versions: dict[str, str] | None = None) -> str:
    """The card's text. ``spec``: the name users load (``hf://ORG/NAME``); ``data``:
    ``checkpoint_data``; ``hear``: ``hear_report``; ``results``: ``read_results``."""
    spec = spec or f"hf://ORG/{name}"
    out = [*front_matter(model, license), "", f"# {name}", "",
           "A vcmr SampleCNN music encoder (Video-Conditioned Music Representations, the model of "
           "the paper cited below), trained as " + STAGE_NAMES[model.stage] + ".", "",
           "## Usage", "", *usage_lines(model, spec), "", "## Model", "", *model_rows(model, versions), ""]
    rows = config_rows(model.config)
    if rows:
        out += ["## Configuration", "", "The stage configuration stored with the weights (paths "
                "shown by their last name only; devices, workers and logging left out):", "", "| key | value |", "|---|---|",
                *[f"| {k} | {v} |" for k, v in rows], ""]
    data_lines = training_data_lines(model, data or {}, metrics)
    if data_lines:
        out += ["## Training data", "", "As recorded in the training checkpoint:", "", *data_lines, ""]
    shown = {k: v for k, v in metrics.items() if k not in ("epoch", "global_step")}
    if shown:
        out += ["## Training metrics", "", "Recorded in the checkpoint (validation metrics are on "
                "the validation split of the training data):", "", "| metric | value |", "|---|---:|",
                *[f"| {k} | {fmt(v)} |" for k, v in shown.items()], ""]
    if hear:
        out += ["## HEAR", "", *hear_lines(hear, spec), ""]
    if results:
        out += ["## Tagging results", "", *results_lines(results, ckpt), ""]
    if license:
        out += ["## Licence", "", f"{license}. The training data's terms also apply to these weights.", ""]
    return "\n".join(out + ["## Citation", "", "```bibtex", CITATION, "```", ""])
