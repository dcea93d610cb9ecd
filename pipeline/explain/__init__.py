"""Why a review got its label: word attributions (issue 14, in progress).

- `integrated_gradients.py`: integrated gradients on the embeddings of a model's RecurrentPlan,
  on TensorFlow (XLA-compiled); completeness measured per review. Not yet wired into the job:
  BENCHMARKS.md ("Issue 14 groundwork") has what it costs and how complete it is on real reviews.
"""
