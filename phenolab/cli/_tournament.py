"""`phenolab tournament run|show|list|explanation`: explanations head to head on the same held-out runs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from phenolab.cli._common import CatalogOpt, JsonOpt, console, open_catalog, print_json, read_catalog, set_threads
from phenolab.cli._tables import fitted_table
from phenolab.cli._train import DeviceOpt, ThreadsOpt, train_missing

tournament_app = typer.Typer(help="Rank competing explanations of one phenomenon by what they predict on held-out "
                             "runs, against time and magnitude baselines; pre-registered in the hypothesis log.",
                             no_args_is_help=True)


@tournament_app.command("run")
def run_cmd(
    file: Annotated[Path, typer.Argument(help="Tournament file (.yaml/.toml/.json); see examples/tournaments/.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (registration, runs stored and to "
                                          "train, held-out seeds); train, register and write nothing.")] = False,
    no_train: Annotated[bool, typer.Option("--no-train", help="Train nothing: use the runs the catalog has.")] = False,
    figure: Annotated[bool, typer.Option("--figure/--no-figure", help="Draw predicted vs observed per "
                                         "competitor.")] = True,
    catalog: CatalogOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register the tournament if it is new (scope runs trained and every predictor fitted and frozen
    first; refused if a held-out run exists), train its held-out runs, score every competitor on
    them, print the leaderboard and append the result to the log whatever it says."""
    from phenolab.tournament import load_tournament
    from phenolab.tournament import plan as make_plan
    from phenolab.tournament import run as run_tournament

    t = load_tournament(file)
    if dry_run:
        from phenolab.execute.preflight import as_catalog

        print_plan(make_plan(as_catalog(catalog), t), as_json)  # reads the catalog if there is one
        return
    set_threads(threads)
    cat = open_catalog(catalog)
    trainer = None if no_train else (lambda settings, seeds: train_missing(settings, seeds, cat, device))
    result = run_tournament(cat, t, trainer, figure=figure)
    if as_json:
        print_json(result)
        return
    print_result(result)


@tournament_app.command("show")
def show_cmd(
    ref: Annotated[str, typer.Argument(help="Tournament id (or unique prefix, or name).")],
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The registered tournament, its frozen predictors, and its latest leaderboard."""
    from phenolab.tournament.log import TournamentLog, utc

    log = TournamentLog(read_catalog(catalog))
    reg = log.registration(ref)
    results = [r["payload"] for r in log.results(reg.id)]
    out = {"id": reg.id, "registered": utc(reg.time), "entry_hash": reg.entry_hash,
           "tournament": reg.tournament.model_dump(mode="json", exclude_defaults=True), "settings": reg.settings,
           "held_out_seeds": reg.held_out_seeds, "fitted_on": reg.fitted_on, "predictors_digest": reg.digest,
           "predictors": {k: v.model_dump(mode="json") for k, v in reg.predictors.items()}, "results": results}
    if as_json:
        print_json(out)
        return
    t = reg.tournament
    console.print(f"[bold]{reg.id}[/] {t.name} — {t.phenomenon}, registered {out['registered']}", highlight=False)
    console.print(t.statement, highlight=False)
    console.print(f"target {t.target.label} ({'every recorded step' if t.read == 'steps' else 'final value'} of "
                  f"each run) · fitted on {len(reg.fitted_on)} scope run(s) · held-out seeds {reg.held_out_seeds}",
                  highlight=False)
    for name, p in reg.predictors.items():
        console.print(f"  {name}: {p.form}, {'increasing' if p.increasing else 'decreasing'}, "
                      f"{len(p.x) or len(p.coef)} stored number(s), fitted on {p.n} point(s)", highlight=False)
    if not results:
        console.print("not scored yet: [bold]phenolab tournament run FILE[/]")
    for res in results[-1:]:
        console.print(f"\nscored {utc(res['scored'])} ({len(results)} result(s) recorded):")
        print_result(res)


@tournament_app.command("list")
def list_cmd(catalog: CatalogOpt = None, as_json: JsonOpt = False) -> None:
    """Every registered tournament, with its latest ranking and which explanations beat both baselines
    (an empty column is a negative result, and it stays listed)."""
    from phenolab.tournament import TournamentLog

    rows = TournamentLog(read_catalog(catalog)).listing()
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no tournaments registered; see [bold]phenolab tournament run --help[/]")
        return
    shown = [{"id": r["id"], "name": r["name"], "phenomenon": r["phenomenon"], "registered": r["registered"],
              "ranking": " > ".join(r["ranking"]) or "not scored",
              "beat both baselines": ", ".join(r["beat_both_baselines"]) or ("none" if r["ranking"] else ""),
              "superseded by": r["superseded_by"] or ""} for r in rows]
    console.print(fitted_table("tournaments", list(shown[0]), shown, console.width,
                               flexible=("name", "ranking", "beat both baselines")))


@tournament_app.command("explanation")
def explanation_cmd(
    name: Annotated[str, typer.Argument(help="An explanation's name (e.g. weight-norm) or a baseline's.")],
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One explanation scored in every tournament that names it, in one table (its latest result in each)."""
    from phenolab.tournament import TournamentLog

    log = TournamentLog(read_catalog(catalog))
    latest = {r["hypothesis_id"]: r["payload"] for r in log.results()}
    rows = []
    for reg in log.registrations():
        res = latest.get(reg.id)
        if res is None or name not in res["scores"]["competitors"]:
            continue
        s = res["scores"]
        c = s["competitors"][name]
        rows.append({"tournament": reg.tournament.name, "id": reg.id, "phenomenon": reg.tournament.phenomenon,
                     "target": res["target"], "value": c["value"], "direction": c["direction"],
                     "rank": f"{s['ranking'].index(name) + 1} of {len(s['ranking'])}",
                     s["rank_by"]: c[s["rank_by"]], "skill_vs_time": c["skill"].get("time"),
                     "skill_vs_magnitude": c["skill"].get("magnitude"), "spearman": c["spearman"],
                     "partial": c.get("partial"), "breadth": c.get("breadth"),
                     "intervention": (c.get("intervention") or {}).get("status")})
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(f"no scored tournament names {name!r}")
        return
    shown = [{"tournament": r["tournament"], "id": r["id"], "phenomenon": r["phenomenon"], "target": r["target"],
              "value": r["value"], "rank": r["rank"], "error": _num(r.get("mae", r.get("rmse"))),
              "skill vs time": _num(r["skill_vs_time"]), "skill vs magnitude": _num(r["skill_vs_magnitude"]),
              "ρ": _num(r["spearman"]), "partial ρ": _num(r["partial"]),
              "breadth": f"{r['breadth']['n']}/{r['breadth']['of']}" if r["breadth"] else "—",
              "intervention": (r["intervention"] or "—").replace("not_run", "—")} for r in rows]
    console.print(fitted_table(f"{name} across tournaments", list(shown[0]), shown, console.width,
                               flexible=("tournament", "value")))


# ---- printing ---------------------------------------------------------------------------------
def print_plan(p: Any, as_json: bool) -> None:
    t = p.tournament
    out = {"id": t.id, "name": t.name, "registered": p.registration is not None,
           "scope": {"stored": len(p.scope_stored), "to_train": p.scope_missing},
           "held_out": {"stored": len(p.held_out_stored), "to_train": p.held_out_missing,
                        "seeds": t.held_out_seeds()},
           "competitors": [{"name": c.name, "role": c.role, "value": c.value.label, "direction": c.direction,
                            "fit": c.value.fit} for c in t.competitors()],
           "blocked": p.blocked, "blocking_runs": p.held_out_stored if p.blocked else []}
    if as_json:
        print_json(out)
        return
    state = "registered" if p.registration is not None else "new: it would be registered after the scope runs"
    console.print(f"tournament [bold]{t.id}[/] {t.name} ({state})", highlight=False)
    console.print(f"scope: {len(p.scope_stored)} run(s) stored, {len(p.scope_missing)} to train", highlight=False)
    console.print(f"held-out: {len(p.held_out_stored)} run(s) stored, {len(p.held_out_missing)} to train, seeds "
                  f"{t.held_out_seeds()}", highlight=False)
    for c in t.competitors():
        console.print(f"  {c.role} {c.name}: {c.value.label}, {c.direction}, {c.value.fit}", highlight=False)
    if p.blocked:
        console.print(f"[bold red]registration would be refused[/]: held-out run(s) exist: "
                      f"{', '.join(p.held_out_stored)}", highlight=False, soft_wrap=True)
    console.print("dry run: nothing trained, registered or written")


def print_result(result: dict[str, Any]) -> None:
    """The leaderboard, the significant pairwise wins, and what each source claims beside it."""
    s = result["scores"]
    metric = s["rank_by"]
    rows = []
    for rank, name in enumerate(s["ranking"], 1):
        c = s["competitors"][name]
        ci = c["boot"][metric]["ci95"]
        skill = {b: _num(c["skill"].get(b)) if b in c["skill"] else "—" for b in ("time", "magnitude")}
        breadth = c.get("breadth")
        interv = c.get("intervention") or {}
        rows.append({"competitor": f"{rank}. {name}" + ("†" if c.get("reads_test_labels") else ""),
                     "role": c["role"], "value (direction)": f"{c['value']} ({direction(c)})",
                     f"{metric} [95% CI]": f"{c[metric]:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""),
                     "ρ": _num(c["spearman"]), "skill vs time": skill["time"], "skill vs magnitude": skill["magnitude"],
                     "partial ρ": _num(c.get("partial")) if c["role"] == "explanation" else "—",
                     "intervention": interv.get("status", "—").replace("not_run", "—"),
                     "breadth": f"{breadth['n']}/{breadth['of']}" if breadth else "—",
                     "beats (Holm)": ", ".join(c["beats"]) or "—"})
    title = (f"{result['name']} ({result['tournament_id']}): {result['target']} on {s['n_runs']} held-out run(s), "
             f"{s['n_points']} point(s)")
    console.print(fitted_table(title, list(rows[0]), rows, console.width,
                               flexible=("value (direction)", "beats (Holm)")))
    groups = [{"held-out group": g, **{n: f"{errs[n]:.4f}" for n in s["ranking"]}} for g, errs in s["groups"].items()]
    console.print(fitted_table(f"{metric} per held-out group", list(groups[0]), groups, console.width,
                               flexible=("held-out group",)))
    console.print(f"  {metric}: error of the predicted {result['target']} (lower is better); CI and p from "
                  f"{s['n_boot']} bootstrap resamples of {s['n_seed_clusters']} held-out (group, seed) runs; ρ: "
                  "Spearman of prediction and observation; skill: 1 − error / baseline error; partial ρ: of the "
                  "value and the target given time and magnitude; breadth: held-out groups where it beats both "
                  f"baselines; beats: paired bootstrap, Holm-adjusted p < {s['alpha']:g}", highlight=False)
    fallback = {n: s["competitors"][n]["undefined"] for n in s["ranking"] if s["competitors"][n].get("undefined")}
    if fallback:
        console.print("  undefined values, predicted as the scope's mean target: " + ", ".join(
            f"{n} {k} point(s)" for n, k in fallback.items()), highlight=False)
    if any(s["competitors"][n].get("reads_test_labels") for n in s["ranking"]):
        console.print("  †: reads the held-out runs' test labels (the others do not)", highlight=False)
    for name in s["ranking"]:
        c = s["competitors"][name]
        if c["role"] != "explanation":
            continue
        verdict = verdict_line(c)
        claim = f" — claims: {c['claim']}" if c.get("claim") else ""
        console.print(f"  {name} ({c['source'] or 'no source given'}): {verdict}{claim}", highlight=False)
    if result.get("figure"):
        console.print(f"figure: {result['figure']}", highlight=False)


def verdict_line(c: dict[str, Any]) -> str:
    """Whether an explanation beat both baselines, on the point estimates and significantly (Holm)."""
    if not c.get("beats_both_baselines"):
        return "does not beat both baselines"
    sig = [b for b in ("time", "magnitude") if b in c.get("beats", [])]
    how = "both" if len(sig) == 2 else f"only {sig[0]}" if sig else "neither"
    return f"beats both baselines ({'significantly' if len(sig) == 2 else f'significantly: {how}'})"


def direction(c: dict[str, Any]) -> str:
    """An explanation's claimed direction; a baseline's, as its scope fit found it."""
    if c["direction"] != "auto":
        return "+" if c["direction"] == "positive" else "−"
    return "fitted " + ("+" if c.get("increasing", True) else "−")


def _num(v: Any) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3f}"


def register(app: typer.Typer) -> None:
    """Add the `tournament` command group to the app."""
    app.add_typer(tournament_app, name="tournament")
