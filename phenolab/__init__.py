"""phenolab: a lab for deep-learning phenomena.

Many tiny models are trained at once as one batched program, every run goes to a catalog,
and explanations are tested against it. The public API is small: `Setting`, `Catalog`,
`train`, `run`, `reproduce`, `named_setting`.
"""

import functools

from phenolab import _cpu_isa, _mkl_amd

# before anything imports torch: MKL's fast kernels on AMD CPUs, and AVX2 kernels on AVX-512 CPUs
# (the same numbers on every x86-64 CPU); see each module
_mkl_amd.enable()
_cpu_isa.pin()
_cpu_isa.warn_if_too_late(_mkl_amd.STATE)

from phenolab import measures, models, phenomena, tasks  # noqa: E402, F401  (register the built-in components)
from phenolab.catalog import Catalog, CatalogError  # noqa: E402
from phenolab.engine import BatchResult  # noqa: E402
from phenolab.engine import train as _train  # noqa: E402
from phenolab.execute import plan_batches, run_local  # noqa: E402
from phenolab.reproduction import Reproduction, reproduce  # noqa: E402
from phenolab.settings import Setting, SettingError, named_setting, resolve_setting  # noqa: E402

__version__ = "0.3.0"


def run(setting: Setting, seeds: int | list[int], catalog: Catalog | str | None = None, device: str = "auto",
        ) -> list[str]:
    """Train the runs of `setting` × `seeds` (N ⇒ 0..N-1, or integers >= 0) that the catalog lacks;
    return the run ids written. Bad input raises SettingError or CatalogError before any work."""
    from phenolab.execute.preflight import training_inputs

    seed_list, cat = training_inputs(setting, seeds, catalog, device)
    return run_local(plan_batches([setting], seed_list, cat), cat, device=device)


@functools.wraps(_train)
def train(setting: Setting, seeds: int | list[int], **kwargs) -> BatchResult:
    """`phenolab.engine.train` after the checks `run` makes (seeds N ⇒ 0..N-1, or integers >= 0)."""
    from phenolab.execute.preflight import training_inputs

    seed_list, _ = training_inputs(setting, seeds, False, kwargs.get("device", "cpu"))
    return _train(setting, seed_list, **kwargs)


__all__ = [
    "BatchResult", "Catalog", "CatalogError", "Reproduction", "Setting", "SettingError", "__version__",
    "named_setting", "reproduce", "resolve_setting", "run", "train",
]
