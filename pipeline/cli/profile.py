"""`reviewscore profile`: add a training profile to a bundle that has none."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import Force, Verbose, console, fail, quiet_logging
from schemas.bundle import PROFILE_FILE
from schemas.output_names import LABEL, TEXT


def profile(
    bundle: Annotated[Path, typer.Argument(metavar="BUNDLE", help="Model bundle directory to add profile.json to.")],
    data: Annotated[
        list[Path],
        typer.Option(
            metavar="PATH",
            help="The bundle's own training data (its held-out movies are found again from the manifest), or "
            "in-distribution reviews to profile whole (e.g. its separate validation file). Repeatable.",
        ),
    ],
    text_column: Annotated[str, typer.Option(metavar="COLUMN", help="Text column, for Parquet data.")] = TEXT,
    label_column: Annotated[str, typer.Option(metavar="COLUMN", help="Label column, for Parquet data.")] = LABEL,
    force: Force = False,
    verbose: Verbose = False,
) -> None:
    """Add the training profile drift checks compare every run with, to a bundle that has none.

    A bundle that has a profile is left as it is unless --force; the same data always gives the same bytes."""
    quiet_logging(verbose)
    from pipeline.model.bundle import BundleError
    from training.datasets import DatasetError
    from training.holdout_profile import profile_bundle

    try:
        updated = profile_bundle(bundle, data, text_column, label_column, force)
    except (BundleError, DatasetError) as e:
        fail(str(e))
    source = updated.profile.source
    console.print(
        f"wrote {updated.path / PROFILE_FILE}: {source['reviews']:,} reviews, {source['part']} of "
        f"{source['data']}; manifest updated (model and version unchanged)"
    )
