"""Batched models: K replicas of one architecture as one functional program (see `_base`).

Importing this package registers the built-in models `mlp`, `transformer`, `random_features`
and `linear`.
"""

from phenolab.models import linear, mlp, transformer  # noqa: F401  (register the built-ins)
from phenolab.models._base import (
    MODEL_CLASSES,
    BatchedModel,
    Params,
    build_model,
    model_class,
    register_model,
)

__all__ = ["MODEL_CLASSES", "BatchedModel", "Params", "build_model", "model_class", "register_model"]
