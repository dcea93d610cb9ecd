"""Launching a scoring job: check everything that can be checked up front, then run the Beam pipeline.

The checks (paths the runner's workers can reach, the workers' image, bundle integrity and fit,
inputs, schemas, output folder) run before the pipeline is built, so a configuration mistake costs
no worker time and leaves no output behind. Each raises one of CONFIG_ERRORS, which every door
(CLI, Flex Template) reports as one line with exit code 2.

Where the job runs decides what the launcher may decide for it. On a local runner the pipeline
runs in this process's environment, so the engine is chosen here and the loaded model reused. On a
remote runner the workers run the job's image, whose packages need not be this machine's (a laptop
with TensorFlow, a worker image without it): 'auto' travels unresolved, with the job's size, and
each worker resolves it from what it has (`pipeline/model/engines/choice.py`); the summary reports what ran.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import apache_beam as beam
from apache_beam.options.pipeline_options import DebugOptions, PipelineOptions, StandardOptions, WorkerOptions
from pydantic import BaseModel, ConfigDict

from pipeline.job.beam_internals import LOAD_LATENCY_METRIC, described_only, graph_steps, submitted_job_id
from pipeline.job.graph import ReviewSource, ScoringModel, Shadow, build_pipeline
from pipeline.job.lineage import DEFAULT_RUNNER, environment_versions, manifest_sha256, utc_iso
from pipeline.job.local_run import Interrupted, Stopped, WorkerDied, run_here
from pipeline.job.locations import (
    InputError,
    JobPaths,
    OutputError,
    ShadowError,
    StorageError,
    check_locations,
    check_output,
    check_shadow_classes,
    is_remote_runner,
    read_file,
)
from pipeline.job.metrics import NAMESPACE
from pipeline.job.model_handler import LoadedModel, load_scorer
from pipeline.job.sinks import ScoredSink, prepare_output, read_summary
from pipeline.job.sources import InputPlan, plan_inputs
from pipeline.job.verdict import RunPolicy
from pipeline.model.bundle import Bundle, BundleError, open_bundle
from pipeline.model.engines.base import TENSORFLOW, EngineUnavailable, ScorerSettings
from pipeline.model.engines.choice import cheapest_engine, choose_engine, needs_module
from pipeline.model.engines.length_order import DEFAULT_MAX_BATCH_SIZE
from pipeline.model.engines.registry import AUTO
from pipeline.model.explain.explainer import ExplainSettings, ExplainUnavailable
from pipeline.model.extras import MissingExtra
from pipeline.model.labels import Labels
from pipeline.model.progress import PROGRESS_EVERY_SECONDS, RunProgress, WorkerLines
from schemas.exit_codes import EXIT_JOB_FAILED
from schemas.output import REVIEW_ID, SUMMARY_FILE, TEXT, SchemaError, error_schema, scored_schema
from schemas.summary import InputsLineage, Lineage, ModelLineage, RunSummary

log = logging.getLogger("reviewscore")


class LaunchError(ValueError):
    """The runner's options would start workers that cannot run the job (exit code 2)."""


CONFIG_ERRORS = (
    BundleError,
    EngineUnavailable,
    InputError,
    LaunchError,
    MissingExtra,
    OutputError,
    SchemaError,
    ShadowError,
    StorageError,
)


UNEXPLAINED = ExplainSettings(sample=0)
"""The shadow model's: it explains nothing (neither a column nor a sample), so it loads no explainer."""


class DryRun(BaseModel):
    """A dry run (--dry_run): the runner built the job graph and ran nothing.

    The outcomes are pydantic models, as the Flex Template entry point prints them as JSON (`model_dump`).
    """

    model_config = ConfigDict(frozen=True)

    dry_run: Literal[True] = True
    steps: list[str]


class JobDescribed(BaseModel):
    """--template_location: DataflowRunner wrote the job's description there and submitted nothing."""

    model_config = ConfigDict(frozen=True)

    job_description: str | None


class JobSubmitted(BaseModel):
    """A remote job that was submitted and not waited for."""

    model_config = ConfigDict(frozen=True)

    submitted: Literal[True] = True
    job_id: str | None


NotRun = DryRun | JobDescribed | JobSubmitted
"""What run_scoring returns for a job it did not see finish; a finished job returns its RunSummary."""


@dataclass(frozen=True)
class ScoringJob:
    inputs: list[str]
    output: str
    model: str
    shadow_model: str | None = None
    """A second bundle that scores the same reviews beside `model` (--shadow-model); None: none."""
    text_column: str = TEXT
    id_column: str = REVIEW_ID
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    scorer: ScorerSettings = field(default_factory=ScorerSettings)
    explain: ExplainSettings = field(default_factory=ExplainSettings)
    policy: RunPolicy = field(default_factory=RunPolicy)
    overwrite: bool = False
    num_shards: int = 0
    beam_args: list[str] = field(default_factory=list)
    wait: bool = True
    """Wait for the job to finish (and report its summary); a Flex Template launcher only submits."""
    started: float = field(default_factory=time.time)
    """When the user started the job; wall time and reviews/s count from here, start-up included."""

    @classmethod
    def from_options(cls, values: dict[str, Any], beam_args: list[str], **launch: Any) -> ScoringJob:
        """The job from the values of pipeline/job/options.py's options, by name: the one mapping
        every door (the CLI, the Flex Template entry point) uses. `launch`: wait, started."""
        return cls(
            inputs=list(values["input"]),
            output=values["output"],
            model=values["model"],
            shadow_model=values["shadow_model"],
            text_column=values["text_column"],
            id_column=values["id_column"],
            max_batch_size=values["batch_size"],
            scorer=ScorerSettings(values["engine"], values["inference_batch_size"], values["threads"]),
            explain=ExplainSettings(
                values["explain"], values["explain_steps"], values["explain_method"], values["explain_sample"]
            ),
            policy=RunPolicy(values["max_error_rate"], values["on_drift"], values["max_disagreement"]),
            overwrite=values["overwrite"],
            num_shards=values["num_shards"],
            beam_args=list(beam_args),
            **launch,
        )

    def option_values(self) -> dict[str, Any]:
        """The value of every job option (pipeline/job/options.py), by name: `from_options` read backwards,
        for the run's lineage."""
        return {
            "input": list(self.inputs),
            "output": self.output,
            "model": self.model,
            "shadow_model": self.shadow_model,
            "text_column": self.text_column,
            "id_column": self.id_column,
            "batch_size": self.max_batch_size,
            "inference_batch_size": self.scorer.batch_size,
            "engine": self.scorer.engine,
            "threads": self.scorer.threads,
            "max_error_rate": self.policy.max_error_rate,
            "max_disagreement": self.policy.max_disagreement,
            "on_drift": self.policy.on_drift,
            "overwrite": self.overwrite,
            "num_shards": self.num_shards,
            "explain": self.explain.top_k,
            "explain_sample": self.explain.sample,
            "explain_method": self.explain.method,
            "explain_steps": self.explain.steps,
        }


def run_scoring(job: ScoringJob) -> RunSummary | NotRun:
    """Run the job and return its summary; a dry run, a described or a submitted job say so instead."""
    options = PipelineOptions(with_worker_image(job.beam_args))
    local = not is_remote_runner(options)
    dry_run = bool(options.get_all_options().get("dry_run"))
    # the checks in the order a user reads the command, each before anything heavier: the paths
    # reachable, the inputs there, the output free, then the bundle and its model
    check_locations(JobPaths(job.inputs, job.output, job.model, job.shadow_model), options, write=not dry_run)
    plan = plan_inputs(job.inputs, job.text_column, job.id_column)
    if not dry_run:
        check_output(job.output, job.overwrite)
    bundle = open_bundle(job.model, read_file)
    shadow_bundle = open_shadow(job, bundle)
    threads = threads_per_process(job.scorer.threads, options)
    if local:
        engine, why = choose_engine(job.scorer.engine, bundle.manifest.files, plan.reviews)
        settings = replace(job.scorer, engine=engine, threads=threads, reason=why)
    else:
        settings = replace(job.scorer, threads=threads, reviews=plan.reviews)
    manifest = bundle.manifest.model_dump(mode="json")
    labels = Labels.of(bundle.manifest)
    model = ScoringModel(
        job.model,
        bundle.model_version,
        labels,
        job.max_batch_size,
        settings,
        explain=job.explain,
        manifest=manifest,
        profile=bundle.profile,
    )
    loaded = check_model_loads(job, bundle, model, local)  # held to the end: a local run's workers share it
    shadow = None
    if shadow_bundle is not None:
        shadow = shadow_of(job, shadow_bundle, settings, plan.reviews, local)
        shadow_job = replace(job, model=shadow.model.bundle_uri, explain=shadow.model.explain)
        loaded = (loaded, check_model_loads(shadow_job, shadow_bundle, shadow.model, local))
    explaining = job.explain.every_review
    lineage = launch_lineage(job, bundle, plan, options, settings.engine)
    sink = ScoredSink(
        job.output,
        scored_schema(plan.schema, manifest, explaining, lineage, shadow=shadow is not None),
        error_schema(manifest, lineage),
        job.num_shards,
    )

    if not dry_run:
        prepare_output(job.output, job.overwrite)

    pipeline = beam.Pipeline(options=options)
    # a local run shows the job's totals as its workers count; a remote one's workers log their own
    progress = RunProgress(PROGRESS_EVERY_SECONDS) if local else WorkerLines()
    build_pipeline(
        pipeline,
        ReviewSource(plan, job.text_column, job.id_column),
        sink,
        model,
        started=job.started,
        progress=progress,
        policy=job.policy,
        lineage=lineage,
        shadow=shadow,
    )
    with progress:
        result = run_locally(pipeline, job, progress.so_far) if local else pipeline.run()
    del loaded
    if result is None:  # stopped, but after its output was complete
        return read_summary(job.output)
    if dry_run:
        return DryRun(steps=graph_steps(result))
    if not job.wait or options.get_all_options().get("template_location"):
        return launched(result, options)
    result.wait_until_finish()
    return read_summary(job.output).model_copy(update={"model_loads": model_loads(result)})


def open_shadow(job: ScoringJob, bundle: Bundle) -> Bundle | None:
    """The shadow bundle, opened (checksums, vocabulary, profile), with the model's class names; None
    without --shadow-model. Nothing loads a model here: a mismatch costs no load."""
    if not job.shadow_model:
        if job.policy.max_disagreement is not None:
            raise ShadowError("--max-disagreement compares with a shadow model: add --shadow-model BUNDLE")
        return None
    try:
        shadow = open_bundle(job.shadow_model, read_file)
    except BundleError as e:
        raise ShadowError(f"shadow model: {e}") from None
    check_shadow_classes(job.model, bundle.manifest.class_names, job.shadow_model, shadow.manifest.class_names)
    return shadow


def shadow_of(job: ScoringJob, bundle: Bundle, settings: ScorerSettings, reviews: int, local: bool) -> Shadow:
    """The shadow bundle as the graph scores it: the champion's scorer settings, its own engine where
    it is chosen here (a local run), no explanations; and its lineage, for the summary's shadow part."""
    if local:
        engine, why = choose_engine(job.scorer.engine, bundle.manifest.files, reviews)
        settings = replace(settings, engine=engine, reason=why)
    model = ScoringModel(
        job.shadow_model,
        bundle.model_version,
        Labels.of(bundle.manifest),
        job.max_batch_size,
        settings,
        explain=UNEXPLAINED,
        manifest=bundle.manifest.model_dump(mode="json"),
        profile=bundle.profile,
    )
    return Shadow(model, model_lineage(job.shadow_model, bundle))


def model_lineage(location: str, bundle: Bundle) -> ModelLineage:
    """A bundle as lineage records it: where the job was told to read it, and what it is."""
    return ModelLineage(
        location=location,
        name=bundle.manifest.name,
        version=bundle.model_version,
        manifest_sha256=manifest_sha256(bundle.path),
    )


def launch_lineage(job: ScoringJob, bundle: Bundle, plan: InputPlan, options: PipelineOptions, engine: str) -> Lineage:
    """What the launch knows of the run's lineage; the summary step finishes it (pipeline/job/lineage.py).

    `engine`: the engine chosen here, or AUTO where each worker chooses (its library is then recorded
    by the summary step only, from the workers' environment).
    """
    return Lineage(
        inputs=InputsLineage(
            given=tuple(job.inputs),
            patterns=tuple(plan.patterns),
            text_files=plan.text_files,
            parquet_files=tuple(plan.parquet_files),
            records=plan.reviews,
        ),
        model=model_lineage(job.model, bundle),
        options=job.option_values(),
        versions=environment_versions([] if engine == AUTO else [engine]),
        runner=options.view_as(StandardOptions).runner or DEFAULT_RUNNER,
        started=utc_iso(job.started),
    )


def with_worker_image(beam_args: list[str]) -> list[str]:
    """Dataflow's workers start from the job's image, named at launch, or the launch is refused.

    Without --sdk_container_image Dataflow starts Beam's stock image, which lacks this package:
    every worker would fail with ModuleNotFoundError after the VMs were paid for. The image is never
    guessed (say, from a reference baked into the launcher's image at build): a template launch gets
    it from the template spec, which names it by digest, and a launch from the command line names it.
    """
    options = PipelineOptions(beam_args)
    if "Dataflow" not in (options.view_as(StandardOptions).runner or ""):
        return beam_args
    workers = options.view_as(WorkerOptions)
    if workers.sdk_container_image or getattr(workers, "worker_harness_container_image", None):
        return beam_args
    raise LaunchError(
        "Dataflow needs the job's worker image: pass --sdk_container_image=REPOSITORY@sha256:... ('make -s "
        "image-name' prints it; a template names it itself: rebuild it with 'make template'); Beam's stock image "
        "lacks reviewscore"
    )


def check_model_loads(job: ScoringJob, bundle: Bundle, model: ScoringModel, local: bool) -> LoadedModel | None:
    """Load the model before any worker starts, so a bad one is a configuration error.

    A local run loads it through the handle its workers load through (`model.shared_model`), and
    returns it: while the caller holds it, the workers reuse it. A remote run checks the bundle on
    the cheapest engine this machine has for it; an engine asked for by name that this machine lacks
    (TensorFlow) is left to the workers, whose image may have it.
    """
    settings = model.scorer
    if settings.engine == "xla" and job.scorer.engine == "xla" and (local or TENSORFLOW.installed()):
        check_compilable(bundle.load_model())
    if local:
        try:
            return model.handler().load_model()
        except ExplainUnavailable as e:
            raise BundleError(str(e)) from None
    if needs_module(job.scorer.engine) is TENSORFLOW:
        log.warning(
            "--engine %s runs on the workers: their image must have TensorFlow "
            "(built with LOCK=requirements-tensorflow.lock); the default image scores with onnx",
            job.scorer.engine,
        )
    cheapest = cheapest_engine(bundle.manifest.files)
    check = replace(
        settings,
        engine=cheapest if settings.engine == "auto" else settings.engine,
        reason="checked here; each worker chooses the engine it scores with",
    )
    try:
        choose_engine(check.engine, bundle.manifest.files, check.reviews)
    except EngineUnavailable as e:
        if bundle.has_onnx or job.scorer.engine == "auto":
            raise
        log.warning("cannot check --engine %s here (%s); the workers will", job.scorer.engine, e)
        return None
    try:
        load_scorer(job.model, check, job.explain)
    except ExplainUnavailable as e:
        raise BundleError(str(e)) from None
    return None


def launched(result, options: PipelineOptions) -> JobDescribed | JobSubmitted:
    """What a run that does not wait reports: the submitted job's id, or where the job was described.

    Under --template_location, which the Flex Template launcher passes to deploy/flex_main.py,
    DataflowRunner writes the job description there and submits nothing: its result has no job, and
    `job_id()` would raise. The launcher creates the job from that file once the entry point exits 0.
    """
    if described_only(result):
        return JobDescribed(job_description=options.get_all_options().get("template_location"))
    return JobSubmitted(job_id=submitted_job_id(result))


def check_compilable(model) -> None:
    """`--engine xla` on a model the compiled graph cannot reproduce is a configuration error."""
    from pipeline.model.engines.plan import UnsupportedModel, plan_model

    try:
        plan_model(model)
    except UnsupportedModel as e:
        raise BundleError(f"--engine xla cannot score this model ({e}); use --engine auto or keras") from None


def threads_per_process(asked: int, options: PipelineOptions) -> int:
    """Threads for encoding and model calls in each worker process; 0 means one per core.

    Dataflow starts one SDK process per vCPU unless told otherwise
    (`--experiments=no_use_multiple_sdk_containers`), so there one thread per process already fills
    the machine, and a thread per core in every process would oversubscribe it.
    """
    if asked:
        return asked
    runner = options.view_as(StandardOptions).runner or ""
    experiments = options.view_as(DebugOptions).experiments or []
    if "Dataflow" in runner and "no_use_multiple_sdk_containers" not in experiments:
        return 1
    return 0


def run_locally(pipeline: beam.Pipeline, job: ScoringJob, so_far: Callable[[], str]):
    """Run on this machine (pipeline/job/local_run.py): the result; None when a signal or a dead worker
    stopped a run whose output was complete; Stopped, with its line and exit code, otherwise.

    Stopped early, the output folder holds nothing that looks finished (no published shard, no
    _SUMMARY.json, at most _staging/), which the next --overwrite run clears.
    """
    unfinished = f"nothing in {job.output} is marked finished (no {SUMMARY_FILE}); rerun with --overwrite"
    try:
        return run_here(pipeline.run, lambda: is_complete(job.output), worker_processes(pipeline.options))
    except Interrupted as e:
        seconds = time.time() - job.started
        raise Stopped(
            f"the job was stopped after {seconds:.0f} s ({so_far()}); {unfinished} to start again",
            e.exit_code,
            label=f"interrupted by {e.name}",
        ) from None
    except WorkerDied as e:  # Beam's DirectRunner alone would wait forever for the dead worker's work
        raise Stopped(
            f"a Beam worker process died ({e}); the job cannot finish: {unfinished}", EXIT_JOB_FAILED
        ) from None


def worker_processes(options: PipelineOptions) -> bool:
    """Does this local run start worker processes (which can die) rather than run in this one?"""
    return options.get_all_options().get("direct_running_mode") == "multi_processing"


def is_complete(output: str) -> bool:
    """Does the output folder hold a complete run: a _SUMMARY.json that reads as one?"""
    try:
        read_summary(output)
    except Exception:  # absent, or cut short
        return False
    return True


def model_loads(result) -> int | None:
    """How many times workers loaded the model: RunInference records one load-latency sample per load."""
    loads = [
        d.committed.count
        for d in _metrics(result).get("distributions", [])
        if d.key.metric.name.endswith(LOAD_LATENCY_METRIC)
    ]
    return sum(loads) if loads else None


def _metrics(result) -> dict[str, list]:
    try:
        return result.metrics().query(beam.metrics.MetricsFilter().with_namespace(NAMESPACE))
    except Exception:  # a runner without metrics support
        return {}
