"""Shared fixtures of the MLP test modules.

The data here are small on purpose: every test module runs in seconds on two
shared cores.
"""

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator for each test."""
    return np.random.default_rng(20240611)


@pytest.fixture
def xor_data():
    """The four corners of the unit square labelled by exclusive or.

    Returns
    -------
    X : ndarray of shape (4, 2), float64
        Rows ``(0, 0), (0, 1), (1, 0), (1, 1)`` in this order.
    y : ndarray of shape (4,), int64
        ``x1 XOR x2``: ``[0, 1, 1, 0]``.
    """
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0, 1, 1, 0])
    return X, y


def _blobs(n_per_class=30, n_features=4, n_classes=3, spread=0.6, seed=0):
    """Gaussian blobs around well separated centres (an easy classification set).

    Parameters
    ----------
    n_per_class, n_features, n_classes : int
    spread : float
        Standard deviation of each blob; the centres are 3 apart.
    seed : int

    Returns
    -------
    X : ndarray of shape (n_per_class * n_classes, n_features), float64
    y : ndarray of shape (n_per_class * n_classes,), int64
    """
    gen = np.random.default_rng(seed)
    centres = 3.0 * gen.standard_normal((n_classes, n_features))
    X = np.concatenate([c + spread * gen.standard_normal((n_per_class, n_features))
                        for c in centres])
    y = np.repeat(np.arange(n_classes), n_per_class)
    perm = gen.permutation(len(y))
    return X[perm], y[perm]


@pytest.fixture
def make_blobs():
    """The generator of blob data sets (a function, see :func:`_blobs`)."""
    return _blobs


@pytest.fixture
def blobs():
    """90 rows, 4 features, 3 separable classes (see :func:`_blobs`)."""
    return _blobs()
