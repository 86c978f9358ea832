"""The shell commands that reproduce a study, derived from the catalog and checked, not guessed.

A stored setting is written out as JSON, so `phenolab train settings/ID.json` always rebuilds
exactly its runs. Where the setting is a named (canonical) setting plus a few `--set`
overrides, the shorter command is shown too — but only after re-resolving it gives back the
same content id.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from phenolab.settings import NAMED_SETTINGS, SettingError, named_setting, resolve_setting


def seeds_text(seeds: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5' (what `--seeds` parses)."""
    out: list[str] = []
    ordered = sorted(set(int(s) for s in seeds))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def count_seeds_arg(seeds: list[int]) -> str:
    """`--seeds` for commands where a bare N means N seeds (0..N-1): `reproduce` and `phase`."""
    text = seeds_text(seeds)
    return f"{text}-{text}" if text.isdigit() else text  # one seed s is the range s-s


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections -> dotted paths (lists stay values, as `--set` takes them)."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def overrides_from(base: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """The dotted-path assignments that turn the full setting `base` into `target`."""
    flat_base, flat_target = flatten(base), flatten(target)
    return {k: v for k, v in sorted(flat_target.items()) if flat_base.get(k, object()) != v}


def set_args(overrides: dict[str, Any]) -> list[str]:
    return [arg for k, v in overrides.items() for arg in ("--set", f"{k}={json.dumps(v, separators=(',', ':'))}")]


def closest_named(setting_json: dict[str, Any], setting_id: str) -> tuple[str, dict[str, Any]] | None:
    """The named setting that needs the fewest overrides to give exactly `setting_id`."""
    best: tuple[str, dict[str, Any]] | None = None
    for name in sorted(NAMED_SETTINGS):
        try:
            base = named_setting(name).model_dump(mode="json")
        except SettingError:
            continue
        if (base["task"]["name"], base["model"]["name"]) != (
            setting_json.get("task", {}).get("name"), setting_json.get("model", {}).get("name")
        ):
            continue
        over = overrides_from(base, setting_json)
        if best is not None and len(over) >= len(best[1]):
            continue
        try:
            if resolve_setting(name, over).id == setting_id:
                best = (name, over)
        except SettingError:
            continue
    return best


def train_command(setting_json: dict[str, Any], setting_id: str, seeds: list[int], file_rel: str) -> list[str]:
    """Commands that rebuild the runs: from the setting file, and from a named setting where one fits."""
    seed_arg = seeds_text(seeds) or "0"
    out = [shlex.join(["phenolab", "train", file_rel, "--seeds", seed_arg])]
    named = closest_named(setting_json, setting_id)
    if named is not None:
        name, over = named
        out.append(shlex.join(["phenolab", "train", name, *set_args(over), "--seeds", seed_arg]))
    return out


def flag_args(name: str, value: Any) -> list[str]:
    """An option as the command line gives it (`--rounds 3`, `--flag` / `--no-flag`)."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return [flag if value else "--no-" + flag[2:]]
    return [flag, str(value)]


def reproduce_command(phenomenon: str, setting_name: str, setting_ids: list[str], seeds: list[int],
                      stored: list[dict[str, Any]], options: dict[str, Any] | None = None,
                      overrides: dict[str, Any] | None = None, quick: bool | None = None) -> str | None:
    """`phenolab reproduce PHENOMENON --setting NAME [--quick] --set ...` when it rebuilds exactly the
    study's settings (`stored`: their JSON, in the order of `setting_ids`). Fields that vary across
    the study's settings are the phenomenon's own sweep (a width grid, say) and are not overridden;
    `options`, `overrides` and `quick`, where the study note recorded them, are used as they are."""
    from phenolab.phenomena import Phenomenon
    from phenolab.reproduction import reproducible

    try:
        ph = reproducible(phenomenon)
        opts = ph.parse_options(options or {})
    except SettingError:
        return None
    flags = [arg for k, v in (options or {}).items() for arg in flag_args(k, v)]
    if not setting_ids or not seeds or not stored:
        return None
    if not isinstance(ph, Phenomenon):  # a study of its own (figure4): no --setting, no overrides
        over: dict[str, Any] = {}
        name_args: list[str] = []
    elif setting_name in NAMED_SETTINGS:
        try:
            over = overrides_from(named_setting(setting_name).model_dump(mode="json"), stored[0])
        except SettingError:
            return None
        name_args = ["--setting", setting_name]
    else:
        return None
    if overrides is not None:  # recorded: no guessing
        over = dict(overrides)
    else:
        flat = [flatten(s) for s in stored]
        swept = {k for k in flat[0] if any(f.get(k) != flat[0][k] for f in flat[1:])}
        over = {k: v for k, v in over.items() if k not in swept}
    for q in (False, True) if quick is None else (quick,):
        try:
            study = ph.study(setting_name, list(seeds), over, q, opts)
        except (SettingError, ValueError, KeyError, TypeError, NotImplementedError):
            continue
        if sorted(s.id for s in study.settings) == sorted(setting_ids):
            return shlex.join(["phenolab", "reproduce", phenomenon, *name_args,
                               *(["--quick"] if q else []), *set_args(over), *flags,
                               "--seeds", count_seeds_arg(seeds)])
    return None
