"""Writes the documentation's examples from real runs, so that what the pages show is what the product does.

`make docs-examples` runs this file; tests/test_docs.py renders the same pages and fails when the committed
text differs. It is not an MkDocs hook: it lives beside them because this folder is left out of the site and
linted with them.

A marked block is one fenced block between BEGIN and END:

- `console`, with `$ COMMAND` lines: each command runs in a scratch folder that holds the repository's
  examples/ and models/, and the lines after it become what it printed (stdout and stderr, in order).
- `console` without `$`: each line is a command run there for the blocks that follow; nothing is shown.
- `python`: the code runs in that folder, in one namespace per page, block after block, and what each
  statement prints follows it as comment lines (`# ...` at the start of a line, which are output only).

A command that several pages show runs once. What changes from run to run is shown the same on every
machine: timings as the fixed text of VOLATILE and VOLATILE_CELLS, the scratch folder as SHOWN_ROOT;
progress lines (DROPPED_LINES) are left out. Commands print as into a pipe, not a terminal: plain lines,
no progress bar, no colour.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("README.md", "docs/getting-started.md")
"""The pages with marked blocks, relative to the repository root."""
BEGIN = "<!-- begin example: make docs-examples writes this block -->"
END = "<!-- end example -->"
LINKED = ("examples", "models")
"""What the commands find in the scratch folder, as in a clone."""
SHOWN_ROOT = "/path/to/reviewscore"
"""The scratch folder's path as the pages show it: a clone's, wherever it is."""
COLUMNS = "100"
"""The terminal width the commands print for (Rich wraps and pads to it)."""
VOLATILE = ((re.compile(r"loaded in [0-9.,]+ s"), "loaded in 0.3 s"),)
"""Timings inside lines: the pattern and the text shown instead."""
VOLATILE_CELLS = {"wall time": "3.3 s", "throughput": "4 reviews/s"}
"""Cells of the run's summary table that are timings, by row name, and the value shown instead."""
DROPPED_LINES = re.compile(r"^\s*(progress\b|[\w .-]+: .*(\(\d+ %\)|\d/s\b|\bleft$|\bdone in ))")
"""Progress lines (`scoring: 6 of 12 reviews (50 %), 3 reviews/s, about 2 s left`, `...: done in 4 s`):
how many a run prints depends on how long it takes."""
FENCE = re.compile(rf"{re.escape(BEGIN)}\n```(\w+)\n(.*?)```\n{re.escape(END)}", flags=re.DOTALL)


class Session:
    """One scratch folder for every page, the commands already run in it and their output."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.ran: dict[str, str] = {}

    @classmethod
    def start(cls, folder: Path) -> Session:
        for name in LINKED:
            (folder / name).symlink_to(ROOT / name, target_is_directory=True)
        return cls(folder)

    def run(self, command: str) -> str:
        """What `command` printed, normalised; run once however its program is spelled (`.venv/bin/...`)."""
        words = shlex.split(command)
        key = shlex.join(["reviewscore" if Path(words[0]).name == "reviewscore" else words[0], *words[1:]])
        if key not in self.ran:
            self.ran[key] = normalise(run_command(key, self.folder), self.folder)
        return self.ran[key]


def reviewscore() -> list[str]:
    """The command line of the environment this runs in."""
    script = Path(sys.executable).parent / "reviewscore"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipeline"]


def command_env() -> dict[str, str]:
    """The caller's environment with a fixed width and no colour, unbuffered so stdout and stderr interleave."""
    env = {key: value for key, value in os.environ.items() if key not in {"FORCE_COLOR", "TTY_COMPATIBLE", "LINES"}}
    return {**env, "COLUMNS": COLUMNS, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}


def run_command(command: str, folder: Path) -> str:
    """What `command` prints, run in `folder`; a failing command stops the regeneration with its output."""
    words = shlex.split(command)
    if words[0] == "reviewscore":
        words = reviewscore() + words[1:]
    done = subprocess.run(
        words, cwd=folder, env=command_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"`{command}` exited {done.returncode}:\n{done.stdout}")
    return done.stdout


def normalise(output: str, folder: Path) -> str:
    """`output` as the pages show it: the same text for every run of the same command on the same input."""
    for path in {str(folder.resolve()), str(folder)}:
        output = output.replace(path, SHOWN_ROOT)
    lines = []
    for line in output.splitlines():
        if DROPPED_LINES.match(line):
            continue
        for pattern, shown in VOLATILE:
            line = pattern.sub(shown, line)
        lines.append(_fixed_cell(line).rstrip())
    return "\n".join(lines).strip("\n") + "\n"


def _fixed_cell(line: str) -> str:
    """A summary table row whose value is a timing, with the shown value right-aligned in the same width."""
    match = re.match(r"^(\W+ *)([a-z ]+?)( +\W )( *)(.*?)( \W)$", line)
    if not match or match.group(2) not in VOLATILE_CELLS:
        return line
    width = len(match.group(4)) + len(match.group(5))
    return "".join([*match.group(1, 2, 3), VOLATILE_CELLS[match.group(2)].rjust(width), match.group(6)])


def render_console(body: str, session: Session) -> str:
    """The block with each `$ COMMAND` followed by what it printed; a block without `$` only runs."""
    lines = body.splitlines()
    commands = [line[2:] for line in lines if line.startswith("$ ")]
    if not commands:  # commands to run for later blocks, shown without output
        for line in lines:
            if line.strip():
                session.run(line.strip())
        return body
    return "".join(f"$ {command}\n{session.run(command)}" for command in commands)


def render_python(body: str, namespace: dict, folder: Path) -> str:
    """The block with each statement followed by what it printed, as comment lines (the old ones dropped)."""
    lines = [line for line in body.splitlines() if not line.startswith("#")]
    statements = ast.parse("\n".join(lines)).body
    out = lines[: statements[0].lineno - 1] if statements else lines
    for i, statement in enumerate(statements):
        code = lines[statement.lineno - 1 : statement.end_lineno]
        printed = run_python("\n".join(code), namespace, folder)
        following = statements[i + 1].lineno - 1 if i + 1 < len(statements) else len(lines)
        out += code + [f"# {line}".rstrip() for line in printed.splitlines()] + lines[statement.end_lineno : following]
    return "\n".join(out) + "\n"


def run_python(code: str, namespace: dict, folder: Path) -> str:
    """What `code` prints, run with `folder` as the working folder."""
    printed = io.StringIO()
    previous = Path.cwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "<documentation example>", "exec"), namespace)
    finally:
        os.chdir(previous)
    return printed.getvalue()


def render(markdown: str, session: Session) -> str:
    """`markdown` with every marked block rewritten from what it runs."""
    namespace: dict = {"__name__": "__example__"}

    def block(match: re.Match) -> str:
        language, body = match.group(1), match.group(2)
        if language == "console":
            body = render_console(body, session)
        elif language == "python":
            body = render_python(body, namespace, session.folder)
        else:
            raise ValueError(f"a marked block in {language}: only console and python blocks run")
        return f"{BEGIN}\n```{language}\n{body}```\n{END}"

    return FENCE.sub(block, markdown)


def render_pages(folder: Path, pages: tuple[str, ...] = PAGES) -> dict[str, str]:
    """Each page's text as a run in `folder` (empty, kept by the caller) writes it."""
    session = Session.start(folder)
    return {page: render((ROOT / page).read_text(), session) for page in pages}


def differences(rendered: dict[str, str]) -> str:
    """A unified diff of the committed pages against `rendered`; empty when they agree."""
    return "".join(
        "".join(difflib.unified_diff(committed.splitlines(True), text.splitlines(True), page, f"{page} (a run)"))
        for page, text in rendered.items()
        if (committed := (ROOT / page).read_text()) != text
    )


def main(argv: list[str]) -> int:
    """Rewrite the pages in place (or, with --check, print how they differ and exit 1)."""
    folder = Path(tempfile.mkdtemp(prefix="docs-examples-"))
    try:
        rendered = render_pages(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if "--check" in argv:
        diff = differences(rendered)
        print(diff or "the documented examples are what a run prints", end="\n" if not diff else "")
        return 1 if diff else 0
    for page, text in rendered.items():
        if (ROOT / page).read_text() != text:
            (ROOT / page).write_text(text)
            print(f"rewrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
