"""Reading checkpoints of any stage without Lightning (core install).

Every training stage saves ``hyper_parameters = {"stage": ..., "config": {...}}`` and puts the
SampleCNN under the ``encoder.`` prefix of its state dict, so one function rebuilds the
encoder of a stage-1, stage-2 or stage-3 checkpoint. A config stored by an earlier vcmr version
lacks the keys added since; they take their ``vcmr.config.LEGACY`` value (no last block, ...),
so such a checkpoint rebuilds the architecture it was trained with. Checkpoints of the original
VCMR code and of CLMR are converted on reading (``vcmr.compat``). Files are always read with
``torch.load(weights_only=True)`` (argparse.Namespace the only class allowed): nothing else is
unpickled.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vcmr.config import ConfigError, EncoderConfig, encoder_config
from vcmr.errors import CheckpointError  # re-exported (vcmr.compat_read raises it too)
from vcmr.models.sample_cnn import SampleCNN
from vcmr.models.stages import load_weights, stage_config

NET_PREFIX = "net."  # a training module holds its stage network as ``net``

STAGE_NAMES = {"mus": "stage 1 (music pre-training)", "vid": "stage 2 (video-conditioned)",
               "sup": "stage 3 (tagging)"}


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``{"stage", "config", "state_dict", "tags"}`` from a Lightning checkpoint written by
    vcmr, or converted from a checkpoint of the original VCMR code or of CLMR
    (``vcmr.compat``: recognised by its keys, converted in memory, with one notice)."""
    from vcmr.compat import LAYOUT_NAMES, _hparams, load_weights_only, notice, read_foreign
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} not found: give the path of a .ckpt "
                              f"file written by vcmr (e.g. runs/<experiment>/version_0/checkpoints/last.ckpt)")
    ckpt = load_weights_only(path)
    hp = _hparams(ckpt) if isinstance(ckpt, dict) else {}
    if "stage" in hp and "config" in hp and "state_dict" in ckpt:
        return {"stage": hp["stage"], "config": hp["config"], "tags": hp.get("tags"),
                "state_dict": sub_state_dict(ckpt["state_dict"], NET_PREFIX)}
    foreign = read_foreign(path, ckpt)
    if foreign is None:
        raise CheckpointError(f"{str(path)!r} is not a vcmr checkpoint (no vcmr stage/config inside) "
                              f"nor one of the original VCMR or CLMR layouts vcmr converts")
    notice(f"{str(path)!r}: {LAYOUT_NAMES[foreign['layout']]}, converted to a vcmr "
           f"{STAGE_NAMES[foreign['stage']]} model")
    return foreign


def checkpoint_hparams(stage: str, config: dict[str, Any], tags: list[str] | None = None) -> dict[str, Any]:
    """The hyper-parameters a training module saves: what ``read_checkpoint`` reads back."""
    return {"stage": stage, "config": config, **({"tags": list(tags)} if tags is not None else {})}


def module_config(stage: str, config: Any, stored: dict[str, Any]) -> Any:
    """The stage config a training module is built from: ``config`` (a stage config or its
    dict). ``stored`` holds the other hyper-parameters ``load_from_checkpoint`` passes back."""
    if stored.get("stage", stage) != stage:
        raise CheckpointError(f"a {STAGE_NAMES.get(stored['stage'], stored['stage'])} checkpoint "
                              f"cannot be loaded as {STAGE_NAMES[stage]}")
    return stage_config(stage, config)


def check_resume_checkpoint(path: str | Path, stage: str | None = None) -> None:
    """Check a training-resume file (``ckpt_path``) with the weights-only reader before
    Lightning sees it: a vcmr checkpoint of ``stage`` with the training state Lightning restores.

    Nothing is unpickled (``weights_only=True`` whatever ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
    says); Lightning's own load is then made weights-only too (``vcmr.train.trainer.run_fit``).
    """
    path = Path(path)
    what = f"ckpt_path {str(path)!r}"
    if not path.is_file():
        raise CheckpointError(f"{what} not found: give a checkpoint written by an earlier run "
                              f"(…/checkpoints/last.ckpt) or leave ckpt_path unset")
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{what} cannot be read as a checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}); it is not a file vcmr "
                              f"wrote, or it is incomplete. Give …/checkpoints/last.ckpt of an "
                              f"earlier run") from None
    hp = ckpt.get("hyper_parameters", {}) if isinstance(ckpt, dict) else {}
    if not isinstance(hp, dict) or "stage" not in hp or "state_dict" not in ckpt:
        raise CheckpointError(f"{what} is not a vcmr training checkpoint (no vcmr stage inside)")
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
    """Rebuild and load the SampleCNN of a checkpoint of any stage.

    With ``expected``, the checkpoint's architecture must equal it (else CheckpointError).
    Returns ``(encoder, checkpoint_dict)``.
    """
    ckpt = read_checkpoint(path)
    try:
        cfg = encoder_config(ckpt["config"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: its stored config is invalid: {e}") from None
    if expected is not None and cfg != expected:
        diffs = [f"{k}: checkpoint {getattr(cfg, k)!r} vs config {getattr(expected, k)!r}"
                 for k in cfg.__dataclass_fields__ if getattr(cfg, k) != getattr(expected, k)]
        raise CheckpointError(f"the encoder architecture in {path} differs from the config ("
                              + "; ".join(diffs) + "). Make the config match the checkpoint.")
    encoder = SampleCNN(cfg)
    load_weights(encoder, ckpt["state_dict"], str(path), prefix="encoder.")
    return encoder, ckpt
