"""The geometry of scikit-learn's isolation trees: average path lengths (the paper's c(n)),
node depths, and which input column each tree's feature index reads. Shared by the converter
(which folds path lengths into leaf values) and the attribution's reference.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest

EULER_GAMMA = 0.5772156649015329


def average_path_length(n: np.ndarray) -> np.ndarray:
    """c(n): mean path length of an unsuccessful BST search over n points (paper, eq. 1)."""
    n = np.asarray(n, dtype=np.float64)
    result = np.zeros_like(n)
    result[n == 2] = 1.0
    big = n > 2
    result[big] = 2.0 * (np.log(n[big] - 1.0) + EULER_GAMMA) - 2.0 * (n[big] - 1.0) / n[big]
    return result


def node_depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    depth = np.zeros(left.shape[0], dtype=np.int64)
    # sklearn numbers children after their parent, so one forward pass sets every depth.
    for node in range(left.shape[0]):
        if left[node] != -1:
            depth[left[node]] = depth[node] + 1
            depth[right[node]] = depth[node] + 1
    return depth


def tree_columns(model: IsolationForest, features: np.ndarray) -> np.ndarray:
    """A tree's feature index -> the input column: with every feature kept, sklearn fits each
    tree on X itself; otherwise on X[:, features]."""
    n_features = model.n_features_in_
    return np.arange(n_features) if model._max_features == n_features else np.asarray(features)
