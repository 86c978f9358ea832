"""A tournament as data: competing explanations of one phenomenon, scored on the same held-out runs.

One explanation at a time can pass its own test and still predict less than "how long it trained"
or "how large the weights are" (position paper §3.2: a narrow ad hoc hypothesis fits the data it
was made on; §5.2: compare explanations, pre-register). So a tournament names, before any of its
held-out runs exist: the target, the explanations (a recorded quantity or a named combination of
them, each with the direction its source claims), the scope every predictor is fitted on, the
held-out settings and seeds all are scored on, the scoring rule, and two trivial baselines every
explanation must beat: time (the training step, or the capacity of a sweep) and magnitude (the
weight norm). Its id is a content hash, as for hypotheses; a change is a new tournament that
`supersedes` the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from phenolab.engine import measure_key
from phenolab.hypotheses.spec import (
    FUNCTION_PRESERVING,
    METRICS,
    Intervention,
    ScopeGroup,
    SettingGroup,
    recording,
    validation_line,
)
from phenolab.settings import MEASURES, MeasureSpec, Setting, SettingError, load_setting_file, unknown_name
from phenolab.settings._canonical import ContentAddressed
from phenolab.settings._parse import FILE_FORMATS, load_mapping_file

ID_PREFIX = b"phenolab.tournament/1\n"
STEP = "step"
DERIVED = {"test_error": "test_acc", "train_error": "train_acc"}  # 1 − the accuracy
BASELINES = ("time", "magnitude")
SEED_STATISTICS = ("none", "variance", "sd", "mad")
OPS = {"ratio": 2, "log_ratio": 2, "abs_log_ratio": 2, "product": 2, "difference": 2, "log": 1, "abs_log": 1}
SLUG = r"^[a-z0-9][a-z0-9_.-]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ref(_Frozen):
    """One value per evaluation point: the step, a recorded metric (or an error, 1 − its accuracy),
    a registered measure with its parameters, or a numeric setting field. In a file: `step`,
    `test_acc`, `test_error`, `weight_norm`, `{name: prime_parameter_count, params: {scale: 10}}`
    or `{field: model.width}`."""

    kind: Literal["step", "metric", "measure", "field"]
    name: str
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, str):
            kind = "step" if v == STEP else "metric" if v in METRICS or v in DERIVED else "measure"
            return {"kind": kind, "name": v}
        if isinstance(v, dict) and "kind" not in v:
            if "field" in v:
                return {"kind": "field", "name": v["field"], **{k: x for k, x in v.items() if k != "field"}}
            return {"kind": "measure", **v}
        return v

    @model_validator(mode="after")
    def _known(self) -> Ref:
        if self.params and self.kind != "measure":
            raise ValueError(f"{self.name!r} is a {self.kind} and takes no params")
        if self.kind == "metric" and self.name not in (*METRICS, *DERIVED):
            raise ValueError(unknown_name("metric", self.name, [*METRICS, *DERIVED]))
        if self.kind == "measure":
            if self.name not in MEASURES:
                raise ValueError(unknown_name("measure or metric", self.name,
                                              sorted([*MEASURES, *METRICS, *DERIVED, STEP])))
            extra = sorted(set(self.params) - MEASURES[self.name])
            if extra:
                raise ValueError(f"measure {self.name!r} has no parameter {extra[0]!r}; allowed: "
                                 f"{', '.join(sorted(MEASURES[self.name])) or 'none'}")
        return self

    @property
    def spec(self) -> MeasureSpec | None:
        return MeasureSpec(name=self.name, params=self.params) if self.kind == "measure" else None

    @property
    def key(self) -> str:
        """The curve it is read from (a field or the step: its name)."""
        if self.kind == "measure":
            return measure_key(MeasureSpec(name=self.name, params=self.params))
        return DERIVED.get(self.name, self.name) if self.kind == "metric" else self.name

    @property
    def label(self) -> str:
        return self.key if self.kind == "measure" else self.name

    @property
    def reads_test_labels(self) -> bool:
        """Whether the value needs the test set's labels (a label-free explanation does not)."""
        if self.kind == "metric":
            return self.name.startswith("test_")
        return self.kind == "measure" and self.params.get("split", "test") == "test" and self.name in (
            "prob_correct", "brier", "modular_distance")


class Combination(_Frozen):
    """A named function of recorded values, e.g. the distance to the interpolation threshold
    |log(p / n)| = `{op: abs_log_ratio, of: [{field: model.num_features}, {field: task.train_size}]}`."""

    op: Literal["ratio", "log_ratio", "abs_log_ratio", "product", "difference", "log", "abs_log"]
    of: tuple[Ref, ...]

    @model_validator(mode="after")
    def _arity(self) -> Combination:
        if len(self.of) != OPS[self.op]:
            raise ValueError(f"op {self.op!r} takes {OPS[self.op]} value(s) in `of`, got {len(self.of)}")
        return self


class Explanation(_Frozen):
    """One competitor: what it measures, the direction its source claims (the target rises with it:
    positive), how its monotone map to the target is fitted, and what its source says."""

    name: str = Field(pattern=SLUG, max_length=60)
    measure: Ref | None = None
    combine: Combination | None = None
    seed_statistic: Literal["none", "variance", "sd", "mad"] = Field(
        "none", description="the statistic over each setting's seeds of the value (variance across seeds)")
    direction: Literal["positive", "negative"]
    fit: Literal["isotonic", "linear", "log-linear"] = "isotonic"
    source: str = ""
    claim: str = ""

    @model_validator(mode="after")
    def _one_value(self) -> Explanation:
        if (self.measure is None) == (self.combine is None):
            raise ValueError("give exactly one of `measure` (a recorded value) and `combine` (a combination)")
        return self

    @property
    def refs(self) -> tuple[Ref, ...]:
        return (self.measure,) if self.measure is not None else self.combine.of  # type: ignore[union-attr]

    @property
    def label(self) -> str:
        """The quantity, as a table shows it."""
        inner = self.measure.label if self.measure is not None else (
            f"{self.combine.op}({', '.join(r.label for r in self.combine.of)})")  # type: ignore[union-attr]
        return inner if self.seed_statistic == "none" else f"{self.seed_statistic} over seeds of {inner}"


@dataclass(frozen=True)
class Competitor:
    """An explanation or a baseline, as the fit and the scores see it (a baseline claims no
    direction: its map takes the direction the scope shows)."""

    name: str
    role: Literal["explanation", "baseline"]
    value: Explanation
    direction: Literal["positive", "negative", "auto"]


class Baselines(_Frozen):
    """The two trivial predictors: time (the step over training; the capacity across a sweep) and
    magnitude (the weight norm)."""

    time: Ref = Ref(kind="step", name=STEP)
    magnitude: Ref = Ref(kind="measure", name="weight_norm")


class HeldOut(SettingGroup):
    """Settings every predictor is scored on. Seeds: `seeds`, or `n_seeds` derived from the
    tournament's hash (nobody could have trained them before its content was fixed)."""

    n_seeds: int = Field(3, ge=1, le=1000)
    seeds: tuple[int, ...] | None = None

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v: Any) -> Any:
        return list(range(v)) if isinstance(v, int) and v >= 1 else v


class Scoring(_Frozen):
    """How the leaderboard is ranked and how sure it is: the error of the predicted target
    (`mae` or `rmse`), bootstrap resamples of the seeds, and the family-wise level of the
    pairwise comparisons (Holm)."""

    rank_by: Literal["mae", "rmse"] = "mae"
    n_boot: int = Field(10_000, ge=100, le=1_000_000)
    alpha: float = Field(0.05, gt=0, lt=1)


class Tournament(ContentAddressed, _Frozen):
    """Competing explanations of one phenomenon, fitted on the scope, frozen, scored held-out."""

    id_prefix: ClassVar[bytes] = ID_PREFIX

    name: str = Field(pattern=SLUG, max_length=80)
    statement: str = Field(min_length=1)
    phenomenon: str
    target: Ref
    read: Literal["steps", "final"] = Field("steps", description="every recorded step of a run, or its last")
    explanations: tuple[Explanation, ...] = Field(min_length=1)
    baselines: Baselines = Baselines()
    scope: tuple[ScopeGroup, ...] = Field(min_length=1)
    held_out: tuple[HeldOut, ...] = Field(min_length=1)
    interventions: tuple[Intervention, ...] = ()
    scoring: Scoring = Scoring()
    supersedes: str | None = None
    source: str = ""

    @field_validator("phenomenon")
    @classmethod
    def _phenomenon(cls, v: str) -> str:
        from phenolab.phenomena import PHENOMENA

        if v not in PHENOMENA:
            raise ValueError(unknown_name("phenomenon", v, sorted(PHENOMENA)))
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Tournament:
        if self.target.kind in ("step", "field"):
            raise ValueError(f"target: {self.target.name!r} is a {self.target.kind}; allowed: a recorded metric "
                             f"({', '.join([*METRICS, *DERIVED])}) or a measure")
        names = [e.name for e in self.explanations]
        for i, name in enumerate(names):
            if name in BASELINES or name in names[:i]:
                why = "is a baseline's name" if name in BASELINES else "is used twice"
                raise ValueError(f"explanations.{i}.name: {name!r} {why}; names must be unique and not "
                                 f"{' or '.join(BASELINES)}")
        if self.read == "final" and self.baselines.time.kind == "step":
            raise ValueError("baselines.time: with read 'final' every run ends at its last step, so time is the "
                             "capacity: name a setting field (e.g. {field: model.width}) or parameter_count")
        for i, spec in enumerate(self.interventions):
            if spec.kind not in FUNCTION_PRESERVING:
                raise ValueError(f"interventions.{i}.kind {spec.kind!r}: allowed: {', '.join(FUNCTION_PRESERVING)}")
        for i, e in enumerate(self.explanations):
            if e.seed_statistic != "none" and min(self._seed_counts()) < 2:
                raise ValueError(f"explanations.{i}.seed_statistic: needs ≥ 2 seeds in every scope and held-out group")
            if e.measure is not None and e.measure.key == self.target.key and e.seed_statistic == "none":
                raise ValueError(f"explanations.{i}.measure: the target itself predicts nothing; only its statistic "
                                 "over seeds (seed_statistic) may be read")
        self._check_settings()
        return self

    def _seed_counts(self) -> list[int]:
        return [len(g.seeds) for g in self.scope] + [len(g.seeds) if g.seeds else g.n_seeds for g in self.held_out]

    def _check_settings(self) -> None:
        """Every group resolves, every field a value names is a number there, and no held-out
        setting is also a scope setting (it would be scored on what it was fitted on)."""
        fields = {r.name for c in self.competitors() for r in c.value.refs if r.kind == "field"}
        scope_ids: set[str] = set()
        for section, groups in (("scope", self.scope), ("held_out", self.held_out)):
            for i, group in enumerate(groups):
                try:
                    settings = [self.measured(s) for s in group.base_settings()]
                except SettingError as exc:
                    raise ValueError(f"{section}.{i}: {str(exc).removeprefix('invalid setting: ')}") from None
                for s in settings:
                    for f in fields:
                        try:
                            float(field_value(s, f))
                        except (KeyError, TypeError, ValueError):
                            raise ValueError(f"{section}.{i}: {f!r} is not a numeric field of its setting") from None
                    if section == "scope":
                        scope_ids.add(s.id)
                    elif s.id in scope_ids:
                        raise ValueError(f"held_out.{i}: setting {s.id} is also in the scope; a held-out setting "
                                         "must differ from every scope setting")

    # ---- what is compared -------------------------------------------------------------------
    def competitors(self) -> list[Competitor]:
        """The explanations, then the baselines (time, magnitude)."""
        out = [Competitor(e.name, "explanation", e, e.direction) for e in self.explanations]
        for name in BASELINES:
            ref: Ref = getattr(self.baselines, name)
            out.append(Competitor(name, "baseline", Explanation(name=name, measure=ref, direction="positive"), "auto"))
        return out

    def refs(self) -> list[Ref]:
        """Every recorded value the tournament reads: target, explanations, baselines."""
        out = [self.target, *(r for c in self.competitors() for r in c.value.refs)]
        return list({r.model_dump_json(): r for r in out}.values())

    # ---- the settings runs are trained under ------------------------------------------------
    def measured(self, setting: Setting) -> Setting:
        """`setting` recording every measure the tournament reads, with a final checkpoint when
        interventions are named (another setting id than the bare one)."""
        return recording(setting, [r.spec for r in self.refs() if r.spec is not None],
                         final_checkpoint=bool(self.interventions))

    def scope_settings(self) -> list[list[Setting]]:
        return [[self.measured(s) for s in g.base_settings()] for g in self.scope]

    def held_out_settings(self) -> list[list[Setting]]:
        return [[self.measured(s) for s in g.base_settings()] for g in self.held_out]

    def scope_seeds(self) -> list[list[int]]:
        return [list(g.seeds) for g in self.scope]

    def held_out_seeds(self) -> list[list[int]]:
        """Per held-out group: its own seeds, or seeds derived from the content hash."""
        base = 1000 + int(self.id[:6], 16) % 10**6
        return [list(g.seeds) if g.seeds else [base + i for i in range(g.n_seeds)] for g in self.held_out]

    def frozen_setting_ids(self) -> dict[str, list[list[str]]]:
        return {"scope": [[s.id for s in g] for g in self.scope_settings()],
                "held_out": [[s.id for s in g] for g in self.held_out_settings()]}


def field_value(setting: Setting, path: str) -> Any:
    """A dotted field of a setting, e.g. model.width (KeyError when there is none)."""
    node: Any = setting.model_dump(mode="json")
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def validate_tournament(data: Any) -> Tournament:
    """Validate a mapping into a Tournament, or raise SettingError: one line naming the field."""
    if not isinstance(data, dict):
        raise SettingError("invalid tournament: expected a mapping with name, statement, phenomenon, target, "
                           "explanations, scope, held_out")
    try:
        return Tournament.model_validate(data)
    except ValidationError as exc:
        raise SettingError(validation_line("tournament", exc, "Ref")) from None


def load_tournament(path: str | Path) -> Tournament:
    """Read a YAML, TOML or JSON tournament; a group's `setting` that names a file is inlined."""
    p = Path(path)
    data = load_mapping_file(p, "tournament")
    if isinstance(data, dict):
        for section in ("scope", "held_out"):
            groups = data.get(section)
            for group in groups if isinstance(groups, list) else []:
                ref = group.get("setting") if isinstance(group, dict) else None
                if isinstance(ref, str) and Path(ref).suffix in FILE_FORMATS:
                    group["setting"] = load_setting_file(p.parent / ref if not Path(ref).is_absolute() else ref)
    return validate_tournament(data)
