"""Writing a trained model as ONNX, so that scoring needs ONNX Runtime instead of TensorFlow.

Done once, at training time (or by `reviewscore export-onnx` for an older bundle), from the same
RecurrentPlan the XLA engine is built from, and with the same arithmetic (`pipeline/engines/xla.py`):
- each direction's input projection is folded into a lookup table, `embedding @ kernel + bias`,
  written as two constant nodes that ONNX Runtime folds once when its InferenceSession loads, so the file
  holds only the embedding and every step only gathers a row of the table;
- the recurrence is a Scan over time whose body is the LSTM cell in plain operators (MatMul,
  Sigmoid, Tanh, Mul, Add) on the batch, both directions in one body;
- the backward direction reads each review reversed within its own length (ReverseSequence), so
  padding always comes last and only the readout (masked max and mean, or the last real state)
  looks at the mask.
ONNX's own LSTM operator computes the same, but slower: it projects every input step with a GEMM
instead of a table lookup (BENCHMARKS.md, "The TensorFlow-free engine: what was tried"). Gates are
reordered (i, f, o, c) so one Sigmoid covers three of them.

Before the file is kept, ONNX Runtime scores a probe batch of ragged lengths and must agree with
Keras within EXPORT_TOLERANCE; the measured difference goes into the manifest. Build-time code:
needs the `onnx` package (the `train` extra); scoring needs only `onnxruntime`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.bundle import Bundle, BundleError, list_added_file
from pipeline.engines.onnx_engine import OnnxScorer
from pipeline.engines.plan import RecurrentPlan, UnsupportedModel, difference_to_keras, plan_model
from pipeline.layers import BELOW_ANY_VALUE
from schemas.bundle import ONNX_FILE

OPSET = 18
EXPORT_TOLERANCE = 1e-5
PROBE_ROWS = 128
PROBE_LONGEST = 60


def sigmoid_gates_first(weights: np.ndarray, units: int) -> np.ndarray:
    """Keras' gates (i, f, c, o) along the last axis, reordered (i, f, o, c)."""
    i, f, c, o = (weights[..., k * units : (k + 1) * units] for k in range(4))
    return np.concatenate([i, f, o, c], axis=-1).astype(np.float32)


def onnx_model(plan: RecurrentPlan):
    """The plan as an onnx.ModelProto: int32 ids (batch, time), right-padded with 0, to float32
    (batch, outputs) logits."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    constants = _constants(plan)
    nodes = _folded_tables(plan) + _inputs_and_states(plan) + _scan(plan) + _readout(plan)
    graph = helper.make_graph(
        nodes,
        "reviewscore",
        [helper.make_tensor_value_info("ids", TensorProto.INT32, ["batch", "time"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", plan.outputs])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="reviewscore")
    model.ir_version = 8  # readable by every ONNX Runtime since 1.10
    onnx.checker.check_model(model)
    return model


def _state_names(plan: RecurrentPlan) -> list[str]:
    """The Scan's carried state, per direction: h, c, and the pooled readout's running max and sum."""
    pool = plan.readout == "pool"
    return [
        f"{name}{d}" for d in range(len(plan.directions)) for name in ("h", "c", *(("top", "total") if pool else ()))
    ]


def _constants(plan: RecurrentPlan) -> dict[str, np.ndarray]:
    """The graph's initializers, by name: the plan's weights (gates reordered) and small constants."""
    units = plan.units
    constants: dict[str, np.ndarray] = {
        "embedding": plan.embedding,
        "dense_kernel": plan.dense_kernel,
        "dense_bias": plan.dense_bias,
        "gate_split": np.array([3 * units, units], np.int64),
        "sigmoid_split": np.array([units, units, units], np.int64),
        "lowest": np.array(BELOW_ANY_VALUE, np.float32),
        "zero_f": np.array(0.0, np.float32),
        "zero": np.array(0, np.int32),
        "one": np.array(1, np.int32),
        "row_axis": np.array([1], np.int64),
        "last_axis": np.array([-1], np.int64),
        "first_axis": np.array([0], np.int64),
        "units": np.array([units], np.int64),
    }
    for d, direction in enumerate(plan.directions):
        constants[f"kernel{d}"] = sigmoid_gates_first(direction.kernel, units)
        constants[f"bias{d}"] = sigmoid_gates_first(direction.bias, units)
        constants[f"recurrent{d}"] = sigmoid_gates_first(direction.recurrent_kernel, units)
    return constants


def _folded_tables(plan: RecurrentPlan) -> list:
    """Each direction's `embedding @ kernel + bias` table: constant nodes, which ONNX Runtime folds
    when an InferenceSession loads."""
    from onnx import helper

    nodes = []
    for d in range(len(plan.directions)):
        nodes += [
            helper.make_node("MatMul", ["embedding", f"kernel{d}"], [f"projected{d}"]),
            helper.make_node("Add", [f"projected{d}", f"bias{d}"], [f"table{d}"]),
        ]
    return nodes


def _step(plan: RecurrentPlan):
    """The Scan body, one time step of both directions: its inputs are each direction's ids at t and the mask at t."""
    from onnx import TensorProto, helper

    node, pool = helper.make_node, plan.readout == "pool"
    step = []
    for d in range(len(plan.directions)):
        h, c = f"h{d}", f"c{d}"
        step += [
            node("Gather", [f"table{d}", f"ids{d}_t"], [f"x{d}"]),
            node("MatMul", [f"{h}_in", f"recurrent{d}"], [f"r{d}"]),
            node("Add", [f"x{d}", f"r{d}"], [f"z{d}"]),
            node("Split", [f"z{d}", "gate_split"], [f"zs{d}", f"zc{d}"], axis=1),
            node("Sigmoid", [f"zs{d}"], [f"s{d}"]),
            node("Tanh", [f"zc{d}"], [f"g{d}"]),
            node("Split", [f"s{d}", "sigmoid_split"], [f"i{d}", f"f{d}", f"o{d}"], axis=1),
            node("Mul", [f"f{d}", f"{c}_in"], [f"fc{d}"]),
            node("Mul", [f"i{d}", f"g{d}"], [f"ig{d}"]),
            node("Add", [f"fc{d}", f"ig{d}"], [f"{c}_new"]),
            node("Tanh", [f"{c}_new"], [f"tc{d}"]),
            node("Mul", [f"o{d}", f"tc{d}"], [f"{h}_new"]),
        ]
        if pool:  # running max and sum over real steps; h and c run on (padding comes last)
            step += [
                node("Identity", [f"{h}_new"], [f"{h}_out"]),
                node("Identity", [f"{c}_new"], [f"{c}_out"]),
                node("Max", [f"top{d}_in", f"{h}_new"], [f"larger{d}"]),
                node("Where", ["real_t", f"larger{d}", f"top{d}_in"], [f"top{d}_out"]),
                node("Where", ["real_t", f"{h}_new", "zero_f"], [f"counted{d}"]),
                node("Add", [f"total{d}_in", f"counted{d}"], [f"total{d}_out"]),
            ]
        else:  # keep the state of the last real token
            step += [
                node("Where", ["real_t", f"{h}_new", f"{h}_in"], [f"{h}_out"]),
                node("Where", ["real_t", f"{c}_new", f"{c}_in"], [f"{c}_out"]),
            ]
    state, matrix = _state_names(plan), ["batch", plan.units]
    return helper.make_graph(
        step,
        "step",
        [helper.make_tensor_value_info(f"{name}_in", TensorProto.FLOAT, matrix) for name in state]
        + [
            helper.make_tensor_value_info(f"ids{d}_t", TensorProto.INT32, ["batch"])
            for d in range(len(plan.directions))
        ]
        + [helper.make_tensor_value_info("real_t", TensorProto.BOOL, ["batch", 1])],
        [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, matrix) for name in state],
    )


def _inputs_and_states(plan: RecurrentPlan) -> list:
    """The mask, the lengths, the time-major ids of each direction (the backward one reversed
    within each review's length) and the initial states' zeros and lows."""
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node
    nodes = [
        node("Greater", ["ids", "zero"], ["real"]),  # (batch, time)
        node("Cast", ["real"], ["real_count"], to=TensorProto.INT32),
        node("ReduceSum", ["real_count", "row_axis"], ["counted"], keepdims=0),
        node("Max", ["counted", "one"], ["lengths"]),  # an empty row still divides by one
        node("Transpose", ["ids"], ["ids0"], perm=[1, 0]),  # time-major
        node("Transpose", ["real"], ["real_tb"], perm=[1, 0]),
        node("Unsqueeze", ["real_tb", "last_axis"], ["real_steps"]),  # (time, batch, 1)
        node("Shape", ["ids"], ["ids_shape"], end=1),
        node("Concat", ["ids_shape", "units"], ["state_shape"], axis=0),
        node("ConstantOfShape", ["state_shape"], ["zeros"], value=numpy_helper.from_array(np.zeros(1, np.float32))),
        node(
            "ConstantOfShape",
            ["state_shape"],
            ["lows"],
            value=numpy_helper.from_array(np.full(1, BELOW_ANY_VALUE, np.float32)),
        ),
    ]
    if len(plan.directions) == 2:
        nodes += [
            node("Cast", ["counted"], ["lengths64"], to=TensorProto.INT64),
            node("ReverseSequence", ["ids", "lengths64"], ["reversed"], batch_axis=0, time_axis=1),
            node("Transpose", ["reversed"], ["ids1"], perm=[1, 0]),
        ]
    return nodes


def _scan(plan: RecurrentPlan) -> list:
    """The recurrence: a Scan of the step over time, from zero states (the running max from lows)."""
    from onnx import helper

    state = _state_names(plan)
    initial = [("lows" if name.startswith("top") else "zeros") for name in state]
    scan_inputs = [f"ids{d}" for d in range(len(plan.directions))] + ["real_steps"]
    return [
        helper.make_node(
            "Scan",
            initial + scan_inputs,
            [f"{name}_final" for name in state],
            body=_step(plan),
            num_scan_inputs=len(scan_inputs),
        )
    ]


def _readout(plan: RecurrentPlan) -> list:
    """The features (pooled, or each direction's last real state) through the final Dense, to logits."""
    from onnx import TensorProto, helper

    node, count, nodes = helper.make_node, len(plan.directions), []
    if plan.readout == "pool":  # [max of each direction..., mean of each direction...], as Keras concatenates them
        nodes += [
            node("Cast", ["lengths"], ["lengths_f"], to=TensorProto.FLOAT),
            node("Unsqueeze", ["lengths_f", "last_axis"], ["lengths_column"]),
        ]
        nodes += [node("Div", [f"total{d}_final", "lengths_column"], [f"mean{d}"]) for d in range(count)]
        features = [f"top{d}_final" for d in range(count)] + [f"mean{d}" for d in range(count)]
    else:
        features = [f"h{d}_final" for d in range(count)]
    return [
        *nodes,
        node("Concat", features, ["features"], axis=1),
        node("MatMul", ["features", "dense_kernel"], ["projected"]),
        node("Add", ["projected", "dense_bias"], ["logits"]),
    ]


def export_onnx(model, path: Path) -> dict[str, Any]:
    """Write `model` (Keras) as ONNX to `path`, checked against Keras; returns what the manifest records.

    Raises UnsupportedModel for an architecture the plan cannot read (nothing is written).
    """
    plan = plan_model(model)
    path.write_bytes(onnx_model(plan).SerializeToString())
    scorer = OnnxScorer.from_file(path, PROBE_ROWS, threads=1)
    difference = difference_to_keras(scorer, model, plan.vocabulary, PROBE_ROWS, PROBE_LONGEST)
    if not difference <= EXPORT_TOLERANCE:
        path.unlink()
        raise ValueError(f"the ONNX export differs from Keras by {difference:.1e} on the probe batch")
    return {
        "file": path.name,
        "opset": OPSET,
        "embedding_rows": plan.vocabulary,
        "checked_against_keras": {
            "rows": PROBE_ROWS,
            "tokens": f"1-{PROBE_LONGEST} per row",
            "max_abs_probability_difference": difference,
        },
    }


def write_onnx(model, folder: Path) -> dict[str, Any]:
    """Export model.onnx into a bundle folder; the manifest's `onnx` entry (why not, if it cannot).
    `pipeline.bundle.write_bundle` is given this function: pipeline never imports training."""
    try:
        return export_onnx(model, folder / ONNX_FILE)
    except UnsupportedModel as e:
        return {"unsupported": str(e)}


def add_onnx(path: str | Path) -> Bundle:
    """Give an existing bundle its model.onnx: export, then rewrite the manifest's checksums.

    The model itself is unchanged, so its version is kept; the manifest records when it was added.
    """
    bundle = Bundle.open(path)
    onnx = write_onnx(bundle.load_model(), bundle.path)
    if "file" not in onnx:
        raise BundleError(f"model bundle {bundle.path}: cannot export ONNX: {onnx['unsupported']}")
    onnx["exported"] = datetime.now(UTC).isoformat(timespec="seconds")
    return list_added_file(bundle, ONNX_FILE, onnx=onnx)
