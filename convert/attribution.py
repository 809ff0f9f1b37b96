"""Which features made a reading anomalous: a depth-based attribution over the forest's paths.

The definition (in the spirit of DIFFI, Carletti et al.). A forest scores a reading by how
little depth its trees need to isolate it: the score is ``2 ** (-P / (T c(psi)))`` for the total
path length ``P = sum over trees of h_t(x)`` (the leaf's depth plus c(n) for the n training rows
left in it). Each tree t has a longest path ``C_t``; the depth it did *not* need for this
reading, ``C_t - h_t(x)``, is its evidence that the reading is anomalous (0 at its deepest
leaf). The attribution shares each tree's evidence among the features that isolated the
reading: the first ``LEVELS`` splits of its path, the split at depth k crediting its feature
``1 / (k + 1)``, the tree's credits normalised to sum to 1:

    A_f(x) = sum over trees t of (C_t - h_t(x)) * s_tf(x)
    s_tf(x) = (sum of 1/(k+1) over the path's splits at depth k < LEVELS on feature f)
              / (sum of 1/(k+1) over the path's splits at depth k < LEVELS)

So ``sum over f of A_f(x) = sum_t C_t - P(x)``: the attribution decomposes the depth the forest
saved, which is what the score measures, and the score follows from it exactly. The served
attribution is A normalised to shares that sum to 1.

Why the first three splits: an anomaly leaves the bulk of the data in the first few splits
(that is what makes its path short); deeper splits separate it from its neighbours, where the
feature chosen is chance. And each feature credited in a leaf is one more weight onnxruntime
adds per tree and row: three levels keep at most three per leaf whatever the number of
features, which is what holds the served graph's cost near the graph without attribution
(docs/explaining.md).

A leaf fixes its path, so each leaf of the compiled ensemble carries its tree's term as F
targets, and the one tree traversal computes the attribution and, through its sum, the score
(``convert/folded_converter.py``). ``reference`` computes the same from scikit-learn's fitted
trees by another route (their decision paths), for the parity check and the tests.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.ensemble import IsolationForest

from convert.forest_geometry import average_path_length, node_depths, tree_columns

LEVELS = 3  # the splits at depths 0, 1 and 2 of each path credit their feature

DEFINITION = (
    "A_f(x) = sum over trees of (C - h) * s_f, h the path length of the score, C the tree's "
    "longest, s_f the share of feature f in the sum of 1/(k+1) over the path's splits at depth "
    f"k < {LEVELS}; sum_f A_f = sum C - P; shares A_f / sum A"
)


def _leaf_lengths(tree: object, depth: np.ndarray, leaves: np.ndarray) -> np.ndarray:
    """h for each leaf: its depth plus c(n) for the training rows left in it."""
    samples: np.ndarray = tree.n_node_samples[leaves]  # type: ignore[attr-defined]
    lengths: np.ndarray = depth[leaves] + average_path_length(samples)
    return lengths


def longest_path(tree: object) -> float:
    """C_t: the tree's largest leaf path length h."""
    left = tree.children_left  # type: ignore[attr-defined]
    right = tree.children_right  # type: ignore[attr-defined]
    leaves = np.flatnonzero(left == -1)
    return float(_leaf_lengths(tree, node_depths(left, right), leaves).max())


def leaf_terms(tree: object, column: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Each leaf's term of A (one row per leaf, F columns): the converter's leaf targets."""
    left = tree.children_left  # type: ignore[attr-defined]
    right = tree.children_right  # type: ignore[attr-defined]
    feature = tree.feature  # type: ignore[attr-defined]
    count = left.shape[0]
    depth = node_depths(left, right)
    credit = np.zeros((count, n_features))  # sum of 1/(k+1) per feature along the path
    # sklearn numbers children after their parent, so one forward pass fills every path.
    for node in range(count):
        if left[node] != -1:
            row = credit[node]
            if depth[node] < LEVELS:
                row = row.copy()
                row[column[feature[node]]] += 1.0 / (depth[node] + 1)
            credit[left[node]] = row
            credit[right[node]] = row
    leaves = np.flatnonzero(left == -1)
    h = _leaf_lengths(tree, depth, leaves)
    totals = credit[leaves].sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        split_shares = np.where(totals > 0, credit[leaves] / totals, 0.0)
    return leaves, np.nan_to_num(split_shares) * (h.max() - h)[:, None]


def reference(model: IsolationForest, rows: np.ndarray) -> np.ndarray:
    """A for ``rows`` (N x F) from scikit-learn's decision paths, float64."""
    x = np.asarray(rows, dtype=np.float32)
    n_features = model.n_features_in_
    total = np.zeros((len(x), n_features))
    for estimator, features in zip(model.estimators_, model.estimators_features_, strict=True):
        tree = estimator.tree_
        column = tree_columns(model, features)
        subset = x if model._max_features == n_features else x[:, features]
        depth = node_depths(tree.children_left, tree.children_right)
        credited = (tree.children_left != -1) & (depth < LEVELS)
        # Split weights: node -> feature, 1/(depth+1) for the first LEVELS levels' splits.
        weights = sparse.csr_matrix(
            (
                1.0 / (depth[credited] + 1),
                (np.flatnonzero(credited), column[tree.feature[credited]]),
            ),
            shape=(tree.node_count, n_features),
        )
        paths = estimator.decision_path(subset)  # N x nodes, 1 where the path passes
        credit = np.asarray((paths @ weights).todense())
        leaf = estimator.apply(subset)
        h = depth[leaf] + average_path_length(tree.n_node_samples[leaf])
        totals = credit.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            split_shares = np.nan_to_num(np.where(totals > 0, credit / totals, 0.0))
        total += split_shares * (longest_path(tree) - h)[:, None]
    return total


def shares(raw: np.ndarray) -> np.ndarray:
    """A normalised per row to shares summing to 1 (all zero where A is)."""
    raw = np.asarray(raw, dtype=np.float64)
    totals = raw.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(np.where(totals > 0, raw / totals, 0.0))
