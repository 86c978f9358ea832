"""Figures drawn from catalog tables (never from in-memory training state), so any figure can
be regenerated from the catalog alone."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@cache
def pyplot() -> ModuleType:
    """`matplotlib.pyplot` on the file-only Agg backend, imported on first use: its 0.5–1 s is paid
    by the commands that draw, not by every `phenolab` call."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


LABELS = {
    "train_acc": "train accuracy", "test_acc": "test accuracy",
    "train_loss": "train loss", "test_loss": "test loss",
}


def band(curves: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, sd and n over runs of one metric at each step (steps where every run has a value)."""
    sub = curves[curves["metric"] == metric]
    stats = sub.groupby("step")["value"].agg(["mean", "std", "count"]).reset_index()
    stats["std"] = stats["std"].fillna(0.0)
    return stats[stats["count"] == stats["count"].max()]


def curves_figure(curves: pd.DataFrame, out: str | Path, *, title: str = "",
                  panels: tuple[tuple[str, ...], ...] = (("train_acc", "test_acc"), ("train_loss", "test_loss")),
                  ) -> Path:
    """Mean ± sd over seeds vs step (symlog x: step 0 is the init), one panel per metric group."""
    present = set(curves["metric"].unique())
    panels = tuple(p for p in (tuple(m for m in grp if m in present) for grp in panels) if p)
    if not panels:
        raise ValueError(f"no curves to plot; metrics present: {', '.join(sorted(present)) or 'none'}")
    n_runs = curves["run_id"].nunique()
    fig, axes = pyplot().subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, metrics in zip(axes[0], panels, strict=True):
        for metric in metrics:
            stats = band(curves, metric)
            line, = ax.plot(stats["step"], stats["mean"], label=LABELS.get(metric, metric))
            lo, hi = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
            if metric.endswith("_acc"):  # an accuracy band stays within [0, 1]
                lo, hi = lo.clip(0.0, 1.0), hi.clip(0.0, 1.0)
            ax.fill_between(stats["step"], lo, hi,
                            color=line.get_color(), alpha=0.25, linewidth=0)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("step")
        ax.set_ylabel(" / ".join(LABELS.get(m, m) for m in metrics))
        if any(m.endswith("loss") for m in metrics) and (curves.loc[curves["metric"].isin(metrics), "value"] > 0).all():
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    fig.suptitle(f"{title}  (mean ± sd over {n_runs} seeds)".strip())
    return save_figure(fig, out)


def save_figure(fig: Figure, out: str | Path) -> Path:
    """Lay out, write a 120-dpi PNG (making its folder) and close: every figure is saved alike, and
    closed, so a long sweep of studies does not keep hundreds of figures open."""
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    pyplot().close(fig)
    return out
