"""Beam's portable job service (`local_job_service_main`), with the workers' endpoints pinned to loopback.

For an EXTERNAL environment Beam's FnApiRunner tells each worker to call back at
`socket.getfqdn():PORT` (fn_api_runner/worker_handlers.py, ExternalWorkerHandler.host_from_worker).
On a machine whose host name resolves to a network address, the control, data, state and logging
traffic of the rehearsal would go over that address; the rehearsal talks over loopback only, so this
pins the host to `localhost` and otherwise runs the stock entry point with the same arguments.

It also makes the runner honour the job's `--direct_num_workers`: Beam's in-process DirectRunner
reads it (fn_runner.py, FnApiRunner.run_pipeline), but the job service calls run_via_runner_api,
which skips that and runs every job on one SDK worker whatever the option says. Dataflow runs one
SDK process per vCPU, so the rehearsal asks for as many as this machine has cores.

Run as a script (`python deploy/rehearsal/job_service.py --port N --staging_dir DIR`), with any
Python that has Beam: it stands in for the Dataflow service, not for a worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys

from apache_beam.options.pipeline_options import DirectOptions
from apache_beam.runners.portability import local_job_service_main
from apache_beam.runners.portability.fn_api_runner import fn_runner, worker_handlers


def honour_direct_num_workers() -> None:
    run_via_runner_api = fn_runner.FnApiRunner.run_via_runner_api

    def run(self, pipeline_proto, options):
        asked = int(options.view_as(DirectOptions).direct_num_workers)  # a string when it comes over the Job API
        self._num_workers = asked if asked > 0 else multiprocessing.cpu_count()  # 0: one per core, as Beam's
        return run_via_runner_api(self, pipeline_proto, options)

    fn_runner.FnApiRunner.run_via_runner_api = run


def main(argv: list[str]) -> None:
    worker_handlers.ExternalWorkerHandler.host_from_worker = lambda self: "localhost"
    honour_direct_num_workers()
    # As local_job_service_main's __main__ does: exit cleanly on SIGTERM, log at INFO (the workers'
    # log records arrive here through the Fn API logging service).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logging.basicConfig()
    logging.getLogger().setLevel(logging.INFO)
    local_job_service_main.run(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
