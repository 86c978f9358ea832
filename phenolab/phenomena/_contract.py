"""The contract a phenomenon (or any reproducible study) meets, as types.

A phenomenon is one package. It declares, as data: its canonical settings (`Canonical`: the
setting, its source and the numbers the source published), its options (`Options`, a pydantic
model: the CLI builds `reproduce` and `phase` flags and help from its fields) and its signature's
fields (`SignatureField`: a description and unit each, so tables, JSON and the report explain
themselves). It implements `study` (the runs a reproduction needs), `signature` and `figure` (both
read from the catalog only, so they can be regenerated), optionally `run_signature` (one run's
signature from its curves, which phase diagrams read fast), and, only if it trains in stages (the
lottery's rounds), `train` and `staged_work`. Nothing outside its folder names it: the registry
(`phenolab.phenomena.register_phenomenon`) is how the CLI, phase maps and the report find it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from phenolab.catalog import Catalog
from phenolab.settings import Setting, SettingError

Curves = dict[str, tuple[np.ndarray, np.ndarray]]  # metric -> (steps, values) of one run
TrainMissing = Callable[[list[Setting], list[int]], list[str]]  # (settings, seeds) -> run ids written
StagedProgress = Callable[[int, int], None]  # (optimizer steps, runs) done of `staged_work`


@dataclass(frozen=True)
class Canonical:
    """A canonical setting, named after its source: the setting as data, where it comes from, what
    the source reports (to print beside the measured signature) and `--quick`'s shorter budget."""

    name: str
    setting: Mapping[str, Any]
    source: str
    description: str
    published: str = ""
    quick: Mapping[str, Any] = field(default_factory=dict)  # overrides of `--quick` ({}: none)
    quick_note: str = ""


class Options(BaseModel):
    """A phenomenon's own options. Each field is a `reproduce`/`phase` flag (`rewind_step` →
    `--rewind-step`), its description the flag's help; a subclass with no fields has no flags."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class SignatureField:
    """One field of a signature: a summary key or a per-run key. `name` may hold `*` for keys made
    per round or variant (`r* ticket`); `categories` orders a text field's values."""

    name: str
    description: str
    unit: str = ""
    categories: tuple[str, ...] = ()
    phase: bool = True  # a phase diagram may map it (False: bookkeeping, or a count over the study)

    @property
    def is_pattern(self) -> bool:
        return "*" in self.name


class Fields:
    """An ordered set of signature fields, looked up by key (exact names first, then patterns)."""

    def __init__(self, *fields: SignatureField):
        self.fields = tuple(fields)
        self._exact = {f.name: f for f in fields if not f.is_pattern}
        self._patterns = [f for f in fields if f.is_pattern]

    def __add__(self, other: Fields) -> Fields:
        return Fields(*self.fields, *other.fields)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def get(self, key: str) -> SignatureField | None:
        return self._exact.get(key) or next((f for f in self._patterns if fnmatch.fnmatchcase(key, f.name)), None)

    def names(self) -> tuple[str, ...]:
        """The exact field names, in declaration order."""
        return tuple(self._exact)

    def mappable(self) -> tuple[str, ...]:
        """The fields a phase diagram may map (`phase --metric`)."""
        return tuple(n for n, f in self._exact.items() if f.phase)

    def explain(self, keys: list[str] | tuple[str, ...]) -> dict[str, dict[str, str]]:
        """{key: {"description", "unit"}} for every declared key among `keys` (JSON's `fields`)."""
        out = {}
        for key in keys:
            f = self.get(key)
            if f is not None:
                out[key] = {"description": f.description, "unit": f.unit}
        return out


@dataclass
class RowTable:
    """A table a signature adds under its summary (e.g. one row per capacity)."""

    title: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]


@dataclass
class Signature:
    """What a phenomenon measured on a study's runs: `summary` (a field → mean ± sd over seeds as
    `{"mean", "sd", "n"}`, or a value), one row per run, and what else it read (`extra`, stored with
    the study; its `output` keys are also printed by `--json`; `tables` are printed under it)."""

    setting: str
    summary: dict[str, Any]
    per_run: list[dict[str, Any]]
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    output: tuple[str, ...] = ()
    tables: tuple[RowTable, ...] = ()

    def stored(self) -> dict[str, Any]:
        """The study note's payload (everything but the per-run rows)."""
        return {"setting": self.setting, "note": self.note, "summary": self.summary, **self.extra}


@dataclass
class Study:
    """The runs a reproduction needs: settings (one, or one per width, round, variant…) × seeds.
    A phenomenon that derives more from its options (a sweep's axis, a lottery plan) subclasses it."""

    phenomenon: str
    setting_name: str
    settings: list[Setting]
    seeds: list[int]
    quick: bool = False
    note: str = ""
    options: Options = field(default_factory=Options)
    overrides: dict[str, Any] = field(default_factory=dict)  # the `--set` fields it was built with


@dataclass
class Trainer:
    """How a study's runs are trained: `missing(settings, seeds)` plans, trains and stores what the
    catalog lacks (the caller picks the executor and draws the progress bar); staged training
    reports `(steps, runs)` to `progress` and trains on `device`."""

    catalog: Catalog
    missing: TrainMissing
    device: str = "auto"
    progress: StagedProgress | None = None

    @classmethod
    def local(cls, catalog: Catalog, device: str = "auto") -> Trainer:
        """Train in this process, without a progress bar."""
        from phenolab.execute import plan_batches, run_local

        def missing(settings: list[Setting], seeds: list[int]) -> list[str]:
            return run_local(plan_batches(settings, seeds, catalog), catalog, device=device)

        return cls(catalog, missing, device)

    def studies(self, rep: Reproducible, studies: list[Study]) -> list[str]:
        """Train what the catalog lacks of several studies of one phenomenon (a phase map's cells, an
        audit's controls): all their settings in one sweep per seed list (cells of ensembles of
        other sizes have other member seeds), so cells that differ only per replica share
        programs, unless the phenomenon trains in stages (then study by study)."""
        if type(rep).train is Reproducible.train:  # one sweep per seed list (ensembles of M members: M·N seeds)
            by_seeds: dict[tuple[int, ...], dict[str, Setting]] = {}
            for st in studies:
                by_seeds.setdefault(tuple(st.seeds), {}).update({s.id: s for s in st.settings})
            return [r for seeds, group in by_seeds.items() for r in self.missing(list(group.values()), list(seeds))]
        return [r for st in studies for r in rep.train(st, self)]


@dataclass(frozen=True)
class AuditReading:
    """How big a phenomenon is under one control: `size` is mean ± sd over seeds (`{"mean", "sd",
    "n"}`) when it is present, None when it is not; `available` is False when the control does not
    apply (a metric the runs cannot be re-read under, a model without the field); `comparable` is
    False when `size` is in other units than the base reading's, so only presence is compared."""

    present: bool
    size: dict[str, Any] | None = None
    detail: str = ""
    available: bool = True
    comparable: bool = True  # False: `size` is in other units than the base's (another metric's scale)


@dataclass(frozen=True)
class AuditSpec:
    """What `phenolab audit` asks of a phenomenon (the position paper's Table 1 confounds): how big
    it is in a signature (`read`), the metrics its runs can be re-read under without training
    (`rescore`, with the `measures` the base runs must record for it), an early-stopping reading
    from the stored curves, and the settings of its controls: init scale factors, weight decays and
    the variations ("modalities, architectures, optimizers") it has been claimed for."""

    size_name: str  # what `size` is, e.g. "t_test / t_train"
    read: Callable[[Signature], AuditReading]
    metrics: tuple[str, ...] = ()
    rescore: Callable[[Catalog, Study, str], AuditReading] | None = None
    measures: tuple[Any, ...] = ()  # measure specs the base runs record so that `rescore` needs no training
    early_stopping: Callable[[Signature], AuditReading] | None = None
    init_factors: tuple[float, ...] = (0.25, 4.0, 8.0)
    weight_decays: tuple[float, ...] = ()
    variations: tuple[tuple[str, dict[str, Any]], ...] = ()
    # regularization controls that are the phenomenon's own options (label, options), e.g. double
    # descent's optimally tuned ridge, whose penalty differs from cell to cell of the sweep
    regularizer_options: tuple[tuple[str, dict[str, Any]], ...] = ()


@dataclass(frozen=True)
class RunSignature:
    """One run's signature from its curves alone (`metrics` are the curves it reads): phase
    diagrams read every cell's runs with it in one catalog query."""

    metrics: tuple[str, ...]
    fn: Callable[[Curves], dict[str, Any]]


class Reproducible:
    """What `phenolab reproduce NAME` runs: a phenomenon, or a study of its own (a paper's figure)."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""  # one line: what it is and where it comes from (the CLI's help)
    options_model: ClassVar[type[Options]] = Options
    canonical: ClassVar[tuple[Canonical, ...]] = ()

    def study(self, setting_name: str, seeds: list[int], overrides: dict[str, Any], quick: bool = False,
              options: Options | None = None) -> Study:
        raise NotImplementedError

    def train(self, study: Study, trainer: Trainer) -> list[str]:
        """Train what the catalog lacks; default: every setting × seed through `trainer.missing`."""
        return trainer.missing(study.settings, study.seeds)

    def staged_work(self, study: Study) -> tuple[int, int] | None:
        """(runs, optimizer steps) that `train` trains itself in stages, for the caller's progress
        bar (it reports to `trainer.progress`); None when everything goes through `missing`."""
        return None

    def signature(self, catalog: Catalog, study: Study) -> Signature:
        raise NotImplementedError

    def figure(self, catalog: Catalog, study: Study, out: Path) -> Path:
        raise NotImplementedError

    def fields(self, setting_name: str) -> Fields:
        """The signature's fields for this setting (descriptions, units, what `phase` may map)."""
        return Fields()

    def parse_options(self, given: Mapping[str, Any] | Options | None = None) -> Options:
        """`given` validated into this phenomenon's options, or a one-line SettingError naming the flag."""
        if isinstance(given, self.options_model):
            return given
        if isinstance(given, Options):
            given = given.model_dump()
        try:
            return self.options_model.model_validate(dict(given or {}))
        except ValidationError as exc:
            raise SettingError(options_error(self, exc)) from None


class Phenomenon(Reproducible):
    """A phenomenon: canonical settings, typed options, a self-describing signature and a figure.

    The default `study` is one canonical setting with the user's `--set` overrides (and `--quick`'s
    budget under them); phenomena that sweep or stage runs override it.
    """

    phase_default: ClassVar[str] = ""  # the field `phase` maps when no --metric is given
    phase_context: ClassVar[tuple[str, ...]] = ()  # summary fields a phase table shows beside the mapped one

    def audit(self, setting_name: str, setting: Setting) -> AuditSpec | None:
        """How `phenolab audit` reads this phenomenon on the canonical `setting_name`, as `setting`
        (with the user's `--set` fields); None: it declares no audit."""
        return None

    def run_signature(self, setting_name: str, options: Options | None = None) -> RunSignature | None:
        """One run's signature from its curves, if the phenomenon has one (phase maps read it, with
        the cells' options: an option such as a threshold changes what one run's signature is)."""
        return None

    @property
    def default_setting(self) -> str:
        return self.canonical[0].name

    def setting_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.canonical)

    def canonical_setting(self, name: str) -> Canonical:
        for c in self.canonical:
            if c.name == name:
                return c
        raise SettingError(f"--setting {name!r} is not a {self.name} setting; allowed: "
                           f"{', '.join(self.setting_names())}")

    def study(self, setting_name: str, seeds: list[int], overrides: dict[str, Any], quick: bool = False,
              options: Options | None = None) -> Study:
        from phenolab.phenomena._reading import quick_setting

        canon = self.canonical_setting(setting_name)
        setting, quick, note = quick_setting(setting_name, overrides, quick, canon.quick, canon.quick_note)
        return Study(self.name, setting_name, [setting], seeds, quick, note, self.parse_options(options))


def options_error(rep: Reproducible, exc: ValidationError) -> str:
    """A pydantic error on options as one line naming the flag, e.g. `--rounds 0: must be >= 1`."""
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else "?"
    if err["type"] == "extra_forbidden":
        allowed = ", ".join(rep.options_model.model_fields) or "none"
        return f"unknown option {name!r} for {rep.name}; allowed: {allowed}"
    message = err["msg"][:1].lower() + err["msg"][1:]
    return f"--{name.replace('_', '-')} {err.get('input')!r}: {message}"
