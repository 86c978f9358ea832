"""The lottery-ticket signature, read from the catalog alone.

Dense accuracy; each control's final test accuracy over the share of weights remaining; how sparse
each still matches dense (`MATCH_RULE`); the ticket's advantage over the best control; and
instability (Frankle et al. 2020): the test-error barrier on the straight line between a ticket and
its copy trained with another data order.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from phenolab.catalog import Catalog, CatalogError, run_id_for
from phenolab.engine import evaluate
from phenolab.models import BatchedModel, Params, model_class
from phenolab.phenomena import Fields, Signature, SignatureField, stat
from phenolab.phenomena.lottery.plan import CONTROLS, LotteryPlan, study_model
from phenolab.phenomena.lottery.rounds import load_final
from phenolab.pruning import expected_survivors, layer_rates
from phenolab.settings import Setting
from phenolab.tasks import TaskData, build_task

MATCH_PP = 0.005  # a sparse net "matches" dense when within max(one dense sd, 0.5 pp) of its mean
MATCH_RULE = "mean test acc >= dense mean - max(dense sd, 0.5 pp)"
INTERPOLATION_POINTS = 11

F = SignatureField
FIELDS = Fields(
    F("dense_test_acc", "final test accuracy of the dense network (round 0)", "accuracy"),
    F("r* ticket", "round rNN, that % of weights left: final test accuracy of the winning ticket (the IMP mask, "
      "survivors rewound)", "accuracy"),
    F("r* reinit", "round rNN: the same mask on a fresh initialization", "accuracy"),
    F("r* shuffle", "round rNN: a random mask of the same per-layer sparsity", "accuracy"),
    F("ticket matches dense down to (% weights)", "sparsest share of weights down to which the ticket's mean "
      "matches dense in every round (the match rule); empty: not even round 1", "% weights"),
    F("reinit matches dense down to (% weights)", "the same for the reinitialized control", "% weights"),
    F("shuffle matches dense down to (% weights)", "the same for the shuffled-mask control", "% weights"),
    F("match rule", "when a sparse net matches dense", phase=False),
    F("ticket advantage over best control at *", "per seed, the ticket's accuracy − the better control's, at "
      "that share of weights", "accuracy"),
    F("instability k=* r* *", "test-error barrier between a ticket rewound to step k and its copy trained with "
      "another data order (Frankle et al. 2020): 0 = linearly connected", "test error"),
    F("rewind_step", "step the survivors are rewound to (0: the init)", "steps", phase=False),
    F("rounds", "pruning rounds", "rounds", phase=False),
    F("seeds", "seeds with a dense run", "seeds", phase=False),
    F("round", "the run's pruning round", phase=False),
    F("control", "dense, ticket, reinit or shuffle", phase=False),
    F("fraction", "share of weights left", "share", phase=False),
    F("test_acc", "the run's final test accuracy", "accuracy", phase=False),
    F("run_id", "the run", phase=False),
    F("seed", "the run's seed", phase=False),
)


def remaining_fractions(plan: LotteryPlan) -> list[float]:
    """Exact share of weights left after rounds 0..R (from the layer sizes and rates; biases excluded)."""
    model = study_model(plan.base)
    params = model.init([torch.Generator()])
    sizes = {n: params[n][0].numel() for n in model.weight_names(params)}
    total = sum(sizes.values())
    prune = plan.base.prune
    if prune.scope == "global":
        return [expected_survivors(total, prune.rate_hidden, r) / total for r in range(plan.rounds + 1)]
    rates = layer_rates(list(sizes), prune.rate_hidden, prune.rate_output)
    return [sum(expected_survivors(n, rates[name], r) for name, n in sizes.items()) / total
            for r in range(plan.rounds + 1)]


def final_test_acc(catalog: Catalog, setting: Setting, seeds: list[int]) -> dict[int, float]:
    """Final test accuracy of each stored (setting, seed), by seed."""
    runs = catalog.runs(setting_id=setting.id)
    runs = runs[runs["seed"].isin(seeds)]
    return {int(s): float(a) for s, a in zip(runs["seed"], runs["final_test_acc"], strict=True)}


def lottery_signature(catalog: Catalog, plan: LotteryPlan, seeds: list[int], setting_name: str = "",
                      note: str = "") -> Signature:
    """Dense accuracy; each control's accuracy over the weights remaining; how sparse each still
    matches dense (`MATCH_RULE`); the ticket's advantage over the best control; instability."""
    fractions = remaining_fractions(plan)
    dense = final_test_acc(catalog, plan.dense(), seeds)
    dense_stat = stat(list(dense.values()))
    if dense_stat["mean"] is None:
        raise CatalogError(f"no dense runs of setting {plan.dense().id} in {catalog.path}: run the study first")
    floor = dense_stat["mean"] - max(dense_stat["sd"], MATCH_PP)
    summary: dict[str, Any] = {"dense_test_acc": dense_stat}
    per_run: list[dict[str, Any]] = [{"round": 0, "control": "dense", "fraction": 1.0, "seed": s, "test_acc": a,
                                      "run_id": run_id_for(plan.dense().id, s)} for s, a in dense.items()]
    acc: dict[tuple[int, str], dict[int, float]] = {}
    for r in range(1, plan.rounds + 1):
        for c in CONTROLS:
            setting = plan.run(r, c)
            acc[r, c] = final_test_acc(catalog, setting, seeds)
            summary[f"r{r:02d} {100 * fractions[r]:.3g}% {c}"] = stat(list(acc[r, c].values()))
            per_run += [{"round": r, "control": c, "fraction": fractions[r], "seed": s, "test_acc": a,
                         "run_id": run_id_for(setting.id, s)} for s, a in acc[r, c].items()]
    matched = {c: _matches_down_to(fractions, acc, c, floor, plan.rounds) for c in CONTROLS}
    for c in CONTROLS:
        summary[f"{c} matches dense down to (% weights)"] = (
            None if matched[c] == 0 else round(100 * fractions[matched[c]], 3))
    summary["match rule"] = MATCH_RULE
    last = max((r for r in range(1, plan.rounds + 1) if acc[r, "ticket"]), default=0)
    for r in sorted({matched["ticket"], last} - {0}):
        summary[f"ticket advantage over best control at {100 * fractions[r]:.3g}%"] = _advantage(acc, r)
    barriers = instability(catalog, plan, seeds)
    for row in barriers:
        summary[f"instability k={row['rewind_step']} r{row['round']:02d} {100 * row['fraction']:.3g}%"] = \
            stat(row["barriers"])
    summary.update(rewind_step=plan.rewind_step, rounds=plan.rounds, seeds=len(dense))
    extra = {"setting_id": plan.dense().id, "instability": barriers, "fractions": fractions}
    return Signature(setting_name, summary, per_run, note, extra)


def _matches_down_to(fractions: list[float], acc: dict, control: str, floor: float, rounds: int) -> int:
    """The last round of the unbroken run of rounds (from round 1) whose mean matches dense; 0: none."""
    out = 0
    for r in range(1, rounds + 1):
        mean = stat(list(acc[r, control].values()))["mean"]
        if mean is None or mean < floor:
            break
        out = r
    return out


def _advantage(acc: dict, r: int) -> dict[str, Any]:
    """Per-seed ticket − best control (the control with the higher mean at round r)."""
    means = {c: stat(list(acc[r, c].values()))["mean"] for c in ("reinit", "shuffle")}
    best = max(means, key=lambda c: -1.0 if means[c] is None else means[c])
    seeds = sorted(set(acc[r, "ticket"]) & set(acc[r, best]))
    return {**stat([acc[r, "ticket"][s] - acc[r, best][s] for s in seeds]), "vs": best}


def interpolation_errors(setting: Setting, model: BatchedModel, a: Params, b: Params, data: TaskData,
                         points: int = INTERPOLATION_POINTS) -> np.ndarray:
    """Test error of (1 − α)·θ_A + α·θ_B at `points` evenly spaced α in [0, 1]: [K, points]."""
    errors = []
    with torch.no_grad():
        for alpha in np.linspace(0.0, 1.0, points):
            mixed = {n: (1 - alpha) * a[n] + alpha * b[n] for n in a}
            errors.append(1.0 - evaluate(setting, model, mixed, data)["test_acc"].numpy())
    return np.stack(errors, axis=1)


def error_barrier(errors: np.ndarray) -> np.ndarray:
    """Frankle et al. 2020's instability: max_α err(α) − mean(err(0), err(1)), per row."""
    return errors.max(axis=1) - 0.5 * (errors[:, 0] + errors[:, -1])


def instability(catalog: Catalog, plan: LotteryPlan, seeds: list[int]) -> list[dict[str, Any]]:
    """Error barriers between each stored ticket and its second-data-order copy, at every rewind
    point and round of this study's base setting found in the catalog."""
    fractions = remaining_fractions(plan)
    found = set()
    for blob in catalog.settings()["json"]:
        prune = json.loads(blob).get("prune") or {}
        if prune.get("data_order") == "alternate" and prune.get("round", 0) <= plan.rounds:
            found.add((int(prune.get("rewind_step", 0)), int(prune.get("round", 0))))
    model, out = study_model(plan.base), []
    for k, r in sorted(found):
        at_k = plan.with_rewind(k)
        a_set, b_set = at_k.run(r, "ticket"), at_k.run(r, "ticket", "alternate")
        both = sorted(catalog.existing_seeds(a_set.id) & catalog.existing_seeds(b_set.id) & set(seeds))
        if not both:
            continue
        a, b = (load_final(catalog, s, both) for s in (a_set, b_set))
        data = build_task(plan.base.task, both, model_class(plan.base.model.name).input_kind,
                          a[next(iter(a))].dtype)
        errors = interpolation_errors(plan.base, model, a, b, data)
        out.append({"rewind_step": k, "round": r, "fraction": fractions[r], "seeds": both,
                    "barriers": error_barrier(errors).tolist(), "errors": errors.tolist()})
    return out
