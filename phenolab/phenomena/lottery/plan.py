"""A lottery study's plan: the setting of every round, control and data order, and its size.

Every run of a study is its own setting in the catalog: the canonical setting plus a `prune`
section (round, control, rates, rewind step, data order) and `checkpoints="final"`, so the next
round reads its mask source from the catalog and an interrupted study resumes at the round it
reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from phenolab.engine import total_steps
from phenolab.models import BatchedModel, build_model, model_class
from phenolab.settings import Setting, validate_setting
from phenolab.tasks import build_task

CONTROLS = ("ticket", "reinit", "shuffle")
INSTABILITY = ("ends", "all", "none")  # rounds with a second-data-order copy: 0 and the last, every, none


def alternate_order_seed(seed: int) -> int:
    """Data-order seed of the instability copy: negative, so it never equals a run's own seed."""
    return -(int(seed) + 1)


@dataclass(frozen=True)
class LotteryPlan:
    """What one lottery study stands for: the settings of every round and control."""

    base: Setting  # the canonical setting (its prune section gives the rates and scope)
    rounds: int
    rewind_step: int = 0
    instability: str = "ends"

    @property
    def prune(self) -> dict[str, Any]:
        p = self.base.prune
        return {"rate_hidden": p.rate_hidden, "rate_output": p.rate_output, "scope": p.scope} if p else {}

    def _make(self, prune: dict[str, Any], schedule: dict[str, Any] | None = None) -> Setting:
        data = self.base.model_dump(mode="json")
        data.update(prune=prune, checkpoints="final")
        if schedule is not None:
            data["schedule"] = {**data["schedule"], **schedule}
        return validate_setting(data)

    def dense(self) -> Setting:
        """The dense baseline (round 0), trained from the init: also the first mask's source."""
        return self._make({"control": "dense"})

    def rewind_source(self) -> Setting | None:
        """The dense setting trained for `rewind_step` steps: its final params are θ_k (the engine is
        deterministic, so they equal the dense run's params at step k)."""
        if self.rewind_step == 0:
            return None
        return self._make({"control": "dense"}, {"steps": self.rewind_step, "epochs": None})

    def run(self, round: int, control: str, data_order: str = "seed") -> Setting:
        """Round ≥ 1: the mask of `round` IMP rounds with `control`; round 0: the unpruned start."""
        if round == 0 and control == "ticket" and self.rewind_step == 0 and data_order == "seed":
            return self.dense()
        prune = {"round": round, "control": control, "rewind_step": self.rewind_step, "data_order": data_order}
        return self._make({**prune, **(self.prune if round > 0 else {})})

    def instability_rounds(self) -> list[int]:
        return {"ends": sorted({0, self.rounds}), "all": list(range(self.rounds + 1)), "none": []}[self.instability]

    def settings(self) -> list[Setting]:
        """Every setting of the study; the last round's ticket first (it names the study's figure)."""
        out = [self.run(self.rounds, "ticket"), self.dense()]
        out += [s for s in [self.rewind_source()] if s is not None]
        out += [self.run(r, c) for r in range(1, self.rounds + 1) for c in CONTROLS]
        for r in self.instability_rounds():
            out += [self.run(r, "ticket"), self.run(r, "ticket", "alternate")]
        return list({s.id: s for s in out}.values())

    def with_rewind(self, rewind_step: int) -> LotteryPlan:
        return LotteryPlan(self.base, self.rounds, rewind_step, self.instability)


def study_work(plan: LotteryPlan, seeds: list[int]) -> tuple[int, int]:
    """(runs, optimizer steps) of a whole study, stored or not: the total of a progress bar, since
    `run_rounds` counts stored rounds as done rather than leaving the bar short of its end."""
    return len(plan.settings()) * len(seeds), plan.rewind_step + (plan.rounds + 1) * steps_per_run(plan.base)


def steps_per_run(setting: Setting) -> int:
    """Optimizer steps of one run of `setting` (epochs are counted on the task's training split)."""
    return total_steps(setting, build_task(setting.task, [0], model_class(setting.model.name).input_kind).n_train)


def study_model(setting: Setting) -> BatchedModel:
    """The batched model of a setting (its input and output sizes read from the task)."""
    data = build_task(setting.task, [0], model_class(setting.model.name).input_kind)
    return build_model(setting.model, data.input_dim, data.out_dim, data.seq_len)
