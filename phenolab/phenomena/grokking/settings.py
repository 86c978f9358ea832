"""Grokking's canonical settings, each named after its source, with what the source reports.

`--quick` budgets: the transformer settings train the first steps of the source's budget (no
learning-rate decay follows the warmup, so these are the full run's own steps: t_train and t_test
are the same wherever both are reached); omnigrok2022 trains 5000 of its 10⁵ steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from phenolab.phenomena import Canonical

_ADAMW_098 = {"name": "adamw", "betas": [0.9, 0.98]}
# Recorded along power2022 runs: the position paper's Figure 4 plots the count of prime round(10·|w|)
# beside test accuracy and tests it against mean |w| and the weight norm (`phenolab reproduce figure4`).
FIGURE4_MEASURES: list[Any] = [{"name": "prime_parameter_count", "params": {"scale": 10}}, "mean_abs_weight",
                               "weight_norm"]
# power2022 reaches 99% test accuracy at step ~2.5·10³ (measured); Nanda et al. report the "cleanup"
# phase of nanda2023 ending near 1.4·10⁴.
QUICK_STEPS = {"power2022": 10_000, "nanda2023": 20_000}


@dataclass(frozen=True)
class GrokkingSetting(Canonical):
    """`relative_test`: the data never reach 99% test accuracy (non-algorithmic), so `t_test` is the
    first step at 90% of the run's best test accuracy (`signature.RELATIVE_TEST`)."""

    relative_test: bool = False


def _transformer_quick(name: str, full: int) -> dict[str, Any]:
    steps = QUICK_STEPS[name]
    return {"quick": {"schedule.steps": steps},
            "quick_note": f"--quick: the first {steps:.0e} of the source's {full:.0e} steps (no decay "
                          "schedule: the same trajectory, cut short)".replace("e+0", "e")}


CANONICAL = (
    GrokkingSetting(
        "gromov2023",
        {
            "task": {"name": "modular", "p": 97, "op": "+", "train_fraction": 0.3},
            "model": {"name": "mlp", "width": 500, "depth": 1, "activation": "quadratic", "bias": False},
            "optim": {**_ADAMW_098, "lr": 1e-2, "weight_decay": 5.0},
            "schedule": {"steps": 300},
            "loss": "mse",
            "eval": {"points": 60},
        },
        source="Gromov 2023, 'Grokking modular arithmetic' (d-doshi/Grokking notebooks): one-hot(a)⊕one-hot(b) "
        "→ 500 quadratic units, no bias → p; MSE to one-hot; full batch; AdamW lr 1e-2, betas (0.9, 0.98), wd 5",
        description="groks in seconds on a CPU; try task.train_fraction=0.5/0.3/0.15",
        published="at train fraction 0.5 (not 0.3): train accuracy 100% at step ~28, test ~99.9% at ~42 "
        "(d-doshi notebooks); the delay grows as the fraction shrinks",
    ),
    GrokkingSetting(
        "prieto2025",
        {
            "task": {"name": "modular", "p": 113, "op": "+", "train_fraction": 0.4},
            "model": {"name": "mlp", "width": 200, "depth": 2, "bias": False},
            "optim": {"name": "adamw", "lr": 1e-2, "betas": [0.9, 0.99], "eps": 1e-25, "weight_decay": 0.0},
            "schedule": {"steps": 1000},
            "loss": "ce",
            "eval": {"points": 60},
            # Prieto et al.'s account: without weight decay the float32 softmax collapses to one-hot on
            # the training set, the cross-entropy gradient vanishes, and the network never generalizes
            "measures": ["softmax_collapse", "weight_norm"],
        },
        source="Prieto, Barsbey, Mediano & Birdal 2025, 'Grokking at the edge of numerical stability' "
        "(LucasPrietoAl/grokking-at-the-edge-of-numerical-stability, run_main_experiments.sh Fig. 1): "
        "one-hot(a) ⊕ one-hot(b) → MLP [200, 200] ReLU, no bias → 113; a + b mod 113, fraction 0.4; full batch; "
        "softmax cross-entropy in float32; AdamW lr 1e-2 betas (0.9, 0.99) eps 1e-25, no weight decay",
        description="the setting of StableMax and ⊥Grad: without an accelerator it does not generalize "
        "(softmax collapse); try --compare accelerators",
        published="without weight decay no generalization (softmax collapse); ⊥AdamW groks in ~300 epochs, "
        "StableMax in ~8·10⁴",
    ),
    GrokkingSetting(
        "power2022",
        {
            "task": {"name": "modular", "p": 97, "op": "/", "train_fraction": 0.5},
            "model": {"name": "transformer", "n_layers": 2, "d_model": 128, "n_heads": 4, "d_mlp": 512},
            "optim": {**_ADAMW_098, "lr": 1e-3, "weight_decay": 1.0, "warmup_steps": 10},
            "schedule": {"steps": 100_000, "batch_size": 512},
            "eval": {"points": 120},
            # what Figure 4 reads from these runs, so `reproduce figure4` reuses them
            "measures": FIGURE4_MEASURES,
            "checkpoints": "final",
        },
        source="Power et al. 2022 (openai/grok defaults, App. A.1.2): 2-layer causal decoder d_model 128, 4 heads, "
        "tokens 'a ÷ b =', fraction 0.5, AdamW lr 1e-3 betas (0.9, 0.98) wd 1, batch 512, 10-step warmup, 1e5 steps",
        description="the original grokking curve; GPU recommended (hours on a 2-core CPU)",
        published="Fig. 1 (same task, no weight decay): train accuracy near 100% by ~10³ steps, validation only "
        "after ~10⁵; weight decay is their strongest accelerator (Fig. 2)",
        **_transformer_quick("power2022", 100_000),
    ),
    GrokkingSetting(
        "nanda2023",
        {
            "task": {"name": "modular", "p": 113, "op": "+", "train_fraction": 0.3},
            "model": {"name": "transformer", "n_layers": 1, "d_model": 128, "n_heads": 4, "d_mlp": 512,
                      "layernorm": False},
            "optim": {**_ADAMW_098, "lr": 1e-3, "weight_decay": 1.0, "warmup_steps": 10},
            "schedule": {"steps": 40_000},
            "eval": {"points": 120},
            # Nanda et al.'s progress measures read the embedding's Fourier structure and the weight norm
            "measures": ["weight_norm", "fourier_sparsity"],
        },
        source="Nanda et al. 2023, progress measures (transformers.py): 1 layer, d_model 128, 4 heads, d_mlp 512, "
        "no LayerNorm, a + b mod 113, fraction 0.3, full batch, AdamW lr 1e-3 wd 1 betas (0.9, 0.98), 40k steps",
        description="mechanistic-interpretability grokking; GPU recommended",
        published="memorization to ~1.4·10³ steps, circuit formation to ~9.4·10³, cleanup to ~1.4·10⁴ "
        "(secondary source)",
        **_transformer_quick("nanda2023", 40_000),
    ),
    GrokkingSetting(
        "omnigrok2022",
        {
            "task": {"name": "mnist1d", "num_samples": 5000, "train_size": 1000},
            "model": {"name": "mlp", "width": 200, "depth": 2, "init_scale": 8.0},
            "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01},
            "schedule": {"steps": 100_000, "batch_size": 200},
            "loss": "mse",
            "eval": {"points": 100},
            "dtype": "float64",
        },
        source="Liu, Michaud & Tegmark 2022 (Omnigrok, KindXiaoming/Omnigrok): MLP depth 3 width 200 ReLU, 1000 "
        "training points (MNIST there, MNIST-1D here), AdamW lr 1e-3 wd 0.01, batch 200, MSE, init ×8, float64",
        description="grokking on non-algorithmic data induced by a large init; long (1e5 steps)",
        published="on MNIST (their Fig. 1): with init ×8 test accuracy rises long after the training set is fit; "
        "the delay goes with the large initialization",
        quick={"schedule.steps": 5000},
        quick_note="--quick: 5000 steps (the source trains 1e5)",
        relative_test=True,
    ),
)
