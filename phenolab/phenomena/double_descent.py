"""Double descent: test error that rises near the interpolation threshold and falls again as
capacity grows (Belkin, Hsu, Ma & Mandal 2019; Nakkiran et al. 2019).

A study is one Setting per capacity value (MLP width, number of random features, or training-set
size) × seeds. The signature (see
`double_descent_curve`) locates the interpolation threshold and the peak per run and on the
mean curve; the explanations (see `bias_variance`) split the test loss into bias and variance
over seeds at every capacity and, for the least-squares models, count Curth et al.'s (2023)
effective parameters. Everything is read from the catalog (curves and final checkpoints).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from phenolab.catalog import Catalog
from phenolab.phenomena._base import Phenomenon, Study, quick_setting, register_phenomenon
from phenolab.phenomena.bias_variance import optimal_ridge
from phenolab.phenomena.epochwise import EPOCHWISE_SETTINGS, epochwise_figure, epochwise_signature
from phenolab.phenomena.epochwise import RUN_FIELDS as EPOCHWISE_RUN_FIELDS
from phenolab.phenomena.epochwise import SUMMARY_FIELDS as EPOCHWISE_SUMMARY_FIELDS
from phenolab.settings import SettingError, register_setting, resolve_setting

# Greydanus & Kobak's widths: unique(geomspace(2, 300, 20).astype(int)), 19 values.
GK_WIDTHS = tuple(int(w) for w in np.unique(np.geomspace(2, 300, 20).astype(int)))


@dataclass(frozen=True)
class Sweep:
    """What a study varies: `path` (a dotted setting field) over `values`. `side` says where the
    interpolating models are ("below" for sample-wise sweeps, where small training sets are fit
    exactly). Values may be multiples of a base field (`relative_to`), so `--set task.d=200`
    moves the grid with it."""

    path: str
    values: tuple[float, ...] = ()
    relative_to: str | None = None
    side: str = "above"
    label: str = "width"
    quick_values: tuple[float, ...] | None = None
    quick_overrides: dict[str, Any] = field(default_factory=dict)
    quick_note: str = ""
    optimal_ridge: bool = False


SWEEPS: dict[str, Sweep] = {}


def _register(name: str, data: dict[str, Any], sweep: Sweep, *, source: str, description: str) -> None:
    register_setting(name, data, source=source, description=description)
    SWEEPS[name] = sweep


_MNIST1D_GK = {"name": "mnist1d", "num_samples": 16000, "train_split": 0.25}

_register(
    "greydanus_kobak2024",
    {
        "task": {**_MNIST1D_GK, "label_noise": 0.15},
        "model": {"name": "mlp", "width": 61, "depth": 2},
        "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
        "schedule": {"epochs": 500, "batch_size": 100},
        "loss": "ce",
        "eval": {"points": 40},
        "measures": ["parameter_count"],
        "checkpoints": "final",
    },
    Sweep("model.width", GK_WIDTHS, label="hidden width h",
          quick_values=(8, 16, 27, 47, 80, 135, 230), quick_overrides={"schedule.epochs": 250},
          quick_note="--quick: 7 of the 19 widths and 250 of the 500 epochs; the peak moves right "
                     "(train error reaches 0 later) but stays"),
    source="Greydanus & Kobak 2024, position paper Fig. 4 (greydanus/mnist1d notebooks/deep-double-descent"
    ".ipynb): MNIST-1D make_dataset(num_samples=16000, train_split=0.25, other args default, seed 42) → "
    "4000 train / 12000 test; 15% of train labels replaced by randint(0, 10); MLP 40→h→h→10 ReLU, PyTorch "
    "default init, h in unique(geomspace(2, 300, 20).astype(int)); SGD lr 0.01 momentum 0.9, batch 100, "
    "500 epochs, cross-entropy. Published (1 seed): test error 47.2% at h=16, peak 54.0% at h=47/61 (train "
    "error 5.5% at 47, 0% from 61), 45.5% at h=300",
    description="model-wise deep double descent with label noise; 19 widths (each replaces the base width 61) × "
    "seeds; 10 seeds took 288 s for 18 widths on an H100 (~24 min extrapolated on one CPU thread); --quick ~1.5 min",
)

_LINEAR = {
    "task": {"name": "linear_regression", "d": 100, "n_train": 100, "n_test": 2000, "noise_std": 0.5},
    "model": {"name": "linear"},
    "optim": {"name": "lstsq"},
    "loss": "mse",
    "dtype": "float64",
}
_N_OVER_D = tuple(k / 10 for k in range(1, 31))  # n = 0.1·d … 3·d in steps of 0.1·d
_LINEAR_SOURCE = (
    "Nakkiran, Venkat, Kakade & Ma 2021, 'Optimal regularization can mitigate double descent': x ~ N(0, I_d), "
    "y = x·β + ε, ‖β‖ = 1, σ = 0.5; here d = 100, n_train = 10…300 (steps of 10), 2000 test points, float64"
)
_register(
    "nakkiran2021_linear", _LINEAR,
    Sweep("task.n_train", _N_OVER_D, relative_to="task.d", side="below", label="training samples n"),
    source=_LINEAR_SOURCE + "; min-norm least squares (pinv). Expected excess risk (1 − n/d) + σ²n/(d − n − 1) "
    "below d, σ²d/(n − d − 1) above: a spike at n = d",
    description="sample-wise double descent, exact; seconds. `--set optim.ridge=…` for a fixed ridge",
)
_register(
    "nakkiran2021_optimal_ridge",
    {**_LINEAR, "optim": {"name": "lstsq", "ridge": optimal_ridge(100, 100, 0.5)}},
    Sweep("task.n_train", _N_OVER_D, relative_to="task.d", side="below", label="training samples n",
          optimal_ridge=True),
    source=_LINEAR_SOURCE + "; ridge at the optimal λ = d·σ²/‖β‖² on the summed squared error (their Thm. 1), "
    "i.e. optim.ridge = d·σ²/(‖β‖²·n) on the engine's mean-squared-error scale, set for each n",
    description="the same sweep with optimally tuned ridge: the peak disappears (test risk is monotone in n)",
)
_register(
    "belkin2019_rff",
    {
        "task": {**_MNIST1D_GK, "train_size": 500},
        "model": {"name": "random_features", "num_features": 500, "feature": "fourier"},
        "optim": {"name": "lstsq"},
        "loss": "mse",
        "dtype": "float64",
        "measures": ["parameter_count"],
        "checkpoints": "final",
    },
    Sweep("model.num_features", (0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0),
          relative_to="task.train_size", label="random features p"),
    source="Belkin, Hsu, Ma & Mandal 2019 (PNAS), random Fourier features (Rahimi & Recht 2007) with a min-norm "
    "least-squares readout on one-hot targets; here MNIST-1D (the Greydanus & Kobak data set), a random "
    "500-sample training subset per seed, the 12000 test points, p = 0.1n … 5n, float64",
    description="model-wise double descent of random features, exact; peak at p = n; seconds",
)

_register(
    "digits_label_noise",
    {
        "task": {"name": "digits", "train_size": 600, "label_noise": 0.2},
        "model": {"name": "mlp", "width": 16, "depth": 1},
        "optim": {"name": "adam", "lr": 1e-2},
        "schedule": {"steps": 1000},
        "loss": "ce",
        "eval": {"points": 8},
        "measures": ["parameter_count"],
        "checkpoints": "final",
    },
    Sweep("model.width", (4, 8, 16, 32, 64), label="hidden width h"),
    source="phenolab's reduced neural double descent (not from a paper): scikit-learn digits, a random "
    "600-image training subset per seed, 20% of its labels redrawn (Nakkiran et al. 2019's recipe), MLP "
    "64→h→10 ReLU, full-batch Adam lr 1e-2 for 1000 steps, cross-entropy; h = 4…64",
    description="a neural peak in about 15 s per 3 seeds on one core (the test suite's); "
    "--set optim.weight_decay=0.01 removes it",
)


class DoubleDescent(Phenomenon):
    name = "double-descent"
    canonical = ("greydanus_kobak2024", "nakkiran2021_linear", "nakkiran2021_optimal_ridge", "belkin2019_rff",
                 "digits_label_noise", "epochwise", "epochwise_two_scale")
    default_setting = "greydanus_kobak2024"
    phase_metric = "peak_present"  # where the peak appears (issue: noise × weight decay)
    # model-wise settings have the first four, epoch-wise ones the rest (`phase_table` shows those present)
    phase_context = ("mean_curve_threshold", "mean_curve_peak", "peak_rise", "seed_spread",
                     "mean_rise", "spread", "second_descent", "noisy_fit_at_peak")

    def study(self, setting_name: str, seeds: list[int], overrides: dict[str, Any], quick: bool,
              options: dict[str, Any] | None = None) -> Study:
        if setting_name in EPOCHWISE_SETTINGS:  # one setting; the axis is the training step
            base = resolve_setting(setting_name, overrides)
            axis = {"path": "step", "side": "above", "label": "step"}
            return Study(self.name, setting_name, [base], seeds, quick, "", {**(options or {}), "axis": axis,
                                                                             "epochwise": True})
        sweep = SWEEPS[setting_name]
        if sweep.path in overrides:
            raise SettingError(f"--set {sweep.path}: {setting_name} sweeps this field over its grid; "
                               "set other fields only")
        has_quick_grid = sweep.quick_values is not None
        base, quick, note = quick_setting(setting_name, overrides, quick, sweep.quick_overrides,
                                          sweep.quick_note if has_quick_grid else "", other_effects=has_quick_grid)
        values = sweep.quick_values if quick and has_quick_grid else sweep.values
        scale = base.value(sweep.relative_to) if sweep.relative_to else 1
        if not isinstance(scale, int):
            raise SettingError(f"{sweep.relative_to} = {scale!r}: {setting_name} sweeps {sweep.path} in multiples "
                               "of it; give a positive integer")
        settings = []
        for value in sorted({int(round(v * scale)) for v in values}):
            over: dict[str, Any] = {sweep.path: value}
            if sweep.optimal_ridge:
                over["optim.ridge"] = optimal_ridge(base.task.d, value, base.task.noise_std)
            settings.append(base.with_overrides(over))
        axis = {"path": sweep.path, "side": sweep.side, "label": sweep.label}
        return Study(self.name, setting_name, settings, seeds, quick, note, {**(options or {}), "axis": axis})

    def signature(self, catalog: Catalog, study: Study) -> dict[str, Any]:
        from phenolab.phenomena.double_descent_signature import study_signature

        if study.options.get("epochwise"):
            return epochwise_signature(catalog, study)
        return study_signature(catalog, study)

    def phase_fields(self, setting_name: str) -> tuple[str, ...]:
        if setting_name in EPOCHWISE_SETTINGS:
            return (*EPOCHWISE_RUN_FIELDS, "has_peak", *EPOCHWISE_SUMMARY_FIELDS)
        from phenolab.phenomena.double_descent_signature import RUN_FIELDS, SUMMARY_FIELDS

        return (*RUN_FIELDS, "has_peak", *SUMMARY_FIELDS)

    def figure(self, catalog: Catalog, study: Study, out: Path) -> Path:
        from phenolab.phenomena.double_descent_figure import double_descent_figure
        from phenolab.phenomena.double_descent_signature import study_signature

        if study.options.get("epochwise"):
            return epochwise_figure(epochwise_signature(catalog, study), out)
        return double_descent_figure(study_signature(catalog, study), out)


DOUBLE_DESCENT = register_phenomenon(DoubleDescent())
