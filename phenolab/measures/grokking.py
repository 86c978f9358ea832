"""Measures that explain grokking: Fourier sparsity of the input weights and softmax collapse."""

from __future__ import annotations

import torch

from phenolab.measures._base import MeasureContext, register_measure
from phenolab.models import Params


def residue_weights(params: Params, ctx: MeasureContext, which: str, p: int, name: str) -> list[torch.Tensor]:
    """The weights that read the residues 0..p-1, each `[K, p, H]`: the transformer's token
    embedding rows ("embedding"), or the a- and b-rows of an MLP's `w0` on one-hot(a) ⊕ one-hot(b)
    ("first_layer"); "auto" picks the embedding when the model has one; `p` defaults to the task's
    number of classes."""
    p = p or (ctx.data.num_classes if ctx.data is not None else 0)
    if not p:
        raise ValueError(f"{name} needs a modular task (ctx.data.num_classes) or p=")
    if which == "auto":
        which = "embedding" if "embed" in params else "first_layer"
    if which == "embedding":
        return [params["embed"][:, :p]]
    if which == "first_layer":
        w = params["w0"]
        if w.shape[1] != 2 * p:
            raise ValueError(f"first_layer needs one-hot pair inputs of size 2p = {2 * p}, got {w.shape[1]}")
        return [w[:, :p], w[:, p:]]
    raise ValueError(f"{name}: which must be embedding, first_layer or auto, not {which!r}")


@register_measure("fourier_sparsity",
                  "IPR or Gini of the input weights' power per frequency over Z_p (Nanda et al. 2023)")
def fourier_sparsity(params: Params, ctx: MeasureContext, which: str = "auto", stat: str = "ipr",
                     p: int = 0) -> torch.Tensor:
    """How concentrated on few frequencies the weights reading the residues 0..p-1 are.

    Generalizing solutions of modular arithmetic compute with a few key frequencies (Nanda et al.
    2023; Gromov 2023), and Doshi, Das, He & Gromov (2024) track the inverse participation ratio
    (per neuron there; pooled over neurons here): memorizing weights spread power over all
    frequencies. `which`: "embedding" (the transformer's token
    embedding rows 0..p-1, `[K, p, d]`), "first_layer" (an MLP on one-hot(a) ⊕ one-hot(b): the
    a-rows and b-rows of `w0`, each `[K, p, H]`) or "auto" (embedding if the model has one).
    The DFT runs over the residue axis (`rfft`, so frequencies f and p−f merge); power is summed
    over the other axis (and over the a- and b-parts); the constant (f = 0) is left out, since
    an offset carries no information about the residue. `stat`: "ipr" = ΣP²/(ΣP)² in
    [1/F, 1], or "gini" of P in [0, 1 − 1/F]; both 1-ish when one frequency dominates.
    `p` defaults to the task's number of classes.
    """
    parts = residue_weights(params, ctx, which, p, "fourier_sparsity")
    power = sum(torch.fft.rfft(x.double(), dim=1).abs().square().sum(2) for x in parts)[:, 1:]
    if stat == "ipr":
        return power.square().sum(1) / power.sum(1).square()
    if stat == "gini":
        return gini(power)
    raise ValueError(f"fourier_sparsity: stat must be 'ipr' or 'gini', not {stat!r}")


def gini(x: torch.Tensor) -> torch.Tensor:
    """Gini coefficient of each row of non-negative `x [K, n]`: 0 if equal, (n−1)/n if one holds all."""
    n = x.shape[1]
    ranks = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
    sorted_x = x.sort(dim=1).values
    return ((2 * ranks - n - 1) * sorted_x).sum(1) / (n * sorted_x.sum(1))


@register_measure("softmax_collapse",
                  "share of training samples whose float32 softmax is exactly one-hot (Prieto et al. 2025)")
def softmax_collapse(params: Params, ctx: MeasureContext, dtype: str = "float32",
                     chunk: int = 8192) -> torch.Tensor:
    """Share of training samples with Σ exp(logit − max) == 1 exactly, per replica.

    Prieto et al. (2025) show that once every non-maximal exp underflows against the maximum,
    the cross-entropy gradient of that sample is exactly zero ("softmax collapse"), which stalls
    grokking in float32. `dtype`: "float32" (default, the paper's precision, also for float64
    runs) or "model" (the logits' own precision). The forward runs in chunks of `chunk` samples.
    """
    if ctx.data is None:
        raise ValueError("softmax_collapse needs the training data (ctx.data)")
    x = ctx.data.x_train
    collapsed = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    with torch.no_grad():
        for xb in x.split(chunk, dim=1):
            logits = ctx.model.forward(params, xb)
            if dtype == "float32":
                logits = logits.float()
            elif dtype != "model":
                raise ValueError(f"softmax_collapse: dtype must be 'float32' or 'model', not {dtype!r}")
            total = (logits - logits.amax(-1, keepdim=True)).exp().sum(-1)
            collapsed += (total == 1).sum(1).double()
    return collapsed / x.shape[1]
