"""The deep-ensemble figure: error against ensemble size (ensemble and mean member, per variant),
the loss decomposition, and the variant comparison the setting is about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from phenolab.figures import pyplot, save_figure
from phenolab.phenomena import Signature


def ensemble_figure(sig: Signature, out: str | Path) -> Path:
    plt = pyplot()
    table = pd.DataFrame(sig.extra["table"])
    variants = sig.extra["variants"]
    shifts = "ensemble_tv" in table
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, v in enumerate(variants):
        rows = table[table["variant"] == v].sort_values("K")
        c = colors[i % len(colors)]
        name = "" if len(variants) == 1 else f"{v}: "
        axes[0].plot(rows["K"], rows["ensemble_error"], "o-", color=c, label=f"{name}ensemble")
        axes[0].plot(rows["K"], rows["member_error"], "s--", color=c, alpha=0.6, label=f"{name}mean member")
        if i == 0 or len(variants) > 1:
            axes[1].plot(rows["K"], rows["member_loss"], "s--", color=c, alpha=0.6, label=f"{name}member loss")
            axes[1].plot(rows["K"], rows["ensemble_loss"], "o-", color=c, label=f"{name}ensemble loss")
            axes[1].plot(rows["K"], rows["diversity"], ":", color=c, label=f"{name}diversity")
    _third_panel(axes[2], table, variants, shifts)
    for ax, ylabel in zip(axes[:2], ("test error", "test cross-entropy (nats)"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("ensemble size K")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=7)
    axes[0].set_title("error: ensemble vs mean member")
    axes[1].set_title("member loss = ensemble loss + diversity")
    n = sig.summary.get("ensembles", "?")
    fig.suptitle(f"deep ensembles — {sig.setting}  (mean over {n} ensembles)")
    return save_figure(fig, out)


def _third_panel(ax: Any, table: pd.DataFrame, variants: list[str], shifts: bool) -> None:
    """Equivariance (ensemble vs member TV under shifts), or each variant's gain and diversity at
    the largest size on test and training inputs, or the gain against disagreement."""
    if shifts:
        colors = pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
        for i, v in enumerate(variants):
            rows = table[table["variant"] == v].sort_values("K")
            c = colors[i % len(colors)]
            ax.plot(rows["K"], rows["ensemble_tv"], "o-", color=c, label=f"{v}: ensemble")
            ax.plot(rows["K"], rows["member_tv"], "s--", color=c, alpha=0.6, label=f"{v}: mean member")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("ensemble size K")
        ax.set_ylabel("prediction change under shifts (TV)")
        ax.set_title("equivariance")
    elif len(variants) > 1:
        top = table[table["K"] == table["K"].max()].set_index("variant").loc[variants]
        x = range(len(variants))
        ax.bar([i - 0.3 for i in x], top["gain"], 0.3, label="error gain (test)")
        ax.bar(list(x), top["diversity"], 0.3, label="diversity (test)")
        ax.bar([i + 0.3 for i in x], top["train_diversity"], 0.3, label="diversity (train)")
        ax.set_xticks(list(x), variants)
        ax.set_title(f"at K = {int(table['K'].max())}")
    else:
        rows = table[table["K"] > 1]
        ax.plot(rows["disagreement"], rows["gain"], "o-")
        for _, r in rows.iterrows():
            ax.annotate(f"K={int(r['K'])}", (r["disagreement"], r["gain"]), fontsize=7)
        ax.set_xlabel("pairwise disagreement")
        ax.set_ylabel("error gain")
        ax.set_title("gain against disagreement")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=7)
