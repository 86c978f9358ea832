"""Evaluate a registered hypothesis against the catalog: four tests, each with its n and spread.

1. in-sample: the claimed ρ on the scope it was built on;
2. held-out: the same ρ on the held-out settings, from runs with hash-derived seeds that started
   after registration (runs that predate it are refused: they cannot be evidence);
3. confound: the partial ρ of M and T given the named confounds (`statistics.partial_spearman`);
4. intervention: function-preserving transformations of the final parameters (`interventions`);
   the hypothesis's own in-sample M → T map (isotonic, in the claimed direction) says how far T
   should move when M does; T cannot move, so a predicted move of at least
   `intervention_tolerance` × T's in-sample range refutes "M determines T".

A unit (one value of the statistic) is a run over its recorded steps, or a (sweep group, seed)
over the group's settings (final values).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from phenolab._rng import generator, generators
from phenolab.catalog import Catalog, CatalogError, run_id_for
from phenolab.engine import evaluate as evaluate_metrics
from phenolab.execute import plan_batches, run_local
from phenolab.hypotheses import interventions as iv
from phenolab.hypotheses.registry import HypothesisLog, Registration
from phenolab.hypotheses.spec import METRICS, STEP, Hypothesis, MeasureRef
from phenolab.hypotheses.statistics import explained_by, fmt, partial_spearman, spearman, summary
from phenolab.hypotheses.verdict import decide
from phenolab.measures import MeasureContext, compute_measure
from phenolab.models import build_model, model_class
from phenolab.settings import Setting
from phenolab.tasks import build_task

TrainMissing = Callable[[list[Setting], list[int]], list[str]]
FUNCTION_TOLERANCE = 1e-4  # relative output change above which a transformation is not function-preserving


@dataclass
class Unit:
    label: str
    m: np.ndarray
    t: np.ndarray
    z: list[np.ndarray]


def local_train_missing(catalog: Catalog, device: str = "auto") -> TrainMissing:
    """Train missing runs in this process (the CLI passes one with a progress bar instead)."""
    return lambda settings, seeds: run_local(plan_batches(settings, seeds, catalog), catalog, device=device)


def evaluate_registered(catalog: Catalog, ref: str, train_missing: TrainMissing | None = None,
                        record: bool = True) -> dict[str, Any]:
    """Run the four tests of a registered hypothesis, decide, and (by default) append the verdict."""
    log = HypothesisLog(catalog)
    log.require_intact()
    reg = log.registration(ref)
    hyp = reg.hypothesis
    scope, held = hyp.scope_settings(), hyp.held_out_settings()
    _check_frozen(reg, scope, held)
    scope_seeds = [g.seeds for g in hyp.scope]
    held_seeds = [reg.held_out_seeds[: g.n_seeds] for g in hyp.held_out]
    if train_missing is not None:
        for settings, seeds in [*zip(scope, scope_seeds, strict=True), *zip(held, held_seeds, strict=True)]:
            train_missing(settings, seeds)
    held_runs = _check_after_registration(catalog, reg, held, held_seeds)

    units, missing = collect_units(catalog, hyp, scope, scope_seeds)
    held_units, held_missing = collect_units(catalog, hyp, held, held_seeds)
    tests = {
        "in_sample": claim_test(hyp, units, missing, "in-sample"),
        "held_out": claim_test(hyp, held_units, held_missing, "held-out") if hyp.held_out else _not_run(
            "no held-out settings named"),
        "confound": confound_test(hyp, units),
        "intervention": intervention_test(catalog, hyp, scope, scope_seeds, units),
    }
    status, reason = decide(tests)
    result = {"hypothesis_id": reg.id, "name": hyp.name, "statement": hyp.statement, "status": status,
              "reason": reason, "tests": tests, "registered": reg.time, "evaluated": time.time(),
              "runs": {"in_sample": [run_id_for(s.id, seed) for g, ss in zip(scope, scope_seeds, strict=True)
                                     for s in g for seed in ss], "held_out": held_runs}}
    if record:
        log.record_verdict(reg.id, result)
    return result


# ---- evidence -------------------------------------------------------------------------------
def _check_frozen(reg: Registration, scope: list[list[Setting]], held: list[list[Setting]]) -> None:
    now = {"scope": [[s.id for s in g] for g in scope], "held_out": [[s.id for s in g] for g in held]}
    if now != reg.settings:
        raise CatalogError(f"hypothesis {reg.id}: its settings no longer resolve to the setting ids frozen at "
                           "registration (a named setting changed); register a superseding hypothesis")


def _check_after_registration(catalog: Catalog, reg: Registration, held: list[list[Setting]],
                              held_seeds: list[list[int]]) -> list[str]:
    """Run ids of the held-out evidence; refuse if any of it started before registration."""
    ids = []
    for settings, seeds in zip(held, held_seeds, strict=True):
        for s in settings:
            runs = catalog.runs(setting_id=s.id)
            for row in runs[runs["seed"].isin(seeds)].itertuples():
                if float(row.started) <= reg.time:
                    raise CatalogError(
                        f"held-out run {row.run_id} started {_utc(row.started)}, before hypothesis {reg.id} was "
                        f"registered ({_utc(reg.time)}): evidence that predates registration cannot test it; "
                        "register a superseding hypothesis (a new hash gives new held-out seeds)")
                ids.append(row.run_id)
    return ids


def collect_units(catalog: Catalog, hyp: Hypothesis, groups: list[list[Setting]],
                  seeds: list[list[int]]) -> tuple[list[Unit], list[str]]:
    """The units of the claimed statistic, and the run ids that are missing from the catalog."""
    keys = [hyp.measure.key, hyp.target_key, *[k for k in hyp.confound_keys if k != STEP]]
    units: list[Unit] = []
    missing: list[str] = []
    for gi, (settings, group_seeds) in enumerate(zip(groups, seeds, strict=True)):
        wide = {}
        for s in settings:
            curves = catalog.curves(setting_id=s.id, metrics=keys)
            for seed in group_seeds:
                sub = curves[curves["seed"] == seed]
                if sub.empty:
                    missing.append(run_id_for(s.id, seed))
                    continue
                table = sub.pivot_table(index="step", columns="metric", values="value").sort_index()
                absent = [k for k in keys if k not in table]
                if absent:
                    raise CatalogError(f"run {run_id_for(s.id, seed)} has no curve {absent[0]!r}")
                wide[(s.id, seed)] = table
        if hyp.relation.over == "steps":
            for (sid, seed), table in wide.items():
                units.append(Unit(run_id_for(sid, seed), table[keys[0]].to_numpy(), table[keys[1]].to_numpy(),
                                  _confounds(hyp, table)))
        else:
            for seed in group_seeds:
                tables = [wide[(s.id, seed)] for s in settings if (s.id, seed) in wide]
                if len(tables) < len(settings):
                    continue  # an incomplete sweep is no unit (its missing runs are listed)
                finals = pd.DataFrame([t.iloc[-1].rename(None) for t in tables])
                finals[STEP] = [float(t.index[-1]) for t in tables]
                units.append(Unit(f"group {gi} seed {seed}", finals[keys[0]].to_numpy(), finals[keys[1]].to_numpy(),
                                  [finals[k].to_numpy() for k in hyp.confound_keys]))
    return units, missing


def _confounds(hyp: Hypothesis, table: pd.DataFrame) -> list[np.ndarray]:
    return [table.index.to_numpy(dtype=float) if k == STEP else table[k].to_numpy() for k in hyp.confound_keys]


# ---- the four tests -------------------------------------------------------------------------
def claim_test(hyp: Hypothesis, units: list[Unit], missing: list[str], what: str) -> dict[str, Any]:
    """ρ(M, T) per unit against the claimed direction and threshold."""
    rel = hyp.relation
    rhos = [spearman(u.m, u.t) for u in units]
    stats = summary(rhos)
    need = f"{'≥' if rel.sign > 0 else '≤'} {rel.sign * rel.threshold:g}"
    out = {"statistic": "spearman", "over": rel.over, **stats, "threshold": rel.sign * rel.threshold,
           "per_unit": dict(zip([u.label for u in units], rhos, strict=True)), "missing_runs": missing}
    if stats["mean"] is None:
        hint = f"{len(missing)} run(s) missing: run with --run-missing" if missing else "ρ undefined for every unit"
        return {**out, "status": "inconclusive", "detail": f"{what}: no evidence ({hint})"}
    ok = rel.sign * stats["mean"] >= rel.threshold
    detail = f"{what} ρ = {fmt(stats)}, claim {need}" + (f"; {len(missing)} run(s) missing" if missing else "")
    return {**out, "status": "pass" if ok else "fail", "detail": detail}


def confound_test(hyp: Hypothesis, units: list[Unit]) -> dict[str, Any]:
    """Partial ρ(M, T | confounds) per unit: the claim must survive at `min_partial`."""
    if not hyp.confounds:
        return _not_run("no confounds named")
    rel = hyp.relation
    partial = [partial_spearman(u.m, u.t, u.z) for u in units]
    stats = summary(partial)
    names = ", ".join(hyp.confound_keys)
    out = {**stats, "confounds": hyp.confound_keys, "threshold": rel.sign * hyp.min_partial,
           "per_unit": dict(zip([u.label for u in units], partial, strict=True))}
    if stats["mean"] is None:
        return {**out, "status": "inconclusive", "detail": f"partial ρ given {names} undefined for every unit"}
    ok = rel.sign * stats["mean"] >= hyp.min_partial
    need = f"{'≥' if rel.sign > 0 else '≤'} {rel.sign * hyp.min_partial:g}"
    explained = sum(explained_by(u.m, u.z) for u in units)
    note = (f"; in {explained} of {len(units)} units the confounds explain M's ranks entirely (no variation "
            "of M is left to track T: partial ρ = 0)") if explained else ""
    return {**out, "status": "pass" if ok else "fail", "explained_units": explained,
            "detail": f"partial ρ given {names} = {fmt(stats)}, claim {need}{note}"}


def intervention_test(catalog: Catalog, hyp: Hypothesis, scope: list[list[Setting]], seeds: list[list[int]],
                      units: list[Unit]) -> dict[str, Any]:
    """Apply each transformation to the scope's final checkpoints; compare T's move with the move
    the hypothesis predicts from M's."""
    if not hyp.interventions:
        return _not_run("no interventions named")
    m_all = np.concatenate([u.m for u in units]) if units else np.array([])
    t_all = np.concatenate([u.t for u in units]) if units else np.array([])
    ok = np.isfinite(m_all) & np.isfinite(t_all)
    if ok.sum() < 3 or np.ptp(t_all[ok]) == 0:
        return {"status": "inconclusive", "detail": "no in-sample M → T map to predict from (runs missing?)"}
    from sklearn.isotonic import IsotonicRegression  # lazy: scikit-learn costs ~1 s of CLI start-up

    iso = IsotonicRegression(increasing=hyp.relation.sign > 0, out_of_bounds="clip").fit(m_all[ok], t_all[ok])
    t_range, m_range = float(np.ptp(t_all[ok])), float(np.ptp(m_all[ok]))
    span = float(np.ptp(iso.predict(m_all[ok])))
    if span < hyp.intervention_tolerance * t_range:
        return {"status": "inconclusive", "mean": None, "sd": None, "n": 0,
                "detail": f"the in-sample M → T map in the claimed direction is flat (spans {span / t_range:.2f} "
                          "of T's range): the hypothesis predicts no move of T to test"}
    rows: list[dict[str, Any]] = []
    for settings, group_seeds in zip(scope, seeds, strict=True):
        for s in settings:
            rows += _intervene_setting(catalog, hyp, s, group_seeds, iso)
    if not rows:
        return {"status": "inconclusive", "detail": "no final checkpoints of the scope's runs in the catalog"}
    df = pd.DataFrame(rows)
    per_transform = {}
    for name, g in df.groupby("transform", sort=False):
        gap = (g["pred_dT"].abs() - g["obs_dT"].abs()) / t_range
        per_transform[name] = {"gap": summary(gap.tolist()), "dM_rel": summary((g["dM"].abs() / m_range).tolist()),
                               "pred_dT": summary(g["pred_dT"].tolist()), "obs_dT": summary(g["obs_dT"].tolist()),
                               "max_output_change": float(g["output_change"].max())}
    worst = max(per_transform, key=lambda k: per_transform[k]["gap"]["mean"] or -np.inf)
    top = per_transform[worst]
    broken = {k: v["max_output_change"] for k, v in per_transform.items()
              if v["max_output_change"] > FUNCTION_TOLERANCE}
    out = {**top["gap"], "transform": worst, "per_transform": per_transform, "t_range": t_range,
           "m_range": m_range, "tolerance": hyp.intervention_tolerance}
    if broken:
        return {**out, "status": "inconclusive",
                "detail": f"not function-preserving here: output changed by {broken} (relative)"}
    moved = f"{worst}: M moved {fmt(top['dM_rel'], 2)} of its in-sample range"
    said = f"predicted |ΔT| − observed |ΔT| = {fmt(top['gap'])} of T's range (tolerance {hyp.intervention_tolerance:g})"
    if top["gap"]["mean"] >= hyp.intervention_tolerance:
        return {**out, "status": "fail", "detail": f"{moved}, T did not follow: {said}"}
    return {**out, "status": "pass", "detail": f"{moved}; {said}"}


def _intervene_setting(catalog: Catalog, hyp: Hypothesis, setting: Setting, seeds: list[int],
                       iso: Any) -> list[dict[str, Any]]:
    have = [s for s in seeds if s in catalog.existing_seeds(setting.id)]
    if not have:
        return []
    ckpts = [catalog.load_checkpoint(run_id_for(setting.id, s)) for s in have]
    params = {n: torch.stack([c[n] for c in ckpts]) for n in ckpts[0]}
    dtype = torch.float64 if setting.dtype == "float64" else torch.float32
    data = build_task(setting.task, have, model_class(setting.model.name).input_kind, dtype)
    model = build_model(setting.model, data.input_dim, data.out_dim, data.seq_len)
    ctx = MeasureContext(model, model.init(generators(have, "init"), dtype), 0, data)
    m0, t0 = _measure(hyp.measure, params, ctx), _target(hyp, setting, model, params, data, ctx)
    rows = []
    for spec in hyp.interventions:
        if spec.kind == "rescale":
            variants = [(f"rescale layer {spec.layer} by {c:g}", iv.rescale(model, params, spec.layer, c))
                        for c in spec.factors]
        else:
            gen = generator(int(setting.id[:8], 16), f"permute-{spec.layer}")
            variants = [(f"permute layer {spec.layer}", iv.permute(model, params, spec.layer, gen))]
        for name, new in variants:
            m1, t1 = _measure(hyp.measure, new, ctx), _target(hyp, setting, model, new, data, ctx)
            change = iv.output_change(model, params, new, data.x_test)
            for k, seed in enumerate(have):
                rows.append({"transform": name, "run_id": run_id_for(setting.id, seed), "dM": m1[k] - m0[k],
                             "pred_dT": float(iso.predict([m1[k]])[0] - iso.predict([m0[k]])[0]),
                             "obs_dT": t1[k] - t0[k], "output_change": change})
    return rows


def _measure(ref: MeasureRef, params: dict[str, torch.Tensor], ctx: MeasureContext) -> np.ndarray:
    return compute_measure(ref.name, params, ctx, **ref.params).numpy()


def _target(hyp: Hypothesis, setting: Setting, model, params, data, ctx) -> np.ndarray:
    if isinstance(hyp.target, str) and hyp.target in METRICS:
        with torch.no_grad():
            return evaluate_metrics(setting, model, params, data)[hyp.target].cpu().double().numpy()
    return _measure(hyp.target, params, ctx)


def _not_run(why: str) -> dict[str, Any]:
    return {"status": "not_run", "detail": why, "mean": None, "sd": None, "n": 0}


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(t)))
