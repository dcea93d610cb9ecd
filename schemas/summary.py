"""The run summary: what a scoring job's `_SUMMARY.json` holds, as typed values, and its one writer and reader.

The job's last step writes `_SUMMARY.json` into its output folder, last, so a folder holding it is
complete; `reviewscore score`, `run_scoring`'s callers, the dataflow rehearsal and the nightly
schedule's gate read it back. Each part is a frozen dataclass whose `to_dict` is the JSON object the
file holds, keys in the order they are written, and whose `from_dict` reads one back, refusing a
malformed file with SummaryError. `summary_to_json` and `summary_from_json` are the pair every
writer and reader goes through.

Standard library only: deploy/airflow_dag.py reads summaries with this very file, copied beside it
as `reviewscore_summary.py`, in an Airflow environment that has neither reviewscore nor its
dependencies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DRIFTED",
    "INSUFFICIENT",
    "NO_PROFILE",
    "OK",
    "ClassWords",
    "CompletenessError",
    "Drift",
    "DriftCheck",
    "EngineUse",
    "ExplanationsSummary",
    "InputsLineage",
    "Lineage",
    "ModelLineage",
    "RunSummary",
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


_NUMBER = (int, float)


def _field(data: Any, key: str, kind: type | tuple[type, ...], where: str, *, optional: bool = False) -> Any:
    """data[key], checked to be of `kind` (a bool is not a number); with optional, missing or null is None."""
    if not isinstance(data, dict):
        raise SummaryError(f"{where} is {type(data).__name__}, not a JSON object")
    value = data.get(key)
    if value is None:
        if optional:
            return None
        raise SummaryError(f"{where} lacks {key!r}" if key not in data else f"{where}.{key} is null")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise SummaryError(f"{where}.{key} is {value!r}, not {' or '.join(k.__name__ for k in kinds)}")
    return value


def _counts(data: Any, key: str, where: str) -> dict[str, int]:
    counts = _field(data, key, dict, where)
    return {name: _field(counts, name, int, f"{where}.{key}") for name in counts}


def _strings(data: Any, key: str, where: str) -> tuple[str, ...]:
    values = _field(data, key, list, where)
    if not all(isinstance(value, str) for value in values):
        raise SummaryError(f"{where}.{key} must be a list of strings")
    return tuple(values)


@dataclass(frozen=True)
class EngineUse:
    """The reviews one engine scored, and why it was chosen where the model loaded (each worker may say)."""

    reviews: int
    why: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"reviews": self.reviews, "why": list(self.why)}

    @classmethod
    def from_dict(cls, data: Any, where: str = "engine") -> EngineUse:
        return cls(_field(data, "reviews", int, where), _strings(data, "why", where))


@dataclass(frozen=True)
class DriftCheck:
    """One drift check: a named statistic of this run against the training profile, and its threshold."""

    name: str
    what: str
    statistic: str
    value: float
    threshold: float
    drifted: bool
    verdict: str
    """OK, DRIFTED or INSUFFICIENT (too few reviews: then never drifted)."""
    details: dict[str, Any] = field(default_factory=dict)
    """What this check alone reports (the two sides' shares, its bins, an effect size), as JSON values."""

    @property
    def title(self) -> str:
        """The check as people read it ("predicted labels"); `name` is its key in the summary's JSON."""
        return self.name.replace("_", " ")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "what": self.what,
            "statistic": self.statistic,
            "value": self.value,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "verdict": self.verdict,
            **self.details,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "check") -> DriftCheck:
        named = ("name", "what", "statistic", "value", "threshold", "drifted", "verdict")
        return cls(
            name=_field(data, "name", str, where),
            what=_field(data, "what", str, where),
            statistic=_field(data, "statistic", str, where),
            value=_field(data, "value", _NUMBER, where),
            threshold=_field(data, "threshold", _NUMBER, where),
            drifted=_field(data, "drifted", bool, where),
            verdict=_field(data, "verdict", str, where),
            details={key: value for key, value in data.items() if key not in named},
        )


@dataclass(frozen=True)
class Drift:
    """The run's drift checks against the bundle's training profile, and whether anything drifted."""

    detected: bool
    status: str
    """DRIFTED, OK, INSUFFICIENT or NO_PROFILE."""
    checks: tuple[DriftCheck, ...] = ()
    reason: str | None = None
    """Why nothing was checked (NO_PROFILE)."""
    reviews: int | None = None
    """This run's reviews, the profile's, and the fewest that are judged; None when nothing was checked."""
    reference_reviews: int | None = None
    min_reviews: int | None = None

    def drifted_checks(self) -> tuple[str, ...]:
        """The titles of the checks that drifted, for messages."""
        return tuple(check.title for check in self.checks if check.drifted)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"detected": self.detected, "status": self.status}
        if self.reason is not None:
            data["reason"] = self.reason
        if self.reviews is not None:
            data.update(reviews=self.reviews, reference_reviews=self.reference_reviews, min_reviews=self.min_reviews)
        data["checks"] = [check.to_dict() for check in self.checks]
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "drift") -> Drift:
        checks = _field(data, "checks", list, where)
        return cls(
            detected=_field(data, "detected", bool, where),
            status=_field(data, "status", str, where),
            checks=tuple(DriftCheck.from_dict(check, f"{where}.checks[{i}]") for i, check in enumerate(checks)),
            reason=_field(data, "reason", str, where, optional=True),
            reviews=_field(data, "reviews", int, where, optional=True),
            reference_reviews=_field(data, "reference_reviews", int, where, optional=True),
            min_reviews=_field(data, "min_reviews", int, where, optional=True),
        )


@dataclass(frozen=True)
class CompletenessError:
    """How far integrated gradients' attributions miss the logit's difference; all None for occlusion."""

    mean: float | None
    max: float | None
    share_above_tolerance: float | None
    tolerance: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "max": self.max,
            "share_above_tolerance": self.share_above_tolerance,
            "tolerance": self.tolerance,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "completeness_error") -> CompletenessError:
        return cls(
            mean=_field(data, "mean", _NUMBER, where, optional=True),
            max=_field(data, "max", _NUMBER, where, optional=True),
            share_above_tolerance=_field(data, "share_above_tolerance", _NUMBER, where, optional=True),
            tolerance=_field(data, "tolerance", _NUMBER, where),
        )


@dataclass(frozen=True)
class WordWeight:
    """A word that pushed the reviews of one predicted class towards it: its mean weight over the explained
    reviews of that class that contain it, and how many those are."""

    word: str
    mean_weight: float
    reviews: int

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "mean_weight": self.mean_weight, "reviews": self.reviews}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> WordWeight:
        return cls(
            word=_field(data, "word", str, where),
            mean_weight=_field(data, "mean_weight", _NUMBER, where),
            reviews=_field(data, "reviews", int, where),
        )


@dataclass(frozen=True)
class ClassWords:
    """One predicted class's words, strongest mean weight first: only words in at least `min_reviews` of the
    `reviews` explained with that label, so a word met once or twice does not lead on chance."""

    reviews: int
    """Reviews explained with this label."""
    min_reviews: int
    """The fewest of them a word is in to be listed."""
    words: tuple[WordWeight, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "reviews": self.reviews,
            "min_reviews": self.min_reviews,
            "words": [word.to_dict() for word in self.words],
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ClassWords:
        words = _field(data, "words", list, where)
        return cls(
            reviews=_field(data, "reviews", int, where),
            min_reviews=_field(data, "min_reviews", int, where),
            words=tuple(WordWeight.from_dict(word, f"{where}.words[{i}]") for i, word in enumerate(words)),
        )


@dataclass(frozen=True)
class ExplanationsSummary:
    """What a run with --explain says about its explanations: the method, how complete, the top words."""

    method: str
    target: str
    top_k: int
    reviews: int
    completeness_error: CompletenessError
    words_by_class: dict[str, ClassWords]
    """Per predicted class, the words that pushed its reviews towards it most on average (not the words most
    often among a review's strongest, which favours the most frequent words: "and", "the")."""
    engine: str
    """Where the explanations ran."""
    steps: int | None = None
    """Integrated gradients only: its steps, quadrature and baseline."""
    quadrature: str | None = None
    baseline: str | None = None
    reviews_explained: str | None = None
    """Which reviews: "all" (--explain K), or "a sample of about N, by review id" (--explain-sample N)."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"method": self.method}
        for name in ("steps", "quadrature", "baseline"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        data.update(target=self.target, top_k=self.top_k)
        if self.reviews_explained is not None:
            data["reviews_explained"] = self.reviews_explained
        data["reviews"] = self.reviews
        data["completeness_error"] = self.completeness_error.to_dict()
        data["words_by_class"] = {name: words.to_dict() for name, words in self.words_by_class.items()}
        data["engine"] = self.engine
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "explanations") -> ExplanationsSummary:
        by_class = _field(data, "words_by_class", dict, where)
        words = {
            name: ClassWords.from_dict(value, f"{where}.words_by_class.{name}") for name, value in by_class.items()
        }
        return cls(
            method=_field(data, "method", str, where),
            target=_field(data, "target", str, where),
            top_k=_field(data, "top_k", int, where),
            reviews=_field(data, "reviews", int, where),
            completeness_error=CompletenessError.from_dict(
                _field(data, "completeness_error", dict, where), f"{where}.completeness_error"
            ),
            words_by_class=words,
            engine=_field(data, "engine", str, where),
            steps=_field(data, "steps", int, where, optional=True),
            quadrature=_field(data, "quadrature", str, where, optional=True),
            baseline=_field(data, "baseline", str, where, optional=True),
            reviews_explained=_field(data, "reviews_explained", str, where, optional=True),
        )


@dataclass(frozen=True)
class Verdict:
    """Whether the run passed the job's policy, the problems that failed it, and that policy."""

    passed: bool
    problems: tuple[str, ...]
    error_rate: float
    max_error_rate: float | None
    on_drift: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "problems": list(self.problems),
            "error_rate": self.error_rate,
            "max_error_rate": self.max_error_rate,
            "on_drift": self.on_drift,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "verdict") -> Verdict:
        return cls(
            passed=_field(data, "passed", bool, where),
            problems=_strings(data, "problems", where),
            error_rate=_field(data, "error_rate", _NUMBER, where),
            max_error_rate=_field(data, "max_error_rate", _NUMBER, where, optional=True),
            on_drift=_field(data, "on_drift", str, where),
        )


@dataclass(frozen=True)
class InputsLineage:
    """The inputs as given and what they matched at launch.

    Text files are recorded as the patterns that matched them and their count, not one name each: a
    folder may hold millions of review files, which the workers find again from the same patterns
    (`pipeline/job/sources.py`). Parquet files are named one by one: the launch opens every one of them
    to read its schema, so there are as few as a launch can afford.
    """

    given: tuple[str, ...]
    """The INPUT arguments as the job was given them: folders, files, globs."""
    patterns: tuple[str, ...]
    """What each was matched with: a folder's recursive `**.txt` and `**.parquet`, a file or glob itself."""
    text_files: int
    parquet_files: tuple[str, ...]
    records: int
    """Records the inputs held at launch (review files plus Parquet rows): the job's size."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "given": list(self.given),
            "patterns": list(self.patterns),
            "text_files": self.text_files,
            "parquet_files": list(self.parquet_files),
            "records": self.records,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "lineage.inputs") -> InputsLineage:
        return cls(
            given=_strings(data, "given", where),
            patterns=_strings(data, "patterns", where),
            text_files=_field(data, "text_files", int, where),
            parquet_files=_strings(data, "parquet_files", where),
            records=_field(data, "records", int, where),
        )


@dataclass(frozen=True)
class ModelLineage:
    """The bundle that scored: where it was read from, its name and version, and its manifest's checksum."""

    location: str
    """As the job was given it (a folder or gs:// prefix)."""
    name: str
    version: str
    manifest_sha256: str
    """sha256 of the bundle's manifest.json bytes. The manifest holds every other file's sha256, so this
    one value pins the whole bundle: model, vocabulary, calibration, profile."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "name": self.name,
            "version": self.version,
            "manifest_sha256": self.manifest_sha256,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "lineage.model") -> ModelLineage:
        return cls(
            location=_field(data, "location", str, where),
            name=_field(data, "name", str, where),
            version=_field(data, "version", str, where),
            manifest_sha256=_field(data, "manifest_sha256", str, where),
        )


@dataclass(frozen=True)
class Lineage:
    """Where a run's rows came from and what made them, so a result can be traced and the run repeated.

    Built once at launch (`pipeline/job/scoring.py`), written into every output file's Parquet metadata as it
    stands then, and finished by the summary step: the finishing time, the engine libraries that
    scored (read where they ran) and, on a remote runner, the job's id.
    """

    inputs: InputsLineage
    model: ModelLineage
    options: dict[str, Any]
    """Every job option's value by its name (`pipeline/job/options.py`), defaults included."""
    versions: dict[str, str]
    """reviewscore, apache-beam, python, pyarrow, and the library of each engine that scored (onnxruntime,
    tensorflow), by package name."""
    runner: str
    started: str
    """When the user started the job, UTC, ISO 8601."""
    job_id: str | None = None
    """The runner's id for the job, where it has one (Dataflow); None on local runners."""
    finished: str | None = None
    """When the summary was made, UTC, ISO 8601; None in the output files' metadata, written before."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs.to_dict(),
            "model": self.model.to_dict(),
            "options": dict(self.options),
            "versions": dict(self.versions),
            "runner": self.runner,
            "job_id": self.job_id,
            "started": self.started,
            "finished": self.finished,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "lineage") -> Lineage:
        versions = _field(data, "versions", dict, where)
        return cls(
            inputs=InputsLineage.from_dict(_field(data, "inputs", dict, where), f"{where}.inputs"),
            model=ModelLineage.from_dict(_field(data, "model", dict, where), f"{where}.model"),
            options=dict(_field(data, "options", dict, where)),
            versions={name: _field(versions, name, str, f"{where}.versions") for name in versions},
            runner=_field(data, "runner", str, where),
            started=_field(data, "started", str, where),
            job_id=_field(data, "job_id", str, where, optional=True),
            finished=_field(data, "finished", str, where, optional=True),
        )


@dataclass(frozen=True)
class RunSummary:
    """A finished run: its counts, where its files are, how it scored, its drift checks and verdict."""

    records_read: int
    records_scored: int
    records_failed: int
    failed_by_stage: dict[str, int]
    accounting_ok: bool
    """Every record read was scored or failed: read == scored + failed."""
    label_counts: dict[str, int]
    """Scored reviews per predicted class, in the manifest's class order."""
    model_version: str
    engine: str
    """The engines that scored, joined with ' + '."""
    engines: dict[str, EngineUse]
    wall_seconds: float
    """From the user's start (start-up included) until the outputs were published."""
    reviews_per_second: float | None
    scored_files: tuple[str, ...]
    error_files: tuple[str, ...]
    drift: Drift
    explanations: ExplanationsSummary | None = None
    """Set when the run explained its labels (--explain)."""
    verdict: Verdict | None = None
    """The job's judgement of itself; a summary without one is not taken as passed (the nightly gate fails it)."""
    report: str | None = None
    """Where _report.html was written; None when it could not be drawn (report_error says why)."""
    report_error: str | None = None
    model_loads: int | None = None
    """How often workers loaded the model, from the runner's metrics: set by the launcher, never in the file."""
    lineage: Lineage | None = None
    """What made the run: inputs, model, options, versions, runner, times. Written by every run; None
    only when reading a summary that has none."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "records_read": self.records_read,
            "records_scored": self.records_scored,
            "records_failed": self.records_failed,
            "failed_by_stage": dict(self.failed_by_stage),
            "accounting_ok": self.accounting_ok,
            "label_counts": dict(self.label_counts),
            "model_version": self.model_version,
            "engine": self.engine,
            "engines": {name: use.to_dict() for name, use in self.engines.items()},
            "wall_seconds": self.wall_seconds,
            "reviews_per_second": self.reviews_per_second,
            "scored_files": list(self.scored_files),
            "error_files": list(self.error_files),
        }
        if self.lineage is not None:
            data["lineage"] = self.lineage.to_dict()
        data["drift"] = self.drift.to_dict()
        if self.explanations is not None:
            data["explanations"] = self.explanations.to_dict()
        if self.verdict is not None:
            data["verdict"] = self.verdict.to_dict()
        if self.report_error is not None:
            data["report_error"] = self.report_error
        data["report"] = self.report
        if self.model_loads is not None:
            data["model_loads"] = self.model_loads
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "_SUMMARY.json") -> RunSummary:
        engines = _field(data, "engines", dict, where)
        explanations = _field(data, "explanations", dict, where, optional=True)
        verdict = _field(data, "verdict", dict, where, optional=True)
        lineage = _field(data, "lineage", dict, where, optional=True)
        return cls(
            records_read=_field(data, "records_read", int, where),
            records_scored=_field(data, "records_scored", int, where),
            records_failed=_field(data, "records_failed", int, where),
            failed_by_stage=_counts(data, "failed_by_stage", where),
            accounting_ok=_field(data, "accounting_ok", bool, where),
            label_counts=_counts(data, "label_counts", where),
            model_version=_field(data, "model_version", str, where),
            engine=_field(data, "engine", str, where),
            engines={name: EngineUse.from_dict(use, f"{where} engines.{name}") for name, use in engines.items()},
            wall_seconds=_field(data, "wall_seconds", _NUMBER, where),
            reviews_per_second=_field(data, "reviews_per_second", _NUMBER, where, optional=True),
            scored_files=_strings(data, "scored_files", where),
            error_files=_strings(data, "error_files", where),
            drift=Drift.from_dict(_field(data, "drift", dict, where), f"{where} drift"),
            explanations=None if explanations is None else ExplanationsSummary.from_dict(explanations),
            verdict=None if verdict is None else Verdict.from_dict(verdict, f"{where} verdict"),
            report=_field(data, "report", str, where, optional=True),
            report_error=_field(data, "report_error", str, where, optional=True),
            model_loads=_field(data, "model_loads", int, where, optional=True),
            lineage=None if lineage is None else Lineage.from_dict(lineage, f"{where} lineage"),
        )


def summary_to_json(summary: RunSummary) -> str:
    """The text of _SUMMARY.json."""
    return json.dumps(summary.to_dict(), indent=2)


def summary_from_json(text: str | bytes) -> RunSummary:
    """A _SUMMARY.json's text read back; SummaryError when it is not a run summary."""
    try:
        data = json.loads(text)
    except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
        raise SummaryError(f"_SUMMARY.json is not JSON: {e}") from None
    return RunSummary.from_dict(data)
