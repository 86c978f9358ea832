"""`phenolab audit`: the curve readings it shares across metrics, its outcome rule, and audits on
real training (a grokking setting where the phenomenon is present, one where it is not)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phenolab.analysis.curves import abruptness, progress_step
from phenolab.catalog import Catalog
from phenolab.phenomena import AuditReading, Trainer, get_phenomenon
from phenolab.studies.audit import NOT_PRESENT, judge, plan_audit, read_audit, train_audit
from tests.helpers import invoke

STEPS = np.unique(np.geomspace(1, 1000, 60).astype(int)).astype(float)
X = np.log10(STEPS)
SHAPES = {"step": (X > 1.5).astype(float), "sigmoid": 1 / (1 + np.exp(-(X - 1.5) * 3)), "line": X / X.max()}


@pytest.mark.parametrize("direction", ["rising (accuracy)", "falling (loss)", "scaled (Brier)"])
def test_abruptness_orders_a_step_a_sigmoid_and_a_line_the_same_way_for_every_metric(direction):
    def as_metric(v):
        return {"rising (accuracy)": v, "falling (loss)": 2.3 * (1 - v), "scaled (Brier)": 0.9 - 0.7 * v}[direction]

    a = {name: abruptness(STEPS, as_metric(v)) for name, v in SHAPES.items()}
    assert a["step"] > a["sigmoid"] > a["line"]
    assert a["step"] == pytest.approx(1.0) and a["line"] == pytest.approx(0.1, abs=0.02)
    assert abruptness(STEPS, np.ones_like(STEPS)) is None  # a flat curve has no change to share out


def test_progress_step_is_when_the_curve_has_made_most_of_its_change():
    up = np.array([0.0, 0.1, 0.5, 0.95, 1.0])
    steps = np.array([0.0, 1.0, 10.0, 100.0, 1000.0])
    assert progress_step(steps, up, higher_is_better=True) == 100.0
    assert progress_step(steps, 1 - up, higher_is_better=False) == 100.0
    assert progress_step(steps, 1 - up, higher_is_better=True) is None  # never improves


def test_the_outcome_rule():
    base = AuditReading(True, {"mean": 10.0, "sd": 1.0, "n": 4})
    assert judge(base, base, is_base=True) == ("present", "")
    assert judge(base, AuditReading(True, {"mean": 9.5, "sd": 1.0, "n": 4}))[0] == "survives"
    outcome, change = judge(base, AuditReading(True, {"mean": 5.0, "sd": 1.0, "n": 4}))
    assert outcome == "weakens" and change.startswith("-5 ± 0.71") and "(-50%)" in change
    assert judge(base, AuditReading(False))[0] == "vanishes"
    # a size in another metric's units is compared for presence only
    assert judge(base, AuditReading(True, {"mean": 0.1, "sd": 0.0, "n": 4}, comparable=False)) == ("survives", "")
    assert judge(base, AuditReading(False, available=False))[0] == "not available"
    assert judge(AuditReading(False), AuditReading(True, {"mean": 3.0, "sd": 0.0, "n": 2}))[0] == NOT_PRESENT


FAST_GROK = {"task.p": 61, "task.train_fraction": 0.3, "schedule.steps": 400, "model.width": 256}  # ratio ~8


@pytest.mark.slow
def test_an_audit_of_fast_grokking_reads_every_control_from_real_runs(tmp_path):
    cat = Catalog(tmp_path / "cat")
    grokking = get_phenomenon("grokking")
    plan = plan_audit(grokking, "gromov2023", [0, 1], FAST_GROK)
    train_audit(plan, Trainer.local(cat))
    rows = {f"{r.control.kind}: {r.control.label}": r for r in read_audit(plan, cat)}
    base = rows["base: the setting as it is"]
    assert base.outcome == "present" and base.reading.size["n"] == 2 and base.reading.size["mean"] >= 2
    # re-read under accuracy with the shared 90%-progress rule, grokking is still there
    assert rows["metric: accuracy"].reading.present
    assert all(r.outcome in ("present", "survives", "weakens", "vanishes", "not available") for r in rows.values())
    assert {r.control.kind for r in rows.values()} == {"base", "metric", "init scale", "regularization", "variation"}
    # recording the scores does not touch training: the base runs' accuracy is the plain runs' bit for bit
    plain = grokking.study("gromov2023", [0, 1], FAST_GROK)
    Trainer.local(cat).missing(plain.settings, [0, 1])
    both = cat.curve_arrays([f"{plan.base.settings[0].id}-0", f"{plain.settings[0].id}-0"], ["test_acc"])
    (s1, v1), (s2, v2) = (both[r]["test_acc"] for r in both)
    assert np.array_equal(s1, s2) and np.array_equal(v1, v2)


@pytest.mark.slow
def test_an_audit_of_a_setting_without_the_phenomenon_says_so_and_is_stored(tmp_path):
    cat = tmp_path / "cat"
    out = json.loads(invoke("audit", "grokking", "--set", "task.p=13", "--set", "schedule.steps=30", "--seeds", "2",
                            "--catalog", cat, "--json").stdout)
    assert out["rows"][0]["present"] is False
    assert {r["outcome"] for r in out["rows"]} == {NOT_PRESENT}  # nothing invented for the controls
    (note,) = Catalog(cat).notes("audit")
    assert note["obj"]["rows"] == out["rows"] and note["obj"]["phenomenon"] == "grokking"


@pytest.mark.slow
def test_optimally_tuned_ridge_removes_the_linear_peak(tmp_path):
    """A regularization control that is an option of the phenomenon (the penalty differs per cell)."""
    cat = Catalog(tmp_path / "cat")
    dd = get_phenomenon("double-descent")
    plan = plan_audit(dd, "nakkiran2021_linear", [0, 1, 2], {"task.n_test": 500})
    (ridge, study), = [(c, s) for c, s in plan.controls if c.options]
    assert ridge.kind == "regularization" and ridge.options == {"ridge": "optimal"}
    n, lam = study.settings[0].task.n_train, study.settings[0].optim.ridge
    assert lam == pytest.approx(100 * 0.5 ** 2 / n)  # d·σ²/n at each cell
    train_audit(plan, Trainer.local(cat))
    rows = {r.control.label: r for r in read_audit(plan, cat)}
    assert rows["the setting as it is"].outcome == "present"
    assert rows[ridge.label].outcome == "vanishes"
    with pytest.raises(Exception, match="--ridge optimal: the optimal penalty is known for exact least squares"):
        dd.study("greydanus_kobak2024", [0], {}, options={"ridge": "optimal"})
