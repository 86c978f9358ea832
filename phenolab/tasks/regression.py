"""Linear regression with Gaussian inputs: isotropic (Nakkiran, Venkat, Kakade & Ma 2021), the
exactly solvable double descent with a sample-wise peak of the min-norm solution at n_train = d;
or with two feature scales (Pezeshki et al. 2022), where gradient descent learns the small-scale
("slow") inputs much later than the others, which gives an epoch-wise double descent."""

from __future__ import annotations

import math

import torch

from phenolab._rng import generator
from phenolab.settings import LinearRegressionTask
from phenolab.tasks._base import TaskData, register_task
from phenolab.tasks.noise import check_input_kind


def sample_replica(cfg: LinearRegressionTask, seed: int) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_test, y_test) of one run, all from its `"data"` stream, in float64.

    Drawing in float64 whatever the run's dtype means float32 and float64 runs of one seed see the
    same problem up to rounding. Draw order: β, x_train, ε_train, x_test, ε_test.
    """
    g = generator(seed, "data")
    f64 = torch.float64
    beta = torch.randn(cfg.d, generator=g, dtype=f64)
    scale = torch.ones(cfg.d, dtype=f64)
    if cfg.slow_dims:
        fast, slow = cfg.d - cfg.slow_dims, cfg.d
        scale[fast:] = cfg.slow_scale
        # each block's share of the signal variance E(x·β)² = Σ (scale·β)²; the slow β is large
        beta[:fast] *= math.sqrt(1 - cfg.slow_signal) / beta[:fast].norm()
        beta[fast:slow] *= math.sqrt(cfg.slow_signal) / (cfg.slow_scale * beta[fast:slow].norm())
    else:
        beta = beta / beta.norm()
    x_train = torch.randn(cfg.n_train, cfg.d, generator=g, dtype=f64) * scale
    y_train = x_train @ beta + cfg.noise_std * torch.randn(cfg.n_train, generator=g, dtype=f64)
    x_test = torch.randn(cfg.n_test, cfg.d, generator=g, dtype=f64) * scale
    y_test = x_test @ beta + cfg.noise_std * torch.randn(cfg.n_test, generator=g, dtype=f64)
    return x_train, y_train.unsqueeze(-1), x_test, y_test.unsqueeze(-1)


def build_linear_regression(cfg: LinearRegressionTask, seeds: list[int], input_kind: str,
                            dtype: torch.dtype) -> TaskData:
    """Per replica its own β (‖β‖ = 1) and data, y = x·β + noise_std·ε on train and test alike
    (so the test MSE includes the irreducible σ²; excess risk = test MSE − noise_std²)."""
    check_input_kind("linear_regression", input_kind)
    parts = [sample_replica(cfg, s) for s in seeds]
    x_train, y_train, x_test, y_test = (torch.stack(t).to(dtype) for t in zip(*parts, strict=True))
    return TaskData(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        input_kind="features",
        input_dim=cfg.d,
        out_dim=1,
        num_classes=None,
    )


register_task("linear_regression", build_linear_regression)
