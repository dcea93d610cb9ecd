"""The scoring job's options, defined once for every door a job comes in by.

Each JobOption is one typed definition (name, type, default, bounds, help, label, metavar). From this table:
- `reviewscore score` builds its Typer parameters (`pipeline/cli/score.py`, `score_parameters`);
- the Flex Template entry point parses its `--name=value` parameters (`parse_template_args`);
- `deploy/metadata.json`, the template's parameter list, is generated (`template_metadata`);
- `ScoringJob.from_options` (`pipeline/job/scoring.py`) maps the parsed values into the job, for both doors.
The Airflow DAG passes template parameters by these names; tests/test_dataflow.py fails when the
checked-in metadata is stale, and the DAG's tests when it passes a name or value the template refuses.
Regenerate the metadata after a change with:

    python -m pipeline.job.options > deploy/metadata.json

Only `--verbose` (terminal logging) is the CLI's alone: a template launch logs to Cloud Logging.
Cheap to import (no TensorFlow, no Beam): the CLI reads it for `--help`.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.job.verdict import DRIFT_POLICIES
from pipeline.model.engines.choice import auto_help
from pipeline.model.engines.length_order import DEFAULT_MAX_BATCH_SIZE
from pipeline.model.engines.registry import AUTO, ENGINES, engine_choices
from pipeline.model.explain import METHODS as EXPLAIN_METHODS
from pipeline.model.explain import SAMPLE as EXPLAIN_SAMPLE
from pipeline.model.explain import STEPS as EXPLAIN_STEPS
from pipeline.model.extras import CHECKOUT
from schemas.bundle import MANIFEST_FILE, ONNX_FILE, VOCABULARY_FILE
from schemas.exit_codes import EXIT_CONFIG_ERROR
from schemas.output_names import ERROR_FILES, REPORT_FILE, REVIEW_ID, SCORED_FILES, SUMMARY_FILE, TEXT


def _whole(bound: float | None, otherwise: int | None = None) -> int | None:
    """A number option's bound as the integer the regexes are built from: the options' bounds are
    whole numbers (0, 1, 2; a rate's 0.0 and 1.0), and a fractional one would need another regex."""
    if bound is None:
        return otherwise
    if bound != int(bound) or bound < 0:
        raise ValueError(f"bound {bound}: template regexes are built for whole, non-negative bounds")
    return int(bound)


def integer_patterns(low: int, high: int | None = None) -> list[str]:
    """Regex alternatives matching exactly the integers from `low` to `high` (None: no upper bound)
    written without sign or leading zeros; none when the range is empty."""
    if high is not None and high < low:
        return []
    patterns = []
    for digits in range(len(str(low)), len(str(high)) + 1 if high is not None else len(str(low)) + 1):
        first = max(low, 10 ** (digits - 1) if digits > 1 else 0)
        last = 10**digits - 1 if high is None else min(high, 10**digits - 1)
        patterns += _same_length(str(first), str(last))
    if high is None:  # every number with more digits than `low`
        more = len(str(low))
        patterns.append(f"[1-9][0-9]{_at_least(more)}")
    return _merged(patterns)


def _same_length(first: str, last: str) -> list[str]:
    """Alternatives for the numbers from `first` to `last`, both of the same number of digits."""
    if first == last:
        return [first]
    rest = len(first) - 1
    if first[0] == last[0]:
        return [first[0] + pattern for pattern in _same_length(first[1:], last[1:])]
    low, high = int(first[0]), int(last[0])
    patterns = []
    if first[1:] != "0" * rest:  # the numbers that begin as `first` does, up to its first digit's ...99
        patterns += [first[0] + p for p in _same_length(first[1:], "9" * rest)]
        low += 1
    tail = last[1:] != "9" * rest
    if tail:
        high -= 1
    if low <= high:  # whole blocks: any digits after a first digit from `low` to `high`
        patterns.append(_digit(low, high) + ("[0-9]" + (f"{{{rest}}}" if rest > 1 else "") if rest else ""))
    if tail:
        patterns += [last[0] + p for p in _same_length("0" * rest, last[1:])]
    return patterns


def _digit(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def _at_least(count: int) -> str:
    return {0: "*", 1: "+"}.get(count, f"{{{count},}}")


def _merged(patterns: list[str]) -> list[str]:
    """`[1-9]` and `[1-9][0-9]+` as the one `[1-9][0-9]*` (and `[0-9]` with it as `0|[1-9][0-9]*`):
    the forms people read."""
    for alone, first in (("[1-9]", []), ("[0-9]", ["0"])):
        if alone in patterns and "[1-9][0-9]+" in patterns:
            patterns = first + [p for p in patterns if p not in (alone, "[1-9][0-9]+")] + ["[1-9][0-9]*"]
    return patterns


def decimal_patterns(low: int, high: int | None = None) -> list[str]:
    """Regex alternatives matching exactly the decimal numbers from `low` to `high` (whole bounds;
    None: no upper bound) written as digits with an optional fraction (`0`, `0.25`, `.5`, `1.0`)."""
    fraction = r"(\.[0-9]+)?"
    below = integer_patterns(low, None if high is None else high - 1)  # any fraction keeps these in range
    patterns = [f"{p}{fraction}" for p in below]
    if high is not None and high >= low:
        patterns.append(rf"{high}(\.0+)?")  # the upper bound itself, with zeros after the point only
    if low == 0 and (high is None or high > 0):
        patterns.append(r"\.[0-9]+")  # no integer part: a fraction of 1
    return patterns


def _one_of(choices: tuple[str, ...]) -> str:
    """The choices as a sentence names them: "auto, onnx, xla or keras"."""
    return f"{', '.join(choices[:-1])} or {choices[-1]}" if len(choices) > 1 else "".join(choices)


REQUIRED = object()
"""The default of an option every job must set (input, output, model)."""
TEMPLATE_BOOLEANS = ("true", "false")
WORD = r"[\w-]+"
"""A choice of these characters stands in a regex as it is (POSIX egrep, which the template's regexes
are, has no use for escaping them)."""
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
        """The template's check of this parameter, as strict as the job's own (`from_text`): the launch
        refuses a value out of bounds or of no choice before its launcher VM starts."""
        if self.choices:
            words = (choice if re.fullmatch(WORD, choice) else re.escape(choice) for choice in self.choices)
            return f"^({'|'.join(words)})$"
        if self.type is bool:
            return f"^({'|'.join(TEMPLATE_BOOLEANS)})$"
        if self.type is int:
            return f"^({'|'.join(integer_patterns(_whole(self.minimum, 0), _whole(self.maximum)))})$"
        if self.type is float:
            return f"^({'|'.join(decimal_patterns(_whole(self.minimum, 0), _whole(self.maximum)))})$"
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
        """A template parameter's string as this option's value; ValueError names what is wrong.

        A number is read only as the template's regex writes it (digits, and a decimal point for a
        float): what Python's int() and float() also take (signs, exponents, underscores, nan) the
        template would refuse, so the entry point refuses it too."""
        if self.many:
            return [part for part in text.split(",") if part]
        if self.type is bool:
            if text.lower() not in TEMPLATE_BOOLEANS:
                raise ValueError(f"{self.name}={text!r}: expected true or false")
            return text.lower() == "true"
        if self.choices and text not in self.choices:
            raise ValueError(f"{self.name}={text!r}: expected one of {', '.join(self.choices)}")
        if self.type in (int, float) and not re.fullmatch(self.regex() or "", text):
            raise ValueError(f"{self.name}={text!r}: expected {self.expected()}")
        return self.type(text)

    def expected(self) -> str:
        """The values a number option takes, in words: "a whole number from 1 up, in digits"."""
        low, high = _whole(self.minimum, 0), _whole(self.maximum)
        kind = "a whole number" if self.type is int else "a number"
        written = "in digits" if self.type is int else "in digits with an optional decimal point"
        return f"{kind} from {low} {'up' if high is None else f'to {high}'}, {written}"


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
    JobOption(
        "shadow_model",
        "Shadow model bundle",
        "A second bundle, the challenger, that scores the same reviews beside {model}, with its own "
        "preprocessing and vocabulary: each scored row adds its shadow_ columns and the summary compares the "
        "two models (agreement, label table, score differences). Its class names must be {model}'s; local "
        "or gs:// [default: none].",
        default=None,
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
        "max_disagreement",
        "Most disagreement with the shadow model",
        "With {shadow_model}: the run fails (exit code 1; verdict.passed false in "
        f"{SUMMARY_FILE}) when the two models label more than this share of the compared reviews differently; "
        "every record is scored and written first [default: no limit].",
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

    A missing or malformed parameter ends the process with exit code 2, as in the CLI, and one line."""
    parser = _TemplateParser(prog="flex_main.py", description="reviewscore's Flex Template entry point.")
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


class _TemplateParser(argparse.ArgumentParser):
    """argparse without its usage block before an error: the error's one line (`error: ...`) is what
    the launcher shows as the job's failure reason, and the usage of every parameter would bury it."""

    def error(self, message: str):
        self.exit(EXIT_CONFIG_ERROR, f"error: {message}\n")  # argparse's own status for a usage error too


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
