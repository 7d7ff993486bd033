"""The layouts of the original projects' checkpoints, recognised by their keys.

| layout | keys | vcmr stage |
|---|---|---|
| authors' ``ContrastiveLearning`` | ``encoder.all_blocks.*``, ``projector.{0,2}`` | mus |
| authors' ``MultimodalLearning`` | ``audio_projector.*``, ``video_temporal.*`` (LSTM), ``video_encoder.1.*``, ``video_projector.*`` | vid |
| authors' ``SupervisedLearning`` | ``encoder.all_blocks.*``, ``projector.{1,3}`` (head) | sup |
| CLMR Lightning | ``model.encoder.sequential.*``, ``model.projector.*`` | mus |
| CLMR plain ``.pt`` (``clmr_checkpoint_10000.pt``) | ``encoder.sequential.*``, ``projector.*`` (optional: an encoder-only file loads without a projector) | mus |

A leaf module (torch, ``vcmr.errors`` and the safe reader only), so the config loader can check
an authors' stage-3 file against the stage-2 checkpoint it names (``authors_video_sizes``). The
conversion to vcmr's own config and state dict is ``vcmr.io.foreign``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from vcmr.errors import CheckpointError
from vcmr.io.safe import hyper_parameters, read_weights_only


def detect_layout(ckpt: Any) -> tuple[str, dict[str, torch.Tensor], dict[str, Any]] | None:
    """``(layout, state_dict, hyper-parameters)`` of a foreign checkpoint, or None."""
    if not isinstance(ckpt, dict):
        return None
    sd, hp = ckpt.get("state_dict"), hyper_parameters(ckpt)
    if not isinstance(sd, dict):
        sd, hp = ckpt, {}  # a plain state dict (CLMR's released .pt)
    if not all(isinstance(v, torch.Tensor) for v in sd.values()) or not sd:
        return None
    keys = set(sd)
    if any(k.startswith("encoder.all_blocks.") for k in keys):
        if "audio_projector.0.weight" in keys:
            return "authors_vid", sd, hp
        if "projector.1.weight" in keys:
            return "authors_sup", sd, hp
        if "projector.0.weight" in keys:
            return "authors_mus", sd, hp
    if any(k.startswith(("model.encoder.sequential.", "encoder.sequential.")) for k in keys):
        return ("clmr_lightning" if "pytorch-lightning_version" in ckpt else "clmr_pt"), sd, hp
    return None


LAYOUT_NAMES = {
    "authors_mus": "the VCMR authors' ContrastiveLearning (stage 1)",
    "authors_vid": "the VCMR authors' MultimodalLearning (stage 2)",
    "authors_sup": "the VCMR authors' SupervisedLearning (stage 3)",
    "clmr_lightning": "a CLMR Lightning checkpoint",
    "clmr_pt": "CLMR's plain PyTorch checkpoint (as clmr_checkpoint_10000.pt)",
}


_DUPLICATES = {"model.0.": "encoder.", "model.1.": "projector.", "audio_model.0.": "encoder.",
               "audio_model.1.": "audio_projector.", "video_model.0.": "video_encoder.",
               "video_model.1.": "video_projector."}


def drop_duplicates(sd: dict, source: str) -> dict:
    """Drop the ``nn.Sequential`` aliases (``model.0.*`` = ``encoder.*`` ...) after checking
    that each holds the same tensor as its original."""
    out = {}
    for k, v in sd.items():
        alias = next((p for p in _DUPLICATES if k.startswith(p)), None)
        if alias is None:
            out[k] = v
            continue
        original = _DUPLICATES[alias] + k[len(alias):]
        if original in sd and not torch.equal(sd[original], v):
            raise CheckpointError(f"{source}: {k!r} differs from {original!r}; the two names "
                                  f"should hold the same tensor, the file is damaged")
    return out


def video_sizes(sd: dict, hp: dict, source: str) -> dict[str, int]:
    """Sizes of the authors' stage-2 video branch, from its weights: LSTM layers and size,
    frame-feature size, fc output size and clip seconds (checked against the stored
    ``video_lstm_n_layers`` when there is one)."""
    w_ih, w_hh = sd["video_temporal.weight_ih_l0"], sd["video_temporal.weight_hh_l0"]
    fc = sd["video_encoder.1.weight"]
    hidden = w_hh.shape[1]
    if fc.shape[1] % hidden:
        raise CheckpointError(f"{source}: video_encoder.1.weight has {fc.shape[1]} inputs, not a "
                              f"multiple of the LSTM size {hidden} (video_temporal.weight_hh_l0)")
    layers = sum(1 for k in sd if re.fullmatch(r"video_temporal\.weight_ih_l\d+", k))
    if "video_lstm_n_layers" in hp and int(hp["video_lstm_n_layers"]) != layers:
        raise CheckpointError(f"{source}: hyper-parameter video_lstm_n_layers="
                              f"{hp['video_lstm_n_layers']} but the weights hold {layers} LSTM layers "
                              f"(video_temporal.weight_ih_l*)")
    return {"lstm_layers": layers, "lstm_hidden": hidden, "feature_dim": w_ih.shape[1],
            "video_hidden": fc.shape[0], "video_seconds": fc.shape[1] // hidden}


def authors_video_sizes(path: str | Path) -> dict[str, int] | None:
    """``video_sizes`` of the authors' stage-2 checkpoint at ``path``, None for any other file.
    Reads only what the config check needs; the full conversion is ``vcmr.io.foreign.read_foreign``."""
    found = detect_layout(read_weights_only(path))
    if found is None or found[0] != "authors_vid":
        return None
    layout, sd, hp = found
    source = f"{str(path)!r} ({LAYOUT_NAMES[layout]})"
    return video_sizes(drop_duplicates(sd, source), hp, source)
