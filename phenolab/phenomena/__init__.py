"""Phenomena: one package each, found through this registry.

`register_phenomenon` adds a phenomenon and registers its canonical settings, so `phenolab
reproduce`, `phenolab phase`, `phenolab train NAME` and the report find them; a plug-in calls it
the same way (see docs/plugins.md). Every package in this folder is a built-in phenomenon and is
imported (so registered) when `phenolab.phenomena` is.
"""

from __future__ import annotations

from phenolab.phenomena._contract import (
    AuditReading,
    AuditSpec,
    Canonical,
    Fields,
    Options,
    Phenomenon,
    Reproducible,
    RowTable,
    RunSignature,
    Signature,
    SignatureField,
    Study,
    Trainer,
    TrainMissing,
)
from phenolab.phenomena._reading import first_step_at_least, quick_setting, stat, study_curves
from phenolab.settings import NAMED_SETTINGS, SettingError, register_setting, unknown_name

PHENOMENA: dict[str, Phenomenon] = {}


def register_phenomenon(ph: Phenomenon) -> Phenomenon:
    """Add `ph` to the registry and register its canonical settings (each validated now, so a
    broken one fails at import). A setting name another source already registered is refused."""
    if not ph.name or not ph.canonical:
        raise SettingError(f"phenomenon {type(ph).__name__}: needs a name and at least one canonical setting")
    for canon in ph.canonical:
        known = NAMED_SETTINGS.get(canon.name)
        if known is not None and dict(known.data) != dict(canon.setting):
            raise SettingError(f"phenomenon {ph.name}: setting {canon.name!r} is already registered with "
                               "other values")
        register_setting(canon.name, dict(canon.setting), source=canon.source, description=canon.description)
    PHENOMENA[ph.name] = ph
    return ph


def get_phenomenon(name: str) -> Phenomenon:
    """The registered phenomenon `name`, or a one-line SettingError with the allowed names."""
    if name in PHENOMENA:
        return PHENOMENA[name]
    raise SettingError(unknown_name("phenomenon", name, sorted(PHENOMENA)))


def _register_builtins() -> None:
    """Import every phenomenon package in this folder (each registers itself): adding one is
    adding its folder."""
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.ispkg and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_register_builtins()

__all__ = [
    "PHENOMENA", "AuditReading", "AuditSpec", "Canonical", "Fields", "Options", "Phenomenon", "Reproducible",
    "RowTable", "RunSignature", "Signature", "SignatureField", "Study", "TrainMissing", "Trainer",
    "first_step_at_least", "get_phenomenon", "quick_setting", "register_phenomenon", "stat", "study_curves",
    "unknown_name",
]
