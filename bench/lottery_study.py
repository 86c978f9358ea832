"""One lottery-ticket study trained batched vs as a per-model loop, and the ratio, in one run.

The study is `frankle_carbin2019_mnist1d` (LeNet-300-100 on MNIST-1D, 20 epochs per round):
5 seeds x 15 rounds x (ticket + random reinit + shuffled mask), plus the dense round 0. Both
ways run the same code (`run_rounds`) into their own temporary catalog:

- batched: each round's 15 runs (3 controls x 5 seeds) are one program of 15 replicas;
- loop: every run trained alone (the same engine with K = 1), one after another.

Both write the same runs; the script checks they agree (final test accuracy per run) and prints
the wall and CPU times and their ratio (CPU time is the fairer one on a machine shared with other
jobs). `--quick` runs 2 seeds x 2 rounds x 3 epochs. Threads are set explicitly (default 1).

    .venv/bin/python bench/lottery_study.py --quick
    .venv/bin/python bench/lottery_study.py            # the full study (minutes)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

# isort: off
import phenolab  # noqa: F401  (first: on AMD CPUs it must load before torch; phenolab/_mkl_amd.py)
# isort: on

import torch

from phenolab.catalog import Catalog
from phenolab.phenomena.lottery import LOTTERY
from phenolab.phenomena.lottery.rounds import run_rounds


def run(seeds: int, rounds: int, epochs: int | None, threads: int, device: str,
        modes: tuple[str, ...] = ("batched", "loop")) -> dict:
    torch.set_num_threads(threads)
    over = {} if epochs is None else {"schedule.epochs": epochs}
    study = LOTTERY.study("frankle_carbin2019_mnist1d", list(range(seeds)), over, False,
                          {"rounds": rounds, "instability": "none"})
    plan = study.plan
    out: dict = {"seeds": seeds, "rounds": rounds, "epochs": plan.base.schedule.epochs, "threads": threads,
                 "device": device}
    accs = {}
    with tempfile.TemporaryDirectory() as tmp:
        warm = LOTTERY.study("frankle_carbin2019_mnist1d", [0], {"schedule.steps": 5}, False,
                             {"rounds": 1, "instability": "none"})
        run_rounds(warm.plan, [0], Catalog(Path(tmp) / "warmup"), device=device)  # one-time costs
        for mode in modes:
            cat = Catalog(Path(tmp) / mode)
            t0, c0 = time.perf_counter(), time.process_time()
            written = run_rounds(plan, study.seeds, cat, device=device, batched=mode == "batched",
                                 on_round=lambda r, n, m=mode, t=t0: print(
                                     f"  {m} round {r}/{n} at {time.perf_counter() - t:.1f} s", flush=True))
            out[f"{mode}_s"] = round(time.perf_counter() - t0, 2)
            out[f"{mode}_cpu_s"] = round(time.process_time() - c0, 2)
            out[f"{mode}_runs"] = len(written)
            runs = cat.runs()
            accs[mode] = dict(zip(runs["run_id"], runs["final_test_acc"], strict=True))
            print(f"{mode:>8}: {len(written)} runs in {out[f'{mode}_s']:.1f} s wall, "
                  f"{out[f'{mode}_cpu_s']:.1f} s CPU", flush=True)
    if len(accs) == 2:
        out["speedup_wall"] = round(out["loop_s"] / out["batched_s"], 2)
        out["speedup_cpu"] = round(out["loop_cpu_s"] / out["batched_cpu_s"], 2)
        out["max_abs_diff_test_acc"] = max(abs(accs["batched"][r] - accs["loop"][r]) for r in accs["batched"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds x 2 rounds x 3 epochs")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=None, help="epochs per round (default: the setting's 20)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (set explicitly)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mode", choices=("both", "batched", "loop"), default="both",
                        help="time one way only (e.g. two machines or processes); the ratio needs both")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.rounds, args.epochs = 2, 2, 3
    modes = ("batched", "loop") if args.mode == "both" else (args.mode,)
    result = run(args.seeds, args.rounds, args.epochs, args.threads, args.device, modes)
    if "speedup_wall" in result:
        print(f"batched {result['batched_s']:.1f} s vs loop {result['loop_s']:.1f} s wall: "
              f"{result['speedup_wall']:.2f}x ({result['speedup_cpu']:.2f}x in CPU time; max |diff| of final "
              f"test acc between the two: {result['max_abs_diff_test_acc']:.2g})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
