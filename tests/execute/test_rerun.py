"""`phenolab rerun`: stored runs retrained in their stored batch reproduce bit for bit; a changed
number, a partial batch and a lottery round are told apart; bad input is one line."""

import json
import sqlite3

import numpy as np
import pytest

import phenolab  # noqa: F401
from phenolab.catalog import Catalog
from phenolab.catalog.codec import decode_values, encode_values
from phenolab.cli import app
from phenolab.execute import plan_batches, run_local
from phenolab.execute.rerun import check_runs
from phenolab.settings import validate_setting
from tests.helpers import run_main

SMALL = {
    "task": {"name": "mnist1d", "num_samples": 400, "label_noise": 0.1},
    "model": {"name": "mlp", "width": 8, "depth": 2},
    "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "schedule": {"steps": 30, "batch_size": 50},
    "eval": {"points": 5},
    "measures": ["weight_norm"],
}


def packed_catalog(tmp_path, seeds: tuple[int, ...] = (0, 1)) -> tuple[Catalog, list]:
    """Widths 3, 6 and 11 trained as one packed program and stored."""
    catalog = Catalog(tmp_path / "cat")
    base = validate_setting(SMALL)
    settings = [base.with_overrides({"model.width": w}) for w in (3, 6, 11)]
    batches = plan_batches(settings, list(seeds), catalog)
    assert len(batches) == 1 and len(batches[0].parts) == 3
    run_local(batches, catalog, device="cpu")
    return catalog, settings


def test_a_run_of_a_packed_batch_reproduces_bit_for_bit_inside_its_batch(tmp_path):
    catalog, settings = packed_catalog(tmp_path)
    (check,) = check_runs(catalog, [f"{settings[1].id}-1"])
    assert check.identical and check.worst_metric is None and check.max_abs_diff == 0.0
    assert check.whole_batch and check.batch_size == 6  # all three parts retrained, as stored
    assert check.finals["test_acc"][0] == check.finals["test_acc"][1]
    assert check_runs(catalog, [f"{s.id}-0" for s in settings]) and all(
        c.identical for c in check_runs(catalog, [f"{s.id}-0" for s in settings]))


def test_runs_shared_as_a_bundle_reproduce_in_their_trained_order(tmp_path):
    from phenolab.catalog.bundle import export_bundle, import_bundle

    catalog, settings = packed_catalog(tmp_path, seeds=(0, 2, 10))
    trained = [f"{s.id}-{k}" for s in settings for k in (0, 2, 10)]
    export_bundle(catalog, tmp_path / "bundle", trained)
    other = Catalog(tmp_path / "other")
    import_bundle(other, tmp_path / "bundle")  # written in run-id order: "-10" before "-2"
    with sqlite3.connect(other.path) as conn:
        assert [r for (r,) in conn.execute("SELECT run_id FROM runs ORDER BY rowid")] != trained
    assert [r for r, _, _ in other.batch_runs(other.run(trained[0])["batch_id"])] == trained
    (check,) = check_runs(other, [trained[4]])
    assert check.identical and check.batch_size == 9


def test_alone_retrains_only_the_asked_runs(tmp_path):
    catalog, settings = packed_catalog(tmp_path)
    (check,) = check_runs(catalog, [f"{settings[2].id}-0"], alone=True)
    assert check.batch_size == 1 and not check.whole_batch
    if not check.identical:  # alone it may round otherwise, but only at float precision
        assert check.max_abs_diff < 1e-3


def test_a_changed_number_is_found_and_named(tmp_path, monkeypatch, capsys):
    catalog, settings = packed_catalog(tmp_path)
    rid = f"{settings[0].id}-0"
    with sqlite3.connect(catalog.path) as conn:
        (vals,) = conn.execute("SELECT vals FROM curves WHERE run_id=? AND metric='test_loss'", (rid,)).fetchone()
        changed = decode_values(vals).copy()
        changed[2] += 0.25
        conn.execute("UPDATE curves SET vals=? WHERE run_id=? AND metric='test_loss'", (encode_values(changed), rid))
        prov = json.loads(conn.execute("SELECT provenance FROM runs WHERE run_id=?", (rid,)).fetchone()[0])
        conn.execute("UPDATE runs SET provenance=? WHERE run_id=?",
                     (json.dumps({**prov, "cpu_isa": "native: elsewhere"}), rid))
    (check,) = check_runs(catalog, [rid])
    assert not check.identical and check.worst_metric == "test_loss"
    assert check.max_abs_diff == pytest.approx(0.25)
    assert check.first_diff_step == catalog.curve_arrays([rid])[rid]["test_loss"][0][2]  # the changed evaluation
    assert check.provenance_diff["cpu_isa"][0] == "native: elsewhere"
    code, out, _ = run_main(monkeypatch, capsys, "rerun", rid, f"{settings[0].id}-1", "--catalog", str(catalog.root),
                            "--json")
    assert code == 1
    rows = {r["run_id"]: r for r in json.loads(out)}
    assert not rows[rid]["identical"] and rows[f"{settings[0].id}-1"]["identical"]
    code, out, _ = run_main(monkeypatch, capsys, "rerun", "--setting", settings[2].id, "--catalog", str(catalog.root))
    assert code == 0 and "2 of 2 run(s) identical" in out


def test_a_stored_setting_this_version_reads_differently_is_still_checked_and_said(tmp_path):
    catalog, settings = packed_catalog(tmp_path)
    with sqlite3.connect(catalog.path) as conn:  # as if a later version read this setting otherwise
        (text,) = conn.execute("SELECT json FROM settings WHERE setting_id=?", (settings[1].id,)).fetchone()
        stored = json.loads(text)
        stored["optim"]["lr"] = 0.04
        conn.execute("UPDATE settings SET json=? WHERE setting_id=?", (json.dumps(stored), settings[1].id))
    (check,) = check_runs(catalog, [f"{settings[1].id}-0"])
    assert not check.identical and check.first_diff_step > 0  # the same init, then another lr
    assert check.provenance_diff["setting_id"][0] == settings[1].id


def test_gaps_are_bitwise_with_nan_and_inf() -> None:
    from phenolab.execute.rerun import _gaps

    a = np.array([1.0, np.nan, np.nan, np.inf, 2.0, 0.5])
    b = np.array([1.0, np.nan, 3.0, np.inf, np.nan, 0.25])
    assert _gaps(a, b).tolist() == [0.0, 0.0, np.inf, 0.0, np.inf, 0.25]


def test_bad_input_is_one_line(tmp_path, monkeypatch, capsys):
    catalog, settings = packed_catalog(tmp_path)
    code, _, err = run_main(monkeypatch, capsys, "rerun", "nope-0", "--catalog", str(catalog.root))
    assert code == 2 and err.count("\n") == 1 and "no run 'nope-0'" in err
    code, _, err = run_main(monkeypatch, capsys, "rerun", "--catalog", str(catalog.root))
    assert code == 2 and "give run ids or --setting" in err
    code, _, err = run_main(monkeypatch, capsys, "rerun", "--setting", "0123456789abcdef", "--catalog",
                            str(catalog.root))
    assert code == 2 and "no runs of that setting" in err


def test_a_lottery_round_whose_earlier_rounds_are_missing_is_refused_with_the_command_that_retrains_it(tmp_path):
    """(A round whose study is stored is retrained from its rebuilt start: tests/phenomena/lottery.)"""
    catalog, settings = packed_catalog(tmp_path)
    ticket = validate_setting({**SMALL, "prune": {"round": 2, "control": "ticket"}})
    stored = catalog.run(f"{settings[0].id}-0")
    from phenolab.catalog import RunRecord

    arrays = catalog.curve_arrays([stored["run_id"]])[stored["run_id"]]
    record = RunRecord(ticket.id, 0, arrays, {}, {}, 0.0, 1.0, 1.0, "b", 1)
    catalog.write_runs(ticket.canonical_json(), ticket.id, [record])
    with pytest.raises(ValueError, match="lottery-ticket round .* `phenolab reproduce lottery`"):
        check_runs(catalog, [f"{ticket.id}-0"])


def test_the_command_is_registered():
    assert "rerun" in {c.name or c.callback.__name__ for c in app.registered_commands}
