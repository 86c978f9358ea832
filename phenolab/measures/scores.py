"""Continuous scores of a network's predictions on a split, for reading a phenomenon under another
metric than accuracy (Kumar et al. 2023; Schaeffer, Miranda & Koyejo 2023: a jump in accuracy need
not be a jump in a continuous score).

Each reads the predicted distribution over classes: the softmax of the outputs for a network
trained with cross-entropy (`outputs="softmax"`), or the outputs themselves for one trained on the
squared error to one-hot targets (`outputs="raw"`: clipped at 0 and normalized where a
distribution is needed, as they are, for the Brier score and the probability of the correct class).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from phenolab.measures._base import MeasureContext, register_measure
from phenolab.models import Params

SPLITS = ("test", "train")
OUTPUTS = ("softmax", "raw")


def _per_sample(params: Params, ctx: MeasureContext, split: str, outputs: str, chunk: int, name: str,
                fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> torch.Tensor:
    """Mean over the split's samples of `fn(scores [K, b, C], labels [K, b], C) -> [K, b]`."""
    if split not in SPLITS:
        raise ValueError(f"{name}: split must be one of {', '.join(SPLITS)}, not {split!r}")
    if outputs not in OUTPUTS:
        raise ValueError(f"{name}: outputs must be one of {', '.join(OUTPUTS)}, not {outputs!r}")
    data = ctx.data
    if data is None or data.num_classes is None:
        raise ValueError(f"{name} needs a classification task's data (ctx.data)")
    x, y = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
    k = params[next(iter(params))].shape[0]
    x, y = x.expand(k, *x.shape[1:]), y.expand(k, -1)
    total = torch.zeros(k, dtype=torch.float64, device=y.device)
    for lo in range(0, x.shape[1], chunk):
        out = ctx.model.forward(params, x[:, lo:lo + chunk]).double()
        scores = torch.softmax(out, dim=-1) if outputs == "softmax" else out
        total += fn(scores, y[:, lo:lo + chunk], data.num_classes).sum(1)
    return total / x.shape[1]


@register_measure("prob_correct", "mean predicted probability of the correct class on a split (test by default)")
def prob_correct(params: Params, ctx: MeasureContext, split: str = "test", outputs: str = "softmax",
                 chunk: int = 8192) -> torch.Tensor:
    """Mean over samples of the score of the true class: a probability (softmax), or the output
    clipped to [0, 1] for a squared-error network (its target for the true class is 1)."""
    def fn(scores: torch.Tensor, y: torch.Tensor, _c: int) -> torch.Tensor:
        right = scores.gather(-1, y.unsqueeze(-1)).squeeze(-1)
        return right if outputs == "softmax" else right.clamp(0.0, 1.0)

    return _per_sample(params, ctx, split, outputs, chunk, "prob_correct", fn)


@register_measure("brier", "mean Brier score on a split: squared distance of the predicted scores to one-hot, "
                  "summed over classes")
def brier(params: Params, ctx: MeasureContext, split: str = "test", outputs: str = "softmax",
          chunk: int = 8192) -> torch.Tensor:
    """Σ_c (s_c − 1[c = y])², averaged over samples (0: perfect; 1 − 1/C for a uniform softmax)."""
    def fn(scores: torch.Tensor, y: torch.Tensor, c: int) -> torch.Tensor:
        onehot = torch.nn.functional.one_hot(y, c).to(scores.dtype)
        return (scores - onehot).square().sum(-1)

    return _per_sample(params, ctx, split, outputs, chunk, "brier", fn)


@register_measure("modular_distance", "expected circular distance between the predicted and the true residue, "
                  "over p/2 (modular tasks: 0 perfect, about 0.5 at chance)")
def modular_distance(params: Params, ctx: MeasureContext, split: str = "test", outputs: str = "softmax",
                     chunk: int = 8192) -> torch.Tensor:
    """E over the predicted distribution of min(|c − y|, p − |c − y|) / (p / 2): a distance-aware
    score that credits predictions near the answer (raw outputs are clipped at 0 and normalized;
    all-zero outputs count as uniform)."""
    def fn(scores: torch.Tensor, y: torch.Tensor, c: int) -> torch.Tensor:
        if outputs == "raw":
            scores = scores.clamp(min=0.0)
            mass = scores.sum(-1, keepdim=True)
            scores = torch.where(mass > 0, scores / mass.clamp(min=1e-300), torch.full_like(scores, 1.0 / c))
        classes = torch.arange(c, device=y.device)
        gap = (classes - y.unsqueeze(-1)).abs()
        dist = torch.minimum(gap, c - gap).to(scores.dtype) / (c / 2)
        return (scores * dist).sum(-1)

    return _per_sample(params, ctx, split, outputs, chunk, "modular_distance", fn)
