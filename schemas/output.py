"""The scored-output and error Parquet contracts that downstream jobs read.

Scored files carry every input column unchanged plus the four score columns (and top_words when
explaining, and the shadow model's four when a shadow model scores beside the run's); error files
carry one row per record that could not be read, decoded, preprocessed or scored. The bundle manifest
rides along in the Parquet key-value metadata under MANIFEST_METADATA_KEY, and the run's lineage as
known at launch under LINEAGE_METADATA_KEY.
The names themselves are in `schemas/output_names.py`; this module gives them their Arrow types.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from schemas.output_names import (
    DECODE_STAGE,
    ERROR,
    ERROR_FILES,
    ERRORS_FOLDER,
    ERRORS_PREFIX,
    FLAT_LAYOUT_FILES,
    INFERENCE_STAGE,
    LABEL_PROBS,
    LINEAGE_METADATA_KEY,
    MANIFEST_METADATA_KEY,
    MODEL_VERSION,
    PREDICTED_LABEL,
    PREPROCESS_STAGE,
    READ_STAGE,
    REPORT_FILE,
    REVIEW_ID,
    SCORE,
    SCORED_FILES,
    SCORED_PREFIX,
    SHADOW_LABEL_PROBS,
    SHADOW_MODEL_VERSION,
    SHADOW_PREDICTED_LABEL,
    SHADOW_SCORE,
    SOURCE,
    STAGE,
    STAGES,
    STAGING_FOLDER,
    SUMMARY_FILE,
    TEXT,
    TOP_WORDS,
)
from schemas.summary import Lineage

__all__ = [
    "DECODE_STAGE",
    "ERROR",
    "ERRORS_FOLDER",
    "ERRORS_PREFIX",
    "ERROR_FILES",
    "ERROR_SCHEMA",
    "FLAT_LAYOUT_FILES",
    "INFERENCE_STAGE",
    "LABEL_PROBS",
    "LABEL_PROB_FIELDS",
    "LABEL_PROB_TYPE",
    "LINEAGE_METADATA_KEY",
    "MANIFEST_METADATA_KEY",
    "MODEL_VERSION",
    "PREDICTED_LABEL",
    "PREPROCESS_STAGE",
    "READ_STAGE",
    "REPORT_FILE",
    "REVIEW_ID",
    "SCORE",
    "SCORED_FILES",
    "SCORED_PREFIX",
    "SCORE_FIELDS",
    "SHADOW_FIELDS",
    "SOURCE",
    "STAGE",
    "STAGES",
    "STAGING_FOLDER",
    "SUMMARY_FILE",
    "TEXT",
    "TEXT_FILE_FIELDS",
    "TOP_WORDS",
    "TOP_WORDS_FIELD",
    "TOP_WORD_TYPE",
    "SchemaError",
    "error_schema",
    "lineage_from_metadata",
    "manifest_metadata",
    "scored_schema",
]

LABEL_PROB_FIELDS = (pa.field("label", pa.string(), nullable=False), pa.field("prob", pa.float32(), nullable=False))
LABEL_PROB_TYPE = pa.struct(list(LABEL_PROB_FIELDS))
SCORE_FIELDS = (
    pa.field(PREDICTED_LABEL, pa.string(), nullable=False),
    pa.field(SCORE, pa.float32(), nullable=False),
    pa.field(LABEL_PROBS, pa.list_(pa.field("item", LABEL_PROB_TYPE, nullable=False)), nullable=False),
    pa.field(MODEL_VERSION, pa.string(), nullable=False),
)
SHADOW_FIELDS = (
    pa.field(SHADOW_PREDICTED_LABEL, pa.string()),
    pa.field(SHADOW_SCORE, pa.float32()),
    pa.field(SHADOW_LABEL_PROBS, pa.list_(pa.field("item", LABEL_PROB_TYPE, nullable=False))),
    pa.field(SHADOW_MODEL_VERSION, pa.string()),
)
"""The shadow model's columns (--shadow-model): the score columns' types, nullable, as a review the shadow
model could not score keeps its row with these null."""

TOP_WORD_TYPE = pa.struct(
    [pa.field("word", pa.string(), nullable=False), pa.field("weight", pa.float32(), nullable=False)]
)
TOP_WORDS_FIELD = pa.field(TOP_WORDS, pa.list_(pa.field("item", TOP_WORD_TYPE, nullable=False)), nullable=False)

TEXT_FILE_FIELDS = (pa.field(REVIEW_ID, pa.string()), pa.field(SOURCE, pa.string()), pa.field(TEXT, pa.string()))
"""Columns of a scored row that came from a text file."""

ERROR_SCHEMA = pa.schema(
    [
        pa.field(REVIEW_ID, pa.string()),
        pa.field(SOURCE, pa.string(), nullable=False),
        pa.field(STAGE, pa.string(), nullable=False),
        pa.field(ERROR, pa.string(), nullable=False),
    ]
)


class SchemaError(ValueError):
    """Input schemas cannot be combined into one scored-output schema."""


def scored_schema(
    input_schema: pa.Schema,
    manifest: dict[str, Any],
    explain: bool = False,
    lineage: Lineage | None = None,
    *,
    shadow: bool = False,
) -> pa.Schema:
    """The input columns followed by the score columns (then top_words when explaining, then the
    shadow model's columns when one scores), with the manifest and the launch's lineage in the metadata."""
    added = [*SCORE_FIELDS, TOP_WORDS_FIELD] if explain else list(SCORE_FIELDS)
    added += list(SHADOW_FIELDS) if shadow else []
    clashes = [f.name for f in added if f.name in input_schema.names]
    if clashes:
        raise SchemaError(f"input already has column(s) {', '.join(clashes)}; reviewscore would overwrite them")
    fields = [f.with_nullable(True) for f in input_schema] + added
    return pa.schema(fields, metadata=manifest_metadata(manifest, lineage))


def error_schema(manifest: dict[str, Any], lineage: Lineage | None = None) -> pa.Schema:
    return ERROR_SCHEMA.with_metadata(manifest_metadata(manifest, lineage))


def manifest_metadata(manifest: dict[str, Any], lineage: Lineage | None = None) -> dict[bytes, bytes]:
    """The Parquet key-value metadata that carries the manifest, so every output file names its model,
    and the run's lineage where there is one."""
    metadata = {MANIFEST_METADATA_KEY: json.dumps(manifest, ensure_ascii=False).encode()}
    if lineage is not None:
        metadata[LINEAGE_METADATA_KEY] = json.dumps(lineage.model_dump(mode="json"), ensure_ascii=False).encode()
    return metadata


def lineage_from_metadata(metadata: dict[bytes, bytes] | None) -> Lineage | None:
    """The lineage an output file's key-value metadata carries (`pq.read_schema(path).metadata`), if any."""
    text = (metadata or {}).get(LINEAGE_METADATA_KEY)
    return None if text is None else Lineage.model_validate_json(text)
