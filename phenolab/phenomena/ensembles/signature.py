"""The deep-ensemble signature, read from the members' final parameters in the catalog.

Per ensemble and size K (its first K members): the ensemble's test error and loss against the
mean member's, the gain, and the exact decompositions (`phenolab.analysis.ensemble`): for the
ensemble of mean logits, member loss = ensemble loss + diversity (mean KL(π̄ ‖ π_s), also the
bias–variance split of Yang et al. 2020); for the averaged probabilities, the same with Jensen's
gap at the label. Pairwise disagreement, the same on the training set (learner collusion shows
there), and, for settings with shifts, how much predictions change under them. Then mean ± sd
over ensembles. The loss gain *equals* the diversity by that identity, so "diversity explains the
gain" is only a claim about the error, which is what `rho_diversity_gain` measures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from phenolab.analysis.ensemble import (
    ce_decomposition,
    pairwise_disagreement,
    prediction_change,
    prob_average_decomposition,
)
from phenolab.catalog import Catalog
from phenolab.phenomena import Fields, RowTable, Signature, SignatureField, stat
from phenolab.phenomena.ensembles.members import Members, load_members, perturbed, shifted

if TYPE_CHECKING:
    from phenolab.phenomena.ensembles import EnsembleStudy

F = SignatureField
ERR, NATS = "test error", "nats"
METRICS = {  # per ensemble and size: what the table and the summary report
    "ensemble_error": ("test error of the ensemble (argmax of the mean logits)", ERR),
    "member_error": ("mean test error of its members", ERR),
    "gain": ("member error − ensemble error", ERR),
    "ensemble_loss": ("test cross-entropy of the ensemble (softmax of the mean logits)", NATS),
    "member_loss": ("mean test cross-entropy of its members", NATS),
    "diversity": ("mean KL(ensemble ‖ member) on test inputs = member loss − ensemble loss (exact)", NATS),
    "disagreement": ("share of test inputs on which two members' predictions differ (mean over pairs)", "share"),
    "ensemble_error_prob": ("test error of the probability-averaged ensemble", ERR),
    "ensemble_loss_prob": ("test cross-entropy of the probability-averaged ensemble", NATS),
    "diversity_prob": ("member loss − probability-averaged ensemble loss (Jensen's gap at the label, exact)", NATS),
    "train_ensemble_error": ("training error of the ensemble", "train error"),
    "train_member_error": ("mean training error of its members", "train error"),
    "train_diversity": ("mean KL(ensemble ‖ member) on the training inputs", NATS),
    "identity_residual": ("member loss − diversity − ensemble loss: zero up to float rounding", NATS),
}
SHIFT_METRICS = {
    "member_tv": ("mean total-variation distance between a member's predictions on an input and on its shifts",
                  "TV"),
    "ensemble_tv": ("the same for the ensemble", "TV"),
    "tv_ratio": ("ensemble TV / member TV: below 1 when the ensemble is more equivariant than its members", "×"),
    "member_flips": ("share of a member's predictions that change under a shift", "share"),
    "ensemble_flips": ("share of the ensemble's predictions that change under a shift", "share"),
}
FIELDS = Fields(
    *(F(k, d, u) for k, (d, u) in {**METRICS, **SHIFT_METRICS}.items()),
    F("rho_diversity_gain", "Spearman ρ between diversity and error gain over every size and variant (mean "
      "over ensembles): how well diversity predicts the gain in error", "ρ", phase=False),
    F("rho_disagreement_gain", "Spearman ρ between pairwise disagreement and error gain, likewise", "ρ",
      phase=False),
    F("members", "members per ensemble", "members", phase=False),
    F("ensembles", "ensembles (seeds of the reproduction)", "ensembles", phase=False),
    F("*@*", "a field at a smaller ensemble size (@K), or of one variant (@name, at the full size)"),
)
# What the summary also gives at each smaller size (the table has every metric at every size).
PER_SIZE = ("ensemble_error", "member_error", "gain", "ensemble_loss", "member_loss", "diversity")
# The columns of the per-size table, in order.
TABLE = ("variant", "K", "ensemble_error", "member_error", "gain", "ensemble_loss", "member_loss", "diversity",
         "disagreement", "train_diversity", "ensemble_tv", "member_tv")


def ensemble_rows(members: Members, sizes: tuple[int, ...], shifts: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    """One row per ensemble and size K (its first K members)."""
    test = members.logits(members.x_test)
    train = members.logits(members.x_train) if members.shared_train else None
    moved = [members.logits(x) for x in shifted(members.x_test, shifts)]
    rows = []
    for i, e in enumerate(members.ensembles):
        for k in sizes:
            if k > members.members:
                continue
            row: dict[str, Any] = {"ensemble": e, "K": k, **_decomposed(test[i, :k], members.y_test)}
            if train is not None:
                tr = ce_decomposition(train[i, :k], members.y_train)
                row.update(train_ensemble_error=tr["ensemble_error"], train_member_error=tr["mean_error"],
                           train_diversity=tr["variance"])
            if moved:
                change = prediction_change(test[i, :k], torch.stack([m[i, :k] for m in moved]))
                row.update(change, tv_ratio=change["ensemble_tv"] / change["member_tv"]
                           if change["member_tv"] > 0 else float("nan"))
            rows.append(row)
    return rows


def _decomposed(logits: Any, y: Any) -> dict[str, float]:
    ce = ce_decomposition(logits, y)
    prob = prob_average_decomposition(logits, y)
    return {
        "ensemble_error": ce["ensemble_error"], "member_error": ce["mean_error"],
        "gain": ce["mean_error"] - ce["ensemble_error"],
        "ensemble_loss": ce["bias"], "member_loss": ce["mean_loss"], "diversity": ce["variance"],
        "identity_residual": ce["mean_loss"] - ce["variance"] - ce["bias"],
        "disagreement": pairwise_disagreement(logits),
        "ensemble_error_prob": prob["error"], "ensemble_loss_prob": prob["loss"], "diversity_prob": prob["diversity"],
    }


def ensemble_signature(catalog: Catalog, study: EnsembleStudy) -> Signature:
    """Mean ± sd over ensembles of every metric, per size (single setting) or per variant."""
    canon = study.canonical
    rows: list[dict[str, Any]] = []
    noisy_rows: list[dict[str, Any]] = []
    for label, setting in zip(study.variants, study.settings, strict=True):
        members = load_members(catalog, setting, study.ensembles)
        rows += [{"variant": label, **r} for r in ensemble_rows(members, study.sizes, canon.shifts)]
        if canon.perturbed and label == study.variants[0]:
            noisy = perturbed(members, study.options.perturbation)  # type: ignore[attr-defined]
            noisy_rows = [{"variant": "perturbed", **r} for r in ensemble_rows(noisy, study.sizes, canon.shifts)]
    if canon.perturbed:
        rows += noisy_rows
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    largest = max(r["K"] for r in rows)
    summary: dict[str, Any] = {}
    table_rows = []
    for v in variants:
        for k in sorted({r["K"] for r in rows}):
            group = [r for r in rows if r["variant"] == v and r["K"] == k]
            stats = {m: stat([r[m] for r in group]) for m in group[0] if m not in ("variant", "ensemble", "K")}
            table_rows.append({"variant": v, "K": k, **{m: stats[m]["mean"] for m in stats}})
            for m, s in stats.items():
                if len(variants) == 1 and k == largest:
                    summary[m] = s
                elif len(variants) == 1 and m in PER_SIZE:
                    summary[f"{m}@{k}"] = s
                elif k == largest:
                    summary[f"{m}@{v}"] = s
    summary["rho_diversity_gain"] = _rho(table_rows, "diversity")
    summary["rho_disagreement_gain"] = _rho(table_rows, "disagreement")
    summary["members"] = largest
    summary["ensembles"] = len(study.ensembles)
    residual = max(abs(r["identity_residual"]) for r in rows)
    columns = tuple(c for c in TABLE if c in table_rows[0] and (c != "variant" or len(variants) > 1))
    per_run = [{k: r[k] for k in ("variant", "ensemble", "K", "ensemble_error", "member_error", "gain",
                                  "diversity", "disagreement")} for r in rows if r["K"] == largest]
    note = (f"{len(study.ensembles)} ensembles of {largest} members; sizes {', '.join(map(str, study.sizes))}; "
            f"largest |identity residual| {residual:.1e} nats")
    return Signature(
        study.setting_name, summary, per_run, note,
        extra={"table": table_rows, "variants": variants, "sizes": list(study.sizes)},
        tables=(RowTable("mean over ensembles, per variant and size", columns, table_rows),),
    )


def _rho(table: list[dict[str, Any]], measure: str) -> float | None:
    from scipy.stats import spearmanr  # 0.7 s to import: only when a signature is read

    pairs = [(r[measure], r["gain"]) for r in table if r["K"] > 1 and np.isfinite(r[measure])]
    if len(pairs) < 3:
        return None
    rho = spearmanr(*zip(*pairs, strict=True)).statistic
    return float(rho) if np.isfinite(rho) else None
