"""What a scoring run checks about itself once every record is counted: drift, and the report page.

The launcher builds one Monitor from the bundle (its class names, manifest and training profile);
the pipeline's last step hands it the run's combined Statistics. It holds
no data of its own beyond the profile, so it travels to a Dataflow worker with the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.explain.explainer import ExplainSettings, ExplanationStatistics
from pipeline.monitoring.drift import check_drift
from pipeline.monitoring.training_profile import TrainingProfile
from pipeline.monitoring.statistics import Statistics


@dataclass(frozen=True)
class Monitor:
    class_names: tuple[str, ...]
    manifest: dict[str, Any]
    profile: TrainingProfile | None = None
    explain: ExplainSettings | None = None
    """Set when the run explains its labels (--explain K): the summary then describes the explanations."""

    def run_statistics(self, counts: dict[str, Any]) -> Statistics:
        return counts.get("statistics") or Statistics.empty(len(self.class_names))

    def explanations(self, counts: dict[str, Any], engine: str) -> dict[str, Any] | None:
        """The run's explanations for the summary; `engine`: the scoring engine(s) that ran."""
        if self.explain is None:
            return None
        statistics = counts.get("explanations") or ExplanationStatistics.empty(len(self.class_names))
        return {**statistics.summary(self.class_names, self.explain), "engine": self.explain.runs_on(engine)}

    def drift(self, statistics: Statistics) -> dict[str, Any]:
        return check_drift(self.profile.statistics if self.profile else None, statistics)

    def report(self, summary: dict[str, Any], statistics: Statistics) -> bytes:
        from pipeline.monitoring.report import render_report

        return render_report(summary, statistics, self).encode()
