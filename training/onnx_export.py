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

from pipeline.bundle import Bundle, BundleError, list_added_files
from pipeline.engines.onnx_engine import OnnxScorer
from pipeline.engines.plan import RecurrentPlan, UnsupportedModel, difference_to_keras, plan_model
from pipeline.layers import BELOW_ANY_VALUE
from schemas.bundle import OCCLUSION_FILE, ONNX_FILE

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
    from onnx import TensorProto, helper

    nodes = _folded_tables(plan) + _inputs_and_states(plan) + _scan(plan) + _readout(plan)
    inputs = [helper.make_tensor_value_info("ids", TensorProto.INT32, ["batch", "time"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", plan.outputs])]
    return _checked_model(nodes, "reviewscore", inputs, outputs, _constants(plan))


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


def _step(plan: RecurrentPlan, masks: list[str], emit_states: bool = False):
    """The Scan body, one time step of both directions: its inputs are each direction's ids at t and
    the masks at t (`masks[d]`, direction d's); with `emit_states`, each direction's h and c after the
    step are also scan outputs (the occlusion graph's per-step states)."""
    from onnx import TensorProto, helper

    node, pool = helper.make_node, plan.readout == "pool"
    step, emitted = [], []
    for d in range(len(plan.directions)):
        h, c, real = f"h{d}", f"c{d}", masks[d]
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
                node("Where", [f"{real}_t", f"larger{d}", f"top{d}_in"], [f"top{d}_out"]),
                node("Where", [f"{real}_t", f"{h}_new", "zero_f"], [f"counted{d}"]),
                node("Add", [f"total{d}_in", f"counted{d}"], [f"total{d}_out"]),
            ]
        else:  # keep the state of the last real token
            step += [
                node("Where", [f"{real}_t", f"{h}_new", f"{h}_in"], [f"{h}_out"]),
                node("Where", [f"{real}_t", f"{c}_new", f"{c}_in"], [f"{c}_out"]),
            ]
        if emit_states:
            step += [node("Identity", [f"{h}_new"], [f"{h}_step"]), node("Identity", [f"{c}_new"], [f"{c}_step"])]
            emitted += [f"{h}_step", f"{c}_step"]
    state, matrix = _state_names(plan), ["batch", plan.units]
    return helper.make_graph(
        step,
        "step",
        [helper.make_tensor_value_info(f"{name}_in", TensorProto.FLOAT, matrix) for name in state]
        + [
            helper.make_tensor_value_info(f"ids{d}_t", TensorProto.INT32, ["batch"])
            for d in range(len(plan.directions))
        ]
        + [helper.make_tensor_value_info(f"{real}_t", TensorProto.BOOL, ["batch", 1]) for real in dict.fromkeys(masks)],
        [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, matrix) for name in state]
        + [helper.make_tensor_value_info(name, TensorProto.FLOAT, matrix) for name in emitted],
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
            body=_step(plan, ["real"] * len(plan.directions)),
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


def occlusion_model(plan: RecurrentPlan):
    """The plan's recurrence with its states open, as an onnx.ModelProto: what exact occlusion reuses
    (pipeline/explain/occlusion.py).

    Each row carries one job per direction, each from its own state: `ids{d}` (batch, time) int32,
    the tokens direction d reads, in the order it reads them, right-padded with 0; `h{d}`, `c{d}`
    (batch, units) the state it starts from; with a pooled readout, also `top{d}` and `total{d}`, the
    running max and sum of the steps already read, and `count{d}` (batch, 1), the length of the
    review the job belongs to (the mean's divisor); `states`, a bool scalar. Outputs: `part{d}`
    (batch, outputs), the job's share of the logits (the final Dense is linear, so a review's logits
    are the sum of its directions' shares; the bias is in part0), and `h{d}_steps`, `c{d}_steps`
    (time, batch, units), the state after every step (meaningful up to each job's length) when
    `states` is true, else empty: collecting them costs a quarter of the run, and only the full
    pass needs them.
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
    nodes = _folded_tables(plan) + nodes + [_open_scan(plan, steps)] + _shares(plan)
    outputs = [
        helper.make_tensor_value_info(f"part{d}", TensorProto.FLOAT, ["batch", plan.outputs]) for d in range(count)
    ]
    outputs += [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["time", *matrix]) for name in steps]
    return _checked_model(nodes, "reviewscore_occlusion", inputs, outputs, constants)


def _occlusion_inputs(plan: RecurrentPlan) -> tuple[list, list]:
    """The occlusion graph's inputs, and each direction's time-major ids and mask."""
    from onnx import TensorProto, helper

    node, matrix, inputs, nodes = helper.make_node, ["batch", plan.units], [], []
    inputs.append(helper.make_tensor_value_info("states", TensorProto.BOOL, []))
    for d in range(len(plan.directions)):
        inputs += [helper.make_tensor_value_info(f"ids{d}", TensorProto.INT32, ["batch", "time"])]
        inputs += [helper.make_tensor_value_info(f"{n}{d}", TensorProto.FLOAT, matrix) for n in ("h", "c")]
        if plan.readout == "pool":
            inputs += [helper.make_tensor_value_info(f"{n}{d}", TensorProto.FLOAT, matrix) for n in ("top", "total")]
            inputs += [helper.make_tensor_value_info(f"count{d}", TensorProto.FLOAT, ["batch", 1])]
        nodes += [
            node("Greater", [f"ids{d}", "zero"], [f"real{d}"]),
            node("Transpose", [f"real{d}"], [f"real{d}_tb"], perm=[1, 0]),
            node("Unsqueeze", [f"real{d}_tb", "last_axis"], [f"real{d}_steps"]),  # (time, batch, 1)
            node("Transpose", [f"ids{d}"], [f"ids{d}_tb"], perm=[1, 0]),
        ]
    return inputs, nodes


def _open_scan(plan: RecurrentPlan, steps: list[str]):
    """The recurrence from the given states: an If on `states` between a Scan that also collects
    every step's h and c and one that does not (its step outputs empty)."""
    from onnx import TensorProto, helper

    node, count, state = helper.make_node, len(plan.directions), _state_names(plan)
    scan_inputs = [f"ids{d}_tb" for d in range(count)] + [f"real{d}_steps" for d in range(count)]
    finals = [f"{name}_final" for name in state]

    def branch(emit: bool):
        suffix = "_with" if emit else "_without"
        scan = node(
            "Scan",
            state + scan_inputs,
            [f"{name}{suffix}" for name in finals] + ([f"{name}{suffix}" for name in steps] if emit else []),
            body=_step(plan, [f"real{d}" for d in range(count)], emit_states=emit),
            num_scan_inputs=len(scan_inputs),
        )
        empty = [] if emit else [node("Identity", ["no_steps"], [f"{name}{suffix}"]) for name in steps]
        outputs = [helper.make_tensor_value_info(f"{name}{suffix}", TensorProto.FLOAT, None) for name in finals + steps]
        return helper.make_graph([scan, *empty], f"scan{suffix}", [], outputs)

    return node("If", ["states"], finals + steps, then_branch=branch(True), else_branch=branch(False))


def _shares(plan: RecurrentPlan) -> list:
    """Each direction's share of the logits from its final states (the bias in part0's)."""
    from onnx import helper

    node, count, nodes = helper.make_node, len(plan.directions), []
    for d in range(count):
        share = f"part{d}" if d else "unbiased0"
        if plan.readout == "pool":
            nodes += [
                node("Div", [f"total{d}_final", f"count{d}"], [f"mean{d}"]),
                node("MatMul", [f"top{d}_final", f"dense{d}"], [f"top_part{d}"]),
                node("MatMul", [f"mean{d}", f"dense{count + d}"], [f"mean_part{d}"]),
                node("Add", [f"top_part{d}", f"mean_part{d}"], [share]),
            ]
        else:
            nodes.append(node("MatMul", [f"h{d}_final", f"dense{d}"], [share]))
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


def export_onnx(model, path: Path, occlusion_path: Path | None = None) -> dict[str, Any]:
    """Write `model` (Keras) as ONNX to `path`, checked against Keras, and its occlusion graph to
    `occlusion_path`, checked against the model.onnx just written; returns what the manifest records.

    Raises UnsupportedModel for an architecture the plan cannot read (nothing is written).
    """
    plan = plan_model(model)
    path.write_bytes(onnx_model(plan).SerializeToString())
    scorer = OnnxScorer.from_file(path, PROBE_ROWS, threads=1)
    difference = difference_to_keras(scorer, model, plan.vocabulary, PROBE_ROWS, PROBE_LONGEST)
    if not difference <= EXPORT_TOLERANCE:
        path.unlink()
        raise ValueError(f"the ONNX export differs from Keras by {difference:.1e} on the probe batch")
    written = {
        "file": path.name,
        "opset": OPSET,
        "embedding_rows": plan.vocabulary,
        "checked_against_keras": {
            "rows": PROBE_ROWS,
            "tokens": f"1-{PROBE_LONGEST} per row",
            "max_abs_probability_difference": difference,
        },
    }
    if occlusion_path is not None:
        occlusion_path.write_bytes(occlusion_model(plan).SerializeToString())
        scorer.occlusion_path = occlusion_path
        occlusion_difference = occlusion_difference_to_scoring(scorer, plan.vocabulary)
        if not occlusion_difference <= EXPORT_TOLERANCE:
            occlusion_path.unlink()
            raise ValueError(f"the occlusion graph differs from model.onnx by {occlusion_difference:.1e}")
        written["occlusion"] = {"file": occlusion_path.name, "max_abs_logit_difference": occlusion_difference}
    return written


def occlusion_difference_to_scoring(scorer: OnnxScorer, vocabulary: int, seed: int = 0) -> float:
    """Largest |logit difference| between model.onnx and its occlusion graph on the probe reviews read
    whole from the zero state (their parts summed): the same model, or not."""
    from pipeline.explain.occlusion import full_pass_logits

    rng = np.random.default_rng(seed)
    probe = [
        rng.integers(1, vocabulary, size=n, dtype=np.int32) for n in rng.integers(1, PROBE_LONGEST + 1, PROBE_ROWS)
    ]
    return float(np.max(np.abs(full_pass_logits(scorer.recurrence(), probe) - scorer(probe))))


def write_onnx(model, folder: Path) -> dict[str, Any]:
    """Export model.onnx into a bundle folder; the manifest's `onnx` entry (why not, if it cannot).
    `pipeline.bundle.write_bundle` is given this function: pipeline never imports training."""
    try:
        return export_onnx(model, folder / ONNX_FILE, folder / OCCLUSION_FILE)
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
    return list_added_files(bundle, ONNX_FILE, *([OCCLUSION_FILE] if "occlusion" in onnx else []), onnx=onnx)
