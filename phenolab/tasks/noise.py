"""Per-replica training subsets and label noise, shared by the classification tasks.

Both draw only from the replica's own stream (`"subset"`, `"noise"`), so a replica's data never
depends on which other seeds share its batch.
"""

from __future__ import annotations

import torch

from phenolab._rng import generator


def subset_indices(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """`size` distinct indices of `range(n)`, drawn without replacement (sorted, for locality)."""
    if not 1 <= size <= n:
        raise ValueError(f"train_size={size} must be between 1 and the {n} available training points")
    return torch.randperm(n, generator=gen)[:size].sort().values


def noisy_labels(y: torch.Tensor, fraction: float, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """A copy of `y` with round(fraction·N) labels, at random positions, redrawn uniformly.

    A redrawn label may equal the old one (as in Greydanus & Kobak's and Nakkiran et al.'s
    recipe), so about fraction·(1 − 1/num_classes) of the labels actually change.
    """
    y = y.clone()
    n_noisy = round(fraction * y.shape[0])
    if n_noisy:
        where = torch.randperm(y.shape[0], generator=gen)[:n_noisy]
        y[where] = torch.randint(0, num_classes, (n_noisy,), generator=gen, dtype=y.dtype)
    return y


def replicate_train(
    x: torch.Tensor, y: torch.Tensor, seeds: list[int], train_size: int | None, label_noise: float,
    num_classes: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Training tensors `[K, ...]` of a data set shared by all replicas: subset, then label noise.

    Whatever stays identical across replicas is an `expand`ed view of `x` / `y` (no K copies).
    Returns `(x_train, y_train, y_train_clean)`; `y_train_clean` is None without label noise.
    """
    k = len(seeds)
    if train_size is None:
        xs = x.unsqueeze(0).expand(k, *x.shape)
        ys_clean = y.unsqueeze(0).expand(k, *y.shape)
    else:
        idx = [subset_indices(x.shape[0], train_size, generator(s, "subset")) for s in seeds]
        xs = torch.stack([x[i] for i in idx])
        ys_clean = torch.stack([y[i] for i in idx])
    if label_noise <= 0:
        return xs, ys_clean, None
    ys = torch.stack([noisy_labels(ys_clean[r], label_noise, num_classes, generator(s, "noise"))
                      for r, s in enumerate(seeds)])
    return xs, ys, ys_clean


def check_input_kind(task: str, input_kind: str) -> None:
    """Reject token inputs for tasks that only give feature vectors, with a message naming both."""
    if input_kind == "tokens":
        raise ValueError(f"task {task!r} gives feature inputs; model needs tokens")
    if input_kind != "features":
        raise ValueError(f"unknown input_kind {input_kind!r}; expected 'features' or 'tokens'")
