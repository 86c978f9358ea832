"""Factor grids: `--grid field=v1,v2,…` / `field=start:stop:num[:log]` and sweep files, expanded
into validated settings (the cartesian product over axes, one setting per grid point).

Every value is checked against the base setting before anything runs, so a bad grid is one
line naming the field and what is allowed, and nothing reaches the catalog. A range over an
integer field (found by validation, not by a table of field types) is rounded to unique ints:
`model.width=16:256:5:log` gives 16, 32, 64, 128, 256.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from phenolab.settings import (
    Setting,
    SettingError,
    apply_overrides,
    load_setting_file,
    parse_assignments,
    parse_seeds,
    parse_value,
    resolve_setting,
    validate_setting,
)

RANGE_HELP = "expected FIELD=v1,v2,… or FIELD=start:stop:num[:log], e.g. optim.weight_decay=0:10:5"
SWEEP_KEYS = ("base", "set", "grid", "seeds")
MAX_GRID_POINTS = 1_000_000


@dataclass(frozen=True)
class GridAxis:
    """One factor: a dotted setting field and its values (in the order given)."""

    field: str
    values: tuple[Any, ...]
    spec: str = ""  # the text it came from, for messages
    is_range: bool = False


@dataclass(frozen=True)
class GridPoint:
    """One cell of the grid: the overrides that define it and the validated setting."""

    overrides: dict[str, Any]
    setting: Setting


@dataclass
class SweepSpec:
    """What a sweep runs: a base setting with overrides, grid axes, seeds."""

    base: str
    overrides: dict[str, Any] = field(default_factory=dict)
    axes: list[GridAxis] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: list(range(5)))


# ---- parsing ------------------------------------------------------------------------------------
def parse_grid_arg(text: str) -> GridAxis:
    """'model.width=16,32' or 'optim.lr=1e-4:1e-1:4:log' -> GridAxis (values not yet typed to the field)."""
    key, sep, rhs = text.partition("=")
    key, rhs = key.strip(), rhs.strip()
    if not sep or not key:
        raise SettingError(f"--grid {text!r}: {RANGE_HELP}")
    return axis_from_value(key, rhs, f"--grid {text!r}")


def axis_from_value(key: str, value: Any, where: str) -> GridAxis:
    """An axis from a CLI string or a sweep-file value (list, scalar, or the same string forms)."""
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", key):
        raise SettingError(f"{where}: bad field name {key!r}; use dotted names like model.width")
    if isinstance(value, (list, tuple)):
        if not value:
            raise SettingError(f"{where}: no values for {key}; {RANGE_HELP}")
        return GridAxis(key, tuple(value), str(value))
    if not isinstance(value, str):
        return GridAxis(key, (value,), str(value))
    text = value.strip()
    if not text:
        raise SettingError(f"{where}: no values for {key}; {RANGE_HELP}")
    if ":" in text and "," not in text and not text.startswith(("[", "{", '"')):
        return GridAxis(key, _parse_range(text, where), text, is_range=True)
    items = _split_top_level(text)
    if any(not item.strip() for item in items):
        raise SettingError(f"{where}: empty value in the list for {key}; {RANGE_HELP}")
    return GridAxis(key, tuple(parse_value(item.strip()) for item in items), text)


def _parse_range(text: str, where: str) -> tuple[float, ...]:
    parts = text.split(":")
    if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] not in ("log", "lin")):
        raise SettingError(f"{where}: bad range {text!r}; expected start:stop:num or start:stop:num:log")
    try:
        start, stop = float(parts[0]), float(parts[1])
        num = int(parts[2])
    except ValueError:
        raise SettingError(f"{where}: bad range {text!r}; start and stop are numbers, num an integer") from None
    if not (math.isfinite(start) and math.isfinite(stop)):
        raise SettingError(f"{where}: bad range {text!r}; start and stop must be finite")
    if not 1 <= num <= 100_000:
        raise SettingError(f"{where}: bad range {text!r}; num must be between 1 and 100000")
    if len(parts) == 4 and parts[3] == "log":
        if start <= 0 or stop <= 0:
            raise SettingError(f"{where}: bad range {text!r}; a log range needs start > 0 and stop > 0")
        raw = np.geomspace(start, stop, num)
    else:
        raw = np.linspace(start, stop, num)
    # 12 significant digits: 0.1:0.9:9 gives 0.3, not 0.30000000000000004 (same id as typing 0.3)
    return tuple(float(f"{v:.12g}") for v in raw)


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets, so `model.widths=[300,100],[200,50]` gives two lists."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


# ---- typing and validation against the base setting ----------------------------------------------
def resolve_axes(base: Setting, axes: list[GridAxis], fixed: dict[str, Any] | None = None) -> list[GridAxis]:
    """Type each axis to its field (ranges over int fields become unique rounded ints) and check
    every value alone against the base, so errors name the one bad field and value."""
    seen: set[str] = set()
    fixed = fixed or {}
    out = []
    for axis in axes:
        if axis.field in seen:
            raise SettingError(f"--grid {axis.field}: given twice; give each field once with all its values")
        if axis.field in fixed:
            raise SettingError(f"--grid {axis.field}: also fixed by --set; give it in one place only")
        seen.add(axis.field)
        values = axis.values
        if axis.is_range and _is_int_field(base, axis.field):
            values = tuple(dict.fromkeys(int(round(v)) for v in values))
        values = tuple(dict.fromkeys(values, None)) if _hashable(values) else values
        for v in values:
            try:
                base.with_overrides({axis.field: v})
            except SettingError as exc:
                raise SettingError(f"--grid {axis.field}={_show(v)}: {exc}") from None
        out.append(GridAxis(axis.field, values, axis.spec, axis.is_range))
    return out


def _is_int_field(base: Setting, dotted: str) -> bool:
    """True when the field refuses a non-integral float as an int (pydantic's int_from_float)."""
    data = apply_overrides(base.model_dump(mode="json"), {dotted: 1.5})
    try:
        Setting.model_validate(data)
    except ValidationError as exc:
        return any(e["type"] == "int_from_float" for e in exc.errors())
    except SettingError:
        return False
    return False


def expand_grid(base: Setting, axes: list[GridAxis]) -> list[GridPoint]:
    """The cartesian product of the axes over the base, one validated setting per point
    (points that give the same setting, e.g. a value equal to the default, appear once)."""
    size = math.prod(len(a.values) for a in axes) if axes else 1
    if size > MAX_GRID_POINTS:
        raise SettingError(f"--grid: {size} grid points; at most {MAX_GRID_POINTS} per sweep")
    if not axes:
        return [GridPoint({}, base)]
    base_data = base.model_dump(mode="json")
    points: list[GridPoint] = []
    ids: set[str] = set()
    for combo in itertools.product(*(a.values for a in axes)):
        over = {a.field: v for a, v in zip(axes, combo, strict=True)}
        try:
            setting = validate_setting(apply_overrides(base_data, over))
        except SettingError as exc:
            shown = " ".join(f"{k}={_show(v)}" for k, v in over.items())
            raise SettingError(f"grid point {shown}: {exc}") from None
        if setting.id not in ids:
            ids.add(setting.id)
            points.append(GridPoint(over, setting))
    return points


def sweep_points(spec: SweepSpec) -> list[GridPoint]:
    """Resolve the base, type the axes, expand: every setting of the sweep, validated."""
    base = resolve_setting(spec.base, spec.overrides)
    return expand_grid(base, resolve_axes(base, spec.axes, spec.overrides))


# ---- sweep files --------------------------------------------------------------------------------
def load_sweep_file(path: str | Path) -> SweepSpec:
    """A YAML/TOML/JSON sweep file: `base` (named setting or setting file, relative to the sweep
    file), optional `set` (overrides), `grid` (field -> list, scalar or 'start:stop:num[:log]'),
    optional `seeds` (N, '0-9' or a list)."""
    p = Path(path)
    data = load_setting_file(p)  # same readers and one-line parse errors as setting files
    where = f"sweep file {str(p)!r}"
    unknown = sorted(set(data) - set(SWEEP_KEYS))
    if unknown:
        raise SettingError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(SWEEP_KEYS)}")
    base = data.get("base")
    if not isinstance(base, str) or not base:
        raise SettingError(f"{where}: 'base' must name a setting (see `phenolab settings`) or a setting file")
    if Path(base).suffix in (".yaml", ".yml", ".toml", ".json") and not Path(base).is_absolute():
        base = str(p.parent / base)
    overrides = data.get("set") or {}
    if not isinstance(overrides, dict):
        raise SettingError(f"{where}: 'set' must be a mapping FIELD: VALUE")
    grid = data.get("grid") or {}
    if not isinstance(grid, dict):
        raise SettingError(f"{where}: 'grid' must be a mapping FIELD: [values] or FIELD: 'start:stop:num[:log]'")
    axes = [axis_from_value(str(k), v, f"{where} grid") for k, v in grid.items()]
    spec = SweepSpec(base, dict(overrides), axes)
    if "seeds" in data:
        spec.seeds = seeds_from_value(data["seeds"], where)
    return spec


def seeds_from_value(value: Any, where: str = "--seeds") -> list[int]:
    """N (⇒ 0..N-1), '0-9' / '0,3,5', or a list of non-negative ints."""
    if isinstance(value, bool):
        raise SettingError(f"{where}: seeds must be N, a range like 0-9, or a list of integers ≥ 0")
    if isinstance(value, int):
        if value < 1:
            raise SettingError(f"{where}: seeds {value}: give at least 1 (N means seeds 0..N-1)")
        return parse_seeds(value)
    if isinstance(value, (list, tuple, range)):
        value = list(value)
        if not value or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
            raise SettingError(f"{where}: seeds must be a non-empty list of integers ≥ 0")
        return sorted(set(value))
    if isinstance(value, str):
        text = value.strip()
        return seeds_from_value(int(text), where) if text.isdigit() else parse_seeds(text)
    raise SettingError(f"{where}: seeds must be N, a range like 0-9, or a list of integers ≥ 0")


def build_sweep_spec(base: str | None, file: str | Path | None, grid: list[str], sets: list[str],
                     seeds: str | None) -> SweepSpec:
    """Merge a sweep file (if any) with command-line arguments; the command line adds axes,
    adds overrides and replaces the seeds."""
    if file is not None:
        spec = load_sweep_file(file)
        if base is not None and base != spec.base:
            raise SettingError(f"give the base setting once: the sweep file says {spec.base!r}, the command {base!r}")
    elif base is None:
        raise SettingError("give a BASE_SETTING (a named setting or a setting file) or --file SWEEP.yaml")
    else:
        spec = SweepSpec(base)
    spec.overrides.update(parse_assignments(sets))
    spec.axes.extend(parse_grid_arg(g) for g in grid)
    if seeds is not None:
        spec.seeds = seeds_from_value(seeds)
    return spec


def _hashable(values: tuple[Any, ...]) -> bool:
    try:
        hash(values)
    except TypeError:
        return False
    return True


def _show(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)
