"""The lottery-ticket canonical settings: Frankle & Carbin 2019's LeNet-300-100 recipe on two data
sets that need no download. A study trains one dense net and, per pruning round, the ticket and
its controls (`plan`); `--quick` trains fewer epochs per round."""

from __future__ import annotations

from typing import Any

from phenolab.phenomena import Canonical

QUICK_EPOCHS = 5  # --quick's epochs per round
PUBLISHED = ("MNIST, LeNet-300-100: winning tickets match the dense net down to ~10–20% of the weights (best at "
             "21.1%, back to dense accuracy at 3.6%); random reinitialization degrades after ~50% pruning "
             "(secondary source)")


def _lenet_300_100(task: str) -> dict[str, Any]:
    """Frankle & Carbin 2019's LeNet-300-100 recipe on `task`: the lottery settings differ only there."""
    return {
        "task": {"name": task},
        "model": {"name": "mlp", "widths": [300, 100]},
        "optim": {"name": "adam", "lr": 1.2e-3},
        "schedule": {"epochs": 20, "batch_size": 64},
        "eval": {"points": 20},
        "checkpoints": "final",
        "prune": {"control": "dense"},
    }


_QUICK = {"quick": {"schedule.epochs": QUICK_EPOCHS},
          "quick_note": f"--quick: {QUICK_EPOCHS} epochs per round (the canonical setting trains 20)"}
CANONICAL = (
    Canonical(
        "frankle_carbin2019_mnist1d", _lenet_300_100("mnist1d"),
        source="Frankle & Carbin 2019, LeNet-300-100 (300-100 ReLU, Adam lr 1.2e-3, batch 60, 50k iterations on "
        "MNIST; per round prune 20% of each hidden layer and 10% of the output layer, rewind to init); here on "
        "MNIST-1D (40 inputs, 4000 train / 1000 test), batch 64, 20 epochs per round",
        description="the lottery-ticket study: `phenolab reproduce lottery --rounds 15`",
        published=PUBLISHED, **_QUICK,
    ),
    Canonical(
        "frankle_carbin2019_digits", _lenet_300_100("digits"),
        source="Frankle & Carbin 2019's LeNet-300-100 recipe (see frankle_carbin2019_mnist1d) on scikit-learn's "
        "8x8 digits (64 inputs, 1258 train / 539 test)",
        description="lottery tickets on real (small) images, no download",
        published=PUBLISHED, **_QUICK,
    ),
)
