"""Flex Template entry point: template parameters in, the description of one Dataflow job out.

The Flex Template launcher runs this file (FLEX_TEMPLATE_PYTHON_PY_FILE) with each template
parameter as `--name=value` and the Dataflow options alongside: runner, project, region, job_name,
staging and temp locations, the launch environment's (sdk_container_image, machine_type, ...), and
`--template_location=gs://.../template_launches/LAUNCH/job_object`. With that option DataflowRunner
stages the pipeline, writes the job description there and submits nothing; when this process exits
0, the launcher reads the file and creates the job. So it must return rather than wait (the launcher
VM is not meant to live as long as the job), has no job id to report, and must leave runner,
project, region, job_name and template_location as the launcher passed them (Google's "Troubleshoot
Flex Templates", "Failed to read the job file"). The parameters, their defaults and help are
`pipeline/job_options.py`'s, the same as `reviewscore score`'s. tests/test_flex_launch.py runs this
file as the launcher does.

A configuration mistake (a local path, an unreachable bucket, a bad bundle) ends with one line on
stderr and exit code 2, which the launcher shows as the job's failure reason; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.job import CONFIG_ERRORS, ScoringJob, run_scoring
from pipeline.job_options import JOB_OPTIONS
from pipeline.scorer import ScorerSettings

EXIT_CONFIG_ERROR = 2


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Template parameters, and everything else for Beam."""
    parser = argparse.ArgumentParser(description=__doc__)
    for option in JOB_OPTIONS:
        if option.flag:
            parser.add_argument(f"--{option.name}", default=str(option.default).lower(), choices=["true", "false"])
        else:
            parser.add_argument(
                f"--{option.name}",
                required=option.required,
                default=option.default,
                type=int if option.integer else str,
                choices=option.choices or None,
                help=option.help,
            )
    return parser.parse_known_args(argv)


def main(argv: list[str]) -> None:
    known, beam_args = parse(argv)
    try:
        outcome = run_scoring(job(known, beam_args))
    except CONFIG_ERRORS as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(EXIT_CONFIG_ERROR)
    # The launcher's log: where the job description was written (the job's id when run without
    # --template_location), or the steps of a dry run.
    print(json.dumps(outcome), flush=True)


def job(known: argparse.Namespace, beam_args: list[str]) -> ScoringJob:
    return ScoringJob(
        inputs=known.input.split(","),
        output=known.output,
        model=known.model,
        text_column=known.text_column,
        id_column=known.id_column,
        max_batch_size=known.batch_size,
        scorer=ScorerSettings(known.engine, known.inference_batch_size, known.threads),
        overwrite=known.overwrite == "true",
        beam_args=beam_args,
        wait=False,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
