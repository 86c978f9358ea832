"""Pre-registration on real tiny training: a tournament is refused once any held-out run exists, its
predictors are frozen in the hash-chained log (editing one is caught by `hypothesis verify`), and
scoring again never refits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from phenolab import Catalog, CatalogError
from phenolab.execute import plan_batches, run_local
from phenolab.hypotheses import HypothesisLog, local_train_missing
from phenolab.tournament import TournamentLog, register, run, validate_tournament
from tests.helpers import invoke, user_error
from tests.tournament.conftest import tiny_tournament


def test_registration_is_refused_once_a_held_out_run_exists_and_names_it(catalog_path: Path) -> None:
    cat = Catalog(catalog_path)
    t = validate_tournament(tiny_tournament())
    held = t.held_out_settings()[1][0]
    seed = t.held_out_seeds()[1][0]
    run_local(plan_batches([held], [seed], cat), cat)  # someone computed the hash and trained one beforehand
    with pytest.raises(CatalogError) as exc:
        register(cat, t, local_train_missing(cat))
    assert f"{held.id}-{seed}" in str(exc.value) and "before any of its held-out runs exist" in str(exc.value)
    assert TournamentLog(cat).registrations() == []
    assert cat.existing_seeds(t.scope_settings()[0][0].id) == set()  # refused before training the scope


def test_a_tampered_predictor_is_caught_by_verify_and_scoring_never_refits(catalog_path: Path, monkeypatch,
                                                                           capsys) -> None:
    cat = Catalog(catalog_path)
    t = validate_tournament(tiny_tournament())
    first = run(cat, t, local_train_missing(cat), figure=False)
    second = run(cat, t, None, figure=False)  # registered already: the same frozen predictors, scored again
    log = TournamentLog(cat)
    assert len(log.registrations()) == 1 and len(log.results(t.id)) == 2
    assert first["predictors_digest"] == second["predictors_digest"] == log.registrations()[0].digest
    assert first["scores"]["ranking"] == second["scores"]["ranking"]
    assert HypothesisLog(cat).verify().ok
    changed = validate_tournament(tiny_tournament(statement="another claim"))
    with pytest.raises(CatalogError, match="cannot change; to revise it add `supersedes: " + t.id):
        register(cat, changed, None)
    revised = validate_tournament(tiny_tournament(statement="another claim", supersedes=t.id))
    assert register(cat, revised, local_train_missing(cat)).id == revised.id  # new held-out seeds, new entry
    assert [r["superseded_by"] for r in TournamentLog(cat).listing()] == [revised.id, None]

    db = sqlite3.connect(cat.path)
    nid, text = db.execute("SELECT id, json FROM notes WHERE kind='hypothesis_log' ORDER BY id").fetchone()  # t
    assert '"type":"tournament"' in text.replace(" ", "")
    knot = log.registrations()[0].predictors["fourier"].y[-1]
    edited = text.replace(repr(knot), repr(knot + 0.25), 1)
    assert edited != text
    db.execute("UPDATE notes SET json=? WHERE id=?", (edited, nid))
    db.commit()
    db.close()
    check = HypothesisLog(cat).verify()
    assert not check.ok and "content does not match its hash" in check.message()
    res = invoke("hypothesis", "verify", "--catalog", catalog_path)
    assert res.exit_code == 1
    line = user_error(monkeypatch, capsys, "tournament", "run", _file(catalog_path.parent, t), "--catalog",
                      catalog_path, "--no-train", "--no-figure")
    assert "hypothesis log is broken" in line


def _file(folder: Path, t) -> Path:
    path = folder / "t.json"
    path.write_text(t.model_dump_json())
    return path
