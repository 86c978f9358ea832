"""The signature of hidden progress: when accuracy jumps, and how far the hidden measure had
already moved by then.

Per run, from its stored curves (`curves_signature`; phase maps read the same function through
`run_signature_of`): `t_learn` = the first evaluated step with test accuracy ≥ the threshold
(`--accuracy-threshold`, default 0.99; None when never reached), the relevant-weight share
(`relevant_input_weight_share(k=3)`: k/n at init, 1 when the first layer reads only the k relevant
bits) at the start, at the evaluation nearest t_learn / 2 and at t_learn, and

    progress_before_jump = (share at t_learn/2 − share at 0) / (share at t_learn − share at 0),

the part of the share's rise up to t_learn that came in the first half of the wait. Beside it,
`test_acc_at_half` says whether accuracy had moved by then: hidden progress is a share that rose
while test accuracy sat near chance (0.5). Steps are the recorded evaluations (`eval.points`
log-spaced), so t_learn overstates the crossing by at most the gap to the evaluation before it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from phenolab.catalog import Catalog, run_id_for
from phenolab.engine.evaluate import measure_key
from phenolab.phenomena import Fields, RunSignature, Signature, SignatureField, Study, first_step_at_least, stat
from phenolab.settings import MeasureSpec, Setting, SettingError

OUTCOMES = ("learned", "not learned")
SHARE = "relevant_input_weight_share"

F = SignatureField
FIELDS = Fields(
    F("outcome", "learned: test accuracy reached the threshold within the budget; not learned: it never did",
      categories=OUTCOMES),
    F("t_learn", "first evaluated step with test accuracy ≥ the threshold (over a study: the runs that learned)",
      "steps"),
    F("share_at_start", "share of the first layer's squared weight norm on the k relevant bits at step 0 "
      "(k/n for a random init)", "share"),
    F("share_at_half", "relevant-weight share at the evaluation nearest t_learn / 2", "share"),
    F("share_at_learn", "relevant-weight share at t_learn", "share"),
    F("progress_before_jump", "(share at t_learn/2 − share at 0) / (share at t_learn − share at 0): the part of "
      "the hidden measure's rise that came in the first half of the wait for accuracy", "fraction"),
    F("test_acc_at_half", "test accuracy at the evaluation nearest t_learn / 2 (0.5 is chance: progress there is "
      "hidden from accuracy)", "accuracy"),
    F("final_test_acc", "test accuracy at the last step", "accuracy"),
    F("final_train_acc", "train accuracy at the last step", "accuracy"),
    F("final_share", "relevant-weight share at the last step", "share"),
    F("half_step", "the evaluated step nearest t_learn / 2 that the *_at_half fields read", "steps", phase=False),
    F("budget", "the last evaluated step", "steps", phase=False),
    F("outcomes", "how many runs learned and how many did not", "runs", phase=False),
    F("n_runs", "runs read", "runs", phase=False),
    F("run_id", "the run's id in the catalog", phase=False),
    F("seed", "the run's seed", phase=False),
)
SUMMARY_STATS = ("t_learn", "share_at_start", "share_at_half", "share_at_learn", "progress_before_jump",
                 "test_acc_at_half", "final_test_acc", "final_train_acc", "final_share")


def share_metric(setting: Setting, k: int) -> str:
    """The curve name of the share measure on the first k bits, checked against the setting: it
    must record that measure and its task must have those k relevant bits."""
    want = measure_key(MeasureSpec(name=SHARE, params={"k": k}))
    task_k = getattr(setting.task, "k", None)
    if task_k != k:
        raise SettingError(f"sparse-parity studies k = {k} relevant bits (its signature reads {want}); this setting "
                           f"has task.k = {task_k}")
    if want not in {measure_key(m) for m in setting.measures}:
        raise SettingError(f"sparse-parity reads the measure {want}; this setting's measures do not record it")
    return want


def curves_signature(curves: dict[str, tuple[np.ndarray, np.ndarray]], share: str,
                     threshold: float) -> dict[str, Any]:
    """One run's signature from its curves (`share`: the share measure's curve name)."""
    steps, test_acc = curves["test_acc"][0].astype(float), curves["test_acc"][1]
    share_steps, shares = curves[share][0].astype(float), curves[share][1]
    t_learn = first_step_at_least(steps, test_acc, threshold)

    def nearest(values_steps: np.ndarray, values: np.ndarray, step: float) -> float:
        return float(values[int(np.argmin(np.abs(values_steps - step)))])

    row: dict[str, Any] = {
        "outcome": OUTCOMES[0] if t_learn is not None else OUTCOMES[1], "t_learn": t_learn,
        "share_at_start": float(shares[0]), "share_at_half": None, "share_at_learn": None,
        "progress_before_jump": None, "test_acc_at_half": None, "half_step": None,
        "final_test_acc": float(test_acc[-1]), "final_train_acc": float(curves["train_acc"][1][-1]),
        "final_share": float(shares[-1]), "budget": float(steps[-1]),
    }
    if t_learn is not None:
        half = float(steps[int(np.argmin(np.abs(steps - t_learn / 2)))])
        at_half, at_learn = nearest(share_steps, shares, half), nearest(share_steps, shares, t_learn)
        rise = at_learn - row["share_at_start"]
        row.update(share_at_half=at_half, share_at_learn=at_learn, half_step=half,
                   test_acc_at_half=nearest(steps, test_acc, half),
                   progress_before_jump=(at_half - row["share_at_start"]) / rise if rise > 0 else None)
    return row


def run_signature_of(share: str, threshold: float) -> RunSignature:
    return RunSignature(("test_acc", "train_acc", share), lambda curves: curves_signature(curves, share, threshold))


def hidden_progress_signature(catalog: Catalog, study: Study, run_sig: RunSignature, threshold: float) -> Signature:
    """Per run (`run_sig`, the phase maps' function) and mean ± sd over the study's seeds."""
    setting = study.settings[0]
    stored = catalog.existing_seeds(setting.id)
    seed_of = {run_id_for(setting.id, s): s for s in sorted(study.seeds) if s in stored}
    by_run = catalog.curve_arrays(list(seed_of), list(run_sig.metrics))
    per_run = []
    for run_id, seed in seed_of.items():
        if run_id in by_run:
            per_run.append({"run_id": run_id, "seed": int(seed), **run_sig.fn(by_run[run_id])})
    summary: dict[str, Any] = {k: stat([r[k] for r in per_run]) for k in SUMMARY_STATS}
    summary["outcomes"] = {o: sum(r["outcome"] == o for r in per_run) for o in OUTCOMES}
    summary["n_runs"] = len(per_run)
    return Signature(study.setting_name, summary, per_run, study.note,
                     extra={"setting_id": setting.id, "threshold": threshold, "share_metric": run_sig.metrics[2]},
                     output=("threshold", "share_metric"))
