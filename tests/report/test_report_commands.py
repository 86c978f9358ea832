"""What other commands leave in the report: `phenolab audit`'s table on its study's page, with the
checklist's confound questions pre-filled for the researcher to confirm, and a report refreshed by the
commands that add runs or verdicts (`reproduce`, `train`, `sweep`, `hypothesis test`)."""

from __future__ import annotations

import json
import re
import shlex
from html import unescape

import pytest
import yaml

from phenolab import Catalog
from tests.helpers import TINY_GROK, invoke, ok
from tests.report.test_report import study_page


@pytest.mark.slow
def test_an_audit_is_shown_on_its_study_page_and_prefills_the_checklist(tmp_path):
    cat = tmp_path / "cat"
    ok("reproduce", "grokking", *TINY_GROK, "--seeds", "2", "--catalog", cat)
    ok("audit", "grokking", "--setting", "gromov2023", *TINY_GROK, "--seeds", "2", "--catalog", cat)
    out = tmp_path / "site"
    ok("report", "--catalog", cat, "--out", out)
    catalog = Catalog(cat)
    note = catalog.notes("audit")[-1]["obj"]
    html = study_page(out, catalog.notes("signature")[-1]["key"])
    table = html[html.index('<h2 id="audit">'):html.index("<h2>Exact settings")]
    rows = re.findall(r'<tr><td class="field">([^<]+)</td><td data-label="outcome"><span class="outcome [^"]*">'
                      r"([^<]+)</span>", table)
    assert [(unescape(c), unescape(o)) for c, o in rows] == [(f"{r['kind']}: {r['control']}", r["outcome"])
                                                             for r in note["rows"]]
    assert len(rows) > 10
    # the command shown plans exactly the audit that was run: everything is stored
    command = unescape(re.search(r'<pre class="cmd">(phenolab audit [^<]+)</pre>', table).group(1))
    plan = json.loads(invoke(*shlex.split(command)[1:], "--catalog", cat, "--dry-run", "--json").stdout)
    assert plan["to_train"] == 0 and plan["runs"] == plan["stored"] > 10
    # the confound questions are pre-filled from the audit, for the researcher to confirm: not answered
    assert "0 of 25 questions answered" in html
    assert html.count('<span class="confirm">from the audit — confirm</span>') == 2  # reassessment.3, context.2
    assert '<details class="unanswered-list"><summary>23 unanswered question(s)</summary>' in html
    # the audit's controls are folded into the study, like a sweep's points: no pages of their own
    assert not list(out.glob("setting-*.html")) and len(catalog.settings()) == plan["settings"] + 1


@pytest.mark.slow
def test_commands_that_add_runs_or_verdicts_refresh_an_existing_report(tmp_path):
    cat = tmp_path / "cat"
    first = ok("train", "gromov2023", *TINY_GROK, "--seeds", "0-0", "--catalog", cat, "--no-figure")
    assert "report refreshed" not in first and not (cat / "report").exists()  # no report: none is made
    ok("report", "--catalog", cat)
    index = cat / "report" / "index.html"
    out = ok("reproduce", "grokking", *TINY_GROK, "--seeds", "2", "--catalog", cat)
    assert f"report refreshed: {index}" in out and 'class="thumb"' in index.read_text()  # the card's figure
    res = invoke("sweep", "gromov2023", *TINY_GROK, "--grid", "optim.weight_decay=0,2", "--seeds", "1",
                 "--catalog", cat, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["trained"] == 2  # with --json, stdout is the JSON only
    assert "2 setting(s), 2 run(s)" in index.read_text()  # the sweep's family, refreshed
    hyp = tmp_path / "h.yaml"
    hyp.write_text(yaml.safe_dump({
        "name": "wn-tracks-train-acc", "statement": "The weight norm tracks training accuracy.",
        "measure": "weight_norm", "target": "train_acc",
        "scope": [{"setting": "gromov2023", "overrides": {"task.p": 13, "schedule.steps": 30,
                                                          "measures": ["weight_norm"]}, "seeds": 2}]}))
    ok("hypothesis", "register", hyp, "--catalog", cat)
    assert "The weight norm tracks" not in (cat / "report" / "hypotheses.html").read_text()  # not refreshed by register
    out = ok("hypothesis", "test", "wn-tracks-train-acc", "--run-missing", "--catalog", cat)
    assert "report refreshed" in out
    page = (cat / "report" / "hypotheses.html").read_text()
    assert "The weight norm tracks training accuracy." in page and "Not evaluated yet." not in page
    assert '<td class="claim" data-label="claim">ρ ≥ 0.8</td>' in page
