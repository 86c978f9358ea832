"""Turning user input (files, `--set a.b=v`, seed ranges) into Settings, with one-line errors."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from phenolab.settings._components import INT64_MAX
from phenolab.settings._messages import SettingError, format_validation_error
from phenolab.settings._setting import Setting

FIELD_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
MAX_SEEDS = 100_000


def parse_value(text: str) -> Any:
    """`--set` values: JSON where it parses (numbers, true/false/null, lists), else the string."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, a number too long to read, nesting too deep
        lowered = text.strip().lower()
        if lowered in ("none", "null"):
            return None
        if lowered in ("true", "false"):
            return lowered == "true"
        return text


def parse_assignments(pairs: list[str], flag: str = "--set") -> dict[str, Any]:
    """["model.width=128", ...] -> {"model.width": 128, ...}; a field given again takes the later
    value (so a command can add an override to a list of them)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SettingError(f"{flag} {pair!r}: expected FIELD=VALUE, e.g. model.width=128")
        check_field_name(key, f"{flag} {pair!r}")
        out.pop(key, None)
        out[key] = parse_value(value.strip())
    return out


def check_field_name(key: Any, where: str) -> None:
    """A dotted field name like model.width, or a one-line SettingError."""
    if not isinstance(key, str) or not FIELD_NAME.fullmatch(key):
        raise SettingError(f"{where}: bad field name {key!r}; use dotted names like model.width")


def check_overrides(overrides: Any, where: str = "overrides") -> dict[str, Any]:
    """The API's `overrides` (what `--set` gives): a mapping of dotted field names to values."""
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise SettingError(f"{where} {_short(overrides)}: give a mapping of dotted fields to values, "
                           "e.g. {'model.width': 128}")
    for key in overrides:
        check_field_name(key, where)
    return dict(overrides)


def apply_overrides(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Set dotted paths in a copy of `base`. Changing `task.name`/`model.name` starts that
    section afresh, so the old component's fields don't become unknown fields."""
    overrides = check_overrides(overrides)
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
    if not isinstance(data, dict):
        raise SettingError(f"invalid setting: expected a mapping of sections (task, model, ...), got "
                           f"{type(data).__name__}")
    try:
        return Setting.model_validate(data)
    except ValidationError as exc:
        raise SettingError(format_validation_error(exc, data)) from None


FILE_FORMATS = (".yaml", ".yml", ".toml", ".json")


def load_mapping_file(path: str | Path, what: str = "setting") -> Any:
    """Parse a YAML, TOML or JSON file (by suffix); every problem is one SettingError line naming
    `what` file it was, so setting, sweep and hypothesis files fail alike."""
    p = Path(path)
    try:
        found = p.is_file()
    except OSError as exc:  # a name too long for the file system, ...
        raise SettingError(f"{what} file {str(p)[:80]!r}: {exc.strerror or exc}") from None
    if not found:
        raise SettingError(f"{what} file {str(p)!r} does not exist")
    if p.suffix not in FILE_FORMATS:
        raise SettingError(f"{what} file {str(p)!r}: unknown format; allowed: {', '.join(FILE_FORMATS)}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingError(f"{what} file {str(p)!r} cannot be read: {exc}") from None
    try:
        if p.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        if p.suffix == ".toml":
            return tomllib.loads(text)
        if p.suffix == ".json":
            return json.loads(text)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # TOML's and JSON's errors are ValueErrors
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
    """Seeds, one meaning everywhere: N (a bare number) is N seeds, 0..N-1; '0-7' / '0,3,5' /
    '0-3,10' are the seeds named (sorted, unique)."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise SettingError(f"--seeds {text!r}: expected N (seeds 0..N-1) or a range like 0-7 or 0,3,5")
    spec = str(text).strip()
    if spec.isdigit():
        n = int(spec)
        if not 1 <= n <= MAX_SEEDS:
            raise SettingError(f"--seeds {text!r}: N means seeds 0..N-1; give 1 to {MAX_SEEDS} (seed 0 alone: 0-0)")
        return list(range(n))
    seeds: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise SettingError(f"--seeds {text!r}: expected N or a range, e.g. 0-7 or 0,3,5 "
                               "(non-negative integers)") from None
        if a < 0 or b < a:
            raise SettingError(f"--seeds {text!r}: ranges go low-high with seeds >= 0")
        if b > INT64_MAX:
            raise SettingError(f"--seeds {text!r}: seeds go up to 2**63 - 1")
        if b - a + 1 + len(seeds) > MAX_SEEDS:
            raise SettingError(f"--seeds {text!r}: at most {MAX_SEEDS} seeds")
        seeds.update(range(a, b + 1))
    if not seeds:
        raise SettingError(f"--seeds {text!r}: no seeds given; e.g. 0-7")
    return sorted(seeds)


def check_seeds(seeds: Any, where: str = "seeds", *, keep_order: bool = False) -> list[int]:
    """The API's seeds: N (⇒ 0..N-1) or integers >= 0 (a list, tuple, range or array), sorted (or
    in the order given, with `keep_order`); text is refused (the command line's `--seeds 0-4` is
    `range(5)` here), as are bools, floats, negative and duplicate seeds."""
    if isinstance(seeds, bool):
        raise SettingError(f"{where} {seeds!r}: give N (seeds 0..N-1) or a list of integers >= 0")
    if _is_int(seeds):
        n = int(seeds)
        if not 1 <= n <= MAX_SEEDS:
            raise SettingError(f"{where} {n}: N means seeds 0..N-1; give 1 to {MAX_SEEDS}")
        return list(range(n))
    if isinstance(seeds, (str, bytes)):
        raise SettingError(f"{where} {seeds!r}: give integers, e.g. range(5) or [0, 3] (text like '0-4' is for "
                           "the command line's --seeds)")
    if not isinstance(seeds, Iterable):
        raise SettingError(f"{where} {_short(seeds)}: give N (seeds 0..N-1) or a list of integers >= 0")
    values = list(seeds)
    bad = next((s for s in values if isinstance(s, bool) or not _is_int(s) or not 0 <= int(s) <= INT64_MAX), None)
    if bad is not None or not values:
        what = "no seeds" if not values else f"seed {_short(bad)} is not an integer between 0 and 2**63 - 1"
        raise SettingError(f"{where} {_short(seeds)}: {what}; give integers >= 0, e.g. range(5) or [0, 3]")
    ints = [int(s) for s in values]
    if len(set(ints)) != len(ints):
        twice = next(s for s in ints if ints.count(s) > 1)
        raise SettingError(f"{where} {_short(seeds)}: seed {twice} is given twice")
    if len(ints) > MAX_SEEDS:
        raise SettingError(f"{where}: {len(ints)} seeds; at most {MAX_SEEDS}")
    return ints if keep_order else sorted(ints)


def _is_int(value: Any) -> bool:
    """An int, or a NumPy / torch integer scalar (anything with __index__ that is not a bool)."""
    if isinstance(value, (bool, float)):
        return False
    if isinstance(value, int):
        return True
    try:
        value.__index__()
    except (AttributeError, TypeError):
        return False
    return getattr(value, "ndim", 0) == 0


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
