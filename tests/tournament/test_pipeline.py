"""The whole path on real tiny training, through the CLI: plan, register, train, score, a complete
leaderboard, show / list / explanation, and the report's tournaments page."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from phenolab import Catalog
from tests.helpers import ok
from tests.tournament.conftest import tiny_tournament


@pytest.mark.slow
def test_the_pipeline_on_tiny_training_gives_a_complete_leaderboard(tmp_path: Path, tiny_file: Path) -> None:
    cat = tmp_path / "cat"
    plan = json.loads(ok("tournament", "run", tiny_file, "--catalog", cat, "--dry-run", "--json"))
    assert not plan["registered"] and len(plan["scope"]["to_train"]) == 2 and len(plan["held_out"]["to_train"]) == 4
    assert not cat.exists()  # a dry run writes nothing

    result = json.loads(ok("tournament", "run", tiny_file, "--catalog", cat, "--json"))
    s = result["scores"]
    names = ["weight-norm", "fourier", "distance", "prime-count", "time", "magnitude"]
    assert sorted(s["ranking"]) == sorted(names) and s["n_runs"] == 4
    for name in names:
        c = s["competitors"][name]
        assert math.isfinite(c["mae"]) and c["boot"]["mae"]["ci95"] is not None
        assert set(c["skill"]) == {"time", "magnitude"} - {name}
        if c["role"] == "explanation":
            assert c["breadth"]["of"] == 2 and "partial" in c
            assert c["intervention"]["status"] in ("pass", "fail", "inconclusive")
    assert len(s["pairwise"]) == 15 and all(0 < p["p_holm"] <= 1 for p in s["pairwise"])
    assert Path(result["figure"]).is_file()
    assert set(result["runs"]["held_out"]) == set(plan["held_out"]["to_train"])

    table = ok("tournament", "show", "tiny-grokking", "--catalog", cat)
    assert "skill vs time" in table or "skill vs time=" in table
    again = json.loads(ok("tournament", "run", tiny_file, "--catalog", cat, "--dry-run", "--json"))
    assert again["registered"] and again["held_out"]["to_train"] == [] and not again["blocked"]
    listing = json.loads(ok("tournament", "list", "--catalog", cat, "--json"))
    assert [r["name"] for r in listing] == ["tiny-grokking"] and listing[0]["ranking"] == s["ranking"]
    across = json.loads(ok("tournament", "explanation", "weight-norm", "--catalog", cat, "--json"))
    assert len(across) == 1 and across[0]["phenomenon"] == "grokking"
    assert "hypothesis log ok: 2 entries" in ok("hypothesis", "verify", "--catalog", cat)

    ok("report", "--catalog", cat)
    page = (Catalog(cat).root / "report" / "tournaments.html").read_text()
    assert "tiny-grokking" in page and "prime-count" in page and "figures/tournament-" in page
    assert "tiny-grokking" not in (Catalog(cat).root / "report" / "hypotheses.html").read_text()


def test_a_blocked_registration_shows_in_the_plan(tmp_path: Path) -> None:
    from phenolab.execute import plan_batches, run_local
    from phenolab.tournament import validate_tournament

    t = validate_tournament(tiny_tournament())
    cat = Catalog(tmp_path / "cat")
    held, seed = t.held_out_settings()[0][0], t.held_out_seeds()[0][1]
    run_local(plan_batches([held], [seed], cat), cat)
    path = tmp_path / "t.json"
    path.write_text(json.dumps(tiny_tournament()))
    plan = json.loads(ok("tournament", "run", path, "--catalog", cat.root, "--dry-run", "--json"))
    assert plan["blocked"] and plan["blocking_runs"] == [f"{held.id}-{seed}"]
