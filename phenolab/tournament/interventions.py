"""The intervention result of each explanation, from the hypothesis machinery's own test.

Where an explanation is one registered measure and the tournament names function-preserving
transformations (rescale, permute), each is applied to the scope's final checkpoints by
`hypotheses.intervene.function_preserving_test`: if the measure moves while the network's function
(and so the target) cannot, the explanation's in-sample map predicts a change that does not
happen, and the test fails. Other explanations (a combination, a statistic over seeds, a metric,
a setting field) have no such test and say so.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from phenolab.catalog import Catalog, CatalogError
from phenolab.hypotheses import Hypothesis, MeasureRef, Relation
from phenolab.hypotheses.evidence import Unit, not_run
from phenolab.hypotheses.intervene import function_preserving_test
from phenolab.hypotheses.spec import ScopeGroup
from phenolab.settings import SettingError
from phenolab.tournament.quantities import column
from phenolab.tournament.spec import DERIVED, Competitor, Ref, Tournament


def intervention_results(catalog: Catalog, t: Tournament, scope_points: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per explanation: the function-preserving test's result, or why there is none."""
    out = {}
    for c in t.competitors():
        if c.role != "explanation":
            continue
        try:
            out[c.name] = _one(catalog, t, c, scope_points)
        except (SettingError, CatalogError, ValueError) as exc:  # no homogeneous hidden layer, ...: why not
            out[c.name] = not_run(f"not applicable: {' '.join(str(exc).split())}")
    return out


def _one(catalog: Catalog, t: Tournament, c: Competitor, points: pd.DataFrame) -> dict[str, Any]:
    e = c.value
    if not t.interventions:
        return not_run("the tournament names no interventions")
    if e.measure is None or e.seed_statistic != "none" or e.measure.kind != "measure":
        return not_run("not applicable: only an explanation that is one registered measure can be moved by "
                       "transforming a checkpoint")
    target, sign = _hypothesis_ref(t.target)
    direction = "positive" if (1 if c.direction == "positive" else -1) * sign > 0 else "negative"
    hyp = Hypothesis(name=f"tournament-{t.id}-{c.name}", statement=f"{e.label} predicts {t.target.label}",
                     measure=MeasureRef(name=e.measure.name, params=e.measure.params), target=target,
                     relation=Relation(over="steps", direction=direction), interventions=t.interventions,
                     scope=tuple(ScopeGroup(setting=g.setting, overrides=g.overrides, sweep=g.sweep, seeds=g.seeds)
                                 for g in t.scope))
    units = [Unit(str(run), g[column(c.name)].to_numpy(float), sign * g["target"].to_numpy(float), [])
             for run, g in points.groupby("run_id", sort=False)]
    result = function_preserving_test(catalog, hyp, t.scope_settings(), t.scope_seeds(), units)
    return {k: v for k, v in result.items() if k != "per_transform"} | {
        "per_transform": {k: {"gap": v["gap"], "dM_rel": v["dM_rel"]}
                          for k, v in result.get("per_transform", {}).items()}}


def _hypothesis_ref(ref: Ref) -> tuple[str | MeasureRef, float]:
    """The target as a hypothesis names it, and the sign that turns an error into its accuracy."""
    if ref.kind == "measure":
        return MeasureRef(name=ref.name, params=ref.params), 1.0
    return (DERIVED[ref.name], -1.0) if ref.name in DERIVED else (ref.name, 1.0)
