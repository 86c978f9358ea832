"""Measures: registered functions of a batch's parameters, one number per replica.

Importing this package registers the built-in measures of `weights`, `grokking`, `fourier`, `effective`,
`ensembles`, `labels` and `scores`, which also makes their names and parameters valid in settings
(`phenolab.settings.MEASURES`).
"""

from phenolab.measures import effective, ensembles, fourier, grokking, labels, scores, weights  # noqa: F401
from phenolab.measures._base import (
    MEASURE_REGISTRY,
    Measure,
    MeasureContext,
    compute_measure,
    register_measure,
)

__all__ = ["MEASURE_REGISTRY", "Measure", "MeasureContext", "compute_measure", "register_measure"]
