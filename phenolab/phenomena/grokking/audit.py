"""How `phenolab audit` reads grokking: its size is the delay ratio t_test / t_train, and it is
present when most runs grok (ratio ≥ 2). Under another metric (Kumar et al. 2023: "the jump is in
the metric"), the same runs are re-read with the rule every metric shares: the step by which a
curve has made 90% of its change, on the train and on the test set, their ratio, and how abrupt
the test curve's change is (`phenolab.analysis.curves`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from phenolab.analysis.curves import abruptness, progress_step
from phenolab.catalog import Catalog, run_id_for
from phenolab.phenomena import AuditReading, AuditSpec, Signature, Study, stat
from phenolab.phenomena.grokking.signature import GROK_RATIO
from phenolab.settings import Setting

# metric -> (its train and test curves as recorded, higher is better)
SCORES = ("prob_correct", "brier", "modular_distance")
HIGHER = {"accuracy": True, "loss": False, "prob_correct": True, "brier": False, "distance": False}


def score_measures(setting: Setting) -> tuple[dict[str, Any], ...]:
    """The continuous scores the audit's base runs record, on both splits (raw outputs for a
    network trained on the squared error, softmax otherwise)."""
    outputs = "raw" if setting.loss == "mse" else "softmax"
    names = SCORES if setting.task.name == "modular" else SCORES[:2]
    return tuple({"name": n, "params": {"split": split, "outputs": outputs}}
                 for n in names for split in ("train", "test"))


def curve_names(metric: str, setting: Setting) -> tuple[str, str] | None:
    """The stored (train, test) curves of `metric`, or None where the runs did not record them."""
    from phenolab.engine.evaluate import measure_key
    from phenolab.settings import MeasureSpec

    if metric == "accuracy":
        return "train_acc", "test_acc"
    if metric == "loss":
        return "train_loss", "test_loss"
    name = "modular_distance" if metric == "distance" else metric
    keys = {split: measure_key(MeasureSpec.model_validate(m)) for m in score_measures(setting)
            if m["name"] == name for split in [m["params"]["split"]]}
    recorded = {measure_key(m) for m in setting.measures}
    return (keys["train"], keys["test"]) if len(keys) == 2 and set(keys.values()) <= recorded else None


def read(sig: Signature) -> AuditReading:
    """Present when most runs grok; size: the ratio t_test / t_train over seeds."""
    phases, n = sig.summary.get("phases", {}), sig.summary.get("n_runs", 0)
    grokked = phases.get("grokking", 0)
    detail = f"{grokked} of {n} runs grok"
    return AuditReading(n > 0 and grokked * 2 > n, sig.summary.get("ratio"), detail)


def rescore(catalog: Catalog, study: Study, metric: str) -> AuditReading:
    """The same runs under `metric`: the 90%-progress ratio test / train, and the test curve's abruptness."""
    setting = study.settings[0]
    names = curve_names(metric, setting)
    if names is None:
        return AuditReading(False, detail=f"the runs did not record {metric}", available=False)
    higher = HIGHER[metric]
    ids = [run_id_for(setting.id, s) for s in study.seeds]
    curves = catalog.curve_arrays(ids, list(names))
    ratios, sharp, delayed = [], [], 0
    for rid in ids:
        if rid not in curves or any(n not in curves[rid] for n in names):
            continue
        (s_tr, v_tr), (s_te, v_te) = curves[rid][names[0]], curves[rid][names[1]]
        t_train, t_test = progress_step(s_tr, v_tr, higher), progress_step(s_te, v_te, higher)
        a = abruptness(s_te, v_te)
        if a is not None:
            sharp.append(a)
        if t_train is not None and t_test is not None:
            ratio = t_test / max(t_train, 1.0)
            ratios.append(ratio)
            delayed += ratio >= GROK_RATIO
    size = stat(ratios)
    a = stat(sharp)
    detail = (f"90% of the change: test {size['mean']:.3g}× later than train; " if size["n"] else "") + \
        (f"abruptness of the test curve {a['mean']:.2f} ± {a['sd']:.2f}" if a["n"] else "")
    return AuditReading(bool(ratios) and delayed * 2 > len(ratios), size if ratios else None, detail)


def variations(setting: Setting) -> tuple[tuple[str, dict[str, Any]], ...]:
    """Where grokking has been claimed beyond this setting: another operation, another optimizer,
    another width (each one change away from the setting)."""
    out: list[tuple[str, dict[str, Any]]] = []
    if setting.task.name == "modular":
        op = "-" if setting.task.op != "-" else "+"
        out.append((f"another operation: a {op} b", {"task.op": op}))
    optim = setting.optim
    if optim.name in ("adam", "adamw"):
        out.append(("SGD with momentum 0.9 instead of Adam(W)", {"optim.name": "sgd", "optim.lr": optim.lr,
                                                                "optim.weight_decay": optim.weight_decay,
                                                                "optim.momentum": 0.9}))
    if setting.model.name == "mlp" and setting.model.widths is None:
        out.append((f"half the width ({setting.model.width // 2})", {"model.width": setting.model.width // 2}))
    if setting.model.name == "transformer":
        half = setting.model.d_model // 2
        out.append((f"half the model width ({half})", {"model.d_model": half}))
    return tuple(out)


def audit_spec(setting: Setting) -> AuditSpec:
    wd = setting.optim.weight_decay
    decays = tuple(v for v in (0.0, 1.0, 10.0) if not np.isclose(v, wd))
    scale = setting.model.init_scale
    # the default init (init_scale 1) is always one of the controls: Liu et al.'s claim is that
    # grokking on non-algorithmic data comes with a large init
    factors = tuple(sorted({0.25, 4.0, 8.0} | ({1.0 / scale} if scale != 1.0 else set())))
    return AuditSpec("t_test / t_train", read, metrics=("accuracy", "loss", "prob_correct", "brier", "distance"),
                     rescore=rescore, measures=score_measures(setting), init_factors=factors,
                     weight_decays=decays, variations=variations(setting))
