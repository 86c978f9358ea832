"""What the tournament tests share: a tiny real tournament (Gromov's MLP at p = 13, a few steps) as
a mapping, its file, and a synthetic held-out task whose target is a known function of one measure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

# gromov2023 at p = 13 and width 32, 30 full-batch steps: a real run in a fraction of a second
TINY = {"task.p": 13, "task.train_fraction": 0.5, "model.width": 32, "schedule.steps": 30, "eval.points": 8,
        "eval.every": None}


def tiny_tournament(name: str = "tiny-grokking", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name, "statement": "which measure predicts test accuracy on other operations",
        "phenomenon": "grokking", "target": "test_acc", "read": "steps",
        "explanations": [
            {"name": "weight-norm", "measure": "weight_norm", "direction": "negative", "source": "Omnigrok"},
            {"name": "fourier", "measure": "fourier_neuron_ipr", "direction": "positive"},
            {"name": "distance", "measure": "distance_from_init", "direction": "positive"},
            {"name": "prime-count", "measure": {"name": "prime_parameter_count", "params": {"scale": 10}},
             "direction": "positive"},
        ],
        "scope": [{"setting": "gromov2023", "overrides": TINY, "seeds": 2}],
        "held_out": [{"setting": "gromov2023", "overrides": {**TINY, "task.op": "-"}, "n_seeds": 2},
                     {"setting": "gromov2023", "overrides": {**TINY, "task.train_fraction": 0.7}, "n_seeds": 2}],
        "interventions": [{"kind": "rescale", "layer": 0, "factors": [0.5]}],
        "scoring": {"n_boot": 400},
    }
    return {**base, **extra}


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_tournament()))
    return path


def synthetic_points(rng: np.random.Generator, groups: int, seeds: int, steps: int = 40) -> pd.DataFrame:
    """Runs whose target is a known function of one measure plus noise: m = 1 − exp(−step/τ) with a
    speed τ per run (so the step alone predicts less), T = sigmoid(8(m − ½)) + N(0, 0.03²); the
    magnitude is m blurred by noise; "shuffled" is m permuted over all points."""
    rows = []
    for g in range(groups):
        for s in range(seeds):
            tau = rng.uniform(2, 40)
            step = np.arange(steps, dtype=float)
            m = 1 - np.exp(-step / tau)
            t = 1 / (1 + np.exp(-8 * (m - 0.5))) + rng.normal(0, 0.03, steps)
            rows.append(pd.DataFrame({
                "group": g, "group_label": f"group {g}", "setting_id": f"s{g}", "setting": "", "seed": s,
                "run_id": f"s{g}-{s}", "step": step, "target": t, "x:good": m, "x:time": step,
                "x:magnitude": m + rng.normal(0, 0.35, steps)}))
    points = pd.concat(rows, ignore_index=True)
    points["x:shuffled"] = rng.permutation(points["x:good"].to_numpy())
    return points
