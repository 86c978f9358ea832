"""Batched models: replica k of a batch is exactly the model trained alone, and each model is the
architecture it claims (checked against `nn.Sequential` and an independent per-replica reference)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from phenolab.models import MODEL_CLASSES, BatchedModel, Params, build_model
from phenolab.settings import LinearModel, MlpModel, RandomFeaturesModel, TransformerModel

K = 4
VOCAB, T, P_OUT = 13, 4, 11


# Replica k of a batch equals its run alone to rounding, not always bitwise: at one thread MKL's
# gemm result depends on the output buffer's alignment, and a replica's slice of a batched output
# is misaligned when the per-replica size is not a multiple of 64 bytes (odd shapes like 9x11 here).
# With MKL_CBWR=COMPATIBLE (or AUTO,STRICT) set before torch loads, every case below is bitwise.
TOL = {torch.float32: {"rtol": 1e-6, "atol": 1e-6}, torch.float64: {"rtol": 1e-13, "atol": 1e-13}}
GRAD_TOL = {"rtol": 1e-5, "atol": 1e-6}


@pytest.fixture(autouse=True)
def _one_thread():
    """Comparisons are made at a fixed thread count (the engine's one-thread-per-worker rule)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gens(seeds: list[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


CASES = {
    "mlp": (MlpModel(name="mlp", width=16, depth=2), 10, 3),
    "mlp_quadratic_nobias": (MlpModel(name="mlp", width=8, depth=1, activation="quadratic", bias=False),
                             6, 3),
    "mlp_depth0": (MlpModel(name="mlp", width=8, depth=0), 6, 3),
    "transformer": (TransformerModel(name="transformer", n_layers=2, d_model=16, n_heads=4, d_mlp=32),
                    VOCAB, P_OUT),
    "transformer_noln": (TransformerModel(name="transformer", n_layers=1, d_model=16, n_heads=2, d_mlp=32,
                                          layernorm=False), VOCAB, P_OUT),
    "rf_relu": (RandomFeaturesModel(name="random_features", num_features=20), 10, 3),
    "rf_fourier": (RandomFeaturesModel(name="random_features", num_features=20, feature="fourier"), 10, 3),
    "linear": (LinearModel(name="linear"), 10, 3),
}


def make(case: str) -> BatchedModel:
    cfg, d_in, d_out = CASES[case]
    return build_model(cfg, d_in, d_out, T if cfg.name == "transformer" else None)


def inputs(model: BatchedModel, k: int, b: int = 9, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(123)
    if model.input_kind == "tokens":
        return torch.randint(0, model.input_dim, (k, b, T), generator=g)
    return torch.randn(k, b, model.input_dim, generator=g, dtype=dtype)


def randomize(model: BatchedModel, params: Params) -> Params:
    """Readouts start at zero; give every parameter non-trivial values for forward/grad checks."""
    g = torch.Generator().manual_seed(7)
    return {n: p + 0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype) for n, p in params.items()}


def test_registry() -> None:
    assert set(MODEL_CLASSES) >= {"mlp", "transformer", "random_features", "linear"}


@pytest.mark.parametrize("case", list(CASES))
def test_replica_init_equals_init_alone(case: str) -> None:
    model = make(case)
    batch = model.init(gens([10, 11, 12, 13]))
    for k, seed in enumerate([10, 11, 12, 13]):
        alone = model.init(gens([seed]))
        assert alone.keys() == batch.keys()
        for n in batch:
            assert batch[n].shape[0] == K
            assert torch.equal(batch[n][k], alone[n][0]), (case, n, k)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batched_forward_equals_per_replica(case: str, dtype: torch.dtype) -> None:
    model = make(case)
    params = randomize(model, model.init(gens(list(range(K))), dtype))
    assert all(p.dtype == dtype for p in params.values())
    x = inputs(model, K, dtype=dtype)
    out = model.forward(params, x)
    assert out.shape == (K, 9, model.out_dim) and out.dtype == dtype
    for k in range(K):
        alone = model.forward({n: p[k : k + 1] for n, p in params.items()}, x[k : k + 1])
        torch.testing.assert_close(out[k], alone[0], **TOL[dtype])


@pytest.mark.parametrize("case", ["mlp", "mlp_quadratic_nobias", "transformer", "transformer_noln",
                                  "rf_fourier"])
def test_gradient_of_summed_losses_is_per_replica_gradient(case: str) -> None:
    model = make(case)
    base = randomize(model, model.init(gens(list(range(K)))))
    x = inputs(model, K)
    y = torch.randint(0, model.out_dim, (K, 9), generator=torch.Generator().manual_seed(5))
    trained = [n for n in base if n not in model.frozen]

    def grads(params: Params, xs: torch.Tensor, ys: torch.Tensor) -> dict[str, torch.Tensor]:
        params = {n: p.clone().requires_grad_(n in trained) for n, p in params.items()}
        out = model.forward(params, xs)
        loss = sum(F.cross_entropy(out[k], ys[k]) for k in range(xs.shape[0]))
        g = torch.autograd.grad(loss, [params[n] for n in trained])
        return dict(zip(trained, g, strict=True))

    batched = grads(base, x, y)
    for k in range(K):
        alone = grads({n: p[k : k + 1] for n, p in base.items()}, x[k : k + 1], y[k : k + 1])
        for n in trained:
            torch.testing.assert_close(batched[n][k], alone[n][0], **GRAD_TOL)


@pytest.mark.parametrize("activation,module", [("relu", nn.ReLU), ("tanh", nn.Tanh), ("gelu", nn.GELU),
                                               ("identity", nn.Identity)])
def test_mlp_equals_nn_sequential_under_same_seed(activation: str, module: type[nn.Module]) -> None:
    cfg = MlpModel(name="mlp", width=12, depth=2, activation=activation)
    model = build_model(cfg, 7, 5)
    params = model.init(gens([42]))
    torch.manual_seed(42)  # nn.Linear draws from the global generator, in the same order
    ref = nn.Sequential(nn.Linear(7, 12), module(), nn.Linear(12, 12), module(), nn.Linear(12, 5))
    linears = [m for m in ref if isinstance(m, nn.Linear)]
    for i, lin in enumerate(linears):
        assert torch.equal(params[f"w{i}"][0], lin.weight.detach().t())
        assert torch.equal(params[f"b{i}"][0, 0], lin.bias.detach())
    x = torch.randn(6, 7)
    torch.testing.assert_close(model.forward(params, x[None])[0], ref(x), rtol=1e-6, atol=1e-6)


def test_mlp_quadratic_depth_init_scale_and_names() -> None:
    cfg = MlpModel(name="mlp", width=5, depth=1, activation="quadratic", bias=False)
    model = build_model(cfg, 4, 3)
    params = model.init(gens([0]))
    assert sorted(params) == ["w0", "w1"] and model.weight_names(params) == ["w0", "w1"]
    x = torch.randn(1, 2, 4)
    assert torch.equal(model.forward(params, x), torch.bmm(torch.bmm(x, params["w0"]).square(), params["w1"]))
    scaled = build_model(cfg.model_copy(update={"init_scale": 8.0}), 4, 3).init(gens([0]))
    assert all(torch.equal(scaled[n], 8.0 * params[n]) for n in params)
    biased = build_model(MlpModel(name="mlp", width=5, depth=1), 4, 3)
    assert biased.weight_names(biased.init(gens([0]))) == ["w0", "w1"]
    bound = 1 / math.sqrt(4)
    assert float(biased.init(gens([0]))["w0"].abs().max()) <= bound


def reference_transformer(model: BatchedModel, params: Params, tokens: torch.Tensor) -> torch.Tensor:
    """One replica, written independently: explicit heads, masked softmax, per-layer loops."""
    c = model.cfg
    p = {n: v[0] for n, v in params.items()}
    ln = (lambda h, pre: F.layer_norm(h, (c.d_model,), p[pre + ".w"][0], p[pre + ".b"][0])) if c.layernorm \
        else (lambda h, pre: h)
    h = p["embed"][tokens] + p["pos"][: tokens.shape[1]]
    dh = c.d_model // c.n_heads
    t = tokens.shape[1]
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    for i in range(c.n_layers):
        a = ln(h, f"l{i}.ln1")
        heads = []
        for j in range(c.n_heads):
            cols = slice(j * dh, (j + 1) * dh)
            q, k, v = (a @ p[f"l{i}.{w}"][:, cols] for w in ("wq", "wk", "wv"))
            scores = (q @ k.transpose(-1, -2) / math.sqrt(dh)).masked_fill(~mask, float("-inf"))
            heads.append(scores.softmax(-1) @ v)
        h = h + torch.cat(heads, -1) @ p[f"l{i}.wo"]
        m = ln(h, f"l{i}.ln2")
        h = h + torch.relu(m @ p[f"l{i}.w_in"] + p[f"l{i}.b_in"][0]) @ p[f"l{i}.w_out"] + p[f"l{i}.b_out"][0]
    return ln(h[:, -1], "ln_f") @ p["unembed"]


@pytest.mark.parametrize("case", ["transformer", "transformer_noln"])
def test_transformer_matches_independent_reference(case: str) -> None:
    model = make(case)
    params = randomize(model, model.init(gens([3]), torch.float64))
    x = inputs(model, 1)
    torch.testing.assert_close(model.forward(params, x)[0], reference_transformer(model, params, x[0]),
                               rtol=1e-10, atol=1e-10)


def test_transformer_shapes_init_and_validation() -> None:
    model = make("transformer")
    params = model.init(gens([0, 1]))
    assert model.input_kind == "tokens"
    assert params["embed"].shape == (2, VOCAB, 16) and params["pos"].shape == (2, T, 16)
    assert params["unembed"].shape == (2, 16, P_OUT) and params["l1.b_in"].shape == (2, 1, 32)
    assert "pos" not in model.weight_names(params) and "l0.wq" in model.weight_names(params)
    assert not any(".b" in n or "ln" in n for n in model.weight_names(params))
    assert abs(float(params["l0.w_in"].std()) - 1 / math.sqrt(16)) < 0.03  # Nanda et al.'s 1/√d_model
    assert "ln_f.w" not in make("transformer_noln").init(gens([0]))
    with pytest.raises(ValueError, match="divisible"):
        build_model(TransformerModel(name="transformer", d_model=30, n_heads=4), VOCAB, P_OUT, T)


def test_random_features_and_linear_are_linear_in_readout() -> None:
    for case in ("rf_relu", "rf_fourier", "linear"):
        model = make(case)
        params = model.init(gens([0, 1]))
        assert model.readout == "readout" and torch.count_nonzero(params["readout"]) == 0
        params = randomize(model, params)
        x = inputs(model, 2)
        phi = model.features(params, x)
        # Fourier's √(2/P) is applied to the readout in `forward` and to φ here: equal to rounding
        torch.testing.assert_close(model.forward(params, x), torch.bmm(phi, params["readout"]), rtol=1e-6, atol=1e-7)
        assert model.weight_names(params) == ["readout"]
    rf = make("rf_fourier")
    params = rf.init(gens([0]))
    assert rf.frozen == {"w_feat", "phase"}
    assert float(params["phase"].min()) >= 0 and float(params["phase"].max()) < 2 * math.pi
    x = inputs(rf, 1)
    expected = math.sqrt(2 / 20) * torch.cos(x @ params["w_feat"] / math.sqrt(10) + params["phase"])
    torch.testing.assert_close(rf.features(params, x), expected)
    assert torch.equal(make("linear").features(params, x), x)
