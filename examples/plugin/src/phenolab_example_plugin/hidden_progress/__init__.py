"""Hidden progress on sparse parity (Barak, Edelman, Goel, Kakade, Malach & Zhang 2022): accuracy
sits at chance on a plateau while the first layer's weight moves onto the k relevant bits, then
accuracy jumps.

The package of a phenomenon, as phenolab's built-ins are laid out: canonical settings as data
(`settings.py`), the signature and its self-describing fields (`signature.py`), the figure
(`figure.py`) and, here, the class that ties them together. `register()` adds it to phenolab's
registry (and with it its canonical settings); importing this module registers nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from phenolab.catalog import Catalog
from phenolab.phenomena import Fields, Options, Phenomenon, RunSignature, Signature, Study, register_phenomenon
from phenolab.settings import named_setting
from phenolab_example_plugin.hidden_progress.figure import hidden_progress_figure
from phenolab_example_plugin.hidden_progress.settings import CANONICAL, K
from phenolab_example_plugin.hidden_progress.signature import (
    FIELDS,
    hidden_progress_signature,
    run_signature_of,
    share_metric,
)


class SparseParityOptions(Options):
    accuracy_threshold: float = Field(
        0.99, ge=0.5, le=1.0, description="test accuracy at which a run counts as learned: t_learn is the first "
        "evaluated step at or above it")


class SparseParity(Phenomenon):
    name = "sparse-parity"
    title = "hidden progress on sparse parity: a plateau at chance, then a jump (Barak et al. 2022)"
    canonical = CANONICAL
    options_model = SparseParityOptions
    phase_default = "outcome"

    def study(self, setting_name: str, seeds: list[int], overrides: dict[str, Any], quick: bool = False,
              options: Options | None = None) -> Study:
        study = super().study(setting_name, seeds, overrides, quick, options)
        share_metric(study.settings[0], K)  # one line, before any training, if --set changed task.k or the measures
        return study

    def run_signature(self, setting_name: str, options: Options | None = None) -> RunSignature:
        threshold = self.parse_options(options).accuracy_threshold
        return run_signature_of(share_metric(named_setting(setting_name), K), threshold)

    def signature(self, catalog: Catalog, study: Study) -> Signature:
        run_sig = self.run_signature(study.setting_name, study.options)
        return hidden_progress_signature(catalog, study, run_sig, study.options.accuracy_threshold)

    def figure(self, catalog: Catalog, study: Study, out: Path) -> Path:
        share = share_metric(study.settings[0], K)
        return hidden_progress_figure(catalog, study, self.signature(catalog, study), share, out)

    def fields(self, setting_name: str) -> Fields:
        return FIELDS


def register() -> SparseParity:
    """Add the phenomenon to phenolab's registry; its task and measure must be registered first
    (its canonical settings are validated against them)."""
    return register_phenomenon(SparseParity())
