"""The names in an output folder that downstream jobs rely on: columns, error stages, files.

The output folder is a Parquet dataset: `scored-*.parquet` at its top level are its only data files;
`_errors/errors-*.parquet` (only when a record failed), `_report.html` and `_SUMMARY.json` (written
last) sit beside them under names dataset readers skip.

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
against (negative) its predicted label, by occlusion or integrated gradients; docs/explanations.md."""

# Columns a run with --shadow-model adds: the shadow bundle's own prediction of the same review, as the
# columns above without the prefix hold the run's model's. Null where the shadow could not score it.
SHADOW_PREFIX = "shadow_"
SHADOW_PREDICTED_LABEL = SHADOW_PREFIX + PREDICTED_LABEL
SHADOW_SCORE = SHADOW_PREFIX + SCORE
SHADOW_LABEL_PROBS = SHADOW_PREFIX + LABEL_PROBS
SHADOW_MODEL_VERSION = SHADOW_PREFIX + MODEL_VERSION
SHADOW_COLUMNS = (SHADOW_PREDICTED_LABEL, SHADOW_SCORE, SHADOW_LABEL_PROBS, SHADOW_MODEL_VERSION)

# Columns of a review read from a text file; also the columns a Parquet input's text and id are read
# from unless the job names others, so that text files and Parquet files score alike by default.
REVIEW_ID = "review_id"
SOURCE = "source"
TEXT = "text"

# The column of labelled data (training, `reviewscore evaluate` and `profile`) that holds each review's
# class, a name or an index, unless a command names another; its text is in TEXT.
LABEL = "label"

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

# The per-review predictions `reviewscore evaluate` writes beside its metrics: each review's id and true
# label, PREDICTED_LABEL, SCORE and LABEL_PROBS as scoring writes them, and whether the prediction was right.
PREDICTIONS_FILE = "predictions.parquet"
EVALUATED_ID = "id"
"""The id column's value for Parquet inputs (FILE:ROW where it has none), the file's path for review folders."""
TRUE_LABEL = LABEL
"""The class the labelled data gives, by name."""
CORRECT = "correct"
# Its plots, SVG drawn by the run report's chart module (no plotting library needed to evaluate), and one
# page showing the metrics with every plot. The ROC curve and score histogram: binary bundles only.
CONFUSION_PLOT_FILE = "confusion_matrix.svg"
RELIABILITY_PLOT_FILE = "reliability_diagram.svg"
ROC_PLOT_FILE = "roc_curve.svg"
SCORE_HISTOGRAM_FILE = "score_histogram.svg"
EVALUATION_PAGE_FILE = "evaluation.html"

# The output folder's files. The scored files are its only data files at the top level, so
# `pandas.read_parquet(OUTPUT)`, `pyarrow.dataset.dataset(OUTPUT)`, Spark and Hive read exactly the
# scored rows. Everything else is named with a leading underscore, which those readers skip: the
# error files in their own folder (another schema), the report, the summary, the staging folder.
# DuckDB's recursive folder read (`read_parquet(OUTPUT)`, `OUTPUT/**/*.parquet`) does not skip them,
# so after a run with failures it meets `_errors/` too; `read_parquet('OUTPUT/*.parquet')` reads the
# scored files only.
SCORED_PREFIX = "scored"
SCORED_FILES = f"{SCORED_PREFIX}-*.parquet"
"""The scored shards, at the top level of the output folder: the dataset's data files."""
ERRORS_FOLDER = "_errors"
ERRORS_PREFIX = "errors"
ERROR_FILES = f"{ERRORS_FOLDER}/{ERRORS_PREFIX}-*.parquet"
"""One row per record that failed, in their own folder; the folder exists only when a record failed."""
SUMMARY_FILE = "_SUMMARY.json"
"""Written last: a folder holding it is complete."""
REPORT_FILE = "_report.html"
STAGING_FOLDER = "_staging"
"""Where the sinks write shards until the job publishes them; gone once the summary is written."""
FLAT_LAYOUT_FILES = ("report.html", f"{ERRORS_PREFIX}-*.parquet")
"""The report and error files as the flat layout placed them, beside the scored files: `--overwrite`
clears these names too, so a folder written in that layout is replaced whole."""
MANIFEST_METADATA_KEY = b"reviewscore.manifest"
"""The Parquet key-value metadata key that holds the bundle's manifest, as JSON."""
LINEAGE_METADATA_KEY = b"reviewscore.lineage"
"""The Parquet key-value metadata key that holds the run's lineage as known at launch (schemas/summary.py's
Lineage, as JSON, `finished` null): every output file says which inputs, model, options and versions made it."""
