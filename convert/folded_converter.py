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

With attribution (convert/attribution.py), the leaves carry instead the F terms of the
attribution ``A_f``, each multiplied by ``-k``, and the node adds ``k * sum_t C_t`` to the first
target (its base value): since ``sum_f A_f = sum_t C_t - P``, the row sum of that output is
``k * P`` and one ``ReduceSum`` + ``Exp`` gives the score, from the same traversal. A leaf lists
only its non-zero terms (at most three, one per credited split), so onnxruntime adds few
weights per tree and row; that count is what the attribution costs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from onnx import TensorProto
from skl2onnx import convert_sklearn
from skl2onnx.common._apply_operation import apply_exp
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import IsolationForest

from convert.forest_geometry import average_path_length, node_depths, tree_columns
from convert.graph_names import (
    ATTRIBUTION_OUTPUT,
    INPUT_NAME,
    OUTPUT_NAME,
    TARGET_OPSET,
    require_opset,
)


def floor_to_float32(values: np.ndarray) -> np.ndarray:
    """Largest float32 that is <= each float64 value."""
    rounded = values.astype(np.float32)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


def ensemble_attributes(
    model: IsolationForest, scale: float = 1.0, attribution: bool = False
) -> dict[str, Any]:
    """TreeEnsembleRegressor attributes whose SUM is ``scale`` x each row's total path length
    (one target); with ``attribution``, F targets: ``-scale`` x each feature's attribution term
    (convert/attribution.py), whose row sum plus the base value is the same ``scale * P``."""
    from convert.attribution import leaf_terms

    n_features = model.n_features_in_
    node_tree, node_id, node_feature = [], [], []
    node_mode: list[str] = []
    node_value, node_true, node_false = [], [], []
    leaf_tree, leaf_node, leaf_target, leaf_weight = [], [], [], []
    for tree_index, (estimator, features) in enumerate(
        zip(model.estimators_, model.estimators_features_, strict=True)
    ):
        tree = estimator.tree_
        left, right = tree.children_left, tree.children_right
        is_leaf = left == -1
        count = tree.node_count
        column = tree_columns(model, features)
        node_tree.append(np.full(count, tree_index))
        node_id.append(np.arange(count))
        node_feature.append(np.where(is_leaf, 0, column[np.where(is_leaf, 0, tree.feature)]))
        node_mode.extend("LEAF" if leaf else "BRANCH_LEQ" for leaf in is_leaf)
        node_value.append(np.where(is_leaf, 0.0, floor_to_float32(tree.threshold)))
        node_true.append(np.where(is_leaf, 0, left))
        node_false.append(np.where(is_leaf, 0, right))
        leaves = np.flatnonzero(is_leaf)
        depth = node_depths(left, right)[leaves]
        # h(x) of the paper: edges walked plus c(n) for the n training points left unsplit.
        contribution = depth + average_path_length(tree.n_node_samples[leaves])
        if not attribution:
            leaf_tree.append(np.full(leaves.size, tree_index))
            leaf_node.append(leaves)
            leaf_target.append(np.zeros(leaves.size, dtype=np.int64))
            leaf_weight.append(contribution * scale)
            continue
        term_leaves, terms = leaf_terms(tree, column, n_features)
        assert np.array_equal(term_leaves, leaves)
        weights = terms * -scale
        keep = weights != 0
        keep[~keep.any(axis=1), 0] = True  # every leaf needs one weight, even a zero one
        rows, targets = np.nonzero(keep)  # leaf by leaf, as onnxruntime stores them
        leaf_tree.append(np.full(rows.size, tree_index))
        leaf_node.append(leaves[rows])
        leaf_target.append(targets)
        leaf_weight.append(weights[rows, targets])

    def ints(parts: list[np.ndarray]) -> list[int]:
        return [int(v) for v in np.concatenate(parts)]

    def floats(parts: list[np.ndarray]) -> list[float]:
        return [float(v) for v in np.concatenate(parts).astype(np.float32)]

    extra = {"base_values": attribution_offsets(model, scale)} if attribution else {}
    return {
        "n_targets": n_features if attribution else 1,
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
        "target_ids": ints(leaf_target),
        "target_weights": floats(leaf_weight),
        **extra,
    }


def attribution_offsets(model: IsolationForest, scale: float) -> list[float]:
    """The node's base values with attribution: ``scale * sum_t C_t`` on the first target, 0
    on the others. The graph's attribution output less these is ``-scale * A``."""
    from convert.attribution import longest_path

    longest_total = sum(longest_path(estimator.tree_) for estimator in model.estimators_)
    offsets = [0.0] * model.n_features_in_
    offsets[0] = float(np.float32(scale * longest_total))
    return offsets


def score_scale(model: IsolationForest) -> float:
    """k with score = exp(k * P): ``2 ** (-P / (T c(psi)))`` written as one exponential."""
    trees = len(model.estimators_)
    c_psi = float(average_path_length(np.array([model._max_samples]))[0])
    return -math.log(2.0) / (trees * c_psi)


def _converter(attribution: bool) -> tuple[Any, Any, Any]:
    """skl2onnx's parser, shape calculator and converter for the folded graph."""

    def parse(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
        operator = scope.declare_local_operator("GridscoreFoldedIsolationForest", model)
        operator.inputs = inputs
        operator.outputs.append(scope.declare_local_variable(OUTPUT_NAME, FloatTensorType()))
        if attribution:
            operator.outputs.append(
                scope.declare_local_variable(ATTRIBUTION_OUTPUT, FloatTensorType())
            )
        return list(operator.outputs)

    def shape(operator: Any) -> None:
        rows = operator.inputs[0].get_first_dimension()
        # [N, 1] as the ensemble emits it: a Reshape to [N] would cost a node per call.
        operator.outputs[0].type = FloatTensorType([rows, 1])
        if attribution:
            features = operator.raw_operator.n_features_in_
            operator.outputs[1].type = FloatTensorType([rows, features])

    def convert(scope: Any, operator: Any, container: Any) -> None:
        model = operator.raw_operator
        # Without attribution the node's one target is the scaled path length; with it, the
        # node's F targets are the attribution and their row sum is the scaled path length.
        summed = (
            operator.outputs[1].full_name
            if attribution
            else scope.get_unique_variable_name("ensemble_sums")
        )
        container.add_node(
            "TreeEnsembleRegressor",
            [operator.inputs[0].full_name],
            [summed],
            op_domain="ai.onnx.ml",
            op_version=3,
            name=scope.get_unique_operator_name("FoldedForest"),
            **ensemble_attributes(model, score_scale(model), attribution),
        )
        if not attribution:
            apply_exp(scope, summed, operator.outputs[0].full_name, container)
            return
        axes = scope.get_unique_variable_name("feature_axis")
        container.add_initializer(axes, TensorProto.INT64, [1], [1])
        exponent = scope.get_unique_variable_name("scaled_path_length")
        container.add_node(
            "ReduceSum",
            [summed, axes],
            [exponent],
            keepdims=1,
            name=scope.get_unique_operator_name("PathLengthFromAttribution"),
        )
        apply_exp(scope, exponent, operator.outputs[0].full_name, container)

    return parse, shape, convert


def to_folded_onnx(model: IsolationForest, attribution: bool = False) -> Any:
    """gridscore's one-node graph as a ModelProto: input readings [N, F], output score [N, 1],
    and with ``attribution`` each row's attribution [N, F] from the same traversal."""
    parse, shape, convert = _converter(attribution)
    model_proto = convert_sklearn(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, model.n_features_in_]))],
        target_opset=TARGET_OPSET,
        custom_parsers={IsolationForest: parse},
        custom_shape_calculators={IsolationForest: shape},
        custom_conversion_functions={IsolationForest: convert},
    )
    require_opset(model_proto, TARGET_OPSET[""])
    return model_proto
