"""Double descent: exact solves and real (small) training, read back from a catalog.

- min-norm linear regression peaks at n = d and the optimal ridge removes the peak;
- random features peak at p = n;
- a reduced neural setting (digits, label noise) peaks, and weight decay removes the peak;
- the signature's parts on synthetic curves; the bias–variance identities; effective parameters.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from phenolab.analysis.ensemble import ce_decomposition, mse_decomposition
from phenolab.analysis.smoothers import effective_parameters, smoother_norms2
from phenolab.catalog import Catalog
from phenolab.phenomena import PHENOMENA, Trainer
from phenolab.phenomena.double_descent.curve import (
    curve_signature,
    interpolation_threshold,
    most_prominent_peak,
    peak_present,
)
from phenolab.phenomena.double_descent.explanations import true_beta
from phenolab.phenomena.double_descent.linear_theory import linear_bias_variance, min_norm_excess_risk, optimal_ridge
from phenolab.phenomena.double_descent.settings import GK_QUICK_WIDTHS, GK_WIDTHS
from phenolab.settings import SettingError, named_setting
from phenolab.tasks.regression import sample_replica
from tests.helpers import invoke

DD = PHENOMENA["double-descent"]


def reproduce(catalog: Catalog, name: str, seeds: list[int], overrides: dict | None = None):
    study = DD.study(name, seeds, overrides or {}, False)
    DD.train(study, Trainer.local(catalog, "cpu"))
    return study, DD.signature(catalog, study)


# ---- exact: linear regression ------------------------------------------------------------------
@pytest.mark.slow
def test_min_norm_peaks_at_n_equals_d_and_optimal_ridge_removes_it(tmp_path):
    cat = Catalog(tmp_path / "cat")
    d = named_setting("nakkiran2021_linear").task.d
    study, sig = reproduce(cat, "nakkiran2021_linear", [0, 1, 2])
    grid = sorted(s.task.n_train for s in study.settings)
    step = grid[1] - grid[0]
    s = sig.summary
    assert s["peak_present"] is True
    assert abs(s["mean_curve_peak"] - d) <= step  # the spike sits at n = d (± one grid step)
    assert abs(s["peak"]["mean"] - d) <= step and s["peak"]["n"] == 3
    assert s["mean_curve_threshold"] == d  # the largest n still interpolated
    assert s["variance_peak_at_error_peak"] is True  # the variance term makes the spike
    # away from the spike, the measured test MSE follows Nakkiran et al.'s formula
    rows = {r["capacity"]: r for r in sig.extra["per_capacity"]}
    for n in (30, 200, 300):
        assert rows[n]["test_mean"] == pytest.approx(rows[n]["theory_test_mse"], rel=0.2)

    _, ridge = reproduce(cat, "nakkiran2021_optimal_ridge", [0, 1, 2])
    assert ridge.summary["peak_present"] is False
    ridge_rows = {r["capacity"]: r for r in ridge.extra["per_capacity"]}
    assert ridge_rows[d]["test_mean"] < 0.1 * rows[d]["test_mean"]


def test_optimal_ridge_is_scaled_to_the_engines_mean_squared_error():
    # λ* = dσ²/‖β‖² on the summed squared error (Nakkiran et al. 2021) ⇒ dσ²/(‖β‖²n) on the mean
    assert optimal_ridge(100, 50, 0.5) == pytest.approx(100 * 0.25 / 50)
    # and it beats nearby penalties on fresh draws (Bayes optimal on average over designs)
    cfg = named_setting("nakkiran2021_linear").task.model_copy(update={"n_train": 90})
    lam = optimal_ridge(cfg.d, cfg.n_train, cfg.noise_std)
    risks = {f: np.mean([linear_bias_variance(sample_replica(cfg, s)[0], true_beta(cfg, s), cfg.noise_std,
                                              f * lam)["expected_test_mse"] for s in range(20)])
             for f in (0.25, 1.0, 4.0)}
    assert risks[1.0] < risks[0.25] and risks[1.0] < risks[4.0]


def test_linear_terms_match_the_catalog_and_true_beta_is_the_tasks():
    cfg = named_setting("nakkiran2021_linear").task.model_copy(update={"n_train": 60, "n_test": 20000})
    x_train, y_train, x_test, y_test = sample_replica(cfg, 7)
    beta = true_beta(cfg, 7)
    assert float((y_test.squeeze(-1) - x_test @ beta).pow(2).mean()) == pytest.approx(cfg.noise_std ** 2, rel=0.05)
    terms = linear_bias_variance(x_train, beta, cfg.noise_std, 0.0)
    beta_hat = torch.linalg.pinv(x_train) @ y_train.squeeze(-1)
    # the realized test MSE of this one fit is its exact conditional expectation up to label noise
    realized = float((x_test @ beta_hat - y_test.squeeze(-1)).pow(2).mean())
    assert realized == pytest.approx(terms["expected_test_mse"], rel=0.25)
    assert terms["bias"] == pytest.approx(1 - 60 / 100, abs=0.15)  # (1 − n/d)‖β‖² on average


# ---- exact: random features --------------------------------------------------------------------
@pytest.mark.slow
def test_random_features_peak_at_p_equals_n(tmp_path):
    cat = Catalog(tmp_path / "cat")
    over = {"task.train_size": 100, "task.num_samples": 1000, "task.train_split": 0.5}
    study, sig = reproduce(cat, "belkin2019_rff", [0, 1], over)
    s = sig.summary
    assert s["peak_present"] is True and s["mean_curve_peak"] == 100  # p = n
    assert s["mean_curve_threshold"] <= 100
    rows = {r["capacity"]: r for r in sig.extra["per_capacity"]}
    # effective parameters on train inputs saturate at n; on test inputs they peak at p = n
    assert rows[50]["p_eff_train"] == pytest.approx(50, rel=1e-6)
    assert rows[500]["p_eff_train"] == pytest.approx(100, rel=1e-6)
    p_test = [r["p_eff_test"] for r in sig.extra["per_capacity"]]
    assert int(np.argmax(p_test)) == list(rows).index(100)
    # bias + variance is exactly the seeds' mean test loss, which the catalog recorded
    for r in sig.extra["per_capacity"]:
        assert r["bias"] + r["variance"] == pytest.approx(r["mean_loss"], rel=1e-9)
    first = sig.extra["per_capacity"][0]
    assert first["mean_loss"] == pytest.approx(_catalog_mean(cat, study.settings[0], "test_loss"))


def _catalog_mean(cat: Catalog, setting, metric: str) -> float:
    runs = cat.runs(setting_id=setting.id)
    return float(runs[f"final_{metric}"].mean())


# ---- real training: a reduced neural setting ---------------------------------------------------
@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """digits_label_noise, 3 seeds, trained: as set (20% label noise) and with weight decay 0.01."""
    cat = Catalog(tmp_path_factory.mktemp("digits") / "cat")
    study, noisy = reproduce(cat, "digits_label_noise", [0, 1, 2])
    _, decayed = reproduce(cat, "digits_label_noise", [0, 1, 2], {"optim.weight_decay": 0.01})
    return cat, study, noisy, decayed


@pytest.mark.slow
def test_neural_peak_with_label_noise_and_none_with_weight_decay(digits):
    cat, study, noisy, decayed = digits
    s = noisy.summary
    assert s["peak_present"] is True, s
    assert s["peak_rise"] > s["seed_spread"]
    assert s["mean_curve_threshold"] is not None and s["mean_curve_peak"] <= s["mean_curve_threshold"] * 2
    for r in noisy.extra["per_capacity"]:  # the CE decomposition is exact
        assert r["bias"] + r["variance"] == pytest.approx(r["mean_loss"], rel=1e-6)
    assert r["mean_loss"] == pytest.approx(_catalog_mean(cat, study.settings[-1], "test_loss"), rel=1e-4)
    # optimal early stopping (each run's best evaluated test error) removes the peak
    assert s["early_stopping_peak_present"] is False, s
    es = [r["test_es_mean"] for r in noisy.extra["per_capacity"]]
    assert all(e <= r["test_mean"] + 1e-12 for e, r in zip(es, noisy.extra["per_capacity"], strict=True))
    assert max(es[es.index(min(es)):]) - min(es) < s["peak_rise"] / 2  # after its minimum it barely rises

    assert decayed.summary["peak_present"] is False, decayed.summary
    assert decayed.summary["mean_curve_threshold"] is None  # it no longer fits the noisy labels


@pytest.mark.slow
def test_phase_diagram_maps_where_the_peak_appears(digits, tmp_path):
    """`phenolab phase double-descent` (the issue's command, on the reduced setting): every cell is
    that cell's own double-descent study; its default field is `peak_present`. The two noisy cells
    are the runs above (nothing retrained), the noise-free column is trained here."""
    cat, _, noisy, decayed = digits
    args = ["phase", "double-descent", "--setting", "digits_label_noise", "--grid", "task.label_noise=0,0.2",
            "--grid", "optim.weight_decay=0,0.01", "--seeds", "3", "--catalog", str(cat.path),
            "--out", str(tmp_path), "--json"]
    runs = cat.count_runs()
    with pytest.raises(SettingError) as typo:  # refused before any training
        invoke(*args, "--metric", "peak_presnt")
    assert cat.count_runs() == runs
    assert str(typo.value).startswith("--metric 'peak_presnt': not a double-descent signature field")
    assert "peak_present" in str(typo.value)
    # every key of the signature is declared with a description; a phase diagram may map all but the
    # bookkeeping ones (exact fit: least-squares classifiers only)
    fields = DD.fields("digits_label_noise")
    keys = set(noisy.summary) | set(noisy.per_run[0])
    assert all(fields.get(k) is not None and fields.get(k).description for k in keys)
    assert set(fields.names()) - keys == {"mean_curve_exact_fit"}
    assert keys - set(fields.mappable()) == {"peak_judged_on", "n_train", "n_seeds", "seed"}
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    widths = len(DD.study("digits_label_noise", [0], {}, False).settings)
    assert out["field"] == "peak_present" and out["trained"] == 2 * widths * 3
    cells = {(r["task.label_noise"], r["optim.weight_decay"]): r for r in out["table"]}
    for (noise, wd), sig in {(0.2, 0.0): noisy, (0.2, 0.01): decayed}.items():
        cell, summary = cells[(noise, wd)], sig.summary
        assert cell["value"] == str(summary["peak_present"]).lower() and cell["n"] == 1
        assert cell["peak_rise"] == summary["peak_rise"]
        assert cell["mean_curve_peak"] == summary["mean_curve_peak"]  # None where there is no peak
    assert cells[(0.2, 0.0)]["value"] == "true" and cells[(0.2, 0.01)]["value"] == "false"
    # without label noise there is nothing to memorise: no peak, with or without weight decay (measured)
    assert cells[(0.0, 0.0)]["value"] == "false" and cells[(0.0, 0.01)]["value"] == "false"
    assert Path(out["figure"]).stat().st_size > 10_000



# ---- the signature's parts on synthetic curves -------------------------------------------------
def test_peak_is_the_most_prominent_interior_point_not_a_first_wiggle():
    curve = np.array([0.7, 0.5, 0.52, 0.49, 0.47, 0.55, 0.6, 0.5, 0.45])
    peak = most_prominent_peak(curve)
    assert peak.index == 6 and peak.left_min == 4 and peak.right_min == 8
    assert peak.prominence == pytest.approx(0.6 - 0.47)
    assert most_prominent_peak(np.array([0.9, 0.7, 0.5, 0.4])) is None  # monotone
    assert most_prominent_peak(np.array([0.5, 0.4, 0.45, 0.6])) is None  # U-shaped: no interior max


def test_threshold_both_sides_and_signature_fields():
    caps = np.array([2, 4, 8, 16, 32, 64])
    train = np.array([0.5, 0.3, 0.05, 0.01, 0.0, 0.0])
    assert interpolation_threshold(caps, train) == 16
    assert interpolation_threshold(caps, train[::-1], side="below") == 8  # ≤ 1% counts
    assert interpolation_threshold(caps, np.full(6, 0.2)) is None
    test = np.array([0.6, 0.45, 0.5, 0.58, 0.5, 0.42])
    params = caps * 10.0
    sig = curve_signature(caps, params, test, train, n_train=100)
    assert sig["threshold"] == 16 and sig["threshold_params"] == 160 and sig["threshold_params_per_n"] == 1.6
    assert sig["peak"] == 16 and sig["peak_height"] == 0.58 and sig["first_min"] == 0.45
    assert sig["first_min_at"] == 4 and sig["last"] == 0.42
    assert sig["peak_ratio"] == pytest.approx(0.58 / 0.45)
    assert sig["peak_minus_threshold"] == 0 and sig["peak_steps_from_threshold"] == 0


def test_peak_present_needs_a_rise_beyond_the_seed_spread():
    mean = np.array([0.6, 0.45, 0.5, 0.58, 0.5, 0.42])
    assert peak_present(mean, np.full(6, 0.01))["peak_present"] is True
    assert peak_present(mean, np.full(6, 0.2))["peak_present"] is False
    assert peak_present(np.array([0.6, 0.5, 0.4, 0.3]), np.zeros(4))["peak_present"] is False


# ---- decompositions and smoothers --------------------------------------------------------------
def test_ce_and_mse_decompositions_are_exact_identities():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(5, 40, 10, generator=g), torch.randint(0, 10, (40,), generator=g)
    ce = ce_decomposition(logits, y)
    per_seed = torch.nn.functional.cross_entropy(logits.double().reshape(-1, 10), y.repeat(5)).item()
    assert ce["mean_loss"] == pytest.approx(per_seed, rel=1e-9)
    assert ce["bias"] + ce["variance"] == pytest.approx(ce["mean_loss"], rel=1e-9)
    assert ce["variance"] > 0
    same = ce_decomposition(logits[:1].expand(5, -1, -1), y)
    assert same["variance"] == pytest.approx(0, abs=1e-12) and same["disagreement"] == 0
    out, t = torch.randn(4, 30, 3, generator=g), torch.randn(30, 3, generator=g)
    mse = mse_decomposition(out, t)
    assert mse["bias"] + mse["variance"] == pytest.approx(mse["mean_loss"], rel=1e-12)


def test_effective_parameters_qr_path_equals_pinv_and_ridge_shrinks():
    g = torch.Generator().manual_seed(1)
    for n, p in ((30, 12), (12, 30), (20, 20)):
        phi, ev = torch.randn(n, p, generator=g, dtype=torch.float64), torch.randn(25, p, generator=g,
                                                                                 dtype=torch.float64)
        direct = (ev @ torch.linalg.pinv(phi)).square().sum(-1)
        on_ev, on_train = smoother_norms2(phi, [ev, phi], 0.0)
        assert torch.allclose(on_ev, direct, rtol=1e-8)
        assert float(on_train.sum()) == pytest.approx(min(n, p), rel=1e-8)
        assert effective_parameters(phi, [ev], 0.1)[0] < effective_parameters(phi, [ev], 0.0)[0]
    low_rank = torch.randn(20, 3, generator=g, dtype=torch.float64) @ torch.randn(3, 8, generator=g,
                                                                                   dtype=torch.float64)
    assert effective_parameters(low_rank, [low_rank], 0.0)[0] == pytest.approx(3, rel=1e-6)  # the pinv fallback


def test_min_norm_theory_spikes_at_d():
    assert math.isinf(min_norm_excess_risk(100, 100, 0.5))
    assert min_norm_excess_risk(50, 100, 0.5) == pytest.approx(0.5 + 0.25 * 50 / 49)
    assert min_norm_excess_risk(200, 100, 0.5) == pytest.approx(0.25 * 100 / 99)


# ---- settings, study and CLI -------------------------------------------------------------------
def test_canonical_settings_and_study_grids():
    gk = named_setting("greydanus_kobak2024")
    assert GK_WIDTHS == (2, 3, 4, 5, 7, 9, 12, 16, 21, 27, 36, 47, 61, 80, 104, 135, 177, 230, 300)
    assert (gk.task.num_samples, gk.task.train_split, gk.task.label_noise) == (16000, 0.25, 0.15)
    assert (gk.optim.name, gk.optim.lr, gk.optim.momentum) == ("sgd", 0.01, 0.9)
    assert (gk.schedule.epochs, gk.schedule.batch_size, gk.loss, gk.model.depth) == (500, 100, "ce", 2)
    study = DD.study("greydanus_kobak2024", [0, 1], {"task.label_noise": 0.0}, False)
    assert [s.model.width for s in study.settings] == list(GK_WIDTHS)
    assert all(s.task.label_noise == 0.0 for s in study.settings)
    quick = DD.study("greydanus_kobak2024", [0], {}, True)
    assert [s.model.width for s in quick.settings] == list(GK_QUICK_WIDTHS)
    assert quick.note and quick.settings[0].schedule.epochs < gk.schedule.epochs
    ridge = DD.study("nakkiran2021_optimal_ridge", [0], {"task.d": 50}, False)
    assert [s.task.n_train for s in ridge.settings][:3] == [5, 10, 15]
    assert all(s.optim.ridge == pytest.approx(50 * 0.25 / s.task.n_train) for s in ridge.settings)
    with pytest.raises(SettingError, match="model.width"):
        DD.study("greydanus_kobak2024", [0], {"model.width": 10}, False)


@pytest.mark.slow
def test_cli_reproduce_exact_setting_json(tmp_path):
    res = invoke("reproduce", "double-descent", "--setting", "nakkiran2021_linear", "--seeds", "2",
                 "--set", "task.d=40", "--catalog", tmp_path / "cat", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout, parse_constant=_refuse)  # strict JSON: jq and others refuse NaN/Infinity
    assert out["peak_present"] is True and out["mean_curve_peak"] == 40 and out["trained"] == 60
    at_d = next(r for r in out["per_capacity"] if r["capacity"] == 40)
    assert at_d["theory_test_mse"] is None  # Nakkiran et al.'s closed form diverges at n = d: null


def _refuse(constant: str):
    raise ValueError(f"not JSON: {constant}")


def test_quick_note_says_when_a_set_field_replaces_its_quick_value():
    dd = PHENOMENA["double-descent"]
    assert "replaces" not in dd.study("greydanus_kobak2024", [0], {}, quick=True).note
    study = dd.study("greydanus_kobak2024", [0], {"schedule.epochs": 3}, quick=True)
    assert study.settings[0].schedule.epochs == 3 and "--set schedule.epochs replaces" in study.note
