"""Modular arithmetic `a op b mod p` (Power et al. 2022), the grokking workhorse.

Every pair is enumerated once; each replica splits the pairs with its own `"split"` stream, so the
train/test split itself is part of the seed-to-seed variation grokking results are known for.
"""

from __future__ import annotations

import torch

from phenolab._rng import generator
from phenolab.settings import ModularTask
from phenolab.settings._components import is_prime  # one definition: settings refuse "/" with p not prime
from phenolab.tasks._base import TaskData, register_task
from phenolab.tasks.noise import noisy_labels

SEQ_LEN = 4  # tokens: a, OP, b, EQ (the answer is predicted at EQ)


def modular_table(p: int, op: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All operand pairs `(a, b)` of `op` and their labels, as int64 `[N]` tensors.

    `/` is a · b⁻¹ with the true modular inverse (b = 0 excluded), not the `a * b` that a popular
    public repo computes under that name; it needs p prime, so that every b ≠ 0 is invertible.
    """
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    if op == "/":
        if not is_prime(p):
            raise ValueError(f"modular op '/' needs a prime modulus p (so every b != 0 has an inverse); "
                             f"got p={p}")
        keep = b != 0
        a, b = a[keep], b[keep]
        inverse = torch.tensor([0] + [pow(v, p - 2, p) for v in range(1, p)])
        y = a * inverse[b] % p
    elif op == "+":
        y = (a + b) % p
    elif op == "-":
        y = (a - b) % p  # torch's % takes the divisor's sign, like Python: always in [0, p)
    elif op == "*":
        y = a * b % p
    elif op == "x2+xy+y2":
        y = (a * a + a * b + b * b) % p
    elif op == "x3+xy":
        y = (a * a * a + a * b) % p
    else:
        raise ValueError(f"unknown modular op {op!r}")
    return a, b, y


def encode(a: torch.Tensor, b: torch.Tensor, p: int, input_kind: str, dtype: torch.dtype) -> torch.Tensor:
    """Features one-hot(a) ⊕ one-hot(b) `[..., 2p]` (Gromov 2023); the same one-hot given by the
    indices of its two ones, `[..., 2]` = (a, p + b) ("onehot": a first layer then costs a lookup,
    not a matmul over 2p mostly-zero inputs); or tokens `[..., 4]` = `a, OP, b, EQ` with OP = p and
    EQ = p + 1 (Power et al. 2022)."""
    if input_kind == "onehot":
        return torch.stack([a, b + p], dim=-1)
    if input_kind == "features":
        x = torch.zeros(*a.shape, 2 * p, dtype=dtype)
        x.scatter_(-1, a.unsqueeze(-1), 1)
        x.scatter_(-1, (b + p).unsqueeze(-1), 1)
        return x
    if input_kind == "tokens":
        return torch.stack([a, torch.full_like(a, p), b, torch.full_like(a, p + 1)], dim=-1)
    raise ValueError(f"unknown input_kind {input_kind!r}; expected 'features' or 'tokens'")


def build_modular(cfg: ModularTask, seeds: list[int], input_kind: str, dtype: torch.dtype) -> TaskData:
    """Split all pairs per replica (`"split"`), first round(train_fraction·N) train; optional label
    noise on the training labels (`"noise"`), uniform over [0, p)."""
    p = cfg.p
    if input_kind not in ("features", "onehot", "tokens"):
        raise ValueError(f"unknown input_kind {input_kind!r}; expected 'features', 'onehot' or 'tokens'")
    a, b, y = modular_table(p, cfg.op)
    n = y.shape[0]
    n_train = round(cfg.train_fraction * n)
    if not 0 < n_train < n:
        raise ValueError(f"train_fraction={cfg.train_fraction} of {n} pairs leaves an empty train or test "
                         "set")
    perms = torch.stack([torch.randperm(n, generator=generator(s, "split")) for s in seeds])
    train, test = perms[:, :n_train], perms[:, n_train:]
    y_train = y[train]
    y_clean = None
    if cfg.label_noise > 0:
        y_clean = y_train
        y_train = torch.stack([noisy_labels(y_clean[r], cfg.label_noise, p, generator(s, "noise"))
                               for r, s in enumerate(seeds)])
    return TaskData(
        x_train=encode(a[train], b[train], p, input_kind, dtype),
        y_train=y_train,
        x_test=encode(a[test], b[test], p, input_kind, dtype),
        y_test=y[test],
        input_kind=input_kind,
        input_dim=p + 2 if input_kind == "tokens" else 2 * p,
        out_dim=p,
        num_classes=p,
        seq_len=SEQ_LEN if input_kind == "tokens" else None,
        y_train_clean=y_clean,
    )


register_task("modular", build_modular, onehot=True)
