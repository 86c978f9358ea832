"""Explanations head to head: pre-registered tournaments that rank competing explanations of one
phenomenon by what they predict on held-out runs, against two trivial baselines (time, magnitude).

Beside `phenolab.studies` in the layering: it builds on `hypotheses` (the hash-chained log, the
setting groups, the statistics, the intervention test), `execute` (through the caller's trainer)
and `catalog`. Typical use::

    t = load_tournament("examples/tournaments/grokking_mlp.yaml")
    result = run(catalog, t, local_train_missing(catalog))
    result["scores"]["ranking"]
"""

from phenolab.tournament.log import TournamentLog, TournamentRegistration
from phenolab.tournament.predictors import Predictor, fit_predictor, predict
from phenolab.tournament.run import Plan, plan, register, run, score_registered
from phenolab.tournament.scoring import holm, score
from phenolab.tournament.spec import Explanation, Ref, Tournament, load_tournament, validate_tournament

__all__ = [
    "Explanation", "Plan", "Predictor", "Ref", "Tournament", "TournamentLog", "TournamentRegistration",
    "fit_predictor", "holm", "load_tournament", "plan", "predict", "register", "run", "score", "score_registered",
    "validate_tournament",
]
