"""`phenolab` command line: thin commands over the Python API."""

from __future__ import annotations

import os

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
    _tournament,
    _train,
)
from phenolab.cli._common import COMMON_FLAGS
from phenolab.plugins import load_plugins

load_plugins()  # before any command resolves a setting: plug-ins add tasks, models, measures, settings

USER_ERROR = 2  # bad input: one line naming it, nothing done
INTERNAL_ERROR = 70  # a bug (sysexits' EX_SOFTWARE): one line, the traceback with PHENOLAB_DEBUG=1

app = typer.Typer(
    name="phenolab",
    help="A lab for deep-learning phenomena: train many tiny models as one batched program, "
    "catalog every run, map phenomena, and test explanations of them.\n\n"
    "Flags with one meaning in every command:\n\n"
    + "\n\n".join(f"[bold]{flag}[/]: {meaning}" for flag, meaning in COMMON_FLAGS)
    + f"\n\nExit codes: 0 done; 1 a check failed (rerun, hypothesis verify); {USER_ERROR} bad input, one line, "
    f"nothing done; 130/143 interrupted (Ctrl-C/SIGTERM); {INTERNAL_ERROR} a bug (PHENOLAB_DEBUG=1 shows its "
    "traceback).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        import torch

        typer.echo(f"phenolab {version('phenolab')} (torch {torch.__version__})")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                       help="Print phenolab's and torch's versions and exit.")) -> None:
    """The commands below; `--version` prints the versions."""


for _module in (_demo, _train, _inspect, _rerun, _reproduce, _sweep, _phase, _audit, _hypothesis, _tournament, _report,
                _export):
    _module.register(app)


def main() -> None:
    """Entry point: every user error is one line on stderr and exit code 2; an interrupt says what
    was kept; an unexpected exception is one line and exit code 70 (PHENOLAB_DEBUG=1: its traceback)."""
    from phenolab import _cpu_isa
    from phenolab.cli import _interrupt
    from phenolab.cli._common import print_error

    try:
        _cpu_isa.check()
    except ValueError as exc:  # a bad PHENOLAB_CPU_ISA, before any command runs
        print_error(str(exc))
        raise SystemExit(USER_ERROR) from None
    _interrupt.reset()
    old = _interrupt.install()
    try:
        code = _run()
    finally:
        _interrupt.restore(old)
    raise SystemExit(code)


def _run() -> int:
    from rich.markup import escape

    from phenolab.catalog import CatalogError
    from phenolab.cli import _interrupt
    from phenolab.cli._common import err_console, print_error
    from phenolab.settings import SettingError

    try:
        rv = app(standalone_mode=False, prog_name="phenolab")
        code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
    except typer.TyperException as exc:  # click's: an unknown flag, a missing argument, a value of the wrong type
        if type(exc).__name__ == "NoArgsIsHelpError":  # `phenolab` alone: the help (printed as it was made)
            return 0
        print_error(_usage_line(exc))
        return USER_ERROR
    except typer.Abort:  # end of input at a prompt
        print_error("aborted: no answer was given (end of input)")
        return 1
    except (SettingError, CatalogError) as exc:
        print_error(" ".join(str(exc).split("\n")))
        return USER_ERROR
    except Exception as exc:
        if os.environ.get("PHENOLAB_DEBUG", "") not in ("", "0"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        print_error(f"internal error, a bug in phenolab: {type(exc).__name__}{': ' + first if first else ''} "
                    "(run again with PHENOLAB_DEBUG=1 for the traceback, and please report it)")
        return INTERNAL_ERROR
    work = _interrupt.work()
    if work.signal is not None and code == 130:
        if not work.reported:
            err_console.print(f"[yellow]{escape(work.line())}[/]", highlight=False, soft_wrap=True)
        code = _interrupt.EXIT_CODES.get(work.signal, 130)
    return code


def _usage_line(exc: typer.TyperException) -> str:
    """Click's usage error as one line, pointing at the command's --help."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    return f"{message} (see `{ctx.command_path} --help`)" if ctx is not None else message
