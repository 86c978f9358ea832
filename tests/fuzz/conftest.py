"""The fuzz suite's seed and settings: a new seed each run unless PHENOLAB_FUZZ_SEED pins one; each
test reports it (a warning in pytest's summary, and in every failure) so a failing run replays with
`PHENOLAB_FUZZ_SEED=N pytest tests/fuzz`."""

from __future__ import annotations

import os
import random
import tempfile
import warnings

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

# hypothesis keeps caches (its unicode tables) in .hypothesis/ of the working folder: not in the tree
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "phenolab-hypothesis"))

SEED = int(os.environ.get("PHENOLAB_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
REPLAY = f"fuzz seed {SEED}: replay with PHENOLAB_FUZZ_SEED={SEED} pytest tests/fuzz"

# examples per test; `PHENOLAB_FUZZ_SCALE=10` runs ten times as many (a longer hunt)
SCALE = float(os.environ.get("PHENOLAB_FUZZ_SCALE", "1"))


class FuzzSeed(UserWarning):
    """Not a problem: how to replay this run's generated cases."""


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings for one fuzz test: no example database (nothing written to the tree), no
    deadline (a case that trains may take a second), `examples` generated cases."""
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, database=None, derandomize=False,
                    print_blob=True, suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def report_seed(request):
    warnings.warn(REPLAY, FuzzSeed, stacklevel=1)
    try:
        yield
    except BaseException as exc:  # pragma: no cover - only on failure
        exc.add_note(REPLAY)
        raise
