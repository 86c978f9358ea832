"""Named settings: canonical configurations, each named after its source, that users start from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phenolab.settings._messages import did_you_mean, unknown_name
from phenolab.settings._parse import (
    FILE_FORMATS,
    SettingError,
    apply_overrides,
    check_overrides,
    load_setting_file,
    validate_setting,
)
from phenolab.settings._setting import Setting


@dataclass(frozen=True)
class NamedSetting:
    name: str
    data: dict[str, Any]
    source: str
    description: str


NAMED_SETTINGS: dict[str, NamedSetting] = {}


def register_setting(name: str, data: dict[str, Any], *, source: str, description: str) -> None:
    """Register a canonical setting (validated now, so a broken one fails at import)."""
    validate_setting(data)
    NAMED_SETTINGS[name] = NamedSetting(name, data, source, description)


def named_setting(name: str) -> Setting:
    """The named setting `name` (see `phenolab settings`), validated."""
    if not isinstance(name, str) or name not in NAMED_SETTINGS:
        raise SettingError(unknown_name("setting", name if isinstance(name, str) else repr(name),
                                        sorted(NAMED_SETTINGS)))
    return validate_setting(NAMED_SETTINGS[name].data)


def resolve_setting(base: str | Path | None, overrides: dict[str, Any] | None = None) -> Setting:
    """A named setting or a YAML/TOML/JSON file, with `--set` overrides applied."""
    if base is None:
        base = "mnist1d_mlp"
    if not isinstance(base, (str, Path)):
        raise SettingError(f"setting {base!r}: give a setting name (see `phenolab settings`) or a file path")
    overrides = check_overrides(overrides)
    if isinstance(base, str) and base in NAMED_SETTINGS:
        data = NAMED_SETTINGS[base].data
    elif Path(base).suffix in FILE_FORMATS:
        data = load_setting_file(base)
    else:
        raise SettingError(f"unknown setting {str(base)!r}{did_you_mean(str(base), sorted(NAMED_SETTINGS))}; give "
                           f"a setting file (.yaml/.toml/.json) or one of: {', '.join(sorted(NAMED_SETTINGS))}")
    return validate_setting(apply_overrides(data, overrides))


register_setting(
    "mnist1d_mlp",
    {
        "task": {"name": "mnist1d", "num_samples": 4000},
        "model": {"name": "mlp", "width": 128, "depth": 2},
        "optim": {"name": "adam", "lr": 1e-3},
        "schedule": {"epochs": 30, "batch_size": 100},
        "eval": {"points": 40},
        "measures": ["weight_norm", "distance_from_init"],
    },
    source="MNIST-1D (Greydanus & Kobak 2024) with a small MLP; phenolab's demo",
    description="8 seeds in under a minute on a laptop CPU: the engine's smoke test and demo",
)
