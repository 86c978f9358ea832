"""How long a plan's training will take, said before it starts (the plan line, `--dry-run`).

The engine's step cost as `engine.packing` models it when it chooses packs: a fixed per-step
overhead plus the matmul FLOPs of every replica (`packing.step_flops`, and 2·N·Σ(in·out) per
evaluation of the train and test sets), at this machine's rate for small batched matmuls, measured
once per process in ~10 ms. MLPs and transformers (whose matmuls are counted per token and
layer); for other models and exact solves the answer is None (unknown) rather than a guess. On the
2-core VM the documented times come from it lands within about 2× of the measured ones (modelled
/ measured: ensembles 52–58 / 47 s, gromov2023 31–34 / 24 s, greydanus_kobak2024 7.5–8.4 / 7.3
min, power2022 --quick 85–100 / 76 min, nanda2023 --quick 48–72 / 30–38 min a seed; the probe's
rate moves by a tenth from minute to minute).
"""

from __future__ import annotations

import functools
import time

import torch

from phenolab.engine import eval_steps, total_steps
from phenolab.engine.packing import STEP_OVERHEAD_FLOPS, step_flops
from phenolab.settings import Setting

# The share of the probe's matmul rate a whole training step reaches (softmax, activations,
# the optimizer and gathers run beside the matmuls): 95 of 192 GFLOP/s for 80 MNIST-1D MLPs
# (bench/ensembles.py) on the 2-core VM.
EFFICIENCY = 0.5


@functools.cache
def small_matmul_rate() -> float:
    """FLOP/s of a batch of 32 small matmuls [100, 100]·[100, 100], the size of a tiny MLP's
    layer, at the current thread count (best of a few)."""
    a, b = torch.randn(32, 100, 100), torch.randn(32, 100, 100)
    torch.bmm(a, b)
    best = float("inf")
    for _ in range(20):
        t = time.perf_counter()
        torch.bmm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * 32 * 100 ** 3 / best


def batch_seconds(setting: Setting, replicas: int, rate: float | None = None) -> float | None:
    """Modelled seconds to train `replicas` runs of `setting` as one program (None: a model this
    does not model, or an exact solve)."""
    model = setting.model
    if setting.optim.name == "lstsq" or model.name not in ("mlp", "transformer") or (
            model.name == "mlp" and model.widths is not None):
        return None
    rate = rate or small_matmul_rate()
    d_in, d_out, n_train, n_test, seq = _shape(setting)
    steps = total_steps(setting, n_train)
    batch = min(setting.schedule.batch_size or n_train, n_train)
    if model.name == "mlp":
        width = model.width
        macs = d_in * width + (model.depth - 1) * width * width + width * d_out if model.depth else d_in * d_out
        per_step = STEP_OVERHEAD_FLOPS + replicas * step_flops(setting, width, (d_in, d_out), n_train)
    else:  # per token and layer: Q, K, V, O (4·d²), the MLP (2·d·d_mlp), attention (2·T·d); one unembedding
        d = model.d_model
        macs = seq * model.n_layers * (4 * d * d + 2 * d * model.d_mlp + 2 * seq * d) + d * d_out
        per_step = STEP_OVERHEAD_FLOPS + replicas * 6.0 * batch * macs
    evals = len(eval_steps(steps, setting.eval.points, setting.eval.every))
    per_eval = replicas * 2.0 * macs * (n_train + n_test)
    return (steps * per_step + evals * per_eval) / (rate * EFFICIENCY)


def plan_seconds(batches: list, rate: float | None = None) -> float | None:
    """Modelled seconds for `execute.Batch`es trained one after another; None if any is unknown."""
    total = 0.0
    for batch in batches:
        seconds = batch_seconds(batch.setting, batch.size, rate)
        if seconds is None:
            return None
        total += seconds
    return total


_SHAPES: dict[tuple[str, str], tuple[int, int, int, int, int]] = {}  # (task JSON, model name) -> _shape


def _shape(setting: Setting) -> tuple[int, int, int, int, int]:
    """(input width the first layer multiplies, output dim, training-set size, test-set size,
    tokens per input) of one seed's data, built once per task; one-hot inputs are looked up, so
    only their ones count."""
    from phenolab.models import model_class
    from phenolab.tasks import build_task

    key = (setting.task.model_dump_json(), setting.model.name)
    if key not in _SHAPES:
        data = build_task(setting.task, [0], model_class(setting.model.name).input_kind)
        d_in = data.input_dim if data.x_train.is_floating_point() else int(data.x_train.shape[-1])
        _SHAPES[key] = (d_in, data.out_dim, data.n_train, int(data.x_test.shape[1]), int(data.seq_len or 1))
    return _SHAPES[key]


def say_seconds(seconds: float | None) -> str:
    """'≈ 40 s', '≈ 3 min', '≈ 2.5 h', or '' when unknown."""
    if seconds is None:
        return ""
    if seconds < 90:
        return f"≈ {max(1, round(seconds))} s"
    if seconds < 5400:
        return f"≈ {round(seconds / 60)} min"
    return f"≈ {seconds / 3600:.1f} h"
