"""Grokking accelerators compared on the same seeds (`reproduce grokking --compare accelerators`).

Baseline: the setting without weight decay. Each variant adds one accelerator to it: weight
decay (the setting's own, or 1), Grokfast-EMA (Lee et al. 2024: α 0.98, λ 2), StableMax
cross-entropy (Prieto et al. 2025; replaces the setting's loss) and ⊥Grad (Prieto et al. 2025).
Per seed, the speed-up is t_test(baseline) / t_test(variant), the steps to 99% test accuracy;
a baseline that never gets there within the budget counts as the budget, so its speed-ups are
lower bounds (flagged).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from phenolab.catalog import Catalog
from phenolab.figures import pyplot
from phenolab.phenomena import Fields, Signature, SignatureField, Study, first_step_at_least, stat, study_curves
from phenolab.phenomena.grokking.signature import THRESHOLD
from phenolab.settings import Setting

FIELDS = Fields(
    SignatureField("t_test · *", "first evaluated step with test accuracy ≥ 99% under this variant (reached runs)",
                   "steps"),
    SignatureField("speed-up · *", "t_test of the baseline / t_test of this variant, per seed (a baseline that "
                   "never reaches 99% counts as the budget: a lower bound)", "×"),
    SignatureField("baseline_censored", "the baseline did not reach 99% test accuracy in some run, so speed-ups "
                   "are lower bounds", phase=False),
)


def accelerator_variants(base: Setting) -> dict[str, Setting]:
    """The baseline (no weight decay) and one setting per accelerator added to it."""
    wd = base.optim.weight_decay or 1.0
    plain = base.with_overrides({"optim.weight_decay": 0.0})
    return {
        "baseline (no weight decay)": plain,
        f"weight decay {wd:g}": plain.with_overrides({"optim.weight_decay": wd}),
        "Grokfast-EMA (α 0.98, λ 2)": plain.with_overrides({"optim.grokfast_alpha": 0.98,
                                                            "optim.grokfast_lambda": 2.0}),
        "StableMax cross-entropy": plain.with_overrides({"loss": "stablemax_ce"}),
        "⊥Grad": plain.with_overrides({"optim.orthogonal_grad": True}),
    }


def compare_signature(catalog: Catalog, study: Study, names: list[str]) -> Signature:
    """Steps to 99% test accuracy per variant (`names`, one per study setting) and seed, and each
    variant's speed-up."""
    curves = study_curves(catalog, study)
    t_test: dict[str, dict[int, float | None]] = {n: {} for n in names}
    budget = 0.0
    for setting, name in zip(study.settings, names, strict=True):
        sub = curves[(curves.setting_id == setting.id) & (curves.metric == "test_acc")]
        for seed, df in sub.groupby("seed"):
            df = df.sort_values("step")
            steps = df["step"].to_numpy(float)
            budget = max(budget, float(steps[-1]))
            t_test[name][int(seed)] = first_step_at_least(steps, df["value"].to_numpy(), THRESHOLD)
    base = names[0]
    base_censored = any(v is None for v in t_test[base].values())
    summary: dict[str, Any] = {}
    rows = []
    for name in names:
        speedups = []
        for seed, t in t_test[name].items():
            b = t_test[base].get(seed)
            if t is not None:
                speedups.append((b if b is not None else budget) / max(t, 1.0))
        reached = sum(t is not None for t in t_test[name].values())
        summary[f"t_test · {name}"] = stat([t for t in t_test[name].values() if t is not None])
        summary[f"speed-up · {name}"] = stat(speedups)
        rows.append({"variant": name, "reached": reached, "n": len(t_test[name]),
                     "t_test": summary[f"t_test · {name}"], "speedup": summary[f"speed-up · {name}"]})
    summary["baseline_censored"] = base_censored
    return Signature(study.setting_name, summary, rows, study.note, extra={"threshold": THRESHOLD, "budget": budget})


def compare_figure(catalog: Catalog, study: Study, names: list[str], out: Path) -> Path:
    """Test accuracy vs step, one line (mean ± sd over seeds) per variant."""
    curves = study_curves(catalog, study)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for setting, name in zip(study.settings, names, strict=True):
        sub = curves[(curves.setting_id == setting.id) & (curves.metric == "test_acc")]
        stats = sub.groupby("step")["value"].agg(["mean", "std"]).reset_index().fillna(0.0)
        line, = ax.plot(stats["step"], stats["mean"], label=name)
        ax.fill_between(stats["step"], stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                        color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("step")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(f"grokking accelerators · {study.setting_name} ({len(study.seeds)} seeds)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out

