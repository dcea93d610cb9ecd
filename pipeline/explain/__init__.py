"""Why a review got its label: word attributions (README "Why this label").

- `integrated_gradients.py`: integrated gradients on the embeddings of a model's RecurrentPlan,
  on TensorFlow (XLA-compiled per padded width), completeness measured per review;
- `explainer.py`: a bundle's explainer, the top_words column and the run's explanation statistics.
ONNX Runtime computes no gradients, so explanations always run on TensorFlow, apart from scoring.
"""
