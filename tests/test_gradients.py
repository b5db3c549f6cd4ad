"""Gradients of the compiled engine: central differences and the NumPy reference.

Two independent checks of the hand-derived backward pass (``docs/model.md``):

* :func:`cymlp.gradcheck` perturbs every parameter and compares the engine's
  analytic gradient with central differences of the engine's own loss, in float64;
* the analytic gradient (``Engine.grads`` after ``Engine.gradient``) is compared
  entry by entry with :func:`cymlp._reference.loss_and_grads`, a separate NumPy
  implementation of the same equations, to 1e-12.

The cases cover every trainable activation, every bias placement, one and two
hidden layers, label smoothing and the L2 penalty. The biases are drawn at random
(not left at their initial zeros) so that every bias placement changes the function.
"""

import importlib

import numpy as np
import pytest

from cymlp import MLPClassifier, gradcheck
from cymlp import _reference as ref
from cymlp._network import BIAS_PLACEMENTS
from cymlp.activations import TRAINABLE
from cymlp.gradcheck import analytic_gradient

N_ROWS, N_FEATURES, N_CLASSES, WIDTH = 6, 4, 3, 3
KINKED = {"relu", "leaky_relu"}
#: distance from 0 every pre-activation of a kinked activation must keep, so that
#: no finite-difference step crosses the kink
KINK_MARGIN = 1e-4


def _has_bias(bias, layer, n_layers):
    if layer < n_layers - 1:
        return bias in ("both", "hidden")
    return bias in ("both", "output")


def _params(model):
    """Copies of (weights, biases) of a model, as the reference takes them."""
    weights = [np.array(w, dtype=np.float64) for w in model.coefs_]
    biases = [None if b is None else np.array(b, dtype=np.float64)
              for b in model.intercepts_]
    return weights, biases


def _distance_to_kink(model, X):
    weights, biases = _params(model)
    acts = [model.activation] * (len(weights) - 1)
    Ks, _, _ = ref.forward(weights, biases, X, acts)
    return min(float(np.min(np.abs(K))) for K in Ks)


def make_case(activation, bias, depth, *, label_smoothing=0.0, alpha=0.0, seed=0):
    """An initialised float64 model with random weights and biases, and its data.

    For the kinked activations the seed is advanced until no hidden pre-activation
    lies within ``KINK_MARGIN`` of 0.

    Returns
    -------
    model : MLPClassifier
        Initialised (``_initialize``), not trained.
    X : ndarray of shape (6, 4)
    y : ndarray of shape (6,)
        Every one of the 3 classes appears twice.
    """
    for attempt in range(50):
        rng = np.random.default_rng(1000 * seed + attempt)
        X = rng.standard_normal((N_ROWS, N_FEATURES))
        y = rng.permutation(np.arange(N_ROWS) % N_CLASSES)
        model = MLPClassifier((WIDTH,) * depth, activation, bias=bias, dtype="float64",
                              label_smoothing=label_smoothing, alpha=alpha,
                              random_state=seed)
        model._initialize(X, y)
        for w in model.coefs_:
            w[...] = rng.normal(0.0, 0.8, size=w.shape)
        for b in model.intercepts_:
            if b is not None:
                b[...] = rng.normal(0.0, 0.5, size=b.shape)
        if activation not in KINKED or _distance_to_kink(model, X) > KINK_MARGIN:
            return model, X, y
    raise RuntimeError("no seed kept the pre-activations away from the kink")


GRID = [
    pytest.param(act, bias, depth, ls, id=f"{act}-{bias}-L{depth}-ls{ls}")
    for act in TRAINABLE
    for bias in BIAS_PLACEMENTS
    for depth in (1, 2)
    for ls in (0.0, 0.1)
]


@pytest.mark.parametrize("activation, bias, depth, label_smoothing", GRID)
def test_gradcheck_float64(activation, bias, depth, label_smoothing):
    model, X, y = make_case(activation, bias, depth, label_smoothing=label_smoothing)
    errors = gradcheck(model, X, y)
    n_layers = depth + 1
    expected = {f"W{l}" for l in range(n_layers)}
    expected |= {f"b{l}" for l in range(n_layers) if _has_bias(bias, l, n_layers)}
    assert set(errors) == expected
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-6, f"{worst}: relative error {errors[worst]:.3g}"


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "gelu", "swiglu"])
@pytest.mark.parametrize("bias", ["both", "none"])
def test_gradcheck_with_l2_penalty(activation, bias):
    model, X, y = make_case(activation, bias, 2, label_smoothing=0.1, alpha=0.7, seed=3)
    errors = gradcheck(model, X, y)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("activation", ["swish", "swiglu", "leaky_relu"])
def test_gradcheck_non_default_shape_parameters(activation):
    model, X, y = make_case(activation, "both", 2, seed=5)
    model.set_params(swish_beta=1.7, leaky_slope=0.2)
    errors = gradcheck(model, X, y)
    assert max(errors.values()) < 1e-6, errors


def test_gradcheck_rejects_float32():
    X = np.random.default_rng(0).standard_normal((6, 4))
    y = np.arange(6) % 3
    with pytest.raises(ValueError, match="float64"):
        gradcheck(MLPClassifier((3,), dtype="float32"), X, y)


def test_gradcheck_detects_a_wrong_gradient(monkeypatch):
    """The check is not vacuous: a gradient that disagrees with the loss is reported.

    The engine's loss is evaluated with one label smoothing and its gradient with
    another by reaching into the finite differences: we perturb ``label_smoothing``
    between the analytic pass and the numeric passes.
    """
    gc = importlib.import_module("cymlp.gradcheck")  # the module, not the function

    model, X, y = make_case("tanh", "both", 1, label_smoothing=0.0)
    numeric_loss = gc._loss
    calls = []

    def switching(engine, *batch):
        """The numeric passes' loss, with label smoothing switched after the analytic
        pass (which runs before the first of them)."""
        if not calls:
            engine.label_smoothing = 0.3
        calls.append(1)
        return numeric_loss(engine, *batch)

    monkeypatch.setattr(gc, "_loss", switching)
    errors = gradcheck(model, X, y)
    assert len(calls) > 2
    assert max(errors.values()) > 1e-3


# ----------------------------------------------------------------- vs the reference
def _engine_gradient(model, X, y):
    """(loss, weight grads, bias grads) of the compiled engine on (X, y) as one batch."""
    grad = analytic_gradient(model, X, y)
    return grad["loss"], grad["dW"], grad["db"]


@pytest.mark.parametrize("activation", TRAINABLE)
@pytest.mark.parametrize("bias", BIAS_PLACEMENTS)
@pytest.mark.parametrize("depth", [1, 2])
def test_analytic_gradient_matches_reference(activation, bias, depth):
    model, X, y = make_case(activation, bias, depth, label_smoothing=0.1, alpha=0.3,
                            seed=7)
    loss, dW, db = _engine_gradient(model, X, y)
    weights, biases = _params(model)
    expected = ref.loss_and_grads(weights, biases, X, y, N_CLASSES,
                                  [activation] * depth, alpha=0.3, label_smoothing=0.1)
    assert loss == pytest.approx(expected["loss"], rel=1e-12, abs=1e-12)
    for l, (got, want) in enumerate(zip(dW, expected["dW"])):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"dW[{l}]")
    for l, (got, want) in enumerate(zip(db, expected["db"])):
        if want is None:
            assert got is None, f"layer {l} should have no bias"
        else:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12,
                                       err_msg=f"db[{l}]")


@pytest.mark.parametrize("activation", ["relu", "tanh", "swiglu"])
def test_analytic_gradient_depth_zero_matches_reference(activation):
    """A network without hidden layers (softmax regression) has one layer."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((N_ROWS, N_FEATURES))
    y = np.arange(N_ROWS) % N_CLASSES
    model = MLPClassifier((), activation, dtype="float64", alpha=0.2, random_state=0)
    model._initialize(X, y)
    model.intercepts_[0][...] = rng.standard_normal(N_CLASSES)
    loss, dW, db = _engine_gradient(model, X, y)
    weights, biases = _params(model)
    expected = ref.loss_and_grads(weights, biases, X, y, N_CLASSES, [], alpha=0.2)
    assert loss == pytest.approx(expected["loss"], rel=1e-12)
    np.testing.assert_allclose(dW[0], expected["dW"][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db[0], expected["db"][0], rtol=1e-12, atol=1e-12)


def test_gradient_of_a_larger_batch_matches_reference():
    """Batches wider than the BLAS blocking and with many classes."""
    rng = np.random.default_rng(12)
    X = rng.standard_normal((300, 17))
    y = np.arange(300) % 7
    model = MLPClassifier((33, 9), "gelu", dtype="float64", alpha=0.05, random_state=0,
                          label_smoothing=0.05)
    model._initialize(X, y)
    for b in model.intercepts_:
        b[...] = rng.normal(0.0, 0.3, size=b.shape)
    loss, dW, db = _engine_gradient(model, X, y)
    weights, biases = _params(model)
    expected = ref.loss_and_grads(weights, biases, X, y, 7, ["gelu"] * 2, alpha=0.05,
                                  label_smoothing=0.05)
    assert loss == pytest.approx(expected["loss"], rel=1e-12)
    for got, want in zip(dW + db, expected["dW"] + expected["db"]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
