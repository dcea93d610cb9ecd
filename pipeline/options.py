"""The scoring job's options, defined once for every door a job comes in by.

Each JobOption is one typed definition (name, type, default, bounds, help, label, metavar). From this table:
- `reviewscore score` builds its Typer parameters (`pipeline/cli/score.py`, `score_parameters`);
- the Flex Template entry point parses its `--name=value` parameters (`parse_template_args`);
- `deploy/metadata.json`, the template's parameter list, is generated (`template_metadata`);
- `ScoringJob.from_options` (`pipeline/job.py`) maps the parsed values into the job, for both doors.
The Airflow DAG passes template parameters by these names; tests/test_dataflow.py fails when the
checked-in metadata is stale, and the DAG's tests when it passes a name or value the template refuses.
Regenerate the metadata after a change with:

    python -m pipeline.options > deploy/metadata.json

Only `--verbose` (terminal logging) is the CLI's alone: a template launch logs to Cloud Logging.
Cheap to import (no TensorFlow, no Beam): the CLI reads it for `--help`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.engines.choice import auto_help
from pipeline.engines.length_order import DEFAULT_MAX_BATCH_SIZE
from pipeline.engines.registry import AUTO, ENGINES, engine_choices
from pipeline.explain import METHODS as EXPLAIN_METHODS
from pipeline.explain import SAMPLE as EXPLAIN_SAMPLE
from pipeline.explain import STEPS as EXPLAIN_STEPS
from pipeline.extras import CHECKOUT
from pipeline.verdict import DRIFT_POLICIES
from schemas.bundle import MANIFEST_FILE, ONNX_FILE, VOCABULARY_FILE
from schemas.output_names import ERROR_FILES, REPORT_FILE, REVIEW_ID, SCORED_FILES, SUMMARY_FILE, TEXT


def _one_of(choices: tuple[str, ...]) -> str:
    """The choices as a sentence names them: "auto, onnx, xla or keras"."""
    return f"{', '.join(choices[:-1])} or {choices[-1]}" if len(choices) > 1 else "".join(choices)


REQUIRED = object()
"""The default of an option every job must set (input, output, model)."""
TEMPLATE_BOOLEANS = ("true", "false")
DEFAULT_MODEL = "models/imdb-bilstm"
"""The committed bundle, relative to the repository: the CLI's model when none is named (`default_model`)."""


def default_model() -> str | None:
    """Where the CLI finds DEFAULT_MODEL: as written, from a folder that has it (the repository's own);
    else in the repository the package runs from, by its full path (the README installs the package
    editable from a clone, so a clone is where it runs from); None elsewhere: the package itself
    carries no bundle (bundles are versioned apart from the code, in the repository's models/).
    """
    if Path(DEFAULT_MODEL).is_dir():
        return DEFAULT_MODEL
    in_checkout = CHECKOUT / DEFAULT_MODEL
    return str(in_checkout) if in_checkout.is_dir() else None


@dataclass(frozen=True)
class JobOption:
    name: str
    """The template parameter and Python name; the CLI flag is the same with dashes."""
    label: str
    help: str
    """Names another option as `{its_name}`: each door shows it in its own form (`cli_help`, `template_help`)."""
    type: type = str
    """str, int, float or bool (a switch: --overwrite on the CLI, overwrite=true|false as a parameter)."""
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    many: bool = False
    """Several values: CLI arguments, one comma-separated template parameter."""
    cli_default: Any = REQUIRED
    """A default the CLI alone has (the committed model, for local runs); REQUIRED: `default`."""
    metavar: str = ""
    """The UPPER-CASE word --help names the value by (pipeline/cli/help_style.py); empty: its type's."""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def flag(self) -> str:
        return f"--{self.name.replace('_', '-')}"

    @property
    def cli_help(self) -> str:
        """The help as `reviewscore score --help` shows it: other options named by their flags."""
        return self.help.format_map({option.name: option.flag for option in JOB_OPTIONS})

    @property
    def template_help(self) -> str:
        """The help as the Flex Template shows it: other options named as its parameters."""
        return self.help.format_map({option.name: option.name for option in JOB_OPTIONS})

    @property
    def value_name(self) -> str:
        """The word --help names the value by: the option's own, else its type's (N, NUMBER, TEXT)."""
        return self.metavar or {int: "N", float: "NUMBER"}.get(self.type, "TEXT")

    def default_for_cli(self) -> Any:
        return self.default if self.cli_default is REQUIRED else self.cli_default

    def regex(self) -> str | None:
        if self.choices:
            return f"^({'|'.join(self.choices)})$"
        if self.type is bool:
            return f"^({'|'.join(TEMPLATE_BOOLEANS)})$"
        if self.type is int:
            return "^[0-9]+$"
        if self.type is float:
            return r"^[0-9]*\.?[0-9]+$"
        return None

    def metadata(self) -> dict[str, Any]:
        """This option as a Flex Template parameter (metadata.json)."""
        text = f"Comma-separated. {self.template_help}" if self.many else self.template_help
        entry: dict[str, Any] = {"name": self.name, "label": self.label, "helpText": text}
        if not self.required:
            entry["isOptional"] = True
        if self.regex():
            entry["regexes"] = [self.regex()]
        return entry

    def from_text(self, text: str) -> Any:
        """A template parameter's string as this option's value; ValueError names what is wrong."""
        if self.many:
            return [part for part in text.split(",") if part]
        if self.type is bool:
            if text.lower() not in TEMPLATE_BOOLEANS:
                raise ValueError(f"{self.name}={text!r}: expected true or false")
            return text.lower() == "true"
        if self.choices and text not in self.choices:
            raise ValueError(f"{self.name}={text!r}: expected one of {', '.join(self.choices)}")
        value = self.type(text)
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise ValueError(f"{self.name}={text}: expected a value from {self.minimum} to {self.maximum}")
        return value


JOB_OPTIONS: tuple[JobOption, ...] = (
    JobOption(
        "input",
        "Inputs",
        "Review folders (*.txt and *.parquet, found recursively), files or globs; local or gs://.",
        many=True,
        metavar="INPUT",
    ),
    JobOption(
        "output",
        "Output folder",
        f"Folder for {SCORED_FILES}, {ERROR_FILES} (when records failed), {SUMMARY_FILE} and {REPORT_FILE}.",
        metavar="PATH",
    ),
    JobOption(
        "model",
        "Model bundle",
        f"Model bundle folder ({MANIFEST_FILE}, {ONNX_FILE}, {VOCABULARY_FILE}, ...); local or gs://.",
        cli_default=DEFAULT_MODEL,
        metavar="BUNDLE",
    ),
    JobOption("text_column", "Text column", "Text column of Parquet inputs.", default=TEXT, metavar="COLUMN"),
    JobOption(
        "id_column",
        "Id column",
        "Id column of Parquet inputs; when absent, ids are FILE:ROW.",
        default=REVIEW_ID,
        metavar="COLUMN",
    ),
    JobOption(
        "batch_size",
        "Batch size",
        "Most reviews read, encoded and scored together (sorted by length for the model); more uses more memory.",
        int,
        DEFAULT_MAX_BATCH_SIZE,
        minimum=1,
    ),
    JobOption(
        "inference_batch_size",
        "Inference batch size",
        "Rows per model call, after sorting by length; 0: the engine's best "
        f"({', '.join(f'{engine.name} {engine.best_batch_size}' for engine in ENGINES.values())}).",
        int,
        0,
        minimum=0,
    ),
    JobOption(
        "engine",
        "Scoring engine",
        f"{_one_of(engine_choices())}. {auto_help()}",
        default=AUTO,
        choices=engine_choices(),
        metavar="ENGINE",
    ),
    JobOption(
        "threads",
        "Threads per worker process",
        "Threads per worker process for encoding and model calls; 0: one per core (1 on Dataflow).",
        int,
        0,
        minimum=0,
    ),
    JobOption(
        "max_error_rate",
        "Most failed records",
        f"The run fails (exit code 1; verdict.passed false in {SUMMARY_FILE}) when the share of records that "
        "failed exceeds this [default: no limit].",
        float,
        None,
        minimum=0.0,
        maximum=1.0,
        metavar="RATE",
    ),
    JobOption(
        "on_drift",
        "On drift",
        "When the run's data or predictions drift from the bundle's training profile: warn (one line on "
        "stderr) or fail (exit code 1; verdict.passed false). Either way every record is scored and written first.",
        default=DRIFT_POLICIES[0],
        choices=DRIFT_POLICIES,
        metavar="POLICY",
    ),
    JobOption("overwrite", "Overwrite", "Replace the contents of a non-empty output folder.", bool, False),
    JobOption("num_shards", "Scored files", "Scored files to write; 0 lets the runner decide.", int, 0, minimum=0),
    JobOption(
        "explain",
        "Words explained per review",
        "Explain every review: add a top_words column with its N words that moved it most towards (+) or "
        "against (-) its label, found by {explain_method}. Much slower than scoring alone: each review is "
        "scored again for each of its words. 0: off.",
        int,
        0,
        minimum=0,
    ),
    JobOption(
        "explain_sample",
        "Reviews explained for the report",
        "Without {explain}: explain about N reviews, chosen by review id (the same input explains the same "
        "reviews), for the words that drive each label in the report and the summary; adds no column. 0: none.",
        int,
        EXPLAIN_SAMPLE,
        minimum=0,
    ),
    JobOption(
        "explain_method",
        "Explanation method",
        "occlusion: a word's weight is how much the label's logit drops when the word is left out (exact; "
        "no TensorFlow needed); integrated-gradients: gradients summed over {explain_steps} steps (needs "
        "TensorFlow).",
        default=EXPLAIN_METHODS[0],
        choices=EXPLAIN_METHODS,
        metavar="METHOD",
    ),
    JobOption(
        "explain_steps",
        "Integrated-gradients steps",
        "Steps per review when {explain_method} is integrated-gradients.",
        int,
        EXPLAIN_STEPS,
        minimum=2,
    ),
)
OPTIONS: dict[str, JobOption] = {option.name: option for option in JOB_OPTIONS}


def parse_template_args(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Template parameters (`--name=value`) as typed values by option name, and everything else for Beam.

    argparse reports a missing or malformed parameter with exit code 2, as the CLI does."""
    parser = argparse.ArgumentParser(prog="flex_main.py", description="reviewscore's Flex Template entry point.")
    for option in JOB_OPTIONS:
        parser.add_argument(
            f"--{option.name}",
            required=option.required,
            default=None if option.required else option.default,
            type=_parser_type(option),
            help=option.template_help,
        )
    known, beam_args = parser.parse_known_args(argv)
    return vars(known), beam_args


def _parser_type(option: JobOption):
    def convert(text: str) -> Any:
        try:
            return option.from_text(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = option.type.__name__  # argparse names the type in its message
    return convert


def template_metadata() -> dict[str, Any]:
    return {
        "name": "reviewscore",
        "description": "Score reviews with a reviewscore LSTM bundle and write labelled Parquet, error rows, "
        f"{SUMMARY_FILE} and {REPORT_FILE}.",
        "parameters": [option.metadata() for option in JOB_OPTIONS],
    }


if __name__ == "__main__":
    print(json.dumps(template_metadata(), indent=2))
