"""The library versions a model file was exported with, and the one warning ``load_model``
gives when the running versions differ in a way known to change embeddings.

``vcmr export`` stores ``versions`` (JSON: vcmr, torch, numpy, soxr, soundfile, python) in the
file's metadata. On loading, a package is compared on the leading parts of its version listed
in ``MATTERS`` (why each, in docs/using-models.md, "Versions a model file records"):

* torch, major.minor: its releases change the CPU/GPU convolution and BatchNorm kernels
  (oneDNN, cuDNN) and so the float32 rounding of every layer; patch releases fix bugs only.
* soxr, major.minor: it resamples every input whose rate is not the model's; a new libsoxr
  filter changes the samples the model sees.
* soundfile, major.minor: it bundles libsndfile, which decodes MP3/OGG/FLAC.
* numpy, major: numpy 2 changed how float32 arrays and Python floats combine (NEP 50).
* vcmr, major.minor: windowing and preprocessing are vcmr's; a change of the file layout is
  refused outright by ``format_version`` (``vcmr.io.checkpoint``).

Python's version is recorded but not compared (no effect on the numbers is known). A file
without ``versions`` (written before vcmr recorded them) loads without a warning. Each
(package, file version, running version) warns once per process.
"""
from __future__ import annotations

import importlib.metadata
import json
import platform
import re
import warnings

from vcmr._version import __version__

PACKAGES = ("vcmr", "torch", "numpy", "soxr", "soundfile", "python")
MATTERS = {"torch": 2, "soxr": 2, "soundfile": 2, "numpy": 1, "vcmr": 2}  # leading parts compared
_WARNED: set[tuple[str, str, str]] = set()


class VersionWarning(UserWarning):
    """A model file was exported with library versions that can give other embeddings."""


def _installed(package: str) -> str | None:
    if package == "vcmr":
        return __version__
    if package == "python":
        return platform.python_version()
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def running_versions() -> dict[str, str]:
    """The versions of ``PACKAGES`` in this process (a package not installed is left out)."""
    return {p: v for p in PACKAGES if (v := _installed(p)) is not None}


def release(version: str, parts: int) -> tuple[int, ...] | None:
    """The first ``parts`` numbers of a version ("2.5.1+cpu", 2 -> (2, 5)); None if unparsable."""
    m = re.match(r"^\s*v?(\d+(?:\.\d+)*)", str(version))
    if not m:
        return None
    return tuple(int(x) for x in m.group(1).split(".")[:parts])


def version_differences(recorded: dict[str, str], running: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """``(package, file's version, running version)`` for each package of ``MATTERS`` whose
    compared parts differ. A package missing on either side, or unparsable, is not compared."""
    running = running_versions() if running is None else running
    out = []
    for package, parts in MATTERS.items():
        old, new = recorded.get(package), running.get(package)
        if old is None or new is None:
            continue
        a, b = release(old, parts), release(new, parts)
        if a is not None and b is not None and a != b:
            out.append((package, str(old), str(new)))
    return out


def parse_versions(text: str, source: str) -> dict[str, str]:
    """The ``versions`` metadata (JSON object of strings); ValueError naming ``source`` if not."""
    value = json.loads(text)
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"{source}: 'versions' must be a JSON object of version strings")
    return value


def warn_version_differences(recorded: dict[str, str] | None, source: str) -> None:
    """One VersionWarning per differing package (once per process for the same pair)."""
    if not recorded:
        return
    for package, old, new in version_differences(recorded):
        if (package, old, new) in _WARNED:
            continue
        _WARNED.add((package, old, new))
        what = "major" if MATTERS[package] == 1 else "major.minor"
        warnings.warn(f"{source} was exported with {package} {old}; this process runs {package} "
                      f"{new}. A different {package} {what} version can change embeddings "
                      f"slightly (see docs/using-models.md, 'Versions a model file records'); "
                      f"compare a few embeddings with the exporting setup, or export the model "
                      f"again with these versions", VersionWarning, stacklevel=2)
