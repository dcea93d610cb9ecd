"""`reviewscore score`: launch a scoring job (pipeline/job/scoring.py) and print what it did.

Its options are not declared here: they are pipeline/job/options.py's JOB_OPTIONS, the one table the
Flex Template reads too, turned into Typer parameters by `score_parameters`.
"""

from __future__ import annotations

import inspect
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

import pipeline
from pipeline.cli.common import Verbose, console, errors, fail, link, model_or_default, quiet_logging
from pipeline.job.locations import EARLY_ERRORS, JobPaths, check_early
from pipeline.job.options import JOB_OPTIONS, REQUIRED
from pipeline.job.verdict import drifted_checks
from schemas.exit_codes import EXIT_JOB_FAILED
from schemas.output_names import ERROR_FILES, SCORED_FILES

if TYPE_CHECKING:  # the summary's models load pydantic, which --help does not need
    from schemas.summary import Drift, RunSummary, ShadowSummary


def score(ctx: typer.Context, verbose: bool, **values) -> None:
    """Score reviews with a model bundle on Beam; Beam options (runner, workers) go after `--`."""
    quiet_logging(verbose)
    values = {name: value.value if isinstance(value, StrEnum) else value for name, value in values.items()}
    values["model"] = model_or_default(values["model"])
    try:  # the checks that need neither Beam nor the model, before Beam's import, which takes longer
        paths = JobPaths(values["input"], values["output"], values["model"], values["shadow_model"])
        check_early(paths, values["overwrite"])
    except EARLY_ERRORS as e:
        fail(str(e))
    from pipeline.job.scoring import CONFIG_ERRORS, DryRun, JobDescribed, JobSubmitted, ScoringJob, run_scoring

    job = ScoringJob.from_options(values, (ctx.obj or {}).get("beam_args", []), started=pipeline.STARTED)
    try:
        outcome = run_scoring(job)
    except CONFIG_ERRORS as e:
        fail(str(e))
    if isinstance(outcome, DryRun):
        top = sorted({step.split("/")[0] for step in outcome.steps})
        console.print(f"dry run: job graph built with {len(outcome.steps)} steps ({', '.join(top)}); nothing ran")
        return
    if isinstance(outcome, JobDescribed):  # --template_location: a template was written, nothing ran
        console.print(f"job description written to {outcome.job_description}; nothing ran")
        return
    if isinstance(outcome, JobSubmitted):  # a remote run that does not wait
        console.print(f"job submitted: {outcome.job_id}")
        return
    summary = outcome
    _print_summary(summary, job.output)
    verdict = summary.verdict
    assert verdict is not None, "a job judges itself in its summary step"
    for problem in verdict.problems:
        errors.print(f"[bold red]error:[/] {problem}", highlight=False, soft_wrap=True)
    drift = summary.drift
    where = f"; see {summary.report}" if summary.report else ""
    if not verdict.passed:
        if drift.detected:
            errors.print(f"report: {summary.report}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_JOB_FAILED)
    if drift.detected:
        errors.print(
            f"[bold yellow]warning:[/] drift detected ({drifted_checks(drift)}); every record was scored{where}",
            highlight=False,
            soft_wrap=True,
        )


def score_parameters() -> list[inspect.Parameter]:
    """`score`'s Typer parameters, one per job option (pipeline/job/options.py), plus the terminal's own."""
    parameters = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    for option in JOB_OPTIONS:
        annotation: Any = option.type
        default = option.default_for_cli()
        if option.choices:
            annotation = StrEnum(option.name.title().replace("_", ""), [(c, c) for c in option.choices])
            default = annotation(default)
        if option.many:
            info: Any = typer.Argument(help=option.cli_help, metavar=option.value_name, show_default=False)
            annotation = list[annotation]
        else:
            info = typer.Option(
                option.flag, help=option.cli_help, metavar=option.value_name, min=option.minimum, max=option.maximum
            )
        if default is None:
            annotation = annotation | None
        parameters.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if default is REQUIRED else default,
                annotation=Annotated[annotation, info],
            )
        )
    parameters.append(inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Verbose))
    return parameters


score.__signature__ = inspect.Signature(score_parameters())


def _print_summary(summary: RunSummary, output: str) -> None:
    table = Table(title=f"scored with model {summary.model_version}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("records read", f"{summary.records_read:,}")
    table.add_row("scored", f"{summary.records_scored:,}")
    table.add_row("failed", f"{summary.records_failed:,}")
    for label, count in summary.label_counts.items():
        table.add_row(f"  {label}", f"{count:,}")
    table.add_row("wall time", f"{summary.wall_seconds:.1f} s")
    table.add_row("throughput", f"{summary.reviews_per_second or 0:,.0f} reviews/s")
    if summary.model_loads is not None:
        table.add_row("model loads", str(summary.model_loads))
    if summary.engines:  # why each was chosen: in the log line above (local runs), the summary and the report
        table.add_row("engine", ", ".join(f"{name} ({use.reviews:,} reviews)" for name, use in summary.engines.items()))
    table.add_row("drift", _describe_drift(summary.drift))
    if summary.shadow is not None:
        table.add_row("shadow model", _describe_shadow(summary.shadow))
    console.print(table)
    folder = output.rstrip("/")
    outputs = f"{folder}/{SCORED_FILES}" + (f", {folder}/{ERROR_FILES}" if summary.error_files else "")
    console.print(f"output: {outputs}", soft_wrap=True)
    if summary.report:
        console.print(f"report: {link(summary.report)}", soft_wrap=True)


def _describe_shadow(shadow: ShadowSummary) -> str:
    if shadow.agreement is None:
        return f"{shadow.model.version}: no review compared"
    failed = f", {shadow.records_failed:,} not scored by it" if shadow.records_failed else ""
    return f"{shadow.model.version}: {shadow.agreement:.2%} agreement ({shadow.reviews_compared:,} reviews{failed})"


def _describe_drift(drift: Drift) -> str:
    from schemas.summary import DRIFTED, INSUFFICIENT, OK

    if drift.status == DRIFTED:
        return "detected: " + drifted_checks(drift)
    if drift.status == OK:
        return f"none ({len(drift.checks)} checks against the training profile)"
    if drift.status == INSUFFICIENT:
        return f"not judged: {drift.reviews or 0:,} reviews, {drift.min_reviews or 0:,} needed"
    return "not checked: the bundle has no training profile"
