"""Bad input → what phenolab says: every case run through the real entry point (one line, exit 2, the
catalog unchanged) or the Python API (phenolab's own exception, the same words), and the table in
docs/bad-input.md written from these runs, so the page cannot drift from what the code prints.

`PHENOLAB_WRITE_DOCS=1 pytest tests/cli/test_bad_input_table.py` rewrites the page after a change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import phenolab
from phenolab.catalog import CatalogError
from phenolab.cli._common import COMMON_FLAGS
from phenolab.settings import SettingError
from tests.fuzz.common import TINY, TINY_ARGS, assert_refused_cleanly, fingerprint, small_catalog
from tests.helpers import run_main

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "bad-input.md"
G = ["train", "gromov2023"]

# (what is wrong, argv (@name: a path in the test's folder, @cat: the catalog), fragment, environment)
CLI: list[tuple[str, list[str], str, dict[str, str]]] = [
    ("an operation that needs a prime modulus", [*G, "--set", "task.p=100", "--set", "task.op=/"],
     "needs a prime task.p", {}),
    ("infinity", [*G, "--set", "optim.weight_decay=inf"], "must be a finite number", {}),
    ("NaN", [*G, "--set", "optim.lr=NaN"], "must be a finite number", {}),
    ("a misspelt field", [*G, "--set", "model.widht=64"], "did you mean 'model.width'", {}),
    ("a misspelt section", [*G, "--set", "modle.width=64"], "unknown section 'modle'", {}),
    ("a misspelt section in a file", ["train", "@modle.yaml"], "unknown section 'modle'", {}),
    ("sections missing from a file", ["train", "@missing.yaml"], "missing task, model", {}),
    ("a misspelt choice", [*G, "--set", "optim.name=adma"], "did you mean 'adam'", {}),
    ("a misspelt measure", [*G, "--set", 'measures=["wieght_norm"]'], "did you mean 'weight_norm'", {}),
    ("true for a number", [*G, "--set", "model.width=true"], "expected a number, not true", {}),
    ("a number beyond 64 bits", [*G, "--set", "model.width=" + "9" * 30], "too large", {}),
    ("an empty value", [*G, "--set", "model.width="], "model.width = ''", {}),
    ("half of a pair of fields", [*G, "--set", "optim.grokfast_alpha=0.98"], "Grokfast needs both", {}),
    ("a field the optimizer ignores", [*G, "--set", "optim.ridge=0.1"], "needs optim.name 'lstsq'", {}),
    ("an empty training set", [*G, "--set", "task.train_fraction=0.00001"], "each needs at least 1", {}),
    ("heads that do not divide the width", ["train", "nanda2023", "--set", "model.n_heads=3"],
     "divisible by model.n_heads", {}),
    ("width beside widths", ["train", "frankle_carbin2019_digits", "--set", "model.width=64"],
     "replaces model.width", {}),
    ("a misspelt setting", ["train", "gromv2023"], "did you mean 'gromov2023'", {}),
    ("a misspelt phenomenon", ["reproduce", "grokkin"], "did you mean 'grokking'", {}),
    ("a bare number of seeds in train", [*G, "--seeds", "3"], "did you mean 0-2 (3 seeds) or 3-3 (seed 3)", {}),
    ("seed 0 as a bare number in train", [*G, "--seeds", "0"], "did you mean 0-0 (seed 0)", {}),
    ("zero seeds", ["sweep", "gromov2023", "--seeds", "0"], "give at least 1", {}),
    ("too many seeds", [*G, "--seeds", "0-99999999999"], "at most 100000 seeds", {}),
    ("a negative seed", [*G, "--seeds", "-1"], "expected N or a range", {}),
    ("no threads", [*G, "--threads", "0"], "--threads 0: give 1 to", {}),
    ("negative threads", [*G, "--threads", "-2"], "--threads -2: give 1 to", {}),
    ("PHENOLAB_THREADS that is not a count", G, "PHENOLAB_THREADS='all'", {"PHENOLAB_THREADS": "all"}),
    ("a misspelt flag", [*G, "--sedds", "0-2"], "No such option: --sedds", {}),
    ("a word for a number", [*G, "--threads", "two"], "Invalid value for '--threads'", {}),
    ("a mistyped catalog for a read command", ["runs", "--catalog", "@no-such-catalog"], "no catalog at", {}),
    ("the same for the hypothesis log", ["hypothesis", "list", "--catalog", "@no-such-catalog"], "no catalog at", {}),
    ("a catalog below a file", [*G, *TINY_ARGS, "--seeds", "0-1", "--catalog", "@file.txt/cat"], "is a file", {}),
    ("an output file in a missing folder", ["curves", "@run", "--csv", "@no-such-folder/c.csv", "--catalog", "@cat"],
     "does not exist", {}),
    ("an output file that is a folder", ["plot", "@setting", "--out", "@folder", "--catalog", "@cat"],
     "is a folder; give a file name", {}),
    ("a batch that cannot fit in memory", ["train", "mnist1d_mlp", "--set", "model.width=65536", "--set",
                                           "model.depth=32", "--seeds", "0-1"], "one replica needs about",
     {"PHENOLAB_MEMORY": "4GiB"}),
    ("a memory limit without a unit that parses", [*G, *TINY_ARGS, "--seeds", "0-1"], "PHENOLAB_MEMORY='lots'",
     {"PHENOLAB_MEMORY": "lots"}),
]

SETTING = phenolab.resolve_setting("gromov2023", TINY)
# (what is wrong, the call as shown, the call, fragment); @tmp in a call's path is the test's folder
API = [
    ("a negative seed", "phenolab.run(setting, [-1])", lambda tmp: phenolab.run(SETTING, [-1], tmp / "c"),
     "seed -1 is not an integer"),
    ("a seed that is not an integer", "phenolab.run(setting, [0.5])",
     lambda tmp: phenolab.run(SETTING, [0.5], tmp / "c"), "seed 0.5 is not an integer"),
    ("seeds as text", "phenolab.run(setting, '0-3')", lambda tmp: phenolab.run(SETTING, "0-3", tmp / "c"),
     "give integers, e.g. range(5)"),
    ("a seed twice", "phenolab.train(setting, [1, 1])", lambda tmp: phenolab.train(SETTING, [1, 1]),
     "seed 1 is given twice"),
    ("a catalog that cannot be made", "phenolab.run(setting, 2, 'TMP/file.txt/cat')",
     lambda tmp: phenolab.run(SETTING, 2, tmp / "file.txt" / "cat"), "is a file, not a folder"),
    ("zero seeds", "phenolab.reproduce('grokking', seeds=0)",
     lambda tmp: phenolab.reproduce("grokking", seeds=0, catalog=tmp / "c"), "give 1 to"),
    ("overrides that are not a mapping", "phenolab.reproduce('grokking', overrides=['task.p=13'])",
     lambda tmp: phenolab.reproduce("grokking", overrides=["task.p=13"], catalog=tmp / "c"), "give a mapping"),
    ("overrides as text", "phenolab.resolve_setting('gromov2023', 'task.p=13')",
     lambda tmp: phenolab.resolve_setting("gromov2023", "task.p=13"), "give a mapping"),
    ("a misspelt setting", "phenolab.named_setting('gromov')", lambda tmp: phenolab.named_setting("gromov"),
     "did you mean 'gromov2023'"),
    ("a mapping for a Setting", "phenolab.run({'task': ...}, 2)",
     lambda tmp: phenolab.run({"task": {"name": "modular"}}, 2, tmp / "c"), "give a phenolab.Setting"),
]


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-input")
    small_catalog(root / "cat")
    (root / "modle.yaml").write_text("task: {name: modular, p: 13}\nmodle: {name: mlp, width: 8}\n")
    (root / "missing.yaml").write_text("dtype: float64\n")
    (root / "file.txt").write_text("not a folder\n")
    (root / "folder").mkdir()
    return root


def expand(arg: str, root: Path) -> str:
    cat = phenolab.Catalog(root / "cat" / "catalog.db")
    if arg == "@cat":
        return str(cat.path)
    if arg == "@run":
        return str(cat.runs()["run_id"].iloc[0])
    if arg == "@setting":
        return SETTING.id
    return str(root / arg[1:]) if arg.startswith("@") else arg


def shown(text: str, root: Path) -> str:
    return text.replace(str(root), "TMP")


@pytest.mark.parametrize("what, argv, fragment, env", CLI, ids=[c[0] for c in CLI])
def test_a_bad_command_is_one_line_exit_2_and_changes_nothing(place, what, argv, fragment, env, monkeypatch,
                                                              capsys):
    assert one_cli(place, argv, fragment, env, monkeypatch, capsys)


def one_cli(root: Path, argv: list[str], fragment: str, env: dict[str, str], monkeypatch, capsys) -> str:
    db = root / "cat" / "catalog.db"
    before = fingerprint(db)
    args = [expand(a, root) for a in argv]
    if "--catalog" not in args:
        args += ["--catalog", str(db)]
    with monkeypatch.context() as m:
        for key, value in env.items():
            m.setenv(key, value)
        capsys.readouterr()
        code, _, err = run_main(monkeypatch, capsys, *args)
    line = assert_refused_cleanly(code, err, before, db, " ".join(argv))
    assert fragment in line, line
    assert not (root / "file.txt" / "cat").exists() and not (root / "no-such-catalog").exists()
    return line


@pytest.mark.parametrize("what, call, fn, fragment", API, ids=[c[0] for c in API])
def test_a_bad_api_call_raises_phenolabs_own_error(place, what, call, fn, fragment):
    assert one_api(place, fn, fragment)


def one_api(root: Path, fn, fragment: str) -> str:
    with pytest.raises((SettingError, CatalogError)) as err:
        fn(root)
    message = str(err.value)
    assert fragment in message and "\n" not in message, message
    assert not (root / "c").exists()
    return f"{type(err.value).__name__}: {message}"


def test_the_page_is_the_table_these_cases_print(place, monkeypatch, capsys):
    """docs/bad-input.md: the flags `phenolab --help` lists, then every case above with what it prints."""
    rows = []
    for what, argv, fragment, env in CLI:
        line = one_cli(place, argv, fragment, env, monkeypatch, capsys)
        prefix = " ".join(f"{k}={v}" for k, v in env.items())
        command = " ".join(["phenolab", *(a if not a.startswith("@") else "PATH" for a in argv)])
        rows.append((what, f"{prefix} {command}".strip(), shown(line, place)))
    api_rows = [(what, call, shown(one_api(place, fn, fragment), place)) for what, call, fn, fragment in API]
    text = render(rows, api_rows)
    if os.environ.get("PHENOLAB_WRITE_DOCS") == "1":
        PAGE.write_text(text, encoding="utf-8")
    assert PAGE.is_file() and PAGE.read_text(encoding="utf-8") == text, (
        "docs/bad-input.md differs from what the cases print: PHENOLAB_WRITE_DOCS=1 pytest "
        "tests/cli/test_bad_input_table.py")


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(rows: list[tuple[str, str, str]], api_rows: list[tuple[str, str, str]]) -> str:
    out = [
        "# Bad input and what phenolab says",
        "",
        "<!-- Written by tests/cli/test_bad_input_table.py from the commands' own output; do not edit by hand:",
        "     PHENOLAB_WRITE_DOCS=1 pytest tests/cli/test_bad_input_table.py -->",
        "",
        "Every check runs before any work: a setting's fields and the rules between them, the seeds, the",
        "threads, every path (a catalog training will write can be created and written; a read command's",
        "catalog exists; an output file's folder exists) and the memory a batch needs. Bad input is one",
        "line on stderr starting `error:`, exit code 2, and the catalog is left as it was. An unexpected",
        "exception is one line too, exit code 70, with its traceback under `PHENOLAB_DEBUG=1`. Ctrl-C or",
        "SIGTERM prints what was kept (every finished batch), what was lost and the command that resumes;",
        "a second Ctrl-C exits at once (exit codes 130 and 143).",
        "",
        "## Flags with one meaning everywhere",
        "",
        "| flag | meaning |",
        "| --- | --- |",
        *(f"| `{flag}` | {cell(meaning)} |" for flag, meaning in COMMON_FLAGS),
        "",
        "## The command line",
        "",
        "TMP stands for the folder the test ran in, PATH for a path the case names.",
        "",
        "| what is wrong | command | what phenolab says (exit code 2) |",
        "| --- | --- | --- |",
        *(f"| {cell(what)} | `{cell(cmd)}` | {cell(line)} |" for what, cmd, line in rows),
        "",
        "## The Python API",
        "",
        "The API refuses what the command line refuses, with phenolab's own exceptions",
        "(`phenolab.SettingError`, `phenolab.CatalogError`, both `ValueError`s) and the same words.",
        "",
        "| what is wrong | call | what it raises |",
        "| --- | --- | --- |",
        *(f"| {cell(what)} | `{cell(call)}` | {cell(line)} |" for what, call, line in api_rows),
        "",
    ]
    return "\n".join(out)
