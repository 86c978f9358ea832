"""Explanations of a double-descent curve: bias–variance over seeds and effective parameters.

Ensemble decompositions (seeds share the test set; the "main" prediction is the ensemble's):

- squared error (Adlam & Pennington 2020, the classical decomposition): main f̄ = mean over
  seeds of the outputs; bias² = MSE of f̄; variance = mean over seeds of the squared distance of a
  seed's outputs to f̄. Both average over test points and outputs, as the training loss does.
- cross-entropy (Yang, Yu, You, Steinhardt & Ma 2020, "Rethinking bias-variance trade-off"): main
  π̄ ∝ exp(mean log π_s) = softmax(mean logits); bias = CE(y, π̄); variance = mean over seeds of
  KL(π̄ ‖ π_s).

In both, bias + variance equals the seeds' mean test loss exactly (variance uses 1/K), so the
"bias" is that of a K-seed ensemble. Seeds vary init, data order, label-noise draw and training
subset together: this is the total variance, not Adlam & Pennington's split by source. For the
0-1 error we also report the ensemble's error (argmax of π̄ or f̄) and the disagreement, the mean
share of test points where a seed's prediction differs from the ensemble's (Domingos 2000).

Linear smoothers (linear and random-features models fit by least squares): the fit is
ŷ(x) = ŝ(x)·y with ŝ(x)ᵀ = φ(x)ᵀA, A = pinv(Φ) (min-norm) or (ΦᵀΦ + λnI)⁻¹Φᵀ (the engine's
ridge scaling). Curth, Jeffares & van der Schaar 2023 (Def. 1) count *effective parameters* on a
set of inputs I₀ as p̂⁰ = (n/|I₀|)·Σ ‖ŝ(x)‖² (their code stores the mean ‖ŝ‖², i.e. p̂⁰/n). On the
training inputs a min-norm fit gives min(n, p); on test inputs it blows up at p = n and falls after.
"""

from __future__ import annotations

import math

import torch

from phenolab.engine.min_norm import min_norm_smoother_norms2


def ce_decomposition(logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """logits [K, M, C] of K seeds on M shared test points with labels y [M]."""
    logp = torch.log_softmax(logits.double(), dim=-1)  # [K, M, C]
    log_main = torch.log_softmax(logits.double().mean(0), dim=-1)  # log π̄, [M, C]
    nll = -logp.gather(-1, y.expand(logp.shape[0], -1).unsqueeze(-1)).squeeze(-1)  # [K, M]
    bias = float(-log_main.gather(-1, y.unsqueeze(-1)).mean())
    variance = float((log_main.exp() * (log_main - logp)).sum(-1).mean())  # mean_s mean_x KL(π̄‖π_s)
    out = {"mean_loss": float(nll.mean()), "bias": bias, "variance": variance}
    out.update(_zero_one(logits.argmax(-1), log_main.argmax(-1), y))
    return out


def mse_decomposition(outputs: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor | None = None,
                      ) -> dict[str, float]:
    """outputs [K, M, O] against targets [M, O] (one-hot for classification, with `labels` [M])."""
    out64, t64 = outputs.double(), targets.double()
    main = out64.mean(0)
    res = {
        "mean_loss": float((out64 - t64).pow(2).mean()),
        "bias": float((main - t64).pow(2).mean()),
        "variance": float((out64 - main).pow(2).mean()),
    }
    if labels is not None:
        res.update(_zero_one(outputs.argmax(-1), main.argmax(-1), labels))
    return res


def _zero_one(pred: torch.Tensor, main: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    return {
        "mean_error": float((pred != y).double().mean()),
        "ensemble_error": float((main != y).double().mean()),
        "disagreement": float((pred != main).double().mean()),
    }


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


def linear_bias_variance(x_train: torch.Tensor, beta: torch.Tensor, noise_std: float, ridge: float,
                         ) -> dict[str, float]:
    """Exact risk terms of a linear least-squares fit on x ~ N(0, I_d), given the design X [n, d].

    With A the fit's map y → β̂: bias² = ‖A·X·β − β‖² (the noise-free fit's error), variance =
    σ²·‖A‖_F² (label noise through A), so the expected test MSE given X is bias² + variance + σ².
    For isotropic inputs ‖A‖_F² = E‖ŝ(x)‖², so variance = σ²·p̂_test/n (Curth et al.'s p̂ on the
    population): the variance term *is* the effective-parameter count.
    """
    _, s, vh = torch.linalg.svd(x_train.double(), full_matrices=False)
    n = x_train.shape[0]
    if ridge == 0:
        keep = s > torch.finfo(torch.float64).eps * max(x_train.shape) * s.max()
        f = torch.where(keep, 1.0 / torch.where(keep, s, torch.ones_like(s)), torch.zeros_like(s))
    else:
        f = s / (s.square() + ridge * n)
    b = beta.double()
    fitted = vh.T @ ((f * s) * (vh @ b))  # A·X·β = V·diag(f·s)·Vᵀβ, with A = V·diag(f)·Uᵀ
    bias2 = float((fitted - b).square().sum())
    frob2 = float(f.square().sum())
    variance = noise_std ** 2 * frob2
    return {"bias": bias2, "variance": variance, "expected_test_mse": bias2 + variance + noise_std ** 2,
            "p_eff_population": n * frob2}


def optimal_ridge(d: int, n: int, noise_std: float, beta_norm: float = 1.0) -> float:
    """Nakkiran, Venkat, Kakade & Ma 2021 (Thm. 1): for x ~ N(0, I_d) the ridge penalty λ‖β‖²
    added to the *sum* of squared errors is optimal at λ = d·σ²/‖β‖² for every n (it is the
    posterior mean under β ~ N(0, ‖β‖²/d·I), and the risk of a fixed β equals its average over
    directions). The engine penalizes the *mean* squared error, so its ridge is that over n."""
    return d * noise_std ** 2 / (beta_norm ** 2 * n)


def min_norm_excess_risk(n: int, d: int, noise_std: float, beta_norm: float = 1.0) -> float:
    """Expected excess test risk E‖β̂ − β‖² of min-norm least squares (Nakkiran et al. 2021;
    Hastie et al. 2022): (1 − n/d)‖β‖² + σ²·n/(d − n − 1) for n < d − 1, σ²·d/(n − d − 1) for
    n > d + 1, infinite in between (the spike at n = d)."""
    if n < d - 1:
        return (1 - n / d) * beta_norm ** 2 + noise_std ** 2 * n / (d - n - 1)
    if n > d + 1:
        return noise_std ** 2 * d / (n - d - 1)
    return math.inf
