"""The lecture note's XOR example, pinned down with cymlp.

The note takes the four corners of the unit square, ``(0,0), (0,1), (1,0), (1,1)``,
labelled by exclusive or, and makes four points:

1. a hidden layer ``W = [[1, -1], [1, -1]]``, ``b = [-1, 1]`` moves the corners so
   that a line separates the classes;
2. stacking linear layers gives nothing new: two affine maps compose to one;
3. so a network with the identity activation is a linear classifier and gets at most
   3 of the 4 corners right;
4. a nonlinearity fixes it: the step function with hand-set weights separates XOR,
   but has no derivative, so it cannot be trained by backpropagation; differentiable
   activations (ReLU, tanh, sigmoid) learn XOR.

Convention (checked in :func:`test_note_map_orientation_and_sign`): cymlp applies a
layer to a row vector, ``k = x W + b`` with ``W = coefs_[0]`` of shape
``(fan_in, fan_out)``. With the note's ``W`` and ``b`` this sends the corners, in the
order above, to ``(-1, 1), (0, 0), (0, 0), (1, -1)``. The note lists the images as
``(1, -1), (0, 0), (0, 0), (-1, 1)``: that is the same map with both signs flipped,
``k = -(x W + b)`` (equivalently ``x (-W) + (-b)``), or this map's images listed for
the corners in reverse order. The column-vector reading ``k = W x + b`` (``x W^T + b``
for rows) gives neither. Both conventions separate XOR after a ReLU or a step: the
two XOR-true corners meet at the origin, the XOR-false corners go to opposite
points on the other diagonal.

Composition in cymlp's row convention: ``(x W0 + b0) W1 + b1 = x (W0 W1) + (b0 W1 + b1)``,
i.e. ``W' = W0 W1`` and ``b' = b0 W1 + b1``; in the note's column convention
(``W x + b``) the same statement reads ``W' = W1 W0``, ``b' = W1 b0 + b1``.
"""

import warnings

import numpy as np
import pytest
from _shared import dense_inputs

from cymlp import MLPClassifier
from cymlp._compat import ConvergenceWarning

W_NOTE = np.array([[1.0, -1.0], [1.0, -1.0]])
B_NOTE = np.array([-1.0, 1.0])
NOTE_IMAGES = np.array([[1.0, -1.0], [0.0, 0.0], [0.0, 0.0], [-1.0, 1.0]])


def _hidden_preactivation(model, X):
    """K[0] of a fitted model (the hidden pre-activations ``k``), via the engine."""
    _, ks, _ = model._engine.forward(dense_inputs(X.astype(model.coefs_[0].dtype)),
                                     keep_hidden=True)
    return ks[0]


def _identity_model_with_note_layer(X, y):
    model = MLPClassifier((2,), "identity", dtype="float64", random_state=0)
    model._initialize(X, y)
    model.coefs_[0][...] = W_NOTE
    model.intercepts_[0][...] = B_NOTE
    return model


def test_note_map_orientation_and_sign(xor_data):
    X, _ = xor_data
    row_convention = X @ W_NOTE + B_NOTE
    np.testing.assert_array_equal(row_convention, -NOTE_IMAGES)
    np.testing.assert_array_equal(-(X @ W_NOTE + B_NOTE), NOTE_IMAGES)
    np.testing.assert_array_equal(row_convention[::-1], NOTE_IMAGES)
    column_convention = X @ W_NOTE.T + B_NOTE
    assert not np.array_equal(column_convention, NOTE_IMAGES)
    assert not np.array_equal(column_convention, -NOTE_IMAGES)
    # an affine map with +b sends (0, 0) to b, which is not the note's first image
    assert not np.array_equal(B_NOTE, NOTE_IMAGES[0])


def test_cymlp_layer_uses_the_row_convention(xor_data):
    """coefs_[0] = W makes cymlp's hidden pre-activation x W + b, not W x + b."""
    X, y = xor_data
    model = _identity_model_with_note_layer(X, y)
    K = _hidden_preactivation(model, X)
    np.testing.assert_array_equal(K, X @ W_NOTE + B_NOTE)
    np.testing.assert_array_equal(-K, NOTE_IMAGES)


def test_note_map_makes_xor_linearly_separable(xor_data):
    """After the map (and a ReLU) the XOR-true corners coincide at the origin."""
    X, y = xor_data
    for K in (X @ W_NOTE + B_NOTE, NOTE_IMAGES):
        H = np.maximum(K, 0)
        np.testing.assert_array_equal(H[y == 1], 0.0)
        assert np.all(H[y == 0].sum(axis=1) == 1.0)
        # the line h1 + h2 = 1/2 separates the classes
        np.testing.assert_array_equal((H.sum(axis=1) < 0.5).astype(int), y)


def test_two_linear_layers_are_one(xor_data):
    X, y = xor_data
    rng = np.random.default_rng(0)
    Xr = rng.standard_normal((50, 2))
    deep = MLPClassifier((3,), "identity", dtype="float64", random_state=1)
    deep._initialize(X, y)
    W0, W1 = deep.coefs_
    b0, b1 = deep.intercepts_
    b0[...] = rng.standard_normal(3)
    b1[...] = rng.standard_normal(2)
    shallow = MLPClassifier((), "identity", dtype="float64", random_state=2)
    shallow._initialize(X, y)
    assert len(shallow.coefs_) == 1
    shallow.coefs_[0][...] = W0 @ W1
    shallow.intercepts_[0][...] = b0 @ W1 + b1
    np.testing.assert_allclose(deep.predict_proba(Xr), shallow.predict_proba(Xr),
                               rtol=1e-12, atol=1e-15)
    # the column-convention formula W' = W1 W0 is the same product, transposed
    np.testing.assert_allclose((W1.T @ W0.T).T, shallow.coefs_[0], rtol=1e-15)
    # the row-convention product in the other order is not even the right shape
    assert (W1 @ W0).shape == (3, 3) != shallow.coefs_[0].shape


@pytest.mark.parametrize("seed", range(4))
def test_identity_network_is_at_most_75_percent_on_xor(xor_data, seed):
    X, y = xor_data
    model = MLPClassifier((8,), "identity", solver="sgd", momentum=0.0, alpha=0.0,
                          learning_rate_init=0.5, max_iter=300, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert model.score(X, y) <= 0.75
    # the best it can do is a linear model's: its loss stays near log 2 per example
    assert model.loss_curve_[-1] > 0.45


def test_step_network_with_hand_set_weights_separates_xor(xor_data):
    X, y = xor_data
    model = MLPClassifier((2,), "step", dtype="float64")
    model._initialize(X, y)
    # hidden: step(x W + b) sends (0,0) -> (0,1), (0,1), (1,0) -> (0,0), (1,1) -> (1,0)
    model.coefs_[0][...] = W_NOTE
    model.intercepts_[0][...] = B_NOTE
    # output: z0 = h1 + h2, z1 = 1/2, so class 1 exactly when both units are off
    model.coefs_[1][...] = [[1.0, 0.0], [1.0, 0.0]]
    model.intercepts_[1][...] = [0.0, 0.5]
    np.testing.assert_array_equal(model.predict(X), y)
    assert model.score(X, y) == 1.0
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba[y == 1, 1], 1 / (1 + np.exp(-0.5)))
    np.testing.assert_allclose(proba[y == 0, 1], 1 / (1 + np.exp(0.5)))


def test_step_network_cannot_be_trained(xor_data):
    X, y = xor_data
    with pytest.raises(ValueError, match="derivative"):
        MLPClassifier((2,), "step").fit(X, y)
    with pytest.raises(ValueError, match="derivative"):
        MLPClassifier((2,), "step").partial_fit(X, y, classes=[0, 1])


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trained_networks_learn_xor(xor_data, activation, seed):
    X, y = xor_data
    # tol=0: the sigmoid network sits on a plateau near log 2 for a few hundred epochs
    # before it escapes, which the default tol=1e-4 rule would take for convergence
    model = MLPClassifier((8,), activation, solver="sgd", momentum=0.0, alpha=0.0,
                          learning_rate_init=0.5, max_iter=1500, tol=0.0,
                          random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    np.testing.assert_array_equal(model.predict(X), y)
    assert model.loss_curve_[-1] < 0.1
