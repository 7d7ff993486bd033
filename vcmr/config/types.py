"""Values from YAML files and the command line, converted to the dataclass field types; a
wrong type or an unknown key is a ConfigError that names the key (and the closest valid keys)."""
from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, Literal

from vcmr.errors import ConfigError, short_repr

__all__ = ["build", "coerce"]

_TRUE, _BOOL_WORDS = ("true", "1", "yes"), ("true", "false", "1", "0", "yes", "no")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is typing.Union:
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


class _Bad(Exception):
    """The value does not convert (the caller raises the ConfigError naming the key)."""


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Convert ``value`` to type ``tp`` or raise a ConfigError naming ``key``."""
    try:
        return _convert(key, value, tp)
    except _Bad:
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {short_repr(value)}") from None


def _convert(key: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        return _union(key, value, typing.get_args(tp))
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise _Bad
    if origin is list:
        return _list(key, value, typing.get_args(tp)[0])
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise _Bad
        return build(tp, value, prefix=f"{key}.")
    return _scalar(value, tp)


def _union(key: str, value: Any, args: tuple) -> Any:
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
        if type(None) in args:
            return None
    for arg in args:
        if arg is not type(None):
            try:
                return coerce(key, value, arg)
            except ConfigError:
                pass
    raise _Bad


def _list(key: str, value: Any, item_tp: Any) -> list:
    if isinstance(value, str):
        value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
    if not isinstance(value, (list, tuple)):
        raise _Bad
    return [coerce(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value)]


def _scalar(value: Any, tp: Any) -> Any:
    """bool, int, float and str from YAML scalars or command-line strings; a bool is never a
    number, and a float is an int only when it is whole."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOL_WORDS:
            return value.lower() in _TRUE
        raise _Bad
    if tp in (int, float):
        if isinstance(value, bool):
            raise _Bad
        if tp is int and isinstance(value, float):
            if value.is_integer():
                return int(value)
            raise _Bad
        if isinstance(value, (int, float, str)) and not (tp is int and isinstance(value, float)):
            try:
                return tp(value)
            except ValueError:
                raise _Bad from None
        raise _Bad
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise _Bad
    return value


def _unknown_key_error(cls: type, key: str, prefix: str = "") -> ConfigError:
    names = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(key, names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return ConfigError(
        f"unknown config key '{prefix}{key}' for {cls.__name__}.{hint} "
        f"Valid keys: {', '.join(sorted(names))}")


def build(cls: type, values: dict[str, Any], prefix: str = "", base: Any = None) -> Any:
    """An instance of dataclass ``cls``: its defaults (or ``base``), then ``values`` converted."""
    obj = base if base is not None else cls()
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if key not in hints:
            raise _unknown_key_error(cls, key, prefix)
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            value = build(type(current), value, prefix=f"{prefix}{key}.", base=current)
        setattr(obj, key, coerce(prefix + key, value, hints[key]))
    return obj
