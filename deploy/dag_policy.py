"""The nightly DAG's policy for the scoring job: what every day's launch passes besides its locations,
and the gate that judges the day by the verdict the job wrote.

It is its own module, with nothing but the standard library, so that two places read one definition:
the DAG, which imports it as `reviewscore_policy` from Airflow's dags/ folder (`make dag-files` ships
it there beside the summary reader), and the rehearsal of a Dataflow launch (`make rehearse-dataflow`),
which has no Airflow and launches and judges a day exactly as the DAG does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the job's summary model, as shipped beside this module (schemas/summary.py)
    from reviewscore_summary import RunSummary

ON_DRIFT = "fail"
"""Drift from the training profile fails the day; every record is still scored and written."""
MAX_ERROR_RATE = "0.01"
"""The most records of a day that may fail (failed / read). Template parameters are strings; the job
records the policy in its verdict as a number."""
OVERWRITE = "true"
"""A retried launch replaces what the day's failed try left in the output folder."""


def launch_parameters(
    input: str, output: str, model: str, shadow_model: str | None = None, max_disagreement: str | None = None
) -> dict[str, str]:
    """The template parameters of one day's launch: its locations and the policy; with a challenger
    bundle, its location and the disagreement the day allows (a template parameter left out is unset)."""
    parameters = {
        "input": input,
        "output": output,
        "model": model,
        "overwrite": OVERWRITE,
        "on_drift": ON_DRIFT,
        "max_error_rate": MAX_ERROR_RATE,
    }
    if shadow_model is not None:
        parameters["shadow_model"] = shadow_model
    if max_disagreement is not None:
        parameters["max_disagreement"] = max_disagreement
    return parameters


def gate_problems(summary: RunSummary, max_disagreement: str | None = None) -> list[str]:
    """Why a day's run summary (reviewscore_summary's RunSummary) fails the day; empty when it passes.

    The job's own verdict decides (a template launch submits and returns, so nobody else sees the
    policy applied), provided it was judged by this policy, the disagreement allowed a challenger
    included; a summary without a verdict, or whose records do not add up, fails too.
    """
    read, scored, failed = summary.records_read, summary.records_scored, summary.records_failed
    verdict = summary.verdict
    if verdict is None:
        problems = ["the summary has no verdict (written by a job older than this DAG)"]
    else:
        problems = list(verdict.problems)
        if not verdict.passed and not problems:
            problems.append("the verdict did not pass")
        if (verdict.on_drift, verdict.max_error_rate) != (ON_DRIFT, float(MAX_ERROR_RATE)):
            problems.append(
                f"judged with on_drift={verdict.on_drift}, max_error_rate={verdict.max_error_rate}, "
                f"not this DAG's on_drift={ON_DRIFT}, max_error_rate={MAX_ERROR_RATE}"
            )
        allowed = None if max_disagreement is None else float(max_disagreement)
        if verdict.max_disagreement != allowed:
            problems.append(f"judged with max_disagreement={verdict.max_disagreement}, not this DAG's {allowed}")
    if read != scored + failed and not any(problem.startswith("records read") for problem in problems):
        problems.append(f"records read ({read:,}) differ from scored + failed ({scored + failed:,})")
    return problems


def shadow_line(summary: RunSummary) -> str:
    """How the challenger compared on the day, for the gate's log; empty without one."""
    shadow = summary.shadow
    if shadow is None:
        return ""
    agreement = "nothing compared" if shadow.agreement is None else f"{shadow.agreement:.2%} agreement"
    compared = f"{shadow.reviews_compared:,} reviews"
    return f"; challenger {shadow.model.name} {shadow.model.version}: {agreement} on {compared}"
