"""The model bundle contract: which files a bundle holds and what its manifest.json says.

A bundle is a directory that scoring trusts only after checking it against this definition: the
format version first (so a future layout is refused, not misread), then the sha256 of every file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import PurePosixPath
from typing import Any

FORMAT_VERSION = 1

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.keras"
VOCABULARY_FILE = "vocab.json"
PREPROCESSING_FILE = "preprocessing.json"
METRICS_FILE = "metrics.json"
HISTORY_PLOT_FILE = "training_history.png"
ONNX_FILE = "model.onnx"
"""Optional: the model as ONNX, for scoring without TensorFlow (exported at training time)."""
OCCLUSION_FILE = "occlusion.onnx"
"""Optional: the same model with its recurrent states open (written with model.onnx), so exact
occlusion on ONNX Runtime reuses the full pass's states instead of re-scoring every occluded review."""
ONNX_FILES = (ONNX_FILE, OCCLUSION_FILE)
"""What `reviewscore export-onnx` writes, together."""
CALIBRATION_FILE = "calibration.json"
"""Optional: a bundle without it scores uncalibrated; one that lists it must have it, unaltered."""
PROFILE_FILE = "profile.json"
"""Optional: the training profile drift checks compare every scoring run with; without it a run
reports drift status 'no_profile'."""
TRAINING_HASHES_FILE = "training_hashes.parquet"
"""Optional: one hash per training review's text and the part it was in (training/overlap.py), so that
`reviewscore evaluate` can count the evaluated reviews the model was trained on."""

REQUIRED_FILES = (MODEL_FILE, VOCABULARY_FILE, PREPROCESSING_FILE)
# Manifest fields format version 1 does not require: a manifest without them reads with their defaults.
OPTIONAL_FIELDS = ("files", "reviewscore_version", "score_label", "ordinal", "onnx")
BINARY_CLASS_NAMES = ("negative", "positive")


class ManifestError(ValueError):
    """The manifest is not one this version of reviewscore can trust."""


@dataclass(frozen=True)
class Manifest:
    format_version: int
    name: str
    version: str
    """Flows into every scored row as `model_version`."""
    created: str
    """ISO 8601, UTC."""
    architecture: dict[str, Any]
    """name, description, parameter count."""
    class_names: list[str]
    """Index i is the class whose probability is output i (for a sigmoid head, output 0 is P(class_names[1]))."""
    training_data: dict[str, Any]
    """fingerprint (sha256 over the training texts and labels in order), rows, source."""
    metrics: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)
    """Bundle-relative file name to sha256 hex digest, for every file but the manifest itself."""
    reviewscore_version: str = ""
    score_label: str | None = None
    """The class whose probability is the `score` column; None: the predicted class's. See default_score_label."""
    ordinal: bool = False
    """The classes are ordered (class_names from lowest to highest), so a class error has a size."""
    onnx: dict[str, Any] | None = None
    """How model.onnx was exported and checked against Keras, or why there is none ({"unsupported": reason})."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        if not isinstance(data, dict):
            raise ManifestError("manifest.json must hold a JSON object")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ManifestError(
                f"unknown bundle format version {version!r} (this reviewscore reads version {FORMAT_VERSION})"
            )
        required = [f.name for f in fields(cls) if f.name not in OPTIONAL_FIELDS]
        missing = [name for name in required if name not in data]
        if missing:
            raise ManifestError(f"manifest.json lacks {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        data = dict(data)
        if "score_label" not in data and isinstance(data.get("class_names"), list):
            # No score_label: the default for its classes (two classes: the second's probability is the score).
            data["score_label"] = default_score_label(data["class_names"])
        manifest = cls(**{k: v for k, v in data.items() if k in known})
        manifest.validate()
        return manifest

    def validate(self) -> None:
        if not isinstance(self.files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.files.items()
        ):
            raise ManifestError("manifest 'files' must map file names to sha256 digests")
        for name in self.files:
            check_bundle_relative(name)
        missing = [name for name in REQUIRED_FILES if name not in self.files]
        if missing:
            raise ManifestError(f"manifest 'files' does not list {', '.join(missing)}")
        if not isinstance(self.class_names, list) or len(self.class_names) < 2:
            raise ManifestError("manifest 'class_names' must list at least two classes")
        if len(set(self.class_names)) != len(self.class_names) or not all(
            isinstance(name, str) and name for name in self.class_names
        ):
            raise ManifestError("manifest 'class_names' must be distinct non-empty strings")
        if self.score_label is not None and self.score_label not in self.class_names:
            raise ManifestError(f"manifest 'score_label' {self.score_label!r} is not one of class_names")
        if not isinstance(self.version, str) or not self.version:
            raise ManifestError("manifest 'version' must be a non-empty string")


def default_score_label(class_names: list[str]) -> str | None:
    """Two classes: `score` is the probability of the second (positive), as binary classifiers report it.
    More: None, so `score` is the probability of whichever class is predicted."""
    return class_names[1] if len(class_names) == 2 else None


def check_bundle_relative(name: str) -> None:
    """Refuse file names that could point outside the bundle directory."""
    path = PurePosixPath(name)
    if not name or "\\" in name or path.is_absolute() or ".." in path.parts or name.startswith("~"):
        raise ManifestError(f"manifest lists a file outside the bundle: {name!r}")
