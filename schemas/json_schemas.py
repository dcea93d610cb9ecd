"""The JSON Schemas of `_SUMMARY.json` and `manifest.json`, generated from their pydantic models.

They are committed beside this file (run_summary.schema.json, manifest.schema.json) for programs that
read those files without reviewscore, and shown as tables of their fields in the documentation
(docs/reference/schemas.md, generated from the same schemas, so it cannot describe another version).
After changing a model:

    python -m schemas.json_schemas          # or: make schemas

tests/test_schemas.py fails while a committed schema or the page is stale.
"""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAGE = HERE.parent / "docs" / "reference" / "schemas.md"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILES = {"run_summary.schema.json": "_SUMMARY.json", "manifest.schema.json": "manifest.json"}
"""Each committed schema, by the file it describes."""
REGENERATE = "make schemas"


def model_for(name: str) -> type:
    """The pydantic model a committed schema is generated from."""
    if name == "run_summary.schema.json":
        from schemas.summary import RunSummary

        return RunSummary
    from schemas.manifest import Manifest

    return Manifest


def json_schema(name: str) -> dict[str, Any]:
    """The model's JSON Schema (what a reader accepts), each field described by its docstring."""
    model = model_for(name)
    return described(model.model_json_schema(mode="validation"), Path(inspect.getfile(model)))


def described(schema: dict[str, Any], source: Path) -> dict[str, Any]:
    """`schema` with the docstring under each field of its models as the field's description.

    The models do not ask pydantic for that (`use_attribute_docstrings`): it reads and parses their
    source each time the module is imported, a cost every run would pay for what only these files need.
    """
    docstrings = attribute_docstrings(source)
    for title, part in [(schema.get("title", ""), schema), *schema.get("$defs", {}).items()]:
        properties = part.get("properties", {})
        for field, definition in properties.items():
            if "description" not in definition and field in docstrings.get(title, {}):
                # in the place pydantic gives it: its schemas' keys are sorted
                properties[field] = dict(sorted({**definition, "description": docstrings[title][field]}.items()))
    return schema


def attribute_docstrings(source: Path) -> dict[str, dict[str, str]]:
    """{class: {field: docstring}} for each string right under an annotated field, as pydantic reads them."""
    found: dict[str, dict[str, str]] = {}
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ClassDef):
            continue
        for field, after in zip(node.body, node.body[1:], strict=False):
            if (
                isinstance(field, ast.AnnAssign)
                and isinstance(field.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                found.setdefault(node.name, {})[field.target.id] = inspect.cleandoc(after.value.value)
    return found


def render(name: str) -> str:
    """A schema's text, with its dialect, as committed."""
    schema = {"$schema": DIALECT, **json_schema(name)}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


PAGE_INTRO = f"""# Schemas of _SUMMARY.json and manifest.json

Other programs (a scheduler's gate, a dashboard, a model registry) read two of reviewscore's files:
the `_SUMMARY.json` of every run and the `manifest.json` of every model bundle. Each is written and
read through one pydantic model, and each has a JSON Schema generated from that model and committed
in the repository: `schemas/run_summary.schema.json` and `schemas/manifest.schema.json` (JSON Schema
{DIALECT.split("/")[-2]}). Validate a file with any JSON Schema validator, or read it with the model itself
(`schemas/summary.py`, `schemas/manifest.py`).

The tables below are generated from those schemas by `{REGENERATE}`; the tests fail when this page,
or a committed schema, differs from what the models generate. A field marked *required* is always in the
file; the others may be missing (their default applies) or null where their type allows it. A reader
should ignore fields it does not know: later versions may add some.
"""


def render_page() -> str:
    """docs/reference/schemas.md: the introduction, then each schema's objects as tables of their fields."""
    lines = [PAGE_INTRO]
    for name, described in SCHEMA_FILES.items():
        schema = json_schema(name)
        lines += [f"## {described}", "", f"`schemas/{name}`: {_cell(schema.get('description', ''))}", ""]
        lines += _object_table(schema)
        for definition, part in sorted(schema.get("$defs", {}).items()):
            lines += [f"### {definition}", "", _cell(part.get("description", "")), ""]
            lines += _object_table(part)
    return "\n".join(lines).rstrip("\n") + "\n"


def _object_table(schema: dict[str, Any]) -> list[str]:
    """One row per property: its name, type, whether it is required, its description."""
    required = set(schema.get("required", []))
    rows = ["| Field | Type | Required | Description |", "| --- | --- | --- | --- |"]
    for field, part in schema.get("properties", {}).items():
        mark = "required" if field in required else ""
        rows.append(f"| `{field}` | {_type(part)} | {mark} | {_cell(part.get('description', ''))} |")
    return [*rows, ""]


def _type(part: dict[str, Any]) -> str:
    """A property's JSON type in words, objects of this schema linked to their tables."""
    if "$ref" in part:
        name = part["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in part:
        return " or ".join(_type(option) for option in part["anyOf"])
    if "const" in part:
        return f"`{json.dumps(part['const'])}`"
    kind = part.get("type", "any")
    if kind == "array":
        return f"array of {_type(part.get('items', {}))}"
    if kind == "object" and isinstance(part.get("additionalProperties"), dict):
        return f"object of {_type(part['additionalProperties'])}"
    return kind


def _cell(text: str) -> str:
    """Text that stays in one table cell: one line, its pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def stale() -> list[str]:
    """The committed schemas, and the page, that differ from what the models generate now."""
    expected = {HERE / name: render(name) for name in SCHEMA_FILES} | {PAGE: render_page()}
    return [path.name for path, text in expected.items() if not path.is_file() or path.read_text() != text]


def main() -> None:
    generated = {HERE / name: render(name) for name in SCHEMA_FILES}
    generated[PAGE] = render_page()
    for path, text in generated.items():
        changed = not path.is_file() or path.read_text() != text
        if changed:
            path.write_text(text)
        print(f"{'wrote' if changed else 'unchanged:'} {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
