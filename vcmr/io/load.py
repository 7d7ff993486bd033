"""``load_model``: the one way to turn any model file into an ``EmbeddingModel``.

    model = vcmr.load_model("runs/.../last.ckpt")   # a vcmr checkpoint of any stage
    model = vcmr.load_model("model.safetensors")    # a file from `vcmr export`
    model = vcmr.load_model("my-vcmr-model/")       # a folder from `vcmr export --hub_dir`
    model = vcmr.load_model("hf://ORG/NAME@v1")     # a Hugging Face Hub model
    model = vcmr.load_model("clmr_checkpoint_10000.pt")  # the authors' or CLMR's, converted

Core install only: no Lightning, PyAV or transformers are imported.
"""
from __future__ import annotations

from pathlib import Path

import torch

from vcmr.errors import CheckpointError
from vcmr.devices import resolve_device
from vcmr.inference import EmbeddingModel
from vcmr.io.checkpoint import model_from_checkpoint
from vcmr.io.hub import HUB_FILE, is_hub, load_hub
from vcmr.io.model_file import is_safetensors, load_model_file


def load_model(name_or_path: str | Path, device: str | torch.device | None = None) -> EmbeddingModel:
    """An EmbeddingModel from a vcmr checkpoint (.ckpt, any stage), an exported .safetensors
    file, a folder written by ``vcmr export --hub_dir`` (its model.safetensors), a Hugging Face
    Hub model ``hf://ORG/NAME[@REVISION]``, or a checkpoint of the original VCMR code or of
    CLMR. ``device``: None or "auto" = CUDA when available."""
    if is_hub(name_or_path):
        return load_hub(name_or_path).to(resolve_device(device))
    path = Path(name_or_path)
    if path.is_dir() and (path / HUB_FILE).is_file():
        path = path / HUB_FILE
    if not path.exists():
        raise CheckpointError(f"model {str(name_or_path)!r} not found: give a .ckpt written by vcmr "
                              f"training, a .safetensors file from `vcmr export` (or the folder of "
                              f"`vcmr export --hub_dir`), or hf://ORG/NAME")
    if path.is_dir():
        raise CheckpointError(f"{str(path)!r} is a folder without {HUB_FILE}: give a "
                              f".ckpt or .safetensors file, or a folder from `vcmr export --hub_dir`")
    return load_local_file(path).to(resolve_device(device))


def load_local_file(path: Path) -> EmbeddingModel:
    """An EmbeddingModel (on CPU) from a local file: an exported .safetensors file or a
    checkpoint of any stage (told apart by the file's first bytes, not its name)."""
    if is_safetensors(path):
        return load_model_file(path)
    return model_from_checkpoint(path)
