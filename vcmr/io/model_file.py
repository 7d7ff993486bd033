"""Portable model files: safetensors weights + the metadata needed to rebuild the model.

    vcmr export runs/.../last.ckpt --out model.safetensors
    model = vcmr.load_model("model.safetensors")

The file holds the state dict of the stage network (``vcmr.models.stages``): ``encoder.*``,
plus ``projector.*`` for stage 1, ``projector.*``, ``video_encoder.*``, ``video_projector.*``
for stage 2, ``head.*`` for stage 3; and string metadata: ``format`` ("vcmr"),
``format_version``, ``vcmr_version``, ``stage``, ``config`` (the stage config as JSON, as
stored in the checkpoint), ``sample_rate``, ``audio_length``, for stage 3 ``tags`` (JSON
list), and ``versions`` (JSON: the vcmr, torch, numpy, soxr, soundfile and Python versions it was
exported with; ``vcmr.io.versions`` warns on loading when the running ones differ in a way known
to change embeddings). Loading uses safetensors only: nothing is unpickled.
"""
from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from vcmr._version import __version__
from vcmr.errors import CheckpointError
from vcmr.inference import EmbeddingModel
from vcmr.io.checkpoint import FORMAT_VERSION, check_format_version, model_from_checkpoint
from vcmr.io.versions import parse_versions, running_versions, warn_version_differences
from vcmr.paths import atomic_output, check_output_file

FORMAT = "vcmr"
REEXPORT = ("export it again with this vcmr from its checkpoint (`vcmr export CKPT --out FILE`), "
            "or keep using the vcmr version that wrote it")


class ModelFileError(CheckpointError):
    """An exported model file is missing, corrupt, or not a vcmr model."""


def save_model_file(model: EmbeddingModel, out: str | Path) -> Path:
    """Write an EmbeddingModel to ``out`` (.safetensors), atomically (temp name, then rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "vcmr_version": __version__,
            "stage": model.stage, "config": json.dumps(model.config, sort_keys=True),
            "sample_rate": str(model.sample_rate), "audio_length": str(model.segment_samples),
            "versions": json.dumps(running_versions(), sort_keys=True)}
    if model.tags is not None:
        meta["tags"] = json.dumps(model.tags)
    with atomic_output(out) as tmp:  # no temporary left behind, an old `out` kept on failure
        save_file(model.export_state_dict(), str(tmp), metadata=meta)
    return out


def export_checkpoint(ckpt: str | Path, out: str | Path) -> EmbeddingModel:
    """Checkpoint (any stage) -> .safetensors; returns the loaded model (for a summary).

    ``out`` is checked first: never the checkpoint itself (also via a symlink or hard link),
    never a folder, and in a writable folder.
    """
    check_output_file(out, f"--out {str(out)!r}", [ckpt])
    model = model_from_checkpoint(ckpt)
    save_model_file(model, out)
    return model


def read_model_file(path: str | Path) -> tuple[dict, dict[str, str]]:
    """``(state_dict, metadata)`` of an exported file; clear ModelFileError when it is bad."""
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
    check_format_version(meta.get("format_version"), f"model file {str(path)!r}", REEXPORT, ModelFileError)
    return state_dict, meta


def load_model_file(path: str | Path) -> EmbeddingModel:
    """An EmbeddingModel (on CPU) from an exported .safetensors file."""
    state_dict, meta = read_model_file(path)
    try:
        config = json.loads(meta["config"])
        tags = json.loads(meta["tags"]) if "tags" in meta else None
        stage = meta["stage"]
        versions = parse_versions(meta["versions"], "versions") if "versions" in meta else None
    except (KeyError, ValueError) as e:
        raise ModelFileError(f"{str(path)!r}: damaged vcmr metadata ({type(e).__name__}: {e})") from None
    model = EmbeddingModel(stage, config, state_dict, tags, str(path))
    for key, value in (("sample_rate", model.sample_rate), ("audio_length", model.segment_samples)):
        if key in meta and meta[key] != str(value):
            raise ModelFileError(f"{str(path)!r}: metadata {key}={meta[key]} disagrees with its "
                                 f"config ({value}); the file was edited or damaged")
    warn_version_differences(versions, f"model file {str(path)!r}")
    return model


def is_safetensors(path: Path) -> bool:
    """Safetensors files start with an 8-byte header length then a JSON header ('{')."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"
