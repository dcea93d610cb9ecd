"""The model bundle contract: which files a bundle holds and what its manifest.json says.

A bundle is a directory that scoring trusts only after checking it against this definition: the
format version first (so a future layout is refused, not misread), then the sha256 of every file.
The manifest's model is in schemas/manifest.py, apart, so that naming a bundle file loads no pydantic.
"""

from __future__ import annotations

from pathlib import PurePosixPath

FORMAT_VERSION = 2
"""What this reviewscore writes. 2: every weight once, in weights.bin, which keras.json, model.onnx
and occlusion.onnx all read; 1: model.keras held the Keras model whole and each ONNX graph its own
copy of the weights (still read)."""
READABLE_FORMAT_VERSIONS = (1, 2)

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.keras"
"""Format 1 only: the Keras model, architecture and weights in one archive."""
KERAS_FILE = "keras.json"
"""Format 2: the Keras model's architecture (its Keras config) and where each of its weights lies in
weights.bin."""
WEIGHTS_FILE = "weights.bin"
"""Format 2: every weight of the model once, read by keras.json and, as ONNX external data, by
model.onnx and occlusion.onnx."""
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
"""What `reviewscore export-onnx` writes, together (with weights.bin and keras.json, which it rewrites
with the same bytes, or writes for a bundle of format 1)."""
CALIBRATION_FILE = "calibration.json"
"""Optional: a bundle without it scores uncalibrated; one that lists it must have it, unaltered."""
PROFILE_FILE = "profile.json"
"""Optional: the training profile drift checks compare every scoring run with; without it a run
reports drift status 'no_profile'."""
TRAINING_HASHES_FILE = "training_hashes.parquet"
"""Optional: one hash per training review's text and the part it was in (training/overlap.py), so that
`reviewscore evaluate` can count the evaluated reviews the model was trained on."""

REQUIRED_FILES = {
    1: (MODEL_FILE, VOCABULARY_FILE, PREPROCESSING_FILE),
    2: (KERAS_FILE, WEIGHTS_FILE, VOCABULARY_FILE, PREPROCESSING_FILE),
}
# Manifest fields format version 1 does not require: a manifest without them reads with their defaults.
OPTIONAL_FIELDS = ("files", "reviewscore_version", "score_label", "ordinal", "onnx")
BINARY_CLASS_NAMES = ("negative", "positive")


class ManifestError(ValueError):
    """The manifest is not one this version of reviewscore can trust."""


def default_score_label(class_names: list[str]) -> str | None:
    """Two classes: `score` is the probability of the second (positive), as binary classifiers report it.
    More: None, so `score` is the probability of whichever class is predicted."""
    return class_names[1] if len(class_names) == 2 else None


def check_bundle_relative(name: str) -> None:
    """Refuse file names that could point outside the bundle directory."""
    path = PurePosixPath(name)
    if not name or "\\" in name or path.is_absolute() or ".." in path.parts or name.startswith("~"):
        raise ManifestError(f"manifest lists a file outside the bundle: {name!r}")
