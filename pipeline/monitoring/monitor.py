"""What a scoring run checks about itself once every record is counted: drift, and the report page.

The launcher builds one Monitor from the bundle (its class names, manifest and training profile)
and the engine it chose; the pipeline's last step hands it the run's combined Statistics. It holds
no data of its own beyond the profile, so it travels to a Dataflow worker with the step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pipeline.monitoring.drift import check_drift
from pipeline.monitoring.profile import TrainingProfile
from pipeline.monitoring.statistics import Statistics

log = logging.getLogger("reviewscore")


@dataclass(frozen=True)
class Monitor:
    class_names: tuple[str, ...]
    manifest: dict[str, Any]
    profile: TrainingProfile | None = None
    engine: str = ""
    engine_reason: str = ""

    def run_statistics(self, counts: dict[str, Any]) -> Statistics:
        return counts.get("statistics") or Statistics.empty(len(self.class_names))

    def drift(self, statistics: Statistics) -> dict[str, Any]:
        return check_drift(self.profile.statistics if self.profile else None, statistics)

    def report(self, summary: dict[str, Any], statistics: Statistics) -> bytes:
        from pipeline.monitoring.report import render_report

        return render_report(summary, statistics, self).encode()
