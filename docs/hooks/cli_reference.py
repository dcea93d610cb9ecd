"""MkDocs hook: the command-line reference page, rendered from the Typer app at build time.

The page `reference/cli.md` holds an introduction and the marker below; the build replaces the marker
with every command's help, read from `pipeline.cli.app` (usage, arguments, options, defaults), so the
reference cannot drift from the code: change an option's help and the next `make docs` shows it.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

MARKER = "<!-- cli-reference -->"
PAGE = "reference/cli.md"
PROGRAM = "reviewscore"


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Fill the reference page's marker; every other page passes through unchanged."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lost its marker {MARKER}: the command reference has nowhere to go")
    return markdown.replace(MARKER, render())


def render() -> str:
    """Markdown for the whole `reviewscore` command: its own options, then each command in --help's order."""
    import typer.main

    from pipeline.cli import app

    group = typer.main.get_command(app)
    return "\n".join(_command(group, typer.Context(group, info_name=PROGRAM), PROGRAM, level=2))


def _command(command, ctx, path: str, level: int) -> list[str]:
    """One command's section: its help, usage, argument and option tables, then its sub-commands'."""
    lines = [f"{'#' * level} `{path}`", "", _text(inspect.cleandoc(command.help or "")), ""]
    lines += ["```console", f"$ {path} {' '.join(command.collect_usage_pieces(ctx))}", "```", ""]
    records = [(param.param_type_name, param.get_help_record(ctx)) for param in command.get_params(ctx)]
    for kind, title in (("argument", "Argument"), ("option", "Option")):
        rows = [(f"`{_cell_code(names)}`", _text(text)) for k, (names, text) in _present(records) if k == kind]
        lines += _table(title, rows)
    names = getattr(command, "list_commands", lambda _ctx: [])(ctx)
    subs = [(name, command.get_command(ctx, name)) for name in names]
    rows = [(f"[`{name}`](#{_anchor(f'{path} {name}')})", _text(sub.get_short_help_str(200))) for name, sub in subs]
    lines += _table("Command", rows)
    # The root's commands sit beside it at the same level; deeper groups nest.
    sub_level = level if path == PROGRAM else level + 1
    for name, sub in subs:
        lines += _command(sub, type(ctx)(sub, info_name=name, parent=ctx), f"{path} {name}", sub_level)
    return lines


def _present(records):
    """(kind, help record) pairs of the parameters --help shows (hidden ones have no record)."""
    return [(kind, record) for kind, record in records if record]


def _table(title: str, rows: list[tuple[str, str]]) -> list[str]:
    if not rows:
        return []
    return [f"| {title} | What it does |", "| --- | --- |", *(f"| {name} | {text} |" for name, text in rows), ""]


def _anchor(title: str) -> str:
    """The id Python-Markdown's toc gives a heading `` `reviewscore score` ``: lower case, words joined by '-'."""
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", title).strip().lower())


def _text(help_text: str) -> str:
    """Help as Markdown: Rich's `\\[` escapes undone, the home folder shown as `~`, Markdown's special
    characters escaped outside `code` spans, so `scored-*.parquet` is not read as emphasis."""
    help_text = help_text.replace("\\[", "[").replace(str(Path.home()), "~")
    parts = help_text.split("`")
    for i in range(0, len(parts), 2):  # even parts are outside code spans
        parts[i] = re.sub(r"([\\*_|])", r"\\\1", parts[i]).replace("<", "&lt;")
    return " ".join("`".join(parts).split())


def _cell_code(names: str) -> str:
    """Option names and metavar for a code span in a table cell (the table splits on no `|` inside one)."""
    return names.replace("`", "'")
