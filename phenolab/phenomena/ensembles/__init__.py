"""Deep ensembles: why averaging independently trained networks works so well.

The position paper's example of a practical phenomenon with competing explanations: averaging
weak learners (Dietterich 2000), a bias–variance trade-off (Curth et al. 2024), emergent
equivariance (Gerken & Kessel 2024), and an implicit collective loss that joint training breaks
(Jeffares et al. 2024). A run is one member (`Setting.ensemble` says which seeds form an
ensemble); all members of all ensembles of a study train as one batched program, and members
that train together (joint loss, shared init or order) are coupled inside it (`engine.ensembles`).
Signature and figure read the members' final parameters from the catalog (`members`, `signature`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from phenolab.catalog import Catalog
from phenolab.phenomena import Fields, Options, Phenomenon, Signature, Study, register_phenomenon
from phenolab.phenomena.ensembles.figure import ensemble_figure
from phenolab.phenomena.ensembles.members import member_seeds
from phenolab.phenomena.ensembles.settings import CANONICAL, EnsembleSetting
from phenolab.phenomena.ensembles.signature import FIELDS, ensemble_signature
from phenolab.settings import SettingError


class EnsembleOptions(Options):
    perturbation: float = Field(0.1, gt=0, le=10, description="noise of the perturbed ensembles, × each "
                                "tensor's RMS (settings that build them: fort2019_diversity)")


@dataclass
class EnsembleStudy(Study):
    """Seeds are the members of `ensembles` (ensemble e: seeds e·M … e·M+M−1); one setting per variant."""

    ensembles: list[int] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    sizes: tuple[int, ...] = ()
    canonical: EnsembleSetting | None = None


class Ensembles(Phenomenon):
    name = "ensembles"
    title = "averaged independently trained networks beat their members (Lakshminarayanan et al. 2017)"
    canonical = CANONICAL
    options_model = EnsembleOptions
    phase_default = "gain"
    phase_context = ("ensemble_error", "member_error", "diversity")

    def study(self, setting_name: str, seeds: list[int], overrides: dict[str, Any], quick: bool = False,
              options: Options | None = None) -> EnsembleStudy:
        base = super().study(setting_name, seeds, overrides, quick, options)
        canon = self.canonical_setting(setting_name)
        assert isinstance(canon, EnsembleSetting)
        setting = base.settings[0]
        if setting.ensemble is None:
            raise SettingError("ensemble: an ensembles setting needs its ensemble section (--set ensemble=null "
                               "removes it)")
        variants = canon.variants or (("", {}),)
        settings = [setting.with_overrides(dict(over)) if over else setting for _, over in variants]
        members = setting.ensemble.members
        sizes = tuple(k for k in canon.sizes if k <= members) or (members,)
        if sizes[-1] != members:
            sizes = (*sizes, members)
        note = "; ".join(n for n in (f"{len(seeds)} ensemble(s) × {members} members", base.note) if n)
        return EnsembleStudy(self.name, setting_name, settings, member_seeds(members, seeds), base.quick, note,
                             base.options, overrides, ensembles=list(seeds),
                             variants=[label or "members" for label, _ in variants], sizes=sizes, canonical=canon)

    def signature(self, catalog: Catalog, study: Study) -> Signature:
        assert isinstance(study, EnsembleStudy)
        return ensemble_signature(catalog, study)

    def figure(self, catalog: Catalog, study: Study, out: Path) -> Path:
        return ensemble_figure(self.signature(catalog, study), out)

    def fields(self, setting_name: str) -> Fields:
        return FIELDS


ENSEMBLES = register_phenomenon(Ensembles())
