"""The newcomer's cases beyond one-line refusals: one meaning of --seeds, read commands on a mistyped
catalog, Ctrl-C and SIGTERM in train, the last-resort handler, and the memory estimate (refuse one
replica that cannot fit, split a batch that can)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import phenolab
from phenolab.cli import _interrupt
from phenolab.cli._common import COMMON_FLAGS
from phenolab.execute import local
from phenolab.execute.memory import BatchTooLarge, estimate, parse_bytes
from tests.fuzz.common import TINY, TINY_ARGS, error_lines, fingerprint, integrity, small_catalog
from tests.helpers import run_main, user_error

SETTING = phenolab.resolve_setting("gromov2023", TINY)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> phenolab.Catalog:
    return small_catalog(tmp_path_factory.mktemp("robust") / "cat")


def test_seeds_n_means_n_seeds_in_reproduce_sweep_and_phase(tmp_path, monkeypatch, capsys):
    cat = str(tmp_path / "c")
    code, out, _ = run_main(monkeypatch, capsys, "reproduce", "grokking", *TINY_ARGS, "--seeds", "3", "--dry-run",
                            "--json", "--catalog", cat)
    assert code == 0 and json.loads(out)["seeds"] == 3
    code, out, _ = run_main(monkeypatch, capsys, "sweep", "gromov2023", *TINY_ARGS, "--seeds", "3", "--dry-run",
                            "--json", "--catalog", cat)
    assert code == 0 and json.loads(out)["seeds"] == 3
    code, out, _ = run_main(monkeypatch, capsys, "phase", "grokking", *TINY_ARGS, "--grid", "model.width=8,16",
                            "--grid", "optim.weight_decay=0,1", "--seeds", "3", "--dry-run", "--json", "--catalog", cat)
    assert code == 0 and json.loads(out)["seeds"] == 3
    code, out, _ = run_main(monkeypatch, capsys, "train", "gromov2023", *TINY_ARGS, "--seeds", "0-2", "--dry-run",
                            "--json", "--catalog", cat)
    assert code == 0 and json.loads(out)["seeds"] == 3 and json.loads(out)["to_train"] == 3
    line = user_error(monkeypatch, capsys, "train", "gromov2023", "--seeds", "3", "--catalog", cat)
    assert "did you mean 0-2 (3 seeds) or 3-3 (seed 3)?" in line
    assert not (tmp_path / "c").exists()  # a dry run and a refusal write nothing


READS = [["runs"], ["curves", "x-0"], ["show", "x-0"], ["plot", "x"], ["hypothesis", "list"],
         ["hypothesis", "show", "x"], ["hypothesis", "verify"], ["hypothesis", "test", "x"], ["report"],
         ["checklist", "x"], ["rerun", "x-0"], ["export", "@bundle"], ["export-mlflow", "sqlite:///@m.db"]]


@pytest.mark.parametrize("argv", READS, ids=[" ".join(a) for a in READS])
def test_a_read_command_on_a_mistyped_catalog_says_so(tmp_path, argv, monkeypatch, capsys):
    args = [a.replace("@", str(tmp_path) + "/") for a in argv]
    line = user_error(monkeypatch, capsys, *args, "--catalog", str(tmp_path / "typo"))
    assert line.startswith(f"error: no catalog at {tmp_path / 'typo' / 'catalog.db'}"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_help_lists_the_shared_flags_once(monkeypatch, capsys):
    code, out, _ = run_main(monkeypatch, capsys, "--help")
    text = " ".join(out.replace("│", " ").split())
    assert code == 0
    for flag, _meaning in COMMON_FLAGS:
        assert text.count(f"{flag}:") == 1, flag


def test_an_unexpected_exception_is_one_line_exit_70_and_a_pointer_to_the_traceback(tmp_path, monkeypatch, capsys):
    def boom(*_a, **_k):
        raise ZeroDivisionError("the bug\nwith a second line")

    monkeypatch.setattr("phenolab.cli._train.train_and_store", boom)
    args = ["train", "gromov2023", *TINY_ARGS, "--seeds", "0-0", "--catalog", str(tmp_path / "c")]
    code, _, err = run_main(monkeypatch, capsys, *args)
    lines = error_lines(err)
    assert code == 70 and len(lines) == 1 and "Traceback" not in err
    assert "internal error" in lines[0] and "ZeroDivisionError: the bug" in lines[0] and "PHENOLAB_DEBUG=1" in lines[0]
    monkeypatch.setenv("PHENOLAB_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        run_main(monkeypatch, capsys, *args)


def split_in_two_limit(setting) -> str:
    """A PHENOLAB_MEMORY under which a batch of 4 replicas does not fit and one of 2 does."""
    torch.set_num_threads(1)
    est = estimate(setting)
    return str(est.total(2) + est.per_replica // 2)


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "SIGTERM")])
def test_ctrl_c_and_sigterm_in_train_keep_every_finished_batch_and_say_how_to_resume(tmp_path, monkeypatch, capsys,
                                                                                    sig, code, word):
    setting = phenolab.resolve_setting("gromov2023", {**TINY, "checkpoints": "eval"})
    monkeypatch.setenv("PHENOLAB_MEMORY", split_in_two_limit(setting))  # 4 seeds: two batches of 2
    store = local.store_batch

    def store_then_signal(catalog, parts):
        ids = store(catalog, parts)
        os.kill(os.getpid(), sig)  # arrives while the second batch is about to train
        return ids

    monkeypatch.setattr(local, "store_batch", store_then_signal)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (xdist workers ignore it)
    cat = tmp_path / "c"
    args = ["train", "gromov2023", *TINY_ARGS, "--set", "checkpoints=eval", "--seeds", "0-3", "--no-figure",
            "--catalog", str(cat)]
    try:
        got, _, err = run_main(monkeypatch, capsys, *args)
    finally:
        signal.signal(signal.SIGINT, old)
    lines = error_lines(err)
    assert got == code, err
    assert len(lines) == 2 and lines[0].startswith("memory: split into 2 batches"), err
    assert lines[1].startswith(f"{word}: kept 2 new run(s) in {cat / 'catalog.db'}"), lines[1]
    assert "lost the batch in training (2 run(s))" in lines[1] and "Rerun the same command" in lines[1]
    assert lines[1].endswith("phenolab " + " ".join(args))
    catalog = phenolab.Catalog(cat)
    assert catalog.count_runs() == 2 and integrity(catalog.path) == "ok"
    monkeypatch.setattr(local, "store_batch", store)
    code, out, _ = run_main(monkeypatch, capsys, *args[:-3], "--json", "--catalog", str(cat))
    assert code == 0 and json.loads(out)["trained"] == 2 and json.loads(out)["skipped"] == 2


def test_a_second_ctrl_c_exits_at_once(monkeypatch):
    exits = []

    def fake_exit(code):
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(_interrupt.os, "_exit", fake_exit)
    _interrupt.reset()
    with pytest.raises(KeyboardInterrupt):
        _interrupt._handler(signal.SIGINT, None)
    with pytest.raises(SystemExit):
        _interrupt._handler(signal.SIGINT, None)
    assert exits == [130]
    _interrupt.reset()


@pytest.mark.slow
def test_ctrl_c_in_a_real_terminal_run_of_train(tmp_path):
    """The real signal in a fresh process: one line on stderr after the progress lines, exit 130."""
    main = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from phenolab.cli import main; main()")
    cat = tmp_path / "c"
    args = ["train", "gromov2023", "--set", "task.p=13", "--set", "schedule.steps=1000000", "--seeds", "0-1",
            "--no-figure", "--catalog", str(cat)]
    env = dict(os.environ, PHENOLAB_THREADS="1", PHENOLAB_PROGRESS_EVERY="0.2")
    proc = subprocess.Popen([sys.executable, "-c", main, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    line = ""
    while time.monotonic() < deadline and " steps (" not in line:
        line = proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    last = error_lines(err)[-1]
    assert last.startswith("interrupted: kept 0 new run(s)") and "lost the batch in training (2 run(s))" in last
    assert "Traceback" not in err
    assert phenolab.Catalog(cat).count_runs() == 0


def test_a_sweep_splits_a_batch_to_fit_memory(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PHENOLAB_MEMORY", split_in_two_limit(SETTING))
    cat = tmp_path / "c"
    code, out, _ = run_main(monkeypatch, capsys, "sweep", "gromov2023", *TINY_ARGS, "--seeds", "0-3", "--json",
                            "--catalog", str(cat))
    assert code == 0 and json.loads(out)["trained"] == 4
    runs = phenolab.Catalog(cat).runs()
    assert runs["batch_id"].nunique() == 2 and set(runs["replicas_in_batch"]) == {2}


def test_one_replica_that_cannot_fit_is_refused_before_anything_is_allocated(tmp_path, monkeypatch):
    huge = phenolab.resolve_setting("mnist1d_mlp", {"model.width": 65536, "model.depth": 32})
    monkeypatch.setenv("PHENOLAB_MEMORY", "16GiB")
    with pytest.raises(BatchTooLarge, match=r"one replica needs about 5\.\d+ TiB .* 16 GiB available"):
        phenolab.run(huge, 2, tmp_path / "c", device="cpu")
    assert not (tmp_path / "c").exists()


def test_memory_limits_parse():
    assert parse_bytes("8GiB") == 8 << 30 and parse_bytes("512 MB") == 512_000_000 and parse_bytes("1024") == 1024
    for bad in ("lots", "-1G", "1e999G", "0.1", "8 parsecs"):
        with pytest.raises(phenolab.SettingError, match="PHENOLAB_MEMORY"):
            parse_bytes(bad)


def test_a_refused_command_on_a_real_catalog_changes_nothing(catalog, monkeypatch, capsys):
    before = fingerprint(catalog.path)
    user_error(monkeypatch, capsys, "train", "gromov2023", *TINY_ARGS, "--set", "optim.lr=inf", "--seeds", "0-2",
               "--catalog", str(catalog.path))
    assert fingerprint(catalog.path) == before and integrity(catalog.path) == "ok"


def test_the_api_run_is_checked_and_then_trains(tmp_path):
    assert len(phenolab.run(SETTING, 2, tmp_path / "c", device="cpu")) == 2
    assert phenolab.run(SETTING, range(2), str(tmp_path / "c"), device="cpu") == []
    result = phenolab.train(SETTING, [1, 0])
    assert result.seeds == [1, 0]  # the engine keeps the order it is given
    with pytest.raises(phenolab.SettingError, match="device 'gpu'"):
        phenolab.run(SETTING, 2, tmp_path / "c", device="gpu")


def test_paths_probe_leaves_nothing_behind(tmp_path):
    from phenolab.execute.preflight import writable_catalog, writable_file, writable_folder

    writable_catalog(tmp_path / "new" / "deeper")
    writable_file(tmp_path / "out.csv", "--csv")
    writable_folder(tmp_path / "site" / "inner", "--out")
    assert list(tmp_path.iterdir()) == []
    assert isinstance(writable_catalog(Path(tmp_path)), phenolab.Catalog)


@pytest.mark.parametrize("argv", [
    ["reproduce", "grokking", *TINY_ARGS, "--set", "checkpoints=eval", "--seeds", "4"],
    ["phase", "grokking", *TINY_ARGS, "--grid", "optim.weight_decay=0,1", "--grid", "task.train_fraction=0.3,0.6",
     "--seeds", "1"],
], ids=["reproduce", "phase"])
def test_ctrl_c_in_reproduce_and_phase_says_what_was_kept(tmp_path, monkeypatch, capsys, argv):
    setting = phenolab.resolve_setting("gromov2023", {**TINY, "checkpoints": "eval"})
    monkeypatch.setenv("PHENOLAB_MEMORY", split_in_two_limit(setting))
    store = local.store_batch

    def store_then_signal(catalog, parts):
        ids = store(catalog, parts)
        os.kill(os.getpid(), signal.SIGINT)
        return ids

    monkeypatch.setattr(local, "store_batch", store_then_signal)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    cat = tmp_path / "c"
    try:
        code, _, err = run_main(monkeypatch, capsys, *argv, "--catalog", str(cat))
    finally:
        signal.signal(signal.SIGINT, old)
    last = error_lines(err)[-1]
    assert code == 130, err
    assert "interrupted" in last and "kept" in last and "Rerun the same command to resume" in last, err
    assert last.endswith(" ".join(["phenolab", *argv, "--catalog", str(cat)]))
    catalog = phenolab.Catalog(cat)
    assert 1 <= catalog.count_runs() < 4 and integrity(catalog.path) == "ok"
