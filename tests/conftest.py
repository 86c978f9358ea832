"""Test defaults: one torch thread per worker (bitwise comparisons, no oversubscription)."""

import os

import pytest

# isort: off
import phenolab  # noqa: F401  (before torch, as the CLI does: MKL's vendor check, `phenolab/_mkl_amd.py`)
import torch
# isort: on

torch.set_num_threads(1)
os.environ.setdefault("PHENOLAB_THREADS", "1")
os.environ.setdefault("PHENOLAB_BUSY_NOTE", "0")  # the tests load the CPU themselves (tests/cli/test_log_progress.py)


@pytest.fixture
def catalog_path(tmp_path):
    return tmp_path / "cat" / "catalog.db"


@pytest.fixture
def two_threads():
    """Two torch threads for one test (replica threads split only with more than one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
