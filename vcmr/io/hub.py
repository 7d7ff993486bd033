"""Models on the Hugging Face Hub: reading ``hf://ORG/NAME[@REVISION]`` and writing the folder
a Hub repository holds.

    vcmr.load_model("hf://ORG/NAME")              # model.safetensors of a Hub repository
    vcmr.load_model("hf://ORG/NAME@v1.0")         # a pinned revision (tag, branch or commit)
    vcmr export runs/.../last.ckpt --hub_dir my-vcmr-model   # then: hf upload ORG/my-vcmr-model my-vcmr-model

Hub models go through ``huggingface_hub`` (the ``hub`` extra): its cache (``$HF_HOME``,
``$HF_HUB_CACHE``), its offline mode (``HF_HUB_OFFLINE=1``: the cached file, no request), its
revision pinning and progress bars. A Hub repository holds what ``export_hub_dir`` writes:
``model.safetensors`` (read with safetensors only), ``config.json`` (the file's metadata,
readable without safetensors) and a model card ``README.md`` (``vcmr.io.card``: configuration,
training data, the checkpoint's metrics, the HEAR validator's result, tagging numbers of a
results folder, licence, citation); ``vcmr.load_model(DIR)`` reads such a folder too.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable

from vcmr._version import __version__
from vcmr.errors import VcmrError
from vcmr.inference import EmbeddingModel
from vcmr.io.card import model_card, read_results
from vcmr.io.checkpoint import checkpoint_data, checkpoint_metrics, model_from_checkpoint
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
                   overwrite: bool = False, repo_id: str | None = None,
                   hear: Callable[[EmbeddingModel], dict] | None = None,
                   results: str | Path | None = None) -> EmbeddingModel:
    """Checkpoint -> a folder ready for ``hf upload ORG/NAME DIR``: model.safetensors,
    config.json (the file's metadata, readable without safetensors, and what the card reports)
    and README.md (the model card, ``vcmr.io.card``). A folder that already holds files is
    refused unless ``overwrite``. ``repo_id``: ORG/NAME the card's snippets load;
    ``hear``: a function giving the HEAR validator's report of the model
    (``vcmr.hear_validator.hear_report``); ``results``: a results folder of ``vcmr evaluate``."""
    out_dir = Path(out_dir)
    check_hub_dir(ckpt, out_dir, overwrite)
    if repo_id is not None:
        parse_hub(HUB_PREFIX + repo_id)  # a clear error before any work
    found = read_results(results) if results is not None else None
    model = model_from_checkpoint(ckpt)
    metrics, data = checkpoint_metrics(ckpt), checkpoint_data(ckpt)
    report = hear(model) if hear is not None else None
    save_model_file(model, out_dir / HUB_FILE)
    _, meta = read_model_file(out_dir / HUB_FILE)
    versions = json.loads(meta["versions"])
    config = {**{k: v for k, v in meta.items() if k not in ("config", "tags", "versions")},
              "config": json.loads(meta["config"]), "tags": model.tags, "versions": versions,
              "metrics": metrics, "training_data": data, "embedding_size": model.embedding_size,
              "joint_size": model.joint_size, **({"hear": report} if report else {})}
    _write_text(out_dir / "config.json", json.dumps(config, indent=1, sort_keys=True) + "\n")
    name = out_dir.resolve().name
    spec = HUB_PREFIX + (repo_id or f"ORG/{name}")
    card = model_card(model, name, metrics, license, spec=spec, data=data, hear=report,
                      results=found, ckpt=ckpt, versions=versions)
    _write_text(out_dir / "README.md", card)
    return model


def _write_text(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
