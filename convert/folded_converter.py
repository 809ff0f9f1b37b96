"""gridscore's skl2onnx converter for IsolationForest: all trees in ONE tree-ensemble node.

skl2onnx's stock converter emits one single-tree ensemble plus ~22 arithmetic nodes per tree
(~5,400 nodes for 200 trees), and most of its run time is that arithmetic. Here each leaf
carries its whole contribution to the path length, ``h = edges from the root + c(leaf size)``,
already multiplied by ``k = -ln 2 / (T * c(psi))``. A single ``TreeEnsembleRegressor`` with
``SUM`` aggregation then yields ``k * P`` for the total path length ``P``, and one ``Exp``
finishes the paper's score ``2 ** (-P / (T * c(psi))) = exp(k * P)``. Two nodes in all: each
extra node costs ~0.4 µs per call, a tenth of the whole forest at batch 1.

Thresholds: sklearn walks float32 inputs against float64 thresholds. For a float32 ``x``,
``x <= t`` holds exactly when ``x <= f``, with ``f`` the largest float32 not above ``t``; storing
that ``f`` makes the float32 comparison in onnxruntime take the same branch as sklearn, even for
inputs sitting exactly on a threshold.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from skl2onnx import convert_sklearn
from skl2onnx.common._apply_operation import apply_exp
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import IsolationForest

from convert.graph_names import INPUT_NAME, OUTPUT_NAME, TARGET_OPSET, require_opset

EULER_GAMMA = 0.5772156649015329


def average_path_length(n: np.ndarray) -> np.ndarray:
    """c(n): mean path length of an unsuccessful BST search over n points (paper, eq. 1)."""
    n = np.asarray(n, dtype=np.float64)
    result = np.zeros_like(n)
    result[n == 2] = 1.0
    big = n > 2
    result[big] = 2.0 * (np.log(n[big] - 1.0) + EULER_GAMMA) - 2.0 * (n[big] - 1.0) / n[big]
    return result


def floor_to_float32(values: np.ndarray) -> np.ndarray:
    """Largest float32 that is <= each float64 value."""
    rounded = values.astype(np.float32)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


def _node_depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    depth = np.zeros(left.shape[0], dtype=np.int64)
    # sklearn numbers children after their parent, so one forward pass sets every depth.
    for node in range(left.shape[0]):
        if left[node] != -1:
            depth[left[node]] = depth[node] + 1
            depth[right[node]] = depth[node] + 1
    return depth


def ensemble_attributes(model: IsolationForest, scale: float = 1.0) -> dict[str, Any]:
    """TreeEnsembleRegressor attributes whose SUM is ``scale`` x each row's total path length."""
    n_features = model.n_features_in_
    node_tree, node_id, node_feature = [], [], []
    node_mode: list[str] = []
    node_value, node_true, node_false = [], [], []
    leaf_tree, leaf_node, leaf_weight = [], [], []
    for tree_index, (estimator, features) in enumerate(
        zip(model.estimators_, model.estimators_features_, strict=True)
    ):
        tree = estimator.tree_
        left, right = tree.children_left, tree.children_right
        is_leaf = left == -1
        count = tree.node_count
        # With every feature kept, sklearn fits each tree on X itself; otherwise on X[:, features].
        column = (
            np.arange(n_features) if model._max_features == n_features else np.asarray(features)
        )
        node_tree.append(np.full(count, tree_index))
        node_id.append(np.arange(count))
        node_feature.append(np.where(is_leaf, 0, column[np.where(is_leaf, 0, tree.feature)]))
        node_mode.extend("LEAF" if leaf else "BRANCH_LEQ" for leaf in is_leaf)
        node_value.append(np.where(is_leaf, 0.0, floor_to_float32(tree.threshold)))
        node_true.append(np.where(is_leaf, 0, left))
        node_false.append(np.where(is_leaf, 0, right))
        leaves = np.flatnonzero(is_leaf)
        depth = _node_depths(left, right)[leaves]
        # h(x) of the paper: edges walked plus c(n) for the n training points left unsplit.
        contribution = depth + average_path_length(tree.n_node_samples[leaves])
        leaf_tree.append(np.full(leaves.size, tree_index))
        leaf_node.append(leaves)
        leaf_weight.append(contribution * scale)

    def ints(parts: list[np.ndarray]) -> list[int]:
        return [int(v) for v in np.concatenate(parts)]

    def floats(parts: list[np.ndarray]) -> list[float]:
        return [float(v) for v in np.concatenate(parts).astype(np.float32)]

    return {
        "n_targets": 1,
        "aggregate_function": "SUM",
        "post_transform": "NONE",
        "nodes_treeids": ints(node_tree),
        "nodes_nodeids": ints(node_id),
        "nodes_featureids": ints(node_feature),
        "nodes_modes": node_mode,
        "nodes_values": floats(node_value),
        "nodes_truenodeids": ints(node_true),
        "nodes_falsenodeids": ints(node_false),
        "nodes_missing_value_tracks_true": [0] * sum(len(p) for p in node_id),
        "nodes_hitrates": [1.0] * sum(len(p) for p in node_id),
        "target_treeids": ints(leaf_tree),
        "target_nodeids": ints(leaf_node),
        "target_ids": [0] * sum(len(p) for p in leaf_node),
        "target_weights": floats(leaf_weight),
    }


def score_scale(model: IsolationForest) -> float:
    """k with score = exp(k * P): ``2 ** (-P / (T c(psi)))`` written as one exponential."""
    trees = len(model.estimators_)
    c_psi = float(average_path_length(np.array([model._max_samples]))[0])
    return -math.log(2.0) / (trees * c_psi)


def _parse(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    operator = scope.declare_local_operator("GridscoreFoldedIsolationForest", model)
    operator.inputs = inputs
    operator.outputs.append(scope.declare_local_variable(OUTPUT_NAME, FloatTensorType()))
    return list(operator.outputs)


def _shape(operator: Any) -> None:
    rows = operator.inputs[0].get_first_dimension()
    # [N, 1] as the ensemble emits it: a Reshape to [N] would cost a node per call.
    operator.outputs[0].type = FloatTensorType([rows, 1])


def _convert(scope: Any, operator: Any, container: Any) -> None:
    model = operator.raw_operator
    exponent = scope.get_unique_variable_name("scaled_path_length")
    container.add_node(
        "TreeEnsembleRegressor",
        [operator.inputs[0].full_name],
        [exponent],
        op_domain="ai.onnx.ml",
        op_version=3,
        name=scope.get_unique_operator_name("FoldedForest"),
        **ensemble_attributes(model, score_scale(model)),
    )
    apply_exp(scope, exponent, operator.outputs[0].full_name, container)


def to_folded_onnx(model: IsolationForest) -> Any:
    """gridscore's one-node graph as a ModelProto: input readings [N, 3], output score [N, 1]."""
    model_proto = convert_sklearn(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, model.n_features_in_]))],
        target_opset=TARGET_OPSET,
        custom_parsers={IsolationForest: _parse},
        custom_shape_calculators={IsolationForest: _shape},
        custom_conversion_functions={IsolationForest: _convert},
    )
    require_opset(model_proto, TARGET_OPSET[""])
    return model_proto
