"""Checkpoints of the original projects (the VCMR authors' and CLMR's), converted in memory to
vcmr's own ``{"stage", "config", "state_dict", "tags", "layout"}``: a stage config and the state
dict of the stage network (``vcmr.models.stages``) that ``build`` then makes, like any vcmr file.
The layouts are recognised by their keys (``vcmr.io.layouts``, which lists them).

The duplicated sub-module keys (``model.*``, ``audio_model.*``, ``video_model.*``) are checked
equal to their originals and dropped. The architecture comes from the hyper-parameters when
they hold it, else from the weights' shapes; a disagreement is an error naming the key. CLMR's
SampleCNN is a vcmr encoder configuration: stem kernel 3, nine kernel-3 blocks with channels
128, 128, 256 x 6, 512 and a kernel-3 last block (``last_block_kernel_size: 3``); CLMR's
plain file holds no metadata, so its published input is assumed (59049 samples at 22050 Hz).
The authors' stage-3 files store no tag names: their outputs are named ``output_<i>`` and the
model records its ``layout``, so evaluation takes them in the dataset's tag order.

The authors' config files are translated by ``vcmr.config.authors``.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import torch

from vcmr.config import STAGES, EncoderConfig, encoder_config
from vcmr.config.authors import notice
from vcmr.errors import CheckpointError
from vcmr.io.layouts import LAYOUT_NAMES, detect_layout, drop_duplicates, video_sizes
from vcmr.io.safe import read_weights_only


def read_foreign(path: str | Path, ckpt: Any = None) -> dict[str, Any] | None:
    """vcmr's ``{"stage", "config", "state_dict", "tags", "layout"}`` for a foreign checkpoint
    at ``path`` (already loaded as ``ckpt`` if given), or None when the layout is not one."""
    ckpt = read_weights_only(path) if ckpt is None else ckpt
    found = detect_layout(ckpt)
    if found is None:
        return None
    layout, sd, hp = found
    source = f"{str(path)!r} ({LAYOUT_NAMES[layout]})"
    sd = drop_duplicates(sd, source)
    return CONVERTERS[layout](sd, hp, source) | {"layout": layout}


# ---------------------------------------------------------------- encoder from shapes
def _blocks(sd: dict, prefix: str) -> dict[str, torch.Tensor]:
    """``prefix<i>.*`` -> ``encoder.blocks.<i>.*`` (the authors' all_blocks / CLMR's sequential
    index i is vcmr's blocks index i)."""
    return {"encoder.blocks." + k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def _encoder_config(enc: dict, hp: dict, source: str, defaults: dict) -> dict[str, Any]:
    """Architecture keys from the weights' shapes, checked against the hyper-parameters."""
    convs = sorted((int(k.split(".")[2]), v) for k, v in enc.items()
                   if re.fullmatch(r"encoder\.blocks\.\d+\.0\.weight", k))
    if len(convs) < 3 or [i for i, _ in convs] != list(range(len(convs))):
        raise CheckpointError(f"{source}: the encoder's convolution weights are incomplete "
                              f"(blocks {[i for i, _ in convs]})")
    stem, middle, last = convs[0][1], [w for _, w in convs[1:-1]], convs[-1][1]
    shapes = {"first_block_params": {"out_channels": stem.shape[0], "conv_size": stem.shape[2]},
              "n_blocks": len(middle), "n_channels": [w.shape[0] for w in middle],
              "conv_kernel_size": middle[0].shape[2], "output_size": last.shape[0],
              "last_block_kernel_size": last.shape[2]}
    for key, value in shapes.items():
        stored = hp.get(key)
        if stored is not None and _norm(stored) != _norm(value):
            raise CheckpointError(f"{source}: hyper-parameter {key}={stored!r} disagrees with the "
                                  f"weights ({value!r}, from encoder.blocks shapes); the file is "
                                  f"inconsistent")
    cfg = dict(shapes)
    for key in ("pool_size", "activation", "sample_rate", "audio_length"):
        cfg[key] = hp.get(key, defaults[key])
    cfg["first_block_params"] = dict(cfg["first_block_params"])
    return cfg


def _norm(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [int(x) for x in v]
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


AUTHORS_DEFAULTS = {"pool_size": 3, "activation": "relu", "sample_rate": 16000, "audio_length": 98415}
CLMR_DEFAULTS = {"pool_size": 3, "activation": "relu", "sample_rate": 22050, "audio_length": 59049}


def _assumed(hp: dict, defaults: dict, source: str) -> None:
    missing = [k for k in ("sample_rate", "audio_length") if k not in hp]
    if missing:
        notice(f"{source} does not record {', '.join(missing)}: assuming "
               + ", ".join(f"{k} {defaults[k]}" for k in missing) + " (its published configuration)")


def _take(sd: dict, old: str, new: str) -> dict[str, torch.Tensor]:
    return {new + k[len(old):]: v for k, v in sd.items() if k.startswith(old)}


def _stage_values(hp: dict, stage: str) -> dict[str, Any]:
    """Hyper-parameters that come from the authors' or CLMR's config files and are keys of the
    vcmr stage config with the same meaning (Lightning 1.x trainer arguments are left out)."""
    names = {f.name for f in dataclasses.fields(STAGES[stage])}
    return {k: v for k, v in hp.items() if k in names and (k in _FILE_KEYS or k.startswith("transforms_"))
            and isinstance(v, (str, int, float, bool, list))}


_FILE_KEYS = {"dataset_dir", "batch_size", "m_epochs", "learning_rate", "weight_decay", "temperature",
              "val_freq", "log_freq", "workers", "seed", "log_dir", "experiment_name", "dataset",
              "pretrained_ckpt_path", "audio_encoder_ckpt_path", "projection_dim"}


# ---------------------------------------------------------------- converters
def _authors_mus(sd, hp, source):
    enc = _blocks(sd, "encoder.all_blocks.")
    cfg = _stage_values(hp, "music") | _encoder_config(enc, hp, source, AUTHORS_DEFAULTS)
    cfg["projection_dim"] = sd["projector.2.weight"].shape[0]
    _assumed(hp, AUTHORS_DEFAULTS, source)
    return {"stage": "music", "config": cfg, "tags": None,
            "state_dict": enc | _take(sd, "projector.", "projector.")}


def _authors_vid(sd, hp, source):
    enc = _blocks(sd, "encoder.all_blocks.")
    cfg = _stage_values(hp, "video") | _encoder_config(enc, hp, source, AUTHORS_DEFAULTS)
    video = video_sizes(sd, hp, source)
    cfg |= {"projection_dim": sd["audio_projector.2.weight"].shape[0],
            "lstm_layers": video["lstm_layers"], "lstm_hidden": video["lstm_hidden"], "lstm_dropout": 0.1,
            "feature_dim": video["feature_dim"], "video_hidden": video["video_hidden"],
            "video_crop_seconds": video["video_seconds"], "negatives": "all",
            "freeze_blocks": 4, "encoder_batchnorm": "adapt"}
    _assumed(hp, AUTHORS_DEFAULTS, source)
    weights = (enc | _take(sd, "audio_projector.", "projector.")
               | _take(sd, "video_temporal.", "video_encoder.lstm.")
               | _take(sd, "video_encoder.1.", "video_encoder.fc.0.")
               | _take(sd, "video_projector.", "video_projector."))
    return {"stage": "video", "config": cfg, "tags": None, "state_dict": weights}


def _authors_sup(sd, hp, source):
    enc = _blocks(sd, "encoder.all_blocks.")
    cfg = _stage_values(hp, "tagging") | _encoder_config(enc, hp, source, AUTHORS_DEFAULTS)
    if cfg.get("dataset") == "mtg-jamendo-dataset":
        cfg["dataset"] = "mtg-jamendo"
    cfg |= {"head_hidden": sd["projector.1.weight"].shape[0], "head_dropout": 0.3,
            "encoder_batchnorm": "adapt"}
    _assumed(hp, AUTHORS_DEFAULTS, source)
    n_tags = sd["projector.3.weight"].shape[0]
    notice(f"{source} stores no tag names: its {n_tags} outputs are in the order of the dataset "
           f"it was trained on (named output_0 ... output_{n_tags - 1} here)")
    return {"stage": "tagging", "config": cfg, "tags": [f"output_{i}" for i in range(n_tags)],
            "state_dict": enc | _take(sd, "projector.", "head.")}


def _clmr(sd, hp, source):
    prefix = "model.encoder.sequential." if any(k.startswith("model.encoder.sequential.") for k in sd) \
        else "encoder.sequential."
    proj = "model.projector." if prefix.startswith("model.") else "projector."
    enc = _blocks(sd, prefix)
    cfg = _stage_values(hp, "music") | _encoder_config(enc, hp, source, CLMR_DEFAULTS)
    weights = dict(enc)
    if proj + "2.weight" in sd:
        weights |= _take(sd, proj, "projector.")
        cfg["projection_dim"] = sd[proj + "2.weight"].shape[0]
    _assumed(hp, CLMR_DEFAULTS, source)
    return {"stage": "music", "config": cfg, "tags": None, "state_dict": weights}


CONVERTERS = {"authors_mus": _authors_mus, "authors_vid": _authors_vid,
              "authors_sup": _authors_sup, "clmr_lightning": _clmr, "clmr_pt": _clmr}


def adopt_encoder_architecture(cfg: Any, path: str | None) -> Any:
    """``cfg`` with the encoder keys of the original-VCMR or CLMR checkpoint at ``path`` (such
    a file was not written against a vcmr config: its architecture and input, e.g. CLMR's
    59049 samples at 22050 Hz, decide); ``cfg`` unchanged for a vcmr checkpoint or no file."""
    if not path or not Path(str(path)).is_file():
        return cfg
    ckpt = read_foreign(path)
    if ckpt is None:
        return cfg
    enc = encoder_config(ckpt["config"])
    values = {f.name: getattr(enc, f.name) for f in dataclasses.fields(EncoderConfig)}
    changed = [f"{k} {v!r}" for k, v in values.items() if getattr(cfg, k) != v]
    if changed:
        notice(f"{path}: encoder architecture taken from the checkpoint: {', '.join(changed)}")
    return dataclasses.replace(cfg, **values)
