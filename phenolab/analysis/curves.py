"""Reading a training curve the same way whatever the metric: how abrupt its change is, and when
it has made most of it. Used to ask whether a phenomenon seen in accuracy is also there in a
continuous score (Kumar et al. 2023; Schaeffer, Miranda & Koyejo 2023)."""

from __future__ import annotations

import numpy as np

GRID = 100  # log-spaced points a curve is read at
TOP = 0.1  # the steepest share of the log-step intervals whose change `abruptness` sums
PROGRESS = 0.9  # `progress_step`: the step by which this share of the change is made


def on_log_grid(steps: np.ndarray, values: np.ndarray, grid: int = GRID) -> np.ndarray:
    """The curve at `grid` log-spaced steps from its first positive step to its last (linear
    interpolation in log-step); step 0, the initialization, is off a log axis and not read."""
    s, v = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    keep = (s > 0) & np.isfinite(v)
    s, v = s[keep], v[keep]
    if s.size < 2:
        return v
    at = np.geomspace(s[0], s[-1], grid)
    return np.interp(np.log(at), np.log(s), v)


def abruptness(steps: np.ndarray, values: np.ndarray, top: float = TOP, grid: int = GRID) -> float | None:
    """Share of the curve's total variation (over log-steps) made in its steepest `top` share of
    log-step intervals: 1 for a step, `top` for a straight line in log-step, in between for a
    sigmoid. Defined the same way for every metric (rising or falling); None for a flat curve."""
    v = on_log_grid(steps, values, grid)
    d = np.abs(np.diff(v))
    total = float(d.sum())
    if d.size == 0 or total == 0.0:
        return None
    k = max(1, int(round(top * d.size)))
    return float(np.sort(d)[-k:].sum() / total)


def progress_step(steps: np.ndarray, values: np.ndarray, higher_is_better: bool,
                  share: float = PROGRESS) -> float | None:
    """The first evaluated step by which the curve has made `share` of its change from step 0 to
    its best value (the maximum if higher is better, else the minimum); None if it never improves."""
    s, v = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    s, v = s[ok], v[ok]
    if v.size == 0:
        return None
    start = v[0]
    best = v.max() if higher_is_better else v.min()
    gain = (best - start) if higher_is_better else (start - best)
    if gain <= 0:
        return None
    made = (v - start) if higher_is_better else (start - v)
    hit = np.nonzero(made >= share * gain)[0]
    return float(s[hit[0]]) if hit.size else None
