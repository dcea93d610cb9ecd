"""A bundle's manifest.json as a pydantic model: what the bundle is, its classes, and every file's sha256.

Its own module, apart from the bundle's file names (`schemas/bundle.py`), so that what only names a
file loads no pydantic. `read_manifest` is the one reader: the format version first (a future layout
is refused, not misread), then the keys and their types, then the rules a bundle's files and classes
follow; every refusal is a ManifestError naming what is wrong. A key this version does not know is
ignored, as earlier versions did: the format version, not the keys, says whether a manifest can be
trusted. The JSON Schema in schemas/manifest.schema.json is generated from this model (`make schemas`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError, model_validator

from schemas.bundle import (
    OPTIONAL_FIELDS,
    READABLE_FORMAT_VERSIONS,
    REQUIRED_FILES,
    ManifestError,
    check_bundle_relative,
    default_score_label,
)
from schemas.validation import refusal


class Manifest(BaseModel):
    """manifest.json: its keys in the order the file holds them."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    format_version: StrictInt
    """The bundle's layout: 2, what this reviewscore writes (every weight once, in weights.bin), or 1
    (model.keras holds the whole model); a version this reviewscore does not read is refused."""
    name: StrictStr
    """The model's name, as training gave it (by default made from its data and architecture); with
    `version`, what `reviewscore info` and every run's lineage call the model."""
    version: StrictStr
    """Flows into every scored row as `model_version`."""
    created: StrictStr
    """ISO 8601, UTC."""
    architecture: dict[str, Any]
    """name, description, parameter count."""
    class_names: list[StrictStr]
    """Index i is the class whose probability is output i (for a sigmoid head, output 0 is P(class_names[1]))."""
    training_data: dict[str, Any]
    """fingerprint (sha256 over the training texts and labels in order), rows, source."""
    metrics: dict[str, Any]
    """Training's headline figures: validation accuracy, macro F1 and loss (ROC AUC where measured), how the
    validation part was held out, epochs and wall seconds; for a calibrated model, `heldout`: accuracy,
    ECE before and after calibration and Brier score on the reviews its `split` names."""
    files: dict[StrictStr, StrictStr] = {}
    """Bundle-relative file name to sha256 hex digest, for every file but the manifest itself."""
    reviewscore_version: StrictStr = ""
    """The reviewscore that wrote the bundle; empty where the manifest does not say (format 1 may not)."""
    score_label: StrictStr | None = None
    """The class whose probability is the `score` column; null: the predicted class's. Missing: the default
    for the classes (two classes: the second's, see default_score_label)."""
    ordinal: StrictBool = False
    """The classes are ordered (class_names from lowest to highest), so a class error has a size."""
    onnx: dict[str, Any] | None = None
    """How model.onnx was exported and checked against Keras, or why there is none ({"unsupported": reason})."""

    @model_validator(mode="before")
    @classmethod
    def _readable(cls, data: Any) -> Any:
        """A format this reviewscore reads, every key it requires, and score_label's default where missing."""
        if not isinstance(data, dict):
            raise ManifestError("manifest.json must hold a JSON object")
        version = data.get("format_version")
        if version not in READABLE_FORMAT_VERSIONS or isinstance(version, bool):
            raise ManifestError(
                f"unknown bundle format version {version!r} (this reviewscore reads versions "
                f"{', '.join(map(str, READABLE_FORMAT_VERSIONS))}; a newer reviewscore may read it)"
            )
        missing = [name for name in cls.model_fields if name not in OPTIONAL_FIELDS and name not in data]
        if missing:
            raise ManifestError(f"manifest.json lacks {', '.join(missing)}")
        if "score_label" not in data and isinstance(data.get("class_names"), list):
            data = {**data, "score_label": default_score_label(data["class_names"])}
        return data

    @model_validator(mode="after")
    def _trustworthy(self) -> Manifest:
        """The rules between the keys: files inside the bundle and the required ones listed, distinct classes."""
        for name in self.files:
            check_bundle_relative(name)
        missing = [name for name in REQUIRED_FILES[self.format_version] if name not in self.files]
        if missing:
            raise ManifestError(f"manifest 'files' does not list {', '.join(missing)}")
        if len(self.class_names) < 2:
            raise ManifestError("manifest 'class_names' must list at least two classes")
        if len(set(self.class_names)) != len(self.class_names) or not all(self.class_names):
            raise ManifestError("manifest 'class_names' must be distinct non-empty strings")
        if self.score_label is not None and self.score_label not in self.class_names:
            raise ManifestError(f"manifest 'score_label' {self.score_label!r} is not one of class_names")
        if not self.version:
            raise ManifestError("manifest 'version' must be a non-empty string")
        return self


def read_manifest(data: Any) -> Manifest:
    """A manifest.json's parsed JSON as a Manifest; ManifestError, naming what is wrong, when it cannot be trusted."""
    try:
        return Manifest.model_validate(data)
    except ValidationError as e:
        raise refusal(e, ManifestError, "manifest") from None
