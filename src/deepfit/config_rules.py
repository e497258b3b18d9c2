"""The machinery behind ``deepfit.config``: field rules in dataclass metadata, YAML value
coercion to each field's type, range and choice checks, and ``key=value`` parsing. Kept apart
so that config.py reads as the list of options."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import field
from pathlib import Path
from typing import Any

import yaml

from deepfit.errors import ConfigError, did_you_mean, one_of


def opt(default: Any, *, choices: tuple[str, ...] | None = None, lo: float | None = None,
         hi: float | None = None, lo_open: bool = False, hi_open: bool = False, help: str = "",
         pattern: str | None = None) -> Any:
    """A dataclass field with validation rules in its metadata."""
    meta = {"choices": choices, "lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open,
            "help": help, "pattern": pattern}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)



def yaml_line(name: str, value: Any) -> str:
    text = yaml.safe_dump({name: plain(value)}, default_flow_style=True, width=1000).strip()
    return text[1:-1] if text.startswith("{") else text


def comment(f: dataclasses.Field) -> str:
    meta, parts = f.metadata, []
    if meta.get("choices"):
        parts.append(" | ".join(meta["choices"]))
    if meta.get("help"):
        parts.append(meta["help"])
    if meta.get("lo") is not None or meta.get("hi") is not None:
        lo = "" if meta.get("lo") is None else f"{'>' if meta['lo_open'] else '>='} {meta['lo']:g}"
        hi = "" if meta.get("hi") is None else f"{'<' if meta['hi_open'] else '<='} {meta['hi']:g}"
        parts.append(", ".join(p for p in (lo, hi) if p))
    return f"  # {'; '.join(parts)}" if parts else ""


def split_assignment(assignment: str) -> tuple[str, Any]:
    if "=" not in assignment:
        raise ConfigError(f"override '{assignment}' must look like section.key=value, "
                          "e.g. train.lr=0.01")
    key, text = assignment.split("=", 1)
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    return key.strip(), value


def set_dotted(root: type, raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
            keys = _all_keys(root)
            raise ConfigError(f"unknown config key '{dotted}'{did_you_mean(dotted, keys)}")
        if part == "kwargs":  # free-form: the rest of the path is the kwarg name
            node[part][".".join(parts[i + 1:])] = value
            return
        node = node[part]
    if not isinstance(node, dict) or (parts[-1] not in node and not _is_kwargs(parts)):
        raise ConfigError(f"unknown config key '{dotted}'{did_you_mean(dotted, _all_keys(root))}")
    node[parts[-1]] = value


def _is_kwargs(parts: list[str]) -> bool:
    return len(parts) > 2 and parts[-2] == "kwargs"


def _all_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            keys += _all_keys(kind, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def build(cls: type, raw: dict[str, Any], prefix: str, origin: str, root: type) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            full = f"{prefix}{key}"
            raise ConfigError(f"{origin}: unknown config key '{full}'"
                              f"{did_you_mean(full, _all_keys(root))}")
    values = {}
    for name, f in names.items():
        if name not in raw:
            continue
        kind = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(kind):
            section = raw[name] if raw[name] is not None else {}
            if not isinstance(section, dict):
                raise ConfigError(f"{origin}: '{key}' must be a section of keys, got {raw[name]!r}")
            values[name] = build(kind, section, f"{key}.", origin, root)
        else:
            values[name] = _check(key, _coerce(key, raw[name], kind, origin), f.metadata, origin)
    return cls(**values)


def _coerce(key: str, value: Any, kind: Any, origin: str) -> Any:
    """Convert a YAML value to the field's type, or raise naming key and value."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) is typing.Union:  # Optional[X]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        inner = next(a for a in args if a is not type(None))
        return _coerce(key, value, inner, origin)
    bad = ConfigError(f"{origin}: '{key}' = {value!r} is not {_describe(kind)}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        raise bad
    if kind is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad
    if kind is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            out = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads '1e-3' as a string
            try:
                out = float(value)
            except ValueError:
                raise bad from None
        else:
            raise bad
        if not math.isfinite(out):
            raise bad
        return out
    if kind is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # YAML reads 'positive_class: 1' as a number
        if isinstance(value, Path):
            value = str(value)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, bool):  # YAML 1.1: unquoted yes/no/on/off/true/false are booleans
            name = key.rsplit(".", 1)[-1]
            raise ConfigError(f"{origin}: '{key}' = {value!r} must be a string; YAML reads an "
                              "unquoted yes, no, on, off, true or false as a boolean: quote the "
                              f"value, e.g. {name}: 'yes'")
        raise ConfigError(f"{origin}: '{key}' = {value!r} must be a non-empty string")
    if kind is dict or typing.get_origin(kind) is dict:
        if isinstance(value, dict):
            return dict(value)
        raise bad
    if typing.get_origin(kind) is tuple:
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            value = [value]  # 'model.hidden=64' means one layer
        if not isinstance(value, (list, tuple)):
            raise bad
        return tuple(_coerce(f"{key}[{i}]", v, args[0], origin) for i, v in enumerate(value))
    raise bad  # pragma: no cover - every field type is handled above


def _describe(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        inner = typing.get_args(kind)[0]
        plural = {int: "integers", float: "numbers", str: "strings"}
        return f"a list of {plural.get(inner, str(inner))}"
    return {bool: "true or false", int: "an integer", float: "a number",
            str: "a string", dict: "a mapping"}.get(kind, str(kind))


def _check(key: str, value: Any, meta: Any, origin: str) -> Any:
    if value is None:
        return value
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{origin}: '{key}' = {value!r} is not allowed; use one of "
                          f"{one_of(choices)}{did_you_mean(value, choices)}")
    pattern = meta.get("pattern")
    if pattern and not re.fullmatch(pattern, value):
        raise ConfigError(f"{origin}: '{key}' = {value!r} is not allowed; use {meta['help']}")
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if not isinstance(item, (int, float)) or isinstance(item, bool):
            continue
        lo, hi = meta.get("lo"), meta.get("hi")
        if lo is not None and (item < lo or (meta["lo_open"] and item == lo)):
            sign = ">" if meta["lo_open"] else ">="
            raise ConfigError(f"{origin}: '{key}' = {value!r} is out of range; it must be {sign} {lo}")
        if hi is not None and (item > hi or (meta["hi_open"] and item == hi)):
            sign = "<" if meta["hi_open"] else "<="
            raise ConfigError(f"{origin}: '{key}' = {value!r} is out of range; it must be {sign} {hi}")
    return value


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
