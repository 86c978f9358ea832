"""Effective parameters of a least-squares fit, recorded like any other measure.

Curth, Jeffares & van der Schaar (2023) read double descent in linear smoothers off the effective
number of parameters p̂⁰ on test inputs, which peaks where the fit interpolates. The count itself
lives in `phenolab.analysis.smoothers` (one QR per design); this wraps it per replica so a sweep
records it at every evaluation, for models linear in their trained parameters (`linear`,
`random_features`).
"""

from __future__ import annotations

import torch

from phenolab.measures._base import MeasureContext, register_measure
from phenolab.models import Params

SPLITS = ("test", "train")


@register_measure("effective_parameters", "Curth et al. 2023's effective parameters p̂⁰ of a least-squares fit "
                  "(linear or random-features models) on test inputs (split='test') or the training inputs")
def effective_parameters(params: Params, ctx: MeasureContext, split: str = "test", points: int = 2000,
                         ridge: float = 0.0) -> torch.Tensor:
    """p̂⁰ = n · mean over the split's first `points` inputs of ‖ŝ(x)‖², per replica. It depends on
    the features and the training inputs only, not on the fitted weights. `ridge` must equal the
    setting's optim.ridge (the smoother of another penalty is another count)."""
    from phenolab.analysis.smoothers import effective_parameters as count  # lazy: analysis imports engine

    if split not in SPLITS:
        raise ValueError(f"effective_parameters: split must be one of {', '.join(SPLITS)}, not {split!r}")
    data = ctx.data
    if data is None:
        raise ValueError("effective_parameters needs the task's data (ctx.data)")
    x_eval = data.x_test[:, :points] if split == "test" else data.x_train
    k = params[next(iter(params))].shape[0]
    try:
        phi_train = ctx.model.features(params, data.x_train.expand(k, *data.x_train.shape[1:]))
        phi_eval = ctx.model.features(params, x_eval.expand(k, *x_eval.shape[1:]))
    except NotImplementedError as exc:
        raise ValueError(f"effective_parameters: {exc}") from None
    return torch.tensor([count(phi_train[i], [phi_eval[i]], ridge)[0] for i in range(k)], dtype=torch.float64)
