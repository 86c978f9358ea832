"""The plan's time estimate: modelled from the engine's step cost, within a factor of a few of a
real run on this machine, None where it is not modelled, and printed in the plan line."""

from __future__ import annotations

import time

import pytest

import phenolab
from phenolab.execute import plan_batches
from phenolab.execute.estimate import batch_seconds, plan_seconds, say_seconds
from phenolab.settings import named_setting
from tests.helpers import ok


def test_seconds_are_said_in_a_unit_a_reader_takes_in() -> None:
    assert [say_seconds(s) for s in (None, 0.2, 40.4, 200, 9000)] == ["", "≈ 1 s", "≈ 40 s", "≈ 3 min", "≈ 2.5 h"]


def test_mlps_and_transformers_trained_by_steps_are_modelled() -> None:
    assert batch_seconds(named_setting("belkin2019_rff"), 3) is None  # an exact solve
    nanda = named_setting("nanda2023")
    small, large = (batch_seconds(nanda.with_overrides({"model.d_model": d}), 1) for d in (32, 128))
    assert small is not None and large is not None and large > 4 * small  # d_model² work
    one, ten = batch_seconds(named_setting("gromov2023"), 1), batch_seconds(named_setting("gromov2023"), 10)
    assert one is not None and ten is not None and 1 < ten / one < 10  # a fixed per-step cost is shared


@pytest.mark.slow
def test_the_estimate_is_within_a_few_times_of_the_run(tmp_path) -> None:
    setting = named_setting("mnist1d_mlp").with_overrides({"schedule.epochs": 3})
    batches = plan_batches([setting], [0, 1, 2, 3], None)
    modelled = plan_seconds(batches)
    start = time.perf_counter()
    phenolab.run(setting, [0, 1, 2, 3], catalog=tmp_path)
    taken = time.perf_counter() - start
    assert modelled is not None and taken / 5 < modelled < taken * 5, (modelled, taken)


def test_the_plan_line_says_it(tmp_path) -> None:
    out = ok("reproduce", "ensembles", "--seeds", "2", "--dry-run", "-c", tmp_path)
    assert "to train (≈" in out and "on this machine, modelled)" in out
