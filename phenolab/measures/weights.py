"""Measures of the trained parameters themselves: norms, distance from init, counts.

"Trained parameters" are all of a model's parameters except `model.frozen` (random-features
weights), biases and LayerNorm parameters included. Sums run in float64 for stable curves.
"""

from __future__ import annotations

import math

import torch

from phenolab.measures._base import MeasureContext, register_measure
from phenolab.models import Params

SIEVE_LIMIT = 1 << 24  # primes up to here come from a sieve; larger values from trial division
EXACT_LIMIT = 1 << 53  # beyond this a float no longer holds every integer


def trained(params: Params, ctx: MeasureContext) -> list[torch.Tensor]:
    """The trained parameter tensors, each flattened to `[K, n]`."""
    return [p.reshape(p.shape[0], -1) for n, p in params.items() if n not in ctx.model.frozen]


def _sum(parts: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([t.double().sum(1) for t in parts]).sum(0)


@register_measure("weight_norm", "L2 norm of all trained parameters (Omnigrok: Liu, Michaud & Tegmark 2022)")
def weight_norm(params: Params, ctx: MeasureContext) -> torch.Tensor:
    """‖θ‖₂ per replica: Omnigrok ties grokking to the weight norm's descent to a 'Goldilocks zone'."""
    return _sum([t.double().square() for t in trained(params, ctx)]).sqrt()


@register_measure("distance_from_init", "L2 distance of the trained parameters from their initial values")
def distance_from_init(params: Params, ctx: MeasureContext) -> torch.Tensor:
    """‖θ − θ₀‖₂ per replica: how far training moved (lazy vs. rich regime, Chizat et al. 2019)."""
    init = {n: p.to(params[n].device) for n, p in ctx.init_params.items()}
    diffs = [params[n].double() - init[n].double() for n in params if n not in ctx.model.frozen]
    return _sum([d.reshape(d.shape[0], -1).square() for d in diffs]).sqrt()


@register_measure("mean_abs_weight", "mean |w| over all trained parameters")
def mean_abs_weight(params: Params, ctx: MeasureContext) -> torch.Tensor:
    parts = trained(params, ctx)
    return _sum([t.double().abs() for t in parts]) / sum(t.shape[1] for t in parts)


@register_measure("parameter_count", "number of trained parameters (the double-descent x-axis)")
def parameter_count(params: Params, ctx: MeasureContext) -> torch.Tensor:
    """Trained parameters per replica, e.g. h² + 52h + 10 for Greydanus & Kobak's 40→h→h→10 MLP."""
    parts = trained(params, ctx)
    k = next(iter(params.values())).shape[0]
    return torch.full((k,), float(sum(t.shape[1] for t in parts)), dtype=torch.float64)


@register_measure("prime_parameter_count",
                  "trained parameters whose round(|w|·scale) is prime (position paper, Fig. 4)")
def prime_parameter_count(params: Params, ctx: MeasureContext, scale: float = 1.0) -> torch.Tensor:
    """Count of trained parameters w with round(|w|·scale) prime, per replica.

    A deliberately meaningless complexity measure: the position paper's Figure 4 shows it can
    trace a double-descent curve too, so a curve's shape alone is no evidence for a measure.
    `scale` (default 1.0) is applied before rounding; rounding is half-to-even (`torch.round`).
    """
    ints = [torch.round(t.double().abs() * scale) for t in trained(params, ctx)]
    top = max(float(t.max()) for t in ints) if ints else 0.0
    if not math.isfinite(top) or top >= EXACT_LIMIT:
        raise ValueError(f"prime_parameter_count: |w|·scale reaches {top:g}, beyond exact integers")
    device = ints[0].device
    sieve = prime_sieve(min(int(top), SIEVE_LIMIT), device)
    count = torch.zeros(ints[0].shape[0], dtype=torch.float64, device=device)
    for t in ints:
        n = t.long()
        small = n <= SIEVE_LIMIT
        prime = sieve[n.clamp(max=sieve.numel() - 1)] & small
        if not bool(small.all()):
            big = ~small
            prime[big] = is_prime_large(n[big])
        count += prime.sum(1).double()
    return count


def prime_sieve(limit: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Boolean `[limit + 1]` tensor: entry n says whether n is prime (sieve of Eratosthenes)."""
    sieve = torch.ones(max(limit, 1) + 1, dtype=torch.bool)  # on CPU: no device sync per step
    sieve[:2] = False
    for p in range(2, math.isqrt(limit) + 1):
        if sieve[p]:
            sieve[p * p :: p] = False
    return sieve.to(device)


def is_prime_large(n: torch.Tensor) -> torch.Tensor:
    """Primality of integers above the sieve by trial division with every prime up to √max(n)."""
    root = math.isqrt(int(n.max()))
    small_primes = prime_sieve(root, n.device).nonzero().flatten()
    prime = torch.ones_like(n, dtype=torch.bool)
    for chunk in small_primes.split(4096):
        prime &= ~(n[:, None] % chunk[None, :] == 0).any(1)
    return prime
