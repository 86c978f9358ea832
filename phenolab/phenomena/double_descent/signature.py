"""The double-descent signature of a study, read from the catalog.

Per run (seed): the curve over capacities (`curve.curve_signature`); then mean ± sd over seeds;
then, on the mean curve, `peak_present`. Per capacity: mean and sd of train/test error, the
bias–variance split over seeds and, for least-squares models, effective parameters
(`explanations`). Test error is 1 − accuracy for classification and the test MSE for regression;
a regression model "interpolates" when its train MSE is ≤ 1% of the zero predictor's (the step-0
train loss: least-squares readouts start at zero).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from phenolab.catalog import Catalog, run_id_for
from phenolab.phenomena import Fields, RowTable, Signature, SignatureField, stat
from phenolab.phenomena.double_descent.curve import (
    curve_signature,
    interpolation_threshold,
    most_prominent_peak,
    peak_present,
)
from phenolab.phenomena.double_descent.explanations import explain
from phenolab.settings import Setting

if TYPE_CHECKING:
    from phenolab.phenomena.double_descent import DoubleDescentStudy
RUN_FIELDS = ("threshold", "threshold_params", "threshold_params_per_n", "peak", "peak_params", "peak_height",
              "peak_prominence", "first_min", "first_min_at", "last", "peak_ratio", "peak_minus_threshold",
              "peak_steps_from_threshold")
F = SignatureField
CAP = "capacity"  # the swept axis' own unit: hidden units, random features or training samples
FIELDS = Fields(
    F("threshold", "interpolation threshold: the smallest capacity whose train error is ≤ 1% (sample-wise: the "
      "largest n still fit)", CAP),
    F("threshold_params", "trained parameters at the threshold", "parameters"),
    F("threshold_params_per_n", "trained parameters per training sample at the threshold", "parameters / sample"),
    F("peak", "capacity of the most prominent interior maximum of the test error", CAP),
    F("peak_params", "trained parameters at the peak", "parameters"),
    F("peak_height", "test error at the peak", "test error"),
    F("peak_prominence", "how far the peak rises above the lowest point on each side (the smaller rise)",
      "test error"),
    F("first_min", "lowest test error before the peak", "test error"),
    F("first_min_at", "capacity of the first minimum", CAP),
    F("last", "test error at the largest capacity", "test error"),
    F("peak_ratio", "peak height / first minimum", "×"),
    F("peak_minus_threshold", "peak capacity − threshold capacity", CAP),
    F("peak_steps_from_threshold", "grid points from the threshold to the peak", "grid points"),
    F("has_peak", "the run's curve has an interior peak"),
    F("runs_with_peak", "runs whose own curve has an interior peak", "runs"),
    F("peak_present", "the mean curve's peak rises above both side minima by more than the seed spread"),
    F("mean_curve_peak", "capacity of the mean curve's peak", CAP),
    F("mean_curve_threshold", "interpolation threshold of the mean curve", CAP),
    F("mean_curve_peak_height", "mean test error at the mean curve's peak", "test error"),
    F("mean_curve_first_min", "mean test error at the mean curve's first minimum", "test error"),
    F("mean_curve_last", "mean test error at the largest capacity", "test error"),
    F("mean_curve_exact_fit", "least-squares classifiers: the smallest capacity whose train MSE is ≤ 1% of the zero "
      "predictor's (Belkin et al.'s threshold)", CAP),
    F("peak_rise", "the mean curve's peak prominence (on log10 MSE for regression)", "test error"),
    F("seed_spread", "largest sd over seeds among the peak and its two minima", "test error"),
    F("variance_peak", "capacity where the variance over seeds peaks", CAP),
    F("variance_peak_value", "the variance term there", "test loss"),
    F("variance_peak_at_error_peak", "the variance peaks within one grid point of the test error's peak"),
    F("early_stopping_peak_present", "the curve of each run's best evaluated test error still has a peak beyond "
      "the seed spread (optimal early stopping)"),
    F("early_stopping_peak_rise", "that curve's peak prominence", "test error"),
    F("early_stopping_seed_spread", "that curve's seed spread at its peak", "test error"),
    F("early_stopping_peak", "capacity of that curve's peak", CAP),
    F("early_stopping_min", "lowest test error under optimal early stopping", "test error"),
    F("early_stopping_last", "test error under optimal early stopping at the largest capacity", "test error"),
    F("peak_judged_on", "what peak_present is read on: test error, or log10 test MSE for regression", phase=False),
    F("n_train", "training samples", "samples", phase=False),
    F("n_seeds", "seeds with runs at every capacity", "seeds", phase=False),
    F("seed", "the run's seed", phase=False),
)
# the per-capacity rows printed under the summary (those a study has)
CAPACITY_COLUMNS = ("capacity", "params", "train_mean", "test_mean", "test_sd", "bias", "variance", "p_eff_test")
_CACHE: dict[tuple, Signature] = {}


def study_signature(catalog: Catalog, study: DoubleDescentStudy) -> Signature:
    """Summary (flat), one curve per seed, and `per_capacity` (printed as a table, in --json)."""
    key = (str(catalog.path), tuple(s.id for s in study.settings), tuple(study.seeds), catalog.count_runs())
    if key not in _CACHE:
        _CACHE[key] = _modelwise(catalog, study)
    return _CACHE[key]


# ---- reading the catalog ------------------------------------------------------------------------
def final_values(catalog: Catalog, setting: Setting, seeds: list[int]) -> pd.DataFrame:
    """One row per stored seed: every metric's last value, plus `init_train_loss` (step 0)."""
    df = catalog.curves(setting_id=setting.id)
    df = df[df["seed"].isin(seeds)]
    if not len(df):
        return pd.DataFrame()
    df = df.sort_values("step")
    last = df.groupby(["seed", "metric"])["value"].last().unstack()
    init = df[(df["step"] == 0) & (df["metric"] == "train_loss")].set_index("seed")["value"]
    last["init_train_loss"] = init
    return last


def _errors(values: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train error, test error, train fit for the threshold) per seed row."""
    if "test_acc" in values:
        train, test = 1 - values["train_acc"].to_numpy(), 1 - values["test_acc"].to_numpy()
        return train, test, train
    train, test = values["train_loss"].to_numpy(), values["test_loss"].to_numpy()
    return train, test, train / values["init_train_loss"].to_numpy()


def _n_train(setting: Setting) -> int:
    task = setting.task
    if task.name == "linear_regression":
        return int(task.n_train)
    from phenolab.tasks import build_task

    return int(build_task(task, [0]).n_train)


def _parameter_count(setting: Setting, values: pd.DataFrame) -> float:
    if "parameter_count" in values:
        return float(values["parameter_count"].iloc[0])
    from phenolab.models import build_model, model_class
    from phenolab.tasks import build_task

    data = build_task(setting.task, [0], model_class(setting.model.name).input_kind)
    model = build_model(setting.model, data.input_dim, data.out_dim, data.seq_len)
    params = model.init([torch.Generator().manual_seed(0)])
    return float(sum(p[0].numel() for n, p in params.items() if n not in model.frozen))


# ---- model-, feature- and sample-wise sweeps ----------------------------------------------------
def _modelwise(catalog: Catalog, study: DoubleDescentStudy) -> Signature:
    axis = study.axis
    path, side = axis["path"], axis["side"]
    finals = [final_values(catalog, s, study.seeds) for s in study.settings]
    seeds = sorted(set.intersection(*[set(f.index) for f in finals])) if all(len(f) for f in finals) else []
    if not seeds:
        raise ValueError("no seed has runs at every capacity of this study in the catalog; train it first")
    finals = [f.loc[seeds] for f in finals]
    caps = np.array([float(s.value(path)) for s in study.settings])
    params = np.array([_parameter_count(s, f) for s, f in zip(study.settings, finals, strict=True)])
    errs = [_errors(f) for f in finals]
    train = np.stack([e[0] for e in errs], axis=1)  # [seeds, capacities]
    test = np.stack([e[1] for e in errs], axis=1)
    fit = np.stack([e[2] for e in errs], axis=1)
    n_train = 0 if side == "below" else _n_train(study.settings[0])

    per_run = []
    for i, seed in enumerate(seeds):
        sig = curve_signature(caps, params, test[i], fit[i], n_train, side)
        sig["seed"] = int(seed)
        per_run.append(sig)
    mean, sd = test.mean(0), _sd(test)
    mean_sig = curve_signature(caps, params, mean, fit.mean(0), n_train, side)
    regression = "test_acc" not in finals[0]
    # MSE near an exact interpolation is heavy-tailed (its expectation is infinite at n = d), so
    # for regression the peak is judged on log10 MSE, where seed noise is roughly additive.
    judged = np.log10(test) if regression else test
    present = peak_present(judged.mean(0), _sd(judged))
    if regression:
        mean_sig = curve_signature(caps, params, 10 ** judged.mean(0), fit.mean(0), n_train, side)
    n_per = caps if side == "below" else np.full(len(caps), float(n_train))

    per_capacity = []
    for j, setting in enumerate(study.settings):
        row = {"capacity": float(caps[j]), "params": float(params[j]), "params_per_n": float(params[j] / n_per[j]),
               "setting_id": setting.id, "train_mean": float(train[:, j].mean()), "train_sd": float(_sd(train)[j]),
               "test_mean": float(mean[j]), "test_sd": float(sd[j])}
        row.update(explain(catalog, setting, seeds))
        per_capacity.append(row)

    k = len(seeds)
    summary: dict[str, Any] = {f: stat([r[f] for r in per_run]) for f in RUN_FIELDS}
    summary["runs_with_peak"] = sum(r["has_peak"] for r in per_run)
    summary["peak_present"] = present["peak_present"]
    at = {c: j for j, c in enumerate(caps)}
    for name in ("peak", "threshold"):
        summary[f"mean_curve_{name}"] = mean_sig[name]
    for name, where in (("peak_height", mean_sig["peak"]), ("first_min", mean_sig["first_min_at"]),
                        ("last", caps[-1])):
        j = at.get(where)
        summary[f"mean_curve_{name}"] = {"mean": None if j is None else float(mean[j]),
                                         "sd": None if j is None else float(sd[j]), "n": k}
    if study.settings[0].loss == "mse" and not regression:
        # a least-squares classifier's 0-1 train error reaches 0 before it fits its targets exactly;
        # the exact fit (train MSE ≤ 1% of the zero predictor's) is Belkin et al.'s threshold
        rel = np.stack([f["train_loss"].to_numpy() / f["init_train_loss"].to_numpy() for f in finals], axis=1)
        summary["mean_curve_exact_fit"] = interpolation_threshold(caps, rel.mean(0), side)
    summary["peak_rise"] = _round(present["rise"])
    summary["seed_spread"] = _round(present["spread"])
    summary["peak_judged_on"] = "log10 test MSE" if regression else "test error"
    summary.update(_variance_summary(per_capacity, present["index"]))
    if study.settings[0].optim.name != "lstsq" and not regression:
        summary.update(_early_stopping(catalog, study, seeds, caps, per_capacity))
    if n_train:
        summary["n_train"] = n_train
    summary["n_seeds"] = k
    extra = {"setting_id": study.settings[0].id, "axis": {**axis, "values": caps.tolist()},
             "error": "test_mse" if regression else "test_error", "per_capacity": per_capacity}
    table = RowTable(f"per {axis['label']} (mean ± sd over seeds)", CAPACITY_COLUMNS, per_capacity)
    return Signature(study.setting_name, summary, per_run, study.note, extra,
                     output=("per_capacity", "axis", "error"), tables=(table,))


def _early_stopping(catalog: Catalog, study: DoubleDescentStudy, seeds: list[int], caps: np.ndarray,
                    per_capacity: list[dict[str, Any]]) -> dict[str, Any]:
    """The curve under optimal early stopping: each run's lowest test error over its evaluated
    steps (an oracle, like the optimal ridge: Nakkiran et al. 2019 find it removes or shrinks the
    model-wise peak), and whether that curve still has a peak beyond the seed spread. Adds
    `test_es_mean/sd` to each capacity's row."""
    ids = [s.id for s in study.settings]
    df = catalog.curves(run_ids=[run_id_for(sid, seed) for sid in ids for seed in seeds], metrics=["test_acc"])
    best = df.groupby(["setting_id", "seed"])["value"].max()
    err = 1 - np.array([[best.loc[(sid, seed)] for sid in ids] for seed in seeds])  # [seeds, capacities]
    mean, sd = err.mean(0), _sd(err)
    for row, m, s in zip(per_capacity, mean, sd, strict=True):
        row["test_es_mean"], row["test_es_sd"] = float(m), float(s)
    present = peak_present(mean, sd)
    peak = present["index"]
    return {"early_stopping_peak_present": present["peak_present"], "early_stopping_peak_rise": _round(present["rise"]),
            "early_stopping_seed_spread": _round(present["spread"]),
            "early_stopping_peak": None if peak is None else float(caps[peak]),
            "early_stopping_min": {"mean": float(mean.min()), "sd": float(sd[int(np.argmin(mean))]), "n": len(seeds)},
            "early_stopping_last": {"mean": float(mean[-1]), "sd": float(sd[-1]), "n": len(seeds)}}


def _variance_summary(rows: list[dict[str, Any]], error_peak: int | None) -> dict[str, Any]:
    """Where the variance term peaks (most prominent interior maximum, else the argmax) and
    whether that is within one grid step of the test error's peak."""
    var = np.array([r.get("variance", math.nan) for r in rows], dtype=float)
    if not np.all(np.isfinite(var)):
        return {}
    peak = most_prominent_peak(var)
    idx = peak.index if peak is not None else int(np.argmax(var))
    out: dict[str, Any] = {"variance_peak": rows[idx]["capacity"], "variance_peak_value": _round(float(var[idx]))}
    out["variance_peak_at_error_peak"] = error_peak is not None and abs(idx - error_peak) <= 1
    return out


def _round(x: float | None) -> float | None:
    """4 significant digits, for the printed table (the per-capacity rows keep full precision)."""
    return None if x is None else float(f"{x:.4g}")


def _sd(x: np.ndarray) -> np.ndarray:
    """Sample sd over seeds (axis 0); zeros with one seed."""
    return x.std(0, ddof=1) if len(x) > 1 else np.zeros(x.shape[1:])
