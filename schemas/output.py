"""The scored-output and error Parquet contracts that downstream jobs read.

Scored files carry every input column unchanged plus the four columns below; error files carry one
row per record that could not be read, decoded, preprocessed or scored. The bundle manifest rides
along in the Parquet key-value metadata under MANIFEST_METADATA_KEY.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

PREDICTED_LABEL = "predicted_label"
SCORE = "score"
"""Calibrated probability of the manifest's `score_label` (binary bundles: the positive class), or of
the predicted label when the bundle names none (multi-class)."""
LABEL_PROBS = "label_probs"
"""Every class's calibrated probability, in the manifest's class_names order, summing to 1."""
LABEL_PROB_FIELDS = (pa.field("label", pa.string(), nullable=False), pa.field("prob", pa.float32(), nullable=False))
LABEL_PROB_TYPE = pa.struct(list(LABEL_PROB_FIELDS))
MODEL_VERSION = "model_version"
SCORE_FIELDS = (
    pa.field(PREDICTED_LABEL, pa.string(), nullable=False),
    pa.field(SCORE, pa.float32(), nullable=False),
    pa.field(LABEL_PROBS, pa.list_(pa.field("item", LABEL_PROB_TYPE, nullable=False)), nullable=False),
    pa.field(MODEL_VERSION, pa.string(), nullable=False),
)

TOP_WORDS = "top_words"
"""With --explain K: the K words of the review that moved it most towards (positive weight) or
against (negative) its predicted label, by occlusion or integrated gradients; README "Why this label"."""
TOP_WORD_TYPE = pa.struct(
    [pa.field("word", pa.string(), nullable=False), pa.field("weight", pa.float32(), nullable=False)]
)
TOP_WORDS_FIELD = pa.field(TOP_WORDS, pa.list_(pa.field("item", TOP_WORD_TYPE, nullable=False)), nullable=False)

REVIEW_ID = "review_id"
SOURCE = "source"
TEXT = "text"
# Columns of a scored row that came from a text file.
TEXT_FILE_FIELDS = (pa.field(REVIEW_ID, pa.string()), pa.field(SOURCE, pa.string()), pa.field(TEXT, pa.string()))

STAGES = ("read", "decode", "preprocess", "inference")
ERROR_SCHEMA = pa.schema(
    [
        pa.field(REVIEW_ID, pa.string()),
        pa.field(SOURCE, pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
    ]
)

SCORED_PREFIX = "scored"
ERRORS_PREFIX = "errors"
SUMMARY_FILE = "_SUMMARY.json"
REPORT_FILE = "report.html"
STAGING_FOLDER = "_staging"
MANIFEST_METADATA_KEY = b"reviewscore.manifest"


class SchemaError(ValueError):
    """Input schemas cannot be combined into one scored-output schema."""


def scored_schema(input_schema: pa.Schema, manifest: dict[str, Any], explain: bool = False) -> pa.Schema:
    """The input columns followed by the score columns (and top_words when explaining), with the
    manifest in the metadata."""
    added = [*SCORE_FIELDS, TOP_WORDS_FIELD] if explain else list(SCORE_FIELDS)
    clashes = [f.name for f in added if f.name in input_schema.names]
    if clashes:
        raise SchemaError(f"input already has column(s) {', '.join(clashes)}; reviewscore would overwrite them")
    fields = [f.with_nullable(True) for f in input_schema] + added
    return pa.schema(fields, metadata={MANIFEST_METADATA_KEY: json.dumps(manifest, ensure_ascii=False).encode()})


def error_schema(manifest: dict[str, Any]) -> pa.Schema:
    return ERROR_SCHEMA.with_metadata({MANIFEST_METADATA_KEY: json.dumps(manifest, ensure_ascii=False).encode()})
