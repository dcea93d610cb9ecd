"""The JSON Schemas of `_SUMMARY.json` and `manifest.json`, generated from their pydantic models.

They are committed beside this file (run_summary.schema.json, manifest.schema.json) for programs that
read those files without reviewscore, and shown in the documentation (docs/reference/schemas.md, by
docs/hooks/schema_reference.py). After changing a model:

    python -m schemas.json_schemas          # or: make schemas

tests/test_schemas.py fails while a committed schema is stale.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
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


def stale() -> list[str]:
    """The committed schemas that differ from what the models generate now."""
    return [name for name in SCHEMA_FILES if not (HERE / name).is_file() or (HERE / name).read_text() != render(name)]


def main() -> None:
    for name in SCHEMA_FILES:
        path = HERE / name
        text = render(name)
        changed = not path.is_file() or path.read_text() != text
        if changed:
            path.write_text(text)
        print(f"{'wrote' if changed else 'unchanged:'} schemas/{name}")


if __name__ == "__main__":
    main()
