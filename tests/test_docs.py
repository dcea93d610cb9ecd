"""The documentation: the command reference is generated from the code and complete, every page is in
the site's navigation, and the README stays a short front door that speaks of the product.

`make docs` builds the site strictly (a broken link fails it); these checks are the ones a build does
not make.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer.main
import yaml

from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_LIMIT_BYTES = 15_500
NOT_IN_README = ("../shared", "issue", "session", "this machine")


def load_hook(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cli_reference():
    return load_hook("cli_reference")


@pytest.fixture(scope="module")
def reference(cli_reference) -> str:
    return cli_reference.render()


def command_paths(command, path: str = "reviewscore") -> list[tuple[str, object]]:
    """Every command of the Typer app, sub-commands included, as (`reviewscore NAME ...`, command)."""
    ctx = typer.Context(command, info_name=path)
    found = []
    for name in getattr(command, "list_commands", lambda _ctx: [])(ctx):
        sub = command.get_command(ctx, name)
        found.append((f"{path} {name}", sub))
        found += command_paths(sub, f"{path} {name}")
    return found


def section(markdown: str, heading: str) -> str:
    """The text under `## `heading`` up to the next heading of any level."""
    start = markdown.index(f"# `{heading}`")
    rest = markdown[start:].split("\n", 1)[1]
    match = re.search(r"^#+ ", rest, flags=re.MULTILINE)
    return rest[: match.start()] if match else rest


def test_reference_has_a_section_for_every_command(reference):
    paths = [path for path, _ in command_paths(typer.main.get_command(app))]
    assert "reviewscore score" in paths and "reviewscore train" in paths, paths
    for path in paths:
        assert re.search(rf"^#+ `{re.escape(path)}`$", reference, flags=re.MULTILINE), f"no section for {path}"


def test_reference_lists_every_option_of_score(reference):
    score = dict(command_paths(typer.main.get_command(app)))["reviewscore score"]
    text = section(reference, "reviewscore score")
    first_cells = re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE)  # a table row's names and metavar
    names_in_code = {token for cell in first_cells for token in re.split(r"[\s,/]+", cell)}
    options = [name for param in score.params for name in [*param.opts, *param.secondary_opts] if name.startswith("-")]
    assert {"--output", "--model", "--on-drift", "--explain"} <= set(options), options
    missing = [name for name in options if name not in names_in_code]
    assert not missing, f"options of score missing from the reference: {missing}"
    assert "INPUTS" in text  # the positional argument too


def test_reference_shows_help_as_the_command_does(cli_reference, reference):
    """Rich's escapes undone, Markdown's special characters escaped outside code, no home folder."""
    assert "\\[" not in reference
    assert str(Path.home()) not in reference
    text = cli_reference._text(f"Folder for scored-*.parquet, _SUMMARY.json and `a_b*` \\[default: {Path.home()}/x].")
    assert text == "Folder for scored-\\*.parquet, \\_SUMMARY.json and `a_b*` [default: ~/x]."


def test_hook_fills_only_the_reference_page(cli_reference):
    def page(uri: str):
        return SimpleNamespace(file=SimpleNamespace(src_uri=uri))

    filled = cli_reference.on_page_markdown(f"# CLI\n\n{cli_reference.MARKER}\n", page(cli_reference.PAGE), None, None)
    assert cli_reference.MARKER not in filled and "## `reviewscore score`" in filled
    other = f"# Other\n\n{cli_reference.MARKER}\n"
    assert cli_reference.on_page_markdown(other, page("index.md"), None, None) == other
    with pytest.raises(ValueError, match="marker"):
        cli_reference.on_page_markdown("# CLI, marker gone\n", page(cli_reference.PAGE), None, None)


def test_reference_page_holds_the_marker(cli_reference):
    assert cli_reference.MARKER in (ROOT / "docs" / cli_reference.PAGE).read_text()


def nav_pages(entries) -> list[str]:
    pages = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_every_page_is_in_the_navigation_and_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = nav_pages(config["nav"])
    docs = ROOT / config.get("docs_dir", "docs")
    on_disk = sorted(str(p.relative_to(docs)) for p in docs.rglob("*.md") if "hooks" not in p.parts)
    assert sorted(nav) == on_disk
    assert config["strict"] is True
    for hook in config["hooks"]:
        assert (ROOT / hook).is_file(), hook


def test_readme_is_a_short_front_door():
    data = README.read_bytes()
    assert len(data) < README_LIMIT_BYTES, f"README.md is {len(data):,} bytes; move detail into docs/"
    text = data.decode("utf-8").lower()
    found = [word for word in NOT_IN_README if word in text]
    assert not found, f"README.md speaks of {found}: keep history and build paths out of it"


def test_readme_lists_every_command_and_links_only_existing_files():
    text = README.read_text()
    for path, _ in command_paths(typer.main.get_command(app)):
        if path.count(" ") == 1:  # top-level commands
            assert f"`{path}" in text, f"README.md's command table lacks {path}"
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target).exists(), f"README.md links to {target}, which does not exist"


def test_readme_test_command_is_make_test():
    """CI runs the README's test command."""
    assert "```console\nmake test\n```" in README.read_text()
