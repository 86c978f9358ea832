"""The tournament's figure: predicted against observed target on the held-out points, one panel per
competitor (explanations first, then the baselines), coloured by held-out group, with the error
and ρ that rank it. A good predictor lies on the diagonal in every colour."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phenolab.figures import pyplot, save_figure


def tournament_figure(points: pd.DataFrame, predictions: dict[str, np.ndarray], scores: dict[str, Any],
                      title: str, target: str, out: Path) -> Path:
    """Write the figure to `out` (PNG) and return its path."""
    names = list(scores["ranking"])
    cols = min(4, len(names) + 1)
    rows = math.ceil((len(names) + 1) / cols)  # one panel more: the legend's
    fig, axes = pyplot().subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows + 0.6), squeeze=False)
    y = points["target"].to_numpy(float)
    lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
    groups = list(dict.fromkeys(points["group_label"]))
    for ax, name in zip(axes.flat, names, strict=False):
        pred = np.asarray(predictions[name], dtype=float)
        for gi, g in enumerate(groups):
            sel = (points["group_label"] == g).to_numpy()
            ax.scatter(y[sel], pred[sel], s=6, alpha=0.5, color=f"C{gi % 10}", label=g, linewidths=0)
        ax.plot([lo, hi], [lo, hi], color="0.4", linewidth=0.8, linestyle="--")
        c = scores["competitors"][name]
        rank = names.index(name) + 1
        ax.set_title(f"{rank}. {name} ({c['role']})", fontsize=8)
        rho = "—" if c["spearman"] is None or not math.isfinite(c["spearman"]) else f"{c['spearman']:.2f}"
        ax.text(0.03, 0.97, f"{scores['rank_by'].upper()} {c[scores['rank_by']]:.3g}\nρ {rho}",
                transform=ax.transAxes, va="top", fontsize=7,
                bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0})
        ax.set_xlabel(f"observed {target}", fontsize=7)
        ax.set_ylabel("predicted", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    axes.flat[len(names)].legend(handles, [textwrap.fill(lb, 40) for lb in labels], loc="center", fontsize=7,
                                 frameon=False, markerscale=2, title="held-out group", title_fontsize=7)
    fig.suptitle(textwrap.fill(title, 140), fontsize=9)
    return save_figure(fig, out)
