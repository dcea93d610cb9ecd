"""The run summary: what a scoring job's `_SUMMARY.json` holds, as pydantic models, and its one writer and reader.

The job's last step writes `_SUMMARY.json` into its output folder, last, so a folder holding it is
complete; `reviewscore score`, `run_scoring`'s callers, the dataflow rehearsal and the nightly
schedule's gate read it back. Each part is a frozen pydantic model whose fields, in their order, are
the keys the file holds in theirs; `summary_to_json` and `summary_from_json` are the pair every
writer and reader goes through, the reader refusing a malformed file with SummaryError. The JSON
Schema in schemas/run_summary.schema.json is generated from these models (`make schemas`).

Reading is strict: a number is not a string, a bool is not a number. A key this version does not
know is ignored, so a summary written by a newer reviewscore still reads in an older gate; only a
drift check keeps its unknown keys, which are its details. A part that is not set (no explanations,
no verdict) is left out of the file rather than written as null, as noted on each.

The standard library and pydantic only: deploy/airflow_dag.py reads summaries with this very file,
copied beside it as `reviewscore_summary.py`, in an Airflow environment that has pydantic (Airflow
depends on it) but neither reviewscore nor its other dependencies.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainValidator,
    Strict,
    ValidationError,
    WithJsonSchema,
    model_serializer,
    model_validator,
)

__all__ = [
    "DISAGREEMENTS_SHOWN",
    "DRIFTED",
    "INSUFFICIENT",
    "NO_PROFILE",
    "OK",
    "SCORE_DIFFERENCE_BINS",
    "ClassWords",
    "CompletenessError",
    "Disagreement",
    "Drift",
    "DriftCheck",
    "EngineUse",
    "ExplanationsSummary",
    "InputsLineage",
    "Lineage",
    "ModelLineage",
    "RunSummary",
    "ShadowSummary",
    "SummaryError",
    "Verdict",
    "WordWeight",
    "summary_from_json",
    "summary_to_json",
]

OK, DRIFTED, INSUFFICIENT, NO_PROFILE = "ok", "drifted", "insufficient_data", "no_profile"
"""A drift check's verdict and the run's drift status: ok, drifted, too few reviews to judge, or no
training profile to compare with (the status only)."""


class SummaryError(ValueError):
    """A _SUMMARY.json that is not a run summary: not JSON, a missing key, a value of the wrong type."""


def _number(value: Any) -> int | float:
    """A JSON number kept as it came (an int stays an int, so the file reads back byte for byte); not a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return value


Number = Annotated[int | float, PlainValidator(_number), WithJsonSchema({"type": "number"})]
Strings = Annotated[tuple[str, ...], Strict(False)]
"""A JSON list of strings, held as a tuple (a list is accepted; its items must be strings)."""


class _Part(BaseModel):
    """A part of the summary: frozen, strict, unknown keys ignored; the fields named in `left_out_when_none`
    are not written when None."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore", ser_json_inf_nan="constants")
    left_out_when_none: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _leave_out_unset(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        for name in self.left_out_when_none:
            if data.get(name, 0) is None:
                del data[name]
        return data


class EngineUse(_Part):
    """The reviews one engine scored, and why it was chosen where the model loaded (each worker may say)."""

    reviews: int
    """Reviews this engine scored."""
    why: Strings
    """Every distinct reason it was chosen, as the workers that loaded it gave them ("asked for" where
    --engine named it), sorted; empty where none was given."""


class DriftCheck(_Part):
    """One drift check: a named statistic of this run against the training profile, and its threshold.

    Its other keys are its details: what this check alone reports (the two sides' shares, its bins, an
    effect size), as JSON values, written after the named ones; `details=` builds them.
    """

    model_config = ConfigDict(extra="allow")

    name: str
    """The check's key: predicted_labels, scores, length, vocabulary or unknown_word_rate."""
    what: str
    """What it compares, in words ("share of each predicted class")."""
    statistic: str
    """How it compares them ("population stability index"); for scores and length, over how many of the
    profile's quantile bins."""
    value: Number
    """The statistic of this run against the profile, to 6 decimals (unknown_word_rate: the z statistic,
    its effect size in `effect_size`)."""
    threshold: Number
    """The value beyond which the check drifts (unknown_word_rate: |z| above it, and |h| at least its
    effect size's own threshold)."""
    drifted: bool
    """The value crossed the threshold (unknown_word_rate: both conditions held); false under INSUFFICIENT."""
    verdict: str
    """OK, DRIFTED or INSUFFICIENT (too few reviews: then never drifted)."""

    @model_validator(mode="before")
    @classmethod
    def _spread_details(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("details"), dict):
            data = {key: value for key, value in data.items() if key != "details"} | data["details"]
        return data

    @property
    def details(self) -> dict[str, Any]:
        """The check's own keys beyond the named ones, in their order."""
        return dict(self.model_extra or {})

    @property
    def title(self) -> str:
        """The check as people read it ("predicted labels"); `name` is its key in the summary's JSON."""
        return self.name.replace("_", " ")


class Drift(_Part):
    """The run's drift checks against the bundle's training profile, and whether anything drifted."""

    left_out_when_none = ("reason", "reviews", "reference_reviews", "min_reviews")

    detected: bool
    """Some check drifted in a run of at least `min_reviews` scored reviews; false under INSUFFICIENT and
    NO_PROFILE."""
    status: str
    """DRIFTED, OK, INSUFFICIENT or NO_PROFILE."""
    reason: str | None = None
    """Why nothing was checked (NO_PROFILE); left out otherwise."""
    reviews: int | None = None
    """The scored reviews this run's checks measured; left out when nothing was checked (NO_PROFILE)."""
    reference_reviews: int | None = None
    """The reviews the training profile was measured on; left out when nothing was checked."""
    min_reviews: int | None = None
    """The fewest scored reviews whose checks are judged (fewer: INSUFFICIENT); left out when nothing was
    checked."""
    checks: Annotated[tuple[DriftCheck, ...], Strict(False)] = ()
    """Every check, in a fixed order, each with its verdict (all INSUFFICIENT below `min_reviews`); empty
    under NO_PROFILE."""

    def drifted_checks(self) -> tuple[str, ...]:
        """The titles of the checks that drifted, for messages."""
        return tuple(check.title for check in self.checks if check.drifted)


class CompletenessError(_Part):
    """How far integrated gradients' attributions miss the logit's difference; all None for occlusion."""

    mean: Number | None
    """The mean over the reviews explained by integrated gradients of |sum of the weights - (F(x) -
    F(baseline))| / |F(x) - F(baseline)|, to 6 decimals; null when none was (occlusion)."""
    max: Number | None
    """The largest of those errors; null when no review was explained by integrated gradients."""
    share_above_tolerance: Number | None
    """The share (0 to 1) of those reviews whose error exceeds `tolerance`; null as `mean`."""
    tolerance: Number
    """The relative error above which a review's attributions count as incomplete."""


class WordWeight(_Part):
    """A word that pushed the reviews of one predicted class towards it: its mean weight over the explained
    reviews of that class that contain it, and how many those are."""

    word: str
    """A distinct token of the reviews, as the preprocessing saw it."""
    mean_weight: Number
    """Its weight towards the class (in the units of the explanations' `target`, a logit), averaged over
    the explained reviews of the class that contain it, to 4 decimals."""
    reviews: int
    """The explained reviews of the class that contain it: at least the class's `min_reviews`."""


class ClassWords(_Part):
    """One predicted class's words, strongest mean weight first: only words in at least `min_reviews` of the
    `reviews` explained with that label, so a word met once or twice does not lead on chance."""

    reviews: int
    """Reviews explained with this label."""
    min_reviews: int
    """The fewest of them a word is in to be listed."""
    words: Annotated[tuple[WordWeight, ...], Strict(False)]
    """At most 15, strongest mean weight first, only words that pushed towards the class; empty when no
    word is in enough of its reviews (or none was explained with this label)."""


class ExplanationsSummary(_Part):
    """What a run with --explain says about its explanations: the method, how complete, the top words."""

    left_out_when_none = ("steps", "quadrature", "baseline", "reviews_explained")

    method: str
    """The attribution method (--explain-method), in words: "occlusion (leave one word out)" or
    "integrated gradients"."""
    steps: int | None = None
    """Integrated gradients only: its steps (--explain-steps); left out for occlusion."""
    quadrature: str | None = None
    """Integrated gradients only: how its path integral is computed (Gauss-Legendre); left out for occlusion."""
    baseline: str | None = None
    """Integrated gradients only: the input its weights are measured from; left out for occlusion."""
    target: str
    """What the weights explain, in words: the predicted class's logit (binary: its log-odds)."""
    top_k: int
    """Words per review in the top_words column: K of --explain K. A run that explains only a sample
    writes no column; this is then the sample's default."""
    reviews_explained: str | None = None
    """Which reviews: "all" (--explain K), or "a sample of about N, by review id" (--explain-sample N)."""
    reviews: int
    """The reviews explained: every scored review with --explain K, else those of the sample."""
    completeness_error: CompletenessError
    """How far integrated gradients' weights miss the logit's difference; its figures null for occlusion."""
    words_by_class: dict[str, ClassWords]
    """Per predicted class, the words that pushed its reviews towards it most on average (not the words most
    often among a review's strongest, which favours the most frequent words: "and", "the")."""
    engine: str
    """Where the explanations ran."""


class Verdict(_Part):
    """Whether the run passed the job's policy, the problems that failed it, and that policy."""

    left_out_when_none = ("max_disagreement",)

    passed: bool
    """No problem failed the run (`problems` is empty); when false, `reviewscore score` exits with code 1
    and the nightly gate fails the run."""
    problems: Strings
    """What failed the run, one sentence each: records read that differ from scored + failed, an
    `error_rate` above `max_error_rate`, drift under `on_drift` fail; empty when it passed."""
    error_rate: Number
    """records_failed / records_read, a share from 0 to 1, to 6 decimals; 0 when nothing was read."""
    max_error_rate: Number | None
    """The highest `error_rate` the job allowed (--max-error-rate, a share); null: no limit."""
    on_drift: str
    """What drift does to the verdict (--on-drift): "warn" (reported, the run still passes) or "fail"."""
    max_disagreement: Number | None = None
    """The largest share of compared reviews the shadow model may label differently (--max-disagreement);
    left out when the job set no limit."""


class Disagreement(_Part):
    """One review the two models labelled differently, among those whose scores differ most."""

    left_out_when_none = ("champion_words", "shadow_words")

    review_id: str
    """The review's id, as in the scored rows."""
    snippet: str
    """The review's first words, as read (before cleaning), cut at about 200 characters."""
    champion_label: str
    """The label the run's model gave it (its `predicted_label` column)."""
    champion_score: Number
    """The run's model's `score` for it."""
    shadow_label: str
    """The label the shadow model gave it (its `shadow_predicted_label` column)."""
    shadow_score: Number
    """The shadow model's `shadow_score` for it."""
    champion_words: Annotated[tuple[WordWeight, ...], Strict(False)] | None = None
    """The words that moved the run's model most, where the review was explained; left out otherwise."""
    shadow_words: Annotated[tuple[WordWeight, ...], Strict(False)] | None = None
    """The words that moved the shadow model most, where the review was explained; left out otherwise."""


DISAGREEMENTS_SHOWN = 10
"""The most disagreements a summary lists (ShadowSummary.disagreements) and the report shows."""
SCORE_DIFFERENCE_BINS = 40
"""Bins of ShadowSummary.score_differences, each 0.05 wide, from -1 to 1."""


class ShadowSummary(_Part):
    """A challenger bundle that scored the same records beside the run's model (--shadow-model), and how
    the two compare on them: the evidence for promoting it, on the data the job actually scores."""

    left_out_when_none = ("agreement", "mean_abs_score_difference", "max_abs_score_difference", "score_correlation")

    model: ModelLineage
    """The shadow bundle: where it was read from, its name, version and manifest checksum."""
    reviews_compared: int
    """Reviews both models scored: the run's scored reviews less `records_failed`."""
    records_failed: int
    """Scored reviews the shadow model could not score (its encoding or model call failed): their rows
    carry null shadow columns; they never fail the run's own row."""
    agreement: Number | None = None
    """The share of `reviews_compared` both models gave the same label, 0 to 1, to 6 decimals; left out
    when none was compared."""
    labels: dict[str, dict[str, int]]
    """The label table: reviews by the run's model's label, then by the shadow model's label (every class
    of both, zeros included)."""
    mean_abs_score_difference: Number | None = None
    """Mean of |score - shadow_score| over the reviews compared, to 6 decimals; left out when none was."""
    max_abs_score_difference: Number | None = None
    """The largest |score - shadow_score|, to 6 decimals; left out when none was compared."""
    score_differences: Annotated[tuple[int, ...], Strict(False)] = ()
    """A histogram of shadow_score - score over the reviews compared: SCORE_DIFFERENCE_BINS equal bins
    from -1 to 1 (the last includes 1), counts of reviews; empty when none was compared."""
    score_correlation: Number | None = None
    """Pearson's correlation of `score` and `shadow_score`, to 6 decimals; left out when it is undefined
    (fewer than two reviews, or a score that never varies)."""
    champion_label_shares: dict[str, Number]
    """Each class's share of the compared reviews by the run's model, 0 to 1, to 6 decimals."""
    shadow_label_shares: dict[str, Number]
    """Each class's share of the compared reviews by the shadow model, 0 to 1, to 6 decimals."""
    drift: Drift
    """The shadow model's own drift checks, of its scores against its own training profile."""
    disagreements: Annotated[tuple[Disagreement, ...], Strict(False)] = ()
    """The reviews labelled differently whose scores differ most, largest difference first (at most ten,
    DISAGREEMENTS_SHOWN)."""


class InputsLineage(_Part):
    """The inputs as given and what they matched at launch.

    Text files are recorded as the patterns that matched them and their count, not one name each: a
    folder may hold millions of review files, which the workers find again from the same patterns
    (`pipeline/job/sources.py`). Parquet files are named one by one: the launch opens every one of them
    to read its schema, so there are as few as a launch can afford.
    """

    given: Strings
    """The INPUT arguments as the job was given them: folders, files, globs."""
    patterns: Strings
    """What each was matched with: a folder's recursive `**.txt` and `**.parquet`, a file or glob itself."""
    text_files: int
    """The review text files the patterns matched at launch, counted, not named."""
    parquet_files: Strings
    """Every Parquet file the patterns matched at launch, by name, sorted."""
    records: int
    """Records the inputs held at launch (review files plus Parquet rows): the job's size."""


class ModelLineage(_Part):
    """The bundle that scored: where it was read from, its name and version, and its manifest's checksum."""

    location: str
    """As the job was given it (a folder or gs:// prefix)."""
    name: str
    """The bundle's name, from its manifest."""
    version: str
    """The bundle's version, from its manifest: the summary's `model_version`."""
    manifest_sha256: str
    """sha256 of the bundle's manifest.json bytes. The manifest holds every other file's sha256, so this
    one value pins the whole bundle: model, vocabulary, calibration, profile."""


class Lineage(_Part):
    """Where a run's rows came from and what made them, so a result can be traced and the run repeated.

    Built once at launch (`pipeline/job/scoring.py`), written into every output file's Parquet metadata as it
    stands then, and finished by the summary step: the finishing time, the engine libraries that
    scored (read where they ran) and, on a remote runner, the job's id.
    """

    inputs: InputsLineage
    """The inputs as given, and the files and records they matched at launch."""
    model: ModelLineage
    """The bundle that scored, pinned by its manifest's checksum."""
    options: dict[str, Any]
    """Every job option's value by its name (`pipeline/job/options.py`), defaults included."""
    versions: dict[str, str]
    """reviewscore, apache-beam, python, pyarrow, and the library of each engine that scored (onnxruntime,
    tensorflow), by package name."""
    runner: str
    """Beam's runner as the job named it (DataflowRunner, ...); DirectRunner when it named none."""
    job_id: str | None = None
    """The runner's id for the job, where it has one (Dataflow); null on local runners."""
    started: str
    """When the user started the job, UTC, ISO 8601."""
    finished: str | None = None
    """When the summary was made, UTC, ISO 8601; null in the output files' metadata, written before."""


class RunSummary(_Part):
    """A finished run: its counts, where its files are, how it scored, its drift checks and verdict."""

    left_out_when_none = ("lineage", "explanations", "verdict", "report_error", "model_loads", "shadow")

    records_read: int
    """Records the job read: each review (a review file or a Parquet row), and each file or row group that
    could not be read, as one record."""
    records_scored: int
    """Records scored: one row each in `scored_files`."""
    records_failed: int
    """Records that could not be scored: one row each in `error_files`, which says at what stage and why."""
    failed_by_stage: dict[str, int]
    """`records_failed` by the stage they failed at (read, decode, preprocess, inference), sorted by stage
    name; only stages where a record failed, so empty when none did."""
    accounting_ok: bool
    """Every record read was scored or failed: read == scored + failed."""
    label_counts: dict[str, int]
    """Scored reviews per predicted class, in the manifest's class order."""
    model_version: str
    """The version of the bundle that scored (its manifest's `version`), as every scored row's
    `model_version` column holds it."""
    engine: str
    """The engines that scored, joined with ' + '."""
    engines: dict[str, EngineUse]
    """By engine name (onnx, xla, keras): the reviews each engine scored and why it was chosen; empty
    when nothing was scored."""
    wall_seconds: Number
    """From the user's start (start-up included) until the outputs were published."""
    reviews_per_second: Number | None
    """records_scored / wall_seconds, to one decimal; null when no time passed."""
    scored_files: Strings
    """Every published scored Parquet shard, as its path in the output folder, sorted; an empty shard
    included, so a run that scored nothing still has one."""
    error_files: Strings
    """The error Parquet shards, in the output folder's _errors/, that hold rows, sorted; empty when
    nothing failed."""
    lineage: Lineage | None = None
    """What made the run: inputs, model, options, versions, runner, times. Written by every run; None
    only when reading a summary that has none."""
    drift: Drift
    """The run's drift checks against the bundle's training profile; status NO_PROFILE, and no checks, for a
    bundle without one."""
    explanations: ExplanationsSummary | None = None
    """Set when the run explained its labels (--explain)."""
    verdict: Verdict | None = None
    """The job's judgement of itself; a summary without one is not taken as passed (the nightly gate fails it)."""
    report_error: str | None = None
    """Why _report.html could not be drawn; left out when it was."""
    report: str | None = None
    """Where _report.html was written; null when it could not be drawn (report_error says why)."""
    model_loads: int | None = None
    """How often workers loaded the model, from the runner's metrics: set by the launcher, never in the file."""
    shadow: ShadowSummary | None = None
    """The shadow model's comparison with the run's model (--shadow-model); left out without one."""


def summary_to_json(summary: RunSummary) -> str:
    """The text of _SUMMARY.json: the models' fields in their order, indented, ASCII only."""
    return json.dumps(summary.model_dump(mode="json"), indent=2)


def summary_from_json(text: str | bytes) -> RunSummary:
    """A _SUMMARY.json's text read back; SummaryError, naming the first wrong key, when it is not a run summary."""
    try:
        data = json.loads(text)
    except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
        raise SummaryError(f"_SUMMARY.json is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise SummaryError(f"_SUMMARY.json is {type(data).__name__}, not a JSON object")
    try:
        return RunSummary.model_validate(data)
    except ValidationError as e:
        raise SummaryError(_first_problem(e, "_SUMMARY.json")) from None


def _first_problem(error: ValidationError, where: str) -> str:
    """The first of pydantic's errors as one line: the key's path and what is wrong with it."""
    problem = error.errors(include_url=False)[0]
    path = where + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"][:-1])
    key = problem["loc"][-1] if problem["loc"] else None
    if problem["type"] == "missing":
        return f"{path} lacks {key!r}"
    named = path if key is None else f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"
    shown = repr(problem["input"])
    return f"{named} is {shown if len(shown) <= 60 else shown[:57] + '...'}: {problem['msg']}"
