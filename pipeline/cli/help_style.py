"""How every command's --help reads: `-h` as well as `--help`, and one style of metavar.

A value is named by an UPPER-CASE word (`--output PATH`, `--batch-size N`, `INPUT...`), in the usage
line, the Arguments section and the Options section alike. Typer's own help names values by their
Python types (`<str>`, `<int range>`, `<list[str]>`) and wraps required arguments in braces
(`{INPUTS}...`); `Command` replaces both. A parameter declares its word with `metavar=`; one that
does not gets its type's word (METAVARS). Cheap to import: Typer only.
"""

from __future__ import annotations

import re
from typing import get_args

from typer.core import TyperCommand

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
"""The app's context settings: every command inherits them from the app's context."""
METAVAR = re.compile(r"[A-Z][A-Z0-9_]*(\.\.\.)?")
"""The one style: an UPPER-CASE word, with "..." where the argument takes several values."""
METAVARS = {int: "N", float: "NUMBER", str: "TEXT"}
"""The word of a value whose parameter names none, by its type; a path's is PATH, a choice's its name's."""


def metavar(param) -> str:
    """The word that names a Typer parameter's value in --help: its own metavar, else its type's; an
    argument that takes several values adds "..."."""
    word = param.metavar or _type_word(param)
    if param.param_type_name == "argument" and param.nargs != 1:
        word += "..."
    return word


def _type_word(param) -> str:
    described = param.type_descriptor
    if described.is_choice:
        return param.name.upper()
    if described.is_path:
        return "PATH"
    kind = get_args(described.annotation)[0] if described.is_list else described.annotation
    return METAVARS.get(kind, param.name.upper())


class Command(TyperCommand):
    """A Typer command whose help names every value by its UPPER-CASE word (see the module's docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.param_type_name == "option" and not param.is_flag and param.metavar is None:
                param.metavar = metavar(param)  # Typer then shows it in place of the type

    def collect_usage_pieces(self, ctx) -> list[str]:
        """`[OPTIONS] INPUT...`: each argument by its word; an optional one in brackets."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(metavar(param) if param.required else f"[{metavar(param)}]")
        return pieces

    def format_options(self, ctx, formatter) -> None:
        """The Arguments section (each by its word alone, no type beside it), then the Options section."""
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((metavar(param), record[1]))
            else:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
