"""Rank correlations, partial rank correlations and summaries over seeds.

The partial Spearman correlation of M and T given confounds Z is the Pearson correlation of the
residuals of rank(M) and rank(T) after a least-squares fit on [1, rank(Z)] (Spearman's ρ is
Pearson's r of ranks; partial correlation by residualization, e.g. Baba, Shibata & Sibuya 2004).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def spearman(m: np.ndarray, t: np.ndarray) -> float:
    """Spearman's ρ of two equal-length vectors; NaN when undefined (< 3 points or a constant)."""
    return partial_spearman(m, t, [])


def partial_spearman(m: np.ndarray, t: np.ndarray, confounds: Sequence[np.ndarray]) -> float:
    """ρ(M, T | Z): correlation of rank residuals after regressing both on the confounds' ranks.

    NaN when undefined: fewer points than regressors + 2, or M or T constant to begin with. When
    the confounds explain M (or T) entirely, e.g. a count that rises in lockstep with the parameter
    count, nothing of M is left to track T: the partial correlation is 0.
    """
    m, t = np.asarray(m, dtype=float), np.asarray(t, dtype=float)
    keep = np.isfinite(m) & np.isfinite(t)
    for z in confounds:
        keep &= np.isfinite(np.asarray(z, dtype=float))
    if keep.sum() < 3 + len(confounds):
        return math.nan
    if np.ptp(m[keep]) == 0 or np.ptp(t[keep]) == 0:
        return math.nan
    zs = [np.asarray(z, float)[keep] for z in confounds]
    a, b = rank_residual(m[keep], zs), rank_residual(t[keep], zs)
    if _vanishes(a) or _vanishes(b):
        return 0.0
    return float(np.clip(a @ b / math.sqrt(float(a @ a) * float(b @ b)), -1.0, 1.0))


def explained_by(v: np.ndarray, confounds: Sequence[np.ndarray]) -> bool:
    """Whether the confounds' ranks explain v's ranks entirely (nothing of v is left to correlate)."""
    v = np.asarray(v, dtype=float)
    if not confounds or len(v) < 2 or np.ptp(v) == 0:
        return False
    return _vanishes(rank_residual(v, confounds))


def rank_residual(v: np.ndarray, confounds: Sequence[np.ndarray]) -> np.ndarray:
    """rank(v) minus its least-squares fit on [1, rank(Z) for each confound Z]: what of v's
    ordering the confounds leave (all values finite)."""
    from scipy.stats import rankdata  # imported when used: scipy.stats costs ~1 s at every CLI start

    design = np.column_stack([np.ones(len(v))] + [rankdata(np.asarray(z, float)) for z in confounds])
    r = rankdata(np.asarray(v, float))
    coef, *_ = np.linalg.lstsq(design, r, rcond=None)
    return r - design @ coef


def _vanishes(residual: np.ndarray) -> bool:
    # centred rank vectors have squared norm ~ n³/12; a residual many orders below that is rounding
    return float(residual @ residual) <= 1e-9 * len(residual) ** 3


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Mean, sample sd, n, and a 95% t-interval of the finite values; `undefined` counts the rest."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    out: dict[str, float | int | None] = {"mean": None, "sd": None, "n": int(arr.size),
                                          "ci95": None, "undefined": len(values) - int(arr.size)}
    if arr.size == 0:
        return out
    out["mean"] = float(arr.mean())
    out["sd"] = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    if arr.size > 1:
        from scipy.stats import t as student_t

        half = float(student_t.ppf(0.975, arr.size - 1)) * out["sd"] / math.sqrt(arr.size)
        out["ci95"] = [out["mean"] - half, out["mean"] + half]
    return out


def fmt(s: dict[str, float | int | None], digits: int = 3) -> str:
    """'0.912 ± 0.021 (n=3)' or 'undefined (n=0)'."""
    if s.get("mean") is None:
        return f"undefined (n={s.get('n', 0)})"
    return f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f} (n={s['n']})"
