"""Sweep throughput: the same grid of tiny runs trained as batched programs (all seeds of a
setting in one batch) vs one run per program, both through the sweep machinery end to end
(planning, training, evaluation, catalog writes), each into its own fresh catalog.

Runs: a Gromov-style modular-addition MLP (p = 23, width 64, 100 full-batch AdamW steps,
20 evaluations) over task.train_fraction × optim.weight_decay, 10 seeds per setting.

    python bench/sweep_throughput.py            # 200 runs (20 settings × 10 seeds)
    python bench/sweep_throughput.py --quick    # 40 runs (4 settings × 10 seeds)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

# isort: off
import phenolab  # noqa: F401  (first: on AMD CPUs it must load before torch; phenolab/_mkl_amd.py)
# isort: on

import torch

from phenolab.catalog import Catalog
from phenolab.engine import train
from phenolab.execute.grid import expand_grid, parse_grid_arg, resolve_axes
from phenolab.execute.sweep import plan_sweep, run_sweep
from phenolab.settings import resolve_setting

BASE = {"task.p": 23, "model.width": 64, "schedule.steps": 100, "eval.points": 20, "eval.every": None}


def grid(quick: bool) -> list:
    base = resolve_setting("gromov2023", BASE)
    fractions = "task.train_fraction=0.3,0.5" if quick else "task.train_fraction=0.3,0.4,0.5,0.6,0.7"
    axes = resolve_axes(base, [parse_grid_arg(fractions), parse_grid_arg("optim.weight_decay=0,1,5,10")
                               if not quick else parse_grid_arg("optim.weight_decay=1,5")])
    return [p.setting for p in expand_grid(base, axes)]


def timed_sweep(settings: list, seeds: list[int], max_replicas: int, folder: Path) -> tuple[float, int]:
    catalog = Catalog(folder / "catalog.db")
    start = time.perf_counter()
    batches, _, _ = plan_sweep(settings, seeds, catalog, max_replicas)
    outcome = run_sweep(batches, catalog, device="cpu")
    elapsed = time.perf_counter() - start
    assert not outcome.interrupted and outcome.remaining == 0 and catalog.count_runs() == len(outcome.written)
    return elapsed, len(outcome.written)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2, help="time each mode this many times, keep the best "
                        "(alternating, so background load hits both alike)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings, seeds = grid(args.quick), list(range(args.seeds))
    train(settings[0], [0])  # warm-up: first optimizer imports torch._dynamo, first kernels load
    times: dict[int, list[float]] = {64: [], 1: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            for max_replicas in (64, 1):
                elapsed, n = timed_sweep(settings, seeds, max_replicas, Path(tmp) / f"{max_replicas}-{r}")
                assert n == len(settings) * len(seeds)
                times[max_replicas].append(elapsed)
    batched_s, single_s = min(times[64]), min(times[1])
    result = {
        "runs": n, "repeats": args.repeat, "settings": len(settings), "seeds_per_setting": len(seeds),
        "threads": args.threads,
        "batched_s": round(batched_s, 2), "batched_runs_per_s": round(n / batched_s, 2),
        "one_by_one_s": round(single_s, 2), "one_by_one_runs_per_s": round(n / single_s, 2),
        "speedup": round(single_s / batched_s, 2),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}",
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
