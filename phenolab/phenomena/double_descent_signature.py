"""The double-descent signature of a study, read from the catalog.

Per run (seed): the curve over capacities (`double_descent_curve.curve_signature`); then mean ± sd
over seeds; then, on the mean curve, `peak_present`. Per capacity: mean and sd of train/test
error, the bias–variance split over seeds and, for least-squares models, effective parameters
(`bias_variance`). Test error is 1 − accuracy for classification and the test MSE for regression;
a regression model "interpolates" when its train MSE is ≤ 1% of the zero predictor's (the step-0
train loss: least-squares readouts start at zero).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from phenolab.catalog import Catalog, run_id_for
from phenolab.engine.evaluate import outputs as model_outputs
from phenolab.phenomena._base import Study, stat
from phenolab.phenomena.bias_variance import (
    ce_decomposition,
    effective_parameters,
    linear_bias_variance,
    min_norm_excess_risk,
    mse_decomposition,
)
from phenolab.phenomena.double_descent_curve import (
    curve_signature,
    interpolation_threshold,
    most_prominent_peak,
    peak_present,
)
from phenolab.settings import Setting

P_EFF_EVAL_POINTS = 2000  # test inputs on which effective parameters are counted
RUN_FIELDS = ("threshold", "threshold_params", "threshold_params_per_n", "peak", "peak_params", "peak_height",
              "peak_prominence", "first_min", "first_min_at", "last", "peak_ratio", "peak_minus_threshold",
              "peak_steps_from_threshold")
# what `study_signature`'s summary holds besides RUN_FIELDS' mean ± sd (`phenolab phase --metric`);
# mean_curve_exact_fit only for least-squares classifiers, early_stopping_* only for trained nets
SUMMARY_FIELDS = ("runs_with_peak", "peak_present", "mean_curve_peak", "mean_curve_threshold",
                  "mean_curve_peak_height", "mean_curve_first_min", "mean_curve_last", "mean_curve_exact_fit",
                  "peak_rise", "seed_spread", "variance_peak", "variance_peak_value", "variance_peak_at_error_peak",
                  "early_stopping_peak_present", "early_stopping_peak_rise", "early_stopping_seed_spread",
                  "early_stopping_peak", "early_stopping_min", "early_stopping_last")
_CACHE: dict[tuple, dict[str, Any]] = {}


def study_signature(catalog: Catalog, study: Study) -> dict[str, Any]:
    """The signature dict the CLI prints: summary (flat), per_run (one curve per seed), per_capacity."""
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
def _modelwise(catalog: Catalog, study: Study) -> dict[str, Any]:
    axis = study.options["axis"]
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
    return {"setting": study.setting_name, "setting_id": study.settings[0].id, "note": study.note,
            "axis": {**axis, "values": caps.tolist()}, "error": "test_mse" if regression else "test_error",
            "summary": summary, "per_run": per_run, "per_capacity": per_capacity}


def _early_stopping(catalog: Catalog, study: Study, seeds: list[int], caps: np.ndarray,
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


# ---- explanations at one capacity ---------------------------------------------------------------
def explain(catalog: Catalog, setting: Setting, seeds: list[int]) -> dict[str, Any]:
    """Bias/variance (and effective parameters for least squares) at one capacity; {} when the
    runs kept no final checkpoint (setting checkpoints='none')."""
    if setting.task.name == "linear_regression":
        return _linear_terms(setting, seeds)
    if setting.checkpoints == "none":
        return {}
    from phenolab.models import build_model, model_class
    from phenolab.tasks import build_task

    dtype = torch.float64 if setting.dtype == "float64" else torch.float32
    data = build_task(setting.task, seeds, model_class(setting.model.name).input_kind, dtype)
    if not all(torch.equal(data.x_test[0], data.x_test[k]) for k in range(1, len(seeds))):
        return {}  # seeds do not share a test set: no ensemble over them
    model = build_model(setting.model, data.input_dim, data.out_dim, data.seq_len)
    ckpts = [catalog.load_checkpoint(run_id_for(setting.id, s)) for s in seeds]
    params = {n: torch.stack([c[n] for c in ckpts]).to(dtype) for n in ckpts[0]}
    with torch.no_grad():
        outputs = model_outputs(model, params, data.x_test, setting.eval.batch_size)
    y = data.y_test[0]
    if setting.loss == "ce":
        out: dict[str, Any] = ce_decomposition(outputs, y)
    else:
        targets = torch.nn.functional.one_hot(y, data.num_classes) if data.num_classes else y
        out = mse_decomposition(outputs, targets, y if data.num_classes else None)
    if setting.optim.name == "lstsq":
        out.update(_effective_parameters(model, params, data, setting.optim.ridge))
    return out


def _effective_parameters(model: Any, params: dict[str, torch.Tensor], data: Any, ridge: float) -> dict[str, float]:
    with torch.no_grad():
        phi_train = model.features(params, data.x_train)
        phi_eval = model.features(params, data.x_test[:, :P_EFF_EVAL_POINTS])
    test, train = zip(*(effective_parameters(phi_train[k], [phi_eval[k], phi_train[k]], ridge)
                        for k in range(phi_train.shape[0])), strict=True)
    return {"p_eff_test": float(np.mean(test)), "p_eff_train": float(np.mean(train))}


def true_beta(cfg: Any, seed: int) -> torch.Tensor:
    """β of a linear_regression run: the first draw of its "data" stream (see
    `phenolab.tasks.regression.sample_replica`, whose documented draw order starts with β)."""
    from phenolab._rng import generator

    beta = torch.randn(cfg.d, generator=generator(seed, "data"), dtype=torch.float64)
    return beta / beta.norm()


def _linear_terms(setting: Setting, seeds: list[int]) -> dict[str, Any]:
    """Exact bias², variance and effective parameters given each seed's design matrix, averaged
    over seeds; plus the min-norm theory of Nakkiran et al. 2021 for the expected test MSE."""
    from phenolab.tasks.regression import sample_replica

    cfg, ridge = setting.task, setting.optim.ridge
    rows = []
    for seed in seeds:
        x_train, _, x_test, _ = sample_replica(cfg, seed)
        terms = linear_bias_variance(x_train, true_beta(cfg, seed), cfg.noise_std, ridge)
        terms["p_eff_test"], terms["p_eff_train"] = effective_parameters(x_train, [x_test, x_train], ridge)
        rows.append(terms)
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    if ridge == 0:
        out["theory_test_mse"] = min_norm_excess_risk(cfg.n_train, cfg.d, cfg.noise_std) + cfg.noise_std ** 2
    return out
