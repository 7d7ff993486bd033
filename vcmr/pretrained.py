"""Pretrained models: from the Hugging Face Hub, and a registry of name -> URL, sha256, architecture.

    vcmr.load_model("hf://ORG/NAME")              # model.safetensors of a Hub repository
    vcmr.load_model("hf://ORG/NAME@v1.0")         # a pinned revision (tag, branch or commit)
    vcmr.available_models()                       # registry names that can be downloaded
    vcmr.load_model("vcmr-mtat")                  # download once into the cache, verify, load

Hub models go through ``huggingface_hub`` (the ``hub`` extra): its cache (``$HF_HOME``,
``$HF_HUB_CACHE``), its offline mode (``HF_HUB_OFFLINE=1``: the cached file, no request), its
revision pinning and progress bars. A Hub repository holds what ``vcmr export CKPT --hub-dir
DIR`` writes: ``model.safetensors`` (read with safetensors only), ``config.json`` and a model
card. Registry entries whose url is ``hf://...`` download through the same library (then their
sha256 is checked); other urls through urllib.

No weights are published yet, so the registry is EMPTY: ``available_models()`` returns ``[]``
and every name gives an "unknown model" error. When weights are released, add one
``PretrainedModel`` per file to ``_MODELS`` (the sha256 of the exported .safetensors file and
its encoder architecture). Users who host their own exported files can call ``register``.

Other files are downloaded (with urllib: https:// or file://) into the cache folder
``$VCMR_CACHE`` or ``$XDG_CACHE_HOME/vcmr`` or ``~/.cache/vcmr``, to a temporary name that is
renamed only after its sha256 matched; a cached file is re-verified before every load.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcmr.checkpoint import CheckpointError
from vcmr.config import with_legacy
from vcmr.errors import VcmrError


class PretrainedError(VcmrError):
    """Unknown model name, failed download, or a file that does not match the registry."""


@dataclass(frozen=True)
class PretrainedModel:
    name: str
    url: str
    sha256: str
    config: dict[str, Any] = field(default_factory=dict)  # expected encoder keys, e.g. output_size
    stage: str = "sup"
    description: str = ""


# name -> entry. Empty until weights are published (see the module docstring).
_MODELS: dict[str, PretrainedModel] = {}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def register(entry: PretrainedModel) -> None:
    """Add (or replace) a registry entry, e.g. for weights hosted by your lab."""
    if not _NAME.match(entry.name) or entry.name.endswith((".ckpt", ".safetensors")):
        raise PretrainedError(f"invalid model name {entry.name!r}: use letters, digits, '-', '_' or '.'")
    if not re.fullmatch(r"[0-9a-f]{64}", entry.sha256):
        raise PretrainedError(f"model {entry.name!r}: sha256 must be 64 lowercase hex digits")
    _MODELS[entry.name] = entry


def available_models() -> list[str]:
    return sorted(_MODELS)


def describe_available() -> str:
    names = available_models()
    return "available: " + ", ".join(names) if names else "no pretrained models are published yet"


def looks_like_name(s: str) -> bool:
    """A registry name has no path separator and no model-file suffix."""
    return bool(_NAME.match(s)) and not s.endswith((".ckpt", ".safetensors", ".pt"))


def cache_dir() -> Path:
    if os.environ.get("VCMR_CACHE"):
        return Path(os.environ["VCMR_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vcmr"


def get_entry(name: str) -> PretrainedModel:
    if name not in _MODELS:
        raise PretrainedError(f"unknown model {name!r} ({describe_available()}); give the path "
                              f"of a .ckpt or .safetensors file instead")
    return _MODELS[name]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(entry: PretrainedModel, root: str | Path | None = None) -> Path:
    """The verified local file of ``entry``, downloading it into the cache if needed."""
    if entry.url.startswith(HUB_PREFIX):
        return _verified(hub_file(entry.url), entry)
    root = Path(root) if root is not None else cache_dir()
    target = root / f"{entry.name}-{entry.sha256[:12]}.safetensors"
    if target.is_file():
        if sha256_of(target) == entry.sha256:
            return target
        target.unlink()  # damaged cache entry: fetch again
    root.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(entry.url, timeout=60) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise PretrainedError(f"cannot download model {entry.name!r} from {entry.url} ({e}); "
                              f"check the connection or download the file by hand and pass its path") from None
    got = sha256_of(tmp)
    if got != entry.sha256:
        tmp.unlink(missing_ok=True)
        raise PretrainedError(f"checksum mismatch for model {entry.name!r} from {entry.url}: "
                              f"expected sha256 {entry.sha256}, got {got}. The download is "
                              f"damaged or the file changed; nothing was saved")
    tmp.replace(target)
    return target


def load_pretrained(name: str, device=None, root: str | Path | None = None):
    """Download (once), verify and load a registered model; check its architecture."""
    from vcmr.export import load_local_file
    from vcmr.inference import default_device
    entry = get_entry(name)
    model = load_local_file(download(entry, root)).to(default_device(device))
    enc = with_legacy(model.config)  # a file of an earlier vcmr: missing keys mean the old layout
    diffs = [f"{k}: registry {v!r} vs file {enc.get(k)!r}" for k, v in entry.config.items() if enc.get(k) != v]
    if diffs or model.stage != entry.stage:
        diffs += [f"stage: registry {entry.stage!r} vs file {model.stage!r}"] if model.stage != entry.stage else []
        raise CheckpointError(f"model {name!r}: the downloaded file does not have the registered "
                              f"architecture ({'; '.join(diffs)}); the registry entry is wrong")
    return model


def _verified(path: Path, entry: PretrainedModel) -> Path:
    got = sha256_of(path)
    if got != entry.sha256:
        raise PretrainedError(f"checksum mismatch for model {entry.name!r} from {entry.url}: expected "
                              f"sha256 {entry.sha256}, got {got}; the registry entry or the Hub file is wrong")
    return path


# ------------------------------------------------------------------------------ Hugging Face Hub
HUB_PREFIX = "hf://"
HUB_FILE = "model.safetensors"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def is_hub(spec) -> bool:
    return isinstance(spec, str) and spec.startswith(HUB_PREFIX)


def parse_hub(spec: str) -> tuple[str, str | None]:
    """``hf://ORG/NAME[@REVISION]`` -> (repo id, revision or None)."""
    repo, at, revision = spec[len(HUB_PREFIX):].partition("@")
    if not _REPO_ID.match(repo) or (at and not revision):
        raise PretrainedError(f"{spec!r} is not a Hub model name: write hf://ORG/NAME or "
                              f"hf://ORG/NAME@REVISION (a tag, branch or commit)")
    return repo, revision or None


def hub_file(spec: str) -> Path:
    """The local path of ``model.safetensors`` of a Hub model, downloaded into the HF cache once."""
    repo, revision = parse_hub(spec)
    try:
        from huggingface_hub import errors, hf_hub_download
    except ImportError:
        raise PretrainedError(f"{spec}: Hub models need huggingface_hub: pip install 'vcmr[hub]'") from None
    from vcmr._version import __version__
    try:
        return Path(hf_hub_download(repo, HUB_FILE, revision=revision, library_name="vcmr",
                                    library_version=__version__))
    except errors.LocalEntryNotFoundError:
        raise PretrainedError(f"{spec}: {HUB_FILE} is not in the Hugging Face cache and the Hub "
                              f"cannot be reached (offline: HF_HUB_OFFLINE=1 or no network). Run once "
                              f"with internet, or `hf download {repo}"
                              f"{' --revision ' + revision if revision else ''}`, or give the file's path") from None
    except errors.RepositoryNotFoundError:
        raise PretrainedError(f"{spec}: no Hub repository {repo!r} (or it is private: log in with "
                              f"`hf auth login`)") from None
    except errors.RevisionNotFoundError:
        raise PretrainedError(f"{spec}: repository {repo!r} has no revision {revision!r}") from None
    except errors.EntryNotFoundError:
        raise PretrainedError(f"{spec}: repository {repo!r} has no {HUB_FILE}; upload the folder "
                              f"`vcmr export CKPT --hub-dir DIR` writes") from None
    except (errors.HfHubHTTPError, OSError) as e:
        raise PretrainedError(f"{spec}: cannot download {HUB_FILE} ({type(e).__name__}: {e})") from None


def load_hub(spec: str):
    """An EmbeddingModel (on CPU) from ``hf://ORG/NAME[@REVISION]``."""
    from vcmr.export import load_model_file
    model = load_model_file(hub_file(spec))
    model.source = spec
    return model
