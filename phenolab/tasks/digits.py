"""scikit-learn's bundled 8×8 digits: a real image task small enough for hundreds of replicas.

The train/test split is fixed by `split_seed` and shared by every replica, so seeds vary only the
training subset, label noise and training itself, and test errors are comparable across seeds.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from phenolab.settings import DigitsTask
from phenolab.tasks._base import TaskData, register_task
from phenolab.tasks.noise import check_input_kind, replicate_train

NUM_CLASSES = 10


@functools.lru_cache(maxsize=1)
def load_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Pixels scaled to [0, 1] (x / 16, float64 `[1797, 64]`) and int64 labels; read-only, cached
    because importing scikit-learn and parsing the bundled file takes about a second."""
    from sklearn.datasets import load_digits  # heavy import: only when the task is built

    digits = load_digits()
    x = np.asarray(digits.data, dtype=np.float64) / 16.0
    y = np.asarray(digits.target, dtype=np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def split_indices(n: int, test_fraction: float, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test indices: a permutation by `split_seed`, the last round(test_fraction·n) test."""
    n_test = round(test_fraction * n)
    if not 0 < n_test < n:
        raise ValueError(f"test_fraction={test_fraction} of {n} images leaves an empty train or test set")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    return perm[: n - n_test], perm[n - n_test:]


def build_digits(cfg: DigitsTask, seeds: list[int], input_kind: str, dtype: torch.dtype) -> TaskData:
    """Fixed split (`split_seed`); per replica an optional training subset (`"subset"`) and label
    noise (`"noise"`, labels replaced by randint(0, 10), so ~90% of the chosen ones change)."""
    check_input_kind("digits", input_kind)
    x_np, y_np = load_arrays()
    x, y = torch.tensor(x_np, dtype=dtype), torch.tensor(y_np, dtype=torch.int64)
    train, test = split_indices(x.shape[0], cfg.test_fraction, cfg.split_seed)
    x_train, y_train, y_clean = replicate_train(x[train], y[train], seeds, cfg.train_size, cfg.label_noise,
                                                NUM_CLASSES)
    k = len(seeds)
    x_test, y_test = x[test], y[test]
    return TaskData(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test.unsqueeze(0).expand(k, *x_test.shape),
        y_test=y_test.unsqueeze(0).expand(k, *y_test.shape),
        input_kind="features",
        input_dim=x.shape[1],
        out_dim=NUM_CLASSES,
        num_classes=NUM_CLASSES,
        y_train_clean=y_clean,
    )


register_task("digits", build_digits)
