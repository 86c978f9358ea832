"""Command lines made by mutating documented ones (a token replaced, dropped, added, doubled or swapped; a
misspelt flag or field; a value of the wrong type, out of range, NaN or ±inf, huge, empty or unicode),
run in-process through the real entry point against a small catalog. For every case: exit 0, or
exit 2 with exactly one `error:` line and the catalog (runs, curves, settings, notes with the hypothesis
log) exactly as it was; never a traceback; `PRAGMA integrity_check` ok.

PHENOLAB_DEBUG=1 is set, so an unexpected exception is raised here (a failure, shrunk by hypothesis)
rather than turned into the last-resort handler's line. A case whose training would take more than a
fraction of a second is dropped before it trains (`hypothesis.reject`), so every one that trains is tiny.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import event, given, note, reject, seed
from hypothesis import strategies as st

import phenolab
from phenolab.execute import local
from tests.fuzz.common import TINY_ARGS, error_lines, fingerprint, integrity, small_catalog
from tests.fuzz.conftest import SEED, fuzz_settings
from tests.fuzz.test_fuzz_settings import HUGE, SECTIONS, misspell

T = TINY_ARGS
# documented command lines with tiny budgets; @cat is the catalog, @run a stored run, @setting its setting,
# @tmp the test's folder
COMMANDS = [
    ["train", "gromov2023", *T, "--seeds", "0-2", "--no-figure", "--catalog", "@cat"],
    ["train", "gromov2023", *T, "--seeds", "0-2", "--dry-run", "--json", "--catalog", "@cat"],
    ["sweep", "gromov2023", *T, "--grid", "model.width=8,16", "--seeds", "2", "--dry-run", "--catalog", "@cat"],
    ["sweep", "gromov2023", *T, "--grid", "optim.weight_decay=0:1:2", "--seeds", "0-1", "--dry-run", "--json",
     "--catalog", "@cat"],
    ["reproduce", "grokking", "--setting", "gromov2023", *T, "--seeds", "3", "--dry-run", "--catalog", "@cat"],
    ["reproduce", "double-descent", "--setting", "nakkiran2021_linear", "--seeds", "2", "--dry-run", "--catalog",
     "@cat"],
    ["reproduce", "lottery", "--seeds", "2", "--rounds", "2", "--dry-run", "--catalog", "@cat"],
    ["phase", "grokking", *T, "--grid", "task.train_fraction=0.3,0.6", "--grid", "optim.weight_decay=0,1",
     "--seeds", "2", "--dry-run", "--catalog", "@cat"],
    ["audit", "grokking", "--setting", "gromov2023", *T, "--seeds", "2", "--dry-run", "--catalog", "@cat"],
    ["runs", "--catalog", "@cat", "--limit", "5"],
    ["runs", "--where", "task.p=13", "--json", "--catalog", "@cat"],
    ["curves", "@run", "--metric", "test_acc", "--catalog", "@cat"],
    ["curves", "@run", "--csv", "@tmp/c.csv", "--catalog", "@cat"],
    ["show", "@run", "--catalog", "@cat"],
    ["show", "@setting", "--catalog", "@cat"],
    ["settings"],
    ["settings", "gromov2023", "--json"],
    ["hypothesis", "list", "--catalog", "@cat"],
    ["hypothesis", "show", "tiny-weight-norm", "--catalog", "@cat"],
    ["hypothesis", "verify", "--json", "--catalog", "@cat"],
    ["rerun", "@run", "--catalog", "@cat"],
    ["checklist", "--list"],
]
FLAGS = ["--seeds", "--set", "--grid", "--catalog", "--threads", "--json", "--dry-run", "--device", "--setting",
         "--quick", "--metric", "--out", "--csv", "--where", "--limit", "--executor", "--max-replicas", "--no-figure",
         "--figure", "--rounds", "--file", "-s", "-g", "-c", "--", "-", "--sedds", "--sets", "--catalgo", "--Seeds",
         "--threads=0", "--seeds=3", "--help"]
WORDS = ["gromov2023", "gromv2023", "grokking", "grokkin", "nanda2023", "mnist1d_mlp", "double-descent", "lottery",
         "x-0", "deadbeef-0", "0", "-1", "3", "0-2", "2-0", "0-", "-", "a-b", "0,,3", "0-99999999999", "1e3", "",
         " ", "é", "🙂", "名前", "\u200b", "cpu", "cuda", "cuda:7", "mps", "auto", "local", "ray", "@tmp/nope",
         "@tmp/nope/x.csv", "@tmp", "@cat", "/", "null", "true", "nan", "inf", "-inf", "x" * 200]
FIELDS = sorted({f"{s}.{f}" for s, fs in SECTIONS.items() for f in fs} | {"measures", "loss", "dtype", "checkpoints"})
VALUES = ["-1", "0", "1", "2", "3", "13", "0.5", "1.5", "-0.5", "1e-9", "nan", "NaN", "inf", "-inf", "Infinity",
          "1e999", "true", "false", "null", "", " ", "é", "🙂", "[]", "[1,2]", "[300,100]", "{}", '{"a":1}', "abc",
          "/", "+", "adam", "sgd", "mlp", "relu", '["weight_norm"]', '["wieght_norm"]', "9" * 30, "1:2:3",
          "0:1:3:log", "1,2", "-1:1:3:log", *map(str, HUGE)]
MAX_WORK = 2e9  # steps × replicas × parameters a case may train (a fraction of a second)


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-cli")
    small_catalog(root / "cat")
    return root


@st.composite
def token(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["flag", "word", "field=value", "field=value", "text"]))
    if kind == "flag":
        return draw(st.sampled_from(FLAGS))
    if kind == "word":
        return draw(st.sampled_from(WORDS))
    if kind == "text":
        return draw(st.text(max_size=6))
    field = draw(st.sampled_from(FIELDS))
    if draw(st.integers(0, 3)) == 0:
        field = misspell(draw, field)
    return f"{field}={draw(st.sampled_from(VALUES))}"


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    argv = list(draw(st.sampled_from(COMMANDS)))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["replace", "replace", "value", "drop", "insert", "double", "swap"]))
        i = draw(st.integers(0, len(argv) - 1)) if argv else 0
        if not argv or op == "insert":
            argv.insert(i, draw(token()))
        elif op == "replace":
            argv[i] = draw(token())
        elif op == "value" and "=" in argv[i]:
            field, _, _ = argv[i].partition("=")
            argv[i] = f"{field}={draw(st.sampled_from(VALUES))}"
        elif op == "value":
            argv[i] = misspell(draw, argv[i])
        elif op == "drop":
            del argv[i]
        elif op == "double":
            argv.insert(i, argv[i])
        elif i + 1 < len(argv):
            argv[i], argv[i + 1] = argv[i + 1], argv[i]
    return argv


def expand(argv: list[str], root: Path) -> list[str]:
    cat = phenolab.Catalog(root / "cat" / "catalog.db")
    first = cat.runs().iloc[0]
    names = {"@cat": str(cat.path), "@run": str(first["run_id"]), "@setting": str(first["setting_id"])}
    return [names.get(a, a.replace("@tmp", str(root))) for a in argv]


def guarded(train_batch):
    """`train_batch`, for cases whose work is tiny; a bigger one is dropped before it trains."""
    from phenolab.engine import total_steps
    from phenolab.execute.memory import parameter_count, task_shape

    def run(batch, device, progress=None):
        shape = task_shape(batch.setting)
        count = parameter_count(batch.setting, shape) if shape is not None else None
        if shape is None or count is None:
            reject()
        steps = 1 if batch.setting.optim.name == "lstsq" else total_steps(batch.setting, shape.n_train)
        if steps * batch.size * max(count, shape.n_train * shape.input_dim) > MAX_WORK:
            reject()
        event("trained a batch")
        return train_batch(batch, device, progress)

    return run


@seed(SEED)
@fuzz_settings(500)
@given(argv=command_lines())
def test_a_mutated_command_line_exits_0_or_is_one_line_and_changes_nothing(place, argv, monkeypatch_module):
    args = expand(argv, place)
    note(f"phenolab {' '.join(argv)}")
    db = place / "cat" / "catalog.db"
    before = fingerprint(db)
    code, err = run(args)
    event(f"{argv[0] if argv else '(none)'}: exit {code}")
    lines = error_lines(err)
    assert "Traceback" not in err, err
    assert code in (0, 2), f"exit {code}: {err}"
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert fingerprint(db) == before, "a refused command changed the catalog"
    assert integrity(db) == "ok"


def run(args: list[str]) -> tuple[int, str]:
    """`phenolab.cli.main` in this process: (exit code, stderr)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from phenolab.cli import _common, main

    err, out = io.StringIO(), io.StringIO()
    old_argv, old_out, old_err = sys.argv, _common.console.file, _common.err_console.file
    sys.argv = ["phenolab", *args]
    _common.console.file, _common.err_console.file = out, err
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else 0
    finally:
        sys.argv = old_argv
        _common.console.file, _common.err_console.file = old_out, old_err
    return code, err.getvalue()


@pytest.fixture(scope="module")
def monkeypatch_module(place):
    """For the whole module: unexpected exceptions raised (not the handler's line), training guarded,
    a memory limit (a big model is refused at once), one thread, progress quiet."""
    mp = pytest.MonkeyPatch()
    mp.delenv("PHENOLAB_CATALOG", raising=False)  # a command without --catalog writes below the test's folder
    mp.setenv("PHENOLAB_DEBUG", "1")
    mp.setenv("PHENOLAB_MEMORY", "1GiB")
    mp.setenv("PHENOLAB_THREADS", "1")
    mp.setenv("PHENOLAB_PROGRESS_EVERY", "0")
    mp.setattr(local, "train_batch", guarded(local.train_batch))
    mp.chdir(place)
    yield mp
    mp.undo()
