"""Lottery tickets: iterative magnitude pruning with rewinding, its controls, and stability.

Frankle & Carbin 2019 ("The lottery ticket hypothesis"): train a dense net, prune the
smallest-magnitude weights (20% of each hidden layer, 10% of the output layer per round),
reset the survivors to their initial values and retrain; the sparse "winning ticket" matches
the dense net down to a small fraction of its weights, while the same mask on a fresh init
(random reinitialization) does not. Frankle et al. 2020 rewind to step k > 0 instead of the
init, and call a subnetwork stable when two copies trained from it with different data orders
are linearly connected (no test-error barrier between them).

Every run of a study is its own setting in the catalog: the canonical setting plus a `prune`
section (round, control, rates, rewind step, data order) and `checkpoints="final"`, so the next
round reads its mask source from the catalog and an interrupted study resumes at the round it
reached. Each round's runs (ticket, controls, seeds, and the instability copy) are one batched
program; the engine ignores the `prune` section, so runs of different controls share a batch.
Signature and figure are read from the catalog alone (see `lottery_signature`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from phenolab.catalog import Catalog, CatalogError, run_id_for
from phenolab.engine import evaluate, total_steps
from phenolab.figures import pyplot, save_figure
from phenolab.models import BatchedModel, Params, model_class
from phenolab.phenomena._base import Phenomenon, Study, quick_setting, register_phenomenon, stat
from phenolab.phenomena.pruning import (
    CONTROLS,
    INSTABILITY,
    LotteryPlan,
    expected_survivors,
    layer_rates,
    load_final,
    run_rounds,
    study_model,
    study_work,
)
from phenolab.settings import Setting, SettingError, register_setting, resolve_setting
from phenolab.tasks import TaskData, build_task

DEFAULT_ROUNDS = 15
QUICK_EPOCHS = 5  # --quick's epochs per round
MATCH_PP = 0.005  # a sparse net "matches" dense when within max(one dense sd, 0.5 pp) of its mean
MATCH_RULE = "mean test acc >= dense mean - max(dense sd, 0.5 pp)"
INTERPOLATION_POINTS = 11


def _register_lenet_300_100(name: str, task: str, source: str, description: str) -> None:
    """Frankle & Carbin 2019's LeNet-300-100 recipe on `task`: the lottery settings differ only there."""
    register_setting(name, {
        "task": {"name": task},
        "model": {"name": "mlp", "widths": [300, 100]},
        "optim": {"name": "adam", "lr": 1.2e-3},
        "schedule": {"epochs": 20, "batch_size": 64},
        "eval": {"points": 20},
        "checkpoints": "final",
        "prune": {"control": "dense"},
    }, source=source, description=description)


_register_lenet_300_100(
    "frankle_carbin2019_mnist1d", "mnist1d",
    source="Frankle & Carbin 2019, LeNet-300-100 (300-100 ReLU, Adam lr 1.2e-3, batch 60, 50k iterations on "
    "MNIST; per round prune 20% of each hidden layer and 10% of the output layer, rewind to init); here on "
    "MNIST-1D (40 inputs, 4000 train / 1000 test), batch 64, 20 epochs per round",
    description="the lottery-ticket study: `phenolab reproduce lottery --rounds 15`",
)
_register_lenet_300_100(
    "frankle_carbin2019_digits", "digits",
    source="Frankle & Carbin 2019's LeNet-300-100 recipe (see frankle_carbin2019_mnist1d) on scikit-learn's "
    "8x8 digits (64 inputs, 1258 train / 539 test)",
    description="lottery tickets on real (small) images, no download",
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


def lottery_signature(catalog: Catalog, plan: LotteryPlan, seeds: list[int]) -> dict[str, Any]:
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
    return {"setting_id": plan.dense().id, "summary": summary, "per_run": per_run,
            "instability": barriers, "fractions": fractions}


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


def lottery_figure(catalog: Catalog, plan: LotteryPlan, seeds: list[int], out: Path, *, title: str = "") -> Path:
    """Test accuracy vs % of weights remaining (log x, sparser to the right): ticket and controls
    as mean ± sd bands, the dense net as a line; beside it, the instability barriers."""
    plt = pyplot()

    sig = lottery_signature(catalog, plan, seeds)
    bars = sig["instability"]
    fig, axes = plt.subplots(1, 2 if bars else 1, figsize=(11 if bars else 6, 4.2), squeeze=False)
    ax = axes[0][0]
    dense = sig["summary"]["dense_test_acc"]
    ax.axhline(dense["mean"], color="black", lw=1, label=f"dense (n={dense['n']})")
    ax.axhspan(dense["mean"] - dense["sd"], dense["mean"] + dense["sd"], color="black", alpha=0.12, lw=0)
    for c in CONTROLS:
        rows = [r for r in sig["per_run"] if r["control"] == c]
        pct = sorted({100 * r["fraction"] for r in rows}, reverse=True)
        stats = [stat([r["test_acc"] for r in rows if np.isclose(100 * r["fraction"], p)]) for p in pct]
        mean, sd = np.array([s["mean"] for s in stats]), np.array([s["sd"] for s in stats])
        line, = ax.plot(pct, mean, marker="o", ms=3, label={"ticket": "winning ticket (IMP, rewound)",
                        "reinit": "random reinit (same mask)", "shuffle": "random mask (layer-wise shuffle)"}[c])
        ax.fill_between(pct, mean - sd, mean + sd, color=line.get_color(), alpha=0.22, lw=0)
    _log_percent_axis(ax, 100 * min(sig["fractions"][1:], default=1.0))
    ax.set_ylabel("test accuracy (final step)")
    ax.legend(frameon=False, fontsize=8)
    if bars:
        bx = axes[0][1]
        for k in sorted({b["rewind_step"] for b in bars}):
            rows = [b for b in bars if b["rewind_step"] == k]
            bx.errorbar([100 * b["fraction"] for b in rows], [100 * np.mean(b["barriers"]) for b in rows],
                        yerr=[100 * np.std(b["barriers"], ddof=1) if len(b["barriers"]) > 1 else 0 for b in rows],
                        marker="o", capsize=3, label=f"rewind to step {k}")
        _log_percent_axis(bx, 100 * min(b["fraction"] for b in bars))
        bx.set_ylabel("test-error barrier (pp)")
        bx.set_title("instability: two data orders, linear path", fontsize=9)
        bx.legend(frameon=False, fontsize=8)
    fig.suptitle(f"{title}  (mean ± sd over seeds; rewind to step {plan.rewind_step})".strip(), fontsize=10)
    return save_figure(fig, out)


def _log_percent_axis(ax: Any, lowest: float) -> None:
    """Log x from 100% down to `lowest`, sparser to the right (as Frankle & Carbin plot it)."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_xlim(110, lowest / 1.1)
    ax.set_xticks([t for t in (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1) if t >= lowest / 1.1])
    ax.set_xticklabels([f"{t:g}" for t in ax.get_xticks()])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("% of weights remaining")
    ax.grid(alpha=0.3, which="both")


class Lottery(Phenomenon):
    name = "lottery"
    canonical = ("frankle_carbin2019_mnist1d", "frankle_carbin2019_digits")
    default_setting = "frankle_carbin2019_mnist1d"

    def study(self, setting_name: str, seeds: list[int], overrides: dict[str, Any], quick: bool,
              options: dict[str, Any] | None = None) -> Study:
        options = dict(options or {})
        setting, quick, note = quick_setting(setting_name, overrides, quick, {"schedule.epochs": QUICK_EPOCHS},
                                             f"--quick: {QUICK_EPOCHS} epochs per round (the canonical setting "
                                             f"trains {resolve_setting(setting_name, {}).schedule.epochs})")
        plan = make_plan(setting, options)
        options["plan"] = plan
        return Study(self.name, setting_name, plan.settings(), seeds, quick, note, options)

    def staged_work(self, study: Study) -> tuple[int, int]:
        return study_work(study.options["plan"], study.seeds)

    def execute(self, study: Study, catalog: Catalog, train_missing: Any) -> list[str]:
        """Staged training (round r's masks come from round r − 1's tickets), not `train_missing`;
        options "device" (default auto), "on_round" and "progress" (callbacks) are passed on."""
        opts = study.options
        return run_rounds(opts["plan"], study.seeds, catalog, device=opts.get("device", "auto"),
                          on_round=opts.get("on_round"), progress=opts.get("progress"))

    def signature(self, catalog: Catalog, study: Study) -> dict[str, Any]:
        sig = lottery_signature(catalog, study.options["plan"], study.seeds)
        return {"setting": study.setting_name, "note": study.note, **sig}

    def figure(self, catalog: Catalog, study: Study, out: Path) -> Path:
        title = f"lottery tickets · {study.setting_name}" + (" (--quick)" if study.quick else "")
        return lottery_figure(catalog, study.options["plan"], study.seeds, out, title=title)


def make_plan(setting: Setting, options: dict[str, Any]) -> LotteryPlan:
    """Check the study's options against its setting (one-line SettingError on bad input)."""
    rounds = options.get("rounds", DEFAULT_ROUNDS)
    if not isinstance(rounds, int) or not 1 <= rounds <= 200:
        raise SettingError(f"--rounds {rounds!r}: must be an integer from 1 to 200")
    if setting.model.name != "mlp" or setting.optim.name == "lstsq":
        raise SettingError(f"model.name {setting.model.name!r}: lottery tickets need model 'mlp' trained "
                           "by sgd/adam/adamw")
    if setting.prune is None:
        setting = setting.with_overrides({"prune.control": "dense"})
    if setting.prune.round != 0 or setting.prune.data_order != "seed":
        raise SettingError("prune.round and prune.data_order are set by the study for each run; allowed to set: "
                           "prune.rate_hidden, prune.rate_output, prune.scope, prune.rewind_step")
    rewind = options.get("rewind_step", setting.prune.rewind_step)
    n_train = build_task(setting.task, [0], model_class(setting.model.name).input_kind).n_train
    total = total_steps(setting, n_train)
    if not isinstance(rewind, int) or not 0 <= rewind < total:
        raise SettingError(f"--rewind-step {rewind!r}: must be from 0 to {total - 1} (the run has {total} steps)")
    instability = options.get("instability", "ends")
    if instability not in INSTABILITY:
        raise SettingError(f"instability {instability!r}; allowed: {', '.join(INSTABILITY)}")
    return LotteryPlan(setting, rounds, rewind, instability)


LOTTERY = register_phenomenon(Lottery())
