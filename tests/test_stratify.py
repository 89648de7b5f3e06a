"""lionsweep.data.stratify against scikit-learn's train_test_split: the same rows, bit for bit
(prepare's splits, and so every prepared dataset, stay what they were with sklearn)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.model_selection import train_test_split as reference

from conftest import ROOT
from lionsweep.data.stratify import train_test_split


def cases() -> list[tuple[np.ndarray, int, bool, int]]:
    """Class mixes with ties in the proportional shares, rare classes, 2-7 classes,
    the paper's sizes (891 rows: 179 test) and odd offsets of the index."""
    rng = np.random.default_rng(3)
    out = [(np.repeat([0, 1], [549, 342]), 179, True, 42)]
    for k in range(80):
        n_classes = int(rng.integers(2, 8))
        counts = rng.integers(3, 60, n_classes)
        y = rng.permutation(np.repeat(np.arange(n_classes), counts))
        n_test = int(rng.integers(n_classes, len(y) - n_classes + 1))
        out.append((y, n_test, bool(k % 5), int(rng.integers(0, 2**31))))
    return out


@pytest.mark.parametrize("case", range(81))
def test_the_same_split_as_sklearn(case: int) -> None:
    y, n_test, stratify, seed = cases()[case]
    index = np.arange(len(y)) * 3 + 5  # not 0..n-1: the parts are taken from ``index``
    strata = y if stratify else None
    want = reference(index, test_size=n_test, stratify=strata, random_state=seed)
    got = train_test_split(index, n_test, strata, seed)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == w.dtype


def test_sklearn_refuses_what_it_refuses() -> None:
    y = np.array([0, 0, 0, 1, 1, 1, 2])
    for n_test, why in ((3, "only 1 member"), (1, "at least the number of classes")):
        y_case = y if why == "only 1 member" else y[:-1]
        with pytest.raises(ValueError):
            reference(np.arange(len(y_case)), test_size=n_test, stratify=y_case, random_state=0)
        with pytest.raises(ValueError, match=why):
            train_test_split(np.arange(len(y_case)), n_test, y_case, 0)


def test_prepare_does_not_import_sklearn() -> None:
    """sklearn (and scipy.stats under it) cost prepare ~1.2 s of CPU per dataset."""
    code = (
        "import sys, numpy as np; from lionsweep.data.splits import split_indices; "
        "split_indices(np.repeat([0, 1], [30, 20]), "
        "{'seed': 0, 'test_fraction': 0.2, 'val_fraction': 0.2}); "
        "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "workflow"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
