"""Turning user input (files, `--set a.b=v`, seed ranges) into Settings, with one-line errors."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from phenolab.settings._setting import Setting


class SettingError(ValueError):
    """Bad user input, with a one-line message that names the field and what is allowed."""


def parse_value(text: str) -> Any:
    """`--set` values: JSON where it parses (numbers, true/false/null, lists), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lowered = text.strip().lower()
        if lowered in ("none", "null"):
            return None
        if lowered in ("true", "false"):
            return lowered == "true"
        return text


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """["model.width=128", ...] -> {"model.width": 128, ...}."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SettingError(f"--set {pair!r}: expected FIELD=VALUE, e.g. model.width=128")
        out[key.strip()] = parse_value(value.strip())
    return out


def apply_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted paths in a copy of `base`. Changing `task.name`/`model.name` starts that
    section afresh, so the old component's fields don't become unknown fields."""
    out = copy.deepcopy(base)
    names_first = sorted(overrides.items(), key=lambda kv: not kv[0].endswith(".name"))
    for key, value in names_first:
        parts = key.split(".")
        section = out.get(parts[0])
        if len(parts) == 2 and parts[1] == "name" and isinstance(section, dict) and section.get("name") != value:
            out[parts[0]] = {}
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                if child is not None:
                    raise SettingError(f"field {key!r}: {part!r} is not a section")
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
        if key in _EXCLUSIVE:  # `--set schedule.steps=N` replaces a budget given in epochs
            node.pop(_EXCLUSIVE[key].split(".")[-1], None)
    return out


_EXCLUSIVE = {"schedule.steps": "schedule.epochs", "schedule.epochs": "schedule.steps"}


def validate_setting(data: dict[str, Any]) -> Setting:
    """Validate a mapping into a Setting, or raise SettingError with one line."""
    try:
        return Setting.model_validate(data)
    except ValidationError as exc:
        raise SettingError(format_validation_error(exc, data)) from None


def format_validation_error(exc: ValidationError, data: dict[str, Any] | None = None) -> str:
    """One line for the first error: the dotted field, the bad value, what is allowed."""
    err = exc.errors(include_url=False)[0]
    parts = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
    loc = ".".join(parts)
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    if err["type"] == "extra_forbidden":
        allowed = _field_names(parts[:-1], data or {})
        listed = f"; allowed: {', '.join(allowed)}" if allowed else ""
        return f"invalid setting: unknown field {loc!r}{listed}{more}"
    value = err.get("input")
    shown = "" if isinstance(value, dict) or err["type"] == "missing" else f" = {value!r}"
    where = f"{loc}{shown}: " if loc else ""
    return f"invalid setting: {where}{msg}{more}"


def _field_names(parent: list[str], data: dict[str, Any]) -> list[str]:
    """Field names allowed under the dotted path `parent` of a Setting."""
    from phenolab.settings._components import MODELS, TASKS

    if not parent:
        return sorted(Setting.model_fields)
    if parent[0] in ("task", "model") and len(parent) == 1:
        registry = TASKS if parent[0] == "task" else MODELS
        section = data.get(parent[0])
        name = section.get("name") if isinstance(section, dict) else None
        return sorted(registry[name].model_fields) if name in registry else []
    field = Setting.model_fields.get(parent[0])
    model = getattr(field, "annotation", None) if field else None
    return sorted(getattr(model, "model_fields", {})) if len(parent) == 1 else []


FILE_FORMATS = (".yaml", ".yml", ".toml", ".json")


def load_mapping_file(path: str | Path, what: str = "setting") -> Any:
    """Parse a YAML, TOML or JSON file (by suffix); every problem is one SettingError line naming
    `what` file it was, so setting, sweep and hypothesis files fail alike."""
    p = Path(path)
    if not p.is_file():
        raise SettingError(f"{what} file {str(p)!r} does not exist")
    text = p.read_text()
    try:
        if p.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        if p.suffix == ".toml":
            return tomllib.loads(text)
        if p.suffix == ".json":
            return json.loads(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SettingError(f"{what} file {str(p)!r} does not parse: {first}") from None
    raise SettingError(f"{what} file {str(p)!r}: unknown format; allowed: {', '.join(FILE_FORMATS)}")


def load_setting_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML, TOML or JSON setting file into a mapping (not yet validated)."""
    data = load_mapping_file(path, "setting")
    if not isinstance(data, dict):
        raise SettingError(f"setting file {str(Path(path))!r}: expected a mapping of sections (task, model, ...)")
    return data


def parse_seeds(text: str | int) -> list[int]:
    """'0-7' / '0,3,5' / '0-3,10' -> sorted unique seeds; a bare integer N means 0..N-1."""
    if isinstance(text, int):
        text = f"0-{text - 1}" if text > 0 else ""
    seeds: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise SettingError(f"--seeds {text!r}: expected e.g. 0-7 or 0,3,5 (non-negative integers)") from None
        if a < 0 or b < a:
            raise SettingError(f"--seeds {text!r}: ranges go low-high with seeds >= 0")
        seeds.update(range(a, b + 1))
    if not seeds:
        raise SettingError(f"--seeds {text!r}: no seeds given; e.g. 0-7")
    if len(seeds) > 100_000:
        raise SettingError(f"--seeds {text!r}: at most 100000 seeds")
    return sorted(seeds)
