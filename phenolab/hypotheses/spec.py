"""A hypothesis as data: "measure M tracks target T", where, how strongly, and how it will be tested.

The position paper (§3.2, Fig. 4, App. A) asks that an explanation predict beyond the setting it
was made on and survive obvious confounds. So a hypothesis names, before the deciding runs exist:
the measure and target, the claimed relation (Spearman ρ with a direction and a threshold, over
the steps of a run or over the settings of a sweep; or, across seeds, a statistic of the seeds'
spread against the seed-mean, `across_seeds`), the scope it was built on, the held-out
settings it must also predict, the confounds to control for and the interventions to try
(function-preserving transformations, or regularizers that retrain with a field changed). Its id
is a content hash of its canonical JSON (defaults left out, as for settings), so it cannot change
after registration: a change is a new hypothesis that `supersedes` the old one.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from phenolab.engine import measure_key
from phenolab.settings import (
    MEASURES,
    MeasureSpec,
    Setting,
    SettingError,
    load_setting_file,
    parse_seeds,
    resolve_setting,
)
from phenolab.settings._canonical import ContentAddressed
from phenolab.settings._parse import FILE_FORMATS, apply_overrides, load_mapping_file, validate_setting

ID_PREFIX = b"phenolab.hypothesis/1\n"
METRICS = ("train_loss", "test_loss", "train_acc", "test_acc")  # what the engine records for every run
STEP = "step"  # the confound "how long it has trained" (over steps) / final step (over settings)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeasureRef(_Frozen):
    """A registered measure with its parameters, e.g. prime_parameter_count with scale 10."""

    name: str
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        """The curve name the engine records it under."""
        return measure_key(MeasureSpec(name=self.name, params=self.params))

    @property
    def spec(self) -> MeasureSpec:
        return MeasureSpec(name=self.name, params=self.params)


class Relation(_Frozen):
    """The claim: direction·ρ_Spearman(M, T) ≥ threshold, per run over its recorded steps
    ("steps") or per seed over the settings of a sweep group ("settings"). With `across: seeds`,
    M is a statistic across each setting's seeds and T the seed-mean (`across_seeds`), and the
    claim may instead be `peak`: M peaks within `peak_steps` grid steps of T's peak. The fields
    added for that default to values left out of the id, so older hypotheses keep theirs."""

    statistic: Literal["spearman", "peak"] = "spearman"
    over: Literal["steps", "settings"] = "steps"
    direction: Literal["positive", "negative"] = "positive"
    threshold: float = Field(0.8, gt=0, le=1)
    across: Literal["none", "seeds"] = Field("none", description="seeds: M(s) is a statistic across seeds")
    seed_statistic: Literal["variance", "sd", "mad"] = Field("variance", description="across seeds: M's statistic")
    peak_steps: int = Field(1, ge=0, description="peak: largest |argmax M − argext T| in grid steps")

    @property
    def sign(self) -> float:
        return 1.0 if self.direction == "positive" else -1.0


class SettingGroup(_Frozen):
    """A named setting (or an inline one) with overrides, optionally swept over fields."""

    setting: str | dict[str, Any] = Field(description="named setting, or a full setting mapping")
    overrides: dict[str, Any] = Field(default_factory=dict)
    sweep: dict[str, list[Any]] = Field(default_factory=dict, description="field -> values (product)")

    @field_validator("sweep")
    @classmethod
    def _non_empty(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for field, values in v.items():
            if not values:
                raise ValueError(f"sweep field {field!r} has no values")
        return v

    def base_settings(self) -> list[Setting]:
        """The group's settings before the hypothesis adds its measures (raises SettingError)."""
        fields = list(self.sweep)
        combos = itertools.product(*(self.sweep[f] for f in fields)) if fields else [()]
        out = []
        for combo in combos:
            over = {**self.overrides, **dict(zip(fields, combo, strict=True))}
            if isinstance(self.setting, str):
                out.append(resolve_setting(self.setting, over))
            else:
                out.append(validate_setting(apply_overrides(self.setting, over)))
        return out


class ScopeGroup(SettingGroup):
    """Settings the hypothesis was built on, and the seeds it was built on."""

    seeds: list[int] = Field(min_length=1)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v: Any) -> Any:
        if isinstance(v, int):  # N ⇒ 0..N-1
            return list(range(v)) if v >= 1 else v
        if isinstance(v, str):
            return parse_seeds(v)
        return v


class HeldOutGroup(SettingGroup):
    """Settings the hypothesis must also predict; their seeds come from the hypothesis's hash."""

    n_seeds: int = Field(3, ge=1, le=1000)


FUNCTION_PRESERVING = ("rescale", "permute")
# setting sections a regularizer may not set: they decide what is recorded, not how it is trained
NOT_REGULARIZERS = ("measures", "checkpoints", "prune")


class Intervention(_Frozen):
    """A function-preserving transformation of the final parameters (`rescale`, `permute`: see
    `interventions`), or a `regularizer`: a setting field set to other values for retraining, which
    pushes M, so T must follow as the claimed relation predicts. Fields added for the regularizer
    default to nothing, so the ids of hypotheses without one are unchanged."""

    kind: Literal["rescale", "permute", "regularizer"]
    layer: int = Field(0, ge=0, description="hidden layer whose units are rescaled/permuted")
    factors: tuple[float, ...] = Field((0.5, 2.0), description="rescale: multipliers c > 0 of the layer")
    field: str | None = Field(None, description="regularizer: dotted setting field, e.g. optim.weight_decay")
    values: tuple[float | int | str | bool, ...] = Field((), description="regularizer: values the field is set to")

    @field_validator("factors")
    @classmethod
    def _positive(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(not c > 0 for c in v):
            raise ValueError("factors must be a non-empty list of numbers > 0")
        return v

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Intervention:
        own, other = (("field", "values"), ("layer", "factors")) if self.kind == "regularizer" else (
            ("layer", "factors"), ("field", "values"))
        # a stored registration dumps every field: only a value other than the default is foreign
        foreign = [f for f in other if getattr(self, f) != type(self).model_fields[f].default]
        if foreign:
            raise ValueError(f"{foreign[0]!r} is not a field of kind {self.kind!r}; allowed: {', '.join(own)}")
        if self.kind == "regularizer" and (self.field is None or not self.values):
            raise ValueError("kind 'regularizer' needs `field` (a setting field, e.g. optim.weight_decay) "
                             "and a non-empty list of `values`")
        return self

    @property
    def label(self) -> str:
        """How `show` and the test's detail name it."""
        if self.kind == "regularizer":
            return f"regularizer {self.field} → {', '.join(str(v) for v in self.values)}"
        return f"{self.kind} layer {self.layer}"

    def check_field(self, setting: Setting, sweep: dict[str, list[Any]], where: str) -> None:
        """Raise ValueError naming the field and what is allowed unless every value of a regularizer
        makes a valid variant of `setting`."""
        assert self.field is not None
        parts = self.field.split(".")
        if parts[0] in NOT_REGULARIZERS:
            raise ValueError(f"{where}.field {self.field!r}: {parts[0]!r} decides what is recorded, not how the "
                             f"network is trained; not allowed: {', '.join(NOT_REGULARIZERS)}")
        if self.field in sweep:
            raise ValueError(f"{where}.field {self.field!r} is swept by its scope group; a regularizer must set "
                             "a field the sweep does not")
        node: Any = setting.model_dump(mode="json")
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                parent = ".".join(parts[:i])
                names = [k for k in sorted(node) if i or k not in NOT_REGULARIZERS] if isinstance(node, dict) else []
                allowed = ", ".join(names) or "none (a value, not a section)"
                under = f" under {parent!r}" if parent else ""
                raise ValueError(f"{where}.field {self.field!r} is not a field of the setting; allowed{under}: "
                                 f"{allowed}")
            node = node[part]
        for value in self.values:
            try:
                setting.with_overrides({self.field: value})
            except SettingError as exc:
                raise ValueError(f"{where}.values: {str(exc).removeprefix('invalid setting: ')}") from None


class Hypothesis(ContentAddressed, _Frozen):
    """Measure M tracks target T over a scope, to be tested in-sample, held-out, against
    confounds and under interventions."""

    id_prefix: ClassVar[bytes] = ID_PREFIX

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=80)
    statement: str = Field(min_length=1)
    measure: str | MeasureRef = Field(description="a measure, or a recorded metric (test_acc, ...)")
    target: str | MeasureRef = Field(description="test_acc, test_loss, train_acc, train_loss, or a measure")
    relation: Relation = Relation()
    scope: tuple[ScopeGroup, ...] = Field(min_length=1)
    held_out: tuple[HeldOutGroup, ...] = ()
    confounds: tuple[str | MeasureRef, ...] = Field((), description="'step', a recorded metric, or measures")
    interventions: tuple[Intervention, ...] = ()
    confound_threshold: float | None = Field(None, gt=0, le=1, description="default: relation.threshold")
    intervention_tolerance: float = Field(0.1, gt=0, le=1, description="share of T's in-sample range")
    supersedes: str | None = None
    source: str = ""

    @field_validator("measure", "target", mode="before")
    @classmethod
    def _measure_or_metric(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) and v not in METRICS else v

    @field_validator("confounds", mode="before")
    @classmethod
    def _confounds(cls, v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return tuple(c if c == STEP or c in METRICS or not isinstance(c, str) else {"name": c} for c in v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Hypothesis:
        for m in (self.measure, self.target, *self.confounds):
            if isinstance(m, MeasureRef) and m.name not in MEASURES:
                raise ValueError(f"unknown measure {m.name!r}; allowed: {', '.join(sorted(MEASURES))}")
        self._check_relation_kind()
        if self.measure_key == self.target_key and self.relation.across != "seeds":
            raise ValueError(f"measure and target are both {self.target_key!r}: only relation.across 'seeds' (a "
                             "statistic across seeds against the seed-mean) can relate a value to itself")
        if self.relation.over == "settings":
            for i, group in enumerate((*self.scope, *self.held_out)):
                if len(group.base_settings()) < 3:
                    raise ValueError(f"relation.over 'settings' needs a sweep of ≥ 3 settings per group "
                                     f"(group {i} has fewer)")
        for i, spec in enumerate(self.interventions):
            if spec.kind == "regularizer":
                for group in self.scope:
                    for setting in group.base_settings():
                        spec.check_field(setting, group.sweep, f"interventions.{i}")
        return self

    def _check_relation_kind(self) -> None:
        """One line naming the field when a relation field does not fit the chosen kind, or a group or
        intervention cannot be evaluated with it (never a silent pass)."""
        rel, default = self.relation, Relation()
        if rel.across == "none" and rel.statistic == "peak":
            raise ValueError("relation.statistic 'peak' needs relation.across 'seeds'; allowed without it: 'spearman'")
        if rel.across == "none" and rel.seed_statistic != default.seed_statistic:
            raise ValueError("relation.seed_statistic applies only with relation.across 'seeds'")
        if rel.statistic != "peak" and rel.peak_steps != default.peak_steps:
            raise ValueError("relation.peak_steps applies only with relation.statistic 'peak'")
        if rel.statistic == "peak" and (rel.threshold != default.threshold or self.confound_threshold is not None):
            which = "relation.threshold" if rel.threshold != default.threshold else "confound_threshold"
            raise ValueError(f"{which} applies to relation.statistic 'spearman'; a 'peak' claim and its confound "
                             "test are decided by relation.peak_steps")
        if rel.across != "seeds":
            return
        if rel.over != "settings":
            raise ValueError("relation.across 'seeds' needs relation.over 'settings': M and T are read per setting "
                             "of a sweep, at each run's final step")
        for i, spec in enumerate(self.interventions):
            if spec.kind != "regularizer":
                raise ValueError(f"interventions.{i}.kind {spec.kind!r}: with relation.across 'seeds' only kind "
                                 "'regularizer' is allowed (M is a statistic across seeds; a transformation of one "
                                 "run's checkpoint has no M of its own to move)")
        groups = [("scope", i, g, len(g.seeds)) for i, g in enumerate(self.scope)]
        groups += [("held_out", i, g, g.n_seeds) for i, g in enumerate(self.held_out)]
        for where, i, group, n in groups:
            if n < 3:
                raise ValueError(f"{where}.{i}: relation.across 'seeds' needs ≥ 3 seeds per group, got {n}")
            values = next(iter(group.sweep.values()), [])
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            ordered = numbers and values in (sorted(set(values)), sorted(set(values), reverse=True))
            if rel.statistic == "peak" and (len(group.sweep) != 1 or not ordered):
                raise ValueError(f"{where}.{i}.sweep: relation.statistic 'peak' counts grid steps, so it needs one "
                                 "swept field whose values are numbers in increasing or decreasing order")

    # ---- identity (`id`, `canonical_json`: ContentAddressed) -------------------------------------
    @property
    def measure_key(self) -> str:
        return self.measure if isinstance(self.measure, str) else self.measure.key

    @property
    def target_key(self) -> str:
        return self.target if isinstance(self.target, str) else self.target.key

    @property
    def confound_keys(self) -> list[str]:
        return [c if isinstance(c, str) else c.key for c in self.confounds]

    @property
    def min_partial(self) -> float:
        return self.confound_threshold if self.confound_threshold is not None else self.relation.threshold

    @property
    def function_preserving(self) -> tuple[Intervention, ...]:
        return tuple(i for i in self.interventions if i.kind in FUNCTION_PRESERVING)

    @property
    def regularizers(self) -> tuple[Intervention, ...]:
        return tuple(i for i in self.interventions if i.kind == "regularizer")

    def held_out_seeds(self, n: int) -> list[int]:
        """Seeds nobody could have chosen before registration: derived from the content hash."""
        base = 1000 + int(self.id[:6], 16) % 10**6
        return [base + i for i in range(n)]

    # ---- the settings runs are trained under --------------------------------------------------
    def measured(self, setting: Setting) -> Setting:
        """`setting` recording M, the measure confounds and a measure target, with a final checkpoint
        when function-preserving interventions are named (a different setting id than the bare one)."""
        refs = [r.spec for r in (self.measure, self.target, *self.confounds) if isinstance(r, MeasureRef)]
        return recording(setting, refs, final_checkpoint=bool(self.function_preserving))

    def scope_settings(self) -> list[list[Setting]]:
        return [[self.measured(s) for s in g.base_settings()] for g in self.scope]

    def held_out_settings(self) -> list[list[Setting]]:
        return [[self.measured(s) for s in g.base_settings()] for g in self.held_out]

    def regularized_settings(self) -> list[list[list[Setting]]]:
        """Per scope group, per setting: its variants under each regularizer value, in the order
        (intervention, value); the unmodified setting with one field changed, so M is recorded alike."""
        return [[[s.with_overrides({r.field: v}) for r in self.regularizers for v in r.values] for s in g]
                for g in self.scope_settings()]

    def frozen_setting_ids(self) -> dict[str, Any]:
        """The setting ids frozen at registration; "regularizer" only when one is named, so the
        registrations of other hypotheses look as before."""
        out: dict[str, Any] = {"scope": [[s.id for s in g] for g in self.scope_settings()],
                               "held_out": [[s.id for s in g] for g in self.held_out_settings()]}
        if self.regularizers:
            out["regularizer"] = [[[v.id for v in variants] for variants in g] for g in self.regularized_settings()]
        return out


def recording(setting: Setting, specs: list[MeasureSpec], final_checkpoint: bool) -> Setting:
    """`setting` also recording the measures `specs` (each once, after its own), and keeping its
    final parameters when `final_checkpoint` (for function-preserving interventions)."""
    measures = list(setting.measures)
    measures += [s for i, s in enumerate(specs) if s not in measures and s not in specs[:i]]
    over: dict[str, Any] = {"measures": [s.model_dump(mode="json") for s in measures]}
    if final_checkpoint and setting.checkpoints == "none":
        over["checkpoints"] = "final"
    return setting.with_overrides(over)


def validate_hypothesis(data: dict[str, Any]) -> Hypothesis:
    """Validate a mapping into a Hypothesis, or raise SettingError with one line naming the field."""
    if not isinstance(data, dict):
        raise SettingError("invalid hypothesis: expected a mapping with name, statement, measure, target, scope")
    try:
        return Hypothesis.model_validate(data)
    except ValidationError as exc:
        raise SettingError(validation_line("hypothesis", exc, "MeasureRef")) from None


def validation_line(kind: str, exc: ValidationError, ref: str) -> str:
    """A pydantic error on a registered file as one line naming the field (`ref`: the class name
    prefix of union members pydantic puts in the path, left out)."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("function-", "str", ref)))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"invalid {kind}: {loc + ': ' if loc else ''}{msg}{more}"


def load_hypothesis(path: str | Path) -> Hypothesis:
    """Read a YAML, TOML or JSON hypothesis. A group's `setting` that names a file is inlined (its
    content, not its path, enters the hash)."""
    p = Path(path)
    data = load_mapping_file(p, "hypothesis")
    if isinstance(data, dict):
        for section in ("scope", "held_out"):
            for group in data.get(section) or []:
                ref = group.get("setting") if isinstance(group, dict) else None
                if isinstance(ref, str) and Path(ref).suffix in FILE_FORMATS:
                    group["setting"] = load_setting_file(p.parent / ref if not Path(ref).is_absolute() else ref)
    return validate_hypothesis(data)
