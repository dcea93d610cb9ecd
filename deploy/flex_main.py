"""Flex Template entry point: template parameters in, one submitted Dataflow job out.

The Flex Template launcher runs this file with each template parameter as `--name=value` and the
Dataflow options (project, region, temp_location, ...) alongside; it must submit and return rather
than wait, because the launcher VM is not meant to live as long as the job.
"""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.job import ScoringJob, run_scoring
from pipeline.model_handler import DEFAULT_MAX_BATCH_SIZE
from pipeline.scorer import ENGINES, ScorerSettings


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True, help="Comma-separated review folders, files or globs (gs://).")
    parser.add_argument("--output", required=True, help="Output folder (gs://).")
    parser.add_argument("--model", required=True, help="Model bundle folder (gs://).")
    parser.add_argument("--text_column", default="text")
    parser.add_argument("--id_column", default="review_id")
    # Defaults are the CLI's (`reviewscore score --help`): the same constants, not copies.
    parser.add_argument("--batch_size", type=int, default=DEFAULT_MAX_BATCH_SIZE)
    parser.add_argument("--inference_batch_size", type=int, default=ScorerSettings.batch_size)
    parser.add_argument("--engine", default=ScorerSettings.engine, choices=ENGINES)
    parser.add_argument("--threads", type=int, default=ScorerSettings.threads)
    parser.add_argument("--overwrite", default="false", choices=["true", "false"])
    known, beam_args = parser.parse_known_args(argv)
    outcome = run_scoring(
        ScoringJob(
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
    )
    print(json.dumps(outcome), flush=True)  # the launcher's log: job id, or the steps of a dry run


if __name__ == "__main__":
    main(sys.argv[1:])
