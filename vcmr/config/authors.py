"""The VCMR authors' config files, translated into vcmr's keys (used by ``vcmr.config.load_config``).

Their files (``config/config_{mus,vid,sup,eval}.yaml`` of klean2050/VCMR) are recognised by
keys only they use (``n_cuda``, ``bit_precision``, ...) and translated key by key
(``AUTHOR_KEYS``) before vcmr's usual checks; every translation prints one line, a key with no
meaning in vcmr is reported once as ignored with the reason, and any other unknown key stays an
error. Where the authors' code ran something other than its file says, the translation follows
the code (their stage-1/2 "Adam" is AdamW at a fixed learning rate; see ``_optimizer``).

Below ``vcmr.config`` in the import order: it imports only ``vcmr.errors``.
The authors' checkpoints are converted by ``vcmr.io.foreign``.
"""
from __future__ import annotations

import sys
from typing import Any

from vcmr.errors import ConfigError, short_repr

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
    "video_crop_length_sec": (None, "sizes of the stage-2 video branch, which stage 3 does not use "
                                    "(only the audio encoder of pretrained_ckpt_path is taken)"),
    "video_n_features": (None, "sizes of the stage-2 video branch, which stage 3 does not use "
                               "(only the audio encoder of pretrained_ckpt_path is taken)"),
}
# Keys of the authors' files that exist in vcmr only for some stages.
STAGE_IGNORED: dict[str, dict[str, str]] = {
    "tagging": {"temperature": "stage 3 has no contrastive loss"},
    "evaluate": {"projection_dim": "each checkpoint is rebuilt with the head stored in it"},
}
_PRECISION = {16: "16-mixed", 32: "32-true", 64: "64-true", "16": "16-mixed", "32": "32-true",
              "64": "64-true", "bf16": "bf16-mixed"}
# What the authors' configure_optimizers ran for optimizer "Adam": stage 1 AdamW(lr=3e-4),
# stage 2 AdamW(lr=5e-4), both with torch's default weight decay 0.01, whatever the file said;
# stage 3 AdamW(lr=learning_rate, weight_decay=weight_decay) from the file.
_AUTHORS_ADAM_LR = {"music": 3e-4, "video": 5e-4}
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
    if stage == "tagging":
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
            raise ConfigError(f"config key 'bit_precision': expected 16, 32, 64 or 'bf16', got {short_repr(value)}")
        out["precision"] = _PRECISION[value]
        said.append(f"bit_precision {value!r} -> precision {out['precision']!r}")
    elif key in ("ckpt_path_audio", "ckpt_path_multimodal"):
        _eval_checkpoints(values, out, said)
    elif key in ("audio_model_version", "multimodal_model_version"):
        pass  # used by _eval_checkpoints
    elif key == "aggregation_methods" and isinstance(value, list):
        if len(value) != 1:
            raise ConfigError(f"config key 'aggregation_methods' lists {value}: vcmr evaluates one "
                              f"aggregation per run; give one of them")
        out["aggregation"] = value[0]
        said.append(f"aggregation_methods {value!r} -> aggregation {value[0]!r}")
    else:
        out[target] = value
        said.append(f"{key} -> {target} ({why})")


def _n_cuda(stage, value, out, said) -> None:
    ids = ",".join(p.strip() for p in str(value).split(",") if p.strip())
    if stage == "evaluate":
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
