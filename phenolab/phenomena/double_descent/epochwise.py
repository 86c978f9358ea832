"""Epoch-wise double descent: test error over *training steps* falls, rises and falls again
(Nakkiran et al. 2019, §6).

Two settings. `epochwise`: MNIST-1D with 30% label noise and a deep MLP (six
hidden layers of 256, Adam), after Kubo, Uda & Iida 2026, who see it in deep MLPs and not in
shallow ones. The test error falls while the clean labels are learned, rises while the noisy ones
are memorised (the peak comes at a train error of ~5–10%), and falls again once they all are;
two hidden layers (`model.depth=2`) or clean labels remove the second descent, measured in the
docs (minutes on a CPU, so not in the tests).

`epochwise_two_scale` isolates one proposed mechanism in seconds (Heckel & Yilmaz 2021; Stephenson
& Lee 2021; Pezeshki et al. 2022): features learned at different speeds. With two input scales,
gradient descent first fits the fast inputs (first descent), then fits the label noise through
them as it approaches their least-squares solution, which sits near its own interpolation
threshold (ascent), and only much later learns the signal carried by the slow, small-scale inputs,
which also act as an implicit ridge on the fast ones (second descent). Equal scales
(`task.slow_scale=1`) remove the peak: the mechanism's prediction, measured in the tests.

The signature reads the step axis as `curve` reads capacities: the most prominent
interior peak of the test error over evaluated steps (a run's on its median of three, and only once
the error has made a third of its fall: `learning_start`), the minima on its two sides, and, on the
mean curve, `peak_present` (rise above both minima larger than the seed spread).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phenolab.catalog import Catalog
from phenolab.figures import pyplot
from phenolab.phenomena import Fields, Signature, SignatureField, Study, stat, study_curves
from phenolab.phenomena.double_descent.curve import INTERPOLATION_ERROR, most_prominent_peak, peak_present

PROMINENCE_TOL = 1e-6  # relative to the peak: below it a "peak" is rounding on a flat curve
RUN_FIELDS = ("first_min", "first_min_at", "peak_height", "peak_at", "second_min", "second_min_at", "last",
              "rise", "second_descent", "peak_prominence", "train_error_at_peak", "interpolation_step",
              "noisy_fit_at_first_min", "noisy_fit_at_peak", "noisy_fit_at_second_min")
NOISY_FIT = "label_fit"  # the measure's curve: share of the noise-changed training labels fit
SUMMARY_FIELDS = ("runs_with_peak", "peak_present", "mean_rise", "spread")  # beyond RUN_FIELDS' mean ± sd
F = SignatureField
FIELDS = Fields(
    F("first_min", "lowest test error before the peak", "test error"),
    F("first_min_at", "step of the first minimum", "steps"),
    F("peak_height", "test error at the most prominent interior peak over steps", "test error"),
    F("peak_at", "step of the peak", "steps"),
    F("second_min", "lowest test error after the peak", "test error"),
    F("second_min_at", "step of the second minimum", "steps"),
    F("last", "test error at the last step", "test error"),
    F("rise", "peak height − first minimum", "test error"),
    F("second_descent", "peak height − second minimum", "test error"),
    F("peak_prominence", "the smaller of rise and second descent", "test error"),
    F("train_error_at_peak", "train error at the peak (share of step 0's for regression)", "train error"),
    F("interpolation_step", "first evaluated step with train error ≤ 1%", "steps"),
    F("noisy_fit_at_first_min", "share of the noise-changed training labels fit at the first minimum", "share"),
    F("noisy_fit_at_peak", "share of the noise-changed training labels fit at the peak", "share"),
    F("noisy_fit_at_second_min", "share of the noise-changed training labels fit at the second minimum", "share"),
    F("has_peak", "the run's (median-of-three) curve has an interior peak after learning starts"),
    F("runs_with_peak", "runs with a peak", "runs"),
    F("peak_present", "the mean curve's peak rises above both side minima by more than the seed spread"),
    F("mean_rise", "the mean curve's peak prominence", "test error"),
    F("spread", "largest sd over seeds among the mean curve's peak and its two minima", "test error"),
    F("n_runs", "runs read", "runs", phase=False),
    F("run_id", "the run", phase=False),
    F("seed", "the run's seed", phase=False),
)


def run_curve(df: pd.DataFrame) -> pd.DataFrame:
    """One run's test and train error by step: 1 − accuracy for classification; for regression the
    MSE, with train error as a share of the step-0 train loss (the model starts at zero)."""
    wide = df.pivot_table(index="step", columns="metric", values="value").sort_index()
    if "test_acc" in wide:
        out = pd.DataFrame({"test_error": 1 - wide["test_acc"], "train_error": 1 - wide["train_acc"]})
        if NOISY_FIT in wide:
            out["noisy_fit"] = wide[NOISY_FIT]
        return out
    base = float(wide["train_loss"].iloc[0]) or 1.0
    return pd.DataFrame({"test_error": wide["test_loss"], "train_error": wide["train_loss"] / base})


def median_of_three(values: np.ndarray) -> np.ndarray:
    """Each interior value replaced by the median of it and its two neighbours (ends kept): a rise
    or fall seen at one evaluation only (an SGD or Adam spike) is removed; one that lasts two or
    more evaluations stays."""
    v = np.asarray(values, dtype=float).copy()
    if v.size >= 3:
        v[1:-1] = np.median(np.stack([v[:-2], v[1:-1], v[2:]]), axis=0)
    return v


def learning_start(test_error: np.ndarray) -> int:
    """The first evaluation at which the test error has made a third of its fall (from step 0 to
    its lowest); 0 for a curve that never falls. Before it the network is on its initial plateau,
    where minibatch noise makes bumps as large as an epoch-wise peak (`epochwise` at depth 4, 15%
    noise: +0.013–0.017 at steps 9–15 while test error is ~0.8), so no peak is looked for there."""
    v = np.asarray(test_error, dtype=float)
    if v.size == 0:
        return 0
    fallen = np.nonzero(v <= v[0] - (v[0] - v.min()) / 3)[0]
    return int(fallen[0]) if fallen.size and v.min() < v[0] else 0


def curve_signature(steps: np.ndarray, test_error: np.ndarray, train_error: np.ndarray, *,
                    smooth: bool = True, noisy_fit: np.ndarray | None = None) -> dict[str, Any]:
    """First minimum, peak and second minimum of one test-error curve over steps, looked for from
    `learning_start` on and read on the curve's median of three (`median_of_three`): on a
    minibatch run one evaluation can jump by more than
    the epoch-wise peak is high (`epochwise`, seed 4: 0.80 → 0.85 → 0.81 at steps 15–21, on the
    initial plateau), and the most prominent peak would be that jump. A study's mean curve is read
    as it is (`smooth=False`, and so is its `peak_present`): averaging over seeds already evens out
    one run's jumps. `noisy_fit` (the `label_fit` measure, where recorded) is read at the two minima
    and the peak: how much of the label noise the network had memorised there."""
    test = median_of_three(test_error) if smooth else np.asarray(test_error, dtype=float)
    hit = np.nonzero(np.asarray(train_error) <= INTERPOLATION_ERROR)[0]
    out: dict[str, Any] = dict.fromkeys(RUN_FIELDS)
    out.update(last=float(test[-1]), peak_prominence=0.0, has_peak=False,
               interpolation_step=float(steps[hit[0]]) if hit.size else None)
    peak = most_prominent_peak(test, learning_start(test))
    if peak is not None and peak.prominence > PROMINENCE_TOL * abs(test[peak.index]):
        out.update(
            has_peak=True, peak_prominence=peak.prominence,
            first_min=float(test[peak.left_min]), first_min_at=float(steps[peak.left_min]),
            peak_height=float(test[peak.index]), peak_at=float(steps[peak.index]),
            second_min=float(test[peak.right_min]), second_min_at=float(steps[peak.right_min]),
            rise=float(test[peak.index] - test[peak.left_min]),
            second_descent=float(test[peak.index] - test[peak.right_min]),
            train_error_at_peak=float(train_error[peak.index]),
        )
        if noisy_fit is not None:
            fit = np.asarray(noisy_fit, dtype=float)
            out.update(noisy_fit_at_first_min=float(fit[peak.left_min]), noisy_fit_at_peak=float(fit[peak.index]),
                       noisy_fit_at_second_min=float(fit[peak.right_min]))
    return out


def epochwise_signature(catalog: Catalog, study: Study) -> Signature:
    """Per run and mean ± sd over seeds, then `peak_present` on the mean curve."""
    curves = study_curves(catalog, study)
    per_run, by_seed = [], {}
    for (run_id, seed), df in curves.groupby(["run_id", "seed"]):
        c = run_curve(df)
        by_seed[int(seed)] = c
        fit = c["noisy_fit"].to_numpy() if "noisy_fit" in c else None
        sig = curve_signature(c.index.to_numpy(dtype=float), c["test_error"].to_numpy(), c["train_error"].to_numpy(),
                              noisy_fit=fit)
        per_run.append({"run_id": run_id, "seed": int(seed), **sig})
    if not by_seed:
        return Signature(study.setting_name, {"n_runs": 0}, [], study.note, {"axis": "step", "mean_curve": []},
                         output=("axis",))
    test = pd.concat({s: c["test_error"] for s, c in by_seed.items()}, axis=1).dropna()
    train = pd.concat({s: c["train_error"] for s, c in by_seed.items()}, axis=1).reindex(test.index)
    mean, sd = test.mean(axis=1).to_numpy(), test.std(axis=1, ddof=1).fillna(0).to_numpy()
    steps = test.index.to_numpy(dtype=float)
    present = peak_present(mean, sd, learning_start(mean))
    summary: dict[str, Any] = {k: stat([r[k] for r in per_run]) for k in RUN_FIELDS}
    summary["n_runs"] = len(per_run)
    with_peak = sum(r["has_peak"] for r in per_run)
    summary.update(zip(SUMMARY_FIELDS, (with_peak, present["peak_present"], present["rise"], present["spread"]),
                       strict=True))
    mean_curve = [{"step": float(s), "test_error": float(m), "test_sd": float(e),
                   "train_error": float(t)} for s, m, e, t in zip(steps, mean, sd, train.mean(axis=1), strict=True)]
    if all("noisy_fit" in c for c in by_seed.values()):
        noisy = pd.concat({s: c["noisy_fit"] for s, c in by_seed.items()}, axis=1).reindex(test.index).mean(axis=1)
        for row, value in zip(mean_curve, noisy, strict=True):
            row["noisy_fit"] = float(value)
    extra = {"setting_id": study.settings[0].id, "axis": "step", "mean_curve": mean_curve,
             "mean_curve_signature": curve_signature(steps, mean, train.mean(axis=1).to_numpy(), smooth=False)}
    return Signature(study.setting_name, summary, per_run, study.note, extra, output=("axis",))


def epochwise_figure(sig: Signature, out: Path) -> Path:
    """Test and train error vs step (log x), mean ± sd over seeds, the two minima and the peak
    marked; on the right the same from half the first minimum's step on, its y axis fitted to the
    test error there (the peak can be a few points on a fall from chance)."""
    plt = pyplot()

    mc = pd.DataFrame(sig.extra["mean_curve"])
    mc = mc[mc["step"] >= 1] if len(mc) else mc  # log x: step 0 (the zero model) is off the axis
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ms = sig.extra.get("mean_curve_signature") or {}
    for ax, zoom in zip(axes, (False, True), strict=True):
        part = mc
        if zoom and len(mc) and ms.get("first_min_at") is not None:
            part = mc[mc["step"] >= ms["first_min_at"] / 2]
        if len(part):
            x = part["step"]
            lo, hi = part["test_error"] - part["test_sd"], part["test_error"] + part["test_sd"]
            ax.plot(x, part["test_error"], color="C3", label="test")
            ax.fill_between(x, lo, hi, color="C3", alpha=0.2)
            ax.plot(x, part["train_error"], color="C0", label="train")
            if "noisy_fit" in part and not zoom:
                ax.plot(x, part["noisy_fit"], color="C2", ls="--", label="share of noise-changed labels fit")
            for key, at, mark in (("first_min", "first_min_at", "v"), ("peak_height", "peak_at", "^"),
                                  ("second_min", "second_min_at", "v")):
                if ms.get(at) is not None and (not zoom or ms[at] >= x.min()):
                    ax.plot(ms[at], ms[key], mark, color="k", ms=8)
            if zoom:
                pad = 0.1 * float(hi.max() - lo.min())
                ax.set_ylim(float(lo.min()) - pad, float(hi.max()) + pad)
        ax.set(xscale="log", xlabel="step")
    n = sig.summary.get("n_runs", 0)
    present = sig.summary.get("peak_present")
    axes[0].set(ylabel="error (test: MSE or 1 − acc; train: share of step 0)",
                title=f"epoch-wise double descent · {sig.setting} (n={n}, peak_present={present})")
    axes[1].set(title="from half the first minimum's step (test error's range)")
    axes[0].legend(loc="center left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
