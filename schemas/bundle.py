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
CALIBRATION_FILE = "calibration.json"
"""Optional: a bundle without it scores uncalibrated; one that lists it must have it, unaltered."""

REQUIRED_FILES = (MODEL_FILE, VOCABULARY_FILE, PREPROCESSING_FILE)
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
    """Index i is the class whose probability is output i; for binary models the score is P(class_names[1])."""
    training_data: dict[str, Any]
    """fingerprint (sha256 over the training texts and labels in order), rows, source."""
    metrics: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)
    """Bundle-relative file name to sha256 hex digest, for every file but the manifest itself."""
    reviewscore_version: str = ""

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
        required = [f.name for f in fields(cls) if f.name not in ("files", "reviewscore_version")]
        missing = [name for name in required if name not in data]
        if missing:
            raise ManifestError(f"manifest.json lacks {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
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
        if not isinstance(self.version, str) or not self.version:
            raise ManifestError("manifest 'version' must be a non-empty string")


def check_bundle_relative(name: str) -> None:
    """Refuse file names that could point outside the bundle directory."""
    path = PurePosixPath(name)
    if not name or "\\" in name or path.is_absolute() or ".." in path.parts or name.startswith("~"):
        raise ManifestError(f"manifest lists a file outside the bundle: {name!r}")
