"""The Ray executor on a local Ray instance: each batch runs as a Ray task in a worker process,
the driver alone writes the catalog, and what it stores equals training in-process."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import ray

from phenolab.catalog import Catalog
from phenolab.engine import train
from phenolab.settings import resolve_setting
from tests.helpers import run_main

pytestmark = pytest.mark.slow  # a local Ray instance and its worker processes


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_sweep_on_ray_stores_what_in_process_training_gives(local_ray, tmp_path, capsys, monkeypatch):
    cat = tmp_path / "cat"
    args = ["sweep", "gromov2023", "--set", "task.p=13", "--set", "schedule.steps=40", "--grid",
            "task.train_fraction=0.3,0.6,0.9", "--seeds", "0-1", "--max-replicas", "2", "--executor", "ray",
            "--catalog", str(cat), "--json"]
    code, out, err = run_main(monkeypatch, capsys, *args)
    assert code == 0, err
    report = json.loads(out)
    assert report["trained"] == 6 and report["executor"] == "ray" and report["remaining"] == 0

    catalog = Catalog(cat)
    runs = catalog.runs()
    assert len(runs) == 6 and catalog.integrity_check() == "ok"
    for rid in runs["run_id"]:
        prov = catalog.run(rid)["provenance"]
        assert prov["executor"] == "ray" and prov["pid"] != os.getpid()  # trained in a Ray worker
        assert prov["threads"] == 1

    # the same batch trained here, in-process, gives the same curves
    setting = resolve_setting("gromov2023", {"task.p": 13, "schedule.steps": 40, "task.train_fraction": 0.6})
    local = train(setting, [0, 1])
    stored = catalog.curves(setting_id=setting.id)
    for k, seed in enumerate((0, 1)):
        got = stored[(stored["seed"] == seed) & (stored["metric"] == "test_loss")]["value"].to_numpy()
        np.testing.assert_allclose(got, local.curves["test_loss"][k], rtol=1e-6, atol=0)

    # rerun: everything is stored, no task is sent
    _, out, _ = run_main(monkeypatch, capsys, *args)
    again = json.loads(out)
    assert again["trained"] == 0 and again["already_stored"] == 6
