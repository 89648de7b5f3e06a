"""scikit-learn's ``train_test_split`` for an index array, without importing scikit-learn.

Importing ``sklearn.model_selection`` pulls in scipy.stats and costs most of a
``prepare`` job's CPU (docs/performance.md); a study of many datasets pays it once per dataset for
one seeded shuffle. This is the same algorithm (sklearn 1.x ``StratifiedShuffleSplit``
and ``ShuffleSplit``: the same ``RandomState`` draws in the same order), so a seed gives
the same rows as before, bit for bit (tests/test_stratify.py compares with sklearn).
"""

from __future__ import annotations

import numpy as np


def approximate_mode(counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Rows drawn from each class: the proportional share floored, the remainder given by
    the largest leftover fractions, ties broken at random (sklearn's ``_approximate_mode``)."""
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add = min(len(inds), need)
            floored[rng.choice(inds, size=add, replace=False)] += 1
            need -= add
            if need == 0:
                break
    return floored.astype(int)


def train_test_split(
    index: np.ndarray, n_test: int, stratify: np.ndarray | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) parts of ``index``, as ``sklearn.model_selection.train_test_split(
    index, test_size=n_test, stratify=stratify, random_state=seed)`` returns them.
    Raises ValueError where sklearn does (a class of one row, fewer rows than classes)."""
    n_train = len(index) - n_test
    rng = np.random.RandomState(seed)
    if stratify is None:
        permutation = rng.permutation(len(index))
        return index[permutation[n_test : n_test + n_train]], index[permutation[:n_test]]
    classes, y_indices, counts = np.unique(stratify, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        few = classes[counts < 2].tolist()
        raise ValueError(f"the least populated classes in y have only 1 member: {few}")
    if min(n_train, n_test) < len(classes):
        raise ValueError(
            f"train size {n_train} and test size {n_test} must each be at least the "
            f"number of classes, {len(classes)}"
        )
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(counts)[:-1])
    n_i = approximate_mode(counts, n_train, rng)
    t_i = approximate_mode(counts - n_i, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for i in range(len(classes)):
        rows = class_indices[i].take(rng.permutation(counts[i]), mode="clip")
        train.extend(rows[: n_i[i]])
        test.extend(rows[n_i[i] : n_i[i] + t_i[i]])
    return index[rng.permutation(train)], index[rng.permutation(test)]
