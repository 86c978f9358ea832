"""Task data: shapes, per-replica independence, determinism, label properties, caching."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from phenolab.settings import DigitsTask, LinearRegressionTask, Mnist1dTask, ModularTask
from phenolab.tasks import TASK_BUILDERS, TaskData, build_task
from phenolab.tasks import mnist1d as mnist1d_mod
from phenolab.tasks.modular import is_prime, modular_table

SMALL_MNIST1D = {"name": "mnist1d", "num_samples": 400}

CONFIGS = {
    "modular-features": (ModularTask(name="modular", p=13, op="/", label_noise=0.1), "features"),
    "modular-tokens": (ModularTask(name="modular", p=11, op="x3+xy", train_fraction=0.3), "tokens"),
    "mnist1d": (Mnist1dTask(**SMALL_MNIST1D, label_noise=0.2), "features"),
    "mnist1d-subset": (Mnist1dTask(**SMALL_MNIST1D, train_size=50, label_noise=0.1), "features"),
    "digits": (DigitsTask(name="digits", train_size=100, label_noise=0.2), "features"),
    "digits-full": (DigitsTask(name="digits"), "features"),
    "regression": (LinearRegressionTask(name="linear_regression", d=20, n_train=15, n_test=30), "features"),
}
TENSORS = ("x_train", "y_train", "x_test", "y_test", "y_train_clean")


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    """Keep the MNIST-1D disk cache out of the user's home during tests."""
    monkeypatch.setenv("PHENOLAB_CACHE", str(tmp_path / "cache"))


def _tensors(data: TaskData) -> dict[str, torch.Tensor]:
    return {k: getattr(data, k) for k in TENSORS if getattr(data, k) is not None}


def test_builtin_tasks_registered():
    assert {"modular", "mnist1d", "digits", "linear_regression"} <= set(TASK_BUILDERS)


@pytest.mark.parametrize("key", CONFIGS)
def test_replica_equals_alone_and_deterministic(key):
    cfg, kind = CONFIGS[key]
    batch = build_task(cfg, [2, 3, 5], kind)
    alone = build_task(cfg, [3], kind)
    again = build_task(cfg, [2, 3, 5], kind)
    assert batch.replicas == 3 and alone.replicas == 1
    for name, t in _tensors(batch).items():
        assert t.device.type == "cpu"
        assert torch.equal(t[1], getattr(alone, name)[0]), name
        assert torch.equal(t, getattr(again, name)), name
    if key != "digits-full":  # seeds differ somewhere: split, subset, noise or data
        assert not torch.equal(batch.y_train[0], batch.y_train[2])


def test_modular_shapes_features_and_tokens():
    p = 7
    feats = build_task(ModularTask(name="modular", p=p, train_fraction=0.5), [0, 1], "features",
                       torch.float64)
    n_train = round(0.5 * p * p)
    assert feats.x_train.shape == (2, n_train, 2 * p) and feats.x_train.dtype == torch.float64
    assert feats.x_test.shape == (2, p * p - n_train, 2 * p)
    assert feats.y_train.dtype == torch.int64 and feats.y_train.shape == (2, n_train)
    assert (feats.input_dim, feats.out_dim, feats.num_classes, feats.seq_len) == (2 * p, p, p, None)
    assert feats.y_train_clean is None
    assert torch.equal(feats.x_train.sum(-1), torch.full((2, n_train), 2.0, dtype=torch.float64))

    toks = build_task(ModularTask(name="modular", p=p), [0, 1], "tokens")
    assert toks.x_train.dtype == torch.int64 and toks.x_train.shape == (2, n_train, 4)
    assert (toks.input_dim, toks.seq_len, toks.num_classes) == (p + 2, 4, p)
    assert torch.all(toks.x_train[..., 1] == p) and torch.all(toks.x_train[..., 3] == p + 1)
    a, b = toks.x_train[..., 0], toks.x_train[..., 2]
    assert torch.equal(toks.y_train, (a + b) % p)
    # The same seed splits the same way whatever the input encoding.
    assert torch.equal(feats.x_train[..., :p].argmax(-1), a)
    assert torch.equal(feats.x_train[..., p:].argmax(-1), b)
    # Train and test together cover every pair exactly once.
    all_pairs = torch.cat([toks.x_train[0], toks.x_test[0]])[:, [0, 2]]
    assert len({tuple(r) for r in all_pairs.tolist()}) == p * p


@pytest.mark.parametrize("p", [2, 5, 97])
def test_modular_division_is_multiplication_by_inverse(p):
    a, b, y = modular_table(p, "/")
    assert len(y) == p * (p - 1) and torch.all(b != 0)
    assert torch.all((y * b) % p == a)
    if p > 3:  # a public repo's "division" was a * b: make sure ours is not
        _, _, y_mul = modular_table(p, "*")
        assert not torch.equal(y, (a * b) % p)
        assert y_mul.shape[0] == p * p


def test_modular_ops_labels():
    p = 11
    for op, f in [("+", lambda a, b: a + b), ("-", lambda a, b: a - b), ("*", lambda a, b: a * b),
                  ("x2+xy+y2", lambda a, b: a * a + a * b + b * b), ("x3+xy", lambda a, b: a**3 + a * b)]:
        a, b, y = modular_table(p, op)
        assert [int(v) for v in y] == [f(int(x), int(z)) % p for x, z in zip(a, b, strict=True)], op
    a, b, y = modular_table(p, "x3+xy")
    table = y.reshape(p, p)
    assert not torch.equal(table, table.T)  # non-commutative, as Power et al. intend


def test_modular_rejects_composite_division_and_bad_kind():
    assert [n for n in range(20) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19]
    with pytest.raises(ValueError, match="prime"):
        build_task(ModularTask(name="modular", p=12, op="/"), [0])
    build_task(ModularTask(name="modular", p=12, op="*"), [0])  # other ops accept any p
    with pytest.raises(ValueError, match="input_kind"):
        build_task(ModularTask(name="modular", p=5), [0], "pixels")


def test_modular_label_noise_fraction():
    p, frac = 97, 0.2
    data = build_task(ModularTask(name="modular", p=p, label_noise=frac), [0, 1])
    changed = (data.y_train != data.y_train_clean).float().mean().item()
    assert changed == pytest.approx(frac * (1 - 1 / p), abs=0.02)
    assert torch.all((data.y_train >= 0) & (data.y_train < p))
    assert torch.all(data.y_test == build_task(ModularTask(name="modular", p=p), [0, 1]).y_test)


@pytest.mark.parametrize("task", ["mnist1d", "digits", "linear_regression"])
def test_feature_tasks_reject_tokens(task):
    cfg = {"mnist1d": Mnist1dTask(**SMALL_MNIST1D), "digits": DigitsTask(name="digits"),
           "linear_regression": LinearRegressionTask(name="linear_regression", d=3)}[task]
    with pytest.raises(ValueError, match=f"task '{task}' gives feature inputs; model needs tokens"):
        build_task(cfg, [0], "tokens")


def test_mnist1d_shapes_shared_views_and_noise():
    data = build_task(Mnist1dTask(**SMALL_MNIST1D), [0, 1, 2], "features", torch.float64)
    assert data.x_train.shape == (3, 320, 40) and data.x_test.shape == (3, 80, 40)
    assert data.x_train.dtype == torch.float64 and data.y_train.dtype == torch.int64
    assert (data.input_dim, data.out_dim, data.num_classes, data.y_train_clean) == (40, 10, 10, None)
    for t in (data.x_train, data.y_train, data.x_test, data.y_test):  # one copy, K views
        assert t.stride(0) == 0 and t[0].data_ptr() == t[2].data_ptr()

    noisy = build_task(Mnist1dTask(**SMALL_MNIST1D, label_noise=0.5), [0, 1, 2])
    assert noisy.x_train.stride(0) == 0 and noisy.x_test.stride(0) == 0
    assert torch.equal(noisy.y_train_clean[0], data.y_train[0])
    changed = (noisy.y_train != noisy.y_train_clean).float().mean().item()
    assert changed == pytest.approx(0.5 * 0.9, abs=0.05)  # randint(0, 10) keeps ~1 in 10

    sub = build_task(Mnist1dTask(**SMALL_MNIST1D, train_size=30), [0, 1])
    assert sub.x_train.shape == (2, 30, 40) and sub.x_test.stride(0) == 0
    assert not torch.equal(sub.x_train[0], sub.x_train[1])
    with pytest.raises(ValueError, match="train_size"):
        build_task(Mnist1dTask(**SMALL_MNIST1D, train_size=321), [0])


def test_mnist1d_leaves_global_rng_untouched():
    mnist1d_mod.load_arrays.cache_clear()
    random.seed(123)
    np.random.seed(456)
    py_state, np_state = random.getstate(), np.random.get_state()
    build_task(Mnist1dTask(name="mnist1d", num_samples=200, data_seed=7), [0])
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]


def test_mnist1d_disk_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("PHENOLAB_CACHE", str(tmp_path / "c"))
    cfg = Mnist1dTask(name="mnist1d", num_samples=300, data_seed=11)
    args = mnist1d_mod.dataset_args(cfg)
    mnist1d_mod.load_arrays.cache_clear()
    first = build_task(cfg, [0])
    files = list((tmp_path / "c").iterdir())
    assert [f.name for f in files] == [mnist1d_mod.cache_path(args).name]  # no temp file left behind
    with np.load(files[0], allow_pickle=False) as f:
        assert sorted(f.files) == ["x", "x_test", "y", "y_test"]

    # A fresh process (empty in-memory cache) reads the file and never regenerates.
    mnist1d_mod.load_arrays.cache_clear()
    with monkeypatch.context() as m:
        m.setattr(mnist1d_mod, "generate", lambda args: pytest.fail("regenerated despite the cache"))
        second = build_task(cfg, [0])
    for name, t in _tensors(first).items():
        assert torch.equal(t, getattr(second, name)), name

    # Generation itself is deterministic (same file content without any cache), and args matter.
    fresh = mnist1d_mod.generate(args)
    assert all(np.array_equal(fresh[k], mnist1d_mod.load_arrays(args)[k]) for k in fresh)
    other = mnist1d_mod.dataset_args(cfg.model_copy(update={"data_seed": 12}))
    assert mnist1d_mod.cache_path(other) != mnist1d_mod.cache_path(args)

    # A corrupt cache file is regenerated, not fatal.
    mnist1d_mod.load_arrays.cache_clear()
    files[0].write_bytes(b"not an npz")
    assert np.array_equal(mnist1d_mod.load_arrays(args)["x"], fresh["x"])
    with np.load(files[0], allow_pickle=False) as f:  # and the file was rewritten
        assert np.array_equal(f["x"], fresh["x"])


@pytest.mark.slow
def test_mnist1d_greydanus_kobak_sizes():
    """The double-descent setting's split and noise: 16000 samples → 4000 / 12000, ~13.5% wrong."""
    data = build_task(Mnist1dTask(name="mnist1d", num_samples=16000, train_split=0.25, label_noise=0.15),
                      [0])
    assert data.x_train.shape == (1, 4000, 40) and data.x_test.shape == (1, 12000, 40)
    changed = (data.y_train != data.y_train_clean).float().mean().item()
    assert changed == pytest.approx(0.135, abs=0.015)
    assert abs(data.x_train.mean().item()) < 0.1  # make_dataset standardizes the whole set


def test_digits_fixed_split_and_subset():
    full = build_task(DigitsTask(name="digits"), [0, 1])
    n_test = round(0.3 * 1797)
    assert full.x_train.shape == (2, 1797 - n_test, 64) and full.x_test.shape == (2, n_test, 64)
    assert (full.input_dim, full.num_classes) == (64, 10)
    assert float(full.x_train.min()) == 0.0 and float(full.x_train.max()) == 1.0
    assert full.x_train.stride(0) == 0 and full.x_test.stride(0) == 0
    other_split = build_task(DigitsTask(name="digits", split_seed=1), [0])
    assert not torch.equal(other_split.y_test[0], full.y_test[0])

    sub = build_task(DigitsTask(name="digits", train_size=200, label_noise=0.3), [0, 1])
    assert sub.x_train.shape == (2, 200, 64) and torch.equal(sub.x_test, full.x_test)
    changed = (sub.y_train != sub.y_train_clean).float().mean().item()
    assert changed == pytest.approx(0.3 * 0.9, abs=0.07)
    # Each subset row is a training image with its clean label.
    train_rows = {tuple(r): int(c) for r, c in zip(full.x_train[0].tolist(), full.y_train[0], strict=True)}
    assert all(train_rows[tuple(r)] == int(c)
               for r, c in zip(sub.x_train[1].tolist(), sub.y_train_clean[1], strict=True))


def test_linear_regression_shapes_and_model():
    cfg = LinearRegressionTask(name="linear_regression", d=8, n_train=2000, n_test=50, noise_std=0.5)
    data = build_task(cfg, [0, 1], "features", torch.float64)
    assert data.x_train.shape == (2, 2000, 8) and data.y_train.shape == (2, 2000, 1)
    assert data.x_test.shape == (2, 50, 8) and data.y_test.shape == (2, 50, 1)
    assert data.y_train.dtype == torch.float64 and data.x_test.dtype == torch.float64
    assert (data.input_dim, data.out_dim, data.num_classes, data.y_train_clean) == (8, 1, None, None)
    beta = torch.linalg.lstsq(data.x_train, data.y_train).solution  # [2, 8, 1]
    assert torch.allclose(beta.norm(dim=1).squeeze(), torch.ones(2, dtype=torch.float64), atol=0.05)
    resid = data.y_train - data.x_train @ beta
    assert resid.std().item() == pytest.approx(0.5, abs=0.03)
    single = build_task(cfg, [0], "features", torch.float32)
    assert single.x_train.dtype == torch.float32
    assert torch.allclose(single.x_train[0].double(), data.x_train[0], atol=1e-6)
    noiseless = build_task(cfg.model_copy(update={"noise_std": 0.0}), [0], "features", torch.float64)
    exact = torch.linalg.lstsq(noiseless.x_train, noiseless.y_train).solution  # the true β of seed 0
    assert exact.norm().item() == pytest.approx(1.0, abs=1e-9)
    assert torch.allclose(noiseless.y_test, noiseless.x_test @ exact, atol=1e-9)  # same β on test
    assert torch.allclose(exact, beta[:1], atol=0.05)  # noise_std only scales ε: same draws
