"""Grokking's signature: when the training set is fit, when the test set follows, and the phase.

Per run, from its accuracy curves: `t_train` / `t_test` = the first evaluated step with train /
test accuracy ≥ 99% (`THRESHOLD`), `delay = t_test − t_train`, `ratio = t_test / t_train`, censored
flags when a threshold is not reached within the budget, and a phase after Liu et al. 2022:
comprehension (both reached, ratio < `GROK_RATIO`), grokking (ratio ≥ `GROK_RATIO`), memorization
(train only), confusion (neither).

Non-algorithmic data (`omnigrok2022`) never reach 99% test accuracy, so there `t_test` is the first
step at which test accuracy reaches `RELATIVE_TEST` (90%) of the run's best: when the run
generalizes as well as it will, against when it fit the training set.

Steps are recorded at `eval.points` log-spaced steps (plus every `eval.every`), so a threshold step
is overstated by at most the gap to the previous evaluation (`resolution_t_test`); the canonical
settings keep that gap near 10% of t_test.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from phenolab.catalog import Catalog, run_id_for
from phenolab.phenomena import Fields, RunSignature, Signature, SignatureField, Study, first_step_at_least, stat

THRESHOLD = 0.99
RELATIVE_TEST = 0.9
GROK_RATIO = 2.0  # t_test / t_train at or above which a run "groks" rather than "comprehends"
PHASES = ("comprehension", "grokking", "memorization", "confusion")
METRICS = ("train_acc", "test_acc", "train_loss", "test_loss")

F = SignatureField
FIELDS = Fields(
    F("phase", "Liu et al. 2022's phase: grokking when t_test ≥ 2 × t_train, comprehension when both are "
      "reached sooner, memorization (train only), confusion (neither)", categories=PHASES),
    F("t_train", "first evaluated step with train accuracy ≥ 99%", "steps"),
    F("t_test", "first evaluated step with test accuracy ≥ the test threshold", "steps"),
    F("delay", "t_test − t_train", "steps"),
    F("ratio", "t_test / t_train: how many times longer generalizing took than fitting", "×"),
    F("censored_train", "train accuracy never reached 99% within the budget (per run; over a study: how many)"),
    F("censored_test", "test accuracy never reached the threshold within the budget (per run; over a study: how "
      "many)"),
    F("relapses", "evaluations after t_test whose test accuracy fell back below the threshold (loss spikes)",
      "evaluations"),
    F("min_test_acc_after", "lowest test accuracy after t_test", "accuracy"),
    F("test_threshold", "the test accuracy t_test waits for: 0.99, or 0.9 × the run's best on non-algorithmic data",
      "accuracy"),
    F("resolution_t_test", "gap between t_test and the evaluation before it: how much t_test may overstate the "
      "true crossing", "steps"),
    F("final_train_acc", "train accuracy at the last step", "accuracy"),
    F("final_test_acc", "test accuracy at the last step", "accuracy"),
    F("final_train_loss", "training loss at the last step", "loss"),
    F("final_test_loss", "test loss at the last step", "loss"),
    F("budget", "the last evaluated step", "steps", phase=False),
    F("phases", "how many runs are in each phase", "runs", phase=False),
    F("n_runs", "runs read", "runs", phase=False),
)
SUMMARY_STATS = ("t_train", "t_test", "delay", "ratio", "relapses", "min_test_acc_after", "test_threshold",
                 "final_train_acc", "final_test_acc", "final_train_loss", "final_test_loss")


def run_signature(steps: np.ndarray, train_acc: np.ndarray, test_acc: np.ndarray,
                  threshold: float = THRESHOLD, test_threshold: float | None = None) -> dict[str, Any]:
    """The grokking signature of one run's accuracy curves (`test_threshold` defaults to `threshold`)."""
    test_threshold = threshold if test_threshold is None else test_threshold
    t_train = first_step_at_least(steps, train_acc, threshold)
    t_test = first_step_at_least(steps, test_acc, test_threshold)
    after = test_acc[steps > t_test] if t_test is not None else test_acc[:0]
    out: dict[str, Any] = {
        "t_train": t_train, "t_test": t_test,
        "censored_train": t_train is None, "censored_test": t_test is None,
        "delay": (t_test - t_train) if t_train is not None and t_test is not None else None,
        "ratio": (t_test / max(t_train, 1.0)) if t_train is not None and t_test is not None else None,
        # after generalizing, evaluations whose test accuracy fell back below the threshold (the
        # loss spikes of Adam-trained transformers, Thilak et al. 2022's "slingshots"), and the lowest
        "relapses": int((after < test_threshold).sum()) if t_test is not None else None,
        "min_test_acc_after": float(after.min()) if after.size else None,
    }
    out["phase"] = classify(out)
    return out


def classify(sig: dict[str, Any]) -> str:
    """Liu et al. 2022's four phases, with the delay measured as a ratio (fast settings)."""
    if sig["t_train"] is None:
        return "confusion" if sig["t_test"] is None else "comprehension"
    if sig["t_test"] is None:
        return "memorization"
    return "grokking" if sig["ratio"] >= GROK_RATIO else "comprehension"


def evaluation_resolution(steps: np.ndarray, at: float | None) -> float | None:
    """Gap between an evaluated step and the evaluation before it: how much a first-crossing
    step can overstate the true crossing."""
    if at is None:
        return None
    i = int(np.searchsorted(steps, at))
    return float(steps[i] - steps[i - 1]) if i > 0 else 0.0


def curves_signature(curves: dict[str, tuple[np.ndarray, np.ndarray]], relative: bool = False) -> dict[str, Any]:
    """One run's signature from its stored curves (`relative`: the test threshold is 90% of its best)."""
    steps = curves["train_acc"][0].astype(float)
    test_acc = curves["test_acc"][1]
    test_threshold = RELATIVE_TEST * float(test_acc.max()) if relative else THRESHOLD
    sig = run_signature(steps, curves["train_acc"][1], test_acc, test_threshold=test_threshold)
    sig["test_threshold"] = test_threshold
    sig["resolution_t_test"] = evaluation_resolution(steps, sig["t_test"])
    for m in METRICS:
        sig[f"final_{m}"] = float(curves[m][1][-1])
    sig["budget"] = float(steps[-1])
    return sig


def run_signature_of(relative: bool) -> RunSignature:
    return RunSignature(METRICS, lambda curves: curves_signature(curves, relative))


def grokking_signature(catalog: Catalog, study: Study, relative: bool) -> Signature:
    """Per run and mean ± sd over the study's seeds (one setting)."""
    setting = study.settings[0]
    stored = catalog.existing_seeds(setting.id)
    seed_of = dict(sorted((run_id_for(setting.id, s), s) for s in study.seeds if s in stored))
    by_run = catalog.curve_arrays(list(seed_of), list(METRICS))
    per_run = []
    for run_id, seed in seed_of.items():
        if run_id in by_run:
            row = curves_signature(by_run[run_id], relative)
            row.update(run_id=run_id, seed=int(seed), budget=row.pop("budget"))
            per_run.append(row)
    summary: dict[str, Any] = {k: stat([r[k] for r in per_run]) for k in SUMMARY_STATS}
    summary["censored_train"] = sum(r["censored_train"] for r in per_run)
    summary["censored_test"] = sum(r["censored_test"] for r in per_run)
    summary["phases"] = {p: sum(r["phase"] == p for r in per_run) for p in PHASES}
    summary["n_runs"] = len(per_run)
    test_rule = f"{RELATIVE_TEST:g} × the run's best test accuracy" if relative else f"{THRESHOLD:g}"
    return Signature(study.setting_name, summary, per_run, study.note,
                     extra={"setting_id": setting.id, "threshold": THRESHOLD, "test_threshold": test_rule})
