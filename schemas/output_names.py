"""The names in an output folder that downstream jobs rely on: columns, error stages, files.

Plain strings, apart from the Arrow types in `schemas/output.py`, so that modules read for
`reviewscore --help` (the job's options, whose defaults and help name these) need not import pyarrow.
"""

from __future__ import annotations

# Columns scoring adds to every input row.
PREDICTED_LABEL = "predicted_label"
SCORE = "score"
"""Calibrated probability of the manifest's `score_label` (binary bundles: the positive class), or of
the predicted label when the bundle names none (multi-class)."""
LABEL_PROBS = "label_probs"
"""Every class's calibrated probability, in the manifest's class_names order, summing to 1."""
MODEL_VERSION = "model_version"
TOP_WORDS = "top_words"
"""With --explain K: the K words of the review that moved it most towards (positive weight) or
against (negative) its predicted label, by occlusion or integrated gradients; README "Why this label"."""

# Columns of a review read from a text file; also the columns a Parquet input's text and id are read
# from unless the job names others, so that text files and Parquet files score alike by default.
REVIEW_ID = "review_id"
SOURCE = "source"
TEXT = "text"

# Columns of an error row, besides REVIEW_ID and SOURCE.
STAGE = "stage"
"""Where the record failed: one of STAGES."""
ERROR = "error"
"""Why, as one message."""

READ_STAGE = "read"
"""A file or Parquet row group could not be read, or a review's text is null."""
DECODE_STAGE = "decode"
"""A review file is not UTF-8 text."""
PREPROCESS_STAGE = "preprocess"
"""Encoding failed, or no word is left after cleaning."""
INFERENCE_STAGE = "inference"
"""The model call failed for the review's batch."""
STAGES = (READ_STAGE, DECODE_STAGE, PREPROCESS_STAGE, INFERENCE_STAGE)
"""Every value of the `stage` column, in the order a record meets them."""

SCORED_PREFIX = "scored"
ERRORS_PREFIX = "errors"
SUMMARY_FILE = "_SUMMARY.json"
REPORT_FILE = "report.html"
STAGING_FOLDER = "_staging"
MANIFEST_METADATA_KEY = b"reviewscore.manifest"
"""The Parquet key-value metadata key that holds the bundle's manifest, as JSON."""
