"""The intervention test: change M and see whether T moves as the hypothesis says it must.

Two kinds, one test (the verdict counts one "intervention"; it fails if any named kind fails):

- function-preserving (`rescale`, `permute`): applied to the scope's final checkpoints. The
  hypothesis's own in-sample M → T map (isotonic, in the claimed direction) says how far T should
  move when M does; T cannot move, so a predicted move of at least `intervention_tolerance` × T's
  in-sample range refutes "M determines T".
- `regularizer`: retrain with a setting field changed, which pushes M; T must follow in the
  predicted direction (`regularizer.regularizer_test`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from phenolab._rng import generator, generators
from phenolab.catalog import Catalog, run_id_for
from phenolab.engine import evaluate as evaluate_metrics
from phenolab.hypotheses import interventions as iv
from phenolab.hypotheses.evidence import Unit, in_sample_values, not_run
from phenolab.hypotheses.regularizer import regularizer_test
from phenolab.hypotheses.spec import METRICS, Hypothesis, MeasureRef
from phenolab.hypotheses.statistics import fmt, summary
from phenolab.measures import MeasureContext, compute_measure
from phenolab.models import BatchedModel, build_model, model_class
from phenolab.settings import Setting
from phenolab.tasks import TaskData, build_task

FUNCTION_TOLERANCE = 1e-4  # relative output change above which a transformation is not function-preserving


def intervention_test(catalog: Catalog, hyp: Hypothesis, scope: list[list[Setting]], seeds: list[list[int]],
                      units: list[Unit]) -> dict[str, Any]:
    """Each named kind's result; with both kinds, one result that fails if either fails and says which."""
    parts: dict[str, dict[str, Any]] = {}
    if hyp.function_preserving:
        parts["function-preserving"] = function_preserving_test(catalog, hyp, scope, seeds, units)
    if hyp.regularizers:
        parts["regularizer"] = regularizer_test(catalog, hyp, seeds, units)
    if not parts:
        return not_run("no interventions named")
    if len(parts) == 1:
        return next(iter(parts.values()))
    statuses = [p["status"] for p in parts.values()]
    failed = [k for k, p in parts.items() if p["status"] == "fail"]
    status = "fail" if failed else "pass" if all(s == "pass" for s in statuses) else "inconclusive"
    head = parts[failed[0]] if failed else next(iter(parts.values()))
    lead = f"failed by {' and '.join(failed)}: " if failed else ""
    detail = lead + "; ".join(f"{k} ({p['status']}): {p['detail']}" for k, p in parts.items())
    shown = {k: head[k] for k in ("mean", "sd", "n", "tolerance", "threshold", "needs") if k in head}
    return {**shown, "status": status, "failed_kinds": failed, "headline": next(k for k in parts if parts[k] is head),
            "kinds": parts, "detail": detail}


def function_preserving_test(catalog: Catalog, hyp: Hypothesis, scope: list[list[Setting]],
                             seeds: list[list[int]], units: list[Unit]) -> dict[str, Any]:
    """Apply each transformation to the scope's final checkpoints; compare T's move with the move
    the hypothesis predicts from M's."""
    m_all, t_all = in_sample_values(units)
    if m_all.size < 3 or np.ptp(t_all) == 0:
        return {"status": "inconclusive", "detail": "no in-sample M → T map to predict from (runs missing?)"}
    from sklearn.isotonic import IsotonicRegression  # lazy: scikit-learn costs ~1 s of CLI start-up

    iso = IsotonicRegression(increasing=hyp.relation.sign > 0, out_of_bounds="clip").fit(m_all, t_all)
    t_range, m_range = float(np.ptp(t_all)), float(np.ptp(m_all))
    span = float(np.ptp(iso.predict(m_all)))
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
    m0, t0 = (_value(ref, setting, model, params, data, ctx) for ref in (hyp.measure, hyp.target))
    rows = []
    for spec in hyp.function_preserving:
        if spec.kind == "rescale":
            variants = [(f"rescale layer {spec.layer} by {c:g}", iv.rescale(model, params, spec.layer, c))
                        for c in spec.factors]
        else:
            gen = generator(int(setting.id[:8], 16), f"permute-{spec.layer}")
            variants = [(f"permute layer {spec.layer}", iv.permute(model, params, spec.layer, gen))]
        for name, new in variants:
            m1, t1 = (_value(ref, setting, model, new, data, ctx) for ref in (hyp.measure, hyp.target))
            change = iv.output_change(model, params, new, data.x_test)
            for k, seed in enumerate(have):
                rows.append({"transform": name, "run_id": run_id_for(setting.id, seed), "dM": m1[k] - m0[k],
                             "pred_dT": float(iso.predict([m1[k]])[0] - iso.predict([m0[k]])[0]),
                             "obs_dT": t1[k] - t0[k], "output_change": change})
    return rows


def _value(ref: str | MeasureRef, setting: Setting, model: BatchedModel, params: dict[str, torch.Tensor],
           data: TaskData, ctx: MeasureContext) -> np.ndarray:
    """M or T of every replica: a recorded metric (evaluated again) or a measure."""
    if isinstance(ref, str):
        assert ref in METRICS
        with torch.no_grad():
            return evaluate_metrics(setting, model, params, data)[ref].cpu().double().numpy()
    return compute_measure(ref.name, params, ctx, **ref.params).numpy()
