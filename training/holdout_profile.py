"""A training profile for a bundle that has none (`reviewscore profile`).

Given the bundle's own training data, the profile is built from exactly the reviews training held
out: the manifest records the split (kind, group column, fractions, seed) and the data's
fingerprint, and `holdout_split` is deterministic, so the held-out movies are found again. Any
other data (a separate validation file such as SST-5 dev, or unlabelled reviews the user vouches
for) is profiled whole, and the profile says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.model.bundle import Bundle, add_profile, check_can_write
from pipeline.model.engines.base import ScorerSettings
from pipeline.model.engines.calibrated import bundle_scorer
from pipeline.model.labels import Labels
from pipeline.model.monitoring.training_profile import TrainingProfile
from schemas.bundle import PROFILE_FILE
from schemas.output_names import LABEL, TEXT
from training.datasets import DatasetError, load_sources, load_texts
from training.splits import holdout_split


def profile_bundle(
    bundle_path: Path, data: list[Path], text_column: str = TEXT, label_column: str = LABEL, force: bool = False
):
    """Write profile.json into the bundle from `data`; returns the updated bundle. A bundle that has a
    profile is refused unless `force`, before any data is read (`check_can_write`)."""
    bundle = Bundle.open(bundle_path)
    check_can_write(bundle, [PROFILE_FILE], force)
    texts, source = held_out_texts(bundle, data, text_column, label_column)
    encoded = bundle.encoder.encode(texts)
    encoded = encoded.take(np.flatnonzero(encoded.lengths > 0))  # scoring reports texts with no words as failures
    if not len(encoded):
        raise DatasetError(f"{source['data']}: no text has a word left after cleaning")
    scorer = bundle_scorer(bundle, ScorerSettings(), reviews=len(encoded))
    probabilities = scorer(encoded.rows())
    profile = TrainingProfile.of(encoded, probabilities, Labels.of(bundle.manifest), source)
    return add_profile(bundle.path, profile)


def held_out_texts(bundle: Bundle, data: list[Path], text_column: str, label_column: str) -> tuple[pa.Array, dict]:
    """The texts to profile and a description of which they are."""
    split: dict[str, Any] = bundle.manifest.metrics.get("validation_split") or {}
    group_column = split.get("group_column") if split.get("kind") == "grouped" else None
    try:
        labelled = load_sources(data, text_column, label_column, group_column, tuple(bundle.manifest.class_names))
    except DatasetError:
        labelled = None
    if labelled is not None and labelled.fingerprint() == bundle.manifest.training_data.get("fingerprint"):
        if split.get("kind") not in ("grouped", "random"):
            raise DatasetError(
                f"{labelled.source} is the bundle's training data, but its manifest records no held-out split "
                f"({split.get('kind')!r}); profile the validation data instead"
            )
        parts = holdout_split(
            len(labelled),
            labelled.groups,
            split["validation_fraction"],
            split["calibration_fraction"],
            split["seed"],
            group_column,
        )
        if parts.description["rows"] != split.get("rows"):
            raise DatasetError(
                f"the split of {labelled.source} found again ({parts.description['rows']}) differs from the one the "
                f"manifest records ({split.get('rows')})"
            )
        held = np.concatenate([parts.validation, parts.calibration])
        return labelled.texts.take(pa.array(held)), {
            "data": labelled.source,
            "part": f"the held-out validation and calibration parts of the training data ({split['kind']} split"
            + (f" by {group_column}" if group_column else "")
            + f", seed {split['seed']}, found again from the manifest)",
        }
    texts = pa.concat_arrays([load_texts(path, text_column) for path in data])
    same_as_validation = any(str(path) == split.get("validation_source") for path in data)
    return texts, {
        "data": " + ".join(map(str, data)),
        "part": "every review of the given data"
        + (" (the bundle's separate validation data)" if same_as_validation else ", which is not the training data"),
    }
