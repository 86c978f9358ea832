"""An example phenolab plug-in: the sparse-parity task, a measure of where the first layer looks,
and one canonical setting. Installed, it is found through the `phenolab.plugins` entry point
(pyproject.toml) and `register()` is called once; nothing is registered on import alone.
"""

from __future__ import annotations


def register() -> None:
    """Add this plug-in's task, measure and named setting to phenolab's registries."""
    from phenolab_example_plugin import measures, parity

    parity.register()
    measures.register()
    parity.register_settings()  # last: a named setting is validated against the task and measure above
