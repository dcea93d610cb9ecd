"""What a million reviews cost on Dataflow, from a measured local rate and Dataflow's public prices.

    .venv/bin/python benchmarks/dataflow_cost.py bench-results/results.json

The rate is `make bench`'s end-to-end pipeline rate on its largest input divided by the cores it
ran on: reviews/s per vCPU, start-up included. The prices are the batch worker rates for
us-central1 that Beam ships for its own cost benchmarks (apache_beam.testing.load_tests.
dataflow_cost_consts, taken from cloud.google.com/dataflow/pricing); they are list prices, before
discounts, and Dataflow bills per second. Not included: worker VM boot and image pull (billed, not
measurable here), Dataflow Shuffle (this job shuffles only file names), Cloud Storage.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from apache_beam.testing.load_tests import dataflow_cost_consts as prices

DISK_GB = 25
"""Dataflow's default worker disk for batch jobs that use Dataflow Shuffle (the default where offered)."""


@dataclass(frozen=True)
class Worker:
    machine_type: str
    vcpus: int
    memory_gb: float
    processes: str
    """How the worker runs SDK processes: one per vCPU (Dataflow's default), or one in all."""


WORKERS = (
    Worker("n1-standard-1", 1, 3.75, "one per vCPU (default)"),
    Worker("n2-standard-4", 4, 16, "one per vCPU (default)"),
    Worker("n2-highcpu-4", 4, 4, "one, --experiments=no_use_multiple_sdk_containers"),
)


def per_million(reviews_per_second_per_vcpu: float, worker: Worker) -> dict[str, float]:
    worker_hours = 1e6 / (reviews_per_second_per_vcpu * worker.vcpus * 3600)
    hourly = (
        worker.vcpus * prices.VCPU_PER_HR_BATCH
        + worker.memory_gb * prices.MEM_PER_GB_HR_BATCH
        + DISK_GB * prices.PD_PER_GB_HR
    )
    return {"worker_hours": worker_hours, "usd_per_worker_hour": hourly, "usd_per_million": worker_hours * hourly}


def report(reviews_per_second: float, cores: int) -> str:
    rate = reviews_per_second / cores
    lines = [
        f"Measured: {reviews_per_second:,.0f} reviews/s end to end on {cores} cores = {rate:,.0f} reviews/s per vCPU.",
        f"Prices (us-central1, batch): vCPU ${prices.VCPU_PER_HR_BATCH}/h, memory ${prices.MEM_PER_GB_HR_BATCH}/GB-h, "
        f"standard disk ${prices.PD_PER_GB_HR:.6f}/GB-h x {DISK_GB} GB.",
        "",
        "| worker | SDK processes | $ per worker-hour | worker-hours per million | $ per million reviews |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for worker in WORKERS:
        cost = per_million(rate, worker)
        lines.append(
            f"| {worker.machine_type} ({worker.vcpus} vCPU, {worker.memory_gb:g} GB) | {worker.processes} "
            f"| {cost['usd_per_worker_hour']:.4f} | {cost['worker_hours']:.3f} | {cost['usd_per_million']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def from_bench(results: dict) -> str:
    largest = max(results["results"], key=lambda r: r["reviews"])
    return report(largest["pipeline"]["reviews_per_second"], results["cores"])


if __name__ == "__main__":
    print(from_bench(json.loads(Path(sys.argv[1]).read_text())), end="")
