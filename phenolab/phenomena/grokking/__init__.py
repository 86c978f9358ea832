"""Grokking: generalization long after the training set is fit (Power et al. 2022).

Canonical settings (`settings.py`), the signature (`signature.py`: t_train, t_test, their ratio and
Liu et al.'s phase), the figure, and `--compare accelerators` (`accelerators.py`: weight decay,
Grokfast, StableMax and ⊥Grad on the same seeds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from phenolab.catalog import Catalog
from phenolab.phenomena import (
    AuditSpec,
    Fields,
    Options,
    Phenomenon,
    RunSignature,
    Signature,
    Study,
    register_phenomenon,
)
from phenolab.phenomena.grokking import accelerators
from phenolab.phenomena.grokking.figure import grokking_figure
from phenolab.phenomena.grokking.settings import CANONICAL, GrokkingSetting
from phenolab.phenomena.grokking.signature import FIELDS, grokking_signature, run_signature_of
from phenolab.settings import Setting


class GrokkingOptions(Options):
    compare: Literal["accelerators"] | None = Field(
        None, description="'accelerators' trains the setting without weight decay and with each of weight decay, "
        "Grokfast, StableMax and ⊥Grad on the same seeds, and compares their steps to 99% test accuracy")


@dataclass
class GrokkingStudy(Study):
    variants: list[str] = field(default_factory=list)  # with --compare: one name per setting, baseline first


class Grokking(Phenomenon):
    name = "grokking"
    title = "generalization long after the training set is fit (Power et al. 2022)"
    canonical = CANONICAL
    options_model = GrokkingOptions
    phase_default = "phase"

    def study(self, setting_name: str, seeds: list[int], overrides: dict[str, Any], quick: bool = False,
              options: Options | None = None) -> GrokkingStudy:
        base = super().study(setting_name, seeds, overrides, quick, options)
        study = GrokkingStudy(**vars(base))
        if study.options.compare == "accelerators":
            variants = accelerators.accelerator_variants(study.settings[0])
            study.settings, study.variants = list(variants.values()), list(variants)
        return study

    def audit(self, setting_name: str, setting: Setting) -> AuditSpec:
        from phenolab.phenomena.grokking.audit import audit_spec

        return audit_spec(setting)

    def run_signature(self, setting_name: str, options: Options | None = None) -> RunSignature:
        return run_signature_of(self._relative(setting_name))

    def signature(self, catalog: Catalog, study: Study) -> Signature:
        if isinstance(study, GrokkingStudy) and study.variants:
            return accelerators.compare_signature(catalog, study, study.variants)
        return grokking_signature(catalog, study, self._relative(study.setting_name))

    def figure(self, catalog: Catalog, study: Study, out: Path) -> Path:
        if isinstance(study, GrokkingStudy) and study.variants:
            return accelerators.compare_figure(catalog, study, study.variants,
                                               out.with_name(out.stem + "-accelerators.png"))
        return grokking_figure(catalog, study, out)

    def fields(self, setting_name: str) -> Fields:
        return FIELDS + accelerators.FIELDS

    def _relative(self, setting_name: str) -> bool:
        canon = self.canonical_setting(setting_name)
        return isinstance(canon, GrokkingSetting) and canon.relative_test


GROKKING = register_phenomenon(Grokking())
