"""BENCHMARKS.md: every figure reproducible and every citation of it lasting.

Code, docs and tests cite a measurement by the anchor of its section (`BENCHMARKS.md#engine-choice`,
or `benchmarks.md#engine-choice` inside the docs site, which includes the file whole), never by its
title, so a section can be renamed or rewritten without leaving a comment pointing nowhere. Each
section says how its figures were measured (a command) and when (a date), since the machine's speed
moves from one day to the next and a figure without them cannot be checked or compared.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = "BENCHMARKS.md"
CITING_FILES = (".py", ".md", ".toml", ".yml", ".yaml", ".cfg", ".txt", ".sh")
CITING_NAMES = ("Makefile", "Dockerfile")
NOT_SOURCES = {".git", ".venv", "build", "site", "bench-results", "runs", "data", "node_modules", "__pycache__"}
ANCHOR = re.compile(r'^<a id="([a-z0-9]+(?:-[a-z0-9]+)*)"></a>$', re.MULTILINE)
CITATION = re.compile(r"benchmarks\.md#([\w-]+)", re.IGNORECASE)
CITED_BY_TITLE = re.compile(r"BENCHMARKS\.md,?\s+\"")
DATE = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b")
COMMAND = re.compile(r"^```console$|`(?:make|python|reviewscore|py-spy|/usr/bin/time) [^`]*`", re.MULTILINE)


def citing_files(root: Path) -> list[Path]:
    """Every file of the repository that could cite the benchmarks, virtual environments and outputs left out."""
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [s for s in subfolders if s not in NOT_SOURCES and not s.endswith(".egg-info")]
        found += [
            Path(folder) / name
            for name in names
            if name != BENCHMARKS and (name.endswith(CITING_FILES) or name in CITING_NAMES)
        ]
    return sorted(found)


def anchors(text: str) -> list[str]:
    return ANCHOR.findall(text)


def citations(root: Path) -> dict[str, list[str]]:
    """Anchor cited -> where ("path:line"), over the whole repository."""
    cited: dict[str, list[str]] = {}
    for path in citing_files(root):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for anchor in CITATION.findall(line):
                cited.setdefault(anchor, []).append(f"{path.relative_to(root)}:{number}")
    return cited


def cited_by_title(root: Path) -> list[str]:
    text_of = {path: path.read_text(errors="replace") for path in citing_files(root)}
    return [
        f"{path.relative_to(root)}:{text[: match.start()].count(chr(10)) + 1}"
        for path, text in text_of.items()
        for match in CITED_BY_TITLE.finditer(text)
    ]


def sections(text: str) -> dict[str, str]:
    """Each `##` section's heading -> its text up to the next `##` heading (its `###` subsections included)."""
    parts = re.split(r"^(## .+)$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def missing_anchors(root: Path) -> dict[str, list[str]]:
    present = set(anchors((root / BENCHMARKS).read_text()))
    return {anchor: where for anchor, where in citations(root).items() if anchor not in present}


def test_every_cited_anchor_exists():
    missing = missing_anchors(ROOT)
    assert not missing, f"cited anchors that {BENCHMARKS} lacks (add <a id=...> or fix the citation): {missing}"


def test_the_benchmarks_are_cited_by_anchor_not_by_title():
    assert not cited_by_title(ROOT), f"cite {BENCHMARKS}#anchor instead of a section title at {cited_by_title(ROOT)}"


def test_anchors_are_unique_and_every_section_has_one():
    text = (ROOT / BENCHMARKS).read_text()
    found = anchors(text)
    assert len(found) == len(set(found)), f"an anchor is used twice: {sorted(found)}"
    headings = re.findall(r"^(.*)\n(##+ .+)$", text, flags=re.MULTILINE)
    level_two = [(above, heading) for above, heading in headings if heading.startswith("## ")]
    assert level_two, f"{BENCHMARKS} has no sections"
    without = [heading for above, heading in level_two if not ANCHOR.fullmatch(above)]
    assert not without, f"put an <a id=...></a> line right before {without}"


@pytest.mark.parametrize("heading", list(sections((ROOT / BENCHMARKS).read_text())))
def test_every_section_says_when_and_how_it_was_measured(heading):
    body = sections((ROOT / BENCHMARKS).read_text())[heading]
    assert DATE.search(body), f"{heading!r} gives no date (YYYY-MM-DD) its figures were measured"
    assert COMMAND.search(body), f"{heading!r} gives no command (a console block or `make ...`/`python ...`)"


def test_a_citation_of_a_missing_anchor_is_caught(tmp_path):
    (tmp_path / BENCHMARKS).write_text('# Benchmarks\n\n<a id="scoring-cost"></a>\n## What scoring costs\n')
    (tmp_path / "engine.py").write_text(f'"""Fast enough ({BENCHMARKS}#scoring-cost, {BENCHMARKS}#gone)."""\n')
    (tmp_path / "page.md").write_text("See [Benchmarks](benchmarks.md#scoring-cost).\n")
    assert missing_anchors(tmp_path) == {"gone": ["engine.py:1"]}


def test_a_section_without_date_or_command_is_caught():
    text = '<a id="a"></a>\n## Dated\nmeasured 2026-01-02 with `make bench`\n<a id="b"></a>\n## Undated\n12 s\n'
    found = sections(text)
    assert DATE.search(found["## Dated"]) and COMMAND.search(found["## Dated"])
    assert not DATE.search(found["## Undated"]) and not COMMAND.search(found["## Undated"])
