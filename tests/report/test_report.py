"""`phenolab report` and `phenolab checklist` on real runs: every study page, figure, signature,
exact setting and command is derived from the catalog; whatever a user typed is escaped."""

from __future__ import annotations

import json
import re
import shlex
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
import yaml

from phenolab import Catalog
from phenolab.measures import MEASURE_REGISTRY, register_measure
from phenolab.phenomena import PHENOMENA
from phenolab.report.checklist import QUESTIONS, grouped
from phenolab.settings import parse_assignments, resolve_setting
from tests.helpers import TINY_GROK, invoke, ok, user_error

SCRIPT = '<script>window.__pwned = 1; document.title = "PWNED"</script>'
IMG = '<img src=x onerror="window.__pwned = 2">'
PAYLOAD = SCRIPT + IMG


def _label_measure(params, ctx, label: str = "") -> torch.Tensor:
    """A measure taking free text, so a setting file can carry text into curve names."""
    k = next(iter(params.values())).shape[0]
    return torch.full((k,), float(len(label)), dtype=torch.float64)


def build_catalog(root: Path, payload: bool = False) -> Path:
    """A catalog of real runs: a grokking study (signature note + figure) and a plain setting with a
    measure; with `payload`, script payloads in a setting file, a study note, hypotheses and answers."""
    cat = root / "cat"
    ok("reproduce", "grokking", *TINY_GROK, "--seeds", "2", "--catalog", cat)
    if not payload:
        ok("train", "gromov2023", "--set", "task.p=11", "--set", "schedule.steps=20", "--set",
           'measures=["weight_norm"]', "--seeds", "0-2", "--catalog", cat, "--no-figure")
        return cat
    if "report_test_label" not in MEASURE_REGISTRY:
        register_measure("report_test_label", "length of a text parameter (report escaping tests)")(_label_measure)
    setting_file = root / "payload.yaml"
    setting_file.write_text(yaml.safe_dump({
        "task": {"name": "modular", "p": 11, "train_fraction": 0.5},
        "model": {"name": "mlp", "width": 16, "depth": 1},
        "schedule": {"steps": 10},
        "eval": {"points": 4},
        "measures": [{"name": "report_test_label", "params": {"label": PAYLOAD}}],
    }))
    ok("train", setting_file, "--seeds", "0-1", "--catalog", cat, "--no-figure")
    catalog = Catalog(cat)
    sid = str(catalog.settings()["setting_id"].iloc[-1])
    catalog.add_note("signature", f"grokking:{PAYLOAD}:{sid}", {
        "phenomenon": PAYLOAD, "setting": PAYLOAD, "setting_id": sid, "seeds": [0, 1], "note": PAYLOAD,
        "figure": str(root / f"{IMG}.png"), "summary": {PAYLOAD: {"mean": 1.0, "sd": 0.0, "n": 2}, "text": PAYLOAD},
    })
    catalog.add_note("hypothesis", "h-payload", {"id": "h-payload", "statement": PAYLOAD, "verdict": "refuted",
                                                  "reason": PAYLOAD, "in_sample": {"rho": 0.9, "note": PAYLOAD},
                                                  "confound": PAYLOAD})
    answers = root / "answers.yaml"
    answers.write_text(yaml.safe_dump({q.id: PAYLOAD for q in QUESTIONS[:3]}))
    ok("checklist", sid, "--file", answers, "--catalog", cat)
    return cat


class _Tags(HTMLParser):
    """Every element and attribute of a page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    cat = build_catalog(root)
    out = root / "site"
    assert "report:" in ok("report", "--catalog", cat, "--out", out)
    return Catalog(cat), out


def study_page(out: Path, study_id: str) -> str:
    for page in out.glob("*.html"):
        html = page.read_text()
        if f"<code>{study_id}</code> ·" in html:
            return html
    raise AssertionError(f"no page for study {study_id}")


@pytest.mark.slow
def test_index_lists_phenomena_studies_and_the_settings_no_study_holds(site):
    catalog, out = site
    index = (out / "index.html").read_text()
    cards = re.findall(r'<section class="card" id="phenomenon-([\w-]+)">', index)
    assert cards == sorted(PHENOMENA)  # one card per registered phenomenon
    settings = catalog.settings()
    assert len(settings) == 2
    studied, lone = settings.itertuples()  # the study's setting, then the one trained on its own
    # the lone setting has a page and a row in its family (task · model, the fields that vary)
    row = re.search(rf'<a href="(setting-[\w-]+)\.html"><code>{lone.setting_id}</code></a></td>'
                    rf'<td class="num">{lone.runs}</td>', index)
    assert row is not None and (out / f"{row.group(1)}.html").is_file()
    assert f"<h3>{lone.task} · {lone.model}</h3>" in index
    # the study's setting is shown by the study, not by a page of its own
    assert f"<code>{studied.setting_id}</code>" not in index
    assert "1 of 2 setting(s) belong to the studies (with the controls of their audits) and phase diagrams" in index
    links = set(re.findall(r'href="([^"#]+\.html)"', index))
    assert all((out / link).is_file() for link in links)
    pages = [p.name for p in out.glob("*.html") if p.name not in ("index.html", "hypotheses.html", "tournaments.html")]
    assert sorted(p.split("-")[0] for p in pages) == ["phenomenon", "setting"]
    # on request, every setting has its page
    every = out.parent / "every"
    ok("report", "--catalog", catalog.path, "--out", every, "--setting-pages")
    assert len([p for p in every.glob("setting-*.html")]) == 2
    assert f"<code>{studied.setting_id}</code></a>" in (every / "index.html").read_text()


@pytest.mark.slow
def test_every_figure_is_copied_beside_the_pages_and_linked_relatively(site):
    _, out = site
    srcs = [src for page in out.glob("*.html") for tag, attrs in tags_of(page.read_text()) if tag == "img"
            for src in [attrs["src"]]]
    # the study's recorded figure (on its page and as the grokking card's thumbnail); curves and measures of
    # the setting no study holds
    assert len(srcs) == 4 and len(set(srcs)) == 3
    for src in srcs:
        assert not src.startswith(("/", "file:", "http")) and (out / src).stat().st_size > 1000


@pytest.mark.slow
def test_study_page_has_signature_settings_command_and_rows(site):
    catalog, out = site
    note = catalog.notes("signature")[-1]["obj"]
    html = study_page(out, catalog.notes("signature")[-1]["key"])
    acc = note["summary"]["final_train_acc"]
    assert re.search(rf'<td class="field">final_train_acc</td><td class="num" data-label="mean">{acc["mean"]:.4g}'
                     rf'</td><td class="num" data-label="± sd">{acc["sd"]:.4g}</td><td class="num" data-label="n">'
                     rf'{acc["n"]}</td>', html)
    runs = catalog.runs(setting_id=note["setting_id"])
    for run_id, loss in zip(runs["run_id"], runs["final_train_loss"], strict=True):
        assert f"<td>{run_id}</td>" in html and f"<td>{loss:.4g}</td>" in html
    stored = json.loads((out / "settings" / f"{note['setting_id']}.json").read_text())
    assert stored == catalog.setting(note["setting_id"])
    # the study command names the canonical setting and re-resolves to exactly this setting id
    cmd = shlex.split(re.search(r'<pre class="cmd">(phenolab reproduce [^<]+)</pre>', html).group(1).replace(
        "&#34;", '"').replace("&#39;", "'"))
    assert cmd[:5] == ["phenolab", "reproduce", "grokking", "--setting", "gromov2023"]
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    assert resolve_setting("gromov2023", parse_assignments(sets)).id == note["setting_id"]
    assert cmd[-2:] == ["--seeds", "0-1"]


@pytest.mark.slow
def test_setting_file_command_retrains_the_same_runs(site, tmp_path):
    catalog, out = site
    sid = str(catalog.settings()["setting_id"].iloc[-1])
    html = study_page(out, sid)
    cmd = shlex.split(re.search(r'<pre class="cmd">(phenolab train settings/[^<]+)</pre>', html).group(1))
    assert cmd[2] == f"settings/{sid}.json"
    fresh = tmp_path / "fresh"
    report = json.loads(ok(*cmd[1:2], out / cmd[2], *cmd[3:], "--catalog", fresh, "--json", "--no-figure"))
    assert report["setting_id"] == sid and report["trained"] == 3
    old, new = catalog.runs(setting_id=sid), Catalog(fresh).runs(setting_id=sid)
    assert list(old["seed"]) == list(new["seed"])
    assert new["final_train_loss"].tolist() == pytest.approx(old["final_train_loss"].tolist(), rel=1e-6)


def test_checklist_questions_are_table_1():
    assert len(QUESTIONS) == 25 and len({q.id for q in QUESTIONS}) == 25
    assert [p for p, _ in grouped()] == ["Early Stage Problem Identification", "Throughout the Research Process",
                                         "Concluding Considerations"]
    assert [len(qs) for _, cats in grouped() for _, qs in cats] == [4, 4, 5, 3, 4, 5]
    texts = {q.text for q in QUESTIONS}
    assert "What hypothesis (if any) is being tested — and is it falsifiable?" in texts
    assert "Did I document negative or ambiguous results that may be valuable?" in texts


@pytest.mark.slow
def test_checklist_answers_by_file_and_prompt_are_merged_and_shown(site, tmp_path):
    catalog, out = site
    sid = str(catalog.settings()["setting_id"].iloc[0])
    answers = tmp_path / "a.yaml"
    answers.write_text(yaml.safe_dump({"context.1": "As memorization then generalization (Power et al. 2022).",
                                       QUESTIONS[13].text: "Yes: ρ ≥ 0.8 on held-out settings."}))
    assert "stored 2 answer(s)" in ok("checklist", sid[:6], "--file", answers, "--catalog", catalog.path)
    typed = "\n".join(["", "Modular addition only."] + [""] * 23) + "\n"
    res = invoke("checklist", sid, "--catalog", catalog.path, input=typed, catch_exceptions=True)
    assert res.exit_code == 0 and "stored 1 answer(s)" in res.output and "3 of 25" in res.output
    second = tmp_path / "site2"
    ok("report", "--catalog", catalog.path, "--out", second)
    html = study_page(second, sid)
    assert "3 of 25 questions answered" in html and html.count("Unanswered.") == 22
    assert "Modular addition only." in html and "ρ ≥ 0.8 on held-out settings." in html


@pytest.mark.slow
@pytest.mark.parametrize("content, message", [
    ({"nope.1": "x"}, "unknown question 'nope.1'"),
    (["a list"], "expected a mapping"),
    ({"context.1": {"nested": 1}}, "must be text"),
])
def test_bad_answers_file_is_one_line_and_stores_nothing(site, tmp_path, capsys, monkeypatch, content, message):
    catalog, _ = site
    before = len(catalog.notes("checklist"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(content))
    sid = str(catalog.settings()["setting_id"].iloc[0])
    assert message in user_error(monkeypatch, capsys, "checklist", sid, "--file", bad, "--catalog", catalog.path)
    assert len(catalog.notes("checklist")) == before


@pytest.mark.slow
def test_unknown_study_and_foreign_out_folder_are_refused(site, tmp_path, capsys, monkeypatch):
    catalog, _ = site
    line = user_error(monkeypatch, capsys, "checklist", "nosuchstudy", "--catalog", catalog.path)
    assert "STUDY 'nosuchstudy' is not a study in this catalog" in line
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    line = user_error(monkeypatch, capsys, "report", "--catalog", catalog.path, "--out", foreign)
    assert "is not a phenolab report" in line and (foreign / "thesis.tex").read_text() == "keep me"
    line = user_error(monkeypatch, capsys, "report", "--catalog", tmp_path / "none" / "catalog.db")
    assert "no catalog at" in line and not (tmp_path / "none").exists()


@pytest.mark.slow
def test_report_rebuild_replaces_the_previous_one(site, tmp_path):
    catalog, out = site
    again = tmp_path / "again"
    ok("report", "--catalog", catalog.path, "--out", again)
    (again / "stale.html").write_text("old")
    ok("report", "--catalog", catalog.path, "--out", again)
    assert not (again / "stale.html").exists() and (again / "index.html").is_file()


@pytest.mark.slow
def test_hypotheses_page_without_and_with_verdicts(site, tmp_path):
    catalog, out = site
    assert "No hypotheses in this catalog yet" in (out / "hypotheses.html").read_text()
    catalog.add_note("hypothesis", "h1", {"id": "h1", "statement": "prime-parameter count tracks test accuracy"})
    catalog.add_note("hypothesis_verdict", "h1", {
        "id": "h1", "verdict": "refuted", "reason": "fails the confound test",
        "tests": {"in_sample": {"rho": 0.93, "n": 2}, "held_out": {"rho": 0.9, "n": 2},
                  "confound": {"partial_rho": 0.05, "n": 2}, "intervention": {"delta_metric": 0.0, "n": 2}}})
    catalog.add_note("hypothesis", "h2", {"id": "h2", "statement": "weight norm falls before test accuracy rises"})
    second = tmp_path / "site3"
    ok("report", "--catalog", catalog.path, "--out", second)
    html = (second / "hypotheses.html").read_text()
    assert "prime-parameter count tracks test accuracy" in html and "weight norm falls" in html
    assert '<span class="verdict refuted">refuted</span>' in html and "fails the confound test" in html
    assert "partial_rho = 0.05" in html and "rho = 0.93" in html and "Not evaluated yet." in html
    assert "(1 refuted)" in (second / "index.html").read_text()


@pytest.mark.slow
def test_every_user_text_is_escaped(tmp_path):
    cat = build_catalog(tmp_path, payload=True)
    out = tmp_path / "site"
    ok("report", "--catalog", cat, "--out", out)
    pages = {p.name: p.read_text() for p in out.glob("*.html")}
    joined = "\n".join(pages.values())
    for page, html in pages.items():
        for tag, attrs in tags_of(html):
            assert tag not in ("script", "svg", "iframe", "object"), (page, tag)
            assert not any(a.startswith("on") for a in attrs), (page, tag, attrs)
            if tag == "img":
                assert attrs["src"].startswith("figures/"), (page, attrs)
        assert "<script" not in html.lower() and "<img src=x" not in html
    escaped = "&lt;script&gt;window.__pwned = 1; document.title = &#34;PWNED&#34;&lt;/script&gt;"
    # the setting file's text: in the curve name (runs table, signature), the canonical JSON and the command
    setting_page = next(h for n, h in pages.items() if n.startswith("setting-") and "report_test_label" in h)
    assert setting_page.count(escaped) >= 3
    assert escaped in pages["hypotheses.html"]  # hypothesis text, reason and a test result
    study = next(h for n, h in pages.items() if n.startswith("phenomenon-") and "report_test_label" in h)
    assert study.count(escaped) >= 4  # note key, phenomenon, note text, summary field
    assert "&lt;img src=x onerror=&#34;window.__pwned = 2&#34;&gt;" in joined
    answered = next(h for h in pages.values() if "3 of 25 questions answered" in h)
    assert answered.count('<dd class="answer">' + escaped) == 3


@pytest.mark.slow
def test_a_real_hypothesis_verdict_is_shown_with_its_four_tests(tmp_path):
    """Registered and evaluated by `phenolab.hypotheses` on real runs; the page shows what it decided."""
    from phenolab.hypotheses import HypothesisLog, evaluate_registered, local_train_missing, validate_hypothesis

    catalog = Catalog(tmp_path / "cat")
    hyp = validate_hypothesis({
        "name": "weight-norm-tracks-train-acc", "statement": "The weight norm tracks training accuracy.",
        "measure": "weight_norm", "target": "train_acc",
        "scope": [{"setting": "gromov2023", "overrides": {"task.p": 13, "schedule.steps": 30,
                                                          "measures": ["weight_norm", "mean_abs_weight"]},
                   "seeds": 2}],
        "confounds": ["mean_abs_weight"],
    })
    reg, _ = HypothesisLog(catalog).register(hyp)
    result = evaluate_registered(catalog, reg.id, local_train_missing(catalog, device="cpu"))
    out = tmp_path / "site"
    ok("report", "--catalog", catalog.path, "--out", out)
    html = (out / "hypotheses.html").read_text()
    assert "The weight norm tracks training accuracy." in html and f"<code>{reg.id}</code>" in html
    status = result["status"]
    assert html.count(f'<span class="verdict {status}">{status}</span>') == 2  # latest verdict + its evaluation
    rows = re.findall(r'<tr><td class="field">(\w+)</td><td data-label="status">'
                      r'<span class="status \w+">([\w ]+)</span>', html)
    assert rows == [(t, result["tests"][t]["status"]) for t in ("in_sample", "held_out", "confound", "intervention")]
    in_sample = result["tests"]["in_sample"]
    assert f"{in_sample['mean']:.4g} ± {in_sample['sd']:.4g}" in html
    # each claim with its comparison, as the tests hold it
    claims = re.findall(r'<td class="claim" data-label="claim">([^<]*)</td>', html)
    assert claims == ["ρ ≥ 0.8", "", "partial ρ ≥ 0.8", ""]  # held-out and intervention were not run
    # M against T over the runs the tests read, drawn from their curves
    figure = re.search(r'<img src="(figures/h-[\w-]+\.png)" alt="weight_norm against train_acc', html)
    assert figure is not None and (out / figure.group(1)).stat().st_size > 10_000
    # every run behind the tests, linked to the row that lists it
    links = re.findall(r'<a href="([\w-]+\.html)#(run-[\w-]+)"><code>([\w-]+)</code></a>', html)
    assert sorted(run for _, _, run in links) == sorted(result["runs"]["in_sample"]) and len(links) == 2
    for page, anchor, _ in links:
        assert f'<tr id="{anchor}">' in (out / page).read_text()


@pytest.mark.slow
def test_a_sweep_study_shows_all_its_settings_and_the_reproduce_command(tmp_path):
    """Double descent (exact min-norm solves over a grid of n_train): one study, many settings."""
    cat = tmp_path / "cat"
    ok("reproduce", "double-descent", "--setting", "nakkiran2021_linear", "--seeds", "2", "--catalog", cat)
    catalog = Catalog(cat)
    out = tmp_path / "site"
    ok("report", "--catalog", cat, "--out", out)
    html = study_page(out, catalog.notes("signature")[-1]["key"])
    ids = set(catalog.settings()["setting_id"])
    assert len(ids) > 10 and set(re.findall(r"<h3>Setting <code>(\w+)</code></h3>", html)) == ids
    assert len(re.findall(r'<tr id="run-\w+-[01]"><td>\w+-[01]</td>', html)) == 2 * len(ids)  # every run behind it
    assert '<pre class="cmd">phenolab reproduce double-descent --setting nakkiran2021_linear --seeds 0-1</pre>' in html


@pytest.mark.slow
def test_a_phase_diagram_is_shown_with_its_table_and_the_command_that_rebuilds_it(tmp_path):
    cat = tmp_path / "cat"
    args = ["phase", "grokking", "--setting", "gromov2023", *TINY_GROK, "--grid", "task.train_fraction=0.6,0.3",
            "--grid", "optim.weight_decay=0,1", "--seeds", "2"]
    ok(*args, "--catalog", cat)
    out = tmp_path / "site"
    ok("report", "--catalog", cat, "--out", out)
    index = (out / "index.html").read_text()
    entry = re.search(r'<h3><a href="(phase-[\w-]+)\.html">grokking · gromov2023 · phase</a></h3>', index)
    assert entry is not None
    page = (out / f"{entry.group(1)}.html").read_text()
    assert "4 setting(s) · 8 run(s)" in index and "4 setting(s) · 8 run(s)" in page
    for html in (index, page):
        figure = re.search(r'<img src="(figures/phase-[\w-]+\.png)" alt="phase diagram', html)
        assert figure is not None and (out / figure.group(1)).stat().st_size > 10_000
    assert not list(out.glob("setting-*.html"))  # the grid's settings are the diagram's cells, not pages
    table = page[page.index("<h2>Cells</h2>"):]
    header = re.findall(r"<th>([^<]+)</th>", table)
    assert header[:3] == ["task.train_fraction", "optim.weight_decay", "n"]  # the diagram's order, x first
    assert len(re.findall(r"<tr><td", table)) == 4 and len(re.findall(r'<a href="settings/\w+\.json">', table)) == 4
    # the command shown rebuilds the same diagram from the catalog: nothing to train, the same cells
    command = re.search(r"<pre><code>(phenolab phase [^<]+)</code></pre>", index).group(1)
    assert command in page
    assert {"--set task.p=13", "--set schedule.steps=30", "--grid task.train_fraction=0.6,0.3"} <= \
        {" ".join(pair) for pair in zip(shlex.split(command), shlex.split(command)[1:], strict=False)}
    rebuilt = invoke(*shlex.split(command)[1:], "--catalog", cat, "--json")
    assert rebuilt.exit_code == 0, rebuilt.output
    again = json.loads(rebuilt.stdout)
    first = Catalog(cat).notes("phase")[0]["obj"]
    assert again["trained"] == 0 and again["table"] == first["table"]

