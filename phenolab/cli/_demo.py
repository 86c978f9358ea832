"""`phenolab demo`: the main job. A phenomenon in under a minute on a laptop CPU: grokking on
gromov2023, a handful of seeds trained as one batched program, its measured signature beside the
published number, its figure, and the report; then what to look at and what to try next."""

from __future__ import annotations

from typing import Annotated

import typer

from phenolab.cli._common import CatalogOpt, console, open_catalog
from phenolab.cli._reproduce import run_reproduce
from phenolab.cli._train import DeviceOpt, ThreadsOpt

PHENOMENON, SETTING = "grokking", "gromov2023"


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        seeds: Annotated[int, typer.Option("--seeds", min=1, max=64, help="Number of seeds (0..N-1).")] = 5,
        catalog: CatalogOpt = None,
        device: DeviceOpt = "auto",
        threads: ThreadsOpt = None,
    ) -> None:
        """Grokking in under a minute: gromov2023 (a + b mod 97, an MLP of 500 x² units), N seeds as one
        batched program; its signature next to the published number, its figure, and the report."""
        from phenolab.phenomena import get_phenomenon
        from phenolab.report import build_site

        canon = get_phenomenon(PHENOMENON).canonical_setting(SETTING)
        console.print(f"[bold]phenolab demo[/]: grokking on {SETTING} ({canon.description}); {seeds} seeds "
                      "trained as one batched program", highlight=False)
        result = run_reproduce(get_phenomenon(PHENOMENON), setting=SETTING, seeds=str(seeds), catalog=catalog,
                               device=device, threads=threads)
        console.print(f"published ({canon.source.split(',')[0]}): {canon.published}", highlight=False,
                      soft_wrap=True)
        site = build_site(open_catalog(catalog))
        console.print(f"report: {site}  (open it in a browser)\n", soft_wrap=True)
        summary = result.signature.summary
        t_train, ratio, grokked = summary["t_train"]["mean"], summary["ratio"]["mean"], summary["phases"]["grokking"]
        if t_train is not None and ratio is not None:
            console.print(f"look at: {result.figure.name} — train accuracy reached 99% by step {t_train:.0f}, test "
                          f"accuracy {ratio:.1f}× later; {grokked} of {summary['n_runs']} runs grokked",
                          highlight=False, soft_wrap=True)
        console.print("try next: [bold]phenolab reproduce double-descent --setting nakkiran2021_linear --seeds 5[/] "
                      "(another phenomenon, seconds)", soft_wrap=True)
        console.print("          [bold]phenolab phase grokking --grid task.train_fraction=0.1:0.9:9 --grid "
                      "optim.weight_decay=0,1,5,10 --seeds 3[/] (where it groks: a phase diagram, ~6 min); "
                      "docs/tutorial-hypothesis.md (testing an explanation)", soft_wrap=True)
