"""An example phenolab plug-in: a complete phenomenon package. It adds the sparse-parity task
(`parity.py`), a measure of where the first layer looks (`measures.py`) and the phenomenon
`sparse-parity`, hidden progress after Barak et al. 2022 (`hidden_progress/`: canonical settings,
options, signature, figure). Installed, it is found through the `phenolab.plugins` entry point
(pyproject.toml) and `register()` is called once; nothing is registered on import alone.
"""

from __future__ import annotations


def register() -> None:
    """Add this plug-in's task, measure and phenomenon (with its canonical settings) to phenolab."""
    from phenolab_example_plugin import hidden_progress, measures, parity

    parity.register()
    measures.register()
    hidden_progress.register()  # last: its canonical settings are validated against the task and measure
