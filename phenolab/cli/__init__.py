"""`phenolab` command line: thin commands over the Python API."""

from __future__ import annotations

import typer

from phenolab.cli import (
    _audit,
    _demo,
    _export,
    _hypothesis,
    _inspect,
    _phase,
    _report,
    _reproduce,
    _rerun,
    _sweep,
    _train,
)
from phenolab.plugins import load_plugins

load_plugins()  # before any command resolves a setting: plug-ins add tasks, models, measures, settings

app = typer.Typer(
    name="phenolab",
    help="A lab for deep-learning phenomena: train many tiny models as one batched program, "
    "catalog every run, map phenomena, and test explanations of them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for _module in (_demo, _train, _inspect, _rerun, _reproduce, _sweep, _phase, _audit, _hypothesis, _report, _export):
    _module.register(app)


def main() -> None:
    """Entry point: every user error is one line on stderr and exit code 2."""
    from phenolab import _cpu_isa
    from phenolab.catalog import CatalogError
    from phenolab.cli._common import print_error
    from phenolab.settings import SettingError

    try:
        _cpu_isa.check()
    except ValueError as exc:  # a bad PHENOLAB_CPU_ISA, before any command runs
        print_error(str(exc))
        raise SystemExit(2) from None
    try:
        app()
    except (SettingError, CatalogError) as exc:
        print_error(str(exc))
        raise SystemExit(2) from None
