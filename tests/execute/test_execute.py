"""Executing settings × seeds: catalog records equal the engine's numbers, checkpoints round-trip,
finished batches survive an interruption, and reruns skip what is stored."""

import numpy as np
import pytest
import torch

import phenolab
from phenolab import Catalog
from phenolab.execute import plan_batches, run_local
from phenolab.settings import validate_setting

SETTING = {
    "task": {"name": "digits", "train_size": 300},
    "model": {"name": "mlp", "width": 16, "depth": 1},
    "optim": {"name": "adam", "lr": 1e-2},
    "schedule": {"steps": 30, "batch_size": 50},
    "eval": {"points": 5},
    "checkpoints": "final",
}


def test_catalog_holds_exactly_what_the_engine_computed(tmp_path):
    setting = validate_setting(SETTING)
    cat = Catalog(tmp_path)
    ids = phenolab.run(setting, [0, 1], catalog=cat)
    assert ids == [f"{setting.id}-0", f"{setting.id}-1"]
    direct = phenolab.train(setting, [0, 1])
    curves = cat.curves(setting_id=setting.id)
    for k, seed in enumerate((0, 1)):
        got = curves[(curves.seed == seed) & (curves.metric == "test_acc")].sort_values("step")
        np.testing.assert_array_equal(got["step"].to_numpy(), direct.steps)
        np.testing.assert_allclose(got["value"].to_numpy(), direct.curves["test_acc"][k], rtol=0, atol=1e-12)
        ckpt = cat.load_checkpoint(f"{setting.id}-{seed}")
        for name, tensor in direct.params.items():
            torch.testing.assert_close(ckpt[name], tensor[k], rtol=1e-6, atol=1e-6)
    prov = cat.run(ids[0])["provenance"]
    assert {"torch", "numpy", "phenolab", "device", "threads", "hostname", "git_commit"} <= set(prov)


def test_interrupted_execution_keeps_finished_batches_and_resumes(tmp_path):
    setting = validate_setting({**SETTING, "checkpoints": "none"})
    cat = Catalog(tmp_path)
    batches = plan_batches([setting], [0, 1, 2, 3], cat, max_replicas=2)
    assert [b.seeds for b in batches] == [(0, 1), (2, 3)]

    def stop_after_first(batch, result, ids):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_local(batches, cat, on_batch=stop_after_first)
    assert cat.existing_seeds(setting.id) == {0, 1}  # the finished batch was written before the stop
    rest = plan_batches([setting], [0, 1, 2, 3], cat, max_replicas=2)
    assert [b.seeds for b in rest] == [(2, 3)]
    run_local(rest, cat)
    assert cat.existing_seeds(setting.id) == {0, 1, 2, 3}
    assert cat.count_runs() == 4 and cat.integrity_check() == "ok"


def test_batch_size_does_not_change_results(tmp_path):
    """Packing seeds into one batch or several gives the same numbers (replicas are independent)."""
    setting = validate_setting({**SETTING, "checkpoints": "none"})
    a, b = Catalog(tmp_path / "a"), Catalog(tmp_path / "b")
    run_local(plan_batches([setting], [0, 1, 2], a, max_replicas=3), a)
    run_local(plan_batches([setting], [0, 1, 2], b, max_replicas=1), b)
    ca = a.curves(setting_id=setting.id).sort_values(["seed", "metric", "step"])["value"].to_numpy()
    cb = b.curves(setting_id=setting.id).sort_values(["seed", "metric", "step"])["value"].to_numpy()
    np.testing.assert_allclose(ca, cb, rtol=1e-5, atol=1e-6)
