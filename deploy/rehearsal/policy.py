"""The nightly DAG's policy in the rehearsal: launched with the DAG's own parameters, judged by its gate.

The template parameters and the gate come from `deploy/dag_policy.py`, the module the DAG itself
imports (shipped beside it as `reviewscore_policy`), so the rehearsal cannot drift from the DAG.
The check is not that the day passes: it is that the gate decides what the policy says for the
rehearsal's data. The failure rate is known beforehand (the bad records are planted, data.py); drift
is the job's own measurement against the bundle's training profile, taken as the job reports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy import dag_policy
from deploy.rehearsal.checks import Check
from deploy.rehearsal.data import Inputs
from schemas.summary import RunSummary


def dag_parameters(input: str, output: str, model: str) -> dict[str, str]:
    """The template parameters the DAG launches a day with, for these locations."""
    return dag_policy.launch_parameters(input, output, model)


def policy_label() -> str:
    """The DAG's policy as its parameters name it, e.g. 'on_drift=fail, max_error_rate=0.01'."""
    parameters = dag_parameters("", "", "")
    return ", ".join(f"{name}={parameters[name]}" for name in ("overwrite", "on_drift", "max_error_rate"))


@dataclass(frozen=True)
class Expected:
    """What the policy says of a day: its failure rate, whether drift counts against it, the verdict."""

    failed: int
    records: int
    too_many_failures: bool
    drift_fails: bool

    @property
    def rate(self) -> float:
        return self.failed / self.records if self.records else 0.0

    @property
    def passes(self) -> bool:
        return not (self.too_many_failures or self.drift_fails)


def expected(inputs: Inputs, summary: RunSummary) -> Expected:
    """The gate's decision the policy calls for, from the planted failures and the job's drift report."""
    failed = sum(inputs.failures.values())
    rate = failed / inputs.records if inputs.records else 0.0
    return Expected(
        failed=failed,
        records=inputs.records,
        too_many_failures=rate > float(dag_policy.MAX_ERROR_RATE),
        drift_fails=summary.drift.detected and dag_policy.ON_DRIFT == "fail",
    )


def policy_checks(name: str, summary: RunSummary | None, inputs: Inputs) -> tuple[list[Check], str]:
    """The launch's verdict read as the DAG's gate reads it; (checks, a line saying what the policy said)."""
    if summary is None:
        return [Check(f"{name}: judged by the DAG's policy", False, "no summary")], "no summary to judge"
    verdict, want = summary.verdict, expected(inputs, summary)
    problems = dag_policy.gate_problems(summary)
    judged_by = (verdict.on_drift, verdict.max_error_rate) if verdict else None
    dag = (dag_policy.ON_DRIFT, float(dag_policy.MAX_ERROR_RATE))
    outcome = "passes the day" if not problems else f"fails the day: {'; '.join(problems)}"
    statement = (
        f"the DAG's policy ({policy_label()}): {want.failed:,} of {want.records:,} records failed "
        f"({want.rate:.2%}), drift: {summary.drift.status}; the policy says the day "
        f"{'passes' if want.passes else 'fails'}; the gate {outcome}"
    )
    return [
        Check(f"{name}: judged by the DAG's policy", judged_by == dag, f"judged by {judged_by}, the DAG's {dag}"),
        Check(
            f"{name}: the verdict's error rate is the planted failures'",
            verdict is not None and abs(verdict.error_rate - want.rate) < 1e-6,
            f"{verdict.error_rate if verdict else None} vs {want.rate:.6f}",
        ),
        Check(
            f"{name}: the DAG's gate decides what the policy says for this data",
            (not problems) == want.passes
            and verdict is not None
            and problems == list(verdict.problems)  # the verdict's own, none of the gate's additions
            and len(problems) == want.too_many_failures + want.drift_fails,
            f"expected {'a pass' if want.passes else 'a failure'}; the gate found {len(problems)} problems",
        ),
    ], statement
