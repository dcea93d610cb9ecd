"""How fast the shared preprocessing cleans, tokenizes and encodes a Parquet file of reviews.

    .venv/bin/python benchmarks/preprocessing_speed.py data/imdb/train.parquet --bundle models/imdb-bilstm

Prints the best of --repeat runs, so a one-off stall of the machine does not count. The last two
lines encode as the pipeline does: batches of --batch reviews, on one thread, then split across
one thread per core.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import pyarrow.compute as pc
import pyarrow.parquet as pq
import typer

from pipeline.job.options import DEFAULT_MODEL
from pipeline.model.bundle import Bundle
from pipeline.model.engines.length_order import available_cores
from pipeline.model.preprocessing import tokenize
from schemas.output import TEXT


def main(
    data: Annotated[Path, typer.Argument(help="Parquet file with a text column.")],
    bundle: Annotated[Path, typer.Option(help="Bundle whose preprocessing and vocabulary to use.")] = Path(
        DEFAULT_MODEL
    ),
    repeat: Annotated[int, typer.Option(help="Timed runs; the best is reported.")] = 5,
    batch: Annotated[int, typer.Option(help="Reviews per batch in the pipeline-like runs.")] = 1024,
) -> None:
    texts = pq.read_table(data, columns=[TEXT]).column(TEXT)
    megabytes = pc.sum(pc.binary_length(texts)).as_py() / 1e6
    opened = Bundle.open(bundle)
    encoder = opened.encoder
    cores = available_cores()
    pool = ThreadPoolExecutor(cores)
    batches = [texts.slice(start, batch).to_pylist() for start in range(0, len(texts), batch)]
    pipeline_like = {"batches, 1 thread": (None, 1), f"batches, {cores} threads": (pool, cores)}
    timings = {"tokenize": [], "tokenize+encode": [], **{name: [] for name in pipeline_like}}
    for _ in range(repeat):
        for name, (executor, parts) in pipeline_like.items():
            started = time.perf_counter()
            for texts_of_batch in batches:
                encoder.encode_parallel(texts_of_batch, executor, parts).rows()
            timings[name].append(time.perf_counter() - started)
        started = time.perf_counter()
        tokenize(texts, opened.preprocessing)
        timings["tokenize"].append(time.perf_counter() - started)
        started = time.perf_counter()
        encoded = encoder.encode(texts)
        timings["tokenize+encode"].append(time.perf_counter() - started)
    print(f"{len(texts):,} reviews, {megabytes:.1f} MB of text, {int(encoded.lengths.sum()):,} ids after truncation")
    for stage, seconds in timings.items():
        best = min(seconds)
        print(f"{stage:>16}: {best:.2f} s  ({len(texts) / best:,.0f} reviews/s, {megabytes / best:.1f} MB/s)")


if __name__ == "__main__":
    typer.run(main)
