"""Packing MLP settings into one program: each packed run (other width, label noise, lr or weight
decay) equals its run trained alone, padded weights stay exactly zero, measures and checkpoints
come back at the run's own width, and the planner packs the narrow widths of a sweep but not the
wide ones."""

import numpy as np
import pytest
import torch

import phenolab  # noqa: F401
from phenolab.catalog import Catalog
from phenolab.engine import train
from phenolab.engine.packing import Part, padded_init, parts_data, plan_packs, program_key, train_packed
from phenolab.execute import plan_batches, run_local
from phenolab.settings import validate_setting
from phenolab.tasks import build_task

BASE = {
    "task": {"name": "mnist1d", "num_samples": 600, "label_noise": 0.1},
    "model": {"name": "mlp", "width": 16, "depth": 2},
    "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3},
    "schedule": {"steps": 40, "batch_size": 50},
    "eval": {"points": 6},
    "measures": ["parameter_count", "mean_abs_weight", "weight_norm", "distance_from_init", "label_fit"],
    "checkpoints": "final",
}
ADAMW_ONEHOT = {
    "task": {"name": "modular", "p": 13, "op": "+", "train_fraction": 0.5},
    "model": {"name": "mlp", "width": 24, "depth": 1, "activation": "quadratic", "bias": False},
    "optim": {"name": "adamw", "lr": 1e-2, "betas": [0.9, 0.98], "weight_decay": 1.0, "warmup_steps": 5,
              "grokfast_alpha": 0.9, "grokfast_lambda": 2.0},
    "schedule": {"steps": 30},
    "loss": "mse",
    "eval": {"points": 5},
    "measures": ["parameter_count", "mean_abs_weight"],
}


def widths(cfg: dict, ws: list[int]) -> list:
    base = validate_setting(cfg)
    return [base.with_overrides({"model.width": w}) for w in ws]


@pytest.mark.parametrize("cfg", [BASE, ADAMW_ONEHOT], ids=["sgd-momentum-wd", "adamw-grokfast-onehot"])
def test_packed_runs_equal_their_runs_alone(cfg):
    settings = widths(cfg, [3, 7, 12])
    parts = [Part(settings[0], (0, 1)), Part(settings[1], (2,)), Part(settings[2], (0, 3))]
    packed = train_packed(parts)
    for part, result in zip(parts, packed, strict=True):
        alone = train(part.setting, list(part.seeds))
        assert result.setting.id == part.setting.id and result.seeds == list(part.seeds)
        assert result.steps == alone.steps
        for name in alone.params:
            assert result.params[name].shape == alone.params[name].shape
            torch.testing.assert_close(result.params[name], alone.params[name], rtol=1e-5, atol=1e-6)
        for metric, values in alone.curves.items():
            np.testing.assert_allclose(result.curves[metric], values, rtol=1e-5, atol=1e-5, err_msg=metric)
        for step, ckpt in alone.checkpoints.items():
            assert {n: p.shape for n, p in result.checkpoints[step].items()} == {n: p.shape for n, p in ckpt.items()}
    assert "packed" in packed[0].strategy


def test_cells_of_a_phase_grid_share_a_program_and_equal_their_runs_alone(tmp_path):
    """Parts that differ in width, label noise (one without), lr and weight decay: one program,
    each part's runs equal to the part trained alone, shared test data left shared."""
    base = validate_setting(BASE)
    cells = [{"model.width": 5, "task.label_noise": 0.0, "optim.weight_decay": 0.0},
             {"model.width": 5, "task.label_noise": 0.3, "optim.weight_decay": 0.05, "model.init_scale": 3.0},
             {"model.width": 9, "task.label_noise": 0.3, "optim.lr": 0.02, "optim.momentum": 0.5}]
    settings = [base.with_overrides(c) for c in cells]
    assert len({program_key(s) for s in settings}) == 1 and len({s.id for s in settings}) == 3
    parts = [Part(settings[0], (0, 1)), Part(settings[1], (0, 1)), Part(settings[2], (2,))]
    data = parts_data(parts, torch.float32)
    assert data.x_test.stride(0) == 0 and data.replicas == 5  # one shared view, not five copies
    assert torch.equal(data.y_train_clean[:2], data.y_train[:2])  # no noise: clean labels are the labels
    assert not torch.equal(data.y_train[2:4], data.y_train[:2])  # the same seeds, noisy labels
    for part, result in zip(parts, train_packed(parts), strict=True):
        alone = train(part.setting, list(part.seeds))
        assert result.setting.id == part.setting.id
        for name in alone.params:
            torch.testing.assert_close(result.params[name], alone.params[name], rtol=1e-5, atol=1e-6)
        for metric, values in alone.curves.items():
            np.testing.assert_allclose(result.curves[metric], values, rtol=1e-5, atol=1e-5, err_msg=metric)
    # the planner puts them in one batch, and the catalog stores each run under its own setting
    catalog = Catalog(tmp_path)
    batches = plan_batches(settings, [0, 1], catalog)
    assert len(batches) == 1 and batches[0].size == 6
    run_local(batches, catalog, device="cpu")
    assert sorted(catalog.runs()["setting_id"].value_counts().tolist()) == [2, 2, 2]


@pytest.mark.slow
def test_unpadded_cells_split_into_replica_threads_across_parts(two_threads):
    """gromov2023's cache-bound shapes at two weight decays (1 + 3 replicas): the pack is not
    padded, so it trains in two replica threads, the first holding one replica of each part;
    every run still equals its run alone."""
    from phenolab.settings import resolve_setting

    base = resolve_setting("gromov2023", {"schedule.steps": 8})
    parts = [Part(base, (0,)), Part(base.with_overrides({"optim.weight_decay": 1.0, "optim.lr": 5e-3}), (0, 1, 2))]
    packed = train_packed(parts)
    assert packed[0].strategy.startswith("mlp-bmm, 2 replica threads")
    for part, result in zip(parts, packed, strict=True):
        alone = train(part.setting, list(part.seeds))
        for name in alone.params:
            torch.testing.assert_close(result.params[name], alone.params[name], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(result.curves["test_loss"], alone.curves["test_loss"], rtol=1e-4, atol=1e-6)
    assert not torch.allclose(packed[0].params["w1"][0], packed[1].params["w1"][0])  # same seed, other optimizer


def test_padded_weights_stay_exactly_zero():
    settings = widths(ADAMW_ONEHOT, [2, 9])
    parts = [Part(settings[0], (0, 1)), Part(settings[1], (0,))]
    data = build_task(settings[1].task, [0, 1, 0], "onehot")
    padded, groups = padded_init(parts, data, torch.float32)
    result = train(settings[1], [0, 1, 0], init_params=padded, data=data, groups=groups)
    narrow = groups[0]
    w0, w1 = result.params["w0"][narrow.lo:narrow.hi], result.params["w1"][narrow.lo:narrow.hi]
    assert torch.count_nonzero(w0[:, :, 2:]) == 0 and torch.count_nonzero(w1[:, 2:, :]) == 0
    assert torch.count_nonzero(w0[:, :, :2]) > 0
    # the measures were taken at each part's own width: 26·w + w·13 parameters
    assert result.curves["parameter_count"][:, -1].tolist() == [78.0, 78.0, 351.0]


def test_planner_packs_narrow_widths_not_wide_ones():
    settings = widths(BASE, [2, 4, 8, 16, 2048])
    parts = [Part(s, (0, 1, 2)) for s in settings]
    packs = plan_packs(parts, (40, 10), 480, max_replicas=64)
    assert [[p.setting.model.width for p in pack] for pack in packs] == [[2, 4, 8, 16], [2048]]
    small = plan_packs(parts[:4], (40, 10), 480, max_replicas=6)  # at most 6 replicas a program
    assert [[p.setting.model.width for p in pack] for pack in small] == [[2, 4], [8, 16]]
    assert program_key(settings[0]) == program_key(settings[-1])
    assert program_key(settings[0].with_overrides({"optim.nesterov": True})) != program_key(settings[0])
    shared = {"optim.lr": 0.1, "optim.weight_decay": 0.3, "optim.momentum": 0.0, "task.label_noise": 0.3,
              "model.init_scale": 8.0}
    for field, value in shared.items():
        assert program_key(settings[0].with_overrides({field: value})) == program_key(settings[0])
    assert program_key(validate_setting({**BASE, "model": {"name": "mlp", "widths": [8, 4]}})) is None


def test_activation_nonzero_at_zero_is_not_packed(monkeypatch):
    """Padding relies on σ(0) = 0; an activation without it must train alone."""
    from dataclasses import replace

    from phenolab.models.activations import ACTIVATIONS

    setting = widths(BASE, [4])[0]
    assert program_key(setting) is not None
    name = setting.model.activation
    sigmoid = replace(ACTIVATIONS[name], fn=torch.sigmoid, fn_=None, degree=None, zero_at_zero=False)
    monkeypatch.setitem(ACTIVATIONS, name, sigmoid)
    assert program_key(setting) is None


def test_sweep_of_widths_is_packed_and_stored_at_own_width(tmp_path):
    catalog = Catalog(tmp_path)
    settings = widths(BASE, [2, 5, 9])
    batches = plan_batches(settings, [0, 1], catalog)
    assert len(batches) == 1 and [p.setting.model.width for p in batches[0].parts] == [2, 5, 9]
    assert len(plan_batches(settings, [0, 1], catalog, pack=False)) == 3
    ids = run_local(batches, catalog, device="cpu")
    assert len(ids) == 6
    runs = catalog.runs()
    assert set(runs["replicas_in_batch"]) == {6} and runs["batch_id"].nunique() == 1
    for s, w in zip(settings, [2, 5, 9], strict=True):
        ckpt = catalog.load_checkpoint(f"{s.id}-1")
        assert ckpt["w1"].shape == (w, w)
        count = catalog.curves(setting_id=s.id, metrics=["parameter_count"])["value"].iloc[-1]
        assert count == 40 * w + w + w * w + w + w * 10 + 10
    assert plan_batches(settings, [0, 1], catalog) == []


def test_ray_task_trains_a_packed_batch_and_returns_each_parts_records():
    """What a Ray worker runs for a pack (called here in-process): records per part, own widths."""
    from phenolab.execute.ray_executor import train_batch_task

    settings = widths({**BASE, "schedule": {"steps": 5, "batch_size": 50}}, [2, 6])
    out = train_batch_task([(s.canonical_json(), [0, 1]) for s in settings], "cpu", 1)
    assert [[r.setting_id for r in part] for part in out] == [[settings[0].id] * 2, [settings[1].id] * 2]
    assert out[1][0].checkpoints[5]["w1"].shape == (6, 6) and out[0][1].replicas_in_batch == 4
    assert out[0][0].provenance["executor"] == "ray" and "packed" in out[0][0].provenance
