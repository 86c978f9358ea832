"""The Python API with mutated arguments (seeds as text, floats, bools, negative or huge numbers; overrides
that are not mappings or name no field; catalog paths that cannot be made; unknown names and devices):
each call returns, or raises phenolab's own `SettingError` / `CatalogError` with one line, and a
refused call leaves the catalog as it was. Training is guarded as in the command-line fuzz."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, note, seed
from hypothesis import strategies as st

import phenolab
from phenolab.catalog import CatalogError
from phenolab.execute import local
from phenolab.reproduction import plan_reproduction
from phenolab.settings import SettingError
from tests.fuzz.common import TINY, fingerprint, integrity, small_catalog
from tests.fuzz.conftest import SEED, fuzz_settings
from tests.fuzz.test_fuzz_cli import guarded

SETTING = phenolab.resolve_setting("gromov2023", TINY)
SEEDS: list[Any] = [3, 0, -1, 2**70, True, 2.0, 2.5, "3", "0-2", "a-b", "", None, [], [0, 1], [0, 0], [-1], [1.0],
                    ["0"], [True], (2, 1), range(3), range(-1, 2), np.arange(3), np.array([0.5]), np.int64(2),
                    {0: 1}, {1, 2}, b"01", [2**63], [[0]], object()]
OVERRIDES: list[Any] = [None, {}, dict(TINY), {"task.p": 100, "task.op": "/"}, {"model.widht": 8}, {"": 1},
                        {"a..b": 1}, {3: 4}, {"optim.lr": float("nan")}, {"modle.width": 8}, ["task.p=13"],
                        "task.p=13", 13, {"task.p": True}, {"measures": ["wieght_norm"]}, {"task": "modular"}]
CATALOGS = ["@tmp/c", "@tmp/file.txt/c", "@tmp/" + "x" * 300, "@tmp/\x1e", "", " ", None, 3, "@cat",
            "@tmp/new/deeper/c.db", Path("@tmp/c"), b"/tmp"]
DEVICES: list[Any] = ["cpu", "auto", "cuda:7", "mps", "", "CPU", None, 0, "cuda:-1"]
NAMES: list[Any] = ["grokking", "grokkin", "double-descent", "lottery", "figure4", "", None, 3, "gromov2023"]
SETTINGS: list[Any] = ["gromov2023", "gromv2023", "nanda2023", "", None, 7, "@tmp/missing.yaml", "x.toml"]


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-api")
    small_catalog(root / "cat")
    (root / "file.txt").write_text("a file\n")
    mp = pytest.MonkeyPatch()
    mp.delenv("PHENOLAB_CATALOG", raising=False)  # no catalog given: ./phenolab-catalog below the test's folder
    mp.setenv("PHENOLAB_MEMORY", "1GiB")
    mp.setattr(local, "train_batch", guarded(local.train_batch))
    mp.chdir(root)
    yield root
    mp.undo()


def where(value: Any, root: Path) -> Any:
    if isinstance(value, Path):
        return Path(where(str(value), root))
    if not isinstance(value, str):
        return value
    return root / "cat" / "catalog.db" if value == "@cat" else value.replace("@tmp", str(root))


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    fn = draw(st.sampled_from(["run", "train", "plan_reproduction", "reproduce", "resolve_setting", "named_setting"]))
    if fn in ("run", "train"):
        args = {"setting": draw(st.sampled_from([SETTING, SETTING, {"task": {"name": "modular"}}, "gromov2023"])),
                "seeds": draw(st.sampled_from(SEEDS)), "device": draw(st.sampled_from(DEVICES))}
        if fn == "run":
            args["catalog"] = draw(st.sampled_from(CATALOGS))
        return fn, args
    if fn in ("plan_reproduction", "reproduce"):
        args = {"phenomenon": draw(st.sampled_from(NAMES)), "seeds": draw(st.sampled_from(SEEDS)),
                "overrides": draw(st.sampled_from(OVERRIDES)), "quick": draw(st.sampled_from([False, True, 1, "no"]))}
        if draw(st.booleans()):
            args["setting"] = draw(st.sampled_from(SETTINGS))
        if fn == "reproduce":
            args["catalog"] = draw(st.sampled_from(CATALOGS))
            args["device"] = draw(st.sampled_from(DEVICES))
        return fn, args
    if fn == "resolve_setting":
        return fn, {"base": draw(st.sampled_from(SETTINGS)), "overrides": draw(st.sampled_from(OVERRIDES))}
    return fn, {"name": draw(st.sampled_from(SETTINGS))}


FUNCTIONS = {"run": phenolab.run, "train": phenolab.train, "reproduce": phenolab.reproduce,
             "plan_reproduction": plan_reproduction, "resolve_setting": phenolab.resolve_setting,
             "named_setting": phenolab.named_setting}


@seed(SEED)
@fuzz_settings(200)
@given(call=calls())
def test_a_mutated_api_call_returns_or_raises_one_phenolab_error(place, call):
    fn, raw = call
    args = {k: where(v, place) for k, v in raw.items()}
    note(f"{fn}({raw!r})")
    db = place / "cat" / "catalog.db"
    before = fingerprint(db)
    try:
        FUNCTIONS[fn](**args)
    except (SettingError, CatalogError) as exc:
        event(f"{fn}: {type(exc).__name__}")
        assert str(exc) and "\n" not in str(exc), str(exc)
        assert fingerprint(db) == before
    else:
        event(f"{fn}: returned")
    assert integrity(db) == "ok"
