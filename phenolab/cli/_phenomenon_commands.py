"""Commands with one subcommand per phenomenon (`reproduce`, `phase`), built from the registry.

A phenomenon's `Options` model becomes its flags: each field `rewind_step` is `--rewind-step`, its
description the help; a flag not given is left to the phenomenon's default. A plug-in's phenomenon
gets its commands the same way, with no line of the CLI naming it.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal

import click
import typer
from typer.core import TyperGroup

from phenolab.phenomena import Phenomenon, Reproducible, unknown_name
from phenolab.settings import SettingError


class PhenomenonGroup(TyperGroup):
    """A group whose commands are phenomena: an unknown name is one line naming the allowed ones,
    and commands list in the order they were added."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            raise SettingError(unknown_name("phenomenon", name, sorted(self.list_commands(ctx))))
        return super().resolve_command(ctx, args)


def group(help_text: str) -> typer.Typer:
    return typer.Typer(cls=PhenomenonGroup, help=help_text, no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False)


def parameter(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


def setting_parameter(rep: Reproducible) -> list[inspect.Parameter]:
    """`--setting` for a phenomenon (its canonical settings in the help); nothing for a study."""
    if not isinstance(rep, Phenomenon):
        return []
    names = ", ".join(rep.setting_names())
    help_text = f"Canonical setting: {names} (default {rep.default_setting}; `phenolab settings NAME` shows one whole)."
    return [parameter("setting", Annotated[str | None, typer.Option("--setting", help=help_text)])]


def option_parameters(rep: Reproducible) -> list[inspect.Parameter]:
    """One flag per field of the phenomenon's options model, default "not given" (None)."""
    params = []
    for name, info in rep.options_model.model_fields.items():
        kind, choices = _flag_type(info.annotation)
        flag = "--" + name.replace("_", "-")
        help_text = info.description or ""
        if choices and not all(c in help_text for c in choices):
            help_text += f" (one of: {', '.join(choices)})"
        if info.default is not None:
            help_text += f" (default: {info.default})"
        decls = (f"{flag}/--no-{flag[2:]}",) if kind is bool else (flag,)
        params.append(parameter(f"opt_{name}", Annotated[kind | None, typer.Option(*decls, help=help_text)]))
    return params


def given_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The options flags the user gave (`opt_NAME` parameters that are not None), by field name."""
    return {k.removeprefix("opt_"): v for k, v in kwargs.items() if k.startswith("opt_") and v is not None}


def _flag_type(annotation: Any) -> tuple[type, tuple[str, ...]]:
    """The click type of an options field (int, float, str or bool; a Literal is str with choices)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _flag_type(inner[0]) if len(inner) == 1 else (str, ())
    if typing.get_origin(annotation) is Literal:
        return str, tuple(str(a) for a in args)
    if annotation in (int, float, str, bool):
        return annotation, ()
    return str, ()


def command(fn: Callable[..., None], params: list[inspect.Parameter], doc: str) -> Callable[..., None]:
    """`fn(**kwargs)` with the signature Typer reads its flags from."""
    def run(**kwargs: Any) -> None:
        fn(**kwargs)

    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__doc__ = doc
    return run
