"""Writing a trained model as ONNX, so that scoring needs ONNX Runtime instead of TensorFlow.

Done once, at training time (or by `reviewscore export-onnx` for an older bundle), from the same
RecurrentPlan the XLA engine is built from, and with the same arithmetic (`pipeline/model/engines/xla.py`):
- each direction's input projection is folded into a lookup table, `embedding @ kernel + bias`,
  written as constant nodes that ONNX Runtime folds once when its InferenceSession loads, so the file
  holds only the embedding and every step only gathers a row of the table;
- the recurrence is a Scan over time whose body is the LSTM cell in plain operators (MatMul,
  Sigmoid, Tanh, Mul, Add) on the batch, with the directions stacked on a leading axis (ids, states,
  weights and tables), so each operator runs once a step for both: fewer, larger operations than one
  set per direction, and per-operator overhead is what bounds a step at these sizes (what that saves in
  scoring and explaining: BENCHMARKS.md#levers);
- the backward direction reads each review reversed within its own length (ReverseSequence), so
  padding always comes last and only the readout (masked max and mean, or the last real state)
  looks at the mask.
ONNX's own LSTM operator computes the same, but slower: it projects every input step with a GEMM
instead of a table lookup (BENCHMARKS.md#onnx-graph). Gates are
reordered (i, f, o, c) so one Sigmoid covers three of them.

The weights live once, in the bundle's weights.bin: both graphs read their larger initializers from
it as ONNX external data, and the Keras model's keras.json points into it too (the LSTM's kernels where
the graphs stacked and reordered them; `pipeline.model.bundle.WeightsFile`).

Before the file is kept, ONNX Runtime scores a probe batch of ragged lengths and must agree with
Keras within EXPORT_TOLERANCE; the measured difference goes into the manifest. Build-time code:
needs the `onnx` package (the `train` extra); scoring needs only `onnxruntime`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.model.bundle import (
    Bundle,
    BundleError,
    WeightsFile,
    check_can_write,
    list_added_files,
    replace_file,
    write_keras_model,
)
from pipeline.model.engines.onnx_engine import OnnxScorer
from pipeline.model.engines.plan import RecurrentPlan, UnsupportedModel, difference_to_keras, plan_model
from pipeline.model.layers import BELOW_ANY_VALUE
from pipeline.model.wide import TRIGRAM_OFFSET, WIDE_IDS
from schemas.bundle import FORMAT_VERSION, KERAS_FILE, MODEL_FILE, OCCLUSION_FILE, ONNX_FILE, ONNX_FILES, WEIGHTS_FILE

OPSET = 18
EXPORT_TOLERANCE = 1e-5
PROBE_ROWS = 128
PROBE_LONGEST = 60
EXTERNAL_FROM_BYTES = 1024
"""Initializers this large or larger are read from weights.bin; smaller constants stay in the graph."""


def sigmoid_gates_first(weights: np.ndarray, units: int) -> np.ndarray:
    """Keras' gates (i, f, c, o) along the last axis, reordered (i, f, o, c)."""
    i, f, c, o = (weights[..., k * units : (k + 1) * units] for k in range(4))
    return np.concatenate([i, f, o, c], axis=-1).astype(np.float32)


def onnx_model(plan: RecurrentPlan):
    """The plan as an onnx.ModelProto: int32 ids (batch, time), right-padded with 0, to float32
    (batch, outputs) logits."""
    from onnx import TensorProto, helper

    nodes = _folded_table(plan) + _scoring_inputs(plan) + [_scan(plan, emit_states=False)]
    nodes += _by_direction(plan, [f"{name}_final" for name in _state_names(plan)], axis=0) + _readout(plan)
    constants = _constants(plan)
    if plan.wide is not None:
        nodes = _renamed_output(nodes, "logits", "deep_logits") + _wide(plan, "ids", "wide_logits", constants)
        nodes.append(helper.make_node("Add", ["deep_logits", "wide_logits"], ["logits"]))
    inputs = [helper.make_tensor_value_info("ids", TensorProto.INT32, ["batch", "time"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", plan.outputs])]
    return _checked_model(nodes, "reviewscore", inputs, outputs, constants)


def _renamed_output(nodes: list, name: str, new: str) -> list:
    """The nodes with the one that outputs `name` writing `new` instead."""
    for node in nodes:
        node.output[:] = [new if output == name else output for output in node.output]
    return nodes


def _wide(plan: RecurrentPlan, ids: str, out: str, constants: dict[str, np.ndarray]) -> list:
    """The wide part's logits `out` (batch, outputs) from `ids` (batch, time) int32: pipeline.model.wide's
    rows of each distinct n-gram, sorted (TopK, ascending) so that the first of each run of equal rows
    is counted once, their table rows summed (in float64, so that a review's sum does not depend on
    how far it was padded: occlusion's variants and scoring's rows are padded differently), times
    the classifier's rows for them. Adds its constants to `constants`."""
    from onnx import TensorProto, helper

    node, wide = helper.make_node, plan.wide
    v, buckets = wide.ngrams.vocabulary, wide.ngrams.buckets
    constants.update(
        wide_table=wide.table,
        wide_kernel=wide.kernel,
        wide_v=np.array(v, np.int64),
        wide_vv=np.array(v * v, np.int64),
        wide_buckets=np.array(buckets, np.int64),
        wide_offset=np.array(TRIGRAM_OFFSET, np.int64),
        wide_zero=np.array(0, np.int64),
        wide_start0=np.array([0], np.int64),
        wide_start1=np.array([1], np.int64),
        wide_start2=np.array([2], np.int64),
        wide_end=np.array([np.iinfo(np.int64).max], np.int64),
        wide_end1=np.array([-1], np.int64),
        wide_end2=np.array([-2], np.int64),
        wide_axis1=np.array([1], np.int64),
        wide_axis2=np.array([2], np.int64),
    )

    p = f"{out}_"
    nodes = _wide_rows(plan, ids, p)
    nodes += [
        node("Where", [f"{p}real", f"{p}index", "wide_zero"], [f"{p}kept"]),
        node("Shape", [f"{p}kept"], [f"{p}count"], start=1, end=2),
        node("TopK", [f"{p}kept", f"{p}count"], [f"{p}ordered", f"{p}order"], axis=1, largest=0, sorted=1),
        node("Slice", [f"{p}ordered", "wide_start1", "wide_end", "wide_axis1"], [f"{p}next"]),
        node("Slice", [f"{p}ordered", "wide_start0", "wide_end1", "wide_axis1"], [f"{p}previous"]),
        node("Equal", [f"{p}next", f"{p}previous"], [f"{p}same"]),
        node("Not", [f"{p}same"], [f"{p}new"]),
        node("Slice", [f"{p}ordered", "wide_start0", "wide_start1", "wide_axis1"], [f"{p}head"]),
        node("Greater", [f"{p}head", "wide_zero"], [f"{p}head_new"]),  # the first row is new unless it is 0
        node("Concat", [f"{p}head_new", f"{p}new"], [f"{p}first"], axis=1),
        node("Greater", [f"{p}ordered", "wide_zero"], [f"{p}not_padding"]),
        node("And", [f"{p}first", f"{p}not_padding"], [f"{p}counted"]),
        node("Cast", [f"{p}counted"], [f"{p}counted_d"], to=TensorProto.DOUBLE),
        node("Unsqueeze", [f"{p}counted_d", "wide_axis2"], [f"{p}weights"]),
        node("Gather", ["wide_table", f"{p}ordered"], [f"{p}values"], axis=0),
        node("Cast", [f"{p}values"], [f"{p}values_d"], to=TensorProto.DOUBLE),
        node("Mul", [f"{p}values_d", f"{p}weights"], [f"{p}weighted"]),
        # summed in float64: the same rows give the same float32 sum at any padding and batch width
        node("ReduceSum", [f"{p}weighted", "wide_axis1"], [f"{p}sums_d"], keepdims=0),
        node("Cast", [f"{p}sums_d"], [f"{p}sums"], to=TensorProto.FLOAT),
        node("MatMul", [f"{p}sums", "wide_kernel"], [out]),
    ]
    return nodes


def _state_names(plan: RecurrentPlan) -> list[str]:
    """The Scan's carried state, each (directions, batch, units): h, c, and the pooled readout's
    running max and sum."""
    return ["h", "c", *(("top", "total") if plan.readout == "pool" else ())]


def _mask_names(plan: RecurrentPlan) -> list[str]:
    """The Scan's per-step mask inputs, each (1 or directions, batch, 1): with a pooled readout, `floor`
    (0 on a real token, -inf on padding: added before the running max) and `weight` (1 or 0: multiplies
    before the running sum); else `real` (bool: keep the new state or the last real one)."""
    return ["floor", "weight"] if plan.readout == "pool" else ["real"]


def _constants(plan: RecurrentPlan) -> dict[str, np.ndarray]:
    """The graph's initializers, by name: the plan's weights (gates reordered, directions stacked on a
    leading axis) and small constants."""
    units = plan.units
    constants = {
        "embedding": plan.embedding,
        "kernels": np.stack([sigmoid_gates_first(d.kernel, units) for d in plan.directions]),
        "biases": np.stack([sigmoid_gates_first(d.bias, units)[None, :] for d in plan.directions]),
        "recurrents": np.stack([sigmoid_gates_first(d.recurrent_kernel, units) for d in plan.directions]),
        "dense_kernel": plan.dense_kernel,
        "dense_bias": plan.dense_bias,
        "gate_split": np.array([3 * units, units], np.int64),
        "sigmoid_split": np.array([units, units, units], np.int64),
        "table_shape": np.array([-1, 4 * units], np.int64),
        "directions": np.array([len(plan.directions)], np.int64),
        "units": np.array([units], np.int64),
        "zero": np.array(0, np.int32),
        "one": np.array(1, np.int32),
        "zero_f": np.array(0.0, np.float32),
        "minus_inf": np.array(-np.inf, np.float32),
        "axis0": np.array([0], np.int64),
        "axis1": np.array([1], np.int64),
        "mask_axes": np.array([1, 3], np.int64),
    }
    for d in range(1, len(plan.directions)):  # direction d's rows of the stacked table start here
        constants[f"offset{d}"] = np.array(d * plan.vocabulary, np.int32)
    return constants


def _folded_table(plan: RecurrentPlan) -> list:
    """The directions' `embedding @ kernel + bias` tables, stacked into one (directions x vocabulary,
    4 x units) table whose row d x vocabulary + id is direction d's: constant nodes, which ONNX Runtime
    folds when an InferenceSession loads."""
    from onnx import helper

    return [
        helper.make_node("MatMul", ["embedding", "kernels"], ["projected"]),
        helper.make_node("Add", ["projected", "biases"], ["tables"]),
        helper.make_node("Reshape", ["tables", "table_shape"], ["table"]),
    ]


def _step(plan: RecurrentPlan, emit_states: bool):
    """The Scan body, one time step of every direction at once: the directions are stacked on the
    leading axis of the ids, states and weights, so each operator runs once per step for all of them.
    With `emit_states`, h and c after the step are also scan outputs (the occlusion graph's per-step
    states)."""
    from onnx import TensorProto, helper

    node, pool = helper.make_node, plan.readout == "pool"
    h, c = ("h_out", "c_out") if pool else ("h_new", "c_new")  # pooled: h and c run on (padding comes last)
    step = [
        node("Gather", ["table", "ids_t"], ["x"]),
        node("MatMul", ["h_in", "recurrents"], ["r"]),
        node("Add", ["x", "r"], ["z"]),
        node("Split", ["z", "gate_split"], ["zs", "zc"], axis=2),
        node("Sigmoid", ["zs"], ["s"]),
        node("Tanh", ["zc"], ["g"]),
        node("Split", ["s", "sigmoid_split"], ["i", "f", "o"], axis=2),
        node("Mul", ["f", "c_in"], ["fc"]),
        node("Mul", ["i", "g"], ["ig"]),
        node("Add", ["fc", "ig"], [c]),
        node("Tanh", [c], ["tc"]),
        node("Mul", ["o", "tc"], [h]),
    ]
    if pool:  # running max and sum over real steps
        step += [
            node("Add", [h, "floor_t"], ["floored"]),
            node("Max", ["top_in", "floored"], ["top_out"]),
            node("Mul", [h, "weight_t"], ["summand"]),
            node("Add", ["total_in", "summand"], ["total_out"]),
        ]
    else:  # keep the state of the last real token
        step += [
            node("Where", ["real_t", h, "h_in"], ["h_out"]),
            node("Where", ["real_t", c, "c_in"], ["c_out"]),
        ]
    emitted = ["h_step", "c_step"] if emit_states else []
    if emit_states:
        step += [node("Identity", [h], ["h_step"]), node("Identity", [c], ["c_step"])]
    state, stacked = _state_names(plan), ["directions", "batch", plan.units]
    mask_type = TensorProto.FLOAT if plan.readout == "pool" else TensorProto.BOOL
    return helper.make_graph(
        step,
        "step",
        [helper.make_tensor_value_info(f"{name}_in", TensorProto.FLOAT, stacked) for name in state]
        + [helper.make_tensor_value_info("ids_t", TensorProto.INT32, ["directions", "batch"])]
        + [helper.make_tensor_value_info(f"{m}_t", mask_type, ["masks", "batch", 1]) for m in _mask_names(plan)],
        [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, stacked) for name in state]
        + [helper.make_tensor_value_info(name, TensorProto.FLOAT, stacked) for name in emitted],
    )


def _scan(plan: RecurrentPlan, emit_states: bool, suffix: str = ""):
    """The recurrence over time from the `{state}_init` states, on `ids_steps` (time, directions, batch)
    and the `{mask}_steps` masks (time, 1 or directions, batch, 1); outputs `{state}_final{suffix}`, and
    with `emit_states` `h_steps{suffix}`, `c_steps{suffix}` (time, directions, batch, units)."""
    from onnx import helper

    state = _state_names(plan)
    scan_inputs = ["ids_steps"] + [f"{m}_steps" for m in _mask_names(plan)]
    steps = [f"h_steps{suffix}", f"c_steps{suffix}"] if emit_states else []
    return helper.make_node(
        "Scan",
        [f"{name}_init" for name in state] + scan_inputs,
        [f"{name}_final{suffix}" for name in state] + steps,
        body=_step(plan, emit_states),
        num_scan_inputs=len(scan_inputs),
    )


def _masks(plan: RecurrentPlan, real: str) -> list:
    """The Scan's mask inputs (`_mask_names`) from `real`, a bool (time, 1 or directions, batch, 1)."""
    from onnx import TensorProto, helper

    node = helper.make_node
    if plan.readout != "pool":
        return [node("Identity", [real], ["real_steps"])]
    return [
        node("Where", [real, "zero_f", "minus_inf"], ["floor_steps"]),
        node("Cast", [real], ["weight_steps"], to=TensorProto.FLOAT),
    ]


def _scoring_inputs(plan: RecurrentPlan) -> list:
    """From `ids`: the lengths, the mask shared by the directions, the time-major ids of each direction
    (the backward one reversed within each review's length, so padding comes last in both) offset to
    its rows of the table, and the zero states (the running max from lows)."""
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node
    nodes = [
        node("Greater", ["ids", "zero"], ["real"]),  # (batch, time)
        node("Cast", ["real"], ["real_count"], to=TensorProto.INT32),
        node("ReduceSum", ["real_count", "axis1"], ["counted"], keepdims=0),
        node("Max", ["counted", "one"], ["lengths"]),  # an empty row still divides by one
        node("Transpose", ["real"], ["real_tb"], perm=[1, 0]),
        node("Unsqueeze", ["real_tb", "mask_axes"], ["real_mask"]),  # (time, 1, batch, 1)
        node("Transpose", ["ids"], ["ids_tb"], perm=[1, 0]),
        node("Unsqueeze", ["ids_tb", "axis1"], ["ids_t0"]),  # (time, 1, batch)
        node("Shape", ["ids"], ["batch"], end=1),
        node("Concat", ["directions", "batch", "units"], ["state_shape"], axis=0),
        node("ConstantOfShape", ["state_shape"], ["zeros"], value=numpy_helper.from_array(np.zeros(1, np.float32))),
        node(
            "ConstantOfShape",
            ["state_shape"],
            ["lows"],
            value=numpy_helper.from_array(np.full(1, BELOW_ANY_VALUE, np.float32)),
        ),
    ]
    nodes += [node("Identity", ["lows" if name == "top" else "zeros"], [f"{name}_init"]) for name in _state_names(plan)]
    if len(plan.directions) == 2:
        nodes += [
            node("Cast", ["counted"], ["lengths64"], to=TensorProto.INT64),
            node("ReverseSequence", ["ids", "lengths64"], ["reversed"], batch_axis=0, time_axis=1),
            node("Add", ["reversed", "offset1"], ["reversed_rows"]),  # padding too: it is never read
            node("Transpose", ["reversed_rows"], ["ids_tb1"], perm=[1, 0]),
            node("Unsqueeze", ["ids_tb1", "axis1"], ["ids_t1"]),
            node("Concat", ["ids_t0", "ids_t1"], ["ids_steps"], axis=1),
        ]
    else:
        nodes.append(node("Identity", ["ids_t0"], ["ids_steps"]))
    return nodes + _masks(plan, "real_mask")


def _by_direction(plan: RecurrentPlan, names: list[str], axis: int) -> list:
    """Each stacked `name` cut along `axis` into `{name}{d}`, one per direction."""
    from onnx import helper

    node, count, nodes = helper.make_node, len(plan.directions), []
    axes = f"axis{axis}"
    for name in names:
        if count == 1:
            nodes.append(node("Squeeze", [name, axes], [f"{name}0"]))
            continue
        nodes.append(node("Split", [name], [f"{name}{d}_1" for d in range(count)], axis=axis, num_outputs=count))
        nodes += [node("Squeeze", [f"{name}{d}_1", axes], [f"{name}{d}"]) for d in range(count)]
    return nodes


def _readout(plan: RecurrentPlan) -> list:
    """The features (pooled, or each direction's last real state) through the final Dense, to logits."""
    from onnx import TensorProto, helper

    node, count, nodes = helper.make_node, len(plan.directions), []
    if plan.readout == "pool":  # [max of each direction..., mean of each direction...], as Keras concatenates them
        nodes += [
            node("Cast", ["lengths"], ["lengths_f"], to=TensorProto.FLOAT),
            node("Unsqueeze", ["lengths_f", "axis1"], ["lengths_column"]),
        ]
        nodes += [node("Div", [f"total_final{d}", "lengths_column"], [f"mean{d}"]) for d in range(count)]
        features = [f"top_final{d}" for d in range(count)] + [f"mean{d}" for d in range(count)]
    else:
        features = [f"h_final{d}" for d in range(count)]
    return [
        *nodes,
        node("Concat", features, ["features"], axis=1),
        node("MatMul", ["features", "dense_kernel"], ["projected_features"]),
        node("Add", ["projected_features", "dense_bias"], ["logits"]),
    ]


def _wide_rows(plan: RecurrentPlan, ids: str, p: str) -> list:
    """From `ids`, `{p}index` (batch, n-grams) int64, each n-gram's table row (pipeline.model.wide's
    arithmetic), and `{p}real`, whether none of its ids is padding."""
    from onnx import TensorProto, helper

    node, max_n = helper.make_node, plan.wide.ngrams.max_n

    def cut(name: str, start: str, end: str, new: str) -> list:  # new = name[:, start:end]
        return [
            node("Slice", [name, f"wide_{start}", f"wide_{end}", "wide_axis1"], [new]),
            node("Greater", [new, "wide_zero"], [f"{new}_real"]),
        ]

    nodes = [
        node("Cast", [ids], [f"{p}ids"], to=TensorProto.INT64),
        node("Greater", [f"{p}ids", "wide_zero"], [f"{p}r1"]),
    ]
    rows, real = [f"{p}ids"], [f"{p}r1"]
    if max_n >= 2:
        nodes += cut(f"{p}ids", "start0", "end1", f"{p}a2") + cut(f"{p}ids", "start1", "end", f"{p}b2")
        nodes += [
            node("Mul", [f"{p}a2", "wide_v"], [f"{p}av2"]),
            node("Add", [f"{p}av2", f"{p}b2"], [f"{p}code2"]),
            node("Mod", [f"{p}code2", "wide_buckets"], [f"{p}bucket2"]),
            node("Add", [f"{p}bucket2", "wide_v"], [f"{p}rows2"]),
            node("And", [f"{p}a2_real", f"{p}b2_real"], [f"{p}r2"]),
        ]
        rows.append(f"{p}rows2")
        real.append(f"{p}r2")
    if max_n >= 3:
        nodes += cut(f"{p}ids", "start0", "end2", f"{p}a3") + cut(f"{p}ids", "start1", "end1", f"{p}b3")
        nodes += cut(f"{p}ids", "start2", "end", f"{p}c3")
        nodes += [
            node("Mul", [f"{p}a3", "wide_vv"], [f"{p}avv3"]),
            node("Mul", [f"{p}b3", "wide_v"], [f"{p}bv3"]),
            node("Add", [f"{p}avv3", f"{p}bv3"], [f"{p}ab3"]),
            node("Add", [f"{p}ab3", f"{p}c3"], [f"{p}abc3"]),
            node("Add", [f"{p}abc3", "wide_offset"], [f"{p}code3"]),
            node("Mod", [f"{p}code3", "wide_buckets"], [f"{p}bucket3"]),
            node("Add", [f"{p}bucket3", "wide_v"], [f"{p}rows3"]),
            node("And", [f"{p}a3_real", f"{p}b3_real"], [f"{p}ab3_real"]),
            node("And", [f"{p}ab3_real", f"{p}c3_real"], [f"{p}r3"]),
        ]
        rows.append(f"{p}rows3")
        real.append(f"{p}r3")
    return [*nodes, node("Concat", rows, [f"{p}index"], axis=1), node("Concat", real, [f"{p}real"], axis=1)]


def occlusion_model(plan: RecurrentPlan):
    """The plan's recurrence with its states open, as an onnx.ModelProto: what exact occlusion reuses
    (pipeline/model/explain/occlusion.py).

    Each row carries one job per direction, each from its own state: `ids{d}` (batch, time) int32,
    the tokens direction d reads, in the order it reads them, right-padded with 0; `h{d}`, `c{d}`
    (batch, units) the state it starts from; with a pooled readout, also `top{d}` and `total{d}`, the
    running max and sum of the steps already read, and `count{d}` (batch, 1), the length of the
    review the job belongs to (the mean's divisor); `states`, a bool scalar. Outputs: `part{d}`
    (batch, outputs), the job's share of the logits (the final Dense is linear, so a review's logits
    are the sum of its directions' shares; the bias is in part0), and `h{d}_steps`, `c{d}_steps`
    (time, batch, units), the state after every step (meaningful up to each job's length) when
    `states` is true, else empty: collecting them costs a quarter of the run, and only the full
    pass needs them. Inside, the directions are stacked as in the scoring graph (`_step`).
    """
    from onnx import TensorProto, helper

    count, units, matrix = len(plan.directions), plan.units, ["batch", plan.units]
    constants = _constants(plan)
    blocks = 2 * count if plan.readout == "pool" else count  # the Dense kernel's rows: [top..., mean...] or [h...]
    for b in range(blocks):
        constants[f"dense{b}"] = np.ascontiguousarray(plan.dense_kernel[b * units : (b + 1) * units])
    constants["no_steps"] = np.zeros((0, 0, units), np.float32)
    inputs, nodes = _occlusion_inputs(plan)
    steps = [f"{n}{d}_steps" for d in range(count) for n in ("h", "c")]
    finals = [f"{name}_final" for name in _state_names(plan)]
    nodes = _folded_table(plan) + nodes + [_open_scan(plan, finals, steps)] + _by_direction(plan, finals, axis=0)
    outputs = [
        helper.make_tensor_value_info(f"part{d}", TensorProto.FLOAT, ["batch", plan.outputs]) for d in range(count)
    ]
    outputs += [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["time", *matrix]) for name in steps]
    shares = _shares(plan)
    if plan.wide is not None:  # the first share also holds the wide logits of the row's whole review
        inputs.append(helper.make_tensor_value_info(WIDE_IDS, TensorProto.INT32, ["batch", "wide_time"]))
        shares = _renamed_output(shares, "part0", "deep_part0") + _wide(plan, WIDE_IDS, "wide_part0", constants)
        shares.append(helper.make_node("Add", ["deep_part0", "wide_part0"], ["part0"]))
    return _checked_model(nodes + shares, "reviewscore_occlusion", inputs, outputs, constants)


def _occlusion_inputs(plan: RecurrentPlan) -> tuple[list, list]:
    """The occlusion graph's inputs, and from them the Scan's: each direction's time-major ids (offset
    to its rows of the table) and mask, and its states, stacked."""
    from onnx import TensorProto, helper

    node, matrix, inputs, nodes = helper.make_node, ["batch", plan.units], [], []
    count, state = len(plan.directions), _state_names(plan)
    inputs.append(helper.make_tensor_value_info("states", TensorProto.BOOL, []))
    for d in range(count):
        inputs += [helper.make_tensor_value_info(f"ids{d}", TensorProto.INT32, ["batch", "time"])]
        inputs += [helper.make_tensor_value_info(f"{n}{d}", TensorProto.FLOAT, matrix) for n in state]
        if plan.readout == "pool":
            inputs += [helper.make_tensor_value_info(f"count{d}", TensorProto.FLOAT, ["batch", 1])]
        rows = f"ids{d}"
        if d:
            rows = f"ids{d}_rows"
            nodes.append(node("Add", [f"ids{d}", f"offset{d}"], [rows]))
        nodes += [
            node("Greater", [f"ids{d}", "zero"], [f"real{d}"]),
            node("Transpose", [f"real{d}"], [f"real{d}_tb"], perm=[1, 0]),
            node("Unsqueeze", [f"real{d}_tb", "mask_axes"], [f"real{d}_mask"]),  # (time, 1, batch, 1)
            node("Transpose", [rows], [f"ids{d}_tb"], perm=[1, 0]),
            node("Unsqueeze", [f"ids{d}_tb", "axis1"], [f"ids{d}_t"]),  # (time, 1, batch)
        ]
        nodes += [node("Unsqueeze", [f"{n}{d}", "axis0"], [f"{n}{d}_stacked"]) for n in state]
    nodes += [
        node("Concat", [f"ids{d}_t" for d in range(count)], ["ids_steps"], axis=1),
        node("Concat", [f"real{d}_mask" for d in range(count)], ["real_mask"], axis=1),
    ]
    nodes += [node("Concat", [f"{n}{d}_stacked" for d in range(count)], [f"{n}_init"], axis=0) for n in state]
    return inputs, nodes + _masks(plan, "real_mask")


def _open_scan(plan: RecurrentPlan, finals: list[str], steps: list[str]):
    """The recurrence from the given states: an If on `states` between a Scan that also collects
    every step's h and c (cut per direction) and one that does not (its step outputs empty)."""
    from onnx import TensorProto, helper

    node = helper.make_node

    def branch(emit: bool):
        suffix = "_with" if emit else "_without"
        if emit:
            cut = _by_direction(plan, [f"h_steps{suffix}", f"c_steps{suffix}"], axis=1)
            renamed = [
                node("Identity", [f"{n}_steps{suffix}{d}"], [f"{n}{d}_steps{suffix}"])
                for d in range(len(plan.directions))
                for n in ("h", "c")
            ]
        else:
            cut, renamed = [], [node("Identity", ["no_steps"], [f"{name}{suffix}"]) for name in steps]
        outputs = [helper.make_tensor_value_info(f"{name}{suffix}", TensorProto.FLOAT, None) for name in finals + steps]
        return helper.make_graph([_scan(plan, emit, suffix), *cut, *renamed], f"scan{suffix}", [], outputs)

    return node("If", ["states"], finals + steps, then_branch=branch(True), else_branch=branch(False))


def _shares(plan: RecurrentPlan) -> list:
    """Each direction's share of the logits from its final states (the bias in part0's)."""
    from onnx import helper

    node, count, nodes = helper.make_node, len(plan.directions), []
    for d in range(count):
        share = f"part{d}" if d else "unbiased0"
        if plan.readout == "pool":
            nodes += [
                node("Div", [f"total_final{d}", f"count{d}"], [f"mean{d}"]),
                node("MatMul", [f"top_final{d}", f"dense{d}"], [f"top_part{d}"]),
                node("MatMul", [f"mean{d}", f"dense{count + d}"], [f"mean_part{d}"]),
                node("Add", [f"top_part{d}", f"mean_part{d}"], [share]),
            ]
        else:
            nodes.append(node("MatMul", [f"h_final{d}", f"dense{d}"], [share]))
    return [*nodes, node("Add", ["unbiased0", "dense_bias"], ["part0"])]


def _checked_model(nodes: list, name: str, inputs: list, outputs: list, constants: dict[str, np.ndarray]):
    """The graph as a checked onnx.ModelProto of this module's opset."""
    import onnx
    from onnx import helper, numpy_helper

    initializers = [numpy_helper.from_array(np.asarray(v), k) for k, v in constants.items()]
    graph = helper.make_graph(nodes, name, inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="reviewscore")
    model.ir_version = 8  # readable by every ONNX Runtime since 1.10
    onnx.checker.check_model(model)
    return model


def export_onnx(model, folder: Path, occlusion: bool = True) -> dict[str, Any]:
    """Write `model` (Keras) into `folder`: model.onnx, checked against Keras, and (with `occlusion`) its
    occlusion graph, checked against model.onnx, with weights.bin and keras.json, which hold every
    weight once for the graphs and the Keras model; returns what the manifest records.

    Raises UnsupportedModel for an architecture the plan cannot read (nothing is written), ValueError
    if a check fails (what was written is removed).
    """
    plan = plan_model(model)
    graphs = {ONNX_FILE: onnx_model(plan), **({OCCLUSION_FILE: occlusion_model(plan)} if occlusion else {})}
    weights = WeightsFile()
    for graph in graphs.values():  # first: the Keras weights are then found among the graphs'
        _read_from_weights_file(graph, weights)
    write_keras_model(folder, model, weights)
    for name, graph in graphs.items():
        replace_file(folder, name, graph.SerializeToString())
    try:
        return _checked(model, plan, folder, occlusion)
    except ValueError:
        for name in (*graphs, WEIGHTS_FILE, KERAS_FILE):
            (folder / name).unlink(missing_ok=True)
        raise


def _read_from_weights_file(graph, weights: WeightsFile) -> None:
    """Move the graph's larger initializers into `weights`, the graph keeping where each lies."""
    from onnx import TensorProto, numpy_helper
    from onnx.external_data_helper import set_external_data

    for tensor in graph.graph.initializer:
        array = numpy_helper.to_array(tensor)
        if array.nbytes < EXTERNAL_FROM_BYTES:
            continue
        set_external_data(tensor, WEIGHTS_FILE, weights.place(array), array.nbytes)
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL


def _checked(model, plan: RecurrentPlan, folder: Path, occlusion: bool) -> dict[str, Any]:
    """The written graphs' checks (ValueError past EXPORT_TOLERANCE): the manifest's `onnx` entry."""
    scorer = OnnxScorer.from_file(folder / ONNX_FILE, PROBE_ROWS, threads=1)
    difference = difference_to_keras(scorer, model, plan.vocabulary, PROBE_ROWS, PROBE_LONGEST)
    if not difference <= EXPORT_TOLERANCE:
        raise ValueError(f"the ONNX export differs from Keras by {difference:.1e} on the probe batch")
    written = {
        "file": ONNX_FILE,
        "opset": OPSET,
        "embedding_rows": plan.vocabulary,
        "checked_against_keras": {
            "rows": PROBE_ROWS,
            "tokens": f"1-{PROBE_LONGEST} per row",
            "max_abs_probability_difference": difference,
        },
    }
    if occlusion:
        scorer.occlusion_path = folder / OCCLUSION_FILE
        occlusion_difference = occlusion_difference_to_scoring(scorer, plan.vocabulary)
        if not occlusion_difference <= EXPORT_TOLERANCE:
            raise ValueError(f"the occlusion graph differs from model.onnx by {occlusion_difference:.1e}")
        written["occlusion"] = {"file": OCCLUSION_FILE, "max_abs_logit_difference": occlusion_difference}
    return written


def occlusion_difference_to_scoring(scorer: OnnxScorer, vocabulary: int, seed: int = 0) -> float:
    """Largest |logit difference| between model.onnx and its occlusion graph on the probe reviews read
    whole from the zero state (their parts summed): the same model, or not."""
    from pipeline.model.explain.occlusion import full_pass_logits

    rng = np.random.default_rng(seed)
    probe = [
        rng.integers(1, vocabulary, size=n, dtype=np.int32) for n in rng.integers(1, PROBE_LONGEST + 1, PROBE_ROWS)
    ]
    return float(np.max(np.abs(full_pass_logits(scorer.recurrence(), probe) - scorer(probe))))


def write_onnx(model, folder: Path) -> dict[str, Any]:
    """Export model.onnx, occlusion.onnx, weights.bin and keras.json into a bundle folder; the manifest's
    `onnx` entry (why not, if it cannot: then nothing is written). `pipeline.model.bundle.write_bundle`
    is given this function: pipeline never imports training."""
    try:
        return export_onnx(model, folder)
    except UnsupportedModel as e:
        return {"unsupported": str(e)}


def add_onnx(bundle: Bundle, force: bool = False) -> Bundle:
    """Give an existing bundle its model.onnx and occlusion.onnx: export, then rewrite the manifest's checksums.

    The graphs read their weights from weights.bin, which keras.json reads too, so a bundle of format
    1 comes out in the current format: its model.keras is replaced by keras.json and weights.bin (the
    same weights, so the same scores) and dropped once the manifest no longer lists it.

    A bundle that has them already is refused unless `force` (`check_can_write`). The files are
    exported into a staging folder and moved in only once both passed their checks, so a failed export
    leaves the bundle as it was. They hold the graph and the weights alone (no time, path or random
    name), and the manifest records no time either: the same weights give the same bytes, so a forced
    export of an unchanged model leaves the manifest's checksum, every run's lineage, unchanged too.
    The model itself is unchanged, so its version is kept.
    """
    check_can_write(bundle, ONNX_FILES, force)
    model = bundle.load_model()
    with tempfile.TemporaryDirectory(prefix="reviewscore-onnx-") as staging:
        try:
            onnx = write_onnx(model, Path(staging))
        except ValueError as e:  # the export disagrees with Keras: nothing is kept
            raise BundleError(f"model bundle {bundle.path}: cannot export ONNX: {e}") from None
        if "file" not in onnx:
            raise BundleError(f"model bundle {bundle.path}: cannot export ONNX: {onnx['unsupported']}")
        written = [name for name in (*ONNX_FILES, WEIGHTS_FILE, KERAS_FILE) if (Path(staging) / name).is_file()]
        for name in written:
            replace_file(bundle.path, name, (Path(staging) / name).read_bytes())
    replaced = [name for name in [MODEL_FILE] if name in bundle.manifest.files]
    return list_added_files(bundle, *written, removed=replaced, onnx=onnx, format_version=FORMAT_VERSION)
