"""Why a review got its label: word attributions (README "Why this label").

- `occlusion.py`: exact leave-one-word-out, scored on the job's own engine (the default; no
  TensorFlow needed);
- `integrated_gradients.py`: integrated gradients on the embeddings of a model's RecurrentPlan, on
  TensorFlow (XLA-compiled per padded width; ONNX Runtime computes no gradients), completeness
  measured per review;
- `explainer.py`: a bundle's explainer, the top_words column and the run's explanation statistics.

This module names the methods and the default step count, and is cheap to import (no NumPy,
pyarrow or TensorFlow): the CLI reads it for `--help`, as it reads pipeline.engines' ENGINES.
"""

METHODS = ("occlusion", "integrated-gradients")
"""The first is the default: measured cheaper at every review length (BENCHMARKS.md, "What explanations cost")."""
STEPS = 32
"""Integrated-gradients steps when not set."""
