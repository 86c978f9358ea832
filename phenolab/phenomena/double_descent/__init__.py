"""Double descent: test error that rises near the interpolation threshold and falls again as
capacity grows (Belkin, Hsu, Ma & Mandal 2019; Nakkiran et al. 2019), or as training goes on
(epoch-wise).

A model-, feature- or sample-wise study is one setting per capacity value (`settings.Sweep`) ×
seeds; its signature (`signature`, with the curve reading in `curve`) locates the interpolation
threshold and the peak per run and on the mean curve, and its explanations (`explanations`) split
the test loss into bias and variance over seeds and count effective parameters. An epoch-wise study
(`epochwise`) is one setting, read over its training steps. Everything is read from the catalog.
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
    Signature,
    Study,
    quick_setting,
    register_phenomenon,
)
from phenolab.phenomena.double_descent import epochwise
from phenolab.phenomena.double_descent.figure import double_descent_figure
from phenolab.phenomena.double_descent.linear_theory import optimal_ridge
from phenolab.phenomena.double_descent.settings import CANONICAL, DoubleDescentSetting
from phenolab.phenomena.double_descent.signature import FIELDS, study_signature
from phenolab.settings import Setting, SettingError, resolve_setting


class DoubleDescentOptions(Options):
    ridge: Literal["setting", "optimal"] = Field(
        "setting", description="optimal: each cell's ridge set to the optimal penalty of Nakkiran et al. 2021 "
        "(d·σ²/n, exact least squares on linear regression only); setting: the setting's own optim.ridge")


@dataclass
class DoubleDescentStudy(Study):
    axis: dict[str, Any] = field(default_factory=dict)  # path, side ("above"/"below"), label
    epochwise: bool = False


class DoubleDescent(Phenomenon):
    name = "double-descent"
    title = "test error that falls, rises near the interpolation threshold and falls again (Belkin et al. 2019)"
    canonical = CANONICAL
    options_model = DoubleDescentOptions
    phase_default = "peak_present"
    # model-wise settings have the first four, epoch-wise ones the rest (`phase_table` shows those present)
    phase_context = ("mean_curve_threshold", "mean_curve_peak", "peak_rise", "seed_spread",
                     "mean_rise", "spread", "second_descent", "noisy_fit_at_peak")

    def study(self, setting_name: str, seeds: list[int], overrides: dict[str, Any], quick: bool = False,
              options: Options | None = None) -> DoubleDescentStudy:
        canon = self.canonical_setting(setting_name)
        assert isinstance(canon, DoubleDescentSetting)
        opts = self.parse_options(options)
        sweep = canon.sweep
        if sweep is None:  # epoch-wise: one setting; the axis is the training step
            base = resolve_setting(setting_name, overrides)
            return DoubleDescentStudy(self.name, setting_name, [base], seeds, False, "", opts,
                                      axis={"path": "step", "side": "above", "label": "step"}, epochwise=True)
        if sweep.path in overrides:
            raise SettingError(f"--set {sweep.path}: {setting_name} sweeps this field over its grid; "
                               "set other fields only")
        has_quick_grid = sweep.quick_values is not None
        base, quick, note = quick_setting(setting_name, overrides, quick, canon.quick,
                                          canon.quick_note if has_quick_grid else "", other_effects=has_quick_grid)
        values = sweep.quick_values if quick and has_quick_grid else sweep.values
        scale = base.value(sweep.relative_to) if sweep.relative_to else 1
        if not isinstance(scale, int):
            raise SettingError(f"{sweep.relative_to} = {scale!r}: {setting_name} sweeps {sweep.path} in multiples "
                               "of it; give a positive integer")
        optimal = sweep.optimal_ridge or getattr(opts, "ridge", "setting") == "optimal"
        if optimal and (base.task.name != "linear_regression" or base.optim.name != "lstsq"):
            raise SettingError(f"--ridge optimal: the optimal penalty is known for exact least squares on linear "
                               f"regression only (task.name 'linear_regression', optim.name 'lstsq'); {setting_name} "
                               f"has {base.task.name!r} and {base.optim.name!r}")
        if optimal and sweep.path != "task.n_train":
            raise SettingError(f"--ridge optimal: the penalty d·σ²/n is set per training-set size; {setting_name} "
                               f"sweeps {sweep.path}")
        settings = []
        for value in sorted({int(round(v * scale)) for v in values}):
            over: dict[str, Any] = {sweep.path: value}
            if optimal:
                over["optim.ridge"] = optimal_ridge(base.task.d, value, base.task.noise_std)
            settings.append(base.with_overrides(over))
        axis = {"path": sweep.path, "side": sweep.side, "label": sweep.label}
        return DoubleDescentStudy(self.name, setting_name, settings, seeds, quick, note, opts, axis=axis)

    def audit(self, setting_name: str, setting: Setting) -> AuditSpec:
        from phenolab.phenomena.double_descent.audit import audit_spec

        canon = self.canonical_setting(setting_name)
        return audit_spec(setting, epochwise=isinstance(canon, DoubleDescentSetting) and canon.sweep is None)

    def signature(self, catalog: Catalog, study: Study) -> Signature:
        assert isinstance(study, DoubleDescentStudy)
        if study.epochwise:
            return epochwise.epochwise_signature(catalog, study)
        return study_signature(catalog, study)

    def fields(self, setting_name: str) -> Fields:
        canon = self.canonical_setting(setting_name)
        return epochwise.FIELDS if isinstance(canon, DoubleDescentSetting) and canon.sweep is None else FIELDS

    def figure(self, catalog: Catalog, study: Study, out: Path) -> Path:
        sig = self.signature(catalog, study)
        assert isinstance(study, DoubleDescentStudy)
        if study.epochwise:
            return epochwise.epochwise_figure(sig, out)
        return double_descent_figure(sig, out)


DOUBLE_DESCENT = register_phenomenon(DoubleDescent())
