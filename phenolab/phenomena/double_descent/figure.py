"""The double-descent figure, drawn from a study's signature (itself read from the catalog).

Panels: train and test error vs capacity (log x, mean ± sd over seeds, the interpolation
threshold and the peak marked); the same vs trained parameters; bias and variance over seeds vs
capacity; and, for least-squares models, Curth et al.'s effective parameters vs raw parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phenolab.figures import pyplot
from phenolab.phenomena import Signature


def double_descent_figure(sig: Signature, out: str | Path) -> Path:
    """Save the figure of `sig` (from `study_signature`) to `out` and return its path."""
    rows = pd.DataFrame(sig.extra["per_capacity"])
    summ = sig.summary
    label = sig.extra["axis"]["label"]
    err = "test MSE" if sig.extra["error"] == "test_mse" else "error"
    panels = ["capacity", "params"]
    if "variance" in rows:
        panels.append("bias_variance")
    if "p_eff_test" in rows:
        panels.append("p_eff")
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.8), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel in ("capacity", "params"):
            x = rows["capacity"] if panel == "capacity" else rows["params_per_n"]
            _band(ax, x, rows["train_mean"], rows["train_sd"], "train " + ("MSE" if err == "test MSE" else "error"))
            _band(ax, x, rows["test_mean"], rows["test_sd"], "test " + ("MSE" if err == "test MSE" else "error"))
            if "test_es_mean" in rows:
                ax.plot(x, rows["test_es_mean"], "--", lw=1.2, color="C2", label="test error, optimal early stopping")
            if "theory_test_mse" in rows:
                ax.plot(x, rows["theory_test_mse"], "k--", lw=1, label="theory (min-norm)")
            if err == "test MSE":  # train MSE of an interpolator is ~1e-30: keep the test range in view
                ax.set_yscale("log")
                ax.set_ylim(bottom=float(rows["test_mean"].min()) / 3)
            _marks(ax, rows, summ, panel)
            ax.set_xlabel(label if panel == "capacity" else "trained parameters / training samples")
            ax.set_ylabel(err)
        elif panel == "bias_variance":
            ax.plot(rows["capacity"], rows["bias"], "o-", ms=3, label="bias (ensemble loss)")
            ax.plot(rows["capacity"], rows["variance"], "o-", ms=3, label="variance over seeds")
            ax.set_xlabel(label)
            ax.set_ylabel("test loss terms")
            top = float(rows[["bias", "variance"]].max().max())
            if top > 0:
                ax.set_yscale("log")
                ax.set_ylim(bottom=max(float(rows[["bias", "variance"]].min().min()), top * 1e-4))
        else:  # vs raw parameters; a sample-wise sweep has one raw count, so vs n there
            samplewise = sig.extra["axis"]["side"] == "below"
            x = rows["capacity"] if samplewise else _per_output(rows)
            ax.plot(x, rows["p_eff_test"], "o-", ms=3, label="p̂ on test inputs")
            ax.plot(x, rows["p_eff_train"], "o-", ms=3, label="p̂ on train inputs")
            if samplewise:
                ax.axhline(float(rows["params"].iloc[0]), color="k", ls=":", lw=1, label="raw parameters")
            else:
                lim = [float(x.min()), float(x.max())]
                ax.plot(lim, lim, "k:", lw=1, label="p̂ = raw count")
            ax.set_yscale("log")
            ax.set_xlabel(label if samplewise else "raw parameters per output")
            ax.set_ylabel("effective parameters (Curth et al. 2023)")
        ax.set_xscale("log")
        _plain_log_ticks(ax, rows["capacity"] if panel in ("capacity", "bias_variance") else None)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8)
    seeds = summ.get("n_seeds")
    verdict = "peak present" if summ.get("peak_present") else "no peak beyond the seed spread"
    quick = " (--quick)" if sig.note else ""
    fig.suptitle(f"double descent · {sig.setting}{quick} · {verdict} (mean ± sd over {seeds} seeds)")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _band(ax: Any, x: pd.Series, mean: pd.Series, sd: pd.Series, label: str) -> None:
    sd = sd.fillna(0.0)
    line, = ax.plot(x, mean, "o-", ms=3, label=label)
    ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.25, linewidth=0)


def _marks(ax: Any, rows: pd.DataFrame, summ: dict[str, Any], panel: str) -> None:
    """Dashed line at the mean interpolation threshold; a ring at the mean curve's peak."""
    col = "capacity" if panel == "capacity" else "params_per_n"
    thr = summ.get("mean_curve_threshold", (summ.get("threshold") or {}).get("mean"))
    if thr is not None:
        at = _lookup(rows, thr, col)
        ax.axvline(at, color="grey", ls="--", lw=1, label="interpolation threshold")
    if summ.get("mean_curve_exact_fit") is not None:
        ax.axvline(_lookup(rows, summ["mean_curve_exact_fit"], col), color="black", ls=":", lw=1,
                   label="exact fit (train MSE ≤ 1%)")
    peak = summ.get("mean_curve_peak")
    if peak is not None:
        hit = rows.loc[np.isclose(rows["capacity"], peak)]
        if len(hit):
            ax.plot(hit[col], hit["test_mean"], "o", mfc="none", mec="red", ms=10, label="peak")


def _plain_log_ticks(ax: Any, values: pd.Series | None) -> None:
    """Ticks at the swept values when there are few (else decades), written as plain numbers."""
    from matplotlib import ticker as mticker  # matplotlib is loaded on demand (`figures.pyplot`)

    if values is not None and len(values) <= 10:
        ax.set_xticks(values.to_numpy())
        ax.xaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(mticker.NullFormatter())
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())


def _per_output(rows: pd.DataFrame) -> pd.Series:
    """Raw parameters per output: a least-squares readout fits each output on its own, with the
    same smoother, so effective parameters compare with p (features), not p × outputs."""
    outputs = float(rows["params"].iloc[0] / rows["capacity"].iloc[0])
    return rows["params"] / outputs


def _lookup(rows: pd.DataFrame, capacity: float, col: str) -> float:
    """The `col` value at the grid point nearest `capacity` (the threshold is a grid point)."""
    i = int(np.argmin(np.abs(rows["capacity"].to_numpy() - capacity)))
    return float(rows[col].iloc[i])
