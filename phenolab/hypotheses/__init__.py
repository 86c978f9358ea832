"""Testing explanations: pre-registered hypotheses, held-out runs, confounds, interventions, verdicts.

Beside `phenolab.phenomena` in the layering: neither imports the other; `phenolab.studies` (the
paper's Figure 4) builds on both. Typical use::

    hyp = load_hypothesis("examples/hypotheses/prime_parameters.yaml")
    reg, new = HypothesisLog(catalog).register(hyp)
    result = evaluate_registered(catalog, reg.id, local_train_missing(catalog))
    result["status"], result["reason"]
"""

from phenolab.hypotheses.evaluate import evaluate_registered, local_train_missing
from phenolab.hypotheses.registry import HypothesisLog, Registration, Verification
from phenolab.hypotheses.spec import (
    Hypothesis,
    Intervention,
    MeasureRef,
    Relation,
    load_hypothesis,
    validate_hypothesis,
)

__all__ = [
    "Hypothesis", "HypothesisLog", "Intervention", "MeasureRef", "Registration", "Relation", "Verification",
    "evaluate_registered", "load_hypothesis", "local_train_missing", "validate_hypothesis",
]
