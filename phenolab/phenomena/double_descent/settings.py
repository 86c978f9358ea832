"""Double descent's canonical settings, each named after its source, and what each study sweeps.

A model-, feature- or sample-wise setting names a `Sweep` (a dotted field over a grid); an
epoch-wise setting names none: its axis is the training step, and it is one setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from phenolab.phenomena import Canonical
from phenolab.phenomena.double_descent.linear_theory import optimal_ridge

# Greydanus & Kobak's widths: unique(geomspace(2, 300, 20).astype(int)), 19 values.
GK_WIDTHS = tuple(int(w) for w in np.unique(np.geomspace(2, 300, 20).astype(int)))
GK_QUICK_WIDTHS = (8, 16, 27, 47, 80, 135, 230)


@dataclass(frozen=True)
class Sweep:
    """What a study varies: `path` (a dotted setting field) over `values`. `side` says where the
    interpolating models are ("below" for sample-wise sweeps, where small training sets are fit
    exactly). Values may be multiples of a base field (`relative_to`), so `--set task.d=200`
    moves the grid with it."""

    path: str
    values: tuple[float, ...] = ()
    relative_to: str | None = None
    side: Literal["above", "below"] = "above"
    label: str = "width"
    quick_values: tuple[float, ...] | None = None  # `--quick`'s grid (None: the full one)
    optimal_ridge: bool = False  # optim.ridge set to the optimal penalty at each n


@dataclass(frozen=True)
class DoubleDescentSetting(Canonical):
    """`sweep`: the capacity axis of a model-, feature- or sample-wise study; None: epoch-wise."""

    sweep: Sweep | None = None


_MNIST1D_GK = {"name": "mnist1d", "num_samples": 16000, "train_split": 0.25}
_LINEAR = {
    "task": {"name": "linear_regression", "d": 100, "n_train": 100, "n_test": 2000, "noise_std": 0.5},
    "model": {"name": "linear"},
    "optim": {"name": "lstsq"},
    "loss": "mse",
    "dtype": "float64",
}
_N_OVER_D = tuple(k / 10 for k in range(1, 31))  # n = 0.1·d … 3·d in steps of 0.1·d
_LINEAR_SOURCE = (
    "Nakkiran, Venkat, Kakade & Ma 2021, 'Optimal regularization can mitigate double descent': x ~ N(0, I_d), "
    "y = x·β + ε, ‖β‖ = 1, σ = 0.5; here d = 100, n_train = 10…300 (steps of 10), 2000 test points, float64"
)

CANONICAL = (
    DoubleDescentSetting(
        "greydanus_kobak2024",
        {
            "task": {**_MNIST1D_GK, "label_noise": 0.15},
            "model": {"name": "mlp", "width": 61, "depth": 2},
            "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
            "schedule": {"epochs": 500, "batch_size": 100},
            "loss": "ce",
            "eval": {"points": 40},
            "measures": ["parameter_count"],
            "checkpoints": "final",
        },
        source="Greydanus & Kobak 2024, position paper Fig. 4 (greydanus/mnist1d notebooks/deep-double-descent"
        ".ipynb): MNIST-1D make_dataset(num_samples=16000, train_split=0.25, other args default, seed 42) → "
        "4000 train / 12000 test; 15% of train labels replaced by randint(0, 10); MLP 40→h→h→10 ReLU, PyTorch "
        "default init, h in unique(geomspace(2, 300, 20).astype(int)); SGD lr 0.01 momentum 0.9, batch 100, "
        "500 epochs, cross-entropy. Published (1 seed): test error 47.2% at h=16, peak 54.0% at h=47/61 (train "
        "error 5.5% at 47, 0% from 61), 45.5% at h=300",
        description="model-wise deep double descent with label noise; 19 widths (each replaces the base width 61) "
        "× seeds; 10 seeds take ~7 min on a 2-core CPU; --quick ~1.5 min",
        published="1 seed: test error 47.2% at h=16, peak 54.0% at h=47 and 61 (train error 5.5% at 47, 0% from "
        "61), 45.5% at h=300",
        quick={"schedule.epochs": 250},
        quick_note="--quick: 7 of the 19 widths and 250 of the 500 epochs; the peak moves right (train error "
        "reaches 0 later) but stays",
        sweep=Sweep("model.width", GK_WIDTHS, label="hidden width h", quick_values=GK_QUICK_WIDTHS),
    ),
    DoubleDescentSetting(
        "nakkiran2021_linear", _LINEAR,
        source=_LINEAR_SOURCE + "; min-norm least squares (pinv). Expected excess risk (1 − n/d) + σ²n/(d − n − 1) "
        "below d, σ²d/(n − d − 1) above: a spike at n = d",
        description="sample-wise double descent, exact; seconds. `--set optim.ridge=…` for a fixed ridge",
        published="expected excess risk (1 − n/d)‖β‖² + σ²n/(d − n − 1) below d, σ²d/(n − d − 1) above: a spike "
        "at n = d",
        sweep=Sweep("task.n_train", _N_OVER_D, relative_to="task.d", side="below", label="training samples n"),
    ),
    DoubleDescentSetting(
        "nakkiran2021_optimal_ridge",
        {**_LINEAR, "optim": {"name": "lstsq", "ridge": optimal_ridge(100, 100, 0.5)}},
        source=_LINEAR_SOURCE + "; ridge at the optimal λ = d·σ²/‖β‖² on the summed squared error (their Thm. 1), "
        "i.e. optim.ridge = d·σ²/(‖β‖²·n) on the engine's mean-squared-error scale, set for each n",
        description="the same sweep with optimally tuned ridge: the peak disappears (test risk is monotone in n)",
        published="optimally tuned ridge makes the test risk monotone in n: no peak (Thm. 1)",
        sweep=Sweep("task.n_train", _N_OVER_D, relative_to="task.d", side="below", label="training samples n",
                    optimal_ridge=True),
    ),
    DoubleDescentSetting(
        "belkin2019_rff",
        {
            "task": {**_MNIST1D_GK, "train_size": 500},
            "model": {"name": "random_features", "num_features": 500, "feature": "fourier"},
            "optim": {"name": "lstsq"},
            "loss": "mse",
            "dtype": "float64",
            "measures": ["parameter_count"],
            "checkpoints": "final",
        },
        source="Belkin, Hsu, Ma & Mandal 2019 (PNAS), random Fourier features (Rahimi & Recht 2007) with a min-norm "
        "least-squares readout on one-hot targets; here MNIST-1D (the Greydanus & Kobak data set), a random "
        "500-sample training subset per seed, the 12000 test points, p = 0.1n … 5n, float64",
        description="model-wise double descent of random features, exact; peak at p = n; seconds",
        published="the test risk peaks where the number of features equals the number of training samples (p = n)",
        sweep=Sweep("model.num_features",
                    (0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0),
                    relative_to="task.train_size", label="random features p"),
    ),
    DoubleDescentSetting(
        "digits_label_noise",
        {
            "task": {"name": "digits", "train_size": 600, "label_noise": 0.2},
            "model": {"name": "mlp", "width": 16, "depth": 1},
            "optim": {"name": "adam", "lr": 1e-2},
            "schedule": {"steps": 1000},
            "loss": "ce",
            "eval": {"points": 8},
            "measures": ["parameter_count"],
            "checkpoints": "final",
        },
        source="phenolab's reduced neural double descent (not from a paper): scikit-learn digits, a random "
        "600-image training subset per seed, 20% of its labels redrawn (Nakkiran et al. 2019's recipe), MLP "
        "64→h→10 ReLU, full-batch Adam lr 1e-2 for 1000 steps, cross-entropy; h = 4…64",
        description="a neural peak in about 15 s per 3 seeds on one core (the test suite's); "
        "--set optim.weight_decay=0.01 removes it",
        published="not from a paper; Nakkiran et al. 2019 see the model-wise peak with label noise and find that "
        "regularization removes it",
        sweep=Sweep("model.width", (4, 8, 16, 32, 64), label="hidden width h"),
    ),
    DoubleDescentSetting(
        "epochwise",
        {
            "task": {"name": "mnist1d", "num_samples": 16000, "train_split": 0.25, "label_noise": 0.3},
            "model": {"name": "mlp", "width": 256, "depth": 6},
            "optim": {"name": "adam", "lr": 1e-3},
            "schedule": {"epochs": 300, "batch_size": 100},
            "loss": "ce",
            "eval": {"points": 60},
            "measures": ["label_fit"],
        },
        source="phenolab's MNIST-1D setting after Kubo, Uda & Iida 2026 ('Deep exploration of epoch-wise double "
        "descent in noisy data': deep MLPs, 30% label noise, Adam): the Greydanus & Kobak data (4000 train / 12000 "
        "test), 30% of training labels redrawn uniformly, MLP 40→256×6→10 ReLU (six hidden layers), PyTorch "
        "default init, Adam lr 1e-3, batch 100, 300 epochs, cross-entropy, 60 log-spaced evaluations; records the "
        "share of noise-changed training labels fit (label_fit)",
        description="test error over steps on MNIST-1D: down, up while the noisy labels are fit, down again once "
        "they are; minutes on a CPU",
        published="Kubo, Uda & Iida 2026 (CIFAR-10, 30% label noise): a second descent in their deepest MLP, "
        "none in the shallow one",
    ),
    DoubleDescentSetting(
        "epochwise_two_scale",
        {
            "task": {"name": "linear_regression", "d": 600, "n_train": 400, "n_test": 2000, "noise_std": 0.2,
                     "slow_dims": 400, "slow_scale": 0.05, "slow_signal": 0.5},
            "model": {"name": "linear"},
            "optim": {"name": "sgd", "lr": 0.25},
            "schedule": {"steps": 8000},
            "loss": "mse",
            "eval": {"points": 80},
            "dtype": "float64",
        },
        source="two-scale linear regression after Pezeshki, Mitra, Bengio & Lajoie 2022 ('Multi-scale feature "
        "learning dynamics: insights for double descent') and Heckel & Yilmaz 2021: x = (x_fast, 0.05·x_slow), "
        "x ~ N(0, I), 200 fast + 400 slow inputs, half the signal variance on each block, noise σ = 0.2, "
        "n_train = 400, linear model from zero, full-batch gradient descent lr 0.25 on the MSE, 8000 steps",
        description="test MSE over steps: down (fast inputs), up (noise fit through them), down again (slow "
        "inputs); seconds on a CPU. task.slow_scale=1 removes the peak",
        published="features learned at different speeds give epoch-wise double descent; one speed does not "
        "(Pezeshki et al. 2022)",
    ),
)
