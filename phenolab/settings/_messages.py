"""One-line messages for bad input: the error type every check raises, "did you mean" for near-miss
names, and pydantic's validation errors turned into one line that names the real mistake.

The first error shown is the most telling one: an unknown name (a misspelt section or field)
before a value that does not fit, before what is missing, because `modle:` also makes `model`
missing and "model: Field required" would point at the wrong thing. Whatever else is wrong is
listed after it by name, never as "(and 2 more)".
"""

from __future__ import annotations

import difflib
import re
import typing
from typing import Any

from pydantic import ValidationError


class SettingError(ValueError):
    """Bad user input, with a one-line message that names the field and what is allowed."""


def did_you_mean(name: str, allowed: list[str]) -> str:
    """' (did you mean 'x'?)' for the closest allowed name, or '' when none is close."""
    close = difflib.get_close_matches(str(name), [str(a) for a in allowed], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name(kind: str, name: str, allowed: list[str]) -> str:
    """"unknown KIND 'x' (did you mean 'y'?); allowed: …" — one line, for settings, phenomena,
    sections, fields and measures alike."""
    return f"unknown {kind} {name!r}{did_you_mean(name, allowed)}; allowed: {', '.join(allowed)}"


# which error to show first: unknown names, then bad values, then what is missing
_RANK = {"extra_forbidden": 0, "missing": 2}


def format_validation_error(exc: ValidationError, data: dict[str, Any] | None = None) -> str:
    """One line: the most telling error (the dotted field, the bad value, what is allowed), then
    the other fields that are wrong or missing, by name."""
    errors = sorted(exc.errors(include_url=False), key=lambda e: _RANK.get(e["type"], 1))
    first, rest = errors[0], errors[1:]
    missing = list(dict.fromkeys(_loc(e) for e in errors if e["type"] == "missing"))
    if first["type"] == "missing":
        return f"invalid setting: missing {', '.join(missing)}"
    line = _one(first, data or {})
    wrong = list(dict.fromkeys(_loc(e) for e in rest if e["type"] != "missing"))
    if wrong:
        line += f"; also wrong: {', '.join(wrong)}"
    if missing:
        line += f"; also missing: {', '.join(missing)}"
    return line


def _loc(err: dict[str, Any]) -> str:
    text = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-")) or "setting"
    return text if text.isprintable() else repr(text)


def _one(err: dict[str, Any], data: dict[str, Any]) -> str:
    parts = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
    loc = ".".join(parts)
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        allowed = _field_names(parts[:-1], data)
        if not parts[:-1]:
            return f"invalid setting: {unknown_name('section', loc, allowed)}"
        full = [f"{'.'.join(parts[:-1])}.{a}" for a in allowed]
        hint = did_you_mean(loc, full)
        listed = f"; allowed: {', '.join(allowed)}" if allowed else ""
        return f"invalid setting: unknown field {loc!r}{hint}{listed}"
    if err["type"] == "finite_number":
        msg = "must be a finite number (NaN and ±inf are refused)"
    elif err["type"] == "literal_error" and isinstance(value, str):
        msg += did_you_mean(value, re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", ""))))
    if isinstance(value, dict) or (isinstance(value, (list, tuple)) and loc in ("", "setting")):
        # a section-level rule: its message names the fields itself
        return f"invalid setting: {msg}" if not loc or f"{loc}." in msg else f"invalid setting: {loc}: {msg}"
    shown = f" = {_show(value)}"
    where = f"{loc}{shown}: " if loc else ""
    return f"invalid setting: {where}{msg}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _field_names(parent: list[str], data: dict[str, Any]) -> list[str]:
    """Field names allowed under the dotted path `parent` of a Setting."""
    from phenolab.settings._components import MODELS, TASKS
    from phenolab.settings._setting import Setting

    if not parent:
        return sorted(Setting.model_fields)
    if parent[0] in ("task", "model") and len(parent) == 1:
        registry = TASKS if parent[0] == "task" else MODELS
        section = data.get(parent[0]) if isinstance(data, dict) else None
        name = section.get("name") if isinstance(section, dict) else None
        return sorted(registry[name].model_fields) if name in registry else []
    field = Setting.model_fields.get(parent[0])
    annotation = getattr(field, "annotation", None) if field else None
    if len(parent) == 1:  # a section, or an optional one (`prune`)
        for model in (annotation, *typing.get_args(annotation)):
            if hasattr(model, "model_fields"):
                return sorted(model.model_fields)
        return []
    if parent[0] == "measures" and len(parent) == 2:
        return ["name", "params"]
    return []
