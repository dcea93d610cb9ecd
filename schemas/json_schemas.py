"""The JSON Schemas of `_SUMMARY.json` and `manifest.json`, generated from their pydantic models.

They are committed beside this file (run_summary.schema.json, manifest.schema.json) for programs that
read those files without reviewscore, and shown as tables of their fields in the documentation
(docs/reference/schemas.md, generated from the same schemas, so it cannot describe another version).
After changing a model:

    python -m schemas.json_schemas          # or: make schemas

tests/test_schemas.py fails while a committed schema or the page is stale.
"""

from __future__ import annotations

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


def render(name: str) -> str:
    """A schema's text: the model's JSON Schema (what a reader accepts), with its dialect, as committed."""
    schema = {"$schema": DIALECT, **model_for(name).model_json_schema(mode="validation")}
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
        schema = model_for(name).model_json_schema(mode="validation")
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
