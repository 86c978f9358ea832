"""Gradient programs: the hand-derived MLP gradients equal autograd's (float64) for every
activation, both losses, one-hot inputs and no-bias nets, in one step and over a training run;
the direct fused SGD/Adam step is bitwise `optimizer.step()`."""

import pytest
import torch

import phenolab  # noqa: F401
from phenolab._rng import generators
from phenolab.engine import passes as passes_module
from phenolab.engine import train
from phenolab.engine.evaluate import evaluate
from phenolab.engine.losses import per_replica_loss, small_class_ce
from phenolab.engine.step import AutogradGrads, MlpGrads, grad_program
from phenolab.models import build_model, model_class
from phenolab.settings import validate_setting
from phenolab.tasks import build_task

MNIST = {"name": "mnist1d", "num_samples": 200}
MODULAR = {"name": "modular", "p": 11, "op": "+", "train_fraction": 0.5}
CASES = [
    (MNIST, {"name": "mlp", "widths": [24, 12]}, "ce"),
    (MNIST, {"name": "mlp", "width": 8, "depth": 1, "activation": "tanh"}, "mse"),
    (MNIST, {"name": "mlp", "width": 8, "depth": 3, "activation": "gelu", "bias": False}, "ce"),
    (MNIST, {"name": "mlp", "width": 8, "depth": 1, "activation": "identity"}, "ce"),
    (MNIST, {"name": "mlp", "depth": 0}, "mse"),
    (MODULAR, {"name": "mlp", "width": 16, "depth": 1, "activation": "quadratic", "bias": False}, "mse"),
    (MODULAR, {"name": "mlp", "width": 16, "depth": 2}, "ce"),
    (MODULAR, {"name": "mlp", "depth": 0}, "ce"),
    ({"name": "linear_regression", "d": 6, "n_train": 30}, {"name": "mlp", "width": 8, "depth": 1}, "mse"),
]


def _grads(program, params, xb, yb):
    params = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
    program(params, xb, yb)
    return {n: p.grad for n, p in params.items()}


@pytest.mark.parametrize("chunk_bytes", [None, 1])
@pytest.mark.parametrize(("task", "model_cfg", "loss"), CASES)
def test_mlp_grads_equal_autograd(task, model_cfg, loss, chunk_bytes, monkeypatch):
    """Also with one replica per pass (`CHUNK_BYTES` = 1), the path large activations take."""
    if chunk_bytes is not None:
        monkeypatch.setattr(passes_module, "CHUNK_BYTES", chunk_bytes)
    setting = validate_setting({"task": task, "model": model_cfg, "loss": loss, "dtype": "float64"})
    seeds = [0, 1, 2]
    data = build_task(setting.task, seeds, model_class("mlp").input_kind, torch.float64)
    model = build_model(setting.model, data.input_dim, data.out_dim)
    params = model.init(generators(seeds, "init"), torch.float64)
    idx = torch.stack([torch.randperm(data.n_train, generator=g)[:7] for g in generators(seeds, "order")])
    xb = data.x_train[torch.arange(3)[:, None], idx]
    yb = data.y_train[torch.arange(3)[:, None], idx]
    manual = MlpGrads(model, loss, data.num_classes)
    got = _grads(manual, params, xb, yb)
    want = _grads(AutogradGrads(model, loss, data.num_classes, list(params)), params, xb, yb)
    for name in params:
        torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-12)


def test_autograd_one_replica_per_pass_equals_all_at_once(monkeypatch):
    setting = validate_setting({"task": {"name": "modular", "p": 7, "op": "+", "train_fraction": 0.5},
                                "model": {"name": "transformer", "n_layers": 1, "d_model": 16, "n_heads": 2,
                                          "d_mlp": 32}, "dtype": "float64"})
    seeds = [0, 1, 2]
    data = build_task(setting.task, seeds, model_class("transformer").input_kind, torch.float64)
    model = build_model(setting.model, data.input_dim, data.out_dim, data.seq_len)
    params = model.init(generators(seeds, "init"), torch.float64)
    program = AutogradGrads(model, "ce", data.num_classes, list(params))
    together = _grads(program, params, data.x_train, data.y_train)
    monkeypatch.setattr(passes_module, "CHUNK_BYTES", 1)
    apart = _grads(program, params, data.x_train, data.y_train)
    for name, value in together.items():
        torch.testing.assert_close(apart[name], value, rtol=1e-10, atol=1e-13)


def test_evaluation_one_replica_per_pass_equals_all_at_once(monkeypatch):
    setting = validate_setting({"task": MODULAR, "model": {"name": "mlp", "width": 16, "depth": 1}, "dtype": "float64"})
    seeds = [0, 1, 2]
    data = build_task(setting.task, seeds, model_class("mlp").input_kind, torch.float64)
    model = build_model(setting.model, data.input_dim, data.out_dim)
    params = model.init(generators(seeds, "init"), torch.float64)
    together = evaluate(setting, model, params, data)
    assert passes_module.eval_passes(params, data.n_train, setting.eval.batch_size) >= (3, data.n_train)  # at once
    monkeypatch.setattr(passes_module, "EVAL_BYTES", 1)
    monkeypatch.setattr(passes_module, "MIN_EVAL_ROWS", 7)  # one replica × 7 samples per pass
    assert passes_module.eval_passes(params, data.n_train, setting.eval.batch_size) == (1, 7)
    apart = evaluate(setting, model, params, data)
    for name, value in together.items():
        torch.testing.assert_close(apart[name], value, rtol=1e-12, atol=0)


def test_passes_count_a_token_model_per_token():
    """A transformer's activations are tokens × width per sample, an MLP's width per sample."""
    setting = validate_setting({"task": MODULAR, "model": {"name": "transformer", "n_layers": 1, "d_model": 16,
                                                         "n_heads": 2, "d_mlp": 32}})
    data = build_task(setting.task, [0], "tokens", torch.float32)
    model = build_model(setting.model, data.input_dim, data.out_dim, data.seq_len)
    params = model.init(generators([0], "init"), torch.float32)
    assert passes_module.model_tokens(model) == data.seq_len > 1
    per_token = passes_module.row_bytes(params, data.seq_len)
    assert per_token == data.seq_len * 32 * 4
    assert passes_module.replicas_per_pass(params, 100, data.seq_len) == passes_module.CHUNK_BYTES // (100 * per_token)


def test_small_class_ce_equals_torch_cross_entropy():
    out = torch.randn(3, 9, 10, dtype=torch.float64)
    y = torch.randint(0, 10, (3, 9))
    flat = torch.nn.functional.cross_entropy(out.reshape(27, 10), y.reshape(27), reduction="none").view(3, 9).mean(1)
    torch.testing.assert_close(small_class_ce(out, y), flat)
    torch.testing.assert_close(per_replica_loss("ce", out, y, 10), flat)


def test_classification_mse_equals_torch_mse_to_one_hot():
    """Also for a strided (feature-major) view, as the gradient programs' fit passes it."""
    out = torch.randn(3, 10, 9, dtype=torch.float64).transpose(1, 2)  # [3, 9, 10], not contiguous
    y = torch.randint(0, 10, (3, 9))
    target = torch.nn.functional.one_hot(y, 10).to(out.dtype)
    torch_mse = torch.stack([torch.nn.functional.mse_loss(out[k], target[k]) for k in range(3)])
    subtracted = (out - target).pow(2).reshape(3, -1).mean(1)  # the same sums in the same order
    for got in (per_replica_loss("mse", out, y, 10), per_replica_loss("mse", out.contiguous(), y, 10)):
        assert torch.equal(got, subtracted)
        torch.testing.assert_close(got, torch_mse, rtol=1e-14, atol=0)


def test_programs_chosen_per_model_and_loss_and_recorded():
    base = {"task": MNIST, "model": {"name": "mlp", "width": 8}, "schedule": {"steps": 3, "batch_size": 10},
            "eval": {"points": 2}}
    assert train(validate_setting(base), [0]).strategy == "mlp-bmm"
    stable = train(validate_setting({**base, "loss": "stablemax_ce"}), [0])
    assert stable.strategy == "autograd"
    model = build_model(validate_setting(base).model, 40, 10)
    assert isinstance(grad_program(model, "ce", 10, []), MlpGrads)
    assert isinstance(grad_program(model, "stablemax_ce", 10, []), AutogradGrads)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("name", "extra"), [("adam", {}), ("adamw", {}), ("sgd", {"momentum": 0.9}),
                                            ("sgd", {"momentum": 0.9, "nesterov": True}), ("sgd", {})])
def test_replica_optimizer_is_bitwise_torch_optim(name, extra, dtype):
    """Our direct fused-kernel optimizer against torch.optim's fused one, over steps whose lr
    changes (warmup), with a parameter that has no gradient (never, for SGD; only from the third
    step, for Adam(W), whose state torch creates at a parameter's first gradient)."""
    from phenolab.engine.optim import ReplicaOptimizer
    from phenolab.settings import OptimConfig

    cfg = OptimConfig(name=name, lr=1e-2, weight_decay=0.1, **extra)
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(3, 4, 5, generator=gen, dtype=dtype), torch.randn(3, 1, 5, generator=gen, dtype=dtype),
             torch.randn(3, 2, 2, generator=gen, dtype=dtype)]
    grads = [[torch.randn(p.shape, generator=gen, dtype=dtype) for p in start] for _ in range(5)]
    late = 2 if name != "sgd" else len(grads)  # the third parameter's first gradient
    torch_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[name]
    kwargs = ({"betas": cfg.betas, "eps": cfg.eps} if name != "sgd"
              else {"momentum": cfg.momentum, "nesterov": cfg.nesterov})
    results = []
    for ours in (False, True):
        params = [p.clone().requires_grad_(True) for p in start]
        opt = (ReplicaOptimizer(cfg, params) if ours
               else torch_cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True, **kwargs))
        for i, gs in enumerate(grads):
            scale = (i + 1) / 4  # a warmup changes lr between steps
            if ours:
                opt.lr_scale = scale
            else:
                opt.param_groups[0]["lr"] = cfg.lr * scale
            for j, (p, g) in enumerate(zip(params, gs, strict=True)):
                p.grad = None if j == 2 and i < late else g.clone()
            opt.step()
        results.append([p.detach() for p in params])
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(results[1][2], start[2]) == (name == "sgd")  # no gradient, no change


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_replica_spans_train_as_their_own_optimizers(name):
    """Replicas 0:2 and 2:5 with their own lr and weight decay: each span's rows are bitwise what
    an optimizer of their own gives (the phase-diagram cells that share a program)."""
    from phenolab.engine.optim import ReplicaOptimizer
    from phenolab.settings import OptimConfig

    extra = {"momentum": 0.9} if name == "sgd" else {"betas": (0.9, 0.98)}
    cfgs = [OptimConfig(name=name, lr=1e-2, weight_decay=0.0, **extra),
            OptimConfig(name=name, lr=3e-2, weight_decay=0.5, **extra)]
    spans = [(0, 2, cfgs[0]), (2, 5, cfgs[1])]
    gen = torch.Generator().manual_seed(1)
    start = [torch.randn(5, 4, 3, generator=gen), torch.randn(5, 1, 3, generator=gen)]
    grads = [[torch.randn(p.shape, generator=gen) for p in start] for _ in range(4)]
    shared = [p.clone().requires_grad_(True) for p in start]
    alone = [[p[lo:hi].clone().requires_grad_(True) for p in start] for lo, hi, _ in spans]
    opts = [ReplicaOptimizer(cfgs[0], shared, spans)]
    opts += [ReplicaOptimizer(c, ps) for (_, _, c), ps in zip(spans, alone, strict=True)]
    for i, gs in enumerate(grads):
        for p, g in zip(shared, gs, strict=True):
            p.grad = g.clone()
        for (lo, hi, _), ps in zip(spans, alone, strict=True):
            for p, g in zip(ps, gs, strict=True):
                p.grad = g[lo:hi].clone()
        for opt in opts:
            opt.lr_scale = min(1.0, (i + 1) / 2)
            opt.step()
    for (lo, hi, _), ps in zip(spans, alone, strict=True):
        for p_shared, p_alone in zip(shared, ps, strict=True):
            assert torch.equal(p_shared[lo:hi], p_alone)
    assert not torch.equal(alone[0][0][:1], alone[1][0][:1])  # the spans did train differently


def test_adjacent_spans_with_equal_hyperparameters_are_one_kernel_call_and_the_same_bits():
    """A width-only pack (every part the same optimizer settings) is one span over all replicas:
    no slicing, one call; the result is bitwise that of the spans stepped one by one."""
    from phenolab.engine.optim import ReplicaOptimizer
    from phenolab.settings import OptimConfig

    a, b = OptimConfig(name="sgd", lr=1e-2, momentum=0.9), OptimConfig(name="sgd", lr=3e-2, momentum=0.9)
    gen = torch.Generator().manual_seed(2)
    start = [torch.randn(6, 4, 3, generator=gen), torch.randn(6, 1, 3, generator=gen)]
    merged = [p.clone().requires_grad_(True) for p in start]
    opt = ReplicaOptimizer(a, merged, [(0, 2, a), (2, 4, a), (4, 6, b)])
    assert opt.spans == [(0, 4, a), (4, 6, b)] and not opt.whole
    assert ReplicaOptimizer(a, merged, [(0, 2, a), (2, 6, a)]).whole
    spans = [(0, 2, a), (2, 4, a), (4, 6, b)]
    alone = [[p[lo:hi].clone().requires_grad_(True) for p in start] for lo, hi, _ in spans]
    opts = [ReplicaOptimizer(c, ps) for (_, _, c), ps in zip(spans, alone, strict=True)]
    for _ in range(3):
        gs = [torch.randn(p.shape, generator=gen) for p in start]
        for p, g in zip(merged, gs, strict=True):
            p.grad = g.clone()
        for (lo, hi, _), ps, o in zip(spans, alone, opts, strict=True):
            for p, g in zip(ps, gs, strict=True):
                p.grad = g[lo:hi].clone()
            o.step()
        opt.step()
    for (lo, hi, _), ps in zip(spans, alone, strict=True):
        for p_merged, p_alone in zip(merged, ps, strict=True):
            assert torch.equal(p_merged[lo:hi], p_alone)


def test_training_with_mlp_grads_equals_autograd_training(monkeypatch):
    """Over many steps (reused gradient buffers, masks, weight decay, warmup) in float64."""
    setting = validate_setting({"task": MNIST, "model": {"name": "mlp", "widths": [300, 20]}, "dtype": "float64",
                                "optim": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.5, "warmup_steps": 3},
                                "schedule": {"steps": 12, "batch_size": 16}, "eval": {"points": 3}})
    masks = {"w1": (torch.rand(2, 300, 20, generator=torch.Generator().manual_seed(0)) > 0.5).double()}
    fast = train(setting, [0, 1], masks=masks)
    assert fast.strategy == "mlp-bmm"
    monkeypatch.setattr(MlpGrads, "supports", staticmethod(lambda model, loss: False))
    slow = train(setting, [0, 1], masks=masks)
    assert slow.strategy == "autograd"
    for name in fast.params:
        torch.testing.assert_close(fast.params[name], slow.params[name], rtol=1e-9, atol=1e-11)


def test_malloc_thresholds_set_on_glibc_and_opt_out(monkeypatch):
    import platform
    import sys

    from phenolab.engine._malloc import keep_large_allocations_on_heap

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_large_allocations_on_heap() is glibc
    monkeypatch.setenv("PHENOLAB_MALLOPT", "0")
    assert keep_large_allocations_on_heap() is False


@pytest.mark.parametrize("shape", [(3, 500, 40), (3, 40, 500), (3, 300, 300), (3, 500, 500)])
def test_ridge_solve_is_exact_with_threads(shape):
    """torch 2.13's batched LU solve is wrong on CPU with 2 threads at these sizes; the ridge fit
    must satisfy its normal equations whatever the thread count."""
    from phenolab.engine.optim import lstsq_readout

    k, n, p = shape
    gen = torch.Generator().manual_seed(0)
    phi = torch.randn(k, n, p, generator=gen, dtype=torch.float64)
    y = torch.randn(k, n, 10, generator=gen, dtype=torch.float64)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        w = lstsq_readout(phi, y, 1e-4)
    finally:
        torch.set_num_threads(before)
    lhs = phi.transpose(1, 2) @ (phi @ w - y) + 1e-4 * n * w  # gradient of ‖Φw − y‖² / 2 + λn‖w‖² / 2
    assert float(lhs.abs().max()) < 1e-6 * float((phi.transpose(1, 2) @ y).abs().max())


@pytest.mark.parametrize("shape", [(3, 60, 20), (3, 20, 60), (3, 40, 40), (3, 500, 500)])
def test_min_norm_solve_equals_pinv_with_threads(shape):
    """The QR min-norm fit is pinv(Φ)·y for tall, wide and square designs on 2 threads (torch's
    batched LU is wrong there, see above); a rank-deficient replica takes pinv's truncation."""
    from phenolab.engine.min_norm import min_norm_solve

    k, n, p = shape
    gen = torch.Generator().manual_seed(0)
    phi = torch.randn(k, n, p, generator=gen, dtype=torch.float64)
    phi[1] = torch.randn(n, 3, generator=gen, dtype=torch.float64) @ torch.randn(3, p, generator=gen,
                                                                                  dtype=torch.float64)
    y = torch.randn(k, n, 4, generator=gen, dtype=torch.float64)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        w = min_norm_solve(phi, y)
    finally:
        torch.set_num_threads(before)
    ref = torch.linalg.pinv(phi) @ y
    tol = 1e-9 if n == p else 1e-11
    assert float((w - ref).norm() / ref.norm()) < tol
    assert float((w[1] - ref[1]).norm() / ref[1].norm()) < 1e-9  # rank 3: pinv's answer, not a blow-up


def test_full_batch_one_hot_gradient_by_lookup_matrices_equals_index_add():
    """A batch passed again unchanged (full-batch training) takes the CSR lookup program for the
    one-hot layer's gradient: the same sums as `index_add_` (close to rounding, in float32 too), and
    a changed or new batch goes back to `index_add_`."""
    setting = validate_setting({"task": {**MODULAR, "p": 23}, "model": {"name": "mlp", "width": 32, "depth": 1,
                                "activation": "quadratic", "bias": False}, "loss": "mse"})
    seeds = [0, 1, 2]
    data = build_task(setting.task, seeds, "onehot", torch.float32)
    model = build_model(setting.model, data.input_dim, data.out_dim)
    params = model.init(generators(seeds, "init"), torch.float32)
    program = MlpGrads(model, "mse", data.num_classes)
    xb = data.x_train.clone()
    first = _grads(program, params, xb, data.y_train)
    assert program.lookups._lookups is None  # seen once: index_add_
    second = _grads(program, params, xb, data.y_train)
    assert len(program.lookups._lookups) == 3  # seen again: built, one per replica
    for name in params:
        torch.testing.assert_close(second[name], first[name], rtol=1e-6, atol=1e-7)
    xb[0, 0, 0] = (xb[0, 0, 0] + 1) % 23  # in place: the lookups no longer describe it
    changed = _grads(program, params, xb, data.y_train)
    assert program.lookups._lookups is None
    assert not torch.equal(changed["w0"], second["w0"])


def test_full_batch_training_builds_the_lookup_matrices_once_and_a_minibatch_never(monkeypatch):
    """The wiring: `train` hands the gradient program the same full-batch tensor every step (so the
    CSR program is used from the second step on), while minibatches are new tensors each step."""
    from phenolab.engine import onehot_grads

    built = []
    real = onehot_grads._lookup_matrices
    monkeypatch.setattr(onehot_grads, "_lookup_matrices", lambda *a: built.append(1) or real(*a))
    cfg = {"task": MODULAR, "model": {"name": "mlp", "width": 16, "depth": 1, "activation": "quadratic",
                                      "bias": False}, "loss": "mse", "schedule": {"steps": 6}, "eval": {"points": 3}}
    train(validate_setting(cfg), [0, 1])
    assert len(built) == 1
    train(validate_setting({**cfg, "schedule": {"steps": 6, "batch_size": 16}}), [0, 1])
    assert len(built) == 1


@pytest.mark.parametrize("loss", ["mse", "stablemax_ce"])  # hand-derived MLP program, autograd program
def test_fit_in_passes_of_one_replica_equals_all_at_once(loss, monkeypatch):
    setting = validate_setting({"task": MODULAR, "model": {"name": "mlp", "width": 16, "depth": 1}, "loss": loss,
                                "dtype": "float64"})
    seeds = [0, 1, 2]
    data = build_task(setting.task, seeds, "onehot", torch.float64)
    model = build_model(setting.model, data.input_dim, data.out_dim)
    params = model.init(generators(seeds, "init"), torch.float64)
    program = grad_program(model, loss, data.num_classes, list(params))
    together = program({n: p.clone().requires_grad_(True) for n, p in params.items()}, data.x_train, data.y_train,
                       fit=True)
    monkeypatch.setattr(passes_module, "CHUNK_BYTES", 1)
    apart = program({n: p.clone().requires_grad_(True) for n, p in params.items()}, data.x_train, data.y_train,
                    fit=True)
    assert apart[0].shape == (3,) and apart[1].shape == (3,)
    torch.testing.assert_close(apart[0], together[0], rtol=1e-12, atol=0)
    assert torch.equal(apart[1], together[1])
