"""Relations across seeds (`relation.across: seeds`): the seed statistic and the peak criterion on
synthetic tables (one claim that must pass, one that must fail), their bootstrap, the confound
test's residual peak, ids of hypotheses without the new fields, one-line errors, and one
end-to-end evaluation on tiny exact random-features runs."""

import json
import math

import numpy as np
import pytest

from phenolab import Catalog, SettingError
from phenolab.execute import plan_batches, run_local
from phenolab.hypotheses import HypothesisLog, Relation, evaluate_registered, load_hypothesis, validate_hypothesis
from phenolab.hypotheses.across_seeds import (
    N_BOOT,
    SEED_STATISTICS,
    SeedTable,
    claim_test,
    collapse,
    confound_test,
    peak_distance,
    residual_peak_distance,
)
from phenolab.hypotheses.evidence import Unit
from phenolab.studies.figure4 import panel_hypotheses
from tests.helpers import run_subprocess

# belkin2019_rff shrunk to a 60-sample training set and 1000 test points: each run is milliseconds
TINY = {"task.num_samples": 2000, "task.train_split": 0.5, "task.train_size": 60, "task.label_noise": 0.1}
P = [20, 40, 55, 60, 65, 90, 150]  # random features: the peak is at p = n = 60


def spec(name: str = "var-peak", relation: dict | None = None, **extra) -> dict:
    rel = {"over": "settings", "across": "seeds", "statistic": "peak", "direction": "negative"}
    return {"name": name, "statement": "the seed variance of test error peaks at the test-error peak",
            "measure": "test_acc", "target": "test_acc", "relation": rel if relation is None else relation,
            "scope": [{"setting": "belkin2019_rff", "overrides": TINY, "sweep": {"model.num_features": P},
                       "seeds": 4}], **extra}


def units_from(values: np.ndarray, confound: np.ndarray | None, rel: Relation) -> list[Unit]:
    """One across-seeds unit from a synthetic [settings, seeds] table (M and T from the same values)."""
    z = [] if confound is None else [np.repeat(confound[:, None], values.shape[1], axis=1)]
    table = SeedTable([f"p={i}" for i in range(len(values))], list(range(values.shape[1])), values, values, z)
    return [Unit("group 0", *collapse(table, rel), table)]


def synthetic(spread_at: int | None, dip_at: int = 3, sd: np.ndarray | None = None, seeds: int = 12) -> np.ndarray:
    """Test accuracy per (setting, seed) over 7 settings: the mean dips at `dip_at`; the seeds' sd is
    largest at `spread_at` (or is `sd`), exactly."""
    idx = np.arange(7)
    mean = 0.8 - 0.2 * np.exp(-((idx - dip_at) ** 2))
    sd = 0.01 + 0.05 * np.exp(-((idx - spread_at) ** 2)) if sd is None else sd
    noise = np.random.default_rng(0).standard_normal((7, seeds))
    noise = (noise - noise.mean(1, keepdims=True)) / noise.std(1, ddof=1, keepdims=True)
    return mean[:, None] + sd[:, None] * noise


# ---- the statistic on synthetic arrays ----------------------------------------------------------
def test_seed_statistics_and_peak_distance() -> None:
    x = np.array([[1.0, 2.0, 3.0, 10.0], [5.0, 5.0, 5.0, 5.0]])
    assert SEED_STATISTICS["variance"](x) == pytest.approx([np.var(x[0], ddof=1), 0.0])
    assert SEED_STATISTICS["sd"](x) == pytest.approx([np.std(x[0], ddof=1), 0.0])
    assert SEED_STATISTICS["mad"](x) == pytest.approx([1.0, 0.0])  # median 2.5; |dev| 1.5 .5 .5 7.5
    t = np.array([0.8, 0.7, 0.5, 0.7, 0.8])  # dips at index 2
    assert peak_distance(np.array([0, 1, 5, 1, 0]), t, -1) == 0.0
    assert peak_distance(np.array([5, 1, 0, 1, 0]), t, -1) == 2.0
    assert peak_distance(np.array([0, 1, 0, 1, 5]), t, +1) == 4.0  # ties: T's max is its first, index 0
    assert math.isnan(peak_distance(np.ones(5), t, -1))  # a constant M has no peak


def test_claim_that_must_pass_and_claim_that_must_fail() -> None:
    hyp = validate_hypothesis(spec())
    rel = hyp.relation
    aligned = claim_test(hyp, units_from(synthetic(spread_at=3), None, rel), [], "in-sample")
    assert aligned["status"] == "pass" and aligned["mean"] == 0.0 and aligned["needs"] == "≤ 1"
    assert aligned["n"] == 12 and aligned["n_boot"] == N_BOOT and math.isfinite(aligned["sd"])
    assert aligned["curves"]["group 0"]["M"][3] == pytest.approx(0.06 ** 2)  # the variance, exactly
    assert "M max at p=3, T min at p=3: 0 step(s)" in aligned["detail"]
    apart = claim_test(hyp, units_from(synthetic(spread_at=0), None, rel), [], "in-sample")
    assert apart["status"] == "fail" and apart["mean"] == 3.0 and "claim ≤ 1" in apart["detail"]
    again = claim_test(hyp, units_from(synthetic(spread_at=0), None, rel), [], "in-sample")
    assert again["sd"] == apart["sd"]  # the bootstrap's generator is seeded from the hypothesis id

    spearman = validate_hypothesis(spec(relation={"over": "settings", "across": "seeds", "direction": "negative",
                                                  "threshold": 0.5}))
    # spread and dip at the same place: the variance rises where accuracy falls (negative ρ)
    res = claim_test(spearman, units_from(synthetic(spread_at=3), None, spearman.relation), [], "held-out")
    assert res["status"] == "pass" and res["mean"] <= -0.5 and res["needs"] == "≤ -0.5"
    res = claim_test(spearman, units_from(synthetic(spread_at=6), None, spearman.relation), [], "held-out")
    assert res["status"] == "fail"


def test_confound_test_removes_what_the_confounds_explain() -> None:
    hyp = validate_hypothesis(spec(confounds=["parameter_count"]))
    values = synthetic(spread_at=3)
    size = np.arange(7.0)  # a confound that rises along the grid: a peak survives removing its trend
    res = confound_test(hyp, units_from(values, size, hyp.relation))
    assert res["status"] == "pass" and res["mean"] == 0.0 and "residual M max at p=3" in res["detail"]
    # a spread that just grows with size has no peak of its own once size is removed
    m = np.array([1.0, 2, 3, 4, 5, 6, 7])
    assert math.isnan(residual_peak_distance(m, values.mean(1), [size], -1))
    growing = synthetic(None, sd=0.01 * np.arange(1, 8))
    res = confound_test(hyp, units_from(growing, size, hyp.relation))
    assert res["status"] == "fail" and "the confounds explain M's ranks entirely" in res["detail"]


# ---- ids and bad input ------------------------------------------------------------------------
def test_hypotheses_without_the_new_fields_keep_their_ids() -> None:
    ids = {f: load_hypothesis(f"examples/hypotheses/{f}.yaml").id
           for f in ("prime_parameters", "weight_norm_grokking", "bigger_is_better", "weight_norm_regularizer")}
    assert ids == {"prime_parameters": "373e7c8300a0b412", "weight_norm_grokking": "78a4376d463d5b2e",
                   "bigger_is_better": "890dac05e3a727cd", "weight_norm_regularizer": "35c01284872150de"}
    quick = panel_hypotheses([0, 1, 2], quick=True)
    assert (quick["grokking"].id, quick["double_descent"].id) == ("e708a52886940135", "d054c67c1edebc27")
    # the new fields at their defaults are left out of the id; a stored full dump validates to the same id
    rel = Relation().model_dump(mode="json", exclude_defaults=True)
    assert rel == {}
    prime = load_hypothesis("examples/hypotheses/prime_parameters.yaml")
    explicit = prime.model_dump(mode="json")
    explicit["relation"].update(across="none", seed_statistic="variance", peak_steps=1)
    assert validate_hypothesis(explicit).id == prime.id
    old_dump = prime.model_dump(mode="json")
    for k in ("across", "seed_statistic", "peak_steps"):
        old_dump["relation"].pop(k)
    assert validate_hypothesis(old_dump).id == prime.id  # a registration stored before these fields existed
    assert load_hypothesis("examples/hypotheses/variance_peak.yaml").relation.across == "seeds"


BAD = [
    ({"relation": {"over": "settings", "statistic": "peak"}},
     "relation.statistic 'peak' needs relation.across 'seeds'; allowed without it: 'spearman'"),
    ({"relation": {"over": "steps", "across": "seeds"}}, "relation.across 'seeds' needs relation.over 'settings'"),
    ({"relation": {"over": "settings", "across": "seeds", "peak_steps": 2}},
     "relation.peak_steps applies only with relation.statistic 'peak'"),
    ({"relation": {"over": "settings", "across": "seeds", "statistic": "peak", "threshold": 0.5}},
     "relation.threshold applies to relation.statistic 'spearman'"),
    ({"relation": {"over": "settings", "across": "seeds", "seed_statistic": "iqr"}},
     "relation.seed_statistic: Input should be 'variance', 'sd' or 'mad'"),
    ({"relation": {"over": "settings", "across": "everything"}}, "relation.across: Input should be 'none' or 'seeds'"),
    ({"interventions": [{"kind": "rescale", "layer": 0}]},
     "interventions.0.kind 'rescale': with relation.across 'seeds' only kind 'regularizer' is allowed"),
    ({"target": "test_loss", "relation": {"over": "settings", "direction": "negative"}},
     None),  # valid: a metric as M is fine over settings too (M ≠ T)
    ({"relation": {"over": "settings"}}, "measure and target are both 'test_acc': only relation.across 'seeds'"),
]


@pytest.mark.parametrize("extra,message", BAD)
def test_bad_relation_fields_are_one_line_naming_the_field(extra: dict, message: str | None) -> None:
    if message is None:
        validate_hypothesis(spec(**extra))
        return
    with pytest.raises(SettingError) as err:
        validate_hypothesis(spec(**extra))
    text = str(err.value)
    assert text.startswith("invalid hypothesis: ") and message in text and "\n" not in text, text


@pytest.mark.slow
def test_too_few_seeds_and_an_unordered_sweep_are_refused(tmp_path) -> None:
    few = spec()
    few["scope"][0]["seeds"] = 2
    with pytest.raises(SettingError, match=r"scope.0: relation.across 'seeds' needs ≥ 3 seeds per group, got 2"):
        validate_hypothesis(few)
    shuffled = spec(held_out=[{"setting": "belkin2019_rff", "overrides": TINY,
                               "sweep": {"model.num_features": [60, 20, 150]}}])
    with pytest.raises(SettingError, match=r"held_out.0.sweep: relation.statistic 'peak' counts grid steps"):
        validate_hypothesis(shuffled)
    bad = tmp_path / "bad.json"  # through the real CLI: one line on stderr, exit 2, nothing logged
    bad.write_text(json.dumps(spec(relation={"over": "settings", "across": "seeds", "seed_statistic": "var"})))
    proc = run_subprocess("hypothesis", "register", bad, "-c", tmp_path / "cat", cwd=tmp_path, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "relation.seed_statistic" in lines[0], proc.stderr
    assert HypothesisLog(Catalog(tmp_path / "cat")).entries() == []


# ---- end to end on tiny exact runs ----------------------------------------------------------------
@pytest.mark.slow
def test_end_to_end_on_tiny_random_features_runs(tmp_path) -> None:
    cat = Catalog(tmp_path / "cat")
    hyp = validate_hypothesis(spec(
        held_out=[{"setting": "belkin2019_rff", "overrides": {**TINY, "task.label_noise": 0.0},
                   "sweep": {"model.num_features": P}, "n_seeds": 4}],
        confounds=["parameter_count", "train_acc"],
        interventions=[{"kind": "regularizer", "field": "optim.ridge", "values": [0.001]}]))
    reg, _ = HypothesisLog(cat).register(hyp)
    train = lambda settings, seeds: run_local(plan_batches(settings, seeds, cat), cat, device="cpu")  # noqa: E731
    out = evaluate_registered(cat, reg.id, train)
    tests = out["tests"]
    assert out["status"] in ("supported", "refuted", "inconclusive") and out["reason"]
    for key in ("in_sample", "held_out", "confound"):
        test = tests[key]
        assert test["status"] in ("pass", "fail"), test["detail"]
        assert math.isfinite(test["mean"]) and math.isfinite(test["sd"]) and test["n"] == 4, test
        assert test["needs"] == "≤ 1" and "seed resamples" in test["detail"]
    assert tests["in_sample"]["across"] == "seeds" and len(tests["in_sample"]["curves"]["group 0"]["M"]) == len(P)
    reg_test = tests["intervention"]
    assert reg_test["status"] in ("pass", "fail", "inconclusive") and reg_test["cases"] == len(P)
    assert all(math.isfinite(c["dM"]) and math.isfinite(c["dT"]) and len(c["seeds"]) == 4
               for c in reg_test["cases_table"])
    assert "(setting, value) cases" in reg_test["detail"]
    assert HypothesisLog(cat).verdicts(reg.id)[-1]["payload"]["status"] == out["status"]
