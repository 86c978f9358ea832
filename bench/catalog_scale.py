"""The catalog at scale: 10⁴ runs × 4 curves × 200 points, then the reads a user makes.

Runs are synthetic (no training): a grid of 1000 gromov2023 settings (task.train_fraction ×
optim.weight_decay) × 10 seeds, each with train/test accuracy and loss curves of 200 points
whose train/test threshold steps are drawn at random, so the grokking phases vary over the grid.
Timed (in-process, warm): `phenolab runs` (the command, table rendered), a filtered query
(`phenolab runs --where …`), and the grokking phase-diagram table over the whole grid (all
10⁴ runs' curves read and classified). `phenolab runs` is also timed as a fresh process, which
adds Python + torch start-up. Reports the catalog file size per run.

    python bench/catalog_scale.py            # 10⁴ runs
    python bench/catalog_scale.py --quick    # 2000 runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# isort: off
import phenolab  # noqa: F401  (first: on AMD CPUs it must load before torch; phenolab/_mkl_amd.py)
# isort: on

import numpy as np
import torch
from typer.testing import CliRunner

from phenolab.catalog import Catalog, RunRecord
from phenolab.cli import app
from phenolab.execute.grid import parse_grid_arg
from phenolab.phenomena import PHENOMENA
from phenolab.studies.phase import phase_cells, phase_table

POINTS = 200


def synthetic_runs(setting_id: str, seeds: range, rng: np.random.Generator) -> list[RunRecord]:
    steps = np.unique(np.round(np.geomspace(1, 10_000, POINTS + 40)).astype(np.int64))[:POINTS]
    recs = []
    for seed in seeds:
        t_train, t_test = rng.uniform(1, 4.5), rng.uniform(1.5, 5.5)  # log10 steps; some never cross
        x = np.log10(steps)
        train = 1 / (1 + np.exp(-6 * (x - t_train)))
        test = 1 / (1 + np.exp(-6 * (x - t_test)))
        curves = {"train_acc": (steps, train), "test_acc": (steps, test),
                  "train_loss": (steps, 1 - train + 1e-3), "test_loss": (steps, 1 - test + 1e-3)}
        summary = {f"final_{m}": float(v[-1]) for m, (_, v) in curves.items()}
        recs.append(RunRecord(setting_id, seed, curves, summary, {"synthetic": True}, 0.0, 1.0, 1.0,
                              batch_id=f"{setting_id}@0", replicas_in_batch=len(seeds)))
    return recs


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", type=Path, help="build the catalog here and keep it")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n_frac, n_wd, n_seeds = (20, 10, 10) if args.quick else (50, 20, 10)
    fx = f"task.train_fraction=0.05:0.95:{n_frac}"
    fy = f"optim.weight_decay=0:10:{n_wd}"
    ph = PHENOMENA["grokking"]
    axes, cells = phase_cells(ph, "gromov2023", {}, [parse_grid_arg(fx), parse_grid_arg(fy)], list(range(n_seeds)))
    folder = args.keep or Path(tempfile.mkdtemp(prefix="phenolab-scale-"))
    catalog = Catalog(folder / "catalog.db")
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    if catalog.count_runs() == 0:
        for cell in cells:
            s = cell.study.settings[0]
            catalog.write_runs(s.canonical_json(), s.id, synthetic_runs(s.id, range(n_seeds), rng))
    build_s = time.perf_counter() - start
    n_runs = catalog.count_runs()
    runner = CliRunner()

    def cli(*argv: str) -> None:
        res = runner.invoke(app, [*argv, "--catalog", str(catalog.path)], catch_exceptions=False)
        assert res.exit_code == 0, res.output

    mid = cells[len(cells) // 2]
    where = [f"--where={axes[0].field}={mid.x}", f"--where={axes[1].field}={mid.y}"]
    filtered = catalog.runs(where={axes[0].field: mid.x, axes[1].field: mid.y})
    assert len(filtered) == n_seeds, len(filtered)
    table = phase_table(catalog, ph, axes, cells, "phase")
    assert int(table["n"].sum()) == n_runs
    env = dict(os.environ, PHENOLAB_THREADS="1")
    cmd = [sys.executable, "-c", "from phenolab.cli import main; main()", "runs", "--catalog", str(catalog.path)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    fresh_s = time.perf_counter() - start
    size = sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("catalog.db"))
    result = {
        "runs": n_runs, "settings": len(cells), "curves_per_run": 4, "points_per_curve": POINTS,
        "build_s": round(build_s, 1),
        "phenolab_runs_s": round(timed(lambda: cli("runs")), 3),
        "phenolab_runs_fresh_process_s": round(fresh_s, 2),
        "filtered_query_s": round(timed(lambda: cli("runs", *where)), 3),
        "filtered_query_api_s": round(timed(lambda: catalog.runs(where={axes[0].field: mid.x,
                                                                         axes[1].field: mid.y})), 3),
        "phase_table_s": round(timed(lambda: phase_table(catalog, ph, axes, cells, "phase")), 3),
        "phases": table["value"].value_counts().to_dict(),
        "catalog_bytes": size, "bytes_per_run": round(size / n_runs),
        "load_avg_1min": round(os.getloadavg()[0], 2), "catalog": str(catalog.path),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
