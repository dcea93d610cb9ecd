"""Every command's --help reads whole in an 80-column terminal: every option named in full, every
option that takes a value with its default (or marked required), no line wider than the terminal."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from pipeline.cli import app

COLUMNS = 80
COMMAND = typer.main.get_command(app)
COMMANDS = sorted(COMMAND.commands)


def rendered(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": str(COLUMNS)})
    assert result.exit_code == 0, result.output
    return result.output


def option_rows(help_text: str) -> dict[str, str]:
    """Each row of the Options section by its first line's text: the option's names, then its help."""
    rows: dict[str, str] = {}
    section, current = "", None
    for line in help_text.splitlines():
        if line and not line.startswith(" "):
            section, current = line, None
        elif section == "Options:" and re.match(r"  -", line):
            current = line.strip()
            rows[current] = line
        elif current is not None:
            rows[current] += "\n" + line
    return rows


def test_the_command_list_fits_and_names_every_command():
    shown = rendered()
    assert all(len(line) <= COLUMNS for line in shown.splitlines()), shown
    for name in COMMANDS:
        assert re.search(rf"^  {re.escape(name)}\s+\w", shown, re.MULTILINE), name
    commands = shown.split("Commands:")[1].splitlines()
    assert not [line for line in commands if line.endswith("...")], "a command's line is cut short"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_is_named_whole_with_its_default(name):
    shown = rendered(name)
    wide = [line for line in shown.splitlines() if len(line) > COLUMNS]
    assert not wide, wide
    assert "\\[" not in shown and "…" not in shown and not re.search(r"\w \.(\s|$)", shown), shown
    rows = option_rows(shown)
    for param in COMMAND.commands[name].params:
        if param.param_type_name == "argument":
            assert (param.metavar or param.name.upper()) in shown, param.name
            continue
        for opt in (*param.opts, *param.secondary_opts):
            assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", shown), f"{name}: {opt} not shown whole"
        row = next(text for first, text in rows.items() if re.search(rf"(?<![\w-]){param.opts[0]}(?![\w-])", first))
        switch = param.is_flag and not param.secondary_opts  # on when given, off when not: nothing to show
        if not switch and param.name != "help":
            shows = re.search(r"[\[(]default:\s", row) or "[required]" in row
            assert shows, f"{name}: {param.opts[0]} shows no default:\n{row}"
        assert (param.help or "").strip(), f"{name}: {param.opts[0]} has no help"


def test_score_help_fits_in_80_columns_whole():
    """The longest option names (--inference-batch-size, --explain-method) are whole, their help beside or
    below them."""
    shown = rendered("score")
    for name in ("--inference-batch-size", "--explain-method", "--max-error-rate", "--verbose"):
        assert re.search(rf"^  (-\w, )?{name}\b", shown, re.MULTILINE), name
    assert "[default: no limit]" in shown


def test_version_names_reviewscore_beam_and_python():
    import platform
    from importlib.metadata import version

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == (
        f"reviewscore 0.1.0 (apache-beam {version('apache-beam')}, Python {platform.python_version()})"
    )
