"""The greydanus_kobak2024 double-descent sweep: phenolab's batched time vs a per-model loop.

Three measurements in one run:

1. ratio: a subset of widths × seeds × epochs trained (a) as phenolab trains it, one batched
   program per width with every seed as a replica, and (b) as the source notebook does, one
   `nn.Sequential` + `torch.optim.SGD(lr 0.01, momentum 0.9)` per model, one after another, with
   the same minibatches of 100; both evaluate train and test at the start and the end;
2. the full sweep (19 widths × 10 seeds × 500 epochs, 40 evaluations of 16,000 points) as
   `reproduce` runs it — the narrow widths packed into shared programs (`engine.packing`) — and
   with `--compare-unpacked` also one program per width: timed end to end, or with `--quick`
   extrapolated (and labelled so) from per-step and per-evaluation times measured for every
   program: time(S₂ steps) − time(S₁ steps) over S₂ − S₁ cancels setup;
3. achieved GFLOP/s against the machine's float32 matmul peak at the same thread count. FLOPs are
   counted analytically: a step is 6·B·Σ(in·out) per model, an evaluation 2·N·Σ(in·out) (biases,
   activations, losses and the optimizer not counted), so "FLOP-limited time" = FLOPs / peak.

    python bench/double_descent_sweep.py --quick          # ~1–2 min on 1 thread (extrapolated)
    python bench/double_descent_sweep.py --threads 2      # the real full sweep: ~15+ min of 2 cores
"""

from __future__ import annotations

import argparse
import os
import platform
import time

# isort: off
import phenolab  # first: on AMD CPUs it must load before torch (phenolab/_mkl_amd.py)
# isort: on

import torch
import torch.nn.functional as F
from batched_vs_loop import matmul_peak

from phenolab._rng import generator
from phenolab.engine import eval_steps, evaluate, total_steps, train
from phenolab.engine.packing import Part, parts_data, plan_packs, train_packed
from phenolab.execute import DEFAULT_MAX_REPLICAS
from phenolab.models import build_model
from phenolab.phenomena.double_descent.settings import GK_WIDTHS
from phenolab.settings import Setting, named_setting
from phenolab.tasks import TaskData, build_task

SEEDS = list(range(10))


def macs(width: int) -> int:
    """Multiply–accumulates per sample of the 40→h→h→10 MLP."""
    return 40 * width + width * width + width * 10


def setting_at(width: int, **over: object) -> Setting:
    return named_setting("greydanus_kobak2024").with_overrides({"model.width": width, **over})


def sweep_gflop(setting: Setting, n_train: int, n_eval_points: int, k: int) -> float:
    """FLOPs (in G) of one width's K runs: training steps plus evaluations of train and test."""
    m = macs(setting.model.width)
    steps = total_steps(setting, n_train)
    evals = len(eval_steps(steps, setting.eval.points, setting.eval.every))
    return k * (steps * 6 * setting.schedule.batch_size * m + evals * 2 * n_eval_points * m) / 1e9


# ---- (1) the per-model loop ---------------------------------------------------------------------
def loop_train(width: int, epochs: int, data: TaskData, seeds: list[int]) -> float:
    """Seconds to train one model per seed the notebook's way (same batches as phenolab's)."""
    t = time.perf_counter()
    for k, seed in enumerate(seeds):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(40, width), torch.nn.ReLU(), torch.nn.Linear(width, width),
                                  torch.nn.ReLU(), torch.nn.Linear(width, 10))
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        x, y = data.x_train[k], data.y_train[k]
        gen = generator(seed, "order")
        _loop_eval(net, data, k)
        for _ in range(epochs):
            order = torch.randperm(x.shape[0], generator=gen)
            for lo in range(0, x.shape[0], 100):
                idx = order[lo:lo + 100]
                loss = F.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        _loop_eval(net, data, k)
    return time.perf_counter() - t


def _loop_eval(net: torch.nn.Module, data: TaskData, k: int) -> None:
    with torch.no_grad():
        for x, y in ((data.x_train[k], data.y_train[k]), (data.x_test[k], data.y_test[k])):
            logits = net(x)
            F.cross_entropy(logits, y).item()
            (logits.argmax(1) == y).double().mean().item()


def batched_train(width: int, epochs: int, data: TaskData, seeds: list[int]) -> float:
    setting = setting_at(width, **{"schedule.epochs": epochs, "eval.points": 2, "checkpoints": "none",
                                   "measures": []})
    t = time.perf_counter()
    train(setting, seeds, data=data)
    return time.perf_counter() - t


# ---- (2) the full sweep -------------------------------------------------------------------------
def sweep_packs(data: TaskData, seeds: list[int], pack: bool) -> list[list[Part]]:
    """The programs the sweep runs: narrow widths packed together (`engine.packing`), as
    `phenolab reproduce double-descent` plans them, or one program per width."""
    parts = [Part(setting_at(w), tuple(seeds)) for w in GK_WIDTHS]
    if not pack:
        return [[p] for p in parts]
    return plan_packs(parts, (data.input_dim, data.out_dim), data.n_train, DEFAULT_MAX_REPLICAS)


def run_pack(pack: list[Part], data: TaskData, **over: object) -> None:
    """Train one program: `data` is one width's data (`task_data`) or, for a pack, `pack_data`'s."""
    parts = [Part(p.setting.with_overrides(over), p.seeds) if over else p for p in pack]
    if len(parts) == 1:
        train(parts[0].setting, list(parts[0].seeds), data=data)
    else:
        train_packed(parts, data=data)


def pack_data(pack: list[Part], data: TaskData) -> TaskData:
    """The data a program trains on, as `phenolab reproduce` builds it (`engine.packing.parts_data`:
    rows the parts share, such as MNIST-1D's inputs, stay one expanded view; built before the
    clock starts, as `data` is): not a copy per part, which would read 60 copies of the inputs
    the real program reads once."""
    return data if len(pack) == 1 else parts_data(pack, data.x_train.dtype)


def widths_of(pack: list[Part]) -> str:
    return ",".join(str(p.setting.model.width) for p in pack)


def full_sweep(data: TaskData, seeds: list[int], pack: bool) -> tuple[float, list[float]]:
    """(seconds of training, the matmul peaks measured before each program and at the end). The
    peaks are untimed: this VM's speed swings by a quarter within minutes, so the FLOP limit is
    taken from the machine's speed *during* the sweep, not at one moment before it."""
    total, peaks = 0.0, []
    for group in sweep_packs(data, seeds, pack):
        peaks.append(matmul_peak(reps=3))
        program_data = pack_data(group, data)
        t_w = time.perf_counter()
        run_pack(group, program_data)
        took = time.perf_counter() - t_w
        total += took
        print(f"  width {widths_of(group):>22}: {took:6.1f} s  (peak before it {peaks[-1]:.0f} GFLOP/s)", flush=True)
    peaks.append(matmul_peak(reps=3))
    return total, peaks


def extrapolated_sweep(data: TaskData, seeds: list[int], s1: int, s2: int, pack: bool) -> float:
    """Per program: time(s2 steps) − time(s1 steps) → per-step time; one timed evaluation per width
    → per-eval time; setup = time(s1) − s1·step − 3·evals. Sum of setup + 20000·step + 41·evals."""
    total = 0.0
    for group in sweep_packs(data, seeds, pack):
        base = group[-1].setting
        steps = total_steps(base, data.n_train)
        n_evals = len(eval_steps(steps, base.eval.points, base.eval.every))
        times, program_data = {}, pack_data(group, data)
        for s in (s1, s2):
            t = time.perf_counter()
            run_pack(group, program_data, **{"schedule.steps": s, "eval.points": 2, "checkpoints": "none"})
            times[s] = time.perf_counter() - t
        per_step = (times[s2] - times[s1]) / (s2 - s1)
        model = build_model(base.model, data.input_dim, data.out_dim)  # the program evaluates at its widest width
        params = model.init([generator(s, "init") for _ in group for s in seeds])
        t = time.perf_counter()
        evaluate(base, model, params, program_data)
        per_eval = time.perf_counter() - t
        setup = max(times[s1] - s1 * per_step - 3 * per_eval, 0.0)
        est = setup + steps * per_step + n_evals * per_eval
        print(f"  width {widths_of(group):>22}: {per_step * 1e3:7.3f} ms/step, {per_eval:6.3f} s/eval → {est:6.1f} s",
              flush=True)
        total += est
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    parser.add_argument("--quick", action="store_true", help="extrapolate the full sweep; ratio on 3 widths × 3 epochs")
    parser.add_argument("--ratio-widths", type=int, nargs="+", default=None)
    parser.add_argument("--ratio-epochs", type=int, default=None)
    parser.add_argument("--compare-unpacked", action="store_true",
                        help="also time the sweep with one program per width (no packing of narrow widths)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    widths = args.ratio_widths or ([16, 61, 300] if args.quick else [16, 61, 135, 300])
    epochs = args.ratio_epochs or (3 if args.quick else 5)
    seeds = SEEDS
    data = build_task(setting_at(16).task, seeds, "features", torch.float32)
    peak = matmul_peak(reps=5)
    print(f"torch {torch.__version__} · {platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
          f"threads {torch.get_num_threads()} · float32 matmul peak (2048³) {peak:.1f} GFLOP/s · "
          f"MKL AMD shim {phenolab._mkl_amd.STATE}")
    train(setting_at(8, **{"schedule.steps": 5, "eval.points": 2}), [0, 1], data=None)  # warm-up

    print(f"\n(1) batched vs per-model loop: widths {widths}, {len(seeds)} seeds, {epochs} epoch(s) each")
    loop_s = sum(loop_train(w, epochs, data, seeds) for w in widths)
    ours_s = sum(batched_train(w, epochs, data, seeds) for w in widths)
    sub = sum(sweep_gflop(setting_at(w, **{"schedule.epochs": epochs, "eval.points": 2}), data.n_train,
                          data.n_train + data.x_test.shape[1], len(seeds)) for w in widths)
    print(f"  loop {loop_s:.1f} s ({sub / loop_s:.1f} GFLOP/s) · phenolab {ours_s:.1f} s ({sub / ours_s:.1f} GFLOP/s)"
          f" · speedup {loop_s / ours_s:.2f}×")

    n_eval_points = data.n_train + data.x_test.shape[1]
    gflop = sum(sweep_gflop(setting_at(w), data.n_train, n_eval_points, len(seeds)) for w in GK_WIDTHS)
    limit = gflop / peak
    for pack in (True, False) if args.compare_unpacked else (True,):
        how = "narrow widths packed (as reproduce runs it)" if pack else "one program per width"
        if args.quick:
            print(f"\n(2) full sweep, {how}, EXTRAPOLATED from 50 and 150 steps per program (not a timed full run):")
            sweep_s = extrapolated_sweep(data, seeds, 50, 150, pack)
            label = "extrapolated"
        else:
            print(f"\n(2) full sweep, {how}, timed: 19 widths × 10 seeds × 500 epochs")
            sweep_s, peaks = full_sweep(data, seeds, pack)
            label = "measured"
            during = sum(peaks) / len(peaks)
            print(f"  matmul peak during the sweep: mean {during:.1f}, min {min(peaks):.1f}, max {max(peaks):.1f} "
                  f"GFLOP/s (n {len(peaks)}); FLOP-limited time at the mean {gflop / during / 60:.1f} min → "
                  f"ratio {sweep_s * during / gflop:.2f}× (at the min {sweep_s * min(peaks) / gflop:.2f}×, "
                  f"at the max {sweep_s * max(peaks) / gflop:.2f}×)")
        print(f"  {label} full sweep, {how}: {sweep_s / 60:.1f} min for {gflop / 1e3:.1f} TFLOP → "
              f"{gflop / sweep_s:.1f} GFLOP/s = {100 * gflop / sweep_s / peak:.0f}% of the peak at the start; "
              f"FLOP-limited time at that peak {limit / 60:.1f} min; ratio {sweep_s / limit:.2f}× (target ≤ 2×)")


if __name__ == "__main__":
    main()
