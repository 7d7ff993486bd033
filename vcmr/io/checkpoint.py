"""vcmr training checkpoints, read without Lightning (core install).

Every training module saves ``hyper_parameters = {"format_version", "stage", "config",
["tags"]}`` (``checkpoint_hparams``) and holds its stage network (``vcmr.models.stages``) as ``net``, so
its state dict is the network's under ``net.``. ``read_checkpoint`` gives vcmr's
``{"stage", "config", "state_dict", "tags"}`` with the network's own keys, for a vcmr
checkpoint or, converted on reading (``vcmr.io.foreign``), one of the original VCMR code or of
CLMR. Files are read by ``vcmr.io.safe`` only: nothing is unpickled.

``FORMAT_VERSION`` numbers the layout of vcmr's own files, checkpoints and exported model files
alike (the stage networks' state dicts and config keys); a file of any other version, or of
none, is refused with a message saying what to do. Foreign files are recognised by their
layout instead.
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, Optional

import torch

from vcmr.config import ConfigError, EncoderConfig, encoder_config
from vcmr.config.authors import notice
from vcmr.errors import CheckpointError, short_repr
from vcmr.inference import EmbeddingModel
from vcmr.io.foreign import read_foreign
from vcmr.io.layouts import LAYOUT_NAMES
from vcmr.io.safe import hyper_parameters, read_weights_only
from vcmr.models.sample_cnn import SampleCNN
from vcmr.models.stages import build_loaded, stage_config

NET_PREFIX = "net."  # a training module holds its stage network as ``net``
DATA_KEY = "vcmr_data"  # what training saved about its data (``vcmr.train.base.data_summary``)
FORMAT_VERSION = 2  # of vcmr's checkpoints and model files
RETRAIN = "retrain with this vcmr, or keep using the vcmr version that wrote it"

STAGE_NAMES = {"music": "stage 1 (music pre-training)", "video": "stage 2 (video-conditioned)",
               "tagging": "stage 3 (tagging)"}


def checkpoint_hparams(stage: str, config: dict[str, Any], tags: list[str] | None = None) -> dict[str, Any]:
    """The hyper-parameters a training module saves: what ``read_checkpoint`` reads back."""
    return {"format_version": FORMAT_VERSION, "stage": stage, "config": config,
            **({"tags": list(tags)} if tags is not None else {})}


def check_format_version(found: Any, source: str, fix: str = RETRAIN,
                         error: type[CheckpointError] = CheckpointError) -> None:
    """Refuse a vcmr file whose format version (``found``) is not ``FORMAT_VERSION``."""
    if found is not None and str(found) == str(FORMAT_VERSION):
        return
    what = "records no format version" if found is None else f"has format version {found}"
    raise error(f"{source} {what}; this vcmr reads vcmr files of format version "
                f"{FORMAT_VERSION} only: {fix}")


def module_config(stage: str, config: Any, stored: dict[str, Any]) -> Any:
    """The stage config a training module is built from: ``config`` (a stage config or its
    dict). ``stored`` holds the other hyper-parameters ``load_from_checkpoint`` passes back."""
    if stored:
        check_format_version(stored.get("format_version"), "the checkpoint")
    if stored.get("stage", stage) != stage:
        raise CheckpointError(f"a {STAGE_NAMES.get(stored['stage'], stored['stage'])} checkpoint "
                              f"cannot be loaded as {STAGE_NAMES[stage]}")
    return stage_config(stage, config)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``{"stage", "config", "state_dict", "tags"}`` of a vcmr checkpoint (the state dict with
    the stage network's keys), or of a converted checkpoint of the original VCMR code or of
    CLMR (recognised by its keys, converted in memory with one notice; ``"layout"`` added)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} not found: give the path of a .ckpt "
                              f"file written by vcmr (e.g. runs/<experiment>/version_0/checkpoints/last.ckpt)")
    ckpt = read_weights_only(path)
    hp = hyper_parameters(ckpt)
    if "stage" in hp and "config" in hp and "state_dict" in ckpt:
        check_format_version(hp.get("format_version"), f"checkpoint {str(path)!r}")
        return {"stage": hp["stage"], "config": hp["config"], "tags": hp.get("tags"),
                "state_dict": sub_state_dict(ckpt["state_dict"], NET_PREFIX)}
    foreign = read_foreign(path, ckpt)
    if foreign is None:
        raise CheckpointError(f"{str(path)!r} is not a vcmr checkpoint (no vcmr stage/config inside) "
                              f"nor one of the original VCMR or CLMR layouts vcmr converts")
    notice(f"{str(path)!r}: {LAYOUT_NAMES[foreign['layout']]}, converted to a vcmr "
           f"{STAGE_NAMES[foreign['stage']]} model")
    return foreign


def model_from_checkpoint(path: str | Path) -> EmbeddingModel:
    """The inference model (on CPU) of a checkpoint of any stage, vcmr's or converted."""
    ckpt = read_checkpoint(path)
    return EmbeddingModel(ckpt["stage"], ckpt["config"], ckpt["state_dict"], ckpt.get("tags"),
                          str(path), ckpt.get("layout"))


def check_resume_checkpoint(path: str | Path, stage: str | None = None) -> None:
    """Check a training-resume file (``ckpt_path``) with the weights-only reader before
    Lightning sees it: a vcmr checkpoint of ``stage`` with the training state Lightning restores.
    Lightning's own load is then made weights-only too (``vcmr.train.trainer.run_fit``)."""
    path = Path(path)
    what = f"ckpt_path {str(path)!r}"
    if not path.is_file():
        raise CheckpointError(f"{what} not found: give a checkpoint written by an earlier run "
                              f"(…/checkpoints/last.ckpt) or leave ckpt_path unset")
    try:
        ckpt = read_weights_only(path, "the file")
    except CheckpointError as e:
        raise CheckpointError(f"{what} cannot be read as a checkpoint: {e}. Give "
                              f"…/checkpoints/last.ckpt of an earlier run") from None
    hp = hyper_parameters(ckpt)
    if "stage" not in hp or "state_dict" not in ckpt:
        raise CheckpointError(f"{what} is not a vcmr training checkpoint (no vcmr stage inside)")
    check_format_version(hp.get("format_version"), what, "resume only runs of this vcmr")
    if stage is not None and hp["stage"] != stage:
        raise CheckpointError(f"{what} is a {STAGE_NAMES.get(hp['stage'], hp['stage'])} checkpoint; "
                              f"resuming {STAGE_NAMES.get(stage, stage)} needs a checkpoint of the "
                              f"same stage")
    missing = [k for k in ("optimizer_states", "loops", "epoch", "global_step") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{what} holds weights but not the training state needed to resume "
                              f"({', '.join(missing)} missing); to start from these weights use "
                              f"the stage's *_ckpt_path key instead of ckpt_path")


def sub_state_dict(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def load_encoder(path: str | Path, expected: EncoderConfig | None = None) -> tuple[SampleCNN, dict]:
    """The SampleCNN of a checkpoint of any stage, with its weights.

    With ``expected``, the checkpoint's architecture must equal it (else CheckpointError).
    Returns ``(encoder, read_checkpoint's dict)``.
    """
    ckpt = read_checkpoint(path)
    try:
        cfg = encoder_config(ckpt["config"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: its stored config is invalid: {e}") from None
    if expected is not None and cfg != expected:
        diffs = [f"{k}: checkpoint {short_repr(getattr(cfg, k))} vs config {short_repr(getattr(expected, k))}"
                 for k in cfg.__dataclass_fields__ if getattr(cfg, k) != getattr(expected, k)]
        raise CheckpointError(f"the encoder architecture in {path} differs from the config ("
                              + "; ".join(diffs) + "). Make the config match the checkpoint.")
    try:
        encoder = build_loaded(lambda: SampleCNN(cfg), ckpt["state_dict"], str(path),
                               prefix="encoder.")
    except ConfigError as e:  # SampleCNN validates the sizes (a negative one is a ConfigError)
        raise CheckpointError(f"{path}: its stored config is invalid: {e}") from None
    return encoder, ckpt


def checkpoint_metrics(path: str | Path) -> dict[str, Any]:
    """What a Lightning checkpoint records about its training: epoch, global step and each
    ModelCheckpoint's monitored metric with its best score ({} if none)."""
    raw = read_weights_only(path)
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {k: int(raw[k]) for k in ("epoch", "global_step") if isinstance(raw.get(k), int)}
    for state in (raw.get("callbacks") or {}).values():
        if isinstance(state, dict) and state.get("monitor") and state.get("best_model_score") is not None:
            out[f"best {state['monitor']}"] = float(state["best_model_score"])
    return out


def checkpoint_data(path: str | Path) -> dict[str, Any]:
    """What a vcmr training checkpoint records about its data (``DATA_KEY``): the data folder's
    name, numbers of training and validation examples, ...; {} for a file without it. Only
    strings and numbers are kept."""
    raw = read_weights_only(path)
    data = raw.get(DATA_KEY) if isinstance(raw, dict) else None
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items()
            if isinstance(v, (str, int, float)) and not isinstance(v, bool)}


def no_pretrained(path: Optional[str]) -> bool:
    """Whether ``pretrained_ckpt_path`` asks for a random encoder (unset, "none", "random")."""
    return path is None or str(path).strip().lower() in ("", "none", "null", "random")


def resolve_encoder(cfg):
    """The encoder a tagging head trains on (``vcmr train tagging``, ``vcmr probe``) and ``cfg``
    (a TaggingConfig) with the encoder's architecture keys: the encoder of
    ``cfg.pretrained_ckpt_path``, or a random one when it is none.

    A checkpoint's architecture wins over the config's (warning when they differ).
    """
    if no_pretrained(cfg.pretrained_ckpt_path):
        return SampleCNN(cfg), dataclasses.replace(cfg, pretrained_ckpt_path=None)
    encoder, _ = load_encoder(cfg.pretrained_ckpt_path)
    ck, given = encoder.cfg, encoder_config(cfg)
    if ck != given:
        diffs = [f"{f.name}={short_repr(getattr(ck, f.name))} (config {short_repr(getattr(given, f.name))})"
                 for f in dataclasses.fields(EncoderConfig) if getattr(ck, f.name) != getattr(given, f.name)]
        warnings.warn(f"{cfg.pretrained_ckpt_path}: using the checkpoint's encoder architecture: "
                      + ", ".join(diffs), stacklevel=2)
    values = {f.name: getattr(ck, f.name) for f in dataclasses.fields(EncoderConfig)}
    return encoder, dataclasses.replace(cfg, **values)
