"""Scoring engines: the same model arithmetic, run by different libraries.

Every engine takes a sequence of int32 id rows and returns float32 (rows, outputs) logits in input
order (the final Dense layer before its sigmoid or softmax). Modules here import their library
(TensorFlow, ONNX Runtime) when a model loads, not when imported, so naming an engine costs nothing.

- `base.py`: what every engine states (the Engine protocol) and the settings it loads with;
- `registry.py`: the engines by name, which everything else reads;
- `onnx_engine.py`, `xla.py`, `keras_engine.py`: one engine each (the bundle's model.onnx on ONNX
  Runtime; the model rebuilt as one XLA-compiled loop from `plan.py`; the Keras model itself);
- `choice.py`: which engine scores a job ('auto' and its rule);
- `calibrated.py`: a bundle's model on its engine, as calibrated probabilities;
- `length_order.py`: what every engine does around its model call.
"""
