"""Scoring engines: the same model arithmetic, run by different libraries.

Every engine takes a sequence of int32 id rows and returns float32 (rows, outputs) logits in input
order (the final Dense layer before its sigmoid or softmax); `pipeline/scorer.py` chooses one and
calibrates its logits. Modules here import their library (TensorFlow, ONNX Runtime) when used, not
when imported, so naming an engine costs nothing.

- 'onnx' (`onnx_engine.py`): the bundle's `model.onnx`, exported at training time
  (`onnx_export.py`), run by ONNX Runtime. No TensorFlow: it starts in a fraction of a second.
- 'xla' (`xla.py`): the model rebuilt as one XLA-compiled loop. The fastest per review, after about
  five seconds of TensorFlow import and compilation.
- 'keras' (`keras_engine.py`): the Keras model itself, for any architecture.
- 'auto': chosen per job (`pipeline/scorer.py`, `choose_engine`).
"""

ENGINES = ("auto", "onnx", "xla", "keras")
