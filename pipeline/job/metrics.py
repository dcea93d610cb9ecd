"""The Beam metrics namespace of the counters a scoring job reports while it runs.

The pipeline's steps (records read and scored) and the model handler (RunInference's own metrics,
the reviews each engine scored) count under it, and the launcher queries it for how often the model
was loaded. A module of its own so that both can import it: the graph imports the model handler.
"""

NAMESPACE = "reviewscore"
SHADOW_NAMESPACE = NAMESPACE + ".shadow"
"""RunInference's own metrics of the shadow model (--shadow-model): apart, so that the run's model
loads are counted alone (`model_loads`)."""
