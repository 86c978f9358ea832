"""Where a training step's time goes, per op, for one setting on one device (torch.profiler).

Trains `--steps` steps twice (the first untimed, for kernels, libraries and autotuning), profiles
the second and prints the ops by their own time on the device (CUDA) or the CPU, plus the wall
time per step. Host overhead alone is the same program at tiny shapes on the CPU; on a GPU the
question is whether the device or the host that feeds it sets the pace.

    python bench/profile_step.py --setting nanda2023 --seeds 5 --device cuda   # in bench/device_check.sh
    python bench/profile_step.py --setting gromov2023 --seeds 10 --steps 30
"""

from __future__ import annotations

import argparse
import time

# isort: off
import phenolab  # noqa: F401  (first: on AMD CPUs it must load before torch)
# isort: on

from torch.profiler import ProfilerActivity, profile

from phenolab.engine import train
from phenolab.settings import named_setting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setting", default="nanda2023")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", type=int, default=25, help="ops to print")
    args = parser.parse_args()
    setting = named_setting(args.setting).with_overrides({"schedule.steps": args.steps, "eval.points": 2})
    seeds = list(range(args.seeds))
    train(setting, seeds, device=args.device)  # warm-up
    cuda = args.device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        train(setting, seeds, device=args.device)
    wall = time.perf_counter() - start
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=args.rows))
    print(f"{args.setting}, {len(seeds)} seeds, {args.steps} steps on {args.device}: {wall / args.steps * 1e3:.2f} ms "
          "a step under the profiler (two evaluations included)")


if __name__ == "__main__":
    main()
