"""The figure beside a hypothesis's verdict: its measure M against its target T over the runs its
tests read, drawn from the stored curves, so a reader sees the relation the four numbers summarize.

Over steps (the claim is ρ along each run) each run is a path through (M, T), its last point
marked; over settings (the claim is across a sweep) each run is its final (M, T). The run sets
keep the verdict's names: in-sample (read by the in-sample, confound and intervention tests),
held-out, regularizer.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

LABELS = {"in_sample": "in-sample", "held_out": "held-out", "regularizer": "regularizer"}
MAX_RUNS = 200  # paths drawn per run set; the legend gives the full count


def setting_of(run_id: str) -> str:
    """A run id is `<setting id>-<seed>`."""
    return run_id.rsplit("-", 1)[0]


def measure_target_figure(curves: pd.DataFrame, measure: str, target: str, runs: dict[str, list[str]],
                          over: str, dest: Path, title: str = "") -> bool:
    """Draw M (x) against T (y), one colour per run set; False when the curves hold no pair to draw
    (then the page says so instead of showing an empty frame)."""
    if not measure or not target or measure == target or curves.empty:
        return False
    sub = curves[curves["metric"].isin([measure, target])]
    if sub.empty:
        return False
    wide = sub.pivot_table(index=["run_id", "step"], columns="metric", values="value")
    if measure not in wide or target not in wide:
        return False
    wide = wide[[measure, target]].dropna()
    have = set(wide.index.get_level_values(0))
    from phenolab.figures import pyplot, save_figure

    fig, ax = pyplot().subplots(figsize=(6.4, 4.4))
    drawn = 0
    for i, (group, ids) in enumerate(runs.items()):
        present = [r for r in ids if r in have]
        color = f"C{i}"
        for j, rid in enumerate(present[:MAX_RUNS]):
            path = wide.loc[rid]
            label = f"{LABELS.get(group, group)} ({len(present)} runs)" if j == 0 else None
            if over == "steps":
                ax.plot(path[measure], path[target], color=color, alpha=0.55, linewidth=1, label=label)
                ax.plot(path[measure].iloc[-1:], path[target].iloc[-1:], "o", color=color, markersize=4)
            else:
                ax.plot(path[measure].iloc[-1:], path[target].iloc[-1:], "o", color=color, alpha=0.8,
                        markersize=5, label=label)
            drawn += 1
    if not drawn:
        pyplot().close(fig)
        return False
    ax.set_xlabel(f"M: {measure}")
    ax.set_ylabel(f"T: {target}")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=9)
    how = "each run along its steps (● its last)" if over == "steps" else "each run's final values"
    ax.set_title(f"{title}\n{how}".strip(), fontsize=10)
    save_figure(fig, dest)
    return True
