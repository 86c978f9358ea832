"""Reading a double-descent curve: interpolation threshold, peak, first minimum, `peak_present`.

Pure functions of arrays, ordered by the swept capacity (width, features, training samples or
epochs), so they can be checked on synthetic curves.

Definitions (made robust to small wiggles):

- *interpolation threshold*: the smallest capacity whose train error is ≤ 1% (Belkin et al.
  2019; Nakkiran et al. 2019). For a sample-wise sweep, where the *small* training sets are the
  interpolated ones, it is the largest n still interpolated (`side="below"`).
- *peak*: the interior point of largest **prominence**, min(v_i − min(v[:i]), v_i − min(v[i+1:])),
  i.e. how far it rises above the lowest point on *each* side. On a clean double-descent curve this
  is the maximum after the first minimum; unlike "the first local minimum" it ignores a one-point
  wiggle before the real bump. No positive prominence ⇒ no peak (monotone or U-shaped curve).
- *first minimum*: the lowest point before the peak; *peak_ratio* = peak / first minimum.
- *peak_present* (mean curve over seeds): the peak's rise above both side minima exceeds the seed
  spread, taken as the largest sd over seeds among the peak and the two minima.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

INTERPOLATION_ERROR = 0.01  # train error at or below which a model "interpolates"
Side = Literal["above", "below"]


@dataclass(frozen=True)
class Peak:
    """The most prominent interior maximum of a curve and the minima on its two sides."""

    index: int
    prominence: float
    left_min: int
    right_min: int


def most_prominent_peak(values: np.ndarray, start: int = 0) -> Peak | None:
    """The interior point with the largest positive prominence, or None (no interior bump). With
    `start`, the curve before it is ignored (the indices stay the whole curve's)."""
    v = np.asarray(values, dtype=float)
    if v.size - start < 3 or not np.all(np.isfinite(v[start:])):
        return None
    best: Peak | None = None
    for i in range(start + 1, v.size - 1):
        left, right = start + int(np.argmin(v[start:i])), i + 1 + int(np.argmin(v[i + 1:]))
        prom = min(v[i] - v[left], v[i] - v[right])
        if prom > 0 and (best is None or prom > best.prominence):
            best = Peak(i, float(prom), left, right)
    return best


def interpolation_threshold(capacities: np.ndarray, train_error: np.ndarray, side: Side = "above",
                            level: float = INTERPOLATION_ERROR) -> float | None:
    """Smallest capacity with train error ≤ `level` (side "above"), or the largest one (side
    "below", sample-wise sweeps); None when no capacity interpolates."""
    cap = np.asarray(capacities, dtype=float)
    hit = np.nonzero(np.asarray(train_error, dtype=float) <= level)[0]
    if hit.size == 0:
        return None
    return float(cap[hit[0]] if side == "above" else cap[hit[-1]])


def curve_signature(capacities: np.ndarray, params: np.ndarray, test_error: np.ndarray,
                    train_error: np.ndarray, n_train: int, side: Side = "above") -> dict[str, Any]:
    """Signature of one run's (or one mean) curve over the sorted capacities.

    `params` are the trained parameters at each capacity; `n_train` the training-set size used to
    express the threshold as parameters per sample (for a sample-wise sweep, pass the n of each
    point as `capacities` and n_train is ignored in favour of it).
    """
    cap = np.asarray(capacities, dtype=float)
    par = np.asarray(params, dtype=float)
    test = np.asarray(test_error, dtype=float)
    thr = interpolation_threshold(cap, train_error, side)
    out: dict[str, Any] = {"threshold": thr, "threshold_params": None, "threshold_params_per_n": None}
    if thr is not None:
        i = int(np.nonzero(cap == thr)[0][0])
        n = cap[i] if side == "below" else n_train
        out.update(threshold_params=float(par[i]), threshold_params_per_n=float(par[i] / n))
    peak = most_prominent_peak(test)
    out.update(peak=None, peak_params=None, peak_height=None, peak_prominence=0.0, first_min=None,
               first_min_at=None, peak_ratio=None, peak_minus_threshold=None, peak_steps_from_threshold=None,
               has_peak=peak is not None)
    if peak is not None:
        out.update(
            peak=float(cap[peak.index]), peak_params=float(par[peak.index]), peak_height=float(test[peak.index]),
            peak_prominence=peak.prominence, first_min=float(test[peak.left_min]),
            first_min_at=float(cap[peak.left_min]),
            peak_ratio=float(test[peak.index] / test[peak.left_min]) if test[peak.left_min] > 0 else None,
        )
        if thr is not None:
            out["peak_minus_threshold"] = float(cap[peak.index] - thr)
            out["peak_steps_from_threshold"] = int(peak.index - int(np.nonzero(cap == thr)[0][0]))
    out["last"] = float(test[-1]) if test.size else None
    return out


def peak_present(mean: np.ndarray, sd: np.ndarray, start: int = 0) -> dict[str, Any]:
    """Whether the mean curve has an interior peak (from `start` on) rising above both side minima
    by more than the seed spread (the largest sd among the three points); with one seed the spread
    is 0."""
    m, s = np.asarray(mean, dtype=float), np.nan_to_num(np.asarray(sd, dtype=float))
    peak = most_prominent_peak(m, start)
    if peak is None:
        return {"peak_present": False, "rise": 0.0, "spread": None, "index": None}
    spread = float(max(s[peak.index], s[peak.left_min], s[peak.right_min]))
    return {"peak_present": bool(peak.prominence > spread), "rise": peak.prominence, "spread": spread,
            "index": peak.index}


def finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
