"""Flex Template entry point: template parameters in, one submitted Dataflow job out.

The Flex Template launcher runs this file with each template parameter as `--name=value` and the
Dataflow options (project, region, temp_location, ...) alongside; it must submit and return rather
than wait, because the launcher VM is not meant to live as long as the job.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.job import ScoringJob, run_scoring


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True, help="Comma-separated review folders, files or globs (gs://).")
    parser.add_argument("--output", required=True, help="Output folder (gs://).")
    parser.add_argument("--model", required=True, help="Model bundle folder (gs://).")
    parser.add_argument("--text_column", default="text")
    parser.add_argument("--id_column", default="review_id")
    parser.add_argument("--batch_size", type=int, default=1024)
    parser.add_argument("--inference_batch_size", type=int, default=128)
    parser.add_argument("--overwrite", default="false", choices=["true", "false"])
    known, beam_args = parser.parse_known_args(argv)
    run_scoring(
        ScoringJob(
            inputs=known.input.split(","),
            output=known.output,
            model=known.model,
            text_column=known.text_column,
            id_column=known.id_column,
            max_batch_size=known.batch_size,
            inference_batch_size=known.inference_batch_size,
            overwrite=known.overwrite == "true",
            beam_args=beam_args,
            wait=False,
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
