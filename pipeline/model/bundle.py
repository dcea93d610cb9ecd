"""Reading and writing model bundles, with every check done before any of the bundle is used.

`Bundle.open` verifies the manifest (format version, file list) and the sha256 of every file, then
parses the preprocessing settings and the vocabulary; the Keras model itself is loaded only on
demand (`load_model`), in Keras safe mode, and checked against the vocabulary. A bundle holds each
weight once, in weights.bin (`WeightsFile`): the Keras model is rebuilt from its config in
keras.json and given its weights from there, and the ONNX graphs read theirs from the same file as
external data; a bundle of format 1 (model.keras, and ONNX graphs with their own copies) still loads.
Any problem raises a BundleError whose message names the bundle and what is wrong. Nothing here
unpickles, and nothing imports TensorFlow until a Keras model is loaded or written: `reviewscore info`
and ONNX scoring never need it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import pipeline
from pipeline.model.calibration import UNCALIBRATED, Calibration, CalibrationError, read_calibration
from pipeline.model.extras import MissingExtra
from pipeline.model.monitoring.training_profile import ProfileError, TrainingProfile, read_profile
from pipeline.model.preprocessing import PreprocessingConfig, TextEncoder, Vocabulary, read_preprocessing
from schemas.bundle import (
    CALIBRATION_FILE,
    FORMAT_VERSION,
    KERAS_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    OCCLUSION_FILE,
    ONNX_FILE,
    PREPROCESSING_FILE,
    PROFILE_FILE,
    VOCABULARY_FILE,
    WEIGHTS_FILE,
    ManifestError,
    check_bundle_relative,
    default_score_label,
)
from schemas.manifest import Manifest, read_manifest

if TYPE_CHECKING:
    import keras


class BundleError(Exception):
    """A model bundle is missing, incomplete, tampered with or incompatible."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: Manifest
    preprocessing: PreprocessingConfig
    vocabulary: Vocabulary
    calibration: Calibration = UNCALIBRATED
    profile: TrainingProfile | None = None

    @classmethod
    def open(cls, path: str | Path) -> Bundle:
        path = Path(path)
        if not path.is_dir():
            raise BundleError(f"model bundle {path} is not a directory")
        manifest = _read_manifest(path)
        for name, expected in manifest.files.items():
            file = path / name
            if not file.is_file():
                raise BundleError(f"model bundle {path} is missing {name}")
            if sha256_file(file) != expected:
                raise BundleError(f"model bundle {path}: checksum mismatch for {name} (file changed after export)")
        try:
            preprocessing = read_preprocessing(_read_json(path / PREPROCESSING_FILE))
        except (ValueError, TypeError) as e:
            raise BundleError(f"model bundle {path}: invalid {PREPROCESSING_FILE}: {e}") from None
        try:
            vocabulary = Vocabulary.from_json((path / VOCABULARY_FILE).read_text(encoding="utf-8"))
        except ValueError as e:
            raise BundleError(f"model bundle {path}: invalid {VOCABULARY_FILE}: {e}") from None
        if len(vocabulary.tokens) > preprocessing.vocab_size:
            raise BundleError(
                f"model bundle {path}: {VOCABULARY_FILE} holds {len(vocabulary.tokens)} words but "
                f"{PREPROCESSING_FILE} allows {preprocessing.vocab_size}"
            )
        calibration = UNCALIBRATED
        if CALIBRATION_FILE in manifest.files:
            try:
                calibration = read_calibration(_read_json(path / CALIBRATION_FILE))
            except CalibrationError as e:
                raise BundleError(f"model bundle {path}: invalid {CALIBRATION_FILE}: {e}") from None
            if calibration.intercept and len(manifest.class_names) != 2:
                raise BundleError(f"model bundle {path}: {CALIBRATION_FILE} is Platt scaling, which needs two classes")
        profile = None
        if PROFILE_FILE in manifest.files:
            try:
                profile = read_profile(_read_json(path / PROFILE_FILE), len(manifest.class_names))
            except ProfileError as e:
                raise BundleError(f"model bundle {path}: invalid {PROFILE_FILE}: {e}") from None
        return cls(path, manifest, preprocessing, vocabulary, calibration, profile)

    @property
    def encoder(self) -> TextEncoder:
        return TextEncoder(self.preprocessing, self.vocabulary)

    @property
    def model_version(self) -> str:
        return self.manifest.version

    @property
    def has_onnx(self) -> bool:
        return ONNX_FILE in self.manifest.files

    def check_embedding_fits(self, rows: int) -> None:
        """The model's embedding must take exactly this vocabulary's ids."""
        if rows != len(self.vocabulary):
            raise BundleError(
                f"model bundle {self.path}: the vocabulary has {len(self.vocabulary)} ids but the model's embedding "
                f"takes {rows}; {VOCABULARY_FILE} does not belong to this model"
            )

    def check_outputs_fit(self, outputs: int) -> None:
        """A model with `outputs` logit columns must score the manifest's classes (one column: two classes)."""
        classes = 2 if outputs == 1 else outputs
        if classes != len(self.manifest.class_names):
            raise BundleError(
                f"model bundle {self.path}: the model outputs {classes} classes but the manifest names "
                f"{len(self.manifest.class_names)} ({', '.join(self.manifest.class_names)})"
            )

    def load_model(self) -> keras.Model:
        """The bare Keras model, loaded in safe mode and checked to accept this vocabulary's ids."""
        import keras

        import pipeline.model.layers  # noqa: F401  (registers the custom layers safe mode may rebuild)

        if KERAS_FILE in self.manifest.files:
            model = self._rebuild_model()
        else:
            try:
                model = keras.saving.load_model(self.path / MODEL_FILE, compile=False, safe_mode=True)
            except Exception as e:  # Keras raises many types for a bad archive; all mean the same here.
                raise BundleError(f"model bundle {self.path}: cannot load {MODEL_FILE}: {e}") from None
        self.check_embedding_fits(_embedding_rows(model, self.path))
        self.check_outputs_fit(_output_units(model, self.path))
        return model

    def _rebuild_model(self) -> keras.Model:
        """The Keras model from keras.json's config (safe mode) with its weights read from weights.bin."""
        import keras

        spec = _read_json(self.path / KERAS_FILE)
        try:
            config = {**spec["config"], "compile_config": None}
            model = keras.saving.deserialize_keras_object(config, safe_mode=True)
            weights = WeightsFile((self.path / WEIGHTS_FILE).read_bytes())
            arrays = [weights.tensor(entry) for entry in spec["weights"]]
            paths = [entry["path"] for entry in spec["weights"]]
            if paths != [variable.path for variable in model.weights]:
                raise ValueError("its weights are not the model's")
            model.set_weights(arrays)
        except Exception as e:  # Keras raises many types for a bad config; all mean the same here.
            raise BundleError(f"model bundle {self.path}: cannot load {KERAS_FILE}: {e}") from None
        return model


COLUMN_BLOCKS = 4
"""An LSTM's gates are four blocks of columns; an ONNX graph may hold them in another order."""
GATE_ORDERS = ((0, 1, 3, 2),)
"""The block orders a Keras weight may be found in among the graphs' weights (training/onnx_export.py
reorders Keras' (i, f, c, o) to (i, f, o, c)). Each is its own inverse, and a pure re-indexing: exact."""
SHARED_FROM_BYTES = 64
"""Smaller tensors are never looked for inside the stored ones (a few bytes match by chance)."""
PAGE = 4096
"""Large tensors start on a page boundary, so a runtime may map them straight from the file."""


class WeightsFile:
    """weights.bin: tensors' raw bytes (little-endian, C order), each distinct block once.

    `place` returns where a tensor's bytes lie, appending them only if no stored tensor holds them
    already (as a whole or as a contiguous part: a stacked tensor's slice, a matrix's rows), so the
    ONNX graphs and the Keras model read one copy. What reads it records offset, shape and dtype."""

    def __init__(self, data: bytes = b""):
        self.data = bytearray(data)

    def place(self, array: np.ndarray) -> int:
        """The byte offset of `array`'s bytes, stored now if they were not."""
        raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        found = self.find(raw, array.dtype.itemsize) if len(raw) >= SHARED_FROM_BYTES else -1
        if found >= 0:
            return found
        alignment = PAGE if len(raw) >= PAGE else 64
        self.data.extend(b"\0" * (-len(self.data) % alignment))
        offset = len(self.data)
        self.data.extend(raw)
        return offset

    def find(self, raw: bytes, itemsize: int) -> int:
        position = self.data.find(raw)
        while position >= 0 and position % itemsize:
            position = self.data.find(raw, position + 1)
        return position

    def place_keras(self, model: keras.Model) -> list[dict[str, Any]]:
        """keras.json's `weights`: each of the model's weights, by path, where it lies (and in which
        block order, if a graph stored it reordered)."""
        entries = []
        for variable in model.weights:
            array = np.asarray(variable.numpy())
            entry: dict[str, Any] = {"path": variable.path, "dtype": array.dtype.str, "shape": list(array.shape)}
            found = self.find(array.tobytes(), array.dtype.itemsize) if array.nbytes >= SHARED_FROM_BYTES else -1
            reorderable = found < 0 and array.nbytes >= SHARED_FROM_BYTES and array.ndim > 0
            for order in GATE_ORDERS if reorderable and array.shape[-1] % COLUMN_BLOCKS == 0 else ():
                found = self.find(_blocks(array, order).tobytes(), array.dtype.itemsize)
                if found >= 0:
                    entry["blocks"] = list(order)
                    break
            entry["offset"] = found if found >= 0 else self.place(array)
            entries.append(entry)
        return entries

    def tensor(self, entry: dict[str, Any]) -> np.ndarray:
        """The tensor an entry of keras.json names (a copy: the model owns it)."""
        dtype, shape = np.dtype(entry["dtype"]), tuple(entry["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if entry["offset"] < 0 or entry["offset"] + count * dtype.itemsize > len(self.data):
            raise ValueError(f"{entry['path']} lies outside {WEIGHTS_FILE}")
        array = np.frombuffer(self.data, dtype, count, entry["offset"]).reshape(shape)
        return _blocks(array, entry["blocks"]).copy() if "blocks" in entry else array.copy()

    def write(self, folder: Path) -> None:
        replace_file(folder, WEIGHTS_FILE, bytes(self.data))


def _blocks(array: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """`array`'s last axis cut into COLUMN_BLOCKS equal blocks, put in `order`."""
    return np.concatenate([np.split(array, COLUMN_BLOCKS, axis=-1)[k] for k in order], axis=-1)


def write_keras_model(folder: Path, model: keras.Model, weights: WeightsFile | None = None) -> None:
    """Write keras.json and weights.bin: the model's weights placed into `weights` (where a graph may
    have stored them already) and its config. Same model, same bytes: nothing timed or random inside."""
    import keras

    weights = weights or WeightsFile()
    spec = {"config": keras.saving.serialize_keras_object(model), "weights": weights.place_keras(model)}
    weights.write(folder)
    replace_file(folder, KERAS_FILE, json.dumps(spec, indent=1, sort_keys=True).encode("utf-8"))


def open_bundle(uri: str | Path, read_file: Callable[[str], bytes] | None = None) -> Bundle:
    """Open a bundle from a local path, or from a remote URI (gs://...) through `read_file`, which
    returns a remote file's bytes (the job's is Beam's filesystems: `pipeline.job.locations.read_file`).

    Keras and ONNX Runtime load models from local files only, so a remote bundle is copied into a
    per-process cache directory: every worker process downloads it once, however many threads use it.
    """
    uri = str(uri)
    if "://" not in uri:
        return Bundle.open(uri)
    if read_file is None:
        raise BundleError(f"model bundle {uri} is remote; copy it to a local folder and name that")
    if uri not in _LOCAL_COPIES:
        local = Path(tempfile.mkdtemp(prefix="reviewscore-bundle-"))
        try:
            manifest_bytes = read_file(f"{uri.rstrip('/')}/{MANIFEST_FILE}")
            names = [MANIFEST_FILE, *json.loads(manifest_bytes).get("files", {})]
            for name in names:
                check_bundle_relative(name)
                (local / name).write_bytes(read_file(f"{uri.rstrip('/')}/{name}"))
        except ManifestError as e:
            raise BundleError(f"model bundle {uri}: {e}") from None
        except (BundleError, MissingExtra):
            raise
        except Exception as e:
            raise BundleError(f"cannot copy model bundle {uri}: {e}") from None
        _LOCAL_COPIES[uri] = local
    return Bundle.open(_LOCAL_COPIES[uri])


_LOCAL_COPIES: dict[str, Path] = {}


def _embedding_rows(model: keras.Model, where: Path) -> int:
    import keras

    embeddings = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    if len(embeddings) != 1:
        raise BundleError(f"model bundle {where}: expected one Embedding layer, found {len(embeddings)}")
    return embeddings[0].input_dim


def _output_units(model: keras.Model, where: Path) -> int:
    """Logit columns of the model's head: Dense(K, softmax), or Dense(1, sigmoid) for two classes."""
    from pipeline.model.layers import output_head

    try:
        return output_head(model).units
    except ValueError as e:
        raise BundleError(f"model bundle {where}: {e}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"cannot read {path}: {e}") from None


def _read_manifest(path: Path) -> Manifest:
    if not (path / MANIFEST_FILE).is_file():
        raise BundleError(f"model bundle {path} has no {MANIFEST_FILE}")
    try:
        return read_manifest(_read_json(path / MANIFEST_FILE))
    except (ManifestError, TypeError) as e:
        raise BundleError(f"model bundle {path}: {e}") from None


def write_bundle(
    path: str | Path,
    *,
    model: keras.Model,
    preprocessing: PreprocessingConfig,
    vocabulary: Vocabulary,
    name: str,
    version: str | None,
    architecture: dict[str, Any],
    class_names: list[str],
    training_data: dict[str, Any],
    metrics: dict[str, Any],
    ordinal: bool = False,
    calibration: Calibration | None = None,
    profile: TrainingProfile | None = None,
    extra_files: tuple[str, ...] = (),
    write_onnx: Callable[[keras.Model, Path], dict[str, Any]] | None = None,
) -> Bundle:
    """Write a bundle directory; `extra_files` are files already written into it to be checksummed too.
    `write_onnx(model, folder)` exports model.onnx into the folder and returns the manifest's `onnx`
    entry (training/onnx_export.py's; build-time code that pipeline does not import); None: no model.onnx.

    The model is saved without optimizer state (it is for inference), which keeps the bundle small.
    """
    import keras

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    # Rebuilt from its config: keras.models.clone_model would carry the optimizer and its state, which
    # inference never reads and which would make the bundle several times larger.
    inference_model = keras.Model.from_config(model.get_config())
    inference_model.set_weights(model.get_weights())
    (path / VOCABULARY_FILE).write_text(vocabulary.to_json(), encoding="utf-8")
    (path / PREPROCESSING_FILE).write_text(
        json.dumps(preprocessing.model_dump(mode="json"), indent=2), encoding="utf-8"
    )
    written = [KERAS_FILE, WEIGHTS_FILE, VOCABULARY_FILE, PREPROCESSING_FILE]
    if calibration is not None:
        (path / CALIBRATION_FILE).write_text(
            json.dumps(calibration.model_dump(mode="json"), indent=2), encoding="utf-8"
        )
        written.append(CALIBRATION_FILE)
    if profile is not None:
        replace_file(path, PROFILE_FILE, _profile_bytes(profile))
        written.append(PROFILE_FILE)
    onnx = write_onnx(inference_model, path) if write_onnx else None
    if onnx and "file" in onnx:  # the export wrote keras.json and weights.bin with its graphs
        written.append(ONNX_FILE)
        if "occlusion" in onnx:
            written.append(OCCLUSION_FILE)
    else:
        write_keras_model(path, inference_model)
    files = {f: sha256_file(path / f) for f in (*written, *extra_files)}
    created = datetime.now(UTC)
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        name=name,
        version=version or f"{created:%Y.%m.%d}-{files[WEIGHTS_FILE][:8]}",
        created=created.isoformat(timespec="seconds"),
        architecture=architecture,
        class_names=class_names,
        training_data=training_data,
        metrics=metrics,
        files=files,
        reviewscore_version=pipeline.__version__,
        score_label=default_score_label(class_names),
        ordinal=ordinal,
        onnx=onnx,
    )
    _write_manifest(path, manifest)
    return Bundle.open(path)


def check_can_write(bundle: Bundle, names: Sequence[str], force: bool) -> None:
    """Refuse, before any work, to write `names` into a bundle that already has one of them (unless
    `force`) or whose folder is read-only.

    A bundle is immutable once written: every run records its manifest's checksum as lineage, and a
    rewritten file changes that checksum wherever its bytes change, so a file is rewritten only when
    asked. A file on disk that the manifest does not list counts too: writing would replace it."""
    present = [name for name in names if name in bundle.manifest.files or (bundle.path / name).exists()]
    if present and not force:
        them = "them" if len(present) > 1 else "it"
        raise BundleError(
            f"model bundle {bundle.path} already has {' and '.join(present)}; pass --force to rewrite {them}"
        )
    if not os.access(bundle.path, os.W_OK):
        raise BundleError(
            f"model bundle {bundle.path} is read-only, so {' and '.join(names)} cannot be written into it; "
            "copy the bundle to a folder you can write to"
        )


def replace_file(folder: Path, name: str, data: bytes) -> None:
    """Write `data` as folder/name all at once: beside it first, then renamed over it, so the bundle
    never holds half a file."""
    partial = folder / f".{name}.partial"
    partial.write_bytes(data)
    os.replace(partial, folder / name)


def add_profile(path: str | Path, profile: TrainingProfile) -> Bundle:
    """Give an existing bundle a training profile (or replace its profile: the caller checks that it may,
    `check_can_write`); the model and its version are unchanged, as a profile only describes data."""
    bundle = Bundle.open(path)
    if len(profile.statistics.labels) != len(bundle.manifest.class_names):
        raise BundleError(f"model bundle {bundle.path}: the profile's classes do not match the manifest's")
    replace_file(bundle.path, PROFILE_FILE, _profile_bytes(profile))
    return list_added_files(bundle, PROFILE_FILE)


def list_added_files(bundle: Bundle, *names: str, removed: Sequence[str] = (), **manifest_updates: Any) -> Bundle:
    """Checksum files just written into the bundle and rewrite the manifest to list them; then delete
    `removed` (files the new ones replace, so the bundle never lists a file it lacks)."""
    kept = {name: digest for name, digest in bundle.manifest.files.items() if name not in removed}
    files = {**kept, **{name: sha256_file(bundle.path / name) for name in names}}
    manifest = read_manifest({**bundle.manifest.model_dump(), "files": files, **manifest_updates})
    _write_manifest(bundle.path, manifest)
    for name in removed:
        (bundle.path / name).unlink(missing_ok=True)
    return Bundle.open(bundle.path)


def _write_manifest(folder: Path, manifest: Manifest) -> None:
    """manifest.json's bytes are a function of its fields alone (their order, two-space indent, floats as
    Python writes them), so the same fields always give the same checksum."""
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False)
    replace_file(folder, MANIFEST_FILE, text.encode("utf-8"))


def _profile_bytes(profile: TrainingProfile) -> bytes:
    """profile.json's bytes, likewise a function of the profile alone."""
    return json.dumps(profile.model_dump(mode="json"), indent=1).encode("utf-8")
