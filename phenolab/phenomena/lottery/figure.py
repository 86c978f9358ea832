"""The lottery-ticket figure: test accuracy against the share of weights remaining for the ticket
and its controls (mean ± sd over seeds), the dense net as a line, and the instability barriers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from phenolab.catalog import Catalog
from phenolab.figures import pyplot, save_figure
from phenolab.phenomena import stat
from phenolab.phenomena.lottery.plan import CONTROLS, LotteryPlan
from phenolab.phenomena.lottery.signature import lottery_signature


def lottery_figure(catalog: Catalog, plan: LotteryPlan, seeds: list[int], out: Path, *, title: str = "") -> Path:
    """Test accuracy vs % of weights remaining (log x, sparser to the right): ticket and controls
    as mean ± sd bands, the dense net as a line; beside it, the instability barriers."""
    plt = pyplot()

    sig = lottery_signature(catalog, plan, seeds)
    bars = sig.extra["instability"]
    fig, axes = plt.subplots(1, 2 if bars else 1, figsize=(11 if bars else 6, 4.2), squeeze=False)
    ax = axes[0][0]
    dense = sig.summary["dense_test_acc"]
    ax.axhline(dense["mean"], color="black", lw=1, label=f"dense (n={dense['n']})")
    ax.axhspan(dense["mean"] - dense["sd"], dense["mean"] + dense["sd"], color="black", alpha=0.12, lw=0)
    for c in CONTROLS:
        rows = [r for r in sig.per_run if r["control"] == c]
        pct = sorted({100 * r["fraction"] for r in rows}, reverse=True)
        stats = [stat([r["test_acc"] for r in rows if np.isclose(100 * r["fraction"], p)]) for p in pct]
        mean, sd = np.array([s["mean"] for s in stats]), np.array([s["sd"] for s in stats])
        line, = ax.plot(pct, mean, marker="o", ms=3, label={"ticket": "winning ticket (IMP, rewound)",
                        "reinit": "random reinit (same mask)", "shuffle": "random mask (layer-wise shuffle)"}[c])
        ax.fill_between(pct, mean - sd, mean + sd, color=line.get_color(), alpha=0.22, lw=0)
    _log_percent_axis(ax, 100 * min(sig.extra["fractions"][1:], default=1.0))
    ax.set_ylabel("test accuracy (final step)")
    ax.legend(frameon=False, fontsize=8)
    if bars:
        bx = axes[0][1]
        for k in sorted({b["rewind_step"] for b in bars}):
            rows = [b for b in bars if b["rewind_step"] == k]
            bx.errorbar([100 * b["fraction"] for b in rows], [100 * np.mean(b["barriers"]) for b in rows],
                        yerr=[100 * np.std(b["barriers"], ddof=1) if len(b["barriers"]) > 1 else 0 for b in rows],
                        marker="o", capsize=3, label=f"rewind to step {k}")
        _log_percent_axis(bx, 100 * min(b["fraction"] for b in bars))
        bx.set_ylabel("test-error barrier (pp)")
        bx.set_title("instability: two data orders, linear path", fontsize=9)
        bx.legend(frameon=False, fontsize=8)
    fig.suptitle(f"{title}  (mean ± sd over seeds; rewind to step {plan.rewind_step})".strip(), fontsize=10)
    return save_figure(fig, out)


def _log_percent_axis(ax: Any, lowest: float) -> None:
    """Log x from 100% down to `lowest`, sparser to the right (as Frankle & Carbin plot it)."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_xlim(110, lowest / 1.1)
    ax.set_xticks([t for t in (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1) if t >= lowest / 1.1])
    ax.set_xticklabels([f"{t:g}" for t in ax.get_xticks()])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("% of weights remaining")
    ax.grid(alpha=0.3, which="both")
