"""The index as an atlas and the pages' reading order, without training: one card per registered
phenomenon (a new one included, with no report change), headline fields and signature rows in the
order a phenomenon declares, claims written with their comparison, audit evidence pre-filling the
checklist without answering it, and reports refreshed after the commands that add runs."""

from __future__ import annotations

import json
import re

import pytest

from phenolab.catalog import Catalog
from phenolab.phenomena import PHENOMENA, Canonical, Fields, Phenomenon, SignatureField
from phenolab.report import build_report
from phenolab.report.audits import CONFIRM, Audits, audit_command, audit_evidence
from phenolab.report.cards import headline, headline_keys, phenomenon_cards
from phenolab.report.data import ReportData, SettingRow
from phenolab.report.freshness import REGISTRY, refresh_if_present
from phenolab.report.hypotheses import HypothesisView, claim_text
from phenolab.report.pages import checklist_context
from phenolab.report.studies import Study, ordered_keys, summary_rows
from tests.report.test_incremental import add_runs, catalog, setting, state  # noqa: F401 - `catalog` is a fixture

F = SignatureField
FIELDS = Fields(F("t_train", "fit", "steps"), F("t_test", "generalized", "steps"), F("r* ticket", "per round", "acc"),
                F("phases", "runs per phase", "runs", phase=False), F("n_runs", "runs read", "runs", phase=False))
STAT = {"mean": 10.0, "sd": 1.0, "n": 3}


def test_fields_come_in_the_order_the_phenomenon_declares_them():
    stored = ["n_runs", "r02 ticket", "t_test", "extra", "r01 ticket", "t_train", "phases", "another"]  # sorted JSON
    # declared order; keys of a pattern field take its place in their own order; undeclared keys last, as given
    assert ordered_keys(stored, FIELDS) == ["t_train", "t_test", "r02 ticket", "r01 ticket", "phases", "n_runs",
                                            "extra", "another"]
    assert ordered_keys(stored, None) == stored
    rows = summary_rows({k: STAT for k in stored}, FIELDS)
    assert [r["field"] for r in rows][:3] == ["t_train", "t_test", "r02 ticket"]
    assert (rows[0]["unit"], rows[0]["description"]) == ("steps", "fit")


def test_the_grokking_study_page_reads_t_train_first():
    """A grokking summary as the catalog stores it (keys sorted) reads in grokking's declared order."""
    fields = PHENOMENA["grokking"].fields("gromov2023")
    stored = sorted(["ratio", "delay", "t_test", "t_train", "final_test_acc", "phases", "n_runs", "censored_test"])
    order = [r["field"] for r in summary_rows({k: STAT for k in stored}, fields)]
    assert order[:4] == ["t_train", "t_test", "delay", "ratio"] and order[-2:] == ["phases", "n_runs"]


def test_a_card_headline_is_the_phase_field_and_its_context_else_the_first_declared_fields():
    class Mapped(Phenomenon):
        phase_default = "peak_present"
        phase_context = ("peak", "rise", "absent")

    summary = {"rise": STAT, "peak_present": True, "peak": 5, "t_train": STAT}
    chosen = headline_keys(summary, FIELDS, Mapped.phase_default, Mapped.phase_context)
    assert chosen == ["peak_present", "peak", "rise"]
    summary = {"n_runs": 3, "phases": {"grokking": 3}, "t_test": STAT, "t_train": STAT, "r01 ticket": STAT,
               "r02 ticket": STAT, "undeclared": STAT}
    # at most 4, in declared order, no bookkeeping, nothing undeclared
    assert headline_keys(summary, FIELDS) == ["t_train", "t_test", "r01 ticket", "r02 ticket"]
    shown = headline({"t_train": {"mean": 10.0, "sd": 0.5, "n": 3}, "t_test": {"mean": None, "sd": None, "n": 0}},
                     FIELDS)
    assert [(h["field"], h["value"], h["n"], h["unit"]) for h in shown] == [("t_train", "10 ± 0.5", "3", "steps"),
                                                                          ("t_test", "—", "0", "steps")]


class _Toy(Phenomenon):
    """A phenomenon the report has never heard of."""

    name = "toy-ensembles"
    title = "averaged networks beat their members"
    canonical = (Canonical("toy_a", {}, "Someone et al. 2017, Table 2", "toy", published="NLL 0.31 → 0.25"),
                 Canonical("toy_b", {}, "Other 2020", "toy b", published="accuracy +2 pp"))

    def fields(self, setting_name: str) -> Fields:
        return FIELDS


def _study(sid: str, created: float, setting: str = "toy_a") -> Study:
    return Study(id=f"toy-ensembles:{setting}:{sid}", kind="phenomenon", title=f"toy-ensembles · {setting}",
                 setting_ids=[sid], seeds=[0, 1, 2], phenomenon="toy-ensembles", setting_name=setting,
                 created=created, summary={"t_train": STAT, "n_runs": 3})


def test_one_card_per_registered_phenomenon_a_new_one_included():
    registry = {**PHENOMENA, _Toy.name: _Toy()}
    old, new = _study("a" * 16, 1.0, "toy_a"), _study("b" * 16, 2.0, "toy_b")
    phase = Study(id="toy-ensembles:toy_b:phase", kind="phase", title="toy phase", setting_ids=["c" * 16], seeds=[0],
                  phenomenon="toy-ensembles")
    hyp = HypothesisView("h1", "members disagree", "disagree", "today", "{}", settings=["toy_b"])
    other = HypothesisView("h2", "weight norm", "wn", "today", "{}", settings=["gromov2023"])
    images = {new.slug: ["figures/new.png"], old.slug: ["figures/old.png"]}
    cards = phenomenon_cards(registry, [old, new], [phase], [hyp, other], lambda s: images.get(s, []),
                             lambda s: FIELDS)
    assert [c["name"] for c in cards] == sorted(registry)
    assert [c["settings"] for c in cards if c["name"] == "toy-ensembles"] == [["toy_a", "toy_b"]]
    toy = next(c for c in cards if c["name"] == "toy-ensembles")
    # the newest study's figure and headline, beside what that study's setting published
    assert toy["figure"] == "figures/new.png" and toy["newest"]["slug"] == new.slug
    assert [h["field"] for h in toy["headline"]] == ["t_train"] and toy["headline"][0]["value"] == "10 ± 1"
    assert (toy["published"], toy["published_setting"]) == ("accuracy +2 pp", "toy_b")
    assert [s["slug"] for s in toy["studies"]] == [new.slug, old.slug]  # newest first
    assert [p["slug"] for p in toy["phases"]] == [phase.slug]
    assert [(h["anchor"], h["name"], h["statement"]) for h in toy["hypotheses"]] == [(hyp.anchor, "disagree",
                                                                                      "members disagree")]
    # a phenomenon with no study: no figure, the command that makes one, its first canonical's published number
    for card in cards:
        if card["name"] != "toy-ensembles":
            assert card["newest"] is None and card["figure"] is None and card["headline"] == []
            assert card["command"] == f"phenolab reproduce {card['name']}"
            assert card["published"] == PHENOMENA[card["name"]].canonical[0].published
    assert "gromov2023" in PHENOMENA["grokking"].setting_names()
    assert [h["anchor"] for h in next(c for c in cards if c["name"] == "grokking")["hypotheses"]] == [other.anchor]


@pytest.mark.parametrize("raw, claim", [
    ({"statistic": "spearman", "threshold": 0.8}, "ρ ≥ 0.8"),
    ({"statistic": "spearman", "threshold": -0.8}, "ρ ≤ -0.8"),  # a negative claim: ρ must fall to −0.8
    ({"confounds": ["mean_abs_weight"], "threshold": 0.5}, "partial ρ ≥ 0.5"),
    ({"transform": "rescale layer 0 by 2", "tolerance": 0.1}, "(predicted − observed |ΔT|) / T's range < 0.1"),
    ({"share_moved_and_followed": 0.9, "threshold": 0.5, "needs": "≥ 0.5"}, "share of moves T followed ≥ 0.5"),
    ({"statistic": "peak", "needs": "≤ 1", "threshold": 1}, "peak distance ≤ 1"),
    ({"tolerance": 0.1}, "< 0.1"),
    ({"rho": 0.9}, ""),
])
def test_a_claim_is_written_with_its_comparison(raw, claim):
    assert claim_text(raw) == claim


def test_audit_evidence_prefills_the_confound_questions_without_answering_them():
    note = {"id": 7, "created": 0.0, "key": "k", "obj": {
        "phenomenon": "grokking", "setting": "gromov2023", "seeds": [0, 1], "setting_id": "s",
        "overrides": {"task.p": 13}, "options": {}, "size": "t_test / t_train",
        "rows": [{"kind": "base", "control": "the setting as it is", "outcome": "present", "size": STAT},
                 {"kind": "metric", "control": "loss", "outcome": "vanishes"},
                 {"kind": "init scale", "control": "× 4 (init_scale 4)", "outcome": "vanishes"},
                 {"kind": "regularization", "control": "weight decay 0", "outcome": "survives", "change": "+14 ± 2"},
                 {"kind": "variation", "control": "another operation: a − b", "outcome": "weakens"}]}}
    evidence = audit_evidence(note)
    assert [r["control"] for r in evidence["reassessment.3"]] == ["metric: loss", "init scale: × 4 (init_scale 4)",
                                                                  "regularization: weight decay 0"]
    assert [r["outcome"] for r in evidence["context.2"]] == ["weakens"]
    answers = {"context.1": {"answer": "Power et al. 2022", "created": 0.0},
               "reassessment.3": {"answer": "Yes, see the audit.", "created": 0.0}}
    cl = checklist_context(answers, evidence)
    assert [q["id"] for q in cl["answered"]] == ["context.1", "reassessment.3"]
    assert cl["answered"][1]["evidence"] == evidence["reassessment.3"]  # the user's answer, with the audit beside it
    assert [q["id"] for q in cl["prefilled"]] == ["context.2"] and cl["prefilled"][0]["answer"] is None
    assert cl["n_unanswered"] == 25 - 3 and cl["confirm"] == CONFIRM
    assert audit_command(note["obj"], quick=True) == ("phenolab audit grokking --setting gromov2023 --quick "
                                                      "--set task.p=13 --seeds 0-1")


def test_an_audit_belongs_to_the_study_of_its_setting_whatever_measures_it_added():
    base = {"task": {"name": "modular", "p": 13}, "model": {"name": "mlp"}, "measures": []}
    audited = {**base, "measures": [{"name": "brier", "params": {}}]}
    other = {**base, "task": {"name": "modular", "p": 17}}
    rows = {sid: SettingRow(sid, json.dumps(obj, sort_keys=True), "modular", "mlp", 0.0)
            for sid, obj in (("base", base), ("audited", audited), ("other", other))}
    notes = [{"id": i, "kind": "audit", "key": f"grokking:{sid}", "created": 0.0, "text": "",
              "obj": {"phenomenon": ph, "setting_id": sid, "rows": []}}
             for i, (ph, sid) in enumerate([("grokking", "audited"), ("double-descent", "other")])]
    audits = Audits(ReportData(None, rows, {}, {"audit": notes}))  # type: ignore[arg-type]

    def study(sid: str, ph: str = "grokking") -> Study:
        return Study(id=sid, kind="phenomenon", title="", setting_ids=[sid], seeds=[0], phenomenon=ph)

    assert audits.of(study("base"))["id"] == 0  # same setting but for the audit's measures
    assert audits.of(study("other")) is None  # another setting
    assert audits.of(study("base", "double-descent")) is None  # another phenomenon


def test_a_refresh_rebuilds_every_report_of_the_catalog_with_its_options_and_no_other(catalog, tmp_path):  # noqa: F811
    assert refresh_if_present(catalog) == [] and not (catalog.root / "report").exists()  # none asked for, none made
    default = build_report(catalog, max_figures=0).index.parent
    elsewhere = build_report(catalog, tmp_path / "elsewhere", max_figures=0, setting_pages=True).index.parent
    assert json.loads((catalog.root / REGISTRY).read_text())["reports"][-1] == str(elsewhere.resolve())
    other = Catalog(tmp_path / "other")
    add_runs(other, setting(0.4), [0])
    foreign = build_report(other, tmp_path / "foreign", max_figures=0).index.parent
    listed = json.loads((catalog.root / REGISTRY).read_text())
    (catalog.root / REGISTRY).write_text(json.dumps({"reports": [*listed["reports"], str(foreign)]}))
    untouched = state(foreign)

    add_runs(catalog, setting(0.4), [9])
    assert refresh_if_present(catalog) == [default / "index.html", elsewhere / "index.html"]
    lone = f"<td>{setting(0.4).id}-9</td>"
    for out in (default, elsewhere):
        assert any(lone in p.read_text() for p in out.glob("setting-*.html")), out
    assert len(list(elsewhere.glob("setting-*.html"))) == len(catalog.settings())  # --setting-pages kept
    assert len(list(default.glob("setting-*.html"))) == 1
    assert state(foreign) == untouched  # listed, but a report of another catalog
    before = state(default)
    refresh_if_present(catalog)  # nothing changed: nothing written
    assert state(default) == before


def test_a_report_that_cannot_be_refreshed_is_a_warning_not_a_failure(catalog, monkeypatch, capsys):  # noqa: F811
    from phenolab.cli._report import refresh_report
    from phenolab.report import freshness

    build_report(catalog, max_figures=0)
    refresh_report(catalog)
    assert re.search(r"report refreshed: .*/report/index\.html", capsys.readouterr().out)
    refresh_report(catalog, quiet=True)  # --json: stdout stays the JSON
    assert capsys.readouterr().out == ""

    def broken(_catalog):
        raise OSError("No space left on device")

    monkeypatch.setattr(freshness, "refresh_if_present", broken)
    refresh_report(catalog)
    err = capsys.readouterr().err
    assert "report not refreshed (No space left on device)" in err and "phenolab report --catalog" in err


def test_a_refresh_draws_few_new_figures_and_the_next_report_the_rest(catalog, tmp_path):  # noqa: F811
    out = tmp_path / "site"
    first = build_report(catalog, out, max_figures=10, new_figures=0)  # a refresh's cap, at its tightest
    drawn = [n for n in first.written if n.startswith("figures/") and n.endswith(("-curves.png", "-measures.png"))]
    assert drawn == [] and any(n.endswith("-recorded.png") for n in first.written)  # copies are not held back
    (lone,) = out.glob("setting-*.html")
    assert "Figure not drawn yet" in lone.read_text() and "<img" not in lone.read_text()
    second = build_report(catalog, out, max_figures=10)  # `phenolab report`: the rest
    assert f"figures/{lone.stem}-curves.png" in second.written
    assert "Figure not drawn yet" not in lone.read_text() and f'<img src="figures/{lone.stem}-curves.png"' in \
        lone.read_text()
