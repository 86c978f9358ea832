"""The figure, read from the catalog: train and test accuracy, the relevant-weight share, and the
share's rise over its step-0 value on a log axis, each mean ± sd over seeds against steps, with
the mean t_learn marked. The log panel is where hidden progress shows when it is exponential:
SGD amplifies the relevant weights from a tiny start (Barak et al. 2022), so on a linear axis most
of the rise seems to come with the jump in accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from phenolab.catalog import Catalog
from phenolab.figures import LABELS, band, pyplot, save_figure
from phenolab.phenomena import Signature, Study, study_curves


def hidden_progress_figure(catalog: Catalog, study: Study, signature: Signature, share: str, out: Path) -> Path:
    curves = study_curves(catalog, study)
    rise = curves[curves["metric"] == share].sort_values("step").copy()
    rise["value"] -= rise.groupby("run_id")["value"].transform("first")
    rise["metric"] = "rise"
    curves = pd.concat([curves, rise], ignore_index=True)
    panels = ((("train_acc", "test_acc"), "accuracy"), ((share,), f"{share}"),
              (("rise",), "rise of the share (log)"))
    t_learn = signature.summary["t_learn"]["mean"]
    fig, axes = pyplot().subplots(1, len(panels), figsize=(15.5, 3.9))
    for ax, (metrics, ylabel) in zip(axes, panels, strict=True):
        for metric in metrics:
            stats = band(curves, metric)
            if metric == "rise":  # a log axis: only where the mean has risen
                stats = stats[stats["mean"] > 0]
            label = "share − share at step 0" if metric == "rise" else LABELS.get(metric, metric)
            line, = ax.plot(stats["step"], stats["mean"], label=label)
            lo, hi = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
            if metric == "rise":  # the band's floor stays on the log axis
                lo = np.maximum(lo, stats["mean"] / 10)
            elif metric.endswith("_acc"):
                lo, hi = lo.clip(0.0, 1.0), hi.clip(0.0, 1.0)
            ax.fill_between(stats["step"], lo, hi, color=line.get_color(), alpha=0.25, linewidth=0)
        if t_learn is not None:
            ax.axvline(t_learn, color="grey", linestyle="--", linewidth=1, label=f"mean t_learn {t_learn:.0f}")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=0)
        if metrics == ("rise",):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8)
    n = curves["run_id"].nunique()
    fig.suptitle(f"hidden progress on sparse parity · {study.setting_name}  (mean ± sd over {n} seeds)")
    return save_figure(fig, out)
