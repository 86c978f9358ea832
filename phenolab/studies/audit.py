"""The checklist's confounds as measurements: does a phenomenon survive another metric, another
initialization scale, regularization, and the variations it has been claimed for?

The position paper's Table 1 asks "Have I controlled for confounding factors like metric choice,
initialization scale, or overfitting?" and "In which modalities, architectures, optimizers, etc.
has it been observed thus far?". `audit` answers from runs, not from papers: it trains (or reuses)
the setting with the measures its phenomenon's re-reading needs, then each control, all in one
sweep, and reads the phenomenon under each with the rule the phenomenon declares
(`Phenomenon.audit` → `AuditSpec`): its size, mean ± sd over seeds, or absent. A control's outcome
against the base setting: *survives* (present, not smaller by more than twice the standard error
of the difference), *weakens* (present, smaller: by how much, ± that standard error), *vanishes*
(absent), or, when the base setting has no phenomenon, "not present in the base setting" for every
row: nothing is invented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from phenolab.catalog import Catalog
from phenolab.phenomena import AuditReading, AuditSpec, Options, Phenomenon, Study, Trainer
from phenolab.settings import Setting, SettingError

NOT_PRESENT = "not present in the base setting"


@dataclass(frozen=True)
class Control:
    """One row of an audit: which confound it controls, what changed, and (for a retrained control)
    the setting fields it sets; a re-reading of the base runs has no fields."""

    kind: str  # "base", "metric", "init scale", "regularization", "variation"
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)
    metric: str | None = None  # re-read the base runs under this metric
    early_stopping: bool = False  # re-read the base runs' best evaluated test error
    options: dict[str, Any] = field(default_factory=dict)  # the phenomenon's options it retrains with


@dataclass
class AuditRow:
    control: Control
    reading: AuditReading
    outcome: str
    change: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.control.kind, "control": self.control.label, "overrides": self.control.overrides,
                "present": self.reading.present, "size": self.reading.size, "detail": self.reading.detail,
                "available": self.reading.available, "outcome": self.outcome, "change": self.change}


@dataclass
class AuditPlan:
    phenomenon: Phenomenon
    setting_name: str
    spec: AuditSpec
    base: Study
    controls: list[tuple[Control, Study | None]]  # a retrained control's study; None: re-read the base
    overrides: dict[str, Any] = field(default_factory=dict)  # the user's `--set` fields

    def studies(self) -> list[Study]:
        """The base and every retrained control."""
        return [self.base, *[s for _, s in self.controls if s is not None]]


def plan_audit(ph: Phenomenon, setting_name: str, seeds: list[int], overrides: dict[str, Any], quick: bool = False,
               options: Options | None = None) -> AuditPlan:
    """The audit's studies, every one built (so every input is checked) before any training."""
    options = ph.parse_options(options)
    plain = ph.study(setting_name, seeds, overrides, quick, options)
    spec = ph.audit(setting_name, plain.settings[0])
    if spec is None:
        raise SettingError(f"audit: {ph.name} declares no audit (Phenomenon.audit)")
    extra = _with_measures(plain.settings[0], spec.measures)
    base = ph.study(setting_name, seeds, {**overrides, **extra}, quick, options)
    controls: list[tuple[Control, Study | None]] = [(Control("base", "the setting as it is"), None)]
    controls += [(Control("metric", m, metric=m), None) for m in spec.metrics]
    setting = base.settings[0]
    scale = getattr(setting.model, "init_scale", None)
    for f in spec.init_factors if scale is not None else ():
        controls.append((Control("init scale", f"× {f:g} (init_scale {scale * f:g})",
                                 {"model.init_scale": scale * f}), None))
    for wd in spec.weight_decays:
        controls.append((Control("regularization", f"weight decay {wd:g}", {"optim.weight_decay": wd}), None))
    if spec.early_stopping is not None:
        controls.append((Control("regularization", "optimal early stopping (each run's best step)",
                                 early_stopping=True), None))
    controls += [(Control("regularization", label, options=opts), None) for label, opts in spec.regularizer_options]
    controls += [(Control("variation", label, over), None) for label, over in spec.variations]
    built: list[tuple[Control, Study | None]] = []
    for control, _ in controls:
        study = None
        if control.overrides or control.options:
            own = ph.parse_options({**options.model_dump(), **control.options}) if control.options else options
            try:
                study = ph.study(setting_name, seeds, {**overrides, **extra, **control.overrides}, quick, own)
            except SettingError as exc:
                raise SettingError(f"audit control {control.label!r}: {exc}") from None
        built.append((control, study))
    return AuditPlan(ph, setting_name, spec, base, built, dict(overrides))


def _with_measures(setting: Setting, measures: tuple[Any, ...]) -> dict[str, Any]:
    """`--set measures=[...]`: the setting's own measures and the audit's, once each."""
    if not measures:
        return {}
    own = [m.model_dump(mode="json") for m in setting.measures]
    return {"measures": own + [m for m in measures if m not in own]}


def train_audit(plan: AuditPlan, trainer: Trainer) -> list[str]:
    """Train what the catalog lacks: the base and every retrained control, in one sweep (staged
    phenomena study by study)."""
    return trainer.studies(plan.phenomenon, plan.studies())


def read_audit(plan: AuditPlan, catalog: Catalog) -> list[AuditRow]:
    """Each control's reading and its outcome against the base."""
    ph, spec = plan.phenomenon, plan.spec
    base_sig = ph.signature(catalog, plan.base)
    base = spec.read(base_sig)
    rows = []
    for control, study in plan.controls:
        if control.kind == "base":
            reading = base
        elif control.metric is not None:
            reading = spec.rescore(catalog, plan.base, control.metric) if spec.rescore else \
                AuditReading(False, detail="no re-reading declared", available=False)
        elif control.early_stopping:
            reading = spec.early_stopping(base_sig)  # type: ignore[misc]
        else:
            assert study is not None
            reading = spec.read(ph.signature(catalog, study))
        outcome, change = judge(base, reading, control.kind == "base")
        rows.append(AuditRow(control, reading, outcome, change))
    return rows


def judge(base: AuditReading, reading: AuditReading, is_base: bool = False) -> tuple[str, str]:
    """The control's outcome against the base (see the module doc) and, for a weaker phenomenon,
    the change of its size with the standard error of that difference."""
    if not base.present:
        return NOT_PRESENT, ""
    if is_base:
        return "present", ""
    if not reading.available:
        return "not available", ""
    if not reading.present or reading.size is None:
        return "vanishes", ""
    b, r = base.size or {}, reading.size
    if not reading.comparable or b.get("mean") is None or r.get("mean") is None:
        return "survives", ""
    diff = r["mean"] - b["mean"]
    se = math.sqrt(_var_of_mean(b) + _var_of_mean(r))
    pct = f" ({100 * diff / b['mean']:+.0f}%)" if b["mean"] else ""
    change = f"{diff:+.3g} ± {se:.2g}{pct}"
    return ("weakens" if diff < -2 * se else "survives"), change


def _var_of_mean(s: dict[str, Any]) -> float:
    n, sd = s.get("n") or 1, s.get("sd") or 0.0
    return float(sd) ** 2 / max(int(n), 1)


def audit_note(plan: AuditPlan, rows: list[AuditRow]) -> dict[str, Any]:
    """What the catalog keeps of an audit (a note of kind "audit")."""
    return {"phenomenon": plan.phenomenon.name, "setting": plan.setting_name, "seeds": plan.base.seeds,
            "setting_id": plan.base.settings[0].id, "size": plan.spec.size_name,
            "overrides": plan.overrides, "options": plan.base.options.model_dump(mode="json", exclude_defaults=True),
            "rows": [r.as_dict() for r in rows]}
