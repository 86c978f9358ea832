"""The report is rebuilt incrementally: only the pages and figures whose catalog rows changed are
written again (file times, inodes and contents checked), a build reads one snapshot so a writer
working meanwhile cannot make a page mix two states, and the site is swapped in whole."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from phenolab.catalog import Catalog, RunRecord
from phenolab.report import build_report, checklist
from phenolab.report import site as site_mod
from phenolab.report.incremental import MARKER, Staging
from phenolab.settings import resolve_setting

# a valid 1×1 PNG: a recorded figure the report copies
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a4d3e0f40000000049454e44ae426082")


def setting(frac: float, wd: float = 1.0):
    return resolve_setting("gromov2023", {"task.p": 13, "task.train_fraction": frac, "optim.weight_decay": wd})


def add_runs(cat: Catalog, s, seeds) -> None:
    steps = np.arange(0, 50, 5)
    recs = []
    for seed in seeds:
        acc = np.minimum(1.0, np.rint(steps * (seed + 2)) / 97)
        recs.append(RunRecord(s.id, seed, {"train_acc": (steps, acc), "test_acc": (steps, acc / 2),
                                           "train_loss": (steps, 1 - acc / 2), "test_loss": (steps, 1 - acc / 4)},
                              {"final_train_acc": float(acc[-1])}, {"device": "cpu"}, 0.0, 1.0, 1.0))
    cat.write_runs(s.canonical_json(), s.id, recs)


def add_study(cat: Catalog, s, figure: Path) -> str:
    key = f"grokking:gromov2023:{s.id}"
    cat.add_note("signature", key, {"phenomenon": "grokking", "setting": "gromov2023", "setting_ids": [s.id],
                                    "seeds": [0, 1], "summary": {"t_train": {"mean": 10.0, "sd": 1.0, "n": 2}},
                                    "figure": str(figure), "options": {}, "overrides": {"task.p": 13}, "quick": False})
    return key


def add_phase(cat: Catalog, settings: list, figure: Path) -> None:
    table = [{"task.train_fraction": s.task.train_fraction, "optim.weight_decay": s.optim.weight_decay, "n": 2,
              "value": "grokking", "setting_id": s.id} for s in settings]
    cat.add_note("phase", f"grokking:gromov2023:phase:{len(settings)}", {
        "phenomenon": "grokking", "setting": "gromov2023", "field": "phase", "seeds": [0, 1], "quick": False,
        "overrides": {"task.p": 13}, "axes": [["task.train_fraction", [0.3, 0.5]], ["optim.weight_decay", [1.0, 2.0]]],
        "columns": list(table[0]), "table": table, "figure": str(figure)})


def state(out: Path) -> dict[str, tuple[int, int]]:
    """Every file of the site: (inode, modification time)."""
    return {p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in out.rglob("*") if p.is_file() and p.name != MARKER}


def changed(before: dict, after: dict) -> set[str]:
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}


@pytest.fixture
def catalog(tmp_path) -> Catalog:
    cat = Catalog(tmp_path / "cat")
    figure = tmp_path / "fig.png"
    figure.write_bytes(PNG)
    add_runs(cat, setting(0.4), [0, 1, 2])  # a setting no study holds: a page of its own, figures drawn
    add_runs(cat, setting(0.7), [0, 1])
    add_study(cat, setting(0.7), figure)
    grid = [setting(f, wd) for f in (0.3, 0.5) for wd in (1.0, 2.0)]
    for s in grid:
        add_runs(cat, s, [0, 1])
    add_phase(cat, grid, figure)
    return cat


def page_named(out: Path, prefix: str) -> str:
    (page,) = [p.name for p in out.glob(f"{prefix}*.html")]
    return page


def test_a_refresh_rewrites_only_the_pages_whose_rows_changed(catalog, tmp_path):
    out = tmp_path / "site"
    first = build_report(catalog, out, max_figures=10)
    assert len(first.written) == first.files  # from scratch: everything
    names = set(state(out))
    study, lone = page_named(out, "phenomenon-"), page_named(out, "setting-")
    # index, hypotheses, study, lone setting, phase (and the tournaments page, `tournaments.py`'s own)
    assert len([n for n in names if n.endswith(".html") and n != "tournaments.html"]) == 5
    assert len([n for n in names if n.startswith("settings/")]) == 6
    before = state(out)

    again = build_report(catalog, out, max_figures=10)  # nothing changed: nothing is touched
    assert again.written == [] and state(out) == before

    # checklist answers for the study: its page and the index (answered counts), nothing else
    study_id = catalog.notes("signature")[0]["key"]
    checklist.record_answers(catalog, study_id, {"context.1": "Power et al. framed it as delayed generalization."})
    third = build_report(catalog, out, max_figures=10)
    after = state(out)
    assert changed(before, after) == {study, "index.html"} == set(third.written)
    assert "Power et al. framed it as delayed generalization." in (out / study).read_text()
    assert "1 / 25" in (out / "index.html").read_text()

    # a new run of the setting no study holds: its page, its two figures and the index
    add_runs(catalog, setting(0.4), [3])
    fourth = build_report(catalog, out, max_figures=10)
    later = state(out)
    assert changed(after, later) == {lone, f"figures/{lone[:-5]}-curves.png", "index.html"} == set(fourth.written)
    assert f"<td>{setting(0.4).id}-3</td>" in (out / lone).read_text()
    index = (out / "index.html").read_text()
    assert re.search(rf"<code>{setting(0.4).id}</code></a></td><td class=\"num\">4</td>", index)

    # one study added (its runs and note): its page, its figure copy, its settings file and the index
    new = setting(0.9)
    add_runs(catalog, new, [0, 1])
    add_study(catalog, new, tmp_path / "fig.png")
    fifth = build_report(catalog, out, max_figures=10)
    newest = state(out)
    added = set(newest) - set(later)
    assert len(added) == 3 and f"settings/{new.id}.json" in added
    assert changed(later, newest) == added | {"index.html"} == set(fifth.written)
    # the pages kept are the same files: same inode, same time
    for name in set(later) - {"index.html"}:
        assert newest[name] == later[name], name


def test_a_writer_during_the_build_cannot_make_a_page_mix_two_states(catalog, tmp_path, monkeypatch):
    """The build reads its rows, then another process writes, then the build draws the figures and
    renders the pages: figures and pages both show the catalog as it was when the build began."""
    import phenolab.figures

    out = tmp_path / "site"
    real_read, real_figure = site_mod.read_report_data, phenolab.figures.curves_figure
    drawn: dict[str, set[str]] = {}

    def read_then_write(snapshot):
        data = real_read(snapshot)
        other = Catalog(catalog.path)  # another writer, its own connection
        add_runs(other, setting(0.4), [7, 8])
        add_runs(other, setting(0.7), [5])
        other.add_note("hypothesis", "h", {"id": "h", "statement": "written meanwhile"})
        return data

    def spy(curves, dest, **kw):
        drawn[Path(dest).name] = set(curves["run_id"])
        return real_figure(curves, dest, **kw)

    monkeypatch.setattr(site_mod, "read_report_data", read_then_write)
    monkeypatch.setattr(phenolab.figures, "curves_figure", spy)
    build_report(catalog, out, max_figures=10)
    index = (out / "index.html").read_text()
    lone_page = page_named(out, "setting-")
    lone = (out / lone_page).read_text()
    # every page and figure shows the catalog as it was when the build began: 3 + 2 + 4×2 runs, no hypothesis
    assert "13 run(s)" in index and "0 hypotheses" in index
    assert "· 3 run(s) ·" in lone and f"<td>{setting(0.4).id}-7</td>" not in lone
    assert drawn[f"{lone_page[:-5]}-curves.png"] == {f"{setting(0.4).id}-{k}" for k in (0, 1, 2)}
    assert "written meanwhile" not in (out / "hypotheses.html").read_text()
    monkeypatch.setattr(site_mod, "read_report_data", real_read)
    build_report(catalog, out, max_figures=10)  # the next build shows the writes, everywhere
    index = (out / "index.html").read_text()
    assert "16 run(s)" in index and "1 hypothesis" in index
    assert "· 5 run(s) ·" in (out / lone_page).read_text()
    assert len(drawn[f"{lone_page[:-5]}-curves.png"]) == 5


def test_a_reader_sees_the_previous_site_until_the_new_one_is_swapped_in_whole(catalog, tmp_path, monkeypatch):
    out = tmp_path / "site"
    build_report(catalog, out, max_figures=0)
    before = {p: (out / p).read_bytes() for p in state(out)}
    add_runs(catalog, setting(0.4), [5])
    seen = []
    real_add = Staging.add

    def add(self, output):
        seen.append({p: (out / p).read_bytes() for p in state(out)} == before)  # the live site, mid-build
        return real_add(self, output)

    monkeypatch.setattr(Staging, "add", add)
    result = build_report(catalog, out, max_figures=0)
    assert seen and all(seen) and result.written
    assert {p: (out / p).read_bytes() for p in state(out)} != before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_a_report_of_an_older_phenolab_is_replaced_and_a_foreign_folder_refused(catalog, tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / MARKER).write_text("built by `phenolab report`; this folder is replaced on the next build\n")
    (out / "setting-x.html").write_text("old")
    result = build_report(catalog, out, max_figures=0)
    assert len(result.written) == result.files and not (out / "setting-x.html").exists()
    os.remove(out / "index.html")  # a file gone by hand is made again
    assert build_report(catalog, out, max_figures=0).written == ["index.html"]
    assert build_report(catalog, out, max_figures=0, rebuild=True).written


def test_pages_agree_with_each_other_while_another_thread_keeps_writing(catalog, tmp_path):
    import threading

    out = tmp_path / "site"
    stop = threading.Event()
    lone = setting(0.4)

    def writer() -> None:
        other, seed = Catalog(catalog.path), 100
        while not stop.is_set():
            add_runs(other, lone, [seed])
            seed += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        counts = []
        for _ in range(4):
            build_report(catalog, out, max_figures=0)
            index = (out / "index.html").read_text()
            page = (out / page_named(out, "setting-")).read_text()
            listed = int(re.search(rf"<code>{lone.id}</code></a></td><td class=\"num\">(\d+)</td>", index).group(1))
            rows = len(re.findall(rf'<tr id="run-{lone.id}-\d+"><td>{lone.id}-\d+</td>', page))
            total = int(re.search(r"setting\(s\), (\d+) run\(s\)", index).group(1))
            assert listed == rows == total - 10, (listed, rows, total)
            counts.append(rows)
    finally:
        stop.set()
        thread.join()
    assert counts[-1] > counts[0]  # the writer did write meanwhile
