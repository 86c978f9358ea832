"""Fitting, freezing and scoring without training: on a synthetic task whose target is a known
function of one measure plus noise, that measure ranks first and a shuffled copy below both baselines."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from phenolab.tournament import Explanation, fit_predictor, holm, predict, score
from phenolab.tournament.predictors import Predictor, predictors_digest
from phenolab.tournament.spec import Competitor, Scoring
from tests.tournament.conftest import synthetic_points

MEASURES = {"good": "mean_abs_weight", "shuffled": "distance_from_init", "time": "step", "magnitude": "weight_norm"}


def competitors() -> list[Competitor]:
    out = [Competitor(n, "explanation", Explanation(name=n, measure=MEASURES[n], direction="positive"), "positive")
           for n in ("good", "shuffled")]
    return out + [Competitor(n, "baseline", Explanation(name=n, measure=MEASURES[n], direction="positive"), "auto")
                  for n in ("time", "magnitude")]


def test_the_true_measure_ranks_first_and_a_shuffled_copy_below_both_baselines() -> None:
    rng = np.random.default_rng(7)
    scope, held = synthetic_points(rng, groups=2, seeds=5), synthetic_points(rng, groups=3, seeds=5)
    comps = competitors()
    frozen = {c.name: fit_predictor(scope[f"x:{c.name}"].to_numpy(), scope["target"].to_numpy(), "isotonic",
                                    c.direction) for c in comps}
    preds = {n: predict(p, held[f"x:{n}"].to_numpy()) for n, p in frozen.items()}
    s = score(held, comps, preds, Scoring(n_boot=2000), "0123456789abcdef")
    ranking = s["ranking"]
    assert ranking[0] == "good", ranking
    assert ranking.index("shuffled") > ranking.index("time") and ranking.index("shuffled") > ranking.index("magnitude")
    good, shuffled = s["competitors"]["good"], s["competitors"]["shuffled"]
    assert good["beats_both_baselines"] and good["breadth"] == {"beats_both_in": ["group 0", "group 1", "group 2"],
                                                                 "n": 3, "of": 3}
    assert good["skill"]["time"] > 0.3 and good["skill"]["magnitude"] > 0.3
    assert shuffled["skill"]["time"] < 0 and shuffled["skill"]["magnitude"] < 0 and shuffled["breadth"]["n"] == 0
    assert set(good["beats"]) == {"shuffled", "time", "magnitude"}  # Holm-adjusted paired bootstrap
    assert good["partial"] > 0.5 and abs(shuffled["partial"]) < 0.2
    lo, hi = good["boot"]["mae"]["ci95"]
    assert lo <= good["mae"] <= hi
    assert len(s["pairwise"]) == 6 and s["n_seed_clusters"] == 15


def test_frozen_isotonic_predictions_are_sklearns() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 10, 300), rng.normal(0, 0.3, 300)
    y += np.sqrt(x)
    p = fit_predictor(x, y, "isotonic", "positive")
    xt = rng.uniform(-3, 13, 500)
    iso = IsotonicRegression(out_of_bounds="clip").fit(x, y)
    assert np.array_equal(predict(p, xt), iso.predict(xt))
    again = Predictor.model_validate_json(p.model_dump_json())  # what the log stores and reads back
    assert np.array_equal(predict(again, xt), predict(p, xt))
    assert predictors_digest({"a": again}) == predictors_digest({"a": p})


def test_a_claimed_direction_is_kept_and_a_flat_value_predicts_the_mean() -> None:
    x = np.linspace(0, 1, 50)
    y = 1 - x
    against = fit_predictor(x, y, "isotonic", "positive")  # the data fall: the best increasing map is flat
    assert np.ptp(predict(against, x)) == pytest.approx(0)
    line = fit_predictor(x, y, "linear", "positive")
    assert line.coef[1] == 0 and line.coef[0] == pytest.approx(0.5)
    flat = fit_predictor(np.ones(10), np.arange(10.0), "isotonic", "positive")
    assert flat.form == "constant" and predict(flat, np.array([0.0, np.nan]))[1] == pytest.approx(4.5)
    auto = fit_predictor(x, y, "isotonic", "auto")
    assert not auto.increasing and np.allclose(predict(auto, x), y)
    loglin = fit_predictor(np.exp(x), x, "log-linear", "positive")
    assert loglin.coef[1] == pytest.approx(1.0) and predict(loglin, np.array([-1.0]))[0] == loglin.fallback


def test_holm_matches_the_step_down_definition() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
