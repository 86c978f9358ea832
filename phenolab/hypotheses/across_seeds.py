"""Relations across seeds: M is a statistic of a recorded value over a setting's seeds.

Some claims are about the spread between seeds, not about any one run: "the variance of test
error across seeds peaks where the double-descent test-error peak is". No run has such an M, so
with `relation.across: seeds` a sweep group is read as a [settings × seeds] table of final values
and, per setting s (in the sweep's order):

- M(s) = `relation.seed_statistic` of the measure over the group's seeds: `variance` (ddof 1),
  `sd`, or `mad` (median absolute deviation: robust when a few seeds blow up, as the min-norm MSE
  at the interpolation threshold does);
- T(s) and each confound Z(s) = their seed-means.

The claim over the settings is `spearman` (direction·ρ(M, T) ≥ threshold) or `peak`:
|argmax_s M(s) − argext_s T(s)| ≤ `peak_steps` grid steps, where argext is argmax for a positive
direction (M peaks where T peaks) and argmin for a negative one (M peaks where T dips, e.g. T =
test accuracy at the test-error peak); ties go to the first setting. The confound test is the
partial ρ (spearman), or for `peak` the peak of M's rank residual after a least-squares fit on the
confounds' ranks: M's peak must survive removing what the confounds explain (T is not residualized:
its peak is where the phenomenon is).

A group gives one number (its estimate from all its seeds), so the spread comes from a bootstrap
over seeds: draw the group's seeds with replacement (one draw for all its settings, since a seed
fixes its data across them) and recompute, N_BOOT times with a generator seeded from the
hypothesis id. A test decides on the mean over groups of the all-seed estimates; its sd is the
bootstrap sd of that mean and n counts seeds.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from phenolab.hypotheses.spec import Hypothesis, Relation
from phenolab.hypotheses.statistics import explained_by, partial_spearman
from phenolab.hypotheses.statistics import rank_residual as finite_rank_residual

N_BOOT = 1000  # bootstrap resamples of seeds: they set the reported spread, never the decision

SEED_STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "variance": lambda x: np.var(x, axis=-1, ddof=1),
    "sd": lambda x: np.std(x, axis=-1, ddof=1),
    "mad": lambda x: np.median(np.abs(x - np.median(x, axis=-1, keepdims=True)), axis=-1),
}


@dataclass
class SeedTable:
    """One sweep group's final values, each [settings, seeds], settings in the sweep's order."""

    settings: list[str]  # labels, e.g. "model.num_features=500"
    seeds: list[int]
    m: np.ndarray
    t: np.ndarray
    z: list[np.ndarray]


def collapse(table: SeedTable, rel: Relation, draw: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(M(s), T(s), [Z(s)]) over the seeds `draw` indexes (all seeds when None)."""
    idx = slice(None) if draw is None else draw
    stat = SEED_STATISTICS[rel.seed_statistic]
    return (stat(table.m[:, idx]), table.t[:, idx].mean(axis=1), [z[:, idx].mean(axis=1) for z in table.z])


def peak_distance(m: np.ndarray, t: np.ndarray, sign: float) -> float:
    """|argmax M − argext T| in grid steps (argext = argmax if sign > 0 else argmin); NaN when M or
    T is constant or not finite (no peak to place)."""
    m, t = np.asarray(m, dtype=float), np.asarray(t, dtype=float)
    if not (np.isfinite(m).all() and np.isfinite(t).all()) or np.ptp(m) == 0 or np.ptp(t) == 0:
        return math.nan
    j = int(np.argmax(t)) if sign > 0 else int(np.argmin(t))
    return float(abs(int(np.argmax(m)) - j))


def rank_residual(m: np.ndarray, z: list[np.ndarray]) -> np.ndarray | None:
    """rank(M) minus its least-squares fit on [1, rank Z]: what of M's ordering the confounds leave;
    None when they explain it entirely or a value is not finite."""
    m = np.asarray(m, dtype=float)
    if not all(np.isfinite(np.asarray(v, float)).all() for v in (m, *z)) or explained_by(m, z):
        return None
    return finite_rank_residual(m, z)


def residual_peak_distance(m: np.ndarray, t: np.ndarray, z: list[np.ndarray], sign: float) -> float:
    """The peak distance of M's rank residual given the confounds; NaN when the confounds explain
    M's ranks entirely (no peak of M's own is left)."""
    r = rank_residual(m, z)
    return math.nan if r is None else peak_distance(r, t, sign)


def claim_value(rel: Relation, m: np.ndarray, t: np.ndarray) -> float:
    return partial_spearman(m, t, []) if rel.statistic == "spearman" else peak_distance(m, t, rel.sign)


def confound_value(rel: Relation, m: np.ndarray, t: np.ndarray, z: list[np.ndarray]) -> float:
    return partial_spearman(m, t, z) if rel.statistic == "spearman" else residual_peak_distance(m, t, z, rel.sign)


def bootstrap(tables: list[SeedTable], value: Callable[[np.ndarray, np.ndarray, list[np.ndarray]], float],
              rel: Relation, rng: np.random.Generator) -> dict[str, Any]:
    """All-seed estimate per group, and N_BOOT seed resamples: mean over groups ± bootstrap sd, n seeds."""
    est = np.array([value(*collapse(tb, rel)) for tb in tables])
    reps = np.array([[value(*collapse(tb, rel, rng.integers(0, len(tb.seeds), len(tb.seeds)))) for tb in tables]
                     for _ in range(N_BOOT)])  # [N_BOOT, groups]
    finite_est = est[np.isfinite(est)]
    means = reps.mean(axis=1)  # NaN when a group is undefined in that resample
    ok = means[np.isfinite(means)]
    return {"mean": float(finite_est.mean()) if finite_est.size else None,
            "sd": float(ok.std(ddof=1)) if ok.size > 1 else None,
            "n": int(sum(len(tb.seeds) for tb, e in zip(tables, est, strict=True) if math.isfinite(e))),
            "ci95": [float(np.percentile(ok, 2.5)), float(np.percentile(ok, 97.5))] if ok.size else None,
            "bootstrap_mean": float(ok.mean()) if ok.size else None, "n_boot": N_BOOT,
            "undefined_resamples": int(N_BOOT - ok.size), "groups": len(tables),
            "undefined": int(len(est) - finite_est.size), "estimates": [float(e) for e in est],
            "group_sd": [float(np.nanstd(reps[:, g], ddof=1)) if np.isfinite(reps[:, g]).sum() > 1 else None
                         for g in range(len(tables))]}


def _rng(hyp: Hypothesis, what: str) -> np.random.Generator:
    return np.random.default_rng([int(hyp.id[:8], 16), zlib.crc32(what.encode())])


def _fmt(stats: dict[str, Any]) -> str:
    """'3.000 ± 0.396 (n=6 seeds, 1 group(s); sd over 1000 seed resamples, their mean 3.019)'."""
    sd, boot = (("—" if stats[k] is None else f"{stats[k]:.3f}") for k in ("sd", "bootstrap_mean"))
    return (f"{stats['mean']:.3f} ± {sd} (n={stats['n']} seeds, {stats['groups']} group(s); sd over {N_BOOT} "
            f"seed resamples, their mean {boot})")


def need(rel: Relation, threshold: float | None = None) -> str:
    """What the claim requires, as the table's `needs` column shows it."""
    if rel.statistic == "peak":
        return f"≤ {rel.peak_steps}"
    thr = rel.threshold if threshold is None else threshold
    return f"{'≥' if rel.sign > 0 else '≤'} {rel.sign * thr:g}"


def _peaks(hyp: Hypothesis, units: list[Any], residual: bool = False) -> str:
    """Where M (or its rank residual given the confounds) and T peak in each group, on all seeds."""
    rel, out = hyp.relation, []
    for u in units:
        m = rank_residual(u.m, u.z) if residual else u.m
        if m is None:
            continue
        labels = u.seeds.settings
        i = int(np.argmax(m))
        j = int(np.argmax(u.t)) if rel.sign > 0 else int(np.argmin(u.t))
        out.append(f"{u.label}: {'residual ' if residual else ''}M max at {labels[i]}, "
                   f"T {'max' if rel.sign > 0 else 'min'} at {labels[j]}: {abs(i - j)} step(s)")
    return "; ".join(out)


def claim_test(hyp: Hypothesis, units: list[Any], missing: list[str], what: str) -> dict[str, Any]:
    """The in-sample or held-out claim on across-seeds units (one per sweep group)."""
    rel = hyp.relation
    tables = [u.seeds for u in units]
    out: dict[str, Any] = {"statistic": rel.statistic, "over": rel.over, "across": rel.across,
                           "seed_statistic": rel.seed_statistic, "needs": need(rel), "missing_runs": missing,
                           "threshold": rel.peak_steps if rel.statistic == "peak" else rel.sign * rel.threshold}
    if not tables:
        hint = f"{len(missing)} run(s) missing: run with --run-missing" if missing else "no complete group"
        return {**out, "mean": None, "sd": None, "n": 0, "status": "inconclusive",
                "detail": f"{what}: no evidence ({hint})"}
    stats = bootstrap(tables, lambda m, t, z: claim_value(rel, m, t), rel, _rng(hyp, what))
    out.update(stats, per_unit={u.label: e for u, e in zip(units, stats["estimates"], strict=True)},
               curves={u.label: {"settings": u.seeds.settings, "M": u.m.tolist(), "T": u.t.tolist()} for u in units})
    name = f"{'peak distance' if rel.statistic == 'peak' else 'ρ'} over settings of {rel.seed_statistic} across seeds"
    if stats["mean"] is None:
        return {**out, "status": "inconclusive", "detail": f"{what}: {name} undefined for every group (M or T "
                                                           "constant over the settings?)"}
    ok = stats["mean"] <= rel.peak_steps if rel.statistic == "peak" else rel.sign * stats["mean"] >= rel.threshold
    where = f" ({_peaks(hyp, units)})" if rel.statistic == "peak" else ""
    more = f"; {len(missing)} run(s) missing" if missing else ""
    return {**out, "status": "pass" if ok else "fail",
            "detail": f"{what} {name} = {_fmt(stats)}, claim {need(rel)}{where}{more}"}


def confound_test(hyp: Hypothesis, units: list[Any]) -> dict[str, Any]:
    """Partial ρ given the confounds' seed-means (spearman), or the residual peak (peak)."""
    rel = hyp.relation
    names = ", ".join(hyp.confound_keys)
    thr = rel.peak_steps if rel.statistic == "peak" else rel.sign * hyp.min_partial
    out: dict[str, Any] = {"confounds": hyp.confound_keys, "threshold": thr, "needs": need(rel, hyp.min_partial)}
    if not units:
        return {**out, "mean": None, "sd": None, "n": 0, "status": "inconclusive",
                "detail": "no complete sweep group to test the confounds on (runs missing?)"}
    stats = bootstrap([u.seeds for u in units], lambda m, t, z: confound_value(rel, m, t, z), rel,
                      _rng(hyp, "confound"))
    explained = [u.label for u in units if explained_by(u.m, u.z)]
    out.update(stats, explained_units=len(explained),
               per_unit={u.label: e for u, e in zip(units, stats["estimates"], strict=True)})
    what = (f"peak distance of M's rank residual given {names} (seed-means)" if rel.statistic == "peak"
            else f"partial ρ given {names} (seed-means)")
    note = (f"; in {', '.join(explained)} the confounds explain M's ranks entirely (nothing of M is left"
            f"{': no peak of its own' if rel.statistic == 'peak' else ': partial ρ = 0'})") if explained else ""
    if rel.statistic == "peak" and explained:
        return {**out, "status": "fail", "detail": f"{what}: undefined{note}"}
    if stats["mean"] is None:
        return {**out, "status": "inconclusive", "detail": f"{what} undefined for every group{note}"}
    ok = stats["mean"] <= rel.peak_steps if rel.statistic == "peak" else rel.sign * stats["mean"] >= hyp.min_partial
    where = f" ({_peaks(hyp, units, residual=True)})" if rel.statistic == "peak" else ""
    return {**out, "status": "pass" if ok else "fail",
            "detail": f"{what} = {_fmt(stats)}, claim {need(rel, hyp.min_partial)}{where}{note}"}
