"""Third-party extensions through the `phenolab.plugins` entry-point group.

A plug-in package names, in its pyproject.toml,

    [project.entry-points."phenolab.plugins"]
    myplugin = "my_package.phenolab_plugin:register"

and the target is either a callable (called once, with no arguments) or a module (imported).
Either way it registers what it adds through phenolab's registries: tasks
(`phenolab.tasks.register_task` + `phenolab.settings.register_task_config`), models
(`phenolab.models.register_model` + `phenolab.settings.register_model_config`), measures
(`phenolab.measures.register_measure`), phenomena (`phenolab.phenomena.register_phenomenon`)
and named settings (`phenolab.settings.register_setting`). A plug-in that fails to load is
reported as one warning line naming it, and phenolab carries on without it. See docs/plugins.md
and the example in examples/plugin/.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

GROUP = "phenolab.plugins"
log = logging.getLogger("phenolab.plugins")


@dataclass(frozen=True)
class PluginStatus:
    name: str  # the entry point's name
    target: str  # "module:attr"
    distribution: str  # the installed package that provides it
    loaded: bool
    error: str = ""


_STATUS: list[PluginStatus] | None = None


def load_plugins(*, reload: bool = False) -> list[PluginStatus]:
    """Load every installed plug-in once per process (again with `reload=True`); returns their status."""
    global _STATUS
    if _STATUS is not None and not reload:
        return list(_STATUS)
    status = [_load(ep) for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name)]
    _STATUS = status
    return list(status)


def plugin_status() -> list[PluginStatus]:
    """What `load_plugins` found (empty before it ran)."""
    return list(_STATUS or [])


def _load(ep: EntryPoint) -> PluginStatus:
    dist = ep.dist.name if ep.dist is not None else "?"
    try:
        target = ep.load()
        if not isinstance(target, ModuleType):
            if not callable(target):
                raise TypeError(f"entry point target is a {type(target).__name__}, not a callable or module")
            target()
    except Exception as exc:  # a broken plug-in must not take phenolab down with it
        first = (str(exc).splitlines() or [""])[0]
        message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        log.warning("phenolab: plug-in %r (%s, from %s) was not loaded: %s", ep.name, ep.value, dist, message)
        return PluginStatus(ep.name, ep.value, dist, False, message)
    return PluginStatus(ep.name, ep.value, dist, True)
