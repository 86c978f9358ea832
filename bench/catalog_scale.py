"""The catalog and its report at 10⁴ and 10⁵ runs, before and after compact curves and the
incremental report: one table of bytes per point, reads, the report and bundles.

Runs are synthetic (no training): a grid of gromov2023 settings (task.train_fraction ×
optim.weight_decay) × 10 seeds (10⁴ runs: 50 × 20 settings; 10⁵: 100 × 100), each with 4 curves
of 200 log-spaced points computed as the engine computes a float32 run's (engine/evaluate.py):
train and test accuracy are correct / examples, the train loss is the float32 loss of the one
full-batch pass, the test loss the sum over evaluation passes of float32 pass losses × pass
sizes over the test set's size; threshold steps are drawn at random, so the grokking phases vary
over the grid. Each run carries the provenance a real run records.

Per size and side ("before": the code of `--before REV`, by default the commit before the catalog
schema 2, exported with `git archive` and imported in a child process; "after": this tree):

- build: writing the runs; `phenolab phase` over the grid (records the phase note and figure);
- bytes per stored point: the catalog file over runs × 4 × 200 points, and where the bytes go;
- `phenolab runs`, `phenolab runs --where …` (in-process, warm), the phase table, all curves read;
- the report: from scratch as a fresh `phenolab report` process (wall time, peak memory) and
  in-process; after: a refresh with nothing changed, and after adding one study (10 runs of a new
  setting and its signature note), in-process;
- a bundle of every run: export, import into a new catalog, the same import again.

    python bench/catalog_scale.py                   # 10⁴ and 10⁵ runs, before and after (~9 min)
    python bench/catalog_scale.py --runs 10000      # one size
    python bench/catalog_scale.py --quick           # 2000 runs
    python bench/catalog_scale.py --no-before       # this tree only

At 10⁵ runs "before" measures the catalog and its reads only (its report and bundles would take
tens of minutes; `--full-before` runs them too). Timings are in-process and warm, best of 3 at
10⁴ runs and fewer, one measurement at 10⁵ and where a row says "once"; the load average at the
start and end of each column is printed under the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# isort: off
import phenolab  # noqa: F401  (first: on AMD CPUs it must load before torch; phenolab/_mkl_amd.py)
# isort: on

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
POINTS = 200
STEPS = np.unique(np.round(np.geomspace(1, 10_000, 270)).astype(np.int64))[:POINTS]  # 200 distinct steps
PAIRS = 97 * 97  # gromov2023: a + b mod 97
GRIDS = {2000: (20, 10), 10_000: (50, 20), 100_000: (100, 100)}  # train fractions × weight decays
SEEDS = 10


# ---- synthetic runs -------------------------------------------------------------------------------
def synthetic_runs(setting, seeds: range, rng: np.random.Generator, provenance: dict) -> list:
    from phenolab.catalog import RunRecord

    n_train = max(1, round(setting.task.train_fraction * PAIRS))
    n_test = PAIRS - n_train
    passes = np.array([min(2048, n_test - i) for i in range(0, n_test, 2048)], dtype=np.float64)
    x = np.log10(STEPS)
    recs = []
    for seed in seeds:
        t_train, t_test = rng.uniform(1, 4.5), rng.uniform(1.5, 5.5)  # log10 steps; some never cross
        train = 1 / (1 + np.exp(-6 * (x - t_train)))
        test = 1 / (1 + np.exp(-6 * (x - t_test)))
        pass_loss = (1 - test + 1e-3)[:, None] * (1 + 0.05 * rng.standard_normal((x.size, passes.size)))
        curves = {
            "train_acc": (STEPS, np.rint(train * n_train) / n_train),
            "test_acc": (STEPS, np.rint(test * n_test) / n_test),
            "train_loss": (STEPS, (1 - train + 1e-3 * rng.random(x.size)).astype(np.float32).astype(np.float64)),
            "test_loss": (STEPS, (pass_loss.astype(np.float32).astype(np.float64) * passes).sum(axis=1) / n_test),
        }
        summary = {f"final_{m}": float(v[-1]) for m, (_, v) in curves.items()} | {"final_step": float(STEPS[-1])}
        recs.append(RunRecord(setting.id, seed, curves, summary, {**provenance, "replica": seed}, 0.0, 1.0, 1.0,
                              batch_id=f"{setting.id}@0", replicas_in_batch=len(seeds)))
    return recs


def write_grid(catalog, settings: list, rng: np.random.Generator) -> None:
    from phenolab.catalog import collect_provenance

    prov = {**collect_provenance("cpu", 1), "argv": ["phenolab", "sweep", "gromov2023", "--grid", "…"],
            "batch_wall_s": 1.0}
    for i in range(0, len(settings), 100):  # 100 settings (1000 runs) per transaction
        catalog.write_many([(s.canonical_json(), s.id, synthetic_runs(s, range(SEEDS), rng, prov))
                            for s in settings[i : i + 100]])


# ---- one side at one size (a child process) --------------------------------------------------------
def best(fn, repeat: int = 3) -> float:
    out = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - start)
    return round(out, 3)


_CLI = ("import os, sys\nfrom phenolab.cli import main\ntry:\n    main()\nfinally:\n"
        "    open(os.environ['PEAK_FILE'], 'w').write(open('/proc/self/status').read())")


def timed_cli(argv: list[str], env: dict, work: Path) -> tuple[float, float | None]:
    """Wall seconds and peak memory (MB: VmHWM, the new process's own; rusage's maxrss would count
    the memory of the process it was forked from) of a fresh `phenolab ARGV` process."""
    peak = work / "peak.txt"
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _CLI, *argv], env={**env, "PEAK_FILE": str(peak)},
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if res.returncode:
        raise RuntimeError(f"phenolab {argv} failed: {res.stderr[-2000:]}")
    hwm = [line.split()[1] for line in peak.read_text().splitlines() if line.startswith("VmHWM:")]
    return round(wall, 2), round(int(hwm[0]) / 1024) if hwm else None


def measure(n_runs: int, side: str, work: Path, full: bool) -> dict:
    import torch
    from typer.testing import CliRunner

    from phenolab.catalog import Catalog
    from phenolab.catalog.bundle import export_bundle, import_bundle
    from phenolab.cli import app
    from phenolab.execute.grid import parse_grid_arg
    from phenolab.phenomena import PHENOMENA
    from phenolab.report import build_site
    from phenolab.studies.phase import phase_cells, phase_table

    torch.set_num_threads(1)
    n_frac, n_wd = GRIDS[n_runs]
    fx, fy = f"task.train_fraction=0.05:0.95:{n_frac}", f"optim.weight_decay=0:10:{n_wd}"
    ph = PHENOMENA["grokking"]
    axes, cells = phase_cells(ph, "gromov2023", {}, [parse_grid_arg(fx), parse_grid_arg(fy)], list(range(SEEDS)))
    catalog = Catalog(work / "catalog.db")
    runner = CliRunner()
    out: dict = {"runs": n_runs, "settings": len(cells), "points": n_runs * 4 * POINTS, "side": side,
                 "load_before": os.getloadavg()[0]}

    def cli(*argv: str) -> None:
        res = runner.invoke(app, [*argv, "--catalog", str(catalog.path)], catch_exceptions=False)
        assert res.exit_code == 0, res.output

    start = time.perf_counter()
    write_grid(catalog, [c.study.settings[0] for c in cells], np.random.default_rng(0))
    out["build_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    cli("phase", "grokking", "--setting", "gromov2023", "--grid", fx, "--grid", fy, "--seeds", str(SEEDS))
    out["phase_cli_s"] = round(time.perf_counter() - start, 2)
    assert catalog.count_runs() == n_runs
    out.update(sizes(catalog.path, out["points"]))

    mid = cells[len(cells) // 2]
    where = [f"--where={axes[0].field}={mid.x}", f"--where={axes[1].field}={mid.y}"]
    assert len(catalog.runs(where={axes[0].field: mid.x, axes[1].field: mid.y})) == SEEDS
    reps = 3 if n_runs <= 10_000 else 1
    out["list_s"] = best(lambda: cli("runs"), reps)
    out["filter_s"] = best(lambda: cli("runs", *where), reps)
    out["phase_table_s"] = best(lambda: phase_table(catalog, ph, axes, cells, "phase"), reps)
    ids = list(catalog.runs()["run_id"])
    out["curve_arrays_s"] = best(lambda: catalog.curve_arrays(ids), reps)
    if n_runs <= 10_000:  # the long table of 10⁵ runs (8·10⁷ rows) does not fit a laptop's memory
        out["curves_long_s"] = best(lambda: catalog.curves(), 2)
    if side == "before" and n_runs > 10_000 and not full:
        return out

    env = dict(os.environ, PHENOLAB_THREADS="1")
    report = work / "report"
    out["report_cli_s"], out["report_cli_mb"] = timed_cli(
        ["report", "--catalog", str(catalog.path), "--out", str(report)], env, work)
    out["report_html_pages"] = len(list(report.glob("*.html")))
    out["report_files"] = sum(1 for p in report.rglob("*") if p.is_file())
    if side == "after":
        start = time.perf_counter()
        build_site(catalog, work / "report2")
        out["report_inprocess_s"] = round(time.perf_counter() - start, 2)
        out["refresh_nothing_s"] = best(lambda: build_site(catalog, report), reps)
        add_one_study(catalog, report, work, np.random.default_rng(1))
        start = time.perf_counter()
        build_site(catalog, report)
        out["refresh_one_study_s"] = round(time.perf_counter() - start, 2)
        out["refresh_nothing_cli_s"], _ = timed_cli(
            ["report", "--catalog", str(catalog.path), "--out", str(report)], env, work)
    bundle = work / "bundle"
    ids = list(catalog.runs()["run_id"])
    start = time.perf_counter()
    export_bundle(catalog, bundle, ids)
    out["export_s"] = round(time.perf_counter() - start, 2)
    out["bundle_mb"] = round(sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()) / 1e6, 1)
    dest = Catalog(work / "imported" / "catalog.db")
    start = time.perf_counter()
    assert len(import_bundle(dest, bundle).written) == len(ids)
    out["import_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    assert import_bundle(dest, bundle).written == []
    out["import_again_s"] = round(time.perf_counter() - start, 2)
    out["load_after"] = os.getloadavg()[0]
    return out


def add_one_study(catalog, report: Path, work: Path, rng: np.random.Generator) -> None:
    """A new setting's 10 runs and the signature note `phenolab reproduce` would record of them."""
    from phenolab.catalog import collect_provenance
    from phenolab.settings import resolve_setting

    s = resolve_setting("gromov2023", {"task.train_fraction": 0.97, "optim.weight_decay": 0.5})
    catalog.write_runs(s.canonical_json(), s.id, synthetic_runs(s, range(SEEDS), rng, collect_provenance("cpu", 1)))
    figure = work / "study.png"
    shutil.copyfile(next(catalog.root.glob("figures/phase-*.png")), figure)
    catalog.add_note("signature", f"grokking:gromov2023:{s.id}", {
        "phenomenon": "grokking", "setting": "gromov2023", "setting_id": s.id, "setting_ids": [s.id],
        "seeds": list(range(SEEDS)), "summary": {"t_train": {"mean": 100.0, "sd": 10.0, "n": SEEDS}},
        "figure": str(figure), "options": {}, "overrides": {"task.train_fraction": 0.97, "optim.weight_decay": 0.5},
        "quick": False})


def sizes(path: Path, points: int) -> dict:
    """The catalog's bytes per stored point, and which tables and indexes hold them."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    total = sum(p.stat().st_size for p in path.parent.iterdir() if p.name.startswith(path.name))
    out = {"catalog_mb": round(total / 1e6, 1), "bytes_per_point": round(total / points, 2)}
    try:
        rows = conn.execute("SELECT name, SUM(pgsize), SUM(payload) FROM dbstat GROUP BY name").fetchall()
        out["bytes_per_point_by_table"] = {n: round(size / points, 2) for n, size, _ in rows if size / points >= 0.01}
        out["page_fill"] = round(sum(r[2] for r in rows) / sum(r[1] for r in rows), 3)
    except sqlite3.OperationalError:  # an SQLite built without dbstat
        pass
    conn.close()
    return out


# ---- the parent: every size and side, one table ------------------------------------------------------
def baseline_tree(rev: str | None) -> Path | None:
    """The `phenolab` package of the code before this change, exported from git (no checkout)."""
    git = ["git", "-C", str(ROOT)]
    if rev is None:
        found = subprocess.run([*git, "log", "--format=%H", "-S", "SCHEMA_VERSION = 2", "--",
                                "phenolab/catalog/schema.py"], capture_output=True, text=True)
        if found.returncode:
            return None
        commits = found.stdout.split()
        rev = f"{commits[-1]}^" if commits else "HEAD"
    dest = Path(tempfile.mkdtemp(prefix="phenolab-before-"))
    archive = subprocess.run([*git, "archive", rev, "phenolab"], capture_output=True)
    if archive.returncode:
        return None
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    (dest / "REV").write_text(subprocess.run([*git, "rev-parse", rev], capture_output=True, text=True).stdout)
    return dest


def run_child(n_runs: int, side: str, tree: Path | None, full: bool, keep: Path | None) -> dict:
    work = (keep / f"{side}-{n_runs}") if keep else Path(tempfile.mkdtemp(prefix=f"phenolab-scale-{side}-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = dict(os.environ, PHENOLAB_THREADS="1")
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    argv = [sys.executable, __file__, "--child", side, "--runs", str(n_runs), "--work", str(work),
            *(["--full-before"] if full else [])]
    try:
        res = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=work)
        if res.returncode:
            return {"side": side, "runs": n_runs, "error": res.stderr.strip().splitlines()[-1:]}
        return json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


ROWS = [  # key, label, target
    ("bytes_per_point", "bytes per stored point", "≤ 5"),
    ("catalog_mb", "catalog file (MB)", ""),
    ("build_s", "writing the runs (s, once)", ""),
    ("phase_cli_s", "`phenolab phase` over the grid (s, once)", ""),
    ("list_s", "`phenolab runs` (s)", "≤ 5 at 10⁵"),
    ("filter_s", "`phenolab runs --where` (s)", "≤ 5 at 10⁵"),
    ("phase_table_s", "phase table, every run's curves (s)", "≤ 5 at 10⁵"),
    ("curve_arrays_s", "every curve as arrays, `curve_arrays` (s)", ""),
    ("curves_long_s", "every curve as the long table, `curves()` (s)", "≤ 1 at 10⁴"),
    ("report_cli_s", "report from scratch, fresh `phenolab report` (s, once)", "≤ 15 at 10⁴"),
    ("report_cli_mb", "… its peak memory (MB)", ""),
    ("report_html_pages", "… HTML pages written", ""),
    ("report_inprocess_s", "report from scratch, in-process (s, once)", ""),
    ("refresh_one_study_s", "refresh after adding one study, in-process (s, once)", "≤ 2"),
    ("refresh_nothing_s", "refresh with nothing changed, in-process (s)", "≤ 0.5; index ≤ 5 at 10⁵"),
    ("refresh_nothing_cli_s", "… as a fresh `phenolab report` process (s, once)", ""),
    ("export_s", "bundle export, every run (s, once)", "≤ 10"),
    ("bundle_mb", "bundle size (MB)", "≤ 30 at 10⁴"),
    ("import_s", "bundle import into a new catalog (s, once)", "≤ 10"),
    ("import_again_s", "the same import again: nothing new (s, once)", ""),
]


def table(results: list[dict]) -> str:
    cols = [r for r in results if "error" not in r]
    head = ["", *[f"{r['runs']:,} runs {r['side']}" for r in cols], "target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, target in ROWS:
        cells = [str(r.get(key, "—")) for r in cols]
        if key == "refresh_nothing_s":
            cells = [c if r["side"] == "after" else "full rebuild" for c, r in zip(cells, cols, strict=True)]
        lines.append("| " + " | ".join([label, *cells, target]) + " |")
    lines.append("| load average (1 min) before / after | " + " | ".join(
        f"{r['load_before']:.2f} / {r.get('load_after', float('nan')):.2f}" for r in cols) + " | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, choices=sorted(GRIDS), action="append",
                        help="Catalog size (repeatable; default 10000 and 100000).")
    parser.add_argument("--quick", action="store_true", help="2000 runs only.")
    parser.add_argument("--before", metavar="REV", help="Git revision of the 'before' code (default: the "
                        "commit before catalog schema 2).")
    parser.add_argument("--no-before", action="store_true", help="Measure this tree only.")
    parser.add_argument("--full-before", action="store_true", help="At 10⁵ runs, the old report and bundles too.")
    parser.add_argument("--keep", type=Path, help="Keep the catalogs, reports and bundles under this folder.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--child", choices=["before", "after"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.runs[0], args.child, args.work, args.full_before)))
        return
    sizes_ = [2000] if args.quick else (args.runs or [10_000, 100_000])
    tree = None if args.no_before else baseline_tree(args.before)
    results = []
    for n in sizes_:
        for side in (["before"] if tree is not None else []) + ["after"]:
            print(f"… {n:,} runs, {side}", file=sys.stderr, flush=True)
            results.append(run_child(n, side, tree if side == "before" else None, args.full_before, args.keep))
    if tree is not None:
        print(f"before: {(tree / 'REV').read_text().strip()} (git archive); after: this tree")
        shutil.rmtree(tree, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()}")
    print(table(results))
    for r in results:
        if "error" in r:
            print(f"{r['runs']} {r['side']}: failed: {r['error']}")
        elif "bytes_per_point_by_table" in r:
            print(f"{r['runs']:,} {r['side']}: bytes per point by table/index {r['bytes_per_point_by_table']}, "
                  f"pages {r.get('page_fill', 0):.0%} full")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
