"""The position paper's Figure 4: a "unified theory" of double descent and grokking through the
number of prime parameters, reproduced and then tested as a pre-registered hypothesis.

The paper (§3.2, Fig. 4, App. A) plots test performance (top) and the count of parameters whose
rounded value is prime (bottom) for double descent (Greydanus & Kobak 2024) and grokking (Power
et al. 2022), and dismisses the match as an artifact of parameter magnitude. Here the figure is
drawn from the catalog, and each panel's claim is registered in the hypothesis log *before* its
held-out runs exist, then tested in-sample, held-out, against magnitude confounds and under
function-preserving rescalings. The verdicts are measured, not assumed.

It is a study of its own, not a phenomenon: it spans two phenomena and reads their canonical
settings by name from the registry. `--quick` swaps in faster settings and says so on the figure:
grokking = Gromov's MLP (gromov2023) at p = 31, 600 steps; double descent = greydanus_kobak2024 at
250 of its 500 epochs and its `--quick` widths (the peak survives). The full path uses
`greydanus_kobak2024` as registered and `power2022` for its `--quick` budget (the first 10⁴ of 10⁵
steps: no decay follows the warmup, so they are the full runs' own steps, and power2022 groks by
~3·10³ steps).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from phenolab.catalog import Catalog
from phenolab.figures import pyplot, save_figure
from phenolab.hypotheses import Hypothesis, HypothesisLog, evaluate_registered
from phenolab.hypotheses.spec import HeldOutGroup, Intervention, MeasureRef, Relation, ScopeGroup
from phenolab.hypotheses.statistics import summary
from phenolab.phenomena import Fields, Options, Reproducible, Signature, SignatureField, Study, Trainer, get_phenomenon
from phenolab.settings import SettingError

PRIME_SCALE = 10  # round(10·|w|): at scale 1 almost no weight of these nets rounds past 1
CONFOUNDS_GROKKING = ("mean_abs_weight", "weight_norm", "step")
CONFOUNDS_DD = ("mean_abs_weight", "weight_norm", "parameter_count")
INTERVENTIONS = (Intervention(kind="rescale", layer=0, factors=(0.5, 2.0)), Intervention(kind="permute", layer=0))
PANELS = ("double_descent", "grokking")
SETTING = "paper"  # the study's one "setting": the paper's panels (or, with --quick, faster stand-ins)
TESTS = ("in_sample", "held_out", "confound", "intervention")


def grokking_steps() -> int:
    """power2022's `--quick` budget, so the grokking panel shares the grokking study's runs (the full
    10⁵ steps would be ~10 h for 10 seeds on a 2-core CPU)."""
    return int(get_phenomenon("grokking").canonical_setting("power2022").quick["schedule.steps"])


def dd_widths(quick: bool) -> tuple[int, ...]:
    """The double-descent study's widths of greydanus_kobak2024 (its `--quick` grid with `quick`)."""
    sweep = get_phenomenon("double-descent").canonical_setting("greydanus_kobak2024").sweep  # type: ignore[attr-defined]
    return tuple(int(w) for w in (sweep.quick_values if quick else sweep.values))


def full_note() -> str:
    return f"grokking = power2022's first {grokking_steps():,} of 100,000 steps (no decay: the same trajectory)"

def panel_hypotheses(seeds: list[int], quick: bool) -> dict[str, Hypothesis]:
    """The two claims of the figure, one per panel, as hypotheses over these seeds."""
    tag = f"{'-quick' if quick else ''}-seeds-{min(seeds)}-{max(seeds)}-n{len(seeds)}"
    prime = MeasureRef(name="prime_parameter_count", params={"scale": PRIME_SCALE})
    n_held = len(seeds)
    if quick:
        grok_over: dict[str, Any] = {"task.p": 31, "task.train_fraction": 0.3, "schedule.steps": 600,
                                     "eval.points": 40, "eval.every": None}
        grok = ScopeGroup(setting="gromov2023", overrides=grok_over, seeds=seeds)
        grok_held = (HeldOutGroup(setting="gromov2023", overrides={**grok_over, "task.train_fraction": 0.5},
                                  n_seeds=n_held),
                     HeldOutGroup(setting="gromov2023", overrides={**grok_over, "task.op": "-"}, n_seeds=n_held))
        dd_over: dict[str, Any] = {"schedule.epochs": 250}
        widths = dd_widths(quick=True)
    else:
        grok_over = {"schedule.steps": grokking_steps()}
        grok = ScopeGroup(setting="power2022", overrides=grok_over, seeds=seeds)
        grok_held = (HeldOutGroup(setting="power2022", overrides={**grok_over, "task.op": "-"}, n_seeds=n_held),)
        dd_over, widths = {}, dd_widths(quick=False)
    dd = ScopeGroup(setting="greydanus_kobak2024", overrides=dd_over, sweep={"model.width": list(widths)}, seeds=seeds)
    dd_held = (HeldOutGroup(setting="greydanus_kobak2024", overrides={**dd_over, "task.label_noise": 0.3},
                            sweep={"model.width": list(widths[::2] if quick else widths[::3])}, n_seeds=n_held),)
    source = "position paper Fig. 4, App. A"
    return {
        "grokking": Hypothesis(
            name="figure4-prime-grokking" + tag, source=source,
            statement=f"The count of parameters with prime round({PRIME_SCALE}·|w|) tracks test accuracy while a "
                      "network groks: Spearman ρ ≥ 0.8 over the steps of each run.",
            measure=prime, target="test_acc", relation=Relation(over="steps", direction="positive", threshold=0.8),
            scope=(grok,), held_out=grok_held, confounds=CONFOUNDS_GROKKING, interventions=INTERVENTIONS),
        "double_descent": Hypothesis(
            name="figure4-prime-double-descent" + tag, source=source,
            statement=f"The count of parameters with prime round({PRIME_SCALE}·|w|) tracks test accuracy across the "
                      "widths of a double-descent sweep: Spearman ρ ≥ 0.8 over widths, per seed.",
            measure=prime, target="test_acc", relation=Relation(over="settings", direction="positive", threshold=0.8),
            scope=(dd,), held_out=dd_held, confounds=CONFOUNDS_DD, interventions=INTERVENTIONS),
    }


F = SignatureField
FIELDS = Fields(
    F("* verdict", "the latest verdict of the panel's hypothesis, and which of its tests failed"),
    F("*: in-sample", "Spearman ρ of the prime count with test accuracy on the runs it was made on", "ρ"),
    F("*: held-out", "the same on held-out settings whose runs started after registration", "ρ"),
    F("*: confound", "partial ρ given parameter magnitude (mean |w|, weight norm) and steps or parameter count",
      "ρ"),
    F("*: intervention", "how far the count moves under rescalings and permutations that leave the function "
      "unchanged", "share"),
)


@dataclass
class Figure4Study(Study):
    hypotheses: dict[str, Hypothesis] = field(default_factory=dict)  # panel -> its claim


class Figure4(Reproducible):
    name = "figure4"
    title = ("the position paper's Figure 4: prime parameters 'explain' double descent and grokking, tested as "
             "pre-registered hypotheses")

    def study(self, setting_name: str, seeds: list[int], overrides: dict[str, Any], quick: bool = False,
              options: Options | None = None) -> Figure4Study:
        if overrides:
            raise SettingError("figure4 takes no --set overrides: its settings are the paper's (or --quick's)")
        hyps = panel_hypotheses(seeds, quick)
        settings = [s for p in PANELS for group in hyps[p].scope_settings() for s in group]
        note = ("--quick: grokking = gromov2023 at p=31, 600 steps (the paper: power2022); double descent = "
                "greydanus_kobak2024 at 250 of 500 epochs, 7 of 19 widths") if quick else full_note()
        return Figure4Study(self.name, SETTING, settings, seeds, quick, note, self.parse_options(options),
                            hypotheses=hyps)

    def train(self, study: Study, trainer: Trainer) -> list[str]:
        """Train the panels, register each claim, then train its held-out runs and test it."""
        assert isinstance(study, Figure4Study)
        written: list[str] = []

        def train(settings, seeds) -> list[str]:
            ids = trainer.missing(settings, seeds)
            written.extend(ids)
            return ids

        train(study.settings, study.seeds)
        log = HypothesisLog(trainer.catalog)
        for panel in PANELS:
            reg, _ = log.register(study.hypotheses[panel])
            evaluate_registered(trainer.catalog, reg.id, train)
        return written

    def signature(self, catalog: Catalog, study: Study) -> Signature:
        """Each panel's four numbers and verdict (the latest recorded)."""
        assert isinstance(study, Figure4Study)
        log = HypothesisLog(catalog)
        out: dict[str, Any] = {}
        per_run = []
        for panel in PANELS:
            hyp = study.hypotheses[panel]
            verdicts = log.verdicts(hyp.id)
            if not verdicts:
                out[f"{panel}: verdict"] = "untested"
                continue
            v = verdicts[-1]["payload"]
            for test in TESTS:
                t = v["tests"][test]
                out[f"{panel}: {test.replace('_', '-')}"] = {"mean": t.get("mean"), "sd": t.get("sd"),
                                                              "n": t.get("n", 0)}
            failed = [k for k in TESTS if v["tests"][k]["status"] == "fail"]
            out[f"{panel}: verdict"] = v["status"] + (f" (failed: {', '.join(failed)})" if failed else "")
            per_run.append({"panel": panel, "hypothesis_id": hyp.id, "status": v["status"], "reason": v["reason"]})
        return Signature(study.setting_name, out, per_run, study.note,
                         extra={"hypotheses": {p: study.hypotheses[p].id for p in PANELS}})

    def fields(self, setting_name: str) -> Fields:
        return FIELDS

    def figure(self, catalog: Catalog, study: Study, out: Path) -> Path:
        assert isinstance(study, Figure4Study)
        hyps = study.hypotheses
        prime_key = hyps["grokking"].measure_key
        fig, axes = pyplot().subplots(2, 2, figsize=(10, 6.5), sharex="col")
        _dd_panel(catalog, hyps["double_descent"], study.seeds, prime_key, axes[:, 0])
        _grokking_panel(catalog, hyps["grokking"], study.seeds, prime_key, axes[:, 1])
        log = HypothesisLog(catalog)
        for ax, panel in ((axes[1, 0], "double_descent"), (axes[1, 1], "grokking")):
            verdicts = log.verdicts(hyps[panel].id)
            if verdicts:
                v = verdicts[-1]["payload"]
                rho = v["tests"]["in_sample"]
                text = f"in-sample ρ = {rho['mean']:.2f} ± {rho['sd']:.2f}; verdict: {v['status']}" if rho.get(
                    "mean") is not None else f"verdict: {v['status']}"
                ax.text(0.02, 0.95, text, transform=ax.transAxes, va="top", fontsize=8,
                        bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0})
        title = "Figure 4 (position paper): prime parameters 'explain' double descent and grokking"
        title += f"  (mean ± sd over {len(study.seeds)} seeds)"
        if study.note:
            title += "\n" + textwrap.fill(study.note, 130)
        fig.suptitle(title, fontsize=9)
        return save_figure(fig, out)


def _dd_panel(catalog: Catalog, hyp: Hypothesis, seeds: list[int], key: str, axes) -> None:
    rows = []
    for s in hyp.scope_settings()[0]:
        c = catalog.curves(setting_id=s.id, metrics=["test_acc", "train_acc", key])
        c = c[c["seed"].isin(seeds)]
        if c.empty:
            continue
        last = c[c["step"] == c["step"].max()]
        for metric, g in last.groupby("metric"):
            vals = 1 - g["value"] if metric.endswith("_acc") else g["value"]
            rows.append({"width": s.model.width, "metric": metric, **_ms(vals)})
    df = pd.DataFrame(rows)
    top, bottom = axes
    for metric, label in (("test_acc", "test error"), ("train_acc", "train error")):
        _band(top, df[df["metric"] == metric] if len(df) else df, "width", label)
    _band(bottom, df[df["metric"] == key] if len(df) else df, "width", "prime parameters", color="C3")
    top.set_title(f"double descent · {hyp.scope[0].setting}", fontsize=9)
    top.set_ylabel("error")
    bottom.set_ylabel(f"# prime round({PRIME_SCALE}|w|)")
    bottom.set_xlabel("hidden units h (40→h→h→10)")
    for ax in axes:
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
    top.legend(frameon=False, fontsize=8)


def _grokking_panel(catalog: Catalog, hyp: Hypothesis, seeds: list[int], key: str, axes) -> None:
    s = hyp.scope_settings()[0][0]
    c = catalog.curves(setting_id=s.id, metrics=["test_acc", "train_acc", key])
    c = c[c["seed"].isin(seeds)]
    top, bottom = axes
    for metric, label in (("train_acc", "train accuracy"), ("test_acc", "test accuracy")):
        stats = c[c["metric"] == metric].groupby("step")["value"].agg(["mean", "std"]).reset_index()
        _band(top, stats.rename(columns={"std": "sd"}), "step", label)
    stats = c[c["metric"] == key].groupby("step")["value"].agg(["mean", "std"]).reset_index()
    _band(bottom, stats.rename(columns={"std": "sd"}), "step", "prime parameters", color="C3")
    top.set_title(f"grokking · {hyp.scope[0].setting}", fontsize=9)
    top.set_ylabel("accuracy")
    bottom.set_ylabel(f"# prime round({PRIME_SCALE}|w|)")
    bottom.set_xlabel("step")
    for ax in axes:
        ax.set_xscale("symlog", linthresh=10)
        ax.grid(alpha=0.3)
    top.legend(frameon=False, fontsize=8)


def _ms(vals: pd.Series) -> dict[str, float]:
    s = summary(vals.tolist())
    return {"mean": s["mean"], "sd": s["sd"]}


def _band(ax, df: pd.DataFrame, x: str, label: str, color: str | None = None) -> None:
    if df is None or len(df) == 0:
        ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center")
        return
    df = df.sort_values(x)
    sd = df["sd"].fillna(0.0)
    line, = ax.plot(df[x], df["mean"], label=label, color=color)
    ax.fill_between(df[x], df["mean"] - sd, df["mean"] + sd, color=line.get_color(), alpha=0.25, linewidth=0)


FIGURE4 = Figure4()
