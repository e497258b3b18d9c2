"""The machinery behind ``deepfit.config``: field rules in dataclass metadata, YAML value
coercion to each field's type, range and choice checks, and ``key=value`` parsing. Kept apart
so that config.py reads as the list of options."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, Optional

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



def read_yaml_file(path: str | Path, what: str) -> Any:
    """A YAML file's content (safe loader only); one line naming ``what`` and the file when
    it is missing or not valid YAML (with the line of the mistake)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} '{path}' does not exist")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{what} '{path}' is not valid YAML{line}; check its indentation "
                          "and quoting") from None


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
    if len(parts) == 2 and parts[0] in raw and isinstance(raw[parts[0]], dict):
        parts[1] = _aliases(root).get(parts[0], {}).get(parts[1], parts[1])
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
            raise ConfigError(f"unknown config key '{dotted}'{suggest_key(dotted, root)}")
        if part == "kwargs":  # free-form: the rest of the path is the kwarg name
            node[part][".".join(parts[i + 1:])] = value
            return
        node = node[part]
    if not isinstance(node, dict) or (parts[-1] not in node and not _is_kwargs(parts)):
        raise ConfigError(f"unknown config key '{dotted}'{suggest_key(dotted, root)}")
    node[parts[-1]] = value


def canonical_key(dotted: str, root: type) -> str:
    """``train.learning_rate`` -> ``train.lr``: an aliased key by deepfit's name."""
    parts = dotted.split(".")
    if len(parts) == 2:
        return f"{parts[0]}.{_aliases(root).get(parts[0], {}).get(parts[1], parts[1])}"
    return dotted


def merge_once(items: list[tuple[str, Any, str]], root: type) -> dict[str, Any]:
    """``{key: value}`` from ``(dotted key, value, how it was given)``; a key given twice
    with two values, under any of its names, is one error naming both places (one would
    silently win). The same value twice (``--quiet`` and ``train.progress=false``) is fine."""
    out: dict[str, Any] = {}
    shown: dict[str, str] = {}
    for key, value, given in items:
        canon = canonical_key(key, root)
        if canon in out and out[canon] != value:
            raise ConfigError(f"{canon} is given twice ({shown[canon]} and {given}); keep one")
        out[canon], shown[canon] = value, given
    return out


def _aliases(root: type) -> dict[str, dict[str, str]]:
    """{section: {alias: key}}: the names other tools give deepfit's options."""
    return getattr(root, "ALIASES", {})


def suggest_key(dotted: str, root: type, bare: bool = False) -> str:
    """`` (did you mean 'section.key'?)`` for a mistyped key, or ``""``; ``bare``: the key
    without its section (keyword arguments in Python: ``epochs=5``)."""
    parts = dotted.split(".")
    sections = sorted({k.split(".")[0] for k in _all_keys(root) if "." in k})
    if len(parts) == 1:
        section = difflib.get_close_matches(parts[0], sections, n=1, cutoff=0.75)
        if section and not bare:
            return f" (did you mean the section '{section[0]}', as {section[0]}.KEY=VALUE?)"
    key = closest_key(dotted, root)
    if key is None:
        return ""
    return f" (did you mean '{key.split('.')[-1] if bare else key}'?)"


def closest_key(dotted: str, root: type) -> Optional[str]:
    """The key a mistyped ``dotted`` most likely meant, or None.

    Ranked the way people mistype: a section misspelled (``modle.hidden``) is corrected
    first; a key that exists in another section (``train.dropout``) is named there; then the
    closest key or alias of the section (``train.learning_rat`` -> ``train.lr``); only then
    the closest key anywhere.
    """
    keys = _all_keys(root)
    sections = sorted({k.split(".")[0] for k in keys if "." in k})
    aliases = _aliases(root)
    parts = dotted.split(".")
    if len(parts) == 1:  # a bare name: a key of some section, or a top-level key
        exact = [k for k in keys if k.split(".")[-1] == parts[0]]
        order = ("train", "model", "data", "eval")  # as bare Python keywords are looked up
        if exact:
            return min(exact, key=lambda k: order.index(k.split(".")[0])
                       if k.split(".")[0] in order else len(order))
        return _pick(parts[0], keys, aliases, fallback=keys)
    section, name = parts[0], ".".join(parts[1:])
    if section not in sections:
        close = difflib.get_close_matches(section, sections, n=1, cutoff=0.6)
        if not close:
            return _closest(dotted, keys)
        section = close[0]
    own = {k.split(".", 1)[1]: k for k in keys if k.startswith(f"{section}.")}
    if name in own:
        return own[name]
    if name in aliases.get(section, {}):
        return f"{section}.{aliases[section][name]}"
    elsewhere = [k for k in keys if k.split(".", 1)[-1] == name]
    elsewhere += [f"{s}.{a[name]}" for s, a in aliases.items() if name in a]
    if elsewhere:
        return elsewhere[0]
    return _pick(name, list(own.values()), {section: aliases.get(section, {})},
                 fallback=keys, query=dotted)


def _pick(name: str, keys: list[str], aliases: dict[str, dict[str, str]],
          fallback: list[str], query: Optional[str] = None) -> Optional[str]:
    """The key (or aliased key) whose last part is closest to ``name``."""
    name = name.lower()
    candidates = {k.split(".")[-1]: k for k in keys}
    for section, table in aliases.items():
        for alias, key in table.items():
            candidates.setdefault(alias, f"{section}.{key}")

    def score(candidate: str) -> float:
        ratio = difflib.SequenceMatcher(None, name, candidate).ratio()
        prefix = len(os.path.commonprefix([name, candidate]))
        return ratio + (0.3 if prefix >= 3 else 0.0) + (0.2 if name in candidate else 0.0)

    best = max(candidates, key=score, default=None)
    if best is not None and score(best) >= 0.75:
        return candidates[best]
    return _closest(query or name, fallback)


def _closest(value: str, choices: list[str]) -> Optional[str]:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    return close[0] if close else None


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
    raw = _unalias(raw, _aliases(root).get(prefix.rstrip("."), {}), prefix, origin)
    for key in raw:
        if key not in names:
            full = f"{prefix}{key}"
            raise ConfigError(f"{origin}: unknown config key '{full}'"
                              f"{suggest_key(full, root)}")
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


def _unalias(raw: dict[str, Any], aliases: dict[str, str], prefix: str,
             origin: str) -> dict[str, Any]:
    """``raw`` with aliases (``learning_rate``) renamed to their keys (``lr``)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = aliases.get(key, key)
        if name in out:
            raise ConfigError(f"{origin}: '{prefix}{key}' and '{prefix}{name}' are the same "
                              "option; give it once")
        out[name] = value
    return out


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
