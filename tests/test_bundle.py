"""Bundle round trip and the checks that make a tampered or incompatible bundle unusable."""

from __future__ import annotations

import json
import os
import shutil

import keras
import numpy as np
import pytest

from pipeline.model.bundle import Bundle, BundleError, check_can_write, replace_file, sha256_file
from schemas.bundle import (
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
)

REVIEWS = ["A wonderful, moving film. Loved it!", "Dreadful and boring.", "", "the plot was fine"]


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(tiny_bundle.path, target)
    return target


def scores(bundle: Bundle, model: keras.Model) -> np.ndarray:
    return model.predict(bundle.encoder.encode(REVIEWS).padded(), verbose=0)[:, 0]


def test_round_trip_gives_identical_predictions(tiny_bundle, bundle_copy):
    original = Bundle.open(tiny_bundle.path)
    reopened = Bundle.open(bundle_copy)
    assert reopened.manifest == original.manifest
    assert reopened.preprocessing == original.preprocessing
    assert reopened.vocabulary == original.vocabulary
    np.testing.assert_array_equal(scores(original, original.load_model()), scores(reopened, reopened.load_model()))


def test_each_weight_is_stored_once_for_keras_and_both_graphs(tiny_bundle):
    """weights.bin holds the Keras model's weights and nothing twice: the graphs point into it, and the
    LSTM kernels the graphs stack and reorder are the ones the Keras model reads back."""
    model = tiny_bundle.load_model()
    keras_bytes = sum(np.asarray(w).nbytes for w in model.get_weights())
    stored = (tiny_bundle.path / WEIGHTS_FILE).stat().st_size
    assert MODEL_FILE not in tiny_bundle.manifest.files and not (tiny_bundle.path / MODEL_FILE).exists()
    assert keras_bytes <= stored < keras_bytes + 4096 * 8  # the graphs' constants are the Keras weights
    for graph in (ONNX_FILE, OCCLUSION_FILE):
        assert (tiny_bundle.path / graph).stat().st_size < 64 * 1024, f"{graph} holds weights of its own"
    spec = json.loads((tiny_bundle.path / KERAS_FILE).read_text())
    assert any("blocks" in entry for entry in spec["weights"])  # read from the graphs' reordered kernels
    assert [e["path"] for e in spec["weights"]] == [w.path for w in model.weights]


def test_format_1_bundle_still_loads_scores_the_same_and_converts_to_the_same_bytes(tiny_bundle, tmp_path):
    """A bundle of format 1 (model.keras, each graph with its weights inside) opens and scores as the
    same model does in the current format; export-onnx --force turns it into exactly the current files."""
    import onnx

    from pipeline.model.engines.base import ScorerSettings
    from pipeline.model.engines.calibrated import bundle_scorer
    from training.onnx_export import add_onnx

    old = tmp_path / "format1"
    shutil.copytree(tiny_bundle.path, old)
    tiny_bundle.load_model().save(old / MODEL_FILE)
    for graph in (ONNX_FILE, OCCLUSION_FILE):
        onnx.save(onnx.load(old / graph), old / graph)  # external data read in: weights inside again
    (old / KERAS_FILE).unlink()
    (old / WEIGHTS_FILE).unlink()
    manifest = json.loads((old / MANIFEST_FILE).read_text())
    files = {k: v for k, v in manifest["files"].items() if k not in (KERAS_FILE, WEIGHTS_FILE)}
    files.update({name: sha256_file(old / name) for name in (MODEL_FILE, ONNX_FILE, OCCLUSION_FILE)})
    edit_manifest(old, format_version=1, files=files)

    opened = Bundle.open(old)
    assert opened.manifest.format_version == 1
    rows = opened.encoder.encode(REVIEWS).rows()
    for engine in ("onnx", "keras"):
        expected = bundle_scorer(tiny_bundle, ScorerSettings(engine=engine)).logits(rows)
        np.testing.assert_array_equal(bundle_scorer(opened, ScorerSettings(engine=engine)).logits(rows), expected)

    converted = add_onnx(opened, force=True)
    assert converted.manifest.format_version == FORMAT_VERSION and not (old / MODEL_FILE).exists()
    for name in (WEIGHTS_FILE, KERAS_FILE, ONNX_FILE, OCCLUSION_FILE):
        assert converted.manifest.files[name] == tiny_bundle.manifest.files[name], name


def test_bundle_holds_no_pickle(tiny_bundle):
    for file in tiny_bundle.path.iterdir():
        data = file.read_bytes()
        assert b"__reduce__" not in data and not data.startswith(b"\x80\x04")


def test_manifest_describes_the_bundle(tiny_bundle):
    manifest = tiny_bundle.manifest
    assert manifest.format_version == FORMAT_VERSION
    assert manifest.class_names == ["negative", "positive"]
    assert manifest.architecture["name"] == "lstm"
    assert manifest.training_data["fingerprint"].startswith("sha256:")
    assert 0.0 <= manifest.metrics["validation_accuracy"] <= 1.0
    assert set(manifest.files) >= {KERAS_FILE, WEIGHTS_FILE, VOCABULARY_FILE, PREPROCESSING_FILE, "metrics.json"}


def test_tampered_vocabulary_is_rejected(bundle_copy):
    vocab = json.loads((bundle_copy / VOCABULARY_FILE).read_text())
    vocab["tokens"][0], vocab["tokens"][1] = vocab["tokens"][1], vocab["tokens"][0]
    (bundle_copy / VOCABULARY_FILE).write_text(json.dumps(vocab))
    with pytest.raises(BundleError, match=f"checksum mismatch for {VOCABULARY_FILE}"):
        Bundle.open(bundle_copy)


def test_tampered_weights_are_rejected(bundle_copy):
    with (bundle_copy / WEIGHTS_FILE).open("ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match=f"checksum mismatch for {WEIGHTS_FILE}"):
        Bundle.open(bundle_copy)


def test_missing_file_is_named(bundle_copy):
    (bundle_copy / PREPROCESSING_FILE).unlink()
    with pytest.raises(BundleError, match=f"missing {PREPROCESSING_FILE}"):
        Bundle.open(bundle_copy)


def edit_manifest(bundle_dir, **changes):
    manifest = json.loads((bundle_dir / MANIFEST_FILE).read_text())
    manifest.update(changes)
    (bundle_dir / MANIFEST_FILE).write_text(json.dumps(manifest))
    return manifest


def test_unknown_format_version_is_rejected(bundle_copy):
    edit_manifest(bundle_copy, format_version=FORMAT_VERSION + 1)
    with pytest.raises(BundleError, match=f"unknown bundle format version {FORMAT_VERSION + 1}"):
        Bundle.open(bundle_copy)


@pytest.mark.parametrize("name", ["../outside.json", "/etc/passwd", "sub/../../x", "~/.ssh/id_rsa"])
def test_manifest_paths_outside_the_bundle_are_rejected(bundle_copy, name):
    manifest = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    edit_manifest(bundle_copy, files={**manifest["files"], name: "0" * 64})
    with pytest.raises(BundleError, match="outside the bundle"):
        Bundle.open(bundle_copy)


def test_vocabulary_that_does_not_fit_the_model_is_rejected(bundle_copy):
    vocab = json.loads((bundle_copy / VOCABULARY_FILE).read_text())
    vocab["tokens"] = vocab["tokens"][:-3]
    (bundle_copy / VOCABULARY_FILE).write_text(json.dumps(vocab))
    manifest = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    from pipeline.model.bundle import sha256_file

    edit_manifest(bundle_copy, files={**manifest["files"], VOCABULARY_FILE: sha256_file(bundle_copy / VOCABULARY_FILE)})
    bundle = Bundle.open(bundle_copy)
    with pytest.raises(BundleError, match="does not belong to this model"):
        bundle.load_model()


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not a directory"):
        Bundle.open(tmp_path / "nothing")
    with pytest.raises(BundleError, match=r"has no manifest\.json"):
        Bundle.open(tmp_path)


def test_committed_default_is_calibrated_and_validated_by_movie():
    """The default that `make score` uses: intact, calibrated, its accuracy measured on unseen movies."""
    from pathlib import Path

    from pipeline.job.options import DEFAULT_MODEL

    default = Bundle.open(Path(__file__).resolve().parent.parent / DEFAULT_MODEL)
    assert default.calibration.method in ("temperature", "platt")
    split = default.manifest.metrics["validation_split"]
    assert split["kind"] == "grouped" and split["group_column"] == "movie_id"
    heldout = default.manifest.metrics["heldout"]
    assert heldout["ece"] < heldout["ece_uncalibrated"]


def test_committed_five_class_model_reads_treebank_and_plain_text_alike():
    """models/rt-sentiment5: intact, five ordered classes, scored by the compiled engine, and a
    sentence in treebank form gets exactly the probabilities of the same sentence as users write it."""
    from pathlib import Path

    import numpy as np

    from pipeline.model.engines.base import ScorerSettings
    from pipeline.model.engines.calibrated import make_scorer

    bundle = Bundle.open(Path(__file__).resolve().parent.parent / "models" / "rt-sentiment5")
    manifest = bundle.manifest
    assert len(manifest.class_names) == 5 and manifest.ordinal and manifest.score_label is None
    split = manifest.metrics["validation_split"]
    assert split["kind"] == "separate validation data" and split["held_out_by"].startswith("file")
    assert bundle.preprocessing.treebank and bundle.calibration.method == "temperature"
    scorer = make_scorer(
        bundle.load_model(), bundle.preprocessing.max_length, ScorerSettings(threads=1), bundle.calibration
    )
    assert scorer.engine == "xla"
    treebank = ["It does n't work , -LRB- sadly -RRB- .", "A wo n't - miss , ca n't - fail triumph ."]
    plain = ["It doesn't work, (sadly).", "A won't-miss, can't-fail triumph."]
    probabilities = scorer(bundle.encoder.encode(treebank + plain).rows())
    np.testing.assert_array_equal(probabilities[:2], probabilities[2:])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_a_file_the_bundle_has_is_rewritten_only_when_forced(bundle_copy):
    bundle = Bundle.open(bundle_copy)
    with pytest.raises(BundleError, match=r"already has profile\.json; pass --force to rewrite it"):
        check_can_write(bundle, [PROFILE_FILE], force=False)
    check_can_write(bundle, [PROFILE_FILE], force=True)
    check_can_write(bundle, ["notes.json"], force=False)
    (bundle_copy / "notes.json").write_text("{}")  # on disk though not listed: writing would replace it
    with pytest.raises(BundleError, match=r"already has notes\.json"):
        check_can_write(bundle, ["notes.json"], force=False)


def test_a_read_only_bundle_is_refused_before_any_work(bundle_copy):
    bundle_copy.chmod(0o555)
    try:
        if os.access(bundle_copy, os.W_OK):
            pytest.skip("this user may write into a read-only folder (root, with its override)")
        with pytest.raises(BundleError, match=r"is read-only, so notes\.json cannot be written"):
            check_can_write(Bundle.open(bundle_copy), ["notes.json"], force=True)
    finally:
        bundle_copy.chmod(0o755)


def test_a_file_is_replaced_whole_and_nothing_else_is_left(bundle_copy):
    before = sorted(p.name for p in bundle_copy.iterdir())
    replace_file(bundle_copy, PROFILE_FILE, b"{}")
    assert (bundle_copy / PROFILE_FILE).read_bytes() == b"{}"
    assert sorted(p.name for p in bundle_copy.iterdir()) == before


def test_a_manifest_that_records_when_model_onnx_was_exported_still_loads(bundle_copy):
    """Exports no longer record a time (the same weights give the same manifest); earlier ones did."""
    edit_manifest(bundle_copy, onnx={**Bundle.open(bundle_copy).manifest.onnx, "exported": "2026-01-01T00:00:00+00:00"})
    assert Bundle.open(bundle_copy).manifest.onnx["exported"] == "2026-01-01T00:00:00+00:00"
