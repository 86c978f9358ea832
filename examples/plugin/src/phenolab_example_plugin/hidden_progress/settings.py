"""The canonical settings of hidden progress on sparse parity, as data.

Both are sized for a CPU (seconds per seed); neither is a setting Barak et al. trained, so
`published` states their qualitative claim only. The relevant bits are the first k = 3 of the
task's inputs, and the measure `relevant_input_weight_share(k=3)` watches them.
"""

from __future__ import annotations

from typing import Any

from phenolab.phenomena import Canonical

K = 3  # relevant bits; the signature reads the share measure for this k (signature.share_metric)
SHARE_MEASURE: dict[str, Any] = {"name": "relevant_input_weight_share", "params": {"k": K}}

PUBLISHED = (
    "Barak et al. 2022 (NeurIPS): MLPs, Transformers and other networks trained by SGD on (n, k)-sparse parities "
    "sit at chance loss and error for a long plateau, then learn abruptly, after about n^O(k) iterations (near the "
    "statistical-query lower bound); their analysis shows SGD amplifying the relevant coordinates all along "
    "(a Fourier gap in the population gradient), progress invisible to loss and error. No numbers for these "
    "sizes: compare the shape, not the steps"
)

CANONICAL = (
    Canonical(
        "sparse_parity_demo",
        {
            "task": {"name": "sparse_parity", "n_bits": 20, "k": K, "n_train": 1000, "n_test": 1000},
            "model": {"name": "mlp", "width": 256, "depth": 1},
            "optim": {"name": "adamw", "lr": 1e-2, "weight_decay": 1.0},
            "schedule": {"steps": 1000},
            "eval": {"points": 40},
            "measures": [SHARE_MEASURE, "weight_norm"],
        },
        source="the sparse-parity task of Barak et al. 2022 (n=20, k=3) with a finite training set as in Merrill, "
        "Tsilivis & Shukla 2023; sizes chosen for a CPU demo: 1000 training points, one hidden ReLU layer of 256 "
        "units, full-batch AdamW lr 1e-2, weight decay 1 (example plug-in)",
        description="example plug-in: the first layer's weight moves onto the 3 relevant bits while test accuracy "
        "is still at chance, then test accuracy rises (seconds on a CPU)",
        published=PUBLISHED,
    ),
    Canonical(
        "sparse_parity_sgd",
        {
            "task": {"name": "sparse_parity", "n_bits": 30, "k": K, "n_train": 10_000, "n_test": 2000},
            "model": {"name": "mlp", "width": 256, "depth": 1},
            "optim": {"name": "sgd", "lr": 0.1, "weight_decay": 0.01},
            "schedule": {"steps": 4000, "batch_size": 32},
            "eval": {"points": 60},
            "measures": [SHARE_MEASURE, "weight_norm"],
        },
        source="the sparse-parity task of Barak et al. 2022 (n=30, k=3) trained by minibatch SGD; sizes chosen for "
        "a CPU: 10⁴ training points in minibatches of 32 (about 13 passes in 4000 steps, where Barak et al. draw "
        "fresh samples), one hidden ReLU layer of 256 units, SGD lr 0.1, weight decay 0.01 (example plug-in)",
        description="example plug-in: train and test accuracy both sit at chance for ~10³ steps, then jump to 100%",
        published=PUBLISHED,
    ),
)
