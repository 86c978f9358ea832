"""Gradient transformations applied between backward and the optimizer step (grokking accelerators).

Both act on each replica separately (element-wise, or reductions over one replica's tensor), so
a replica still gets exactly the update it would get alone.

- Grokfast-EMA (Lee et al. 2024): g ← g + λ · EMA_α(g), amplifying the slow gradient component.
- ⊥Grad (Prieto et al. 2025): g ← g − (⟨g, w⟩ / ⟨w, w⟩) · w per weight tensor and replica,
  removing the component that only scales the weights (the "naive loss minimization" direction).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from phenolab.settings import OptimConfig


def gradient_filter(cfg: OptimConfig, params: list[torch.Tensor]) -> Callable[[], None] | None:
    """A function that transforms `.grad` of `params` in place, or None when no filter is set."""
    orthogonal = cfg.orthogonal_grad
    grokfast = cfg.grokfast_alpha > 0 and cfg.grokfast_lambda > 0
    if not (orthogonal or grokfast):
        return None
    emas: list[torch.Tensor | None] = [None] * len(params)

    @torch.no_grad()
    def apply() -> None:
        for i, p in enumerate(params):
            g = p.grad
            if g is None:
                continue
            if orthogonal:
                g.sub_(orthogonal_component(g, p))
            if grokfast:
                if emas[i] is None:
                    emas[i] = g.clone()  # Grokfast initializes the EMA with the first gradient
                else:
                    emas[i].mul_(cfg.grokfast_alpha).add_(g, alpha=1 - cfg.grokfast_alpha)
                g.add_(emas[i], alpha=cfg.grokfast_lambda)

    return apply


def orthogonal_component(g: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(⟨g, w⟩ / ⟨w, w⟩) · w with the inner products taken per replica (leading dim)."""
    dims = tuple(range(1, w.dim()))
    inner = (g * w).sum(dim=dims, keepdim=True)
    norm2 = (w * w).sum(dim=dims, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    return inner / norm2 * w
