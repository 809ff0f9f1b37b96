"""Graphs that score a batch's rows in an order the CPU can predict, and answer in the caller's.

Why: onnxruntime's tree walk takes one data-dependent branch per node, and on varied readings
most of its time is mispredicted branches, not work (docs/benchmarks.md: the same instructions
run 3.6 times faster when every row of a batch is the same). Rows that are close in feature
space take the same paths through the trees, so sorting a large batch along a key that keeps
neighbours together makes consecutive walks alike. The key is a k-d tree fitted on the
training rows at convert time (split at the median of the widest feature, to depth 12, leaves
numbered left to right), evaluated in the graph as a one-tree ensemble; TopK orders the rows
by it, Gather reorders them, the unchanged forest scores them, and ScatterND puts every output
back in the caller's order. The forest's outputs are the same numbers, row for row.

Also here: ``pruned`` keeps only what some outputs need, to make the attribution-only graph
(the forest's per-feature targets alone) that the server runs on the flagged rows of a large
batch after a score-only pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper

from convert.folded_converter import floor_to_float32
from convert.graph_names import INPUT_NAME, require_opset

KEY_DEPTH = 12
SORTED = "readings_sorted"


def kd_key_attributes(rows: np.ndarray, depth: int = KEY_DEPTH) -> dict[str, Any]:
    """A one-tree TreeEnsembleRegressor whose output orders rows so neighbours sit together:
    each node splits its rows at the float32 median of the feature with the widest spread
    (range over standard deviation), the true side (<=) first; leaves are numbered in that
    order, and each leaf's number is its output."""
    rows = np.asarray(rows, dtype=np.float32)
    spread = rows.std(axis=0).astype(np.float64)
    spread[spread == 0] = 1.0
    ids: list[int] = []
    features: list[int] = []
    modes: list[str] = []
    values: list[float] = []
    true_ids: list[int] = []
    false_ids: list[int] = []
    leaves: list[tuple[int, int]] = []  # (node id, leaf number)

    def grow(part: np.ndarray, level: int) -> int:
        node = len(ids)
        ids.append(node)
        features.append(0)
        modes.append("LEAF")
        values.append(0.0)
        true_ids.append(0)
        false_ids.append(0)
        if level < depth and len(part) >= 2:
            widths = (part.max(axis=0) - part.min(axis=0)) / spread
            feature = int(np.argmax(widths))
            median = floor_to_float32(np.array([np.median(part[:, feature])], dtype=np.float64))
            cut = float(median[0])
            low, high = part[part[:, feature] <= cut], part[part[:, feature] > cut]
            if len(low) and len(high):
                features[node], modes[node], values[node] = feature, "BRANCH_LEQ", cut
                true_ids[node] = grow(low, level + 1)
                false_ids[node] = grow(high, level + 1)
                return node
        leaves.append((node, len(leaves)))
        return node

    grow(rows, 0)
    count = len(ids)
    return {
        "n_targets": 1,
        "aggregate_function": "SUM",
        "post_transform": "NONE",
        "nodes_treeids": [0] * count,
        "nodes_nodeids": ids,
        "nodes_featureids": features,
        "nodes_modes": modes,
        "nodes_values": values,
        "nodes_truenodeids": true_ids,
        "nodes_falsenodeids": false_ids,
        "nodes_missing_value_tracks_true": [0] * count,
        "nodes_hitrates": [1.0] * count,
        "target_treeids": [0] * len(leaves),
        "target_nodeids": [node for node, _ in leaves],
        "target_ids": [0] * len(leaves),
        "target_weights": [float(number) for _, number in leaves],
    }


def with_sorted_rows(model: Any, key: dict[str, Any]) -> Any:
    """``model`` (a ModelProto of the forest alone, changed in place and returned) scoring its
    rows sorted by ``key``'s output; every output comes back in the input's row order. The
    envelope guard is added afterwards, on the rows as given."""
    graph = model.graph
    require_opset(model, 18)  # TopK with k as input, ScatterND, Squeeze with axes as input
    outputs = [o.name for o in graph.output]
    sorted_names = {name: f"{name}_in_sorted_order" for name in outputs}
    for node in graph.node:
        # Inside, everything is in sorted order: the input's rows, and any output another node
        # reads (the score is the attribution's row sum).
        node.input[:] = [
            SORTED if name == INPUT_NAME else sorted_names.get(name, name) for name in node.input
        ]
        node.output[:] = [sorted_names.get(name, name) for name in node.output]
    front = [
        helper.make_node(
            "TreeEnsembleRegressor",
            [INPUT_NAME],
            ["sort_key"],
            domain="ai.onnx.ml",
            name="SortKey",
            **key,
        ),
        helper.make_node("Shape", [INPUT_NAME], ["rows_shape"], end=1, name="RowCount"),
        helper.make_node("Constant", [], ["key_axis"], value=_ints("key_axis", [1])),
        helper.make_node("Squeeze", ["sort_key", "key_axis"], ["sort_key_flat"], name="KeyFlat"),
        helper.make_node(
            "TopK",
            ["sort_key_flat", "rows_shape"],
            ["sorted_key", "order"],
            axis=-1,
            largest=0,
            sorted=1,
            name="Order",
        ),
        helper.make_node("Gather", [INPUT_NAME, "order"], [SORTED], axis=0, name="Reorder"),
        helper.make_node("Unsqueeze", ["order", "key_axis"], ["order_index"], name="OrderIndex"),
    ]
    back = []
    for name, inner in sorted_names.items():
        back += [
            helper.make_node("Shape", [inner], [f"{name}_shape"], name=f"{name}_Shape"),
            helper.make_node(
                "ConstantOfShape",
                [f"{name}_shape"],
                [f"{name}_zeros"],
                value=helper.make_tensor(f"{name}_zero", TensorProto.FLOAT, [1], [0.0]),
                name=f"{name}_Zeros",
            ),
            helper.make_node(
                "ScatterND",
                [f"{name}_zeros", "order_index", inner],
                [name],
                name=f"{name}_Restore",
            ),
        ]
    nodes = [*front, *graph.node, *back]
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def pruned(model: Any, keep_outputs: list[str]) -> Any:
    """``model`` (changed in place) with only ``keep_outputs`` and the nodes they need."""
    graph = model.graph
    needed = set(keep_outputs)
    kept = []
    for node in reversed(list(graph.node)):
        if set(node.output) & needed:
            kept.append(node)
            needed |= set(node.input)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    outputs = [o for o in graph.output if o.name in keep_outputs]
    del graph.output[:]
    graph.output.extend(outputs)
    inputs = [i for i in graph.input if i.name in needed]
    del graph.input[:]
    graph.input.extend(inputs)
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    return model


def _ints(name: str, values: list[int]) -> Any:
    return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)
