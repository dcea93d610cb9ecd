"""The scoring job's options, defined once for every door a job comes in by.

`reviewscore score` (the Typer CLI), the Flex Template entry point (`deploy/flex_main.py`, which the
template launcher runs with `--name=value`) and the template's `deploy/metadata.json` all take
their names, defaults and help from this table; `tests/test_dataflow.py` fails when any of them
drifts from it. Regenerate the metadata after a change with:

    python -m pipeline.job_options > deploy/metadata.json

Cheap to import (no TensorFlow, no Beam): the CLI reads it for `--help`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pipeline.engines import ENGINES
from pipeline.scorer import BEST_BATCH_SIZE, DEFAULT_MAX_BATCH_SIZE, XLA_FROM_REVIEWS


@dataclass(frozen=True)
class JobOption:
    name: str
    """The template parameter and Python name; the CLI flag is the same with dashes."""
    label: str
    help: str
    default: Any = None
    """None: required (input, output, model)."""
    choices: tuple[str, ...] = ()
    integer: bool = False
    flag: bool = False
    """A yes/no switch: --overwrite on the CLI, overwrite=true|false as a template parameter."""
    many: bool = False
    """Several values: CLI arguments, one comma-separated template parameter."""

    @property
    def required(self) -> bool:
        return self.default is None

    def regex(self) -> str | None:
        if self.choices:
            return f"^({'|'.join(self.choices)})$"
        if self.flag:
            return "^(true|false)$"
        if self.integer:
            return "^[0-9]+$"
        return None

    def metadata(self) -> dict[str, Any]:
        """This option as a Flex Template parameter (metadata.json)."""
        text = f"Comma-separated. {self.help}" if self.many else self.help
        entry: dict[str, Any] = {"name": self.name, "label": self.label, "helpText": text}
        if not self.required:
            entry["isOptional"] = True
        if self.regex():
            entry["regexes"] = [self.regex()]
        return entry


JOB_OPTIONS: tuple[JobOption, ...] = (
    JobOption(
        "input",
        "Inputs",
        "Review folders (*.txt and *.parquet, found recursively), files or globs; local or gs://.",
        many=True,
    ),
    JobOption("output", "Output folder", "Folder for scored-*.parquet, errors-*.parquet and _SUMMARY.json."),
    JobOption("model", "Model bundle", "Model bundle folder (manifest.json, model.keras, vocab.json, ...)."),
    JobOption("text_column", "Text column", "Text column of Parquet inputs.", "text"),
    JobOption("id_column", "Id column", "Id column of Parquet inputs; when absent, ids are FILE:ROW.", "review_id"),
    JobOption(
        "batch_size",
        "Batch size",
        "Most reviews read, encoded and scored together as one Arrow batch (sorted by length for the model).",
        DEFAULT_MAX_BATCH_SIZE,
        integer=True,
    ),
    JobOption(
        "inference_batch_size",
        "Inference batch size",
        "Rows per model call, after sorting by length; 0: the engine's best "
        f"({', '.join(f'{engine} {size}' for engine, size in BEST_BATCH_SIZE.items())}).",
        0,
        integer=True,
    ),
    JobOption(
        "engine",
        "Scoring engine",
        "auto: onnx (ONNX Runtime, no TensorFlow) for jobs under "
        f"{XLA_FROM_REVIEWS:,} reviews or where TensorFlow is not installed, else xla (compiled, fastest per "
        "review; keras for architectures it cannot reproduce).",
        "auto",
        choices=ENGINES,
    ),
    JobOption(
        "threads",
        "Threads per worker process",
        "Threads per worker process for encoding and model calls; 0: one per core (1 on Dataflow).",
        0,
        integer=True,
    ),
    JobOption("overwrite", "Overwrite", "Replace the contents of a non-empty output folder.", False, flag=True),
)
OPTIONS: dict[str, JobOption] = {option.name: option for option in JOB_OPTIONS}


def template_metadata() -> dict[str, Any]:
    return {
        "name": "reviewscore",
        "description": "Score reviews with a reviewscore LSTM bundle and write labelled Parquet, error rows and "
        "_SUMMARY.json.",
        "parameters": [option.metadata() for option in JOB_OPTIONS],
    }


if __name__ == "__main__":
    print(json.dumps(template_metadata(), indent=2))
