"""Linear regression's double descent in closed form (Nakkiran, Venkat, Kakade & Ma 2021).

For x ~ N(0, I_d), y = xᵀβ + ε: the exact bias² and variance of a least-squares fit given its
design, the expected excess risk of min-norm least squares (a spike at n = d), and the optimal
ridge penalty, which removes it.
"""

from __future__ import annotations

import math

import torch


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
