"""Deep ensembles' canonical settings, each named after its source, with what the source reports.

A run is one member; `ensemble.members` M says which seeds form an ensemble (seeds e·M … e·M+M−1
are ensemble e), and `--seeds N` counts ensembles. Members are mnist1d's own MLP baseline
(greydanus/mnist1d: 40 → 100 → 100 → 10 ReLU, Adam lr 1e-2, batch 100, 6000 steps), so the
members are what a user of that data set would train anyway. A setting with `variants` trains
each variant's ensembles side by side (same ensemble seeds) and compares them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from phenolab.phenomena import Canonical

MEMBER: dict[str, Any] = {
    "task": {"name": "mnist1d"},
    "model": {"name": "mlp", "width": 100, "depth": 2},
    "optim": {"name": "adam", "lr": 1e-2},
    "schedule": {"steps": 6000, "batch_size": 100},
    "eval": {"points": 30},
    "checkpoints": "final",  # the signature reads every member's outputs from its final parameters
}
MEMBER_SOURCE = ("members: greydanus/mnist1d's MLP baseline (40 → 100 → 100 → 10 ReLU, Adam lr 1e-2, batch 100, "
                 "6000 steps; 4000 train / 1000 test)")
QUICK = {"schedule.steps": 1500}
QUICK_NOTE = "--quick: 1500 of the 6000 steps"


@dataclass(frozen=True)
class EnsembleSetting(Canonical):
    """`sizes`: ensemble sizes read from the first K members of each ensemble (nested, as
    Lakshminarayanan et al. plot them); `variants`: (label, overrides) trained side by side, the
    first is the one the others are compared with; `shifts`: circular shifts of the test signal
    under which predictions are compared (equivariance); `perturbed`: also build ensembles of
    perturbations of one trained member (Fort et al.'s subspace samples)."""

    sizes: tuple[int, ...] = (1, 2, 4, 8, 16)
    variants: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    shifts: tuple[int, ...] = ()
    perturbed: bool = False


def _with(ensemble: Mapping[str, Any], **more: Any) -> dict[str, Any]:
    return {**MEMBER, "ensemble": dict(ensemble), **more}


CANONICAL = (
    EnsembleSetting(
        "lakshminarayanan2017_mnist1d",
        _with({"members": 16}),
        source="Lakshminarayanan, Pritzel & Blundell 2017, 'Simple and scalable predictive uncertainty estimation "
        "using deep ensembles': M independently trained networks (random init and data order), predictions "
        f"averaged; {MEMBER_SOURCE}",
        description="ensembles of 1, 2, 4, 8, 16 independent members: error, loss and diversity against the "
        "mean member",
        published="ensembles beat their members in accuracy and NLL, with diminishing gains by M ≈ 5–10 "
        "(MNIST/SVHN/ImageNet, their Figs. 2–6)",
        quick=QUICK, quick_note=QUICK_NOTE,
    ),
    EnsembleSetting(
        "lakshminarayanan2017_digits",
        _with({"members": 16}, task={"name": "digits"}, optim={"name": "adam", "lr": 1e-3},
              schedule={"steps": 2000, "batch_size": 100}),
        source="Lakshminarayanan et al. 2017 on scikit-learn's 8×8 digits (1258 train / 539 test): MLP 64 → 100 → "
        "100 → 10 ReLU, Adam lr 1e-3, batch 100, 2000 steps",
        description="the same ensembles on another data set",
        published="as on MNIST: ensembles beat their members, gains flatten with M",
        quick={"schedule.steps": 500}, quick_note="--quick: 500 of the 2000 steps",
    ),
    EnsembleSetting(
        "jeffares2024_joint",
        _with({"members": 4, "diversity": "init"}),
        source="Jeffares, Liu, Crabbé & van der Schaar 2024 (NeurIPS), 'Joint training of deep ensembles fails due "
        "to learner collusion': members trained on (1 − β)·their own loss + β·the ensemble's loss, β from 0 "
        f"(independent) to 1 (joint); members share data order here so that β alone differs; {MEMBER_SOURCE}",
        description="independent (β = 0) against partly (0.5) and fully (1) joint training of 4-member ensembles",
        published="joint training (β = 1) inflates the diversity on the training set without improving it on test "
        "data (learner collusion) and generalizes worse than independent training",
        sizes=(1, 2, 4),
        variants=(("beta0", {"ensemble.joint": 0.0}), ("beta0.5", {"ensemble.joint": 0.5}),
                  ("beta1", {"ensemble.joint": 1.0})),
        quick=QUICK, quick_note=QUICK_NOTE,
    ),
    EnsembleSetting(
        "fort2019_diversity",
        _with({"members": 8}),
        source="Fort, Hu & Lakshminarayanan 2019, 'Deep ensembles: a loss landscape perspective': members from "
        "different inits land in different modes; samples around one solution are far less diverse. Members differ "
        "in init and data order, init only, or data order only; and ensembles of Gaussian perturbations of one "
        f"trained member; {MEMBER_SOURCE}",
        description="where the diversity comes from: init, data order, both, or perturbations of one trained net",
        published="independent inits give most of the diversity and the gain; perturbations around one trained "
        "network give far less of both",
        sizes=(1, 2, 4, 8),
        variants=(("both", {}), ("init", {"ensemble.diversity": "init"}), ("order", {"ensemble.diversity": "order"})),
        perturbed=True,
        quick=QUICK, quick_note=QUICK_NOTE,
    ),
    EnsembleSetting(
        "gerken2024_translation",
        _with({"members": 8}),
        source="Gerken & Kessel 2024 (ICML), 'Emergent equivariance in deep ensembles': ensembles of members trained "
        "on translated data are equivariant (in the infinite-width limit) although no member is. Translated: "
        "MNIST-1D's own random translations (max_translation 48, its default); fixed: max_translation 1; "
        f"predictions compared under circular shifts of the test signal by ±1…±4 samples; {MEMBER_SOURCE}",
        description="how much predictions change under shifts of the input, for members and their ensemble",
        published="with augmentation the ensemble's predictions change less under the symmetry than any member's, "
        "exactly so in the infinite-width limit; without augmentation no such property",
        sizes=(1, 2, 4, 8),
        variants=(("translated", {}), ("fixed", {"task.max_translation": 1})),
        shifts=(-4, -3, -2, -1, 1, 2, 3, 4),
        quick=QUICK, quick_note=QUICK_NOTE,
    ),
)
