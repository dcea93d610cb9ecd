"""Samples for checking the drift checks on real reviews: one clean, three drifted, as Parquet files.

    python benchmarks/drift_cases.py --out runs/drift-cases [--unlabelled unsup.parquet --labelled train.parquet]
    (defaults: data/imdb/, as `reviewscore data imdb` or `make data` writes it)
    reviewscore score runs/drift-cases/unchanged-0.parquet --output runs/drift-out/unchanged-0 ...

Each sample holds --size reviews:
- unchanged-S: a random sample (seed S) of unlabelled reviews of movies the model never trained on
  (IMDB's unsup set shares no movie with its training set);
- positives: positive reviews only (labelled data), the feed that only sends five-star reviews;
- gibberish: unchanged-0 with every second word replaced by random letters (half the words unknown);
- first12: unchanged-0 cut to its first 12 words (a scraper that kept only the first line).
With --in-process, the checks are also computed here, on the bundle's engine, without Beam (the same
Statistics and check_drift the job uses), and printed as one line per sample and check.
"""

from __future__ import annotations

import argparse
import json
import random
import string
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas.output import REVIEW_ID, TEXT

IMDB = Path("data/imdb")
"""Where `reviewscore data imdb` writes the IMDB Parquet files by default."""


def gibberish(text: str, rng: random.Random) -> str:
    words = text.split()
    for i in range(0, len(words), 2):
        words[i] = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9)))
    return " ".join(words)


def first_words(text: str, n: int = 12) -> str:
    return " ".join(text.split()[:n])


def write(table: pa.Table, path: Path) -> None:
    pq.write_table(table.select([REVIEW_ID, TEXT]), path)
    print(f"wrote {path} ({table.num_rows} reviews)")


def make_cases(unlabelled: Path, labelled: Path, out: Path, size: int, seeds: int) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    pool = pq.read_table(unlabelled, columns=[REVIEW_ID, TEXT])
    paths = []
    for seed in range(seeds):
        take = np.random.default_rng(seed).choice(pool.num_rows, size, replace=False)
        sample = pool.take(pa.array(np.sort(take)))
        paths.append(out / f"unchanged-{seed}.parquet")
        write(sample, paths[-1])
        if seed == 0:
            base = sample
    rng = random.Random(0)
    texts = base.column(TEXT).to_pylist()
    for name, changed in (
        ("gibberish", [gibberish(t, rng) for t in texts]),
        ("first12", [first_words(t) for t in texts]),
    ):
        paths.append(out / f"{name}.parquet")
        write(base.set_column(base.column_names.index(TEXT), TEXT, pa.array(changed)), paths[-1])
    rows = pq.read_table(labelled, columns=[REVIEW_ID, TEXT, "label"])
    positives = rows.filter(pc.equal(rows.column("label"), 1))
    take = np.random.default_rng(0).choice(positives.num_rows, min(size, positives.num_rows), replace=False)
    paths.append(out / "positives.parquet")
    write(positives.take(pa.array(np.sort(take))), paths[-1])
    return paths


def checks_in_process(bundle_path: str, paths: list[Path]) -> None:
    from pipeline.model.bundle import open_bundle
    from pipeline.model.engines.base import ScorerSettings
    from pipeline.model.engines.calibrated import bundle_scorer
    from pipeline.model.labels import Labels
    from pipeline.model.monitoring.drift import check_drift
    from pipeline.model.monitoring.statistics import Statistics

    bundle = open_bundle(bundle_path)
    scorer = bundle_scorer(bundle, ScorerSettings(engine="onnx"))
    for path in paths:
        encoded = bundle.encoder.encode(pq.read_table(path, columns=[TEXT]).column(TEXT))
        encoded = encoded.take(np.flatnonzero(encoded.lengths > 0))
        statistics = Statistics.of_batch(encoded, scorer(encoded.rows()), Labels.of(bundle.manifest))
        drift = check_drift(bundle.profile.statistics if bundle.profile else None, statistics)
        values = ", ".join(f"{c.name} {c.value:.4g}{'*' if c.drifted else ''}" for c in drift.checks)
        print(json.dumps({"sample": path.stem, "detected": drift.detected}), values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--unlabelled", type=Path, default=IMDB / "unsup.parquet", help="IMDB's unsup.parquet.")
    parser.add_argument("--labelled", type=Path, default=IMDB / "train.parquet", help="IMDB's train.parquet.")
    parser.add_argument("--out", type=Path, default=Path("runs/drift-cases"))
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=5, help="How many unchanged samples to draw.")
    parser.add_argument("--in-process", metavar="BUNDLE", help="Also compute the checks here against BUNDLE.")
    args = parser.parse_args()
    for path in (args.unlabelled, args.labelled):
        if not path.is_file():
            parser.error(f"{path} is missing: run `make data` (or pass --unlabelled and --labelled)")
    paths = make_cases(args.unlabelled, args.labelled, args.out, args.size, args.seeds)
    if args.in_process:
        checks_in_process(args.in_process, paths)


if __name__ == "__main__":
    main()
