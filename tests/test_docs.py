"""The documentation: the command reference is generated from the code and complete, every page is in
the site's navigation, and the README stays a short front door that speaks of the product.

`make docs` builds the site strictly (a broken link fails it); these checks are the ones a build does
not make.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer.main
import yaml

from pipeline.cli import app
from schemas.output_names import ERRORS_FOLDER, SCORED_FILES

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


def test_reference_is_each_commands_help_as_it_prints_it(cli_reference, reference):
    """Every option of every command, as `--help` names it, with no home folder of the machine that wrote it."""
    for path, command in command_paths(typer.main.get_command(app)):
        text = section(reference, path)
        shown = cli_reference.help_text(path.split()[1:])
        assert f"```text\n{shown}\n```" in text, path
        for param in command.params:
            for name in (*param.opts, *param.secondary_opts):
                assert not name.startswith("-") or re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), name
    assert "INPUT..." in section(reference, "reviewscore score")  # the positional argument too
    assert str(Path.home()) not in reference


def test_the_committed_reference_is_what_the_commands_print(cli_reference):
    """docs/reference/cli.md is committed (it reads the same on GitHub); change a help text and this fails
    until the page is regenerated."""
    page = (ROOT / "docs" / cli_reference.PAGE).read_text()
    assert not cli_reference.stale(page), f"docs/{cli_reference.PAGE} is stale: run `{cli_reference.REGENERATE}`"


def test_the_generator_refills_only_between_its_markers(cli_reference):
    page = f"# CLI\n\nBy hand.\n\n{cli_reference.START}\nNOT-GENERATED\n{cli_reference.END}\n\nAfter.\n"
    filled = cli_reference.filled(page)
    assert filled.startswith("# CLI\n\nBy hand.\n\n") and filled.endswith(f"{cli_reference.END}\n\nAfter.\n")
    assert "NOT-GENERATED" not in filled and "## `reviewscore score`" in filled
    assert cli_reference.filled(filled) == filled and not cli_reference.stale(filled)
    with pytest.raises(ValueError, match="marker"):
        cli_reference.filled("# CLI, markers gone\n")


def test_the_site_build_refuses_a_stale_reference_page(cli_reference):
    def page(uri: str):
        return SimpleNamespace(file=SimpleNamespace(src_uri=uri))

    stale = f"# CLI\n\n{cli_reference.START}\nold\n{cli_reference.END}\n"
    with pytest.raises(ValueError, match=re.escape(cli_reference.REGENERATE)):
        cli_reference.on_page_markdown(stale, page(cli_reference.PAGE), None, None)
    assert cli_reference.on_page_markdown(stale, page("index.md"), None, None) == stale  # other pages pass
    fresh = cli_reference.filled(stale)
    assert cli_reference.on_page_markdown(fresh, page(cli_reference.PAGE), None, None) == fresh


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


def test_readme_names_the_fast_loop_and_what_ci_runs():
    """The README's two test commands: `make test`, the fast loop, and `make check`, which CI runs."""
    text = README.read_text()
    assert "```console\nmake test\n```" in text and "```console\nmake check\n```" in text
    assert re.search(r"^make check\b", (ROOT / ".ci" / "run").read_text(), re.MULTILINE), ".ci/run runs make check"


# The documented examples: what the quick start prints and what the snippets print are a real run's
# (docs/hooks/doc_examples.py, `make docs-examples`), and every reader on the reading page reads a real
# output folder.

READING_PAGE = ROOT / "docs" / "reading-output.md"
READERS = ("pandas", "pyarrow", "DuckDB", "Polars", "Spark")
"""The reading page's sections whose snippet leaves the dataset in `scored`."""
COMPARED = ["review_id", "text", "predicted_label", "score", "model_version"]


@pytest.fixture(scope="module")
def doc_examples():
    return load_hook("doc_examples")


@pytest.mark.slow
def test_documented_examples_are_what_a_run_prints(doc_examples, tmp_path):
    """The committed default on examples/reviews/, run as the pages show it, prints what they show."""
    diff = doc_examples.differences(doc_examples.render_pages(tmp_path))
    assert not diff, f"the documented examples differ from a run; `make docs-examples` rewrites them:\n{diff}"


def test_each_page_shows_the_quick_start_and_its_snippets_as_examples(doc_examples):
    for page in doc_examples.PAGES:
        blocks = doc_examples.FENCE.findall((ROOT / page).read_text())
        consoles = [body for language, body in blocks if language == "console"]
        assert any("score examples/reviews/ --output out/scored\n" in body for body in consoles), page
        snippets = [body for language, body in blocks if language == "python"]
        assert any("import pandas" in body for body in snippets) and any("import duckdb" in body for body in snippets)
        silent = [body for body in snippets if not re.search(r"^# ", body, flags=re.MULTILINE)]
        assert not silent, f"{page}: a snippet shows no output"


def test_an_example_is_rewritten_from_what_it_prints(doc_examples, tmp_path):
    stale = f"{doc_examples.BEGIN}\n```python\nx = 6 * 7\nprint(x)\n# 41\nprint('a\\nb')\n```\n{doc_examples.END}\n"
    session = doc_examples.Session(tmp_path)
    fresh = stale.replace("# 41\nprint('a\\nb')\n", "# 42\nprint('a\\nb')\n# a\n# b\n")
    assert fresh != stale and doc_examples.render(stale, session) == fresh


def test_what_changes_between_runs_is_shown_the_same_way(doc_examples, tmp_path):
    def run(seconds: str, rate: str, folder) -> str:
        return (
            f"model 3.0.0 loaded in {seconds} s; engine onnx\n"
            f"scoring: 6 of 12 reviews (50 %), {rate} reviews/s, about {seconds} s left\n"
            f"explanations: 12 reviews, {rate} reviews/s, done in {seconds} s\n"
            f"│ wall time    │ {seconds + ' s':>16} │\n"
            f"│ throughput   │ {rate + ' reviews/s':>16} │\n"
            f"report: file://{folder}/out/scored/_report.html   \n"
        )

    first = doc_examples.normalise(run("0.4", "3", tmp_path / "a"), tmp_path / "a")
    second = doc_examples.normalise(run("12.7", "1,024", tmp_path / "b"), tmp_path / "b")
    assert first == second
    assert "left" not in first and "done in" not in first  # progress lines: as many as the run took seconds
    assert str(tmp_path) not in first and "file:///path/to/reviewscore/out/scored/_report.html" in first
    table = run("0.4", "3", "").splitlines()[3:5]
    assert [len(line) for line in first.splitlines()[1:3]] == [len(line) for line in table]  # aligned as printed


@pytest.fixture(scope="module")
def output_folder(doc_examples, tmp_path_factory):
    """A real run of the committed default on six reviews, two of which fail, written in two shards."""
    folder = tmp_path_factory.mktemp("reading")
    texts = ["A wonderful, moving film.", "Dull and far too long.", None, "I loved every minute.", "!!! ...", "Awful."]
    pq.write_table(pa.table({"review_id": [f"r{i}" for i in range(6)], "text": texts}), folder / "reviews.parquet")
    model = ROOT / "models" / "imdb-bilstm"
    doc_examples.run_command(
        f"reviewscore score reviews.parquet --output out/scored --num-shards 2 --model {model}", folder
    )
    assert (folder / "out" / "scored" / ERRORS_FOLDER).is_dir()  # what a reader given the folder must skip
    return folder


def reading_snippets() -> dict[str, str]:
    """Each section of the reading page (its heading) and its Python snippet."""
    snippets = {}
    for part in re.split(r"^## ", READING_PAGE.read_text(), flags=re.MULTILINE)[1:]:
        heading, body = part.split("\n", 1)
        if code := re.search(r"```python\n(.*?)```", body, flags=re.DOTALL):
            snippets[heading.strip()] = code.group(1)
    return snippets


def as_frame(scored) -> pd.DataFrame:
    """Whatever a reader returned, as a pandas frame in review order."""
    if not isinstance(scored, pd.DataFrame):
        convert = next(name for name in ("toPandas", "df", "to_pandas") if hasattr(scored, name))  # Spark, DuckDB, rest
        scored = getattr(scored, convert)()
    return scored.sort_values("review_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def expected_rows(output_folder) -> pd.DataFrame:
    """The rows of the files the run names as its scored files, read one by one."""
    files = sorted((output_folder / "out" / "scored").glob(SCORED_FILES))
    assert len(files) == 2
    rows = pd.concat([pq.read_table(file).to_pandas() for file in files])
    return rows.sort_values("review_id").reset_index(drop=True)


def test_the_reading_page_shows_every_reader():
    snippets = reading_snippets()
    assert set(READERS) <= set(snippets), sorted(snippets)
    assert "scored-*.parquet" in snippets["Polars"] and "scored-*.parquet" in snippets["DuckDB"]
    assert "gs://BUCKET/DIR/scored-*.parquet" in READING_PAGE.read_text()  # BigQuery's external table


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.slow
def test_each_reader_on_the_page_reads_the_scored_rows_only(
    reader, doc_examples, output_folder, expected_rows, monkeypatch
):
    if reader == "Spark":
        pytest.importorskip("pyspark", reason="pyspark is not installed (it is not part of the dev install)")
        if not shutil.which("java"):
            pytest.skip("Spark needs Java")
    monkeypatch.chdir(output_folder)  # DuckDB's relation reads its files when converted, below
    namespace: dict = {}
    try:
        doc_examples.run_python(reading_snippets()[reader], namespace, output_folder)
        rows = as_frame(namespace["scored"])
    finally:
        if "spark" in namespace:
            namespace["spark"].stop()
    assert len(rows) == len(expected_rows) == 4
    assert set(rows.columns) == set(expected_rows.columns) and "label_probs" in rows.columns
    for column in COMPARED:
        assert rows[column].tolist() == expected_rows[column].tolist(), column


def test_the_page_reads_the_failed_records_and_the_summary(doc_examples, output_folder):
    snippets = reading_snippets()
    namespace: dict = {}
    doc_examples.run_python(snippets["The records that failed"], namespace, output_folder)
    printed = doc_examples.run_python(snippets["The run's summary"], namespace, output_folder)
    assert printed.split() == ["6", "4", "2"]
    assert len(namespace["errors"]) == 2 and set(namespace["errors"].columns) >= {"review_id", "stage", "error"}
