"""The regularizer intervention on real (tiny) training: ΔM and ΔT against the unmodified runs, the
pass/fail rule, its combination with the function-preserving kinds, a bad field through the real
CLI, and the refusal of regularizer runs that predate registration."""

import json

import numpy as np
import pytest

from phenolab import Catalog, CatalogError, SettingError
from phenolab.catalog import run_id_for
from phenolab.execute import plan_batches, run_local
from phenolab.hypotheses import HypothesisLog, evaluate_registered, load_hypothesis, validate_hypothesis
from phenolab.hypotheses.regularizer import FOLLOW_SHARE, MOVE_TOLERANCE
from phenolab.studies.figure4 import panel_hypotheses
from tests.helpers import invoke, run_subprocess

# Gromov's quadratic MLP at p = 11, width 16, 50 full-batch steps: a second per setting and seed.
TINY = {"task.p": 11, "task.train_fraction": 0.5, "model.width": 16, "schedule.steps": 50, "eval.points": 5,
        "eval.every": None}
WEIGHT_DECAY = {"kind": "regularizer", "field": "optim.weight_decay", "values": [0, 20]}


def spec(name: str, direction: str, interventions: list[dict], target: str = "mean_abs_weight") -> dict:
    return {"name": name, "statement": f"the weight norm tracks {target}", "measure": "weight_norm",
            "target": target, "relation": {"over": "steps", "direction": direction, "threshold": 0.5},
            "scope": [{"setting": "gromov2023", "overrides": TINY, "seeds": 2}], "interventions": interventions}


def final(cat: Catalog, setting_id: str, seed: int, key: str) -> float:
    curves = cat.curves(run_ids=[run_id_for(setting_id, seed)], metrics=[key])
    return float(curves.sort_values("step")["value"].iloc[-1])


def test_examples_and_figure4_keep_their_ids() -> None:
    """Hypotheses without a regularizer hash as before the kind existed (defaults are left out)."""
    ids = {f: load_hypothesis(f"examples/hypotheses/{f}.yaml").id
           for f in ("prime_parameters", "weight_norm_grokking", "bigger_is_better")}
    assert ids == {"prime_parameters": "373e7c8300a0b412", "weight_norm_grokking": "78a4376d463d5b2e",
                   "bigger_is_better": "890dac05e3a727cd"}
    quick = panel_hypotheses([0, 1, 2], quick=True)
    assert (quick["grokking"].id, quick["double_descent"].id) == ("e708a52886940135", "d054c67c1edebc27")
    assert "regularizer" not in load_hypothesis("examples/hypotheses/prime_parameters.yaml").frozen_setting_ids()


def test_regularizer_moves_m_and_the_rule_decides_on_real_training(tmp_path) -> None:
    cat = Catalog(tmp_path / "cat")
    log = HypothesisLog(cat)
    # weight decay shrinks every weight: the norm and the mean |w| fall (and rise) together
    follows, _ = log.register(validate_hypothesis(spec("follows", "positive", [WEIGHT_DECAY])))
    against, _ = log.register(validate_hypothesis(spec("against", "negative", [
        {"kind": "rescale", "layer": 0, "factors": [0.5]}, WEIGHT_DECAY])))
    inert, _ = log.register(validate_hypothesis(spec("inert", "positive", [
        {"kind": "regularizer", "field": "eval.batch_size", "values": [4096]}])))  # memory only: M cannot move
    train = lambda settings, seeds: run_local(plan_batches(settings, seeds, cat), cat, device="cpu")  # noqa: E731

    out = evaluate_registered(cat, follows.id, train)
    test = out["tests"]["intervention"]
    hyp = follows.hypothesis
    base = hyp.scope_settings()[0][0]
    variants = hyp.regularized_settings()[0][0]
    assert len(test["cases_table"]) == test["cases"] == 4  # 1 setting × 2 seeds × 2 values
    for case in test["cases_table"]:  # ΔM and ΔT recomputed from the stored curves
        new = variants[[0, 20].index(int(case["value"].split("=")[1]))]
        assert case["run_id"] == run_id_for(new.id, case["seed"])
        for delta, key in (("dM", "weight_norm"), ("dT", "mean_abs_weight")):
            expected = final(cat, new.id, case["seed"], key) - final(cat, base.id, case["seed"], key)
            assert case[delta] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    by_value = {c["value"]: c for c in test["cases_table"]}
    assert by_value["optim.weight_decay=0"]["dM"] > 0 > by_value["optim.weight_decay=20"]["dM"]  # wd 5 → 0 / 20
    dm, dt = np.array([c["dM"] for c in test["cases_table"]]), np.array([c["dT"] for c in test["cases_table"]])
    moved = np.abs(dm) > MOVE_TOLERANCE * test["m_range"]
    followed = moved & (np.sign(dt) == np.sign(dm)) & (np.abs(dt) >= 0.1 * test["t_range"])
    assert moved.all() and (test["moved"], test["followed"]) == (4, int(followed.sum()))
    assert test["status"] == ("pass" if followed.sum() / moved.sum() >= FOLLOW_SHARE else "fail") == "pass"
    assert test["dM"]["n"] == 4 and test["dM"]["mean"] == pytest.approx(dm.mean())
    assert out["runs"]["regularizer"] and all(r.startswith(tuple(v.id for v in variants))
                                              for r in out["runs"]["regularizer"])

    # the opposite claim: T moves, but not the way it predicts; the function-preserving kind cannot
    # decide (its in-sample map in the claimed direction is flat), so the regularizer fails the test
    out = evaluate_registered(cat, against.id, train)
    test = out["tests"]["intervention"]
    assert test["kinds"]["regularizer"]["status"] == "fail" and test["kinds"]["regularizer"]["followed"] == 0
    assert test["kinds"]["function-preserving"]["status"] == "inconclusive"
    assert test["status"] == "fail" and test["failed_kinds"] == ["regularizer"]
    assert out["status"] == "refuted" and "intervention: failed by regularizer" in out["reason"]

    out = evaluate_registered(cat, inert.id, train)
    test = out["tests"]["intervention"]
    assert test["status"] == "inconclusive" and test["moved"] == 0 and test["dM"]["mean"] == 0.0
    assert "M never moved" in test["detail"]


@pytest.mark.slow
def test_bad_field_is_one_line_and_a_nonzero_exit_through_the_real_cli(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(spec("bad", "positive", [{**WEIGHT_DECAY, "field": "optim.weight_dcay"}])))
    proc = run_subprocess("hypothesis", "register", bad, "-c", tmp_path / "cat", cwd=tmp_path, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "interventions.0.field 'optim.weight_dcay' is not a field of the setting" in lines[0]
    assert "allowed under 'optim':" in lines[0] and "weight_decay" in lines[0]
    assert HypothesisLog(Catalog(tmp_path / "cat")).entries() == []
    with pytest.raises(SettingError, match=r"interventions.0.values: optim.weight_decay = -1"):
        validate_hypothesis(spec("neg", "positive", [{**WEIGHT_DECAY, "values": [-1]}]))
    with pytest.raises(SettingError, match="'layer' is not a field of kind 'regularizer'"):
        validate_hypothesis(spec("layer", "positive", [{**WEIGHT_DECAY, "layer": 1}]))


def test_regularizer_runs_that_predate_registration_are_refused(tmp_path) -> None:
    cat = Catalog(tmp_path / "cat")
    hyp = validate_hypothesis(spec("peeked", "positive", [WEIGHT_DECAY]))
    # the scope seeds are known in advance: someone could train the modified settings first...
    run_local(plan_batches(hyp.regularized_settings()[0][0], hyp.scope[0].seeds, cat), cat, device="cpu")
    reg, _ = HypothesisLog(cat).register(hyp)
    with pytest.raises(CatalogError, match="regularizer run .* before hypothesis .* was registered.*cannot test it"):
        evaluate_registered(cat, reg.id)
    res = invoke("hypothesis", "test", reg.id, "-c", cat.path, catch_exceptions=True)
    assert res.exit_code != 0 and isinstance(res.exception, CatalogError)
    assert HypothesisLog(cat).verdicts() == []  # refused, not judged
