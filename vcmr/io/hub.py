"""Models on the Hugging Face Hub: reading ``hf://ORG/NAME[@REVISION]`` and writing the folder
a Hub repository holds.

    vcmr.load_model("hf://ORG/NAME")              # model.safetensors of a Hub repository
    vcmr.load_model("hf://ORG/NAME@v1.0")         # a pinned revision (tag, branch or commit)
    vcmr export runs/.../last.ckpt --hub_dir my-vcmr-model   # then: hf upload ORG/my-vcmr-model my-vcmr-model

Hub models go through ``huggingface_hub`` (the ``hub`` extra): its cache (``$HF_HOME``,
``$HF_HUB_CACHE``), its offline mode (``HF_HUB_OFFLINE=1``: the cached file, no request), its
revision pinning and progress bars. A Hub repository holds what ``export_hub_dir`` writes:
``model.safetensors`` (read with safetensors only), ``config.json`` (the file's metadata,
readable without safetensors) and a model card ``README.md`` (training data, the metrics the
checkpoint carries, licence, citation); ``vcmr.load_model(DIR)`` reads such a folder too.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from vcmr._version import __version__
from vcmr.errors import VcmrError
from vcmr.inference import EmbeddingModel
from vcmr.io.checkpoint import STAGE_NAMES, checkpoint_metrics, model_from_checkpoint
from vcmr.io.model_file import load_model_file, read_model_file, save_model_file
from vcmr.paths import atomic_output, check_output_dir, check_output_file


class HubError(VcmrError):
    """A Hub model name that is not one, huggingface_hub missing, or a failed download."""


# ------------------------------------------------------------------------------ reading
HUB_PREFIX = "hf://"
HUB_FILE = "model.safetensors"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def is_hub(spec) -> bool:
    return isinstance(spec, str) and spec.startswith(HUB_PREFIX)


def parse_hub(spec: str) -> tuple[str, str | None]:
    """``hf://ORG/NAME[@REVISION]`` -> (repo id, revision or None)."""
    repo, at, revision = spec[len(HUB_PREFIX):].partition("@")
    if not _REPO_ID.match(repo) or (at and not revision):
        raise HubError(f"{spec!r} is not a Hub model name: write hf://ORG/NAME or "
                       f"hf://ORG/NAME@REVISION (a tag, branch or commit)")
    return repo, revision or None


def hub_file(spec: str) -> Path:
    """The local path of ``model.safetensors`` of a Hub model, downloaded into the HF cache once."""
    repo, revision = parse_hub(spec)
    try:  # huggingface_hub is the optional `hub` extra: imported only when a Hub model is asked for
        from huggingface_hub import errors, hf_hub_download
    except ImportError:
        raise HubError(f"{spec}: Hub models need huggingface_hub: pip install 'vcmr[hub]'") from None
    try:
        return Path(hf_hub_download(repo, HUB_FILE, revision=revision, library_name="vcmr",
                                    library_version=__version__))
    except errors.LocalEntryNotFoundError:
        raise HubError(f"{spec}: {HUB_FILE} is not in the Hugging Face cache and the Hub "
                       f"cannot be reached (offline: HF_HUB_OFFLINE=1 or no network). Run once "
                       f"with internet, or `hf download {repo}"
                       f"{' --revision ' + revision if revision else ''}`, or give the file's path") from None
    except errors.RepositoryNotFoundError:
        raise HubError(f"{spec}: no Hub repository {repo!r} (or it is private: log in with "
                       f"`hf auth login`)") from None
    except errors.RevisionNotFoundError:
        raise HubError(f"{spec}: repository {repo!r} has no revision {revision!r}") from None
    except errors.EntryNotFoundError:
        raise HubError(f"{spec}: repository {repo!r} has no {HUB_FILE}; upload the folder "
                       f"`vcmr export CKPT --hub_dir DIR` writes") from None
    except (errors.HfHubHTTPError, OSError) as e:
        raise HubError(f"{spec}: cannot download {HUB_FILE} ({type(e).__name__}: {e})") from None


def load_hub(spec: str) -> EmbeddingModel:
    """An EmbeddingModel (on CPU) from ``hf://ORG/NAME[@REVISION]``."""
    model = load_model_file(hub_file(spec))
    model.source = spec
    return model


# ------------------------------------------------------------------------------ writing a Hub folder
HUB_LICENSE = "mit"
CITATION = """@inproceedings{avramidis2023vcmr,
  title     = {On the Role of Visual Context in Enriching Music Representations},
  author    = {Avramidis, Kleanthis and Stewart, Shanti and Narayanan, Shrikanth},
  booktitle = {IEEE International Conference on Acoustics, Speech and Signal Processing (ICASSP)},
  year      = {2023},
  note      = {arXiv:2210.15828}
}"""


def _training_data(model) -> list[str]:
    """The data the stored config names (folder names only: full paths may be private)."""
    cfg = model.config
    name = lambda key: Path(str(cfg.get(key) or "")).name or "(not recorded)"  # noqa: E731
    if model.stage == "music":
        return [f"Stage 1 (SimCLR music pre-training) on the audio folder `{name('dataset_dir')}`."]
    if model.stage == "video":
        return [f"Stage 2 (video-conditioned pre-training) on the prepared music videos in "
                f"`{name('dataset_dir')}`, starting from the stage-1 encoder `{name('audio_encoder_ckpt_path')}`."]
    return [f"Stage 3 (tagging head) on {cfg.get('dataset', 'an unrecorded dataset')} (split "
            f"`{cfg.get('split', '?')}`, folder `{name('dataset_dir')}`), encoder from "
            f"`{name('pretrained_ckpt_path')}`; {len(model.tags or [])} tags."]


def model_card(model, name: str, metrics: dict[str, Any], license: str = HUB_LICENSE) -> str:
    """A Hugging Face model card (README.md with YAML front matter) for an exported model."""
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


HUB_FILES = (HUB_FILE, "config.json", "README.md")


def check_hub_dir(ckpt: str | Path, out_dir: Path, overwrite: bool = False) -> None:
    """Before the work: ``out_dir`` is a writable folder that is empty (or ``overwrite``), and
    none of the files written there is a symlink, a special file or the checkpoint."""
    what = f"--hub_dir {str(out_dir)!r}"
    check_output_dir(out_dir, what)
    if out_dir.is_dir() and not overwrite:
        held = sorted(os.listdir(out_dir))
        if held:
            shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
            raise VcmrError(f"{what} is not empty (it holds {shown}); the export would replace "
                            f"{', '.join(HUB_FILES)}. Give a new or empty folder, or --overwrite "
                            f"to replace those three files (other files are kept)")
    for name in HUB_FILES:
        check_output_file(out_dir / name, what, [ckpt])


def export_hub_dir(ckpt: str | Path, out_dir: str | Path, license: str = HUB_LICENSE,
                   overwrite: bool = False) -> EmbeddingModel:
    """Checkpoint -> a folder ready for ``hf upload ORG/NAME DIR``: model.safetensors,
    config.json (the file's metadata, readable without safetensors) and README.md (model card).
    A folder that already holds files is refused unless ``overwrite``."""
    out_dir = Path(out_dir)
    check_hub_dir(ckpt, out_dir, overwrite)
    model = model_from_checkpoint(ckpt)
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
