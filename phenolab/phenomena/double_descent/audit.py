"""How `phenolab audit` reads double descent: it is present when the mean curve's peak rises above
both side minima by more than the seed spread (`peak_present`), and its size is that rise. Nakkiran
et al. 2021 find that appropriate regularization removes the peak, optimal early stopping included:
the early-stopping reading comes from the stored curves (each run's best evaluated test error);
the loss reading re-reads the same runs' final test loss instead of their 0-1 error."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from phenolab.catalog import Catalog
from phenolab.phenomena import AuditReading, AuditSpec, Signature, Study
from phenolab.phenomena.double_descent.curve import peak_present
from phenolab.settings import Setting


def _reading(present: Any, rise: Any, spread: Any, n: Any, where: Any = None) -> AuditReading:
    size = {"mean": float(rise), "sd": float(spread or 0.0), "n": int(n or 0)} if present else None
    detail = f"peak at {where:g}, rise {float(rise):.3g} over the seed spread {float(spread or 0):.3g}" \
        if present and where is not None else f"rise {float(rise or 0):.3g} ≤ seed spread {float(spread or 0):.3g}"
    return AuditReading(bool(present), size, detail)


def read(sig: Signature) -> AuditReading:
    """The mean curve's peak: present or not, and its rise (model-wise or epoch-wise)."""
    s = sig.summary
    if "mean_rise" in s:  # epoch-wise
        return _reading(s.get("peak_present"), s.get("mean_rise"), s.get("spread"), s.get("n_runs"),
                        (s.get("peak_at") or {}).get("mean"))
    return _reading(s.get("peak_present"), s.get("peak_rise"), s.get("seed_spread"), s.get("n_seeds"),
                    s.get("mean_curve_peak"))


def early_stopping(sig: Signature) -> AuditReading:
    """The curve of each run's best evaluated test error (stored curves; no training)."""
    s = sig.summary
    if "early_stopping_peak_present" not in s:
        return AuditReading(False, detail="no early stopping for exact solves or epoch-wise studies",
                            available=False)
    return _reading(s["early_stopping_peak_present"], s["early_stopping_peak_rise"],
                    s["early_stopping_seed_spread"], s.get("n_seeds"), s.get("early_stopping_peak"))


def rescore(catalog: Catalog, study: Study, metric: str) -> AuditReading:
    """`loss`: the final test loss per capacity instead of the 0-1 error (model-wise studies)."""
    from phenolab.phenomena.double_descent.signature import final_values

    if metric != "loss" or len(study.settings) < 3:
        return AuditReading(False, detail=f"{metric}: not read for this study", available=False)
    finals = [final_values(catalog, s, study.seeds) for s in study.settings]
    if not all(len(f) and "test_loss" in f for f in finals):
        return AuditReading(False, detail="the runs are not all stored", available=False)
    seeds = sorted(set.intersection(*[set(f.index) for f in finals]))
    loss = np.stack([f.loc[seeds, "test_loss"].to_numpy() for f in finals], axis=1)  # [seeds, capacities]
    judged = np.log10(loss) if "test_acc" not in finals[0] else loss  # MSE: heavy-tailed near a peak
    sd = judged.std(0, ddof=1) if len(seeds) > 1 else np.zeros(judged.shape[1])
    present = peak_present(judged.mean(0), sd)
    where = None if present["index"] is None else study.settings[present["index"]].value(study.axis["path"])  # type: ignore[attr-defined]
    reading = _reading(present["peak_present"], present["rise"], present["spread"], len(seeds), where)
    return replace(reading, comparable=False)  # a rise in loss, not in error: presence is what compares


def audit_spec(setting: Setting, epochwise: bool) -> AuditSpec:
    neural = setting.optim.name != "lstsq"
    decays = tuple(v for v in (1e-4, 1e-3, 1e-2) if neural and not np.isclose(v, setting.optim.weight_decay))
    variations: list[tuple[str, dict[str, Any]]] = []
    if getattr(setting.task, "label_noise", 0):
        variations.append(("no label noise", {"task.label_noise": 0.0}))
    if neural and setting.optim.name == "sgd":
        variations.append(("Adam lr 1e-3 instead of SGD", {"optim.name": "adam", "optim.lr": 1e-3}))
    elif neural:
        variations.append(("SGD lr 0.01, momentum 0.9 instead of Adam", {"optim.name": "sgd", "optim.lr": 0.01,
                                                                        "optim.momentum": 0.9}))
    ridges: tuple[tuple[str, dict[str, Any]], ...] = ()
    if setting.task.name == "linear_regression" and setting.optim.name == "lstsq" and setting.optim.ridge == 0:
        ridges = (("optimally tuned ridge (Nakkiran et al. 2021: d·σ²/n per cell)", {"ridge": "optimal"}),)
    return AuditSpec("peak rise over its side minima", read, metrics=() if epochwise else ("loss",),
                     regularizer_options=ridges,
                     rescore=None if epochwise else rescore, early_stopping=early_stopping,
                     init_factors=(0.25, 4.0) if setting.model.name in ("mlp", "transformer") else (),
                     weight_decays=decays, variations=tuple(variations))
