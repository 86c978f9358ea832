"""`phenolab hypothesis register|list|test|show|verify`: pre-registered explanations and their verdicts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from phenolab.cli._common import (
    CatalogOpt,
    JsonOpt,
    console,
    err_console,
    open_catalog,
    print_json,
    read_catalog,
    set_threads,
)
from phenolab.cli._report import refresh_report
from phenolab.cli._train import DeviceOpt, ThreadsOpt, train_missing

STATUS_STYLE = {"supported": "bold green", "refuted": "bold red", "inconclusive": "bold yellow",
                "untested": "dim", "pass": "green", "fail": "red", "not_run": "dim"}

hypothesis_app = typer.Typer(help="Register explanations before the deciding runs exist, then test them: "
                             "in-sample, held-out, confounds, interventions.", no_args_is_help=True)


def tests_table(result: dict[str, Any]) -> Table:
    """The four numbers of a verdict, each with its n and spread over seeds."""
    from phenolab.hypotheses.verdict import TESTS

    table = Table(title=f"{result['name']} ({result['hypothesis_id']})")
    for col in ("test", "status", "mean ± sd", "n", "needs"):
        table.add_column(col, justify="left" if col in ("test", "status") else "right")
    for key in TESTS:
        test = result["tests"][key]
        mean, sd = test.get("mean"), test.get("sd")
        value = "—" if mean is None else f"{mean:.3f} ± {sd:.3f}"
        need = test.get("threshold", test.get("tolerance"))
        need = "" if need is None else (f"< {need:g}" if key == "intervention" else
                                        (f"≥ {need:g}" if need > 0 else f"≤ {need:g}"))
        need = test.get("needs", need)  # a regularizer's "≥ share of moved cases"
        style = STATUS_STYLE.get(test["status"], "")
        table.add_row(key.replace("_", "-"), f"[{style}]{test['status']}[/]", value, str(test.get("n", 0)), need)
    return table


def print_verdict(result: dict[str, Any]) -> None:
    from phenolab.hypotheses.verdict import LABELS, TESTS

    console.print(tests_table(result))
    for key in TESTS:
        console.print(f"  {LABELS[key]}: {result['tests'][key]['detail']}", highlight=False)
    style = STATUS_STYLE[result["status"]]
    console.print(f"verdict: [{style}]{result['status']}[/]", highlight=False)


@hypothesis_app.command("register")
def register_cmd(
    file: Annotated[Path, typer.Argument(help="Hypothesis file (.yaml/.toml/.json); see examples/hypotheses/.")],
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Append a hypothesis to the catalog's hash-chained log. Its held-out seeds are derived from its
    hash now, so no held-out run can have been chosen before; it can never be edited, only superseded."""
    from phenolab.hypotheses import HypothesisLog, load_hypothesis

    hyp = load_hypothesis(file)
    reg, new = HypothesisLog(open_catalog(catalog)).register(hyp)
    out = {"id": reg.id, "name": hyp.name, "new": new, "registered": _utc(reg.time),
           "held_out_seeds": reg.held_out_seeds, "entry_hash": reg.entry_hash, "supersedes": hyp.supersedes}
    if as_json:
        print_json(out)
        return
    what = "registered" if new else "already registered (unchanged content, same id)"
    console.print(f"{what}: [bold]{reg.id}[/] {hyp.name} at {out['registered']}")
    console.print(f"held-out seeds (from the hash): {reg.held_out_seeds or 'none (no held-out settings)'}")
    console.print(f"next: [bold]phenolab hypothesis test {reg.id} --run-missing[/]")


@hypothesis_app.command("list")
def list_cmd(catalog: CatalogOpt = None, as_json: JsonOpt = False) -> None:
    """Every registered hypothesis with its latest verdict (refuted ones too)."""
    from phenolab.hypotheses import HypothesisLog

    rows = HypothesisLog(read_catalog(catalog)).listing()
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no hypotheses registered; see [bold]phenolab hypothesis register --help[/]")
        return
    table = Table(title="hypotheses")
    for col in ("id", "name", "registered", "verdict", "failed", "superseded by"):
        table.add_column(col, overflow="fold")
    for r in rows:
        style = STATUS_STYLE.get(r["verdict"], "")
        table.add_row(r["id"], r["name"], r["registered"], f"[{style}]{r['verdict']}[/]", ", ".join(r["failed"]),
                      r["superseded_by"] or "")
    console.print(table)


@hypothesis_app.command("test")
def test_cmd(
    ref: Annotated[str, typer.Argument(help="Hypothesis id (or unique prefix, or name).")],
    run_missing: Annotated[bool, typer.Option("--run-missing", help="Train the scope and held-out runs the "
                                              "catalog lacks (held-out ones start after registration).")] = False,
    catalog: CatalogOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the four tests (in-sample, held-out, confound, intervention), print the four numbers and
    the verdict, and append the verdict to the log whatever it is."""
    from phenolab.hypotheses import evaluate_registered

    set_threads(threads)
    cat = read_catalog(catalog)  # a hypothesis is tested in the catalog it was registered in
    if run_missing:
        open_catalog(cat)  # which training will write
    trainer = (lambda settings, seeds: train_missing(settings, seeds, cat, device)) if run_missing else None
    result = evaluate_registered(cat, ref, trainer)
    if as_json:
        print_json(result)
    else:
        print_verdict(result)
    refresh_report(cat, quiet=as_json)


@hypothesis_app.command("show")
def show_cmd(
    ref: Annotated[str, typer.Argument(help="Hypothesis id (or unique prefix, or name).")],
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The registered hypothesis, its frozen setting ids, held-out seeds and every verdict."""
    from phenolab.hypotheses import HypothesisLog

    log = HypothesisLog(read_catalog(catalog))
    reg = log.registration(ref)
    verdicts = [v["payload"] for v in log.verdicts(reg.id)]
    out = {"id": reg.id, "registered": _utc(reg.time), "entry_hash": reg.entry_hash,
           "hypothesis": reg.hypothesis.model_dump(mode="json", exclude_defaults=True),
           "settings": reg.settings, "held_out_seeds": reg.held_out_seeds, "verdicts": verdicts}
    if as_json:
        print_json(out)
        return
    hyp = reg.hypothesis
    console.print(f"[bold]{reg.id}[/] {hyp.name} — registered {out['registered']}")
    console.print(hyp.statement, highlight=False)
    rel = hyp.relation
    claim = (f"ρ over {rel.over}, {rel.direction}, threshold {rel.threshold:g}" if rel.statistic == "spearman"
             else f"peak of M within {rel.peak_steps} grid step(s) of T's {'max' if rel.sign > 0 else 'min'}")
    across = f"{rel.seed_statistic} across seeds of " if rel.across == "seeds" else ""
    console.print(f"measure {across}{hyp.measure_key} · target {'seed-mean ' if across else ''}{hyp.target_key} · "
                  f"{claim}{' over settings' if across and rel.statistic == 'peak' else ''}", highlight=False)
    console.print(f"confounds: {', '.join(hyp.confound_keys) or 'none'} · interventions: "
                  f"{', '.join(i.label for i in hyp.interventions) or 'none'}")
    console.print(f"scope settings: {reg.settings['scope']}\nheld-out settings: {reg.settings['held_out']} "
                  f"seeds {reg.held_out_seeds}")
    if "regularizer" in reg.settings:
        console.print(f"regularizer settings (per scope setting and value): {reg.settings['regularizer']}")
    if hyp.supersedes:
        console.print(f"supersedes {hyp.supersedes}")
    if not verdicts:
        console.print(f"untested: [bold]phenolab hypothesis test {reg.id} --run-missing[/]")
    for v in verdicts:
        console.print(f"\ntested {_utc(v['evaluated'])}:")
        print_verdict(v)


@hypothesis_app.command("verify")
def verify_cmd(catalog: CatalogOpt = None, as_json: JsonOpt = False) -> None:
    """Recompute the log's hash chain; exit 1 and name the first problem if any entry was edited,
    removed or reordered. Publish the head hash to pin the history."""
    from phenolab.hypotheses import HypothesisLog

    check = HypothesisLog(read_catalog(catalog)).verify()
    if as_json:
        print_json({"ok": check.ok, "entries": check.entries, "head": check.head, "problems": check.problems})
    elif check.ok:
        console.print(f"[green]{check.message()}[/]", highlight=False)
    else:
        err_console.print(f"[bold red]error:[/] {check.message()}", highlight=False, soft_wrap=True)
        for p in check.problems[1:]:
            err_console.print(f"  also: {p}", highlight=False, soft_wrap=True)
    if not check.ok:
        raise typer.Exit(1)


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(t)))


def register(app: typer.Typer) -> None:
    """Add the `hypothesis` command group to the app."""
    app.add_typer(hypothesis_app, name="hypothesis")
