"""The model library: what a bundle is and how it scores and explains, with no Beam.

Training writes bundles with it, the Beam job (`pipeline.job`) scores with it, the CLI reads it for
`info` and `explain`, and a notebook can use it alone:

- `bundle.py`: a bundle folder (manifest, vocabulary, preprocessing, calibration, model files);
- `preprocessing.py` (with `contractions.py`, `stopwords.py`, `treebank.py`): the cleaning and
  encoding that training and scoring share;
- `engines/`: one small class per scoring library behind one interface, and the registry;
- `calibration.py`, `labels.py`: calibrated probabilities and the label each class gets;
- `explain/`: word attributions (occlusion, integrated gradients);
- `monitoring/`: score statistics, the training profile, drift checks and their charts;
- `layers.py`: the custom Keras layers a bundle's Keras model needs;
- `extras.py`, `native_log.py`, `progress.py`, `cache.py`: optional installs, TensorFlow's native
  logging, progress lines, the local cache folder.

Nothing here imports Beam (tests/test_architecture.py holds that).
"""
