"""The Setting: a complete, validated, hashable training configuration minus the seed.

Its id is the SHA-256 of its canonical JSON with default-valued fields left out (as open_lth
names runs), so a field added later with a neutral default keeps every old id valid; a pinned
id in the tests guards this.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, SerializeAsAny, field_validator, model_validator

from phenolab.settings._canonical import ContentAddressed
from phenolab.settings._components import (
    ENSEMBLE_MEASURES,
    INT64_MAX,
    MEASURES,
    MODELS,
    STRICT,
    TASKS,
    Component,
    check_numbers,
)
from phenolab.settings._messages import unknown_name

ID_PREFIX = b"phenolab.setting/1\n"


class _Section(BaseModel):
    model_config = STRICT

    _numbers = field_validator("*", mode="before")(classmethod(check_numbers))


class OptimConfig(_Section):
    """Optimizer. `lstsq` is the exact min-norm (or ridge) solve for linear/random-features models."""

    name: Literal["sgd", "adam", "adamw", "lstsq"] = "adam"
    lr: float = Field(1e-3, gt=0, le=100)
    momentum: float = Field(0.0, ge=0, lt=1)
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0, description="linear learning-rate warmup from lr/warmup to lr")
    ridge: float = Field(0.0, ge=0, description="ridge penalty λ of the lstsq solve")
    grokfast_alpha: float = Field(0.0, ge=0, lt=1, description="Grokfast-EMA (Lee et al. 2024): EMA decay "
                                  "α of the gradient filter; 0 = off (their default α 0.98)")
    grokfast_lambda: float = Field(0.0, ge=0, description="Grokfast-EMA amplification: g ← g + λ·EMA_α(g) "
                                   "(their default λ 2)")
    orthogonal_grad: bool = Field(False, description="⊥Grad (Prieto et al. 2025): remove each weight tensor's "
                                  "gradient component along the weights before the optimizer step")

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise ValueError("each beta must be in [0, 1)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> OptimConfig:
        if self.nesterov and self.momentum == 0:
            raise ValueError("optim.nesterov needs optim.momentum > 0 (as torch.optim.SGD requires)")
        if (self.grokfast_alpha > 0) != (self.grokfast_lambda > 0):  # the filter runs only with both
            raise ValueError(f"optim.grokfast_alpha {self.grokfast_alpha:g} and optim.grokfast_lambda "
                             f"{self.grokfast_lambda:g}: Grokfast needs both > 0 (e.g. 0.98 and 2), or both 0 (off)")
        if self.ridge > 0 and self.name != "lstsq":
            raise ValueError(f"optim.ridge {self.ridge:g} is the penalty of the exact solve: it needs optim.name "
                             f"'lstsq' (for {self.name!r}, use optim.weight_decay)")
        return self


class ScheduleConfig(_Section):
    """How long and on what batches: give `steps` or `epochs`; no batch size means full batch."""

    steps: int | None = Field(None, ge=1, le=100_000_000)
    epochs: int | None = Field(None, ge=1, le=10_000_000)
    batch_size: int | None = Field(None, ge=1, le=INT64_MAX)

    @model_validator(mode="after")
    def _one_budget(self) -> ScheduleConfig:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of schedule.steps or schedule.epochs")
        return self


class EvalConfig(_Section):
    """When curves are recorded: `points` log-spaced steps, plus every `every` steps, plus the last."""

    points: int = Field(60, ge=2, le=100_000)
    every: int | None = Field(None, ge=1, description="also evaluate every this many steps")
    batch_size: int = Field(8192, ge=1, description="chunk size for evaluation (memory only)")


class MeasureSpec(_Section):
    """A registered measure and its parameters, recorded at every evaluation step."""

    name: str
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if MEASURES and v not in MEASURES:
            raise ValueError(unknown_name("measure", v, sorted(MEASURES)))
        return v

    @model_validator(mode="after")
    def _known_params(self) -> MeasureSpec:
        allowed = MEASURES.get(self.name)
        unknown = sorted(set(self.params) - allowed) if allowed is not None else []
        if unknown:
            raise ValueError(f"measure {self.name!r} has no parameter {unknown[0]!r}; allowed: "
                             f"{', '.join(sorted(allowed)) or 'none'}")
        return self


class PruneConfig(_Section):
    """One run of an iterative-magnitude-pruning study (Frankle & Carbin 2019; Frankle et al. 2020).

    Plain data that gives each round and control its own content id, so a study resumes per
    round; `phenolab.phenomena.lottery` builds the masks and start points it stands for (the
    engine itself does not read this section).
    """

    round: int = Field(0, ge=0, le=200, description="pruning round: 0 is dense, round r keeps (1 - rate)^r")
    control: Literal["ticket", "reinit", "shuffle", "dense"] = Field(
        "ticket", description="ticket: IMP mask + rewound weights; reinit: same mask, fresh init; "
        "shuffle: the mask permuted within each layer, rewound weights; dense: no mask")
    rate_hidden: float = Field(0.2, gt=0, lt=1, description="share of surviving weights pruned per round "
                               "(hidden layers; every layer when scope is global)")
    rate_output: float = Field(0.1, gt=0, lt=1, description="share pruned per round in the output layer")
    scope: Literal["layer", "global"] = Field("layer", description="magnitude ranking per layer or across all")
    rewind_step: int = Field(0, ge=0, description="survivors restart from their values at this step (0 = init)")
    data_order: Literal["seed", "alternate"] = Field(
        "seed", description="alternate: a second data order from the same start (instability analysis)")

    @property
    def needs_study(self) -> bool:
        """Whether its runs need masks or a start point only the lottery study derives (a ticket, a
        control, another data order): `train`, `sweep` and `rerun` cannot train them as plain nets."""
        return self.control != "dense" or self.data_order != "seed"


class EnsembleConfig(_Section):
    """Which runs form one ensemble, and how they train together (deep ensembles).

    Seeds `e·members … e·members + members − 1` are the members of ensemble `e`. Independent
    members (`joint` 0, `diversity` "both") train as ordinary runs; the section then only says how
    they group. Otherwise the engine trains each ensemble's members side by side: `diversity`
    "init" gives them ensemble e's data order (and its label-noise/subset draws), "order" its init;
    `joint` β > 0 trains each member on (1 − β)·its own loss + β·M·the loss of the ensemble's mean
    logits (Jeffares et al. 2024's interpolation, times M so a member's gradient keeps its scale:
    with Adam the same steps as theirs up to ε), which needs the members to see the same batches.
    """

    members: int = Field(1, ge=1, le=1024, description="M: members per ensemble (seeds e·M … e·M+M−1)")
    joint: float = Field(0.0, ge=0, le=1, description="β: 0 = independent training, 1 = the loss of the "
                         "ensemble's averaged logits only (Jeffares et al. 2024)")
    diversity: Literal["both", "init", "order"] = Field(
        "both", description="what differs between members: both init and data order, only the init (shared "
        "data order and draws), or only the data order (shared init)")

    @model_validator(mode="after")
    def _joint_shares_batches(self) -> EnsembleConfig:
        if self.joint > 0 and self.diversity != "init":
            raise ValueError(f"ensemble.joint {self.joint:g} needs ensemble.diversity 'init': jointly trained "
                             f"members see the same batches (got {self.diversity!r})")
        return self

    @property
    def coupled(self) -> bool:
        """Whether members must train together (anything but independent members)."""
        return self.members > 1 and (self.joint > 0 or self.diversity != "both")


class Setting(ContentAddressed, BaseModel):
    """One training configuration; a run is (setting, seed). Its `id` and `canonical_json` come from
    `ContentAddressed`."""

    model_config = STRICT
    id_prefix: ClassVar[bytes] = ID_PREFIX

    task: SerializeAsAny[Component]
    model: SerializeAsAny[Component]
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig(steps=1000)
    loss: Literal["ce", "mse", "stablemax_ce"] = Field(
        "ce", description="ce: softmax cross-entropy; mse: squared error (one-hot targets for classes); "
        "stablemax_ce: cross-entropy through StableMax (Prieto et al. 2025)")
    eval: EvalConfig = EvalConfig()
    measures: tuple[MeasureSpec, ...] = ()
    dtype: Literal["float32", "float64"] = "float32"
    checkpoints: Literal["none", "final", "eval"] = Field(
        "none", description="save parameters (safetensors) at no step, the last, or every eval step"
    )
    prune: PruneConfig | None = Field(None, description="lottery-ticket round and control (None: not pruned)")
    ensemble: EnsembleConfig | None = Field(None, description="deep ensembles: which seeds form an ensemble and "
                                            "how its members train (None: every run on its own)")

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, v: Any) -> Component:
        return _component(v, TASKS, "task")

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, v: Any) -> Component:
        return _component(v, MODELS, "model")

    @field_validator("measures", mode="before")
    @classmethod
    def _measures(cls, v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return tuple({"name": m} if isinstance(m, str) else m for m in v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Setting:
        if self.optim.name == "lstsq" and self.model.name not in ("linear", "random_features"):
            raise ValueError("optim.name 'lstsq' needs model.name 'linear' or 'random_features'")
        if self.model.name == "transformer" and self.task.name != "modular":
            raise ValueError("model.name 'transformer' needs task.name 'modular' (token input)")
        if self.task.name == "linear_regression" and self.loss != "mse":
            raise ValueError("task.name 'linear_regression' needs loss 'mse'")
        ensemble_measures = [m.name for m in self.measures if m.name in ENSEMBLE_MEASURES]
        if ensemble_measures and self.ensemble is None:
            raise ValueError(f"measure {ensemble_measures[0]!r} reads a whole ensemble: it needs an ensemble section "
                             "(e.g. ensemble.members=4)")
        if self.trains_whole_ensembles and self.prune is not None:
            raise ValueError("ensemble: members that train together cannot also be pruned (prune section)")
        return self

    @property
    def trains_whole_ensembles(self) -> bool:
        """Whether each ensemble's members must train side by side in one program: they are coupled
        (`EnsembleConfig.coupled`), or a measure reads the whole ensemble."""
        cfg = self.ensemble
        if cfg is None or cfg.members < 2:
            return False
        return cfg.coupled or any(m.name in ENSEMBLE_MEASURES for m in self.measures)

    def with_overrides(self, overrides: dict[str, Any]) -> Setting:
        """A new setting with dotted-path fields replaced (validated)."""
        from phenolab.settings._parse import apply_overrides, validate_setting

        return validate_setting(apply_overrides(self.model_dump(mode="json"), overrides))

    def value(self, path: str) -> Any:
        """The field at a dotted path, e.g. `setting.value("optim.lr")`."""
        node: Any = self
        for part in path.split("."):
            node = getattr(node, part)
        return node


def _component(v: Any, registry: dict[str, type[Component]], section: str) -> Component:
    if isinstance(v, Component):
        return v
    if not isinstance(v, dict):
        raise ValueError(f"{section} must be a mapping with a 'name' field, e.g. {{name: {sorted(registry)[0]}}}")
    name = v.get("name")
    if name is None:
        raise ValueError(f"{section} needs a 'name'; allowed: {', '.join(sorted(registry))}")
    if not isinstance(name, str) or name not in registry:
        raise ValueError(unknown_name(f"{section} name", name if isinstance(name, str) else repr(name),
                                      sorted(registry)))
    return registry[name].model_validate(v)
