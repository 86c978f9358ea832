"""Epoch-wise double descent, measured on real gradient-descent training of the
`epochwise_two_scale` setting (two feature scales): the test error falls, rises and falls again
for every seed, and equal feature scales — the mechanism's prediction — remove the second descent.
(The MNIST-1D setting `epochwise` takes minutes; docs/reproduce-double-descent.md measures it.)"""

import numpy as np
import pytest
import torch

from phenolab.catalog import Catalog
from phenolab.phenomena import PHENOMENA, Trainer
from phenolab.phenomena.double_descent.epochwise import curve_signature, learning_start
from phenolab.settings import named_setting
from phenolab.tasks.regression import sample_replica

DD = PHENOMENA["double-descent"]


def reproduce(catalog: Catalog, seeds: list[int], overrides: dict | None = None) -> dict:
    study = DD.study("epochwise_two_scale", seeds, overrides or {}, False)
    DD.train(study, Trainer.local(catalog, "cpu"))
    return DD.signature(catalog, study)


@pytest.mark.slow
def test_two_scales_fall_rise_and_fall_again_and_equal_scales_do_not(tmp_path):
    cat = Catalog(tmp_path / "cat")
    sig = reproduce(cat, [0, 1, 2])
    s = sig.summary
    assert s["n_runs"] == 3 and s["runs_with_peak"] == 3 and s["peak_present"] is True
    for r in sig.per_run:
        assert r["first_min_at"] < r["peak_at"] < r["second_min_at"]
        assert r["rise"] > 0.1 and r["second_descent"] > 0.1  # test MSE units; σ² = 0.04
        assert r["train_error_at_peak"] > 0.05  # the peak comes before the training set is fit
    assert s["second_min"]["mean"] < s["first_min"]["mean"]  # the second descent goes lower
    # what `phenolab phase` may map is what the signature has (bookkeeping aside), every key described
    keys = set(s) | set(sig.per_run[0])
    fields = DD.fields("epochwise_two_scale")
    assert set(fields.mappable()) == keys - {"n_runs", "run_id", "seed"}
    assert all(fields.get(k) is not None for k in keys)
    # same data and budget, equal scales (lr lowered: the isotropic spectrum is wider): no second descent
    ctrl = reproduce(cat, [0, 1, 2], {"task.slow_scale": 1.0, "optim.lr": 0.1})
    assert ctrl.summary["peak_present"] is False
    assert all(r["second_descent"] is None or r["second_descent"] < 0.01 for r in ctrl.per_run)


def test_two_scale_data_have_the_documented_scales_and_signal_shares():
    task = named_setting("epochwise_two_scale").task
    x, y, x_test, y_test = sample_replica(task, 0)
    fast = task.d - task.slow_dims
    assert torch.allclose(x[:, :fast].std(), torch.tensor(1.0, dtype=x.dtype), atol=0.02)
    assert torch.allclose(x[:, fast:].std(), torch.tensor(task.slow_scale, dtype=x.dtype), rtol=0.02)
    beta = torch.linalg.lstsq(x_test, y_test).solution.squeeze(-1)  # n_test > d: recovers β up to noise
    share_slow = float((beta[fast:] * task.slow_scale).norm() ** 2 / ((beta[:fast]).norm() ** 2
                                                                      + (beta[fast:] * task.slow_scale).norm() ** 2))
    assert abs(share_slow - task.slow_signal) < 0.05


def test_isotropic_task_draws_are_unchanged_by_the_two_scale_option():
    base = named_setting("nakkiran2021_linear").task
    two = base.model_copy(update={"slow_dims": 0, "slow_scale": 1.0, "slow_signal": 0.0})
    for a, b in zip(sample_replica(base, 3), sample_replica(two, 3), strict=True):
        assert torch.equal(a, b)


def test_curve_signature_on_synthetic_curves():
    steps = np.arange(9.0)
    sig = curve_signature(steps, np.array([1.0, 0.5, 0.5, 0.8, 0.9, 0.6, 0.4, 0.4, 0.45]), np.linspace(1, 0, 9))
    assert (sig["first_min_at"], sig["peak_at"], sig["second_min_at"]) == (1.0, 3.0, 6.0)
    # read on the median of three: the peak is 0.8 (0.9 is seen at one evaluation only)
    assert np.isclose(sig["rise"], 0.3) and np.isclose(sig["second_descent"], 0.4)
    assert sig["interpolation_step"] == 8.0
    # a jump at one evaluation is not a peak
    spike = curve_signature(np.arange(5.0), np.array([1.0, 0.5, 0.9, 0.5, 0.4]), np.ones(5))
    assert spike["has_peak"] is False
    flat = curve_signature(steps, np.array([1.0, 0.5, 0.5, 0.5 + 1e-17, 0.5, 0.5, 0.5]), np.ones(7))
    assert flat["has_peak"] is False and flat["interpolation_step"] is None


def test_no_peak_is_looked_for_on_the_initial_plateau():
    # a bump of 0.05 over two evaluations while the error is still near its start (0.9 → 0.4 in all),
    # then one of 0.03 after learning: without `learning_start` the first would be the peak
    test = np.array([0.9, 0.8, 0.8, 0.85, 0.85, 0.8, 0.6, 0.45, 0.42, 0.42, 0.45, 0.45, 0.40, 0.40])
    sig = curve_signature(np.arange(14.0), test, np.linspace(0.9, 0.0, 14))
    assert (sig["first_min_at"], sig["peak_at"], sig["second_min_at"]) == (8.0, 10.0, 12.0)
    assert np.isclose(sig["rise"], 0.03) and np.isclose(sig["second_descent"], 0.05)
    assert learning_start(test) == 6 and learning_start(np.full(4, 0.5)) == 0


@pytest.mark.slow
def test_mnist1d_setting_records_the_noisy_label_fit_its_signature_reads(tmp_path):
    # the real `epochwise` setting, 3 epochs: the measure is recorded and read at every evaluation
    cat = Catalog(tmp_path / "cat")
    study = DD.study("epochwise", [0], {"schedule.epochs": 3, "eval.points": 12}, False)
    DD.train(study, Trainer.local(cat, "cpu"))
    sig = DD.signature(cat, study)
    fits = [row["noisy_fit"] for row in sig.extra["mean_curve"]]
    assert len(fits) == 12 and all(0.0 <= f <= 1.0 for f in fits)
    assert abs(fits[0] - 0.1) < 0.05  # at init a changed label is predicted about as often as any class
    run = sig.per_run[0]
    assert set(run) >= {"noisy_fit_at_first_min", "noisy_fit_at_peak", "noisy_fit_at_second_min"}
