"""Does a GPU train the same function as the CPU? One table, for the settings a GPU is used for.

For each setting (a few steps, 3 seeds): the largest parameter difference between the batched
run on `--device` and on the CPU, relative to the largest parameter, and between replica k of
the batched run on the device and seed k trained alone there. CPU and GPU kernels round
differently, so the two agree to float32 rounding grown over the steps, not bitwise. How much
rounding grows depends on the setting (AdamW with eps 1e-25, as in prieto2025, turns gradients
that are rounding noise into full-size steps), so the yardstick is the same difference on the CPU
when the init is perturbed by a relative 1e-7: a device that trains the same function lands
within a small multiple of it. Exits non-zero when a difference exceeds both `--tol` and
`--factor` × that yardstick.

    python bench/device_parity.py --device cuda      # part of bench/device_check.sh
"""

from __future__ import annotations

import argparse
import sys

# isort: off
import phenolab  # noqa: F401  (first: on AMD CPUs it must load before torch)
# isort: on

import torch
from rich.console import Console
from rich.table import Table

from phenolab._rng import generators
from phenolab.engine import train
from phenolab.models import build_model, model_class
from phenolab.phenomena.grokking.accelerators import accelerator_variants
from phenolab.settings import Setting, named_setting
from phenolab.tasks import build_task


def cases(steps: int) -> dict[str, Setting]:
    """The canonical grokking settings, and nanda2023's accelerator variants (their filters and losses)."""
    short = {"schedule.steps": steps, "eval.points": 2}
    out = {name: named_setting(name).with_overrides(short) for name in ("gromov2023", "prieto2025", "power2022")}
    for label, s in accelerator_variants(named_setting("nanda2023")).items():
        out[f"nanda2023 · {label}"] = s.with_overrides(short)
    return out


def rel_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    scale = max(float(p.abs().max()) for p in a.values())
    return max(float((a[n].double() - b[n].double()).abs().max()) for n in a) / scale


def perturbed_init(setting: Setting, seeds: list[int], rel: float = 1e-7) -> dict[str, torch.Tensor]:
    """The setting's init for these seeds, each entry × (1 + rel·N(0, 1))."""
    data = build_task(setting.task, seeds[:1], model_class(setting.model.name).input_kind, torch.float32)
    init = build_model(setting.model, data.input_dim, data.out_dim, data.seq_len).init(generators(seeds, "init"))
    gen = torch.Generator().manual_seed(0)
    return {n: p * (1 + rel * torch.randn(p.shape, generator=gen, dtype=p.dtype)) for n, p in init.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--factor", type=float, default=10.0)
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    table = Table(title=f"{args.device} vs cpu, {args.steps} steps, {len(seeds)} seeds (max |Δparam| / max |param|)")
    for col in ("setting", "device vs cpu", "replica vs alone (device)", "cpu vs cpu, init × (1 + 1e-7·N)",
                "test acc device / cpu", "within"):
        table.add_column(col, justify="left" if col == "setting" else "right")
    failed = 0
    for label, setting in cases(args.steps).items():
        on_dev = train(setting, seeds, device=args.device)
        on_cpu = train(setting, seeds, device="cpu")
        vs_cpu = rel_diff(on_cpu.params, on_dev.params)
        alone = max(rel_diff({n: p[k:k + 1] for n, p in on_dev.params.items()},
                             train(setting, [seed], device=args.device).params)
                    for k, seed in enumerate(seeds))
        sensitivity = rel_diff(on_cpu.params, train(setting, seeds, init_params=perturbed_init(setting, seeds)).params)
        ok = max(vs_cpu, alone) <= max(args.tol, args.factor * sensitivity)
        failed += not ok
        acc = [r.curves["test_acc"][:, -1].mean() for r in (on_dev, on_cpu)]
        table.add_row(label, f"{vs_cpu:.1e}", f"{alone:.1e}", f"{sensitivity:.1e}", f"{acc[0]:.4f} / {acc[1]:.4f}",
                      "yes" if ok else "NO")
    Console(width=160).print(table)
    print(f"{failed} setting(s) beyond max(tol {args.tol:g}, {args.factor:g} × the perturbed-init difference)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
