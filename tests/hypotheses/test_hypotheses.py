"""Hypotheses: function-preserving interventions, partial correlations, the hash-chained log, the
refusal of evidence that predates registration, and the prime hypothesis refuted on real training."""

import json
import math
import sqlite3

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from phenolab import Catalog, CatalogError, SettingError
from phenolab._rng import generators
from phenolab.execute import plan_batches, run_local
from phenolab.hypotheses import HypothesisLog, evaluate_registered, load_hypothesis, validate_hypothesis
from phenolab.hypotheses.interventions import output_change, permute, rescale
from phenolab.hypotheses.statistics import explained_by, partial_spearman, spearman
from phenolab.hypotheses.verdict import decide
from phenolab.measures import MeasureContext, compute_measure
from phenolab.models import build_model
from phenolab.settings import MlpModel, TransformerModel
from tests.helpers import invoke

# A Gromov (2023) grokking MLP small enough to grok in seconds: p = 31, 30% of pairs, 600 full-batch steps.
FAST_GROK = {"task.p": 31, "task.train_fraction": 0.3, "schedule.steps": 600, "eval.points": 40, "eval.every": None}
TINY = {"task.p": 11, "task.train_fraction": 0.5, "model.width": 16, "schedule.steps": 5, "eval.points": 3,
        "eval.every": None}


def hypothesis(name: str = "tiny", **extra) -> dict:
    base = {"name": name, "statement": "prime count tracks test accuracy",
            "measure": {"name": "prime_parameter_count", "params": {"scale": 10}}, "target": "test_acc",
            "scope": [{"setting": "gromov2023", "overrides": TINY, "seeds": 2}],
            "held_out": [{"setting": "gromov2023", "overrides": {**TINY, "task.op": "-"}, "n_seeds": 2}],
            "confounds": ["mean_abs_weight", "step"]}
    return {**base, **extra}


# ---- interventions ----------------------------------------------------------------------------
CASES = {
    "relu_mlp": (MlpModel(name="mlp", width=24, depth=2), 1),
    "quadratic_nobias": (MlpModel(name="mlp", width=24, depth=1, activation="quadratic", bias=False), 0),
    "transformer": (TransformerModel(name="transformer", n_layers=1, d_model=16, n_heads=2, d_mlp=32), 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rescaling_and_permuting_keep_outputs_but_rescaling_moves_the_prime_count(case: str) -> None:
    cfg, layer = CASES[case]
    tokens = cfg.name == "transformer"
    model = build_model(cfg, 13 if tokens else 10, 7, 4 if tokens else None)
    params = model.init(generators([0, 1, 2], "init"), torch.float64)
    params = {n: p * 4 for n, p in params.items()}  # weights around ±1 so round(10|w|) spans many integers
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 13, (3, 50, 4), generator=g) if tokens else torch.randn(3, 50, 10, generator=g,
                                                                                 dtype=torch.float64)
    ctx = MeasureContext(model, params, 0)
    before = compute_measure("prime_parameter_count", params, ctx, scale=10)

    scaled = rescale(model, params, layer, 3.7)
    assert output_change(model, params, scaled, x) < 1e-12  # float64: equal to rounding
    after = compute_measure("prime_parameter_count", scaled, ctx, scale=10)
    assert (after != before).all(), (before, after)
    if not tokens:  # here every parameter sits in the rescaled layers: a large move
        assert ((after - before).abs() > 0.05 * before).all(), (before, after)

    perm = permute(model, params, layer, torch.Generator().manual_seed(1))
    assert output_change(model, params, perm, x) < 1e-12
    assert any(not torch.equal(perm[n], params[n]) for n in params)
    assert torch.equal(compute_measure("prime_parameter_count", perm, ctx, scale=10), before)

    not_preserving = dict(params, w0=params["w0"] * 1.5) if not tokens else dict(
        params, **{"l0.w_in": params["l0.w_in"] * 1.5})
    assert output_change(model, params, not_preserving, x) > 1e-3  # the check can fail


def test_rescaling_in_float32_is_equal_to_float_tolerance() -> None:
    model = build_model(MlpModel(name="mlp", width=64, depth=2), 40, 10)
    params = model.init(generators([0, 1], "init"))
    x = torch.randn(2, 200, 40, generator=torch.Generator().manual_seed(0))
    assert output_change(model, params, rescale(model, params, 0, 3.0), x) < 1e-5


def test_gelu_and_bad_layers_are_refused() -> None:
    model = build_model(MlpModel(name="mlp", width=8, depth=1, activation="gelu"), 4, 2)
    params = model.init(generators([0], "init"))
    with pytest.raises(SettingError, match="not positively homogeneous"):
        rescale(model, params, 0, 2.0)
    relu = build_model(MlpModel(name="mlp", width=8, depth=1), 4, 2)
    with pytest.raises(SettingError, match="allowed 0..0"):
        rescale(relu, relu.init(generators([0], "init")), 1, 2.0)


# ---- statistics --------------------------------------------------------------------------------
def test_partial_spearman_matches_the_closed_form_and_removes_a_shared_cause() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=400)
    m, t = z + 0.3 * rng.normal(size=400), z ** 3 + 0.3 * rng.normal(size=400)
    assert spearman(m, t) == pytest.approx(spearmanr(m, t)[0], abs=1e-12)
    r = lambda a, b: spearmanr(a, b)[0]  # noqa: E731
    closed = (r(m, t) - r(m, z) * r(t, z)) / math.sqrt((1 - r(m, z) ** 2) * (1 - r(t, z) ** 2))
    assert partial_spearman(m, t, [z]) == pytest.approx(closed, abs=1e-12)
    assert spearman(m, t) > 0.8 and abs(partial_spearman(m, t, [z])) < 0.2
    direct = z + 0.3 * rng.normal(size=400)
    assert partial_spearman(direct, direct + 0.1 * rng.normal(size=400), [z]) > 0.5
    assert math.isnan(spearman(np.ones(10), np.arange(10.0)))
    count = np.arange(10.0) ** 2  # rises in lockstep with the confound: nothing of it is left to track t
    assert spearman(count, np.arange(10.0) + rng.normal(size=10)) > 0.5
    assert partial_spearman(count, np.arange(10.0) + rng.normal(size=10), [np.arange(10.0)]) == 0.0
    assert explained_by(count, [np.arange(10.0)]) and not explained_by(m, [z])


def test_verdict_rules() -> None:
    ok = {"status": "pass", "detail": "ok"}
    assert decide({k: ok for k in ("in_sample", "held_out", "confound", "intervention")})[0] == "supported"
    status, reason = decide({"in_sample": ok, "held_out": ok, "confound": {"status": "fail", "detail": "low"},
                             "intervention": {"status": "not_run", "detail": "none named"}})
    assert status == "refuted" and "confound: low" in reason
    assert decide({"in_sample": ok, "held_out": ok, "confound": ok,
                   "intervention": {"status": "not_run", "detail": "x"}})[0] == "inconclusive"


# ---- registration ------------------------------------------------------------------------------
def test_bad_hypothesis_is_one_line_and_nothing_is_logged(tmp_path) -> None:
    with pytest.raises(SettingError, match=r"invalid hypothesis: .*unknown measure 'prime_count'"):
        validate_hypothesis(hypothesis(measure="prime_count"))
    with pytest.raises(SettingError, match="relation.threshold"):
        validate_hypothesis(hypothesis(relation={"threshold": 2}))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstatement: y\nmeasure: weight_norm\ntarget: test_acc\nscope: []\n")
    res = invoke("hypothesis", "register", str(bad), "-c", str(tmp_path / "cat"), catch_exceptions=True)
    assert res.exit_code != 0 and "scope" in str(res.exception or res.output)
    assert HypothesisLog(Catalog(tmp_path / "cat")).entries() == []


def test_log_is_hash_chained_and_any_edit_is_detected(tmp_path) -> None:
    cat = Catalog(tmp_path / "cat")
    log = HypothesisLog(cat)
    first, new = log.register(validate_hypothesis(hypothesis("first")))
    assert new and log.register(validate_hypothesis(hypothesis("first"))) == (first, False)  # idempotent
    second, _ = log.register(validate_hypothesis(hypothesis("second", target="test_loss",
                                                             relation={"direction": "negative"})))
    # no runs yet: the test runs, says what is missing, and its verdict is logged too
    result = evaluate_registered(cat, second.id)
    assert result["status"] == "inconclusive" and "--run-missing" in result["tests"]["in_sample"]["detail"]
    check = log.verify()
    assert check.ok and check.entries == 3, check.problems
    res = invoke("hypothesis", "verify", "-c", str(cat.path), "--json")
    assert res.exit_code == 0 and json.loads(res.output)["head"] == check.head

    with sqlite3.connect(cat.path) as db:  # a researcher "fixes" the registered threshold by hand
        row_id, text = db.execute("SELECT id, json FROM notes WHERE kind='hypothesis_log' ORDER BY id").fetchone()
        assert '"threshold":0.8' in text
        db.execute("UPDATE notes SET json=? WHERE id=?", (text.replace('"threshold":0.8', '"threshold":0.5'), row_id))
    check = log.verify()
    assert not check.ok and "entry 0" in check.problems[0] and "does not match its hash" in check.problems[0]
    res = invoke("hypothesis", "verify", "-c", str(cat.path), catch_exceptions=True)
    assert res.exit_code == 1 and "does not match its hash" in res.output
    with pytest.raises(CatalogError, match="hypothesis log is broken"):
        evaluate_registered(cat, second.id)  # nothing is tested against a tampered log
    with pytest.raises(CatalogError, match="hypothesis log is broken"):
        log.register(validate_hypothesis(hypothesis("third")))

    with sqlite3.connect(cat.path) as db:  # restore it, then delete the middle entry instead
        db.execute("UPDATE notes SET json=? WHERE id=?", (text, row_id))
    assert log.verify().ok
    with sqlite3.connect(cat.path) as db:
        db.execute("DELETE FROM notes WHERE id=(SELECT id FROM notes WHERE kind='hypothesis_log' ORDER BY id "
                   "LIMIT 1 OFFSET 1)")
    problems = log.verify().problems
    assert any("sequence number" in p for p in problems) and any("link does not match" in p for p in problems)


def test_a_registered_hypothesis_cannot_change_only_be_superseded(tmp_path) -> None:
    log = HypothesisLog(Catalog(tmp_path / "cat"))
    old, _ = log.register(validate_hypothesis(hypothesis("prime")))
    with pytest.raises(CatalogError, match=f"named 'prime' is registered .*supersedes: {old.id}"):
        log.register(validate_hypothesis(hypothesis("prime", confounds=["weight_norm"])))
    new, _ = log.register(validate_hypothesis(hypothesis("prime", confounds=["weight_norm"], supersedes=old.id)))
    with pytest.raises(CatalogError, match="already superseded"):
        log.register(validate_hypothesis(hypothesis("prime-b", supersedes=old.id)))
    rows = {r["id"]: r for r in log.listing()}
    assert rows[old.id]["superseded_by"] == new.id and rows[new.id]["supersedes"] == old.id
    assert new.held_out_seeds != old.held_out_seeds  # a new hash, new held-out seeds
    assert log.registration("prime").id == new.id


def test_held_out_evidence_that_predates_registration_is_refused(tmp_path) -> None:
    cat = Catalog(tmp_path / "cat")
    hyp = validate_hypothesis(hypothesis("peeked"))
    # the seeds are a function of the content hash, so someone could train them before registering...
    held = hyp.held_out_settings()[0]
    run_local(plan_batches(held, hyp.held_out_seeds(2), cat), cat, device="cpu")
    reg, _ = HypothesisLog(cat).register(hyp)
    with pytest.raises(CatalogError, match="before hypothesis .* was registered.*cannot test it"):
        evaluate_registered(cat, reg.id)
    res = invoke("hypothesis", "test", reg.id, "-c", str(cat.path), catch_exceptions=True)
    assert res.exit_code != 0
    assert [v for v in HypothesisLog(cat).verdicts()] == []  # refused, not judged


# ---- the prime hypothesis on real training -------------------------------------------------------
@pytest.mark.slow
def test_prime_hypothesis_on_fast_grokking_is_refuted_by_confound_and_intervention(tmp_path) -> None:
    """Measured: ρ(prime count, test accuracy) over steps is high in-sample, but vanishes once the
    weights' magnitude and the step are controlled for, and a function-preserving rescaling moves
    the count while test accuracy cannot move."""
    spec = {
        "name": "prime-grokking", "statement": "prime count tracks test accuracy while grokking",
        "measure": {"name": "prime_parameter_count", "params": {"scale": 10}}, "target": "test_acc",
        "relation": {"over": "steps", "direction": "positive", "threshold": 0.8},
        "scope": [{"setting": "gromov2023", "overrides": FAST_GROK, "seeds": 3}],
        "held_out": [{"setting": "gromov2023", "overrides": {**FAST_GROK, "task.train_fraction": 0.5},
                      "n_seeds": 2}],
        "confounds": ["mean_abs_weight", "weight_norm", "step"],
        "interventions": [{"kind": "rescale", "layer": 0, "factors": [0.5, 2.0]}, {"kind": "permute"}],
    }
    path = tmp_path / "prime.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    cat = str(tmp_path / "cat")
    reg = json.loads(invoke("hypothesis", "register", str(path), "-c", cat, "--json").output)
    assert reg["new"] and len(reg["held_out_seeds"]) == 2 and reg["id"] == load_hypothesis(path).id
    res = invoke("hypothesis", "test", reg["id"], "--run-missing", "--device", "cpu", "-c", cat, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    tests = out["tests"]
    assert tests["in_sample"]["status"] == "pass" and tests["in_sample"]["mean"] >= 0.8
    assert tests["in_sample"]["n"] == 3 and tests["held_out"]["n"] == 2
    assert tests["confound"]["status"] == "fail" and tests["confound"]["mean"] < 0.5
    assert tests["intervention"]["status"] == "fail"
    per = tests["intervention"]["per_transform"]
    assert all(t["max_output_change"] < 1e-4 for t in per.values())  # the function really was unchanged
    assert per["permute layer 0"]["dM_rel"]["mean"] == 0.0  # the count is permutation-invariant
    assert per["rescale layer 0 by 0.5"]["obs_dT"]["mean"] == 0.0
    assert out["status"] == "refuted" and "confound" in out["reason"] and "intervention" in out["reason"]
    held_out = Catalog(cat).runs()
    held_out = held_out[held_out["seed"].isin(reg["held_out_seeds"])]
    assert len(held_out) == 2 and (held_out["started"] > out["registered"]).all()

    listed = json.loads(invoke("hypothesis", "list", "-c", cat, "--json").output)
    assert [(r["id"], r["verdict"]) for r in listed] == [(reg["id"], "refuted")]
    shown = json.loads(invoke("hypothesis", "show", reg["id"][:6], "-c", cat, "--json").output)
    assert shown["verdicts"][-1]["status"] == "refuted"
    assert invoke("hypothesis", "verify", "-c", cat).exit_code == 0
