"""Deep ensembles: every member of every ensemble as one phenolab program, against the two ways a
user would train them: one model after another (`nn.Sequential` + Adam), and `torch.func`
ensembling (the members' parameters stacked, `vmap(functional_call)`, one Adam over the stacks).

The setting is lakshminarayanan2017_mnist1d (mnist1d's MLP 40 → 100 → 100 → 10, Adam lr 1e-2,
batch 100): K members × E ensembles, all from phenolab's init and each member's own data order,
so the three train the same models; the table gives the largest difference of their members'
final test loss. Also timed: the same members trained *jointly* (β = 1, the loss of each
ensemble's mean logits) by phenolab and by vmap. FLOPs are counted as in `batched_vs_loop.py`;
the peak is one large float32 matmul at the same thread count.

    python bench/ensembles.py            # 16 members × 5 ensembles, 6000 steps (~7 min on 2 cores)
    python bench/ensembles.py --quick    # 4 × 2, 100 steps (seconds)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

# isort: off
import phenolab  # first: on AMD CPUs it must load before torch (phenolab/_mkl_amd.py)
# isort: on

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from phenolab._rng import generator, generators
from phenolab.engine import train
from phenolab.models import build_model
from phenolab.phenomena.ensembles.settings import MEMBER
from phenolab.settings import Setting, validate_setting
from phenolab.tasks import TaskData, build_task

sys.path.insert(0, str(Path(__file__).parent))
from batched_vs_loop import flops, loop_train, matmul_peak, timed  # noqa: E402


def make_setting(members: int, steps: int, joint: float = 0.0) -> Setting:
    ensemble = {"members": members, **({"joint": joint, "diversity": "init"} if joint else {})}
    return validate_setting({**MEMBER, "schedule": {"steps": steps, "batch_size": 100}, "eval": {"points": 2},
                             "checkpoints": "none", "ensemble": ensemble})


def vmap_train(setting: Setting, data: TaskData, seeds: list[int], init: dict[str, torch.Tensor],
               joint_members: int = 0) -> list[float]:
    """torch.func ensembling: stacked parameters, vmap over a functional `nn.Sequential`, one
    Adam; with `joint_members` M, the loss is that of each group of M members' mean logits (and
    every member sees its group's first member's batches). Returns each member's final test loss."""
    width = setting.model.width
    net = torch.nn.Sequential(torch.nn.Linear(data.input_dim, width), torch.nn.ReLU(),
                              torch.nn.Linear(width, width), torch.nn.ReLU(),
                              torch.nn.Linear(width, data.out_dim))
    names = [n for n, _ in net.named_parameters()]
    stacked = {}
    for i, layer in enumerate(("0", "2", "4")):
        stacked[f"{layer}.weight"] = init[f"w{i}"].transpose(1, 2).contiguous().requires_grad_(True)
        stacked[f"{layer}.bias"] = init[f"b{i}"][:, 0].contiguous().requires_grad_(True)
    opt = torch.optim.Adam([stacked[n] for n in names], lr=setting.optim.lr)
    forward = torch.func.vmap(lambda p, x: torch.func.functional_call(net, p, (x,)))
    k, n, batch = len(seeds), data.x_train.shape[1], setting.schedule.batch_size
    order_seeds = [s - s % joint_members for s in seeds] if joint_members else seeds
    gens = [generator(s, "order") for s in order_seeds]
    rows = torch.arange(k).unsqueeze(1)
    per_epoch = -(-n // batch)
    for step in range(setting.schedule.steps):
        if step % per_epoch == 0:
            order = torch.stack([torch.randperm(n, generator=g) for g in gens])
        idx = order[:, (step % per_epoch) * batch:(step % per_epoch + 1) * batch]
        x, y = data.x_train[rows, idx], data.y_train[rows, idx]
        logits = forward(stacked, x)
        if joint_members:
            mean = logits.reshape(k // joint_members, joint_members, *logits.shape[1:]).mean(1)
            loss = F.cross_entropy(mean.reshape(-1, mean.shape[-1]), y[::joint_members].reshape(-1)) * k
        else:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)) * k
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = forward(stacked, data.x_test)
        return F.cross_entropy(out.transpose(1, 2), data.y_test, reduction="none").mean(1).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--ensembles", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="4 members × 2 ensembles, 100 steps")
    args = parser.parse_args()
    if args.quick:
        args.members, args.ensembles, args.steps = 4, 2, 100
    torch.set_num_threads(args.threads)
    console = Console(width=160)
    seeds = list(range(args.members * args.ensembles))
    setting = make_setting(args.members, args.steps)
    data = build_task(setting.task, seeds, "features", torch.float32)
    init = build_model(setting.model, data.input_dim, data.out_dim).init(generators(seeds, "init"))
    peak = matmul_peak()
    console.print(f"torch {torch.__version__} · {platform.processor() or platform.machine()} · {os.cpu_count()} cores "
                  f"· threads {torch.get_num_threads()} · MKL AMD shim {phenolab._mkl_amd.STATE}")
    console.print(f"{args.ensembles} ensembles × {args.members} members · MLP 40→100→100→10 · Adam lr 1e-2 · "
                  f"batch 100 · {args.steps} steps")
    warm = make_setting(2, 2)
    train(warm, [0, 1], data=build_task(warm.task, [0, 1], "features", torch.float32))
    gflop = flops(setting, data, len(seeds)) / 1e9
    rows = []
    ours_s, ours_load, ours = timed(lambda: train(setting, seeds, data=data), False)
    reference = ours.curves["test_loss"][:, -1].tolist()
    rows.append(("independent", "phenolab (one program)", ours_s, ours_load, 0.0, ours.strategy))
    vmap_s, vmap_load, vmap_loss = timed(lambda: vmap_train(setting, data, seeds, init), False)
    rows.append(("independent", "torch.func vmap", vmap_s, vmap_load, _diff(vmap_loss, reference), "vmap"))
    loop_s, loop_load, loop_loss = timed(lambda: loop_train(setting, data, seeds, init), False)
    rows.append(("independent", "per-member loop", loop_s, loop_load, _diff(loop_loss, reference), "nn.Sequential"))
    joint = make_setting(args.members, args.steps, joint=1.0)
    joint_data = build_task(joint.task, [s - s % args.members for s in seeds], "features", torch.float32)
    j_s, j_load, j_res = timed(lambda: train(joint, seeds, data=joint_data), False)
    rows.append(("joint β = 1", "phenolab (one program)", j_s, j_load, 0.0, j_res.strategy))
    jv_s, jv_load, jv_loss = timed(lambda: vmap_train(joint, joint_data, seeds, init, args.members), False)
    rows.append(("joint β = 1", "torch.func vmap", jv_s, jv_load,
                 _diff(jv_loss, j_res.curves["test_loss"][:, -1].tolist()), "vmap"))
    peak = max(peak, matmul_peak())
    table = Table(title="deep ensembles: every member trained, wall time")
    for col in ("training", "how", "s", "vs phenolab", "GFLOP/s", "% of peak", "Δ test loss", "other load", "program"):
        table.add_column(col, justify="left" if col in ("training", "how", "program") else "right")
    base = {r[0]: r[2] for r in rows if r[1].startswith("phenolab")}
    for kind, how, s, load, diff, program in rows:
        table.add_row(kind, how, f"{s:.1f}", f"{s / base[kind]:.1f}×", f"{gflop / s:.1f}",
                      f"{100 * gflop / s / peak:.1f}%", f"{diff:.1e}", f"{load:.0%}", program)
    console.print(table)
    console.print(f"matmul peak {peak:.0f} GFLOP/s · {gflop:.0f} GFLOP per training (counted analytically)")
    if any(r[3] > 0.1 for r in rows):
        console.print("[yellow]other processes used > 10% of the CPUs during some rows: rerun on an idle machine")


def _diff(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


if __name__ == "__main__":
    main()
