"""Grokking: generalization long after the training set is fit (Power et al. 2022).

Signature per run, read from the catalog's curves: `t_train` / `t_test` = first evaluated step
with train / test accuracy ≥ 99%, `delay = t_test − t_train`, `ratio = t_test / t_train`,
censored flags when a threshold is not reached within the budget, and a phase after Liu et al.
2022: comprehension (both reached, ratio < `GROK_RATIO`), grokking (ratio ≥ `GROK_RATIO`),
memorization (train only), confusion (neither).

Non-algorithmic data (`omnigrok2022`) never reaches 99% test accuracy, so there `t_test` is the
first step at which test accuracy reaches `RELATIVE_TEST` (90%) of the run's best test accuracy
(`TEST_THRESHOLD_RELATIVE`): the delay then says when the run generalizes as well as it will,
measured against when it fit the training set. Run the same setting with `model.init_scale=1` for
the control (Liu et al.'s claim is that the delay comes from the large initialization).

Steps are recorded at `eval.points` log-spaced steps plus every `eval.every` steps, so a
threshold step is overstated by at most the gap to the previous evaluation; the canonical
settings below bound that gap (see `evaluation_resolution`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from phenolab.catalog import Catalog
from phenolab.figures import curves_figure
from phenolab.phenomena._base import (
    Phenomenon,
    Study,
    first_step_at_least,
    quick_setting,
    register_phenomenon,
    stat,
    study_curves,
)
from phenolab.phenomena.grokking_accelerators import accelerator_variants, compare_figure, compare_signature
from phenolab.settings import SettingError, register_setting, resolve_setting

MEASURE_PANELS = ("weight_norm", "fourier_sparsity", "softmax_collapse")  # drawn beside accuracy and loss when recorded
THRESHOLD = 0.99
RELATIVE_TEST = 0.9
TEST_THRESHOLD_RELATIVE: set[str] = {"omnigrok2022"}  # settings whose t_test is relative to the best test acc
GROK_RATIO = 2.0  # t_test / t_train at or above which a run "groks" rather than "comprehends"
PHASES = ("comprehension", "grokking", "memorization", "confusion")

_ADAMW_098 = {"name": "adamw", "betas": [0.9, 0.98]}
# Recorded along power2022 runs: the position paper's Figure 4 plots the count of prime round(10·|w|)
# beside test accuracy, and tests it against mean |w| and the weight norm (phenomena/figure4.py).
FIGURE4_MEASURES = [{"name": "prime_parameter_count", "params": {"scale": 10}}, "mean_abs_weight", "weight_norm"]
# `--quick` budgets of the transformer settings: the first QUICK_STEPS of the source's budget. No
# learning-rate decay follows the warmup, so these steps are the full run's own steps (t_train and
# t_test are the same wherever both are reached). power2022 reached 99% test accuracy at step
# ~2.4·10³ in a first one-seed run; Nanda et al. report nanda2023's "cleanup" phase ending near 1.4·10⁴.
QUICK_STEPS = {"power2022": 10_000, "nanda2023": 20_000}

register_setting(
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
)
register_setting(
    "power2022",
    {
        "task": {"name": "modular", "p": 97, "op": "/", "train_fraction": 0.5},
        "model": {"name": "transformer", "n_layers": 2, "d_model": 128, "n_heads": 4, "d_mlp": 512},
        "optim": {**_ADAMW_098, "lr": 1e-3, "weight_decay": 1.0, "warmup_steps": 10},
        "schedule": {"steps": 100_000, "batch_size": 512},
        "eval": {"points": 120},
        # what Figure 4 reads from these runs, so `reproduce figure4` reuses them (see FIGURE4_MEASURES)
        "measures": FIGURE4_MEASURES,
        "checkpoints": "final",
    },
    source="Power et al. 2022 (openai/grok defaults, App. A.1.2): 2-layer causal decoder d_model 128, 4 heads, "
    "tokens 'a ÷ b =', fraction 0.5, AdamW lr 1e-3 betas (0.9, 0.98) wd 1, batch 512, 10-step warmup, 1e5 steps",
    description="the original grokking curve; GPU recommended (hours on a 2-core CPU)",
)
register_setting(
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
)
register_setting(
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
)
register_setting(
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
)


def run_signature(steps: np.ndarray, train_acc: np.ndarray, test_acc: np.ndarray,
                  threshold: float = THRESHOLD, test_threshold: float | None = None) -> dict[str, Any]:
    """The grokking signature of one run's accuracy curves (`test_threshold` defaults to `threshold`)."""
    test_threshold = threshold if test_threshold is None else test_threshold
    t_train = first_step_at_least(steps, train_acc, threshold)
    t_test = first_step_at_least(steps, test_acc, test_threshold)
    after = test_acc[steps > t_test] if t_test is not None else test_acc[:0]
    out: dict[str, Any] = {
        "t_train": t_train, "t_test": t_test,
        "censored_train": t_train is None, "censored_test": t_test is None,
        "delay": (t_test - t_train) if t_train is not None and t_test is not None else None,
        "ratio": (t_test / max(t_train, 1.0)) if t_train is not None and t_test is not None else None,
        # after generalizing, evaluations whose test accuracy fell back below the threshold (the
        # loss spikes of Adam-trained transformers, Thilak et al. 2022's "slingshots"), and the lowest
        "relapses": int((after < test_threshold).sum()) if t_test is not None else None,
        "min_test_acc_after": float(after.min()) if after.size else None,
    }
    out["phase"] = classify(out)
    return out


def classify(sig: dict[str, Any]) -> str:
    """Liu et al. 2022's four phases, with the delay measured as a ratio (fast settings)."""
    if sig["t_train"] is None:
        return "confusion" if sig["t_test"] is None else "comprehension"
    if sig["t_test"] is None:
        return "memorization"
    return "grokking" if sig["ratio"] >= GROK_RATIO else "comprehension"


def evaluation_resolution(steps: np.ndarray, at: float | None) -> float | None:
    """Gap between an evaluated step and the evaluation before it: how much a first-crossing
    step can overstate the true crossing."""
    if at is None:
        return None
    i = int(np.searchsorted(steps, at))
    return float(steps[i] - steps[i - 1]) if i > 0 else 0.0


class Grokking(Phenomenon):
    name = "grokking"
    canonical = ("gromov2023", "prieto2025", "power2022", "nanda2023", "omnigrok2022")
    default_setting = "gromov2023"

    def study(self, setting_name: str, seeds: list[int], overrides: dict[str, Any], quick: bool,
              options: dict[str, Any] | None = None) -> Study:
        quick_over: dict[str, Any] = {}
        note = ""
        if setting_name in QUICK_STEPS:
            quick_over = {"schedule.steps": QUICK_STEPS[setting_name]}
            full = resolve_setting(setting_name, {}).schedule.steps
            note = (f"--quick: the first {QUICK_STEPS[setting_name]:.0e} of the source's {full:.0e} steps (no decay "
                    "schedule: the same trajectory, cut short)").replace("e+0", "e")
        elif setting_name == "omnigrok2022":
            quick_over = {"schedule.steps": 5000}
            note = "--quick: 5000 steps (the source trains 1e5)"
        setting, quick, note = quick_setting(setting_name, overrides, quick, quick_over, note)
        compare = (options or {}).get("compare")
        if compare is not None:
            if compare != "accelerators":
                raise SettingError(f"--compare {compare!r}: allowed: accelerators")
            variants = accelerator_variants(setting)
            return Study(self.name, setting_name, list(variants.values()), seeds, quick, note,
                         {"compare": compare, "variants": list(variants)})
        return Study(self.name, setting_name, [setting], seeds, quick, note)

    def signature(self, catalog: Catalog, study: Study) -> dict[str, Any]:
        if study.options.get("compare"):
            return compare_signature(catalog, study)
        curves = study_curves(catalog, study)
        per_run = []
        relative = study.setting_name in TEST_THRESHOLD_RELATIVE
        for (run_id, seed), df in curves.groupby(["run_id", "seed"]):
            wide = df.pivot_table(index="step", columns="metric", values="value").sort_index()
            steps = wide.index.to_numpy(dtype=float)
            test_acc = wide["test_acc"].to_numpy()
            test_threshold = RELATIVE_TEST * float(test_acc.max()) if relative else THRESHOLD
            sig = run_signature(steps, wide["train_acc"].to_numpy(), test_acc, test_threshold=test_threshold)
            sig["test_threshold"] = test_threshold
            sig["resolution_t_test"] = evaluation_resolution(steps, sig["t_test"])
            for m in ("train_acc", "test_acc", "train_loss", "test_loss"):
                sig[f"final_{m}"] = float(wide[m].iloc[-1])
            sig.update(run_id=run_id, seed=int(seed), budget=float(steps[-1]))
            per_run.append(sig)
        keys = ("t_train", "t_test", "delay", "ratio", "relapses", "min_test_acc_after", "test_threshold",
                "final_train_acc", "final_test_acc", "final_train_loss", "final_test_loss")
        summary: dict[str, Any] = {k: stat([r[k] for r in per_run]) for k in keys}
        summary["censored_train"] = sum(r["censored_train"] for r in per_run)
        summary["censored_test"] = sum(r["censored_test"] for r in per_run)
        summary["phases"] = {p: sum(r["phase"] == p for r in per_run) for p in PHASES}
        summary["n_runs"] = len(per_run)
        test_rule = f"{RELATIVE_TEST:g} × the run's best test accuracy" if relative else f"{THRESHOLD:g}"
        return {"setting": study.setting_name, "setting_id": study.settings[0].id, "note": study.note,
                "threshold": THRESHOLD, "test_threshold": test_rule, "summary": summary, "per_run": per_run}

    def figure(self, catalog: Catalog, study: Study, out: Path) -> Path:
        if study.options.get("compare"):
            return compare_figure(catalog, study, out.with_name(out.stem + "-accelerators.png"))
        curves = study_curves(catalog, study)
        title = f"grokking · {study.setting_name}" + (" (--quick)" if study.quick else "")
        panels = (("train_acc", "test_acc"), ("train_loss", "test_loss"), *((m,) for m in MEASURE_PANELS))
        return curves_figure(curves, out, title=title, panels=panels)


GROKKING = register_phenomenon(Grokking())
