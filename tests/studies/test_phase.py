"""Phase diagrams (`phenolab phase`, `phenolab.studies.phase`): a grid of settings swept and read
back from the catalog, each cell the phenomenon's signature on that cell's study."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phenolab.catalog import Catalog
from phenolab.execute.grid import parse_grid_arg
from phenolab.phenomena import PHENOMENA
from tests.helpers import run_main


def test_phase_diagram_matches_the_phenomenon_signature_cell_by_cell(tmp_path, capsys, monkeypatch):
    from phenolab.studies.phase import PhaseCell, phase_table

    cat = tmp_path / "cat"
    args = ["phase", "grokking", "--setting", "gromov2023", "--set", "task.p=13", "--set", "schedule.steps=150",
            "--grid", "task.train_fraction=0.3,0.8", "--grid", "optim.weight_decay=0,5", "--seeds", "2",
            "--catalog", str(cat), "--out", str(tmp_path / "fig"), "--json"]
    code, out, _ = run_main(monkeypatch, capsys, *args)
    res = json.loads(out)
    assert code == 0 and res["trained"] == 8 and res["field"] == "phase"
    assert Path(res["figure"]).stat().st_size > 10_000 and Path(res["csv"]).is_file()
    table = pd.read_csv(res["csv"])
    assert len(table) == 4 and set(table["n"]) == {2}
    counts = table[[f"n_{p}" for p in ("comprehension", "grokking", "memorization", "confusion")]].sum(axis=1)
    assert (counts == 2).all()

    # each cell equals Grokking.signature on that cell's study: the fast per-run path agrees field by field
    ph, catalog = PHENOMENA["grokking"], Catalog(cat)
    fast, fields = ph.run_signature("gromov2023"), ph.fields("gromov2023").mappable()
    for row in table.to_dict("records"):
        over = {"task.p": 13, "schedule.steps": 150, "task.train_fraction": row["task.train_fraction"],
                "optim.weight_decay": row["optim.weight_decay"]}
        study = ph.study("gromov2023", [0, 1], over, False)
        per_run = ph.signature(catalog, study).per_run
        phases = [r["phase"] for r in per_run]
        assert row[f"n_{row['value']}"] == phases.count(row["value"]) == max(map(phases.count, phases))
        for r in per_run:
            df = catalog.curves(run_ids=[r["run_id"]])
            curves = {m: (g["step"].to_numpy(), g["value"].to_numpy()) for m, g in df.groupby("metric")}
            quick = fast.fn(curves)
            assert {f: quick[f] for f in fields} == {f: r[f] for f in fields}
        axes = [parse_grid_arg("task.train_fraction=0.5"), parse_grid_arg("optim.weight_decay=1")]
        t = phase_table(catalog, ph, axes, [PhaseCell(0.5, 1, study)], "final_test_acc")
        assert t["mean"].iloc[0] == pytest.approx(np.mean([r["final_test_acc"] for r in per_run]), abs=1e-12)

    # rerun: everything is in the catalog, nothing is trained
    code, out, _ = run_main(monkeypatch, capsys, *args)
    assert code == 0 and json.loads(out)["trained"] == 0
