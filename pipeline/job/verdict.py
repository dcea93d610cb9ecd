"""Whether a finished run passed: the one rule every door applies to a run's summary.

A run can finish, with every record scored or reported, and still not be fit for use: records
lost between read and written, more failures than the job allows (`--max-error-rate`), drift
from the training profile under `--on-drift fail`, or a shadow model that disagrees with the run's
model more than `--max-disagreement` allows. The pipeline's summary step writes the verdict
into _SUMMARY.json, so the CLI's exit code, a Flex Template job (which nobody waits on) and the
Airflow DAG's gate all read the same judgement instead of each re-deriving it.

Cheap to import (no Beam): the CLI's option table reads DRIFT_POLICIES.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the summary's models load pydantic, which the CLI's option table does not need
    from schemas.summary import Drift, RunSummary, Verdict

DRIFT_POLICIES = ("warn", "fail")
"""The first is the default: drift is reported, the run still passes."""


@dataclass(frozen=True)
class RunPolicy:
    max_error_rate: float | None = None
    """Most failed/read allowed; None: no limit."""
    on_drift: str = DRIFT_POLICIES[0]
    max_disagreement: float | None = None
    """Most share of compared reviews the shadow model may label differently; None: no limit."""


def drifted_checks(drift: Drift) -> str:
    """The names of the checks that drifted, for messages."""
    return ", ".join(drift.drifted_checks())


def judge(summary: RunSummary, policy: RunPolicy) -> Verdict:
    """The run's verdict from its summary (whose own verdict is not read): passed, the problems that
    failed it, and the policy it was judged by."""
    from schemas.summary import Verdict

    read, scored, failed = summary.records_read, summary.records_scored, summary.records_failed
    rate = failed / read if read else 0.0
    problems = []
    if not summary.accounting_ok:
        problems.append(f"records read ({read:,}) differ from scored + failed ({scored + failed:,})")
    if policy.max_error_rate is not None and rate > policy.max_error_rate:
        problems.append(f"{rate:.2%} of records failed, above --max-error-rate {policy.max_error_rate:.2%}")
    if summary.drift.detected and policy.on_drift == "fail":
        problems.append(f"drift detected ({drifted_checks(summary.drift)}) with --on-drift fail")
    disagreement = disagreement_problem(summary, policy.max_disagreement)
    if disagreement:
        problems.append(disagreement)
    return Verdict(
        passed=not problems,
        problems=tuple(problems),
        error_rate=round(rate, 6),
        max_error_rate=policy.max_error_rate,
        on_drift=policy.on_drift,
        max_disagreement=policy.max_disagreement,
    )


def disagreement_problem(summary: RunSummary, limit: float | None) -> str | None:
    """The sentence that fails a run whose shadow model labelled more of the compared reviews differently
    than `limit` allows; None within it, without a limit, or when nothing was compared."""
    shadow = summary.shadow
    if limit is None or shadow is None or shadow.agreement is None:
        return None
    disagreement = 1 - shadow.agreement
    if disagreement <= limit:
        return None
    return (
        f"the shadow model {shadow.model.version} labelled {disagreement:.2%} of {shadow.reviews_compared:,} "
        f"compared reviews differently, above --max-disagreement {limit:.2%}"
    )
