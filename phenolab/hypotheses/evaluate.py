"""Evaluate a registered hypothesis against the catalog: four tests, each with its n and spread.

1. in-sample: the claimed ρ on the scope it was built on;
2. held-out: the same ρ on the held-out settings, from runs with hash-derived seeds that started
   after registration (runs that predate it are refused: they cannot be evidence);
3. confound: the partial ρ of M and T given the named confounds (`statistics.partial_spearman`);
   across seeds (`across_seeds`) the claim and this test are read per sweep group, with a bootstrap
   over seeds for the spread;
4. intervention: function-preserving transformations of the final parameters, and regularizers
   that retrain with one field changed (`intervene`); regularizer runs, like held-out ones, must
   start after registration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from phenolab.catalog import Catalog, run_id_for
from phenolab.execute import plan_batches, run_local
from phenolab.hypotheses import across_seeds
from phenolab.hypotheses.evidence import Unit, check_after_registration, check_frozen, collect_units, not_run
from phenolab.hypotheses.intervene import intervention_test
from phenolab.hypotheses.registry import HypothesisLog
from phenolab.hypotheses.regularizer import regularized_groups
from phenolab.hypotheses.spec import Hypothesis
from phenolab.hypotheses.statistics import explained_by, fmt, partial_spearman, spearman, summary
from phenolab.hypotheses.verdict import decide
from phenolab.settings import Setting

TrainMissing = Callable[[list[Setting], list[int]], list[str]]


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
    check_frozen(reg)
    scope, held, regularized = hyp.scope_settings(), hyp.held_out_settings(), regularized_groups(hyp)
    scope_seeds = [g.seeds for g in hyp.scope]
    held_seeds = [reg.held_out_seeds[: g.n_seeds] for g in hyp.held_out]
    if train_missing is not None:
        for settings, seeds in [*zip(scope, scope_seeds, strict=True), *zip(held, held_seeds, strict=True),
                                *zip(regularized, scope_seeds, strict=True)]:
            if settings:
                train_missing(settings, seeds)
    held_runs = check_after_registration(catalog, reg, held, held_seeds, "held-out",
                                         "register a superseding hypothesis (a new hash gives new held-out seeds)")
    regularizer_runs = check_after_registration(
        catalog, reg, regularized, scope_seeds, "regularizer",
        "register a superseding hypothesis (other scope seeds or regularizer values)")

    units, missing = collect_units(catalog, hyp, scope, scope_seeds)
    held_units, held_missing = collect_units(catalog, hyp, held, held_seeds)
    tests = {
        "in_sample": claim_test(hyp, units, missing, "in-sample"),
        "held_out": claim_test(hyp, held_units, held_missing, "held-out") if hyp.held_out else not_run(
            "no held-out settings named"),
        "confound": confound_test(hyp, units),
        "intervention": intervention_test(catalog, hyp, scope, scope_seeds, units),
    }
    status, reason = decide(tests)
    result = {"hypothesis_id": reg.id, "name": hyp.name, "statement": hyp.statement, "status": status,
              "reason": reason, "tests": tests, "registered": reg.time, "evaluated": time.time(),
              "runs": {"in_sample": [run_id_for(s.id, seed) for g, ss in zip(scope, scope_seeds, strict=True)
                                     for s in g for seed in ss], "held_out": held_runs,
                       **({"regularizer": regularizer_runs} if hyp.regularizers else {})}}
    if record:
        log.record_verdict(reg.id, result)
    return result


# ---- the four tests -------------------------------------------------------------------------
def claim_test(hyp: Hypothesis, units: list[Unit], missing: list[str], what: str) -> dict[str, Any]:
    """ρ(M, T) per unit against the claimed direction and threshold."""
    rel = hyp.relation
    if rel.across == "seeds":
        return across_seeds.claim_test(hyp, units, missing, what)
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
        return not_run("no confounds named")
    rel = hyp.relation
    if rel.across == "seeds":
        return across_seeds.confound_test(hyp, units)
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
