"""The regularizer intervention: push M by retraining with one setting field changed, and check
that T follows in the direction the hypothesis claims.

A function-preserving transformation can only refute (M moves, T cannot). A regularizer asks the
converse (issue text: "a regularizer that pushes M and checks whether T follows"): if M
determines T, then whatever moves M at the end of training moves T with it, in the claimed
direction. Each case is (scope setting, seed, value): the run of the setting with `field = value`
against the unmodified run of the same seed, both read at their final step. M moved when
|ΔM| > MOVE_TOLERANCE × M's in-sample range; T followed when sign(ΔT) = direction · sign(ΔM)
and |ΔT| ≥ intervention_tolerance × T's in-sample range. Among the cases where M moved, T must
follow in at least FOLLOW_SHARE of them; if M never moved there is nothing to decide.

With `relation.across: seeds` a case is (scope setting, value) instead: M and T are the seed
statistic and the seed-mean over the seeds both the unmodified and the modified setting have, and
ΔM, ΔT compare those (M moved, T followed: the same rule, against M's and T's in-sample ranges over
the settings).

The modified runs decide the test, so like held-out runs they must start after registration
(their seeds are the scope's, known in advance; `evaluate` refuses older ones).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from phenolab.catalog import Catalog, run_id_for
from phenolab.hypotheses.across_seeds import SEED_STATISTICS
from phenolab.hypotheses.evidence import Unit, in_sample_values, run_tables
from phenolab.hypotheses.spec import Hypothesis
from phenolab.hypotheses.statistics import fmt, summary
from phenolab.settings import Setting

MOVE_TOLERANCE = 0.01  # share of M's in-sample range below which M "did not move"
FOLLOW_SHARE = 2 / 3  # share of moved cases in which T must follow


def regularizer_cases(hyp: Hypothesis) -> list[list[tuple[Setting, str, Setting]]]:
    """Per scope group: (unmodified setting, "field=value", modified setting), leaving out values
    that are the setting's own (nothing changes)."""
    labels = [f"{r.field}={v}" for r in hyp.regularizers for v in r.values]
    out = []
    for base_group, variant_group in zip(hyp.scope_settings(), hyp.regularized_settings(), strict=True):
        out.append([(base, label, new) for base, variants in zip(base_group, variant_group, strict=True)
                    for label, new in zip(labels, variants, strict=True) if new.id != base.id])
    return out


def regularized_groups(hyp: Hypothesis) -> list[list[Setting]]:
    """The modified settings to train, per scope group (on that group's seeds)."""
    return [list({new.id: new for _, _, new in group}.values()) for group in regularizer_cases(hyp)]


def regularizer_test(catalog: Catalog, hyp: Hypothesis, seeds: list[list[int]], units: list[Unit]) -> dict[str, Any]:
    """Per (setting, seed, value): ΔM and ΔT at the final step against the unmodified run; pass if T
    followed in the predicted direction in ≥ FOLLOW_SHARE of the cases where M moved."""
    what = "regularizer " + ", ".join(r.label.removeprefix("regularizer ") for r in hyp.regularizers)
    m_all, t_all = in_sample_values(units)
    if m_all.size < 2 or np.ptp(t_all) == 0:
        return {"status": "inconclusive", "mean": None, "sd": None, "n": 0,
                "detail": f"{what}: no in-sample range of T to scale the tolerance by (runs missing?)"}
    m_range, t_range = float(np.ptp(m_all)), float(np.ptp(t_all))
    rows, missing = _case_rows(catalog, hyp, seeds)
    case = "(setting, value)" if hyp.relation.across == "seeds" else "(setting, seed, value)"
    if not rows:
        return {"status": "inconclusive", "mean": None, "sd": None, "n": 0, "missing_runs": missing,
                "detail": f"{what}: no modified runs in the catalog ({len(missing)} missing: run with --run-missing)"}
    df = pd.DataFrame(rows)
    df["moved"] = df["dM"].abs() > MOVE_TOLERANCE * m_range
    df["followed"] = (df["moved"] & (np.sign(df["dT"]) == hyp.relation.sign * np.sign(df["dM"]))
                      & (df["dT"].abs() >= hyp.intervention_tolerance * t_range))
    moved, followed = int(df["moved"].sum()), int(df["followed"].sum())
    share = summary(df.loc[df["moved"], "followed"].astype(float).tolist())
    per_value = {v: {"n": len(g), "moved": int(g["moved"].sum()), "followed": int(g["followed"].sum()),
                     "dM": summary(g["dM"].tolist()), "dT": summary(g["dT"].tolist())}
                 for v, g in df.groupby("value", sort=False)}
    out = {**share, "cases": len(df), "moved": moved, "followed": followed,
           "share_moved_and_followed": followed / len(df), "threshold": FOLLOW_SHARE,
           "needs": f"≥ {FOLLOW_SHARE:.3g}", "tolerance": hyp.intervention_tolerance,
           "move_tolerance": MOVE_TOLERANCE, "m_range": m_range, "t_range": t_range,
           "dM": summary(df["dM"].tolist()), "dT": summary(df["dT"].tolist()), "per_value": per_value,
           "cases_table": df.to_dict("records"), "missing_runs": missing}
    deltas = "; ".join(f"{v}: ΔM = {_fmt(p['dM'])}, ΔT = {_fmt(p['dT'])}" for v, p in per_value.items())
    counts = (f"M moved (> {MOVE_TOLERANCE:g} of its in-sample range {m_range:.3g}) in {moved} of {len(df)} "
              f"{case} cases; T followed the {hyp.relation.direction} relation by ≥ "
              f"{hyp.intervention_tolerance:g} of its range {t_range:.3g} in {followed}")
    more = f"; {len(missing)} run(s) missing" if missing else ""
    if moved == 0:
        return {**out, "status": "inconclusive", "detail": f"{what}: M never moved ({counts}; {deltas}){more}"}
    ok = followed / moved >= FOLLOW_SHARE
    verb = "followed" if ok else "did not follow"
    return {**out, "status": "pass" if ok else "fail",
            "detail": f"{what}: T {verb} M: {counts} (share {fmt(share)}, claim ≥ {FOLLOW_SHARE:.3g}); {deltas}{more}"}


def _fmt(s: dict[str, Any]) -> str:
    """`fmt`, with significant digits for small numbers (a variance across seeds can be ~1e-5)."""
    if s["mean"] is None or s["mean"] == 0 or abs(s["mean"]) >= 0.01:
        return fmt(s)
    return f"{s['mean']:.3g} ± {s['sd']:.3g} (n={s['n']})"


def _case_rows(catalog: Catalog, hyp: Hypothesis, seeds: list[list[int]]) -> tuple[list[dict[str, Any]], list[str]]:
    """ΔM and ΔT at the final step per case (per seed, or across seeds), and the missing run ids."""
    keys = list(dict.fromkeys([hyp.measure_key, hyp.target_key]))
    m_key, t_key = hyp.measure_key, hyp.target_key
    rows, missing = [], []
    for cases, group_seeds in zip(regularizer_cases(hyp), seeds, strict=True):
        finals: dict[str, dict[int, pd.Series]] = {}
        for s in {s.id: s for case in cases for s in (case[0], case[2])}.values():
            finals[s.id] = {seed: t.iloc[-1] for seed, t in run_tables(catalog, s, group_seeds, keys).items()}
        for base, label, new in cases:
            missing += [run_id_for(s.id, seed) for s in (base, new) for seed in group_seeds if seed not in finals[s.id]]
            both = [seed for seed in group_seeds if seed in finals[base.id] and seed in finals[new.id]]
            if hyp.relation.across == "seeds":
                if len(both) < 2:
                    continue
                stat = SEED_STATISTICS[hyp.relation.seed_statistic]
                m = [float(stat(np.array([finals[s.id][seed][m_key] for seed in both]))) for s in (base, new)]
                t = [float(np.mean([finals[s.id][seed][t_key] for seed in both])) for s in (base, new)]
                rows.append({"value": label, "setting": base.id, "modified_setting": new.id, "seeds": both,
                             "M": m[0], "T": t[0], "dM": m[1] - m[0], "dT": t[1] - t[0]})
                continue
            for seed in both:
                delta = finals[new.id][seed] - finals[base.id][seed]
                rows.append({"value": label, "seed": seed, "run_id": run_id_for(new.id, seed),
                             "base_run_id": run_id_for(base.id, seed), "dM": float(delta[m_key]),
                             "dT": float(delta[t_key])})
    return rows, sorted(set(missing))
