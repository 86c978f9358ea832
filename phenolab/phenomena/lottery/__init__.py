"""Lottery tickets: iterative magnitude pruning with rewinding, its controls, and stability.

Frankle & Carbin 2019 ("The lottery ticket hypothesis"): train a dense net, prune the
smallest-magnitude weights (20% of each hidden layer, 10% of the output layer per round), reset
the survivors to their initial values and retrain; the sparse "winning ticket" matches the dense
net down to a small fraction of its weights, while the same mask on a fresh init (random
reinitialization) does not. Frankle et al. 2020 rewind to step k > 0 instead of the init, and call
a subnetwork stable when two copies trained from it with different data orders are linearly
connected (no test-error barrier between them).

A study's runs are settings of their own (`plan`), trained round by round (`rounds`: the declared
staged hook, since round r's masks come from round r − 1's tickets); the mask maths is
`phenolab.pruning`. Signature and figure are read from the catalog alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from phenolab.catalog import Catalog
from phenolab.engine import total_steps
from phenolab.models import model_class
from phenolab.phenomena import Fields, Options, Phenomenon, Signature, Study, Trainer, register_phenomenon
from phenolab.phenomena.lottery.figure import lottery_figure
from phenolab.phenomena.lottery.plan import LotteryPlan, study_work
from phenolab.phenomena.lottery.rounds import run_rounds
from phenolab.phenomena.lottery.settings import CANONICAL
from phenolab.phenomena.lottery.signature import FIELDS, lottery_signature
from phenolab.settings import Setting, SettingError
from phenolab.tasks import build_task


class LotteryOptions(Options):
    rounds: int = Field(15, ge=1, le=200, description="pruning rounds (each prunes a share of the survivors)")
    rewind_step: int | None = Field(None, ge=0, description="rewind survivors to their values at this step "
                                    "(0 = init; default: the setting's prune.rewind_step)")
    instability: Literal["ends", "all", "none"] = Field(
        "ends", description="rounds that also train a copy with another data order, for the instability "
        "barrier: ends (0 and the last), all, none")


@dataclass
class LotteryStudy(Study):
    plan: LotteryPlan | None = field(default=None)


class Lottery(Phenomenon):
    name = "lottery"
    title = "sparse subnetworks that train to the dense accuracy from their init (Frankle & Carbin 2019)"
    canonical = CANONICAL
    options_model = LotteryOptions

    def study(self, setting_name: str, seeds: list[int], overrides: dict[str, Any], quick: bool = False,
              options: Options | None = None) -> LotteryStudy:
        base = super().study(setting_name, seeds, overrides, quick, options)
        assert isinstance(base.options, LotteryOptions)
        plan = make_plan(base.settings[0], base.options)
        return LotteryStudy(**{**vars(base), "settings": plan.settings()}, plan=plan)

    def staged_work(self, study: Study) -> tuple[int, int]:
        return study_work(_plan(study), study.seeds)

    def train(self, study: Study, trainer: Trainer) -> list[str]:
        """Staged: round r's masks come from round r − 1's tickets (`rounds.run_rounds`)."""
        return run_rounds(_plan(study), study.seeds, trainer.catalog, device=trainer.device,
                          progress=trainer.progress)

    def signature(self, catalog: Catalog, study: Study) -> Signature:
        return lottery_signature(catalog, _plan(study), study.seeds, study.setting_name, study.note)

    def figure(self, catalog: Catalog, study: Study, out: Path) -> Path:
        title = f"lottery tickets · {study.setting_name}" + (" (--quick)" if study.quick else "")
        return lottery_figure(catalog, _plan(study), study.seeds, out, title=title)

    def fields(self, setting_name: str) -> Fields:
        return FIELDS


def _plan(study: Study) -> LotteryPlan:
    assert isinstance(study, LotteryStudy) and study.plan is not None
    return study.plan


def make_plan(setting: Setting, options: LotteryOptions) -> LotteryPlan:
    """Check the study's options against its setting (one-line SettingError on bad input)."""
    if setting.model.name != "mlp" or setting.optim.name == "lstsq":
        raise SettingError(f"model.name {setting.model.name!r}: lottery tickets need model 'mlp' trained "
                           "by sgd/adam/adamw")
    if setting.prune is None:
        setting = setting.with_overrides({"prune.control": "dense"})
    if setting.prune.round != 0 or setting.prune.data_order != "seed":
        raise SettingError("prune.round and prune.data_order are set by the study for each run; allowed to set: "
                           "prune.rate_hidden, prune.rate_output, prune.scope, prune.rewind_step")
    rewind = setting.prune.rewind_step if options.rewind_step is None else options.rewind_step
    n_train = build_task(setting.task, [0], model_class(setting.model.name).input_kind).n_train
    total = total_steps(setting, n_train)
    if not 0 <= rewind < total:
        raise SettingError(f"--rewind-step {rewind!r}: must be from 0 to {total - 1} (the run has {total} steps)")
    return LotteryPlan(setting, options.rounds, rewind, options.instability)


LOTTERY = register_phenomenon(Lottery())
