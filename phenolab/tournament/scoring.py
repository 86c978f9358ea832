"""Scores of every competitor on the same held-out points, with their uncertainty over seeds.

For each competitor (explanations and the two baselines): the error of its predicted target
(MAE and RMSE; the file's `rank_by` ranks), the Spearman ρ of prediction and observation, its
skill against each baseline (1 − error / the baseline's error: > 0 is better than the baseline),
the partial Spearman ρ of its value and the target given the common confounds (the time and
magnitude values; `hypotheses.statistics.partial_spearman`), and its breadth: on how many held-out
groups its error is below both baselines'.

Uncertainty is a bootstrap over seeds: a resample draws, per held-out group, that group's seeds
with replacement and takes every point of the drawn runs (a seed's settings stay together, so the
resamples are paired across competitors and settings). "A beats B" is the percentile-bootstrap test
of the paired error difference, two-sided, p = 2·min(P*(Δ ≤ 0), P*(Δ ≥ 0)) with the +1 correction,
and the p-values of all pairs are adjusted by Holm's step-down method (Holm 1979) so the family-wise
error stays at `alpha`. The smallest p is 2/(n_boot + 1), so n_boot must be large for many pairs
(28 pairs at alpha 0.05 need n_boot ≥ 1120); with few seeds the distinct resamples are few, and a
small p needs many seeds. The errors are resampled n_boot times (one matrix product); the rank
correlations, one at a time, RANK_BOOT times.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np
import pandas as pd

from phenolab.hypotheses.statistics import partial_spearman, spearman
from phenolab.tournament.quantities import column
from phenolab.tournament.spec import Competitor, Scoring

METRICS = ("mae", "rmse")
RANK_BOOT = 1000  # resamples for the spreads of ρ and partial ρ (the errors and the pairwise tests use all)


def score(points: pd.DataFrame, competitors: list[Competitor], predictions: dict[str, np.ndarray],
          scoring: Scoring, seed: str) -> dict[str, Any]:
    """The leaderboard's numbers: per competitor, the ranking, and the pairwise comparisons."""
    names = [c.name for c in competitors]
    y = points["target"].to_numpy(dtype=float)
    keep = np.isfinite(y)
    pts = points[keep].reset_index(drop=True)
    y = y[keep]
    pred = np.column_stack([np.asarray(predictions[n], dtype=float)[keep] for n in names])  # [rows, J]
    x = np.column_stack([pts[column(n)].to_numpy(dtype=float) for n in names])
    confounds = [x[:, names.index("time")], x[:, names.index("magnitude")]]
    err = {"mae": np.abs(pred - y[:, None]), "rmse": (pred - y[:, None]) ** 2}
    rank_by = scoring.rank_by

    clusters, index = np.unique(pts[["group", "seed"]].to_numpy(), axis=0, return_inverse=True)
    index = index.reshape(-1)
    counts = np.bincount(index, minlength=len(clusters)).astype(float)
    sums = {m: np.stack([np.bincount(index, weights=e[:, j], minlength=len(clusters)) for j in range(len(names))], 1)
            for m, e in err.items()}  # [clusters, J]
    rng = np.random.default_rng([int(seed[:8], 16), zlib.crc32(b"tournament-bootstrap")])
    draws = _draws(clusters, scoring.n_boot, rng)  # [B, clusters] multiplicities
    boot = {m: _finish(m, draws @ sums[m] / (draws @ counts)[:, None]) for m in METRICS}
    full = {m: _finish(m, (sums[m].sum(0) / counts.sum())[None, :])[0] for m in METRICS}
    rows = [np.repeat(np.arange(len(y)), w[index].astype(int)) for w in draws[:RANK_BOOT]]
    boot_rho = np.array([[spearman(pred[r, j], y[r]) for j in range(len(names))] for r in rows])
    partial_of = [j for j, c in enumerate(competitors) if c.role == "explanation"]
    boot_partial = np.array([[partial_spearman(x[r, j], y[r], [z[r] for z in confounds]) for j in partial_of]
                             for r in rows])

    baseline_err = {b: full[rank_by][names.index(b)] for b in ("time", "magnitude")}
    groups = breadth_table(pts, err[rank_by], names, rank_by)
    out: dict[str, Any] = {}
    for j, c in enumerate(competitors):
        e = full[rank_by][j]
        entry: dict[str, Any] = {
            "role": c.role, "value": c.value.label, "direction": c.direction, "source": c.value.source,
            "claim": c.value.claim, "mae": float(full["mae"][j]), "rmse": float(full["rmse"][j]),
            "spearman": spearman(pred[:, j], y), "boot": {m: _summary(boot[m][:, j]) for m in METRICS},
            "boot_spearman": _summary(boot_rho[:, j]),
            "skill": {b: _skill(e, baseline_err[b]) for b in baseline_err if b != c.name},
            "boot_skill": {b: _summary(1 - boot[rank_by][:, j] / boot[rank_by][:, names.index(b)])
                           for b in baseline_err if b != c.name},
        }
        if c.role == "explanation":
            k = partial_of.index(j)
            entry["partial"] = partial_spearman(x[:, j], y, confounds)
            entry["boot_partial"] = _summary(boot_partial[:, k])
            wins = [g for g, v in groups.items() if v[c.name] < v["time"] and v[c.name] < v["magnitude"]]
            entry["breadth"] = {"beats_both_in": wins, "n": len(wins), "of": len(groups)}
            entry["beats_both_baselines"] = bool(e < baseline_err["time"] and e < baseline_err["magnitude"])
        out[c.name] = entry
    ranking = sorted(names, key=lambda n: (_nan_last(out[n][rank_by]), names.index(n)))
    pairs = pairwise(names, full[rank_by], boot[rank_by], scoring.alpha)
    for c in competitors:
        out[c.name]["beats"] = [p["loser"] for p in pairs if p["significant"] and p["winner"] == c.name]
    return {"rank_by": rank_by, "n_points": len(y), "n_runs": int(pts["run_id"].nunique()),
            "n_seed_clusters": len(clusters), "n_boot": scoring.n_boot, "alpha": scoring.alpha,
            "competitors": out, "ranking": ranking, "pairwise": pairs, "groups": groups}


def breadth_table(pts: pd.DataFrame, err: np.ndarray, names: list[str], rank_by: str) -> dict[str, dict[str, float]]:
    """Per held-out group: each competitor's error on that group's points."""
    out = {}
    for label, rows in pts.groupby("group_label", sort=False).indices.items():
        out[str(label)] = {n: float(_finish(rank_by, err[rows, j].mean())) for j, n in enumerate(names)}
    return out


def pairwise(names: list[str], full: np.ndarray, boot: np.ndarray, alpha: float) -> list[dict[str, Any]]:
    """Every pair: the paired bootstrap p of its error difference, Holm-adjusted over all pairs."""
    pairs = []
    n_boot = boot.shape[0]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            diff = boot[:, j] - boot[:, i]  # > 0: i has the smaller error
            low, high = int((diff <= 0).sum()), int((diff >= 0).sum())
            p = min(1.0, 2 * (1 + min(low, high)) / (n_boot + 1))
            d0 = float(full[j] - full[i])
            winner, loser = (names[i], names[j]) if d0 > 0 else (names[j], names[i])
            pairs.append({"winner": winner, "loser": loser, "difference": abs(d0), "p": p})
    for pair, adjusted in zip(pairs, holm([p["p"] for p in pairs]), strict=True):
        pair["p_holm"] = adjusted
        pair["significant"] = bool(adjusted < alpha and pair["difference"] > 0)
    return pairs


def holm(p: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values: the k-th smallest times (m − k + 1), made monotone."""
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def _draws(clusters: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """[n_boot, clusters]: how often each (group, seed) is drawn; each group keeps its seed count."""
    out = np.zeros((n_boot, len(clusters)))
    for g in np.unique(clusters[:, 0]):
        members = np.flatnonzero(clusters[:, 0] == g)
        picks = rng.integers(0, len(members), size=(n_boot, len(members)))
        for b in range(n_boot):
            np.add.at(out[b], members[picks[b]], 1)
    return out


def _finish(metric: str, mean_error: Any) -> Any:
    """The mean absolute error as it is; the RMSE from the mean squared error."""
    return np.sqrt(mean_error) if metric == "rmse" else mean_error


def _skill(err: float, base: float) -> float | None:
    return None if not base > 0 else float(1 - err / base)


def _summary(values: np.ndarray) -> dict[str, Any]:
    ok = values[np.isfinite(values)]
    if not ok.size:
        return {"mean": None, "sd": None, "ci95": None, "n": 0}
    return {"mean": float(ok.mean()), "sd": float(ok.std(ddof=1)) if ok.size > 1 else 0.0,
            "ci95": [float(np.percentile(ok, 2.5)), float(np.percentile(ok, 97.5))], "n": int(ok.size)}


def _nan_last(v: float) -> float:
    return math.inf if v is None or not math.isfinite(v) else v
