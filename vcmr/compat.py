"""Files of the original projects: the VCMR authors' config files and checkpoints, and CLMR's.

Config files (``config/config_{mus,vid,sup,eval}.yaml`` of klean2050/VCMR) are recognised by
keys only they use (``n_cuda``, ``bit_precision``, ...) and translated key by key
(``AUTHOR_KEYS``) before vcmr's usual checks; every translation prints one line, a key with no
meaning in vcmr is reported once as ignored with the reason, and any other unknown key stays an
error. Where the authors' code ran something other than its file says, the translation follows
the code (their stage-1/2 "Adam" is AdamW at a fixed learning rate; see ``_optimizer``).

Checkpoints are recognised by their keys and converted, in memory, to vcmr's
``{"stage", "config", "state_dict", "tags"}``:

| layout | keys | vcmr stage |
|---|---|---|
| authors' ``ContrastiveLearning`` | ``encoder.all_blocks.*``, ``projector.{0,2}`` | mus |
| authors' ``MultimodalLearning`` | ``audio_projector.*``, ``video_temporal.*`` (LSTM), ``video_encoder.1.*``, ``video_projector.*`` | vid |
| authors' ``SupervisedLearning`` | ``encoder.all_blocks.*``, ``projector.{1,3}`` (head) | sup |
| CLMR Lightning | ``model.encoder.sequential.*``, ``model.projector.*`` | mus |
| CLMR plain ``.pt`` (``clmr_checkpoint_10000.pt``) | ``encoder.sequential.*``, ``projector.*`` | mus |

The duplicated sub-module keys (``model.*``, ``audio_model.*``, ``video_model.*``) are checked
equal to their originals and dropped. The architecture comes from the hyper-parameters when
they hold it, else from the weights' shapes; a disagreement is an error naming the key. CLMR's
SampleCNN is a vcmr encoder configuration: stem kernel 3, nine kernel-3 blocks with channels
128, 128, 256 x 6, 512 and a kernel-3 last block (``last_block_kernel_size: 3``); CLMR's
plain file holds no metadata, so its published input is assumed (59049 samples at 22050 Hz).

Safety: files are read with ``torch.load(weights_only=True)``; the only class allowed beyond
tensors and plain containers is ``argparse.Namespace`` (Lightning 1.x hyper-parameters), by
name. Anything else is refused with the class named; nothing is ever unpickled in full.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import torch

# ================================================================ config files
# authors' key -> (vcmr key or None, why); None = no meaning in vcmr (reported, then ignored)
AUTHOR_KEYS: dict[str, tuple[str | None, str]] = {
    "n_cuda": ("devices", "GPU indices"),
    "bit_precision": ("precision", "Lightning 1.x precision"),
    "video_lstm_n_layers": ("lstm_layers", "LSTM layers of the video branch"),
    "dataset_subset": ("subset", "subset evaluated"),
    "song_split_overlap_ratios": ("overlap_ratios", "overlaps of the song segments"),
    "aggregation_methods": ("aggregation", "segment-to-song aggregation"),
    "ckpt_path_audio": ("ckpt_paths", "the audio-only stage-3 checkpoint `vcmr evaluate` compares"),
    "ckpt_path_multimodal": ("ckpt_paths", "the video-conditioned stage-3 checkpoint `vcmr evaluate` compares"),
    "audio_model_version": ("ckpt_names", "names the audio-only results (model_name-music_only-VERSION)"),
    "multimodal_model_version": ("ckpt_names", "names the multimodal results (model_name-multimodal-VERSION)"),
    "ckpt_model_type": (None, "the checkpoint type is read from the checkpoint itself"),
    "video_crop_length_sec": (None, "checked against the stage-2 checkpoint in pretrained_ckpt_path "
                                    "(vcmr reads it from the weights)"),
    "video_n_features": (None, "checked against the stage-2 checkpoint in pretrained_ckpt_path "
                               "(vcmr reads it from the weights)"),
}
# Keys of the authors' files that exist in vcmr only for some stages.
STAGE_IGNORED: dict[str, dict[str, str]] = {
    "sup": {"temperature": "stage 3 has no contrastive loss"},
    "eval": {"projection_dim": "each checkpoint is rebuilt with the head stored in it"},
}
_PRECISION = {16: "16-mixed", 32: "32-true", 64: "64-true", "16": "16-mixed", "32": "32-true",
              "64": "64-true", "bf16": "bf16-mixed"}
# What the authors' configure_optimizers ran for optimizer "Adam": stage 1 AdamW(lr=3e-4),
# stage 2 AdamW(lr=5e-4), both with torch's default weight decay 0.01, whatever the file said;
# stage 3 AdamW(lr=learning_rate, weight_decay=weight_decay) from the file.
_AUTHORS_ADAM_LR = {"mus": 3e-4, "vid": 5e-4}
_TORCH_ADAMW_DECAY = 0.01


def notice(line: str) -> None:
    """One-line notice on stderr (what a translation did, and why)."""
    print(f"vcmr: {line}", file=sys.stderr)


def is_authors_config(values: dict[str, Any]) -> bool:
    """True for a config dict written for the authors' scripts: it has keys only they use
    (each of their four files has ``n_cuda``). A capitalised optimizer name alone is just
    read case-insensitively by ``load_config``."""
    return bool(set(values) & set(AUTHOR_KEYS))


def translate_config(stage: str, values: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """The authors' config dict -> vcmr keys for ``stage``, printing one line per change."""
    out: dict[str, Any] = {}
    said: list[str] = []
    for key, value in values.items():
        if key in AUTHOR_KEYS or key in STAGE_IGNORED.get(stage, {}):
            _translate_key(stage, key, value, values, out, said)
        else:
            out[key] = value
    if "optimizer" in out:
        _optimizer(stage, out, said)
    if stage == "sup":
        _sup_keys(values, out, said)
    for line in said:
        notice(f"{source}: {line}")
    return out


def _translate_key(stage, key, value, values, out, said) -> None:
    if key in STAGE_IGNORED.get(stage, {}):
        said.append(f"{key} ignored: {STAGE_IGNORED[stage][key]}")
        return
    target, why = AUTHOR_KEYS[key]
    if target is None:
        said.append(f"{key} ignored: {why}")
    elif key == "n_cuda":
        _n_cuda(stage, value, out, said)
    elif key == "bit_precision":
        if value not in _PRECISION:
            from vcmr.config import ConfigError
            raise ConfigError(f"config key 'bit_precision': expected 16, 32, 64 or 'bf16', got {value!r}")
        out["precision"] = _PRECISION[value]
        said.append(f"bit_precision {value!r} -> precision {out['precision']!r}")
    elif key in ("ckpt_path_audio", "ckpt_path_multimodal"):
        _eval_checkpoints(values, out, said)
    elif key in ("audio_model_version", "multimodal_model_version"):
        pass  # used by _eval_checkpoints
    elif key == "aggregation_methods" and isinstance(value, list):
        if len(value) != 1:
            from vcmr.config import ConfigError
            raise ConfigError(f"config key 'aggregation_methods' lists {value}: vcmr evaluates one "
                              f"aggregation per run; give one of them")
        out["aggregation"] = value[0]
        said.append(f"aggregation_methods {value!r} -> aggregation {value[0]!r}")
    else:
        out[target] = value
        said.append(f"{key} -> {target} ({why})")


def _n_cuda(stage, value, out, said) -> None:
    ids = ",".join(p.strip() for p in str(value).split(",") if p.strip())
    if stage == "eval":
        out["accelerator"] = "gpu"
        said.append(f"n_cuda {value!r} -> accelerator 'gpu' (evaluation uses one device; choose "
                    f"it with CUDA_VISIBLE_DEVICES={ids})")
        return
    out["devices"] = ids
    out.setdefault("accelerator", "gpu")
    said.append(f"n_cuda {value!r} -> devices {ids!r}, accelerator 'gpu' (GPU indices, as the "
                f"authors' CUDA_VISIBLE_DEVICES)")


def _eval_checkpoints(values, out, said) -> None:
    if "ckpt_paths" in out:
        return  # both keys handled at the first one
    paths, names = [], []
    model = values.get("model_name") or "model"
    for key, kind, version in (("ckpt_path_audio", "music_only", "audio_model_version"),
                               ("ckpt_path_multimodal", "multimodal", "multimodal_model_version")):
        if values.get(key):
            paths.append(str(values[key]))
            names.append("-".join(str(p) for p in (model, kind, values.get(version)) if p))
    out["ckpt_paths"], out["ckpt_names"] = paths, names
    said.append(f"ckpt_path_audio / ckpt_path_multimodal -> the {len(paths)} checkpoints "
                f"evaluated and compared, named {', '.join(names)}")


def _optimizer(stage, out, said) -> None:
    name = str(out["optimizer"])
    if name == "Adam":
        out["optimizer"] = "adamw"
        if stage in _AUTHORS_ADAM_LR:
            lr = _AUTHORS_ADAM_LR[stage]
            old = (out.get("learning_rate"), out.get("weight_decay"))
            out["learning_rate"], out["weight_decay"] = lr, _TORCH_ADAMW_DECAY
            said.append(f"optimizer 'Adam' -> adamw, learning_rate {lr}, weight_decay "
                        f"{_TORCH_ADAMW_DECAY}: what the authors' code ran (their file's "
                        f"learning_rate {old[0]} / weight_decay {old[1]} were not used by it); "
                        f"override with --learning_rate / --weight_decay")
        else:
            said.append("optimizer 'Adam' -> adamw (the authors' stage 3 ran AdamW)")
    elif name == "LARS":
        out["optimizer"] = "lars"
        if stage in _AUTHORS_ADAM_LR and "batch_size" in out:
            out["learning_rate"] = 0.3 * float(out["batch_size"]) / 256
            said.append(f"optimizer 'LARS' -> lars, learning_rate 0.3 x batch_size / 256 = "
                        f"{out['learning_rate']} (the authors' scaling; their cosine schedule is "
                        f"not reproduced)")
        else:
            said.append("optimizer 'LARS' -> lars")


def _sup_keys(values, out, said) -> None:
    if "projection_dim" in out:
        out["head_hidden"] = out.pop("projection_dim")
        said.append(f"projection_dim -> head_hidden {out['head_hidden']} (the hidden layer of "
                    f"the authors' tagging head)")
    if out.get("dataset") == "mtg-jamendo-dataset":
        out["dataset"] = "mtg-jamendo"
        said.append("dataset 'mtg-jamendo-dataset' -> 'mtg-jamendo'")
    check_video_keys(values)


def check_video_keys(values: dict[str, Any]) -> None:
    """``video_crop_length_sec`` / ``video_n_features`` of an authors' stage-3 file must fit
    the stage-2 checkpoint it names (when that file exists; else the later load reports it)."""
    path = values.get("pretrained_ckpt_path")
    wanted = {k: values[k] for k in ("video_crop_length_sec", "video_n_features") if k in values}
    if not wanted or not path or not Path(str(path)).is_file():
        return
    ckpt = read_foreign(path)
    if ckpt is None or ckpt["stage"] != "vid":
        return
    found = {"video_crop_length_sec": ckpt["video_seconds"],
             "video_n_features": ckpt["config"]["feature_dim"]}
    for key, value in wanted.items():
        if int(value) != found[key]:
            from vcmr.config import ConfigError
            raise ConfigError(f"config key '{key}' is {value} but the stage-2 checkpoint {path!r} "
                              f"was trained with {found[key]} (video_encoder.1.weight / "
                              f"video_temporal.weight_ih_l0); fix the key or the checkpoint path")


# ================================================================ safe reading
ALLOWED_CLASSES = [argparse.Namespace]  # Lightning 1.x hyper-parameters saved from argparse


def load_weights_only(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)`` with exactly ``ALLOWED_CLASSES`` added; any other
    object is refused with a CheckpointError naming it (it is never constructed)."""
    import pickle
    from vcmr.checkpoint import CheckpointError
    try:
        with torch.serialization.safe_globals(ALLOWED_CLASSES):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if _refused_global(e) is None:  # not an object: damaged or not a torch file at all
            raise CheckpointError(f"{what} {str(path)!r} cannot be read ({_last_line(e)}); is the "
                                  f"file complete?") from None
        raise CheckpointError(
            f"{what} {str(path)!r} refused: it holds a Python object that loading would have to "
            f"construct ({_refused_global(e)}); vcmr reads only tensors, plain containers and "
            f"argparse.Namespace, so nothing in the file runs. Save the weights as a plain "
            f"state dict (or export them as .safetensors) from a trusted copy") from None
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise CheckpointError(f"{what} {str(path)!r} cannot be read ({type(e).__name__}: {first}); "
                              f"is the file complete?") from None


def _refused_global(e: Exception) -> str | None:
    """The class or function torch's weights-only unpickler refused, from its message."""
    m = re.search(r"GLOBAL ([\w.]+)", str(e))
    return f"class or function {m.group(1)}" if m else None


def _last_line(e: Exception) -> str:
    m = re.search(r"WeightsUnpickler error:\s*(\S.*)", str(e))  # torch's reason, not its advice
    lines = [m.group(1)] if m else [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__


# ================================================================ checkpoint layouts
def _hparams(ckpt: dict) -> dict[str, Any]:
    hp = ckpt.get("hyper_parameters", {})
    if isinstance(hp, argparse.Namespace):
        hp = vars(hp)
    return dict(hp) if isinstance(hp, dict) else {}


def detect_layout(ckpt: Any) -> tuple[str, dict[str, torch.Tensor], dict[str, Any]] | None:
    """``(layout, state_dict, hyper-parameters)`` of a foreign checkpoint, or None."""
    if not isinstance(ckpt, dict):
        return None
    sd, hp = ckpt.get("state_dict"), _hparams(ckpt)
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


def read_foreign(path: str | Path, ckpt: Any = None) -> dict[str, Any] | None:
    """vcmr's ``{"stage", "config", "state_dict", "tags", "layout"}`` for a foreign checkpoint
    at ``path`` (already loaded as ``ckpt`` if given), or None when the layout is not one."""
    ckpt = load_weights_only(path) if ckpt is None else ckpt
    found = detect_layout(ckpt)
    if found is None:
        return None
    layout, sd, hp = found
    source = f"{str(path)!r} ({LAYOUT_NAMES[layout]})"
    sd = _drop_duplicates(sd, source)
    return CONVERTERS[layout](sd, hp, source) | {"layout": layout}


_DUPLICATES = {"model.0.": "encoder.", "model.1.": "projector.", "audio_model.0.": "encoder.",
               "audio_model.1.": "audio_projector.", "video_model.0.": "video_encoder.",
               "video_model.1.": "video_projector."}


def _drop_duplicates(sd: dict, source: str) -> dict:
    """Drop the ``nn.Sequential`` aliases (``model.0.*`` = ``encoder.*`` ...) after checking
    that each holds the same tensor as its original."""
    from vcmr.checkpoint import CheckpointError
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


# ---------------------------------------------------------------- encoder from shapes
def _blocks(sd: dict, prefix: str) -> dict[str, torch.Tensor]:
    """``prefix<i>.*`` -> ``encoder.blocks.<i>.*`` (the authors' all_blocks / CLMR's sequential
    index i is vcmr's blocks index i)."""
    return {"encoder.blocks." + k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def _encoder_config(enc: dict, hp: dict, source: str, defaults: dict) -> dict[str, Any]:
    """Architecture keys from the weights' shapes, checked against the hyper-parameters."""
    from vcmr.checkpoint import CheckpointError
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
    import dataclasses
    from vcmr.config import STAGES
    names = {f.name for f in dataclasses.fields(STAGES[stage])}
    return {k: v for k, v in hp.items() if k in names and (k in _FILE_KEYS or k.startswith("transforms_"))
            and isinstance(v, (str, int, float, bool, list))}


_FILE_KEYS = {"dataset_dir", "batch_size", "m_epochs", "learning_rate", "weight_decay", "temperature",
              "val_freq", "log_freq", "workers", "seed", "log_dir", "experiment_name", "dataset",
              "pretrained_ckpt_path", "audio_encoder_ckpt_path", "projection_dim"}


# ---------------------------------------------------------------- converters
def _authors_mus(sd, hp, source):
    enc = _blocks(sd, "encoder.all_blocks.")
    cfg = _stage_values(hp, "mus") | _encoder_config(enc, hp, source, AUTHORS_DEFAULTS)
    cfg |= {"projection_dim": sd["projector.2.weight"].shape[0], "projector_bias": False}
    _assumed(hp, AUTHORS_DEFAULTS, source)
    return {"stage": "mus", "config": cfg, "tags": None,
            "state_dict": enc | _take(sd, "projector.", "projector.")}


def _authors_vid(sd, hp, source):
    from vcmr.checkpoint import CheckpointError
    enc = _blocks(sd, "encoder.all_blocks.")
    cfg = _stage_values(hp, "vid") | _encoder_config(enc, hp, source, AUTHORS_DEFAULTS)
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
    cfg |= {"projection_dim": sd["audio_projector.2.weight"].shape[0], "projector_bias": False,
            "lstm_layers": layers, "lstm_hidden": hidden, "lstm_dropout": 0.1,
            "feature_dim": w_ih.shape[1], "video_hidden": fc.shape[0], "negatives": "all",
            "freeze_blocks": 4, "encoder_batchnorm": "adapt"}
    _assumed(hp, AUTHORS_DEFAULTS, source)
    weights = (enc | _take(sd, "audio_projector.", "projector.")
               | _take(sd, "video_temporal.", "video_encoder.lstm.")
               | _take(sd, "video_encoder.1.", "video_encoder.fc.0.")
               | _take(sd, "video_projector.", "video_projector."))
    return {"stage": "vid", "config": cfg, "tags": None, "state_dict": weights,
            "video_seconds": fc.shape[1] // hidden}


def _authors_sup(sd, hp, source):
    enc = _blocks(sd, "encoder.all_blocks.")
    cfg = _stage_values(hp, "sup") | _encoder_config(enc, hp, source, AUTHORS_DEFAULTS)
    if cfg.get("dataset") == "mtg-jamendo-dataset":
        cfg["dataset"] = "mtg-jamendo"
    cfg |= {"head_hidden": sd["projector.1.weight"].shape[0], "head_dropout": 0.3,
            "encoder_batchnorm": "adapt"}
    _assumed(hp, AUTHORS_DEFAULTS, source)
    notice(f"{source} stores no tag names: its {sd['projector.3.weight'].shape[0]} outputs are "
           f"in the order of the dataset it was trained on")
    return {"stage": "sup", "config": cfg, "tags": None,
            "state_dict": enc | _take(sd, "projector.", "head.")}


def _clmr(sd, hp, source):
    prefix = "model.encoder.sequential." if any(k.startswith("model.encoder.sequential.") for k in sd) \
        else "encoder.sequential."
    proj = "model.projector." if prefix.startswith("model.") else "projector."
    enc = _blocks(sd, prefix)
    cfg = _stage_values(hp, "mus") | _encoder_config(enc, hp, source, CLMR_DEFAULTS)
    weights = dict(enc)
    if proj + "2.weight" in sd:
        weights |= _take(sd, proj, "projector.")
        cfg |= {"projection_dim": sd[proj + "2.weight"].shape[0],
                "projector_bias": proj + "0.bias" in sd}
    _assumed(hp, CLMR_DEFAULTS, source)
    return {"stage": "mus", "config": cfg,
            "tags": None, "state_dict": weights}


CONVERTERS = {"authors_mus": _authors_mus, "authors_vid": _authors_vid,
              "authors_sup": _authors_sup, "clmr_lightning": _clmr, "clmr_pt": _clmr}


def adopt_encoder_architecture(cfg: Any, path: str | None) -> Any:
    """``cfg`` with the encoder keys of the original-VCMR or CLMR checkpoint at ``path`` (such
    a file was not written against a vcmr config: its architecture and input, e.g. CLMR's
    59049 samples at 22050 Hz, decide); ``cfg`` unchanged for a vcmr checkpoint or no file."""
    import dataclasses
    from vcmr.config import EncoderConfig, encoder_config
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
