"""Flex Template entry point: template parameters in, the description of one Dataflow job out.

The Flex Template launcher runs this file (FLEX_TEMPLATE_PYTHON_PY_FILE) with each template
parameter as `--name=value` and the Dataflow options alongside: runner, project, region, job_name,
staging and temp locations, the launch environment's (sdk_container_image, machine_type, ...), and
`--template_location=gs://.../template_launches/LAUNCH/job_object`. With that option DataflowRunner
stages the pipeline, writes the job description there and submits nothing; when this process exits
0, the launcher reads the file and creates the job. So it must return rather than wait (the launcher
VM is not meant to live as long as the job), has no job id to report, and must leave runner,
project, region, job_name and template_location as the launcher passed them (Google's "Troubleshoot
Flex Templates", "Failed to read the job file"). The parameters, their types, defaults and help are
`pipeline/job/options.py`'s, the same as `reviewscore score`'s, and so is the mapping into the job.
The workers' image is the template spec's (its defaultEnvironment.sdkContainerImage, by digest),
which the launcher passes on as `--sdk_container_image`; without one the launch is refused (exit 2).
tests/test_flex_launch.py runs this file as the launcher does; `make rehearse-dataflow` launches it
onto a local portable runner whose workers run an environment built like the image.

A configuration mistake (a local path, an unreachable bucket, a bad bundle) ends with one line on
stderr and exit code 2, which the launcher shows as the job's failure reason; no traceback.
"""

from __future__ import annotations

import json
import sys

from pipeline.job.options import parse_template_args
from pipeline.job.scoring import CONFIG_ERRORS, ScoringJob, run_scoring
from pipeline.model.native_log import quiet_tensorflow
from schemas.exit_codes import EXIT_CONFIG_ERROR


def main(argv: list[str]) -> None:
    quiet_tensorflow()  # this process owns its logging, as the CLI does for its own
    values, beam_args = parse_template_args(argv)
    try:
        outcome = run_scoring(ScoringJob.from_options(values, beam_args, wait=False))
    except CONFIG_ERRORS as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(EXIT_CONFIG_ERROR)
    # The launcher's log: where the job description was written (the job's id when run without
    # --template_location), or the steps of a dry run.
    print(json.dumps(outcome.model_dump()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
