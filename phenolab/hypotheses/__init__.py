"""Testing explanations: pre-registered hypotheses, held-out runs, confounds, interventions, verdicts.

Sits above `phenolab.phenomena` in the layering (figure4 builds hypotheses; nothing here imports
phenomena). Typical use::

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
