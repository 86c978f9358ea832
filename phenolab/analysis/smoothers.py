"""Effective parameters of linear smoothers (Curth, Jeffares & van der Schaar 2023).

Linear and random-features models fit by least squares are smoothers: the fit is ŷ(x) = ŝ(x)·y
with ŝ(x)ᵀ = φ(x)ᵀA, A = pinv(Φ) (min-norm) or (ΦᵀΦ + λnI)⁻¹Φᵀ (the engine's ridge scaling).
Curth et al. (Def. 1) count *effective parameters* on a set of inputs I₀ as
p̂⁰ = (n/|I₀|)·Σ ‖ŝ(x)‖² (their code stores the mean ‖ŝ‖², i.e. p̂⁰/n). On the training inputs a
min-norm fit gives min(n, p); on test inputs it blows up at p = n and falls after.
"""

from __future__ import annotations

import torch

from phenolab.engine.min_norm import min_norm_smoother_norms2


def smoother_norms2(phi_train: torch.Tensor, phi_evals: list[torch.Tensor], ridge: float) -> list[torch.Tensor]:
    """‖ŝ(x)‖² for each row φ(x) [m, p] of each eval set, for the fit on Φ = `phi_train` [n, p].

    Min-norm: from one QR of Φ shared by the eval sets (`engine.min_norm`, ten times faster than
    an SVD on a CPU; pinv for a rank-deficient Φ). Ridge solves the smaller normal equations.
    """
    phi, evs = phi_train.double(), [e.double() for e in phi_evals]
    n, p = phi.shape
    if ridge > 0:
        if p <= n:
            gram = phi.T @ phi + ridge * n * torch.eye(p, dtype=phi.dtype)
            return [(phi @ torch.linalg.solve(gram, ev.T)).square().sum(0) for ev in evs]  # ŝ(x) = Φ·M⁻¹·φ(x)
        kernel = phi @ phi.T + ridge * n * torch.eye(n, dtype=phi.dtype)
        return [torch.linalg.solve(kernel, phi @ ev.T).square().sum(0) for ev in evs]
    return min_norm_smoother_norms2(phi, evs)


def effective_parameters(phi_train: torch.Tensor, phi_evals: list[torch.Tensor], ridge: float) -> list[float]:
    """Curth et al.'s p̂⁰ = n · mean over eval inputs of ‖ŝ(x)‖², for each eval set."""
    return [float(phi_train.shape[0] * norms.mean()) for norms in smoother_norms2(phi_train, phi_evals, ridge)]
