"""Portable model files: safetensors weights + the metadata needed to rebuild the model.

    vcmr export runs/.../last.ckpt --out model.safetensors
    model = vcmr.load_model("model.safetensors")

The file holds every weight of the model (same key names as the training checkpoint:
``encoder.*``, plus ``projector.*`` for stage 1, ``projector.*``, ``video_encoder.*``,
``video_projector.*`` for stage 2, ``head.*`` for stage 3) and string metadata:
``format`` ("vcmr"), ``format_version``, ``vcmr_version``, ``stage``, ``config`` (the stage
config as JSON, as stored in the checkpoint), ``sample_rate``, ``audio_length`` and, for
stage 3, ``tags`` (JSON list). Loading uses safetensors only: nothing is unpickled.

    vcmr export runs/.../last.ckpt --hub-dir my-vcmr-model   # then: hf upload ORG/my-vcmr-model my-vcmr-model

``--hub-dir`` writes a Hugging Face Hub repository folder: ``model.safetensors``, ``config.json``
and a model card ``README.md`` (training data, the metrics the checkpoint carries, licence,
citation); ``vcmr.load_model("hf://ORG/NAME")`` or ``vcmr.load_model(DIR)`` reads it back.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vcmr.checkpoint import CheckpointError
from vcmr.paths import atomic_output, check_output_file

FORMAT = "vcmr"
FORMAT_VERSION = "1"


class ModelFileError(CheckpointError):
    """An exported model file is missing, corrupt, or not a vcmr model."""


def save_model_file(model, out: str | Path) -> Path:
    """Write an EmbeddingModel to ``out`` (.safetensors), atomically (temp name, then rename)."""
    from safetensors.torch import save_file
    from vcmr._version import __version__
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "vcmr_version": __version__,
            "stage": model.stage, "config": json.dumps(model.config, sort_keys=True),
            "sample_rate": str(model.sample_rate), "audio_length": str(model.segment_samples)}
    if model.tags is not None:
        meta["tags"] = json.dumps(model.tags)
    with atomic_output(out) as tmp:  # no temporary left behind, an old `out` kept on failure
        save_file(model.export_state_dict(), str(tmp), metadata=meta)
    return out


def export_checkpoint(ckpt: str | Path, out: str | Path):
    """Checkpoint (any stage) -> .safetensors; returns the loaded model (for a summary).

    ``out`` is checked first: never the checkpoint itself (also via a symlink or hard link),
    never a folder, and in a writable folder.
    """
    from vcmr.inference import from_checkpoint
    check_output_file(out, f"--out {str(out)!r}", [ckpt])
    model = from_checkpoint(Path(ckpt))
    save_model_file(model, out)
    return model


def read_model_file(path: str | Path) -> tuple[dict, dict[str, str]]:
    """``(state_dict, metadata)`` of an exported file; clear ModelFileError when it is bad."""
    from safetensors import safe_open
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} not found")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            state_dict = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises SafetensorError / OSError for broken files
        raise ModelFileError(f"{str(path)!r} is not a readable safetensors model file "
                             f"({type(e).__name__}: {e}); is the download complete? Re-export it "
                             f"with `vcmr export` or download it again") from None
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{str(path)!r} is a safetensors file but not a vcmr model (no "
                             f"'format: vcmr' metadata); export one with `vcmr export CKPT --out FILE`")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{str(path)!r} uses vcmr model format {meta.get('format_version')!r}; "
                             f"this vcmr reads format {FORMAT_VERSION}: upgrade vcmr")
    return state_dict, meta


def load_model_file(path: str | Path):
    """An EmbeddingModel (on CPU) from an exported .safetensors file."""
    from vcmr.inference import EmbeddingModel
    state_dict, meta = read_model_file(path)
    try:
        config = json.loads(meta["config"])
        tags = json.loads(meta["tags"]) if "tags" in meta else None
        stage = meta["stage"]
    except (KeyError, ValueError) as e:
        raise ModelFileError(f"{str(path)!r}: damaged vcmr metadata ({type(e).__name__}: {e})") from None
    model = EmbeddingModel(stage, config, state_dict, tags, str(path))
    for key, value in (("sample_rate", model.sample_rate), ("audio_length", model.segment_samples)):
        if key in meta and meta[key] != str(value):
            raise ModelFileError(f"{str(path)!r}: metadata {key}={meta[key]} disagrees with its "
                                 f"config ({value}); the file was edited or damaged")
    return model


def is_safetensors(path: Path) -> bool:
    """Safetensors files start with an 8-byte header length then a JSON header ('{')."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def load_local_file(path: Path):
    """An EmbeddingModel (on CPU) from a local file: an exported .safetensors file or a
    checkpoint of any stage (told apart by the file's first bytes, not its name)."""
    if is_safetensors(path):
        return load_model_file(path)
    from vcmr.inference import from_checkpoint
    return from_checkpoint(path)


# ------------------------------------------------------------------------------ Hub folder
HUB_LICENSE = "mit"
CITATION = """@inproceedings{avramidis2023vcmr,
  title     = {On the Role of Visual Context in Enriching Music Representations},
  author    = {Avramidis, Kleanthis and Stewart, Shanti and Narayanan, Shrikanth},
  booktitle = {IEEE International Conference on Acoustics, Speech and Signal Processing (ICASSP)},
  year      = {2023},
  note      = {arXiv:2210.15828}
}"""


def checkpoint_metrics(ckpt: str | Path) -> dict[str, Any]:
    """What a Lightning checkpoint records about its training: epoch, global step and each
    ModelCheckpoint's monitored metric with its best score (weights-only read; {} if none)."""
    from vcmr.compat_read import load_weights_only
    raw = load_weights_only(ckpt)
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {k: int(raw[k]) for k in ("epoch", "global_step") if isinstance(raw.get(k), int)}
    for state in (raw.get("callbacks") or {}).values():
        if isinstance(state, dict) and state.get("monitor") and state.get("best_model_score") is not None:
            out[f"best {state['monitor']}"] = float(state["best_model_score"])
    return out


def _training_data(model) -> list[str]:
    """The data the stored config names (folder names only: full paths may be private)."""
    cfg = model.config
    name = lambda key: Path(str(cfg.get(key) or "")).name or "(not recorded)"  # noqa: E731
    if model.stage == "mus":
        return [f"Stage 1 (SimCLR music pre-training) on the audio folder `{name('dataset_dir')}`."]
    if model.stage == "vid":
        return [f"Stage 2 (video-conditioned pre-training) on the prepared music videos in "
                f"`{name('dataset_dir')}`, starting from the stage-1 encoder `{name('audio_encoder_ckpt_path')}`."]
    return [f"Stage 3 (tagging head) on {cfg.get('dataset', 'an unrecorded dataset')} (split "
            f"`{cfg.get('split', '?')}`, folder `{name('dataset_dir')}`), encoder from "
            f"`{name('pretrained_ckpt_path')}`; {len(model.tags or [])} tags."]


def model_card(model, name: str, metrics: dict[str, Any], license: str = HUB_LICENSE) -> str:
    """A Hugging Face model card (README.md with YAML front matter) for an exported model."""
    from vcmr.checkpoint import STAGE_NAMES
    params = sum(p.numel() for p in model.parameters())
    rows = [("stage", STAGE_NAMES[model.stage]), ("input", f"mono audio at {model.sample_rate} Hz, "
            f"windows of {model.segment_samples} samples ({model.segment_seconds:.2f} s)"),
            ("embedding", f"{model.embedding_size}-D (encoder)" + (f", {model.joint_size}-D joint audio-video space" if model.joint_size else "")),
            ("parameters", f"{params:,}")] + ([("tags", ", ".join(model.tags))] if model.tags else [])
    metric_lines = ([f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
                    if metrics else [])
    return "\n".join([
        "---", "library_name: vcmr", f"license: {license}", "pipeline_tag: feature-extraction",
        "tags: [audio, music, music-tagging, contrastive-learning, vcmr]", "---", "",
        f"# {name}", "",
        "A vcmr SampleCNN music encoder (Video-Conditioned Music Representations, the model of the "
        "paper cited below). Load it with the vcmr package in one call:", "",
        "```python", "import vcmr", f'model = vcmr.load_model("hf://ORG/{name}")  # or a local copy of this folder',
        "emb = model.embed(audio, sample_rate=44100)   # per-segment embeddings", "```", "",
        "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], "",
        "## Training data", "", *_training_data(model), "",
        "The names above are what the checkpoint recorded; describe where the data came from and "
        "its licence before uploading.", "",
        "## Metrics", "",
        *(["What the training checkpoint carries (validation metrics are on the validation split "
           "of the training data):", "", "| metric | value |", "|---|---:|", *metric_lines]
          if metrics else ["The checkpoint carries no metrics; evaluate with `vcmr evaluate`."]), "",
        "## Licence", "",
        f"{license}. Check that the training data allow releasing these weights under it.", "",
        "## Citation", "", "```bibtex", CITATION, "```", ""])


def export_hub_dir(ckpt: str | Path, out_dir: str | Path, license: str = HUB_LICENSE):
    """Checkpoint -> a folder ready for ``hf upload ORG/NAME DIR``: model.safetensors,
    config.json (the file's metadata, readable without safetensors) and README.md (model card)."""
    from vcmr.inference import from_checkpoint
    from vcmr.paths import check_output_dir
    out_dir = Path(out_dir)
    check_output_dir(out_dir, f"--hub-dir {str(out_dir)!r}")
    check_output_file(out_dir / "model.safetensors", f"--hub-dir {str(out_dir)!r}", [ckpt])
    model = from_checkpoint(Path(ckpt))
    metrics = checkpoint_metrics(ckpt)
    save_model_file(model, out_dir / "model.safetensors")
    _, meta = read_model_file(out_dir / "model.safetensors")
    config = {**{k: v for k, v in meta.items() if k not in ("config", "tags")},
              "config": json.loads(meta["config"]), "tags": model.tags, "metrics": metrics,
              "embedding_size": model.embedding_size, "joint_size": model.joint_size}
    _write_text(out_dir / "config.json", json.dumps(config, indent=1, sort_keys=True) + "\n")
    name = out_dir.resolve().name
    _write_text(out_dir / "README.md", model_card(model, name, metrics, license))
    return model


def _write_text(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
