"""Every command's --help reads whole in an 80-column terminal: every option named in full, every
option that takes a value with its default (or marked required), no line wider than the terminal;
`-h` as well as `--help`; every value named by an UPPER-CASE word; commands in the order a user needs them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.cli.help_style import METAVAR, metavar
from pipeline.job.options import JOB_OPTIONS, OPTIONS

COLUMNS = 80
COMMAND = typer.main.get_command(app)
COMMANDS = sorted(COMMAND.commands)
ORDER = ["score", "evaluate", "explain", "info", "data", "train", "profile", "export-onnx"]


def rendered(*args: str, flag: str = "--help") -> str:
    result = CliRunner().invoke(app, [*args, flag], env={"COLUMNS": str(COLUMNS)})
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
        f"reviewscore {version('reviewscore')} (apache-beam {version('apache-beam')}, "
        f"Python {platform.python_version()})"
    )


def test_commands_are_listed_in_the_order_a_user_needs_them():
    listed = re.findall(r"^  ([a-z-]+)\s{2,}\w", rendered().split("Commands:")[1], re.MULTILINE)
    assert listed == ORDER
    assert sorted(ORDER) == COMMANDS  # a new command gets its place here


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_dash_h_is_help_everywhere(name):
    args = [name] if name else []
    assert rendered(*args, flag="-h") == rendered(*args)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_value_is_named_by_an_upper_case_word(name):
    """Usage line, arguments and options: INPUT..., PATH, N, never Typer's <str>, <int range> or {INPUTS}."""
    command = COMMAND.commands[name]
    shown = rendered(name)
    assert not re.search(r"<[a-z]|[{}]", shown), shown
    usage = shown.split("\n\n")[0]
    for param in command.params:
        if param.param_type_name == "option" and param.is_flag:
            continue
        word = metavar(param)
        assert METAVAR.fullmatch(word), f"{name}: {param.name} is named {word!r}"
        if param.param_type_name == "argument":
            assert re.search(rf"(^|\s)\[?{re.escape(word)}\]?(\s|$)", usage), f"{name}: {word} not in {usage!r}"
            assert re.search(rf"^  {re.escape(word)}\s", shown, re.MULTILINE), f"{name}: no {word} row"
        else:
            assert re.search(rf"{re.escape(param.opts[0])} {re.escape(word)}\b", shown), f"{name}: {param.opts[0]}"


@pytest.mark.parametrize("name", COMMANDS)
def test_a_choice_names_every_value_it_takes_in_its_help(name):
    """A choice's metavar is a word (ENGINE), so its help says what each value does."""
    for param in COMMAND.commands[name].params:
        choices = param.type_descriptor.choices
        if choices:
            for choice in choices:
                assert str(choice.value) in param.help, f"{name}: {param.name}'s help does not name {choice.value}"


def test_score_help_names_options_as_flags_and_points_nowhere_else():
    """Options are named as the command line spells them (--explain-method, not explain_method), and the help
    is whole: it sends no one to read a document for what an option does."""
    shown = rendered("score")
    for option in JOB_OPTIONS:
        if "_" in option.name:
            assert not re.search(rf"(?<![\w-]){option.name}(?![\w-])", shown), option.name
        assert "{" not in option.cli_help and "{" not in option.template_help, option.name
    assert "README" not in shown and "see the" not in shown.lower()
    assert "--explain-method" in OPTIONS["explain"].cli_help
    assert "explain_method" in OPTIONS["explain"].template_help


LOADED_FOR_HELP = """
import sys
from pipeline.cli import main
sys.argv = ["reviewscore", "--help"]
try:
    main()
except SystemExit:
    pass
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""
NOT_FOR_HELP = ("numpy", "pyarrow", "pydantic", "apache_beam", "tensorflow", "keras", "onnxruntime")
"""What `--help` must not pay for: it lists commands and options, and starts no work."""


def test_help_loads_no_numerical_library_beam_or_contracts():
    done = subprocess.run([sys.executable, "-c", LOADED_FOR_HELP], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.strip().splitlines()[-1].split())
    assert "typer" in loaded  # the probe saw the modules
    assert not loaded & set(NOT_FOR_HELP), sorted(loaded & set(NOT_FOR_HELP))
