"""The house rules the architecture note (docs/architecture.md) states, checked on the source.

Each rule is read off the code with `ast`, so a change that breaks one fails here with the place
that broke it: no import cycle between modules, no function longer than a page, output column
names spelled only in `schemas/`, no issue numbers in comments or docstrings.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
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


# The layers (docs/architecture.md, "Layers"), lowest first: a module imports only modules of its own
# layer or of layers below it. `training` stands beside the job, on the model library.
LAYERS = {
    "schemas": 0,
    "pipeline": 1,  # the package itself: its version and start time, nothing else
    "pipeline.model": 1,
    "pipeline.job": 2,
    "training": 2,
    "pipeline.cli": 3,
    "pipeline.__main__": 3,  # `python -m pipeline`: the CLI
}
SIDE_BY_SIDE = ("pipeline.job", "training")
"""One layer, two families: neither imports the other (the CLI, above both, joins them)."""
# Inside the model library, engines know nothing of what uses them.
FORBIDDEN_IMPORTS = (
    ("pipeline.model.engines", "pipeline.model.explain"),
    ("pipeline.model.engines", "pipeline.model.monitoring"),
)
BEAM = "apache_beam"
BEAMLESS = ("schemas", "pipeline.model", "training")
"""What never imports Beam, at any depth: the model library scores and trains in a notebook."""


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_of(name: str) -> tuple[str, int]:
    """The most specific layer a module belongs to."""
    found = max((prefix for prefix in LAYERS if within(name, prefix)), key=len)
    return found, LAYERS[found]


def test_every_module_has_a_layer():
    assert all(layer_of(module_name(path)) for path in sources())


def test_data_flows_one_way():
    modules = {module_name(path): path for path in sources()}
    known = set(modules)
    wrong = []
    for name, path in sorted(modules.items()):
        layer, level = layer_of(name)
        for imported in sorted(imports_of(path, known)):
            other, other_level = layer_of(imported)
            if other_level > level or (other != layer and {layer, other} == set(SIDE_BY_SIDE)):
                wrong.append(f"{name} ({layer}) imports {imported} ({other})")
            wrong += [
                f"{name} imports {imported}"
                for low, high in FORBIDDEN_IMPORTS
                if within(name, low) and within(imported, high)
            ]
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def beam_imports(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        if any(within(name, BEAM) for name in names):
            lines.append(node.lineno)
    return lines


def test_model_library_and_training_import_no_beam():
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sources()
        if any(within(module_name(path), prefix) for prefix in BEAMLESS)
        for line in beam_imports(path)
    ]
    assert not found, "Beam imported below the job:\n" + "\n".join(found)


BLOCK_BEAM = """
import importlib.abc, sys
class NoBeam(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "apache_beam" or name.startswith("apache_beam."):
            raise ImportError("apache_beam is not installed here")
sys.meta_path.insert(0, NoBeam())
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
"""


def test_model_library_imports_without_beam():
    """Every module of the model library imports where apache_beam cannot be imported at all."""
    names = [module_name(path) for path in sources() if within(module_name(path), "pipeline.model")]
    done = subprocess.run([sys.executable, "-c", BLOCK_BEAM, *names], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(names) > 20


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
