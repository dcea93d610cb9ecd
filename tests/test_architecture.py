"""The house rules the architecture note (docs/architecture.md) states, checked on the source.

Each rule is read off the code with `ast`, so a change that breaks one fails here with the place
that broke it: no import cycle between modules, no function longer than a page, output column
names spelled only in `schemas/`, no issue numbers in comments or docstrings.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "training", "schemas")
LONGEST_FUNCTION = 80
OUTPUT_COLUMNS = ("predicted_label", "label_probs", "model_version", "top_words")


def sources() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports, at any depth (a function-level import is still a dependency)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def test_no_import_cycles():
    modules = {module_name(path): path for path in sources()}
    known = set(modules)
    graph = {name: imports_of(path, known) - {name} for name, path in modules.items()}
    # a package's __init__ re-exporting its members is not a cycle between them
    for name in graph:
        graph[name] = {other for other in graph[name] if not name.startswith(other + ".")}
    cycles = []
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                cycles.append(" -> ".join([*stack[stack.index(other) :], other]))
            elif other not in state:
                visit(other, [*stack, other])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


# Who may import whom (docs/architecture.md, "Which way data flows"): a module under the first prefix
# never imports one under the second.
FORBIDDEN_IMPORTS = (
    ("schemas", "pipeline"),
    ("schemas", "training"),
    ("pipeline.engines", "pipeline.graph"),
    ("pipeline.engines", "pipeline.job"),
    ("pipeline.engines", "pipeline.monitoring"),
    ("pipeline.engines", "pipeline.explain"),
    ("pipeline.monitoring", "pipeline.sinks"),
    ("pipeline.monitoring", "pipeline.graph"),
    ("pipeline.sinks", "pipeline.monitoring"),
    ("pipeline.graph", "pipeline.cli"),
    ("pipeline.job", "pipeline.cli"),
)


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_data_flows_one_way():
    modules = {module_name(path): path for path in sources()}
    known = set(modules)
    wrong = []
    for name, path in sorted(modules.items()):
        for imported in sorted(imports_of(path, known)):
            if within(imported, "training") and within(name, "pipeline") and not within(name, "pipeline.cli"):
                wrong.append(f"{name} imports {imported}: scoring never needs training")
            wrong += [
                f"{name} imports {imported}"
                for low, high in FORBIDDEN_IMPORTS
                if within(name, low) and within(imported, high)
            ]
    assert not wrong, "imports against the flow:\n" + "\n".join(wrong)


def test_no_function_longer_than_a_page():
    long = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > LONGEST_FUNCTION:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, f"functions over {LONGEST_FUNCTION} lines:\n" + "\n".join(long)


def test_output_column_names_only_in_schemas():
    spelled = []
    for path in sources():
        if path.relative_to(ROOT).parts[0] == "schemas":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in OUTPUT_COLUMNS:
                spelled.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not spelled, "output column names outside schemas/:\n" + "\n".join(spelled)


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_issue_numbers_in_comments(path):
    text = path.read_text()
    notes = [t.string for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type == tokenize.COMMENT]
    notes += [
        node.value
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "\n" in node.value
    ]
    history = [note for note in notes if re.search(r"\b[Ii]ssue \d+|\bsession\b|build machine", note)]
    assert not history, "history in comments:\n" + "\n".join(history)
