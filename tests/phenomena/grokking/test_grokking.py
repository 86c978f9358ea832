"""Grokking measured on real training (gromov2023, a + b mod 97, quadratic MLP, full batch)."""

import json

import numpy as np
import pytest

import phenolab
from phenolab import Catalog
from phenolab.phenomena import PHENOMENA
from phenolab.phenomena.grokking.signature import classify, evaluation_resolution, run_signature
from phenolab.settings import named_setting
from tests.helpers import ok

# a quarter of the pairs: train fits by ~step 12, test follows ~10× later (measured on 3 seeds)
SMALL_FRACTION = {"task.train_fraction": 0.25, "schedule.steps": 150}


@pytest.fixture(scope="module")
def grokked(tmp_path_factory):
    cat = Catalog(tmp_path_factory.mktemp("grok"))
    study = PHENOMENA["grokking"].study("gromov2023", [0, 1, 2], SMALL_FRACTION, quick=False)
    phenolab.run(study.settings[0], [0, 1, 2], catalog=cat)
    return cat, study


@pytest.mark.slow
def test_gromov2023_groks_for_every_seed(grokked):
    cat, study = grokked
    sig = PHENOMENA["grokking"].signature(cat, study)
    assert len(sig.per_run) == 3
    for run in sig.per_run:
        assert run["final_test_acc"] >= 0.99, run
        assert run["t_train"] is not None and run["t_test"] is not None
        assert run["t_test"] / run["t_train"] >= 5, run
        assert run["phase"] == "grokking"
    assert sig.summary["ratio"]["n"] == 3 and sig.summary["ratio"]["mean"] >= 5


@pytest.mark.slow
def test_t_test_is_not_an_artifact_of_sparse_logging(grokked):
    """The same runs evaluated at every step: the log-spaced t_test is at most one evaluation gap
    later than the true first crossing (training does not depend on the evaluation schedule)."""
    _, study = grokked
    sparse_setting = study.settings[0]
    dense_setting = sparse_setting.with_overrides({"eval.every": 1})
    sparse = phenolab.train(sparse_setting, [0])
    dense = phenolab.train(dense_setting, [0])
    steps_sparse, steps_dense = np.array(sparse.steps, float), np.array(dense.steps, float)
    s = run_signature(steps_sparse, sparse.curves["train_acc"][0], sparse.curves["test_acc"][0])
    d = run_signature(steps_dense, dense.curves["train_acc"][0], dense.curves["test_acc"][0])
    gap = evaluation_resolution(steps_sparse, s["t_test"])
    assert d["t_test"] <= s["t_test"] <= d["t_test"] + gap
    assert gap <= 0.15 * s["t_test"]  # the canonical schedule resolves t_test to ~10%


@pytest.mark.slow
def test_cut_short_or_tiny_fraction_only_memorizes():
    short = named_setting("gromov2023").with_overrides({**SMALL_FRACTION, "schedule.steps": 40})
    res = phenolab.train(short, [0, 1])
    for k in range(2):
        sig = run_signature(np.array(res.steps, float), res.curves["train_acc"][k], res.curves["test_acc"][k])
        assert sig["phase"] == "memorization", sig
        assert res.curves["test_acc"][k, -1] < 0.5


def test_phase_rules():
    assert classify({"t_train": 10.0, "t_test": 100.0, "ratio": 10.0}) == "grokking"
    assert classify({"t_train": 10.0, "t_test": 12.0, "ratio": 1.2}) == "comprehension"
    assert classify({"t_train": 10.0, "t_test": None, "ratio": None}) == "memorization"
    assert classify({"t_train": None, "t_test": None, "ratio": None}) == "confusion"


@pytest.mark.slow
def test_reproduce_command_json(grokked):
    cat, _ = grokked
    args = ["reproduce", "grokking", "--setting", "gromov2023", "--seeds", "3", "--json", "--catalog", cat.path]
    for key, value in SMALL_FRACTION.items():
        args += ["--set", f"{key}={value}"]
    out = json.loads(ok(*args))
    assert out["trained"] == 0  # reused from the catalog
    assert set(out["t_test"]) == {"mean", "sd", "n"} and out["t_test"]["n"] == 3
    assert out["phases"]["grokking"] == 3
    # every field explains itself
    assert out["fields"]["t_test"]["unit"] == "steps" and "99%" in out["fields"]["t_train"]["description"]
    assert {"t_train", "ratio", "phase", "final_test_acc"} <= set(out["fields"])


@pytest.mark.slow
def test_python_api_returns_the_signature_the_runs_and_the_figure(grokked):
    cat, study = grokked
    result = phenolab.reproduce("grokking", setting="gromov2023", seeds=[0, 1, 2], catalog=cat,
                                overrides=SMALL_FRACTION)
    assert result.trained == [] and result.study.settings[0].id == study.settings[0].id
    summary = result.summary.set_index("field")
    assert summary.loc["ratio", "n"] == 3 and summary.loc["ratio", "mean"] >= 5
    assert summary.loc["t_test", "unit"] == "steps" and summary.loc["t_test", "description"]
    assert summary.loc["phases", "value"]["grokking"] == 3
    assert list(result.runs["seed"]) == [0, 1, 2] and set(result.runs["phase"]) == {"grokking"}
    assert result.figure.is_file() and result.figure.stat().st_size > 10_000
    assert result.to_json()["t_test"] == result.signature.summary["t_test"]


@pytest.mark.slow
def test_the_per_run_signature_phase_maps_read_is_the_signatures(grokked):
    cat, study = grokked
    grokking = PHENOMENA["grokking"]
    rows = grokking.signature(cat, study).per_run
    run_sig = grokking.run_signature("gromov2023")
    arrays = cat.curve_arrays([r["run_id"] for r in rows], list(run_sig.metrics))
    for row in rows:
        fast = run_sig.fn(arrays[row["run_id"]])
        assert fast == {k: v for k, v in row.items() if k not in ("run_id", "seed")}


def test_relapses_after_generalizing_are_counted():
    """Test accuracy that falls back below the threshold after t_test (a loss spike) is counted."""
    steps = np.array([0, 10, 20, 40, 80, 160, 320], dtype=float)
    train = np.array([0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    test = np.array([0.0, 0.1, 0.995, 1.0, 0.3, 1.0, 0.97])
    sig = run_signature(steps, train, test)
    assert sig["t_test"] == 20 and sig["relapses"] == 2 and sig["min_test_acc_after"] == pytest.approx(0.3)
    never = run_signature(steps, train, np.zeros(7))
    assert never["relapses"] is None and never["min_test_acc_after"] is None and never["phase"] == "memorization"


def test_quick_budget_and_its_note_yield_to_a_user_set_budget():
    grokking = PHENOMENA["grokking"]
    quick = grokking.study("nanda2023", [0], {}, quick=True)
    assert quick.settings[0].schedule.steps == 20_000 and "--quick" in quick.note
    own = grokking.study("nanda2023", [0], {"schedule.steps": 20}, quick=True)
    assert own.settings[0].schedule.steps == 20 and own.note == "" and not own.quick
