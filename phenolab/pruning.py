"""Iterative magnitude pruning on batched replicas: masks and the controls' masks.

Pruning follows Frankle & Carbin 2019: each round removes the smallest-magnitude *surviving*
weights, `round(rate · survivors)` of them (the count `torch.nn.utils.prune.l1_unstructured`
takes when called again on a pruned tensor), per layer (hidden layers at one rate, the output
layer at another) or across all layers at once. Biases are never pruned. Masks are `[K, ...]`
like the parameters: one mask per replica, 1 = keep; the engine applies them to gradients and
parameters at every step, so pruned weights stay exactly zero through Adam and weight decay.
"""

from __future__ import annotations

import torch

from phenolab.models import Params

Masks = dict[str, torch.Tensor]


def full_masks(params: Params, names: list[str]) -> Masks:
    """All-ones masks for the weight tensors `names` (round 0: nothing pruned)."""
    return {n: torch.ones_like(params[n]) for n in names}


def layer_rates(names: list[str], rate_hidden: float, rate_output: float) -> dict[str, float]:
    """Per-layer pruning rates: the last weight tensor is the output layer (MLP `w{depth}`)."""
    return {n: (rate_output if i == len(names) - 1 else rate_hidden) for i, n in enumerate(names)}


def prune_count(rate: float, survivors: int) -> int:
    """How many of `survivors` weights one round removes: Python's round, as torch's pruning."""
    return round(rate * survivors)


def expected_survivors(size: int, rate: float, rounds: int) -> int:
    """Weights left in a tensor of `size` after `rounds` rounds at `rate` (layer-wise scope)."""
    keep = size
    for _ in range(rounds):
        keep -= prune_count(rate, keep)
    return keep


def prune_round(params: Params, masks: Masks, rates: dict[str, float], scope: str = "layer") -> Masks:
    """One IMP round: new masks without the smallest-|w| survivors of the trained `params`.

    `scope="layer"` prunes each tensor at its own rate; `"global"` ranks all tensors together
    at the hidden rate (open_lth's sparse_global strategy, output layer included).
    """
    if scope == "layer":
        return {n: _prune_rows(params[n], masks[n], rates[n]) for n in masks}
    if scope != "global":
        raise ValueError(f"prune.scope {scope!r}; allowed: layer, global")
    names = list(masks)
    rate = rates[names[0]]
    flat_w = torch.cat([params[n].reshape(params[n].shape[0], -1) for n in names], dim=1)
    flat_m = torch.cat([masks[n].reshape(masks[n].shape[0], -1) for n in names], dim=1)
    pruned = _prune_rows(flat_w, flat_m, rate)
    out, lo = {}, 0
    for n in names:
        size = masks[n][0].numel()
        out[n] = pruned[:, lo:lo + size].reshape(masks[n].shape)
        lo += size
    return out


def _prune_rows(weights: torch.Tensor, mask: torch.Tensor, rate: float) -> torch.Tensor:
    """Per replica (row of the leading dim), zero the mask at the round(rate · survivors) smallest
    |w| among survivors; pruned entries rank last (+inf) so they are never counted twice."""
    k = weights.shape[0]
    w = weights.detach().reshape(k, -1).abs().double()
    m = mask.reshape(k, -1) != 0
    scores = torch.where(m, w, torch.full_like(w, float("inf")))
    out = m.clone()
    for r in range(k):  # survivors may differ per replica under global scope
        n_prune = prune_count(rate, int(m[r].sum()))
        if n_prune:
            out[r, torch.topk(scores[r], n_prune, largest=False).indices] = False
    return out.to(mask.dtype).reshape(mask.shape)


def shuffle_masks(masks: Masks, gens: list[torch.Generator]) -> Masks:
    """The random-mask control: each replica's mask permuted within each layer (same per-layer
    sparsity, random positions), drawn from that replica's own generator."""
    out: Masks = {}
    for n, m in masks.items():
        rows = []
        for r, gen in enumerate(gens):
            flat = m[r].reshape(-1)
            rows.append(flat[torch.randperm(flat.numel(), generator=gen)].reshape(m[r].shape))
        out[n] = torch.stack(rows)
    return out


def remaining_fraction(masks: Masks) -> torch.Tensor:
    """Share of weights left per replica, [K] (biases are not counted, as in Frankle & Carbin)."""
    kept = sum(m.reshape(m.shape[0], -1).double().sum(1) for m in masks.values())
    total = sum(m[0].numel() for m in masks.values())
    return kept / total
