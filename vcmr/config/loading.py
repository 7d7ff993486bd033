"""Reading a stage config: the stage defaults, then a YAML file, then ``--key value``
overrides; the authors' files are translated on the way (``vcmr.config.authors``)."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from vcmr.config.authors import is_authors_config, translate_config
from vcmr.config.checks import validate
from vcmr.config.schema import STAGES, EncoderConfig
from vcmr.config.types import build
from vcmr.errors import ConfigError

__all__ = ["parse_overrides", "read_yaml", "load_config", "config_to_dict", "config_from_dict",
           "encoder_config"]


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """Turn ``["--key", "value", "--a.b=3"]`` into ``{"key": "value", "a": {"b": "3"}}``.

    Values stay strings (types are applied by the dataclass); a key without a value is True.
    """
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(f"unexpected argument {arg!r}: overrides are written --key value")
        key, eq, value = arg[2:].partition("=")
        key = key.replace("-", "_")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value, i = args[i + 1], i + 1
            else:
                value = "true"
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
        i += 1
    return out


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class _AliasError(Exception):
    """A YAML alias was met (``read_yaml`` turns it into a ConfigError naming the file)."""


class _NoAliasLoader(yaml.SafeLoader):
    """The safe loader, refusing every alias before it is expanded."""

    def compose_node(self, parent, index):  # noqa: D102 - yaml.composer API
        if self.check_event(yaml.AliasEvent):
            raise _AliasError
        return super().compose_node(parent, index)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found (give an existing YAML file with --config)")
    try:
        data = yaml.load(path.read_text(), Loader=_NoAliasLoader) or {}
    except _AliasError:
        raise ConfigError(f"config file {str(path)!r} uses a YAML alias (*name); vcmr refuses "
                          f"anchors and aliases (a few can expand into gigabytes): write each "
                          f"value out") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of key: value")
    return data


def load_config(stage: str, path: str | Path | None = None,
                overrides: list[str] | dict[str, Any] | None = None) -> Any:
    """Stage defaults, then the YAML file at ``path``, then ``overrides``; validated."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    values = read_yaml(path) if path else {}
    if is_authors_config(values):  # the authors' files are translated key by key
        values = translate_config(stage, values, str(path))
    if overrides:
        extra = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        if is_authors_config(extra):  # e.g. --n_cuda 0 given to a seed script
            extra = translate_config(stage, extra, "command line")
        values = _merge(values, extra)
    if isinstance(values.get("optimizer"), str):  # case-insensitive: 'Adam', 'LARS' as in the
        values = {**values, "optimizer": values["optimizer"].lower()}  # authors' files
    cfg = build(STAGES[stage], values)
    validate(cfg)
    return cfg


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_from_dict(stage: str, values: dict[str, Any]) -> Any:
    """Rebuild a stage config from the dict a checkpoint or model file stores. Keys the stage
    does not have (another stage's, or training options of another vcmr) are dropped; keys
    the dict lacks take the stage default. The file's format version says the keys describe
    this vcmr's architecture (``vcmr.io.checkpoint``)."""
    cls = STAGES[stage]
    names = {f.name for f in dataclasses.fields(cls)}
    return build(cls, {k: v for k, v in stored_mapping(values).items() if k in names})


def encoder_config(cfg: Any) -> EncoderConfig:
    """The architecture part of any stage config, or of a stored config dict."""
    src = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else stored_mapping(cfg)
    names = {f.name for f in dataclasses.fields(EncoderConfig)}
    return build(EncoderConfig, {k: v for k, v in src.items() if k in names})


def stored_mapping(values: Any) -> dict[str, Any]:
    """A stored config as a dict; a list, a string or any other non-mapping is a ConfigError
    (a damaged or hand-edited file), never a TypeError from ``dict()`` or ``asdict()``."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"the stored config must be a mapping of keys to values, got a "
                          f"{type(values).__name__}; the file is damaged or was not written by vcmr")
    _check_bounded(values)
    return dict(values)


MAX_STORED_ITEMS = 100_000  # values in a stored config, nested ones included
MAX_STORED_DEPTH = 16


def _check_bounded(values: Any) -> None:
    """Refuse a stored config over MAX_STORED_ITEMS values or MAX_STORED_DEPTH levels before it
    is converted: shared lists (``b = [a] * 10``) count once per use, so a 150 KB file that
    would expand into gigabytes stops after MAX_STORED_ITEMS steps."""
    stack, seen = [(values, 0)], 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_STORED_ITEMS or depth > MAX_STORED_DEPTH:
            what = (f"more than {MAX_STORED_ITEMS} values" if seen > MAX_STORED_ITEMS
                    else f"more than {MAX_STORED_DEPTH} levels of nesting")
            raise ConfigError(f"the stored config holds {what}; a vcmr config is a few dozen keys, "
                              f"so the file is damaged or hostile: use another one")
        if isinstance(value, Mapping):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, (list, tuple)):
            if len(value) > MAX_STORED_ITEMS:
                seen = MAX_STORED_ITEMS  # refused at the next step
            stack.extend((v, depth + 1) for v in value[:MAX_STORED_ITEMS])
