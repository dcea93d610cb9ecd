"""Why a review got its label: word attributions (README "Why this label").

- `occlusion.py`: exact leave-one-word-out, scored on the job's own engine (the default; no
  TensorFlow needed);
- `integrated_gradients.py`: integrated gradients on the embeddings of a model's RecurrentPlan, on
  TensorFlow (XLA-compiled per padded width; ONNX Runtime computes no gradients), completeness
  measured per review;
- `explainer.py`: a bundle's explainer, one review explained until complete, the top_words column
  and the run's explanation statistics.

This module names the methods and their settings, and is cheap to import (no NumPy, pyarrow or
TensorFlow): the CLI reads it for `--help`, as it reads pipeline.model.engines.registry.
"""

OCCLUSION, INTEGRATED_GRADIENTS = METHODS = ("occlusion", "integrated-gradients")
"""The first is the default: measured cheaper at every review length (BENCHMARKS.md#occlusion-vs-ig)."""
STEPS = 32
"""Integrated-gradients steps when not set: a job's, and where `reviewscore explain` starts doubling
from, so that one review gets the same weights from both unless it needs more steps to be complete
(completeness and cost per number of steps: BENCHMARKS.md#ig-steps)."""
COMPLETENESS_TOLERANCE = 0.05
"""A review whose attributions miss F(x) - F(x') by more than this share is counted as incomplete."""
MOST_STEPS = 1024
"""The most integrated-gradients steps `explain_review` doubles up to."""
SAMPLE = 50
"""Reviews a run explains by default for its summary and report ("why these labels") when it does not
explain every review: chosen by review id, so the same input explains the same reviews
(what they cost a run: BENCHMARKS.md#sampled-why)."""
SAMPLE_WORDS = 5
"""Words per sampled review in its (unwritten) top_words; the summary ranks every word of the review."""
WORD_MIN_REVIEWS = 3
WORD_MIN_SHARE = 0.01
"""A word is ranked for a class ("why these labels") when it is in at least WORD_MIN_REVIEWS and
WORD_MIN_SHARE of the reviews explained with that label: a mean over one or two reviews is chance."""
WORDS_SHOWN = 15
"""Words per class in the summary and the report."""
