"""The published JSON Schemas of _SUMMARY.json and manifest.json (schemas/*.schema.json): generated from
the pydantic models every reader and writer goes through, committed, and describing what a real run and
every committed bundle write.

`jsonschema` is not among the dev dependencies, so a file is checked against a committed schema through
the model the schema is generated from: the model accepts the file, and the committed schema is exactly
the model's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.model.bundle import Bundle
from schemas.bundle import CALIBRATION_FILE, MANIFEST_FILE, PREPROCESSING_FILE, PROFILE_FILE
from schemas.json_schemas import HERE, PAGE, REGENERATE, SCHEMA_FILES, model_for, render, render_page, stale
from schemas.manifest import read_manifest
from schemas.output import SUMMARY_FILE
from schemas.summary import RunSummary, summary_from_json, summary_to_json
from tests.test_scoring import score

ROOT = Path(__file__).resolve().parent.parent
COMMITTED_BUNDLES = sorted(path.parent for path in (ROOT / "models").glob(f"*/{MANIFEST_FILE}"))


def test_the_committed_schemas_are_what_the_models_generate():
    """Change a model without `make schemas` and this fails, naming the command (the schemas and their page)."""
    assert stale() == [], f"stale JSON Schema or docs/reference/schemas.md: run `{REGENERATE}`"
    for name in SCHEMA_FILES:
        schema = json.loads((HERE / name).read_text())
        assert schema["$schema"].startswith("https://json-schema.org/") and schema["type"] == "object"


def _undescribed(schema: dict, where: str) -> list[str]:
    """Every property, in this schema object and in any object nested in it ($defs included), that has no
    description, as where.name."""
    found = []
    for field, part in schema.get("properties", {}).items():
        if not str(part.get("description", "")).strip():
            found.append(f"{where}.{field}")
    for key, value in schema.items():
        if key != "properties" and isinstance(value, dict):
            found += _undescribed(value, f"{where}/{key}")
    for part in schema.get("properties", {}).values():
        found += _undescribed(part, where)
    return found


def test_every_field_of_the_committed_schemas_has_a_description():
    """A reader of _SUMMARY.json or manifest.json learns what each field holds from its schema (and the
    page made from it): a field added without a docstring under it fails here."""
    undescribed = [
        field for name in SCHEMA_FILES for field in _undescribed(json.loads((HERE / name).read_text()), name)
    ]
    assert undescribed == [], f"give each a docstring under it in its model, then run `{REGENERATE}`"


def test_a_model_change_shows_as_a_stale_schema(monkeypatch):
    """The staleness check compares bytes: a field added to the summary's model changes its schema."""
    name = "run_summary.schema.json"
    before = render(name)
    monkeypatch.setattr(RunSummary, "model_json_schema", classmethod(lambda cls, mode: {"type": "object"}))
    assert render(name) != before and name in stale()


def test_the_schema_page_shows_every_field_with_its_description():
    """docs/reference/schemas.md has a row for each field of both files, with the description the model gives
    it; a field added to a model without regenerating leaves the page stale."""
    page = PAGE.read_text()
    for name, described in SCHEMA_FILES.items():
        assert f"## {described}" in page and f"`schemas/{name}`" in page
        section = page.split(f"\n## {described}\n")[1].splitlines()  # its own table comes first
        for field, info in model_for(name).model_fields.items():
            row = next(line for line in section if line.startswith(f"| `{field}` |"))
            assert " ".join((info.description or "").split()) in row
    assert "| `score_label` |" in page and "| `lineage` | [Lineage](#lineage) or null |" in page


def test_a_model_change_shows_as_a_stale_page(monkeypatch):
    schema = {"type": "object", "properties": {"new_field": {"type": "string", "description": "New."}}}
    monkeypatch.setattr(RunSummary, "model_json_schema", classmethod(lambda cls, mode: schema))
    assert "| `new_field` | string |  | New. |" in render_page()
    assert PAGE.name in stale()


@pytest.mark.slow
def test_the_summary_of_a_real_run_is_what_the_committed_schema_describes(tmp_path):
    """A DirectRunner run through the CLI, on reviews written here: its _SUMMARY.json reads with the model the
    committed schema is generated from, and writes back byte for byte (nothing in it the schema leaves out)."""
    reviews = tmp_path / "reviews"
    reviews.mkdir()
    for i, text in enumerate(["A wonderful, moving film.", "Dull and far too long.", "Fine acting, weak plot."]):
        (reviews / f"{i}.txt").write_text(text)
    result = score(reviews, "--output", tmp_path / "out", "--model", ROOT / "models" / "imdb-bilstm")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / SUMMARY_FILE).read_text()
    summary = summary_from_json(text)
    assert summary.records_scored == 3 and summary.lineage is not None
    assert summary_to_json(summary) == text
    assert (HERE / "run_summary.schema.json").read_text() == render("run_summary.schema.json")
    schema = json.loads((HERE / "run_summary.schema.json").read_text())
    assert set(schema["required"]) <= set(json.loads(text))


@pytest.mark.parametrize("bundle", COMMITTED_BUNDLES, ids=lambda path: path.name)
def test_every_committed_manifest_is_what_the_committed_schema_describes(bundle):
    """Each committed bundle's manifest.json reads with the model and writes back to its very bytes, so
    its sha256 (which every run's lineage records) is unchanged."""
    text = (bundle / MANIFEST_FILE).read_text()
    manifest = read_manifest(json.loads(text))
    assert json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) == text.rstrip("\n")
    schema = json.loads((HERE / "manifest.schema.json").read_text())
    assert set(schema["required"]) <= set(json.loads(text))


@pytest.mark.parametrize("bundle", COMMITTED_BUNDLES, ids=lambda path: path.name)
def test_every_committed_bundle_file_reads_and_writes_back_through_its_model(bundle):
    """calibration.json, preprocessing.json and profile.json read with their models and dumped again give the
    same JSON; the two settings files, as the bundle writer formats them, the very bytes the manifest's
    checksums cover. A profile's bytes also depend on its indent (one or two spaces), so its own is kept."""
    opened = Bundle.open(bundle)
    for name, model in ((CALIBRATION_FILE, opened.calibration), (PREPROCESSING_FILE, opened.preprocessing)):
        assert json.dumps(model.model_dump(mode="json"), indent=2) == (bundle / name).read_text()
    text = (bundle / PROFILE_FILE).read_text()
    written = opened.profile.model_dump(mode="json")
    assert written == json.loads(text)
    assert json.dumps(written, indent=1) == text or json.dumps(written, indent=2) == text
