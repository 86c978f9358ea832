"""MNIST-1D (Greydanus & Kobak 2024), generated procedurally and cached, never downloaded.

`mnist1d.data.get_dataset` downloads by default and swallows errors, so this calls
`make_dataset` directly. Generation takes seconds and reseeds the global `random` / `np.random`
state; we restore both afterwards and cache the arrays in-process and on disk (`.npz`, no pickle)
under `$PHENOLAB_CACHE` (default `~/.cache/phenolab`), keyed by a hash of the generation args.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import random
import tempfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from phenolab._cache import cache_dir
from phenolab.settings import Mnist1dTask
from phenolab.tasks._base import TaskData, register_task
from phenolab.tasks.noise import check_input_kind, replicate_train

NUM_CLASSES = 10
_ARRAYS = ("x", "y", "x_test", "y_test")
_FORMAT = "phenolab-mnist1d-v1"

# (name, value) pairs, in `make_dataset`'s argument names; hashable for the caches.
Mnist1dArgs = tuple[tuple[str, object], ...]


def dataset_args(cfg: Mnist1dTask) -> Mnist1dArgs:
    """The `make_dataset` arguments a config stands for (its `data_seed` is their `seed`)."""
    return (
        ("num_samples", cfg.num_samples), ("train_split", cfg.train_split),
        ("template_len", cfg.template_len), ("padding", tuple(cfg.padding)),
        ("scale_coeff", cfg.scale_coeff), ("max_translation", cfg.max_translation),
        ("corr_noise_scale", cfg.corr_noise_scale), ("iid_noise_scale", cfg.iid_noise_scale),
        ("shear_scale", cfg.shear_scale), ("shuffle_seq", cfg.shuffle_seq),
        ("final_seq_length", cfg.final_seq_length), ("seed", cfg.data_seed),
    )


def cache_path(args: Mnist1dArgs) -> Path:
    """Disk-cache file for `args`; the key includes the mnist1d version, whose code makes the data."""
    key = json.dumps({"format": _FORMAT, "mnist1d": _mnist1d_version(), "args": dict(args)}, sort_keys=True)
    return cache_dir() / f"mnist1d-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"


def generate(args: Mnist1dArgs) -> dict[str, np.ndarray]:
    """Run `make_dataset` (x float64 `[N, L]`, y int64), leaving the global RNG states as found."""
    from mnist1d.data import make_dataset  # heavy import (matplotlib, requests): only when needed

    ns = SimpleNamespace(**dict(args), url=None)
    ns.padding = list(ns.padding)
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(ns)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {
        "x": np.asarray(data["x"], dtype=np.float64), "y": np.asarray(data["y"], dtype=np.int64),
        "x_test": np.asarray(data["x_test"], dtype=np.float64),
        "y_test": np.asarray(data["y_test"], dtype=np.int64),
    }


@functools.lru_cache(maxsize=8)
def load_arrays(args: Mnist1dArgs) -> dict[str, np.ndarray]:
    """The data set for `args`: from memory, else disk, else generated and written to disk.

    Arrays are read-only because they are shared by every later call (builders copy them).
    """
    path = cache_path(args)
    arrays = _read_npz(path)
    if arrays is None:
        arrays = generate(args)
        _write_npz(path, arrays)
    for arr in arrays.values():
        arr.flags.writeable = False
    return arrays


def _read_npz(path: Path) -> dict[str, np.ndarray] | None:
    """A cached data set, or None when absent or unreadable (it is then regenerated)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in _ARRAYS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically (temp file + os.replace) so concurrent runs never see a partial file.
    A cache that cannot be written is skipped: the data was generated anyway."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a shared cache should be readable
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _mnist1d_version() -> str:
    try:
        return importlib.metadata.version("mnist1d")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_mnist1d(cfg: Mnist1dTask, seeds: list[int], input_kind: str, dtype: torch.dtype) -> TaskData:
    """One fixed data set (by `data_seed`) shared by all replicas; per replica an optional training
    subset (`"subset"`) and label noise (`"noise"`): a share `label_noise` of the training labels is
    replaced by randint(0, 10), as Greydanus & Kobak do, so only ~90% of those actually change."""
    check_input_kind("mnist1d", input_kind)
    arrays = load_arrays(dataset_args(cfg))
    x = torch.tensor(arrays["x"], dtype=dtype)
    y = torch.tensor(arrays["y"], dtype=torch.int64)
    x_test = torch.tensor(arrays["x_test"], dtype=dtype)
    y_test = torch.tensor(arrays["y_test"], dtype=torch.int64)
    x_train, y_train, y_clean = replicate_train(x, y, seeds, cfg.train_size, cfg.label_noise, NUM_CLASSES)
    k = len(seeds)
    return TaskData(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test.unsqueeze(0).expand(k, *x_test.shape),
        y_test=y_test.unsqueeze(0).expand(k, *y_test.shape),
        input_kind="features",
        input_dim=x.shape[1],
        out_dim=NUM_CLASSES,
        num_classes=NUM_CLASSES,
        y_train_clean=y_clean,
    )


register_task("mnist1d", build_mnist1d)
