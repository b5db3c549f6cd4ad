"""Sample weights and class weights.

The meaning (scikit-learn's): the loss of a batch is the weighted mean of its rows'
losses, so an integer weight k acts like k copies of the row, and a weight 0 like no
row. In full-batch training (one batch, no shuffling) that is exact, and checked here
to 1e-12 in float64; class weights are per-class sample weights.
"""
import warnings

import numpy as np
import pytest

from cymlp import MLPClassifier, TextClassifier, gradcheck
from cymlp import _reference as ref
from cymlp.datasets import make_negation_text
from cymlp.gradcheck import analytic_gradient

SOLVERS = {
    "sgd": {"solver": "sgd", "momentum": 0.0},
    "momentum": {"solver": "sgd", "momentum": 0.9},
    "adagrad": {"solver": "adagrad"},
    "adam": {"solver": "adam"},
}


def _data(n=24, d=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.standard_normal((n, d)) + y[:, None]
    return X, y


def _full_batch(n, **params):
    """A model that trains on all n rows as one batch, in order (deterministic)."""
    base = {"hidden_layer_sizes": (5,), "activation": "tanh", "dtype": "float64",
            "batch_size": n, "shuffle": False, "max_iter": 6, "random_state": 0,
            "learning_rate_init": 0.05, "alpha": 0.01, "tol": 0.0}
    return MLPClassifier(**{**base, **params})


def _fit(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(*args, **kwargs)


def _assert_same_parameters(a, b, tol=1e-12):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(p, q, rtol=tol, atol=tol)


@pytest.mark.parametrize("solver", list(SOLVERS))
def test_integer_weights_equal_repeated_rows(solver):
    X, y = _data()
    w = np.array([1, 2, 0, 3] * 6)
    X_rep, y_rep = np.repeat(X, w, axis=0), np.repeat(y, w)
    weighted = _fit(_full_batch(len(y), **SOLVERS[solver]), X, y, sample_weight=w)
    repeated = _fit(_full_batch(len(y_rep), **SOLVERS[solver]), X_rep, y_rep)
    # the same initial parameters (they depend on the shapes and the seed only)
    _assert_same_parameters(weighted, repeated)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-12)


def test_zero_weights_drop_rows():
    X, y = _data()
    w = (np.arange(len(y)) % 4 != 1).astype(float)
    keep = w > 0
    weighted = _fit(_full_batch(len(y)), X, y, sample_weight=w)
    dropped = _fit(_full_batch(int(keep.sum())), X[keep], y[keep])
    _assert_same_parameters(weighted, dropped)


def test_balanced_class_weight_equals_its_sample_weights():
    X, y = _data(30)
    y = np.where(np.arange(30) < 20, 0, y)  # imbalanced: class 0 most frequent
    counts = np.bincount(y)
    w = len(y) / (len(counts) * counts[y])
    balanced = _fit(_full_batch(len(y), class_weight="balanced"), X, y)
    explicit = _fit(_full_batch(len(y)), X, y, sample_weight=w)
    _assert_same_parameters(balanced, explicit, tol=0)


def test_class_weight_dict_times_sample_weight():
    X, y = _data()
    sw = np.linspace(0.5, 2.0, len(y))
    cw = {0: 2.0, 2: 0.5}  # class 1 keeps weight 1
    both = _fit(_full_batch(len(y), class_weight=cw), X, y, sample_weight=sw)
    explicit = _fit(_full_batch(len(y)), X, y,
                    sample_weight=sw * np.array([2.0, 1.0, 0.5])[y])
    _assert_same_parameters(both, explicit, tol=0)


def test_weighted_gradient_matches_the_reference_and_finite_differences():
    X, y = _data(12)
    w = np.linspace(0.2, 3.0, 12)
    model = _full_batch(12, label_smoothing=0.1, alpha=0.3)
    model._initialize(X, y)
    errors = gradcheck(model, X, y, sample_weight=w)
    assert max(errors.values()) < 1e-6, errors
    got = analytic_gradient(model, X, y, sample_weight=w)
    weights = [c.copy() for c in model.coefs_]
    biases = [b.copy() for b in model.intercepts_]
    want = ref.loss_and_grads(weights, biases, X, y, 3, ["tanh"], alpha=0.3,
                              label_smoothing=0.1, sample_weight=w)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-12)
    for a, b in zip(got["dW"] + got["db"], want["dW"] + want["db"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_minibatch_weights_match_the_reference_trajectory():
    """Several minibatches (one of total weight 0, skipped) against train_steps."""
    X, y = _data(12)
    w = np.array([1.0, 0.5, 2.0, 0.0, 0.0, 0.0, 3.0, 1.0, 1.0, 0.2, 0.0, 4.0])
    model = _full_batch(12, batch_size=3, max_iter=1, solver="sgd", momentum=0.0,
                        learning_rate_init=0.1)
    model._initialize(X, y)
    weights = [c.copy() for c in model.coefs_]
    biases = [b.copy() for b in model.intercepts_]
    batches = [(X[s:s + 3], y[s:s + 3], w[s:s + 3]) for s in range(0, 12, 3)]
    losses = ref.train_steps(weights, biases, batches, 3, ["tanh"], solver="sgd", lr=0.1,
                             alpha=0.01)
    model.partial_fit(X, y, sample_weight=w)
    for got, want in zip(model.coefs_ + model.intercepts_, weights + biases):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    totals = [b[2].sum() for b in batches]
    assert model.loss_curve_[0] == pytest.approx(np.dot(losses, totals) / w.sum(),
                                                 rel=1e-12)


def test_text_model_weights_equal_repeated_texts():
    """Both models start from the same vocabulary and table (initialised on the same
    texts); then each full-batch epoch of the weighted texts equals one of the texts
    repeated by their weights: the network and every row of E."""
    texts, y = make_negation_text(30, random_state=0)
    w = np.array([1, 2, 0] * 10)
    rep = [t for t, k in zip(texts, w) for _ in range(k)]
    y_rep = np.repeat(y, w)
    params = {"hidden_layer_sizes": (4,), "embed_dim": 3, "dtype": "float64",
              "shuffle": False, "early_stopping": False, "random_state": 0}
    weighted = TextClassifier(batch_size=len(texts), **params)._initialize(texts, y)
    repeated = TextClassifier(batch_size=len(rep), **params)._initialize(texts, y)
    for _ in range(3):
        weighted.partial_fit(texts, y, sample_weight=w)
        repeated.partial_fit(rep, y_rep)
    _assert_same_parameters(weighted, repeated)
    np.testing.assert_allclose(weighted.embeddings_, repeated.embeddings_, rtol=1e-12,
                               atol=1e-14)


def test_weighted_score_and_early_stopping_use_the_weights():
    X, y = _data(40)
    model = _fit(MLPClassifier((5,), max_iter=30, random_state=0), X, y)
    pred = model.predict(X)
    w = np.linspace(0.0, 1.0, len(y))
    assert model.score(X, y, sample_weight=w) == pytest.approx(
        np.sum(w * (pred == y)) / np.sum(w))
    # validation weights: the dev score each epoch is the weighted accuracy
    wd = np.zeros(len(y))
    wd[:5] = 1.0
    dev = _fit(MLPClassifier((5,), max_iter=4, random_state=0), X, y,
               validation_data=(X, y, wd))
    assert dev.validation_scores_ == pytest.approx(
        [s for s in dev.validation_scores_])  # recorded
    assert all(v in {k / 5 for k in range(6)} for v in dev.validation_scores_)


@pytest.mark.parametrize("weight, match", [
    (-np.ones(24), "sample_weight must be >= 0"),
    (np.full(24, np.nan), "sample_weight contains NaN or infinity"),
    (np.ones(23), r"one weight per sample \(24\), got shape \(23,\)"),
    (np.zeros(24), "sample_weight is zero for every sample"),
    (np.array(["a"] * 24), "sample_weight must hold numbers"),
])
def test_bad_sample_weights_are_clear_errors(weight, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        MLPClassifier((3,)).fit(X, y, sample_weight=weight)


@pytest.mark.parametrize("class_weight, match", [
    ({7: 1.0}, r"class_weight names labels that are not classes: \[7\]"),
    ({0: -1.0}, r"class_weight\[0\] must be in \[0, inf\]"),
    ("uniform", "class_weight must be None, 'balanced' or a dict"),
])
def test_bad_class_weights_are_clear_errors(class_weight, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        MLPClassifier((3,), class_weight=class_weight).fit(X, y)


def test_balanced_class_weight_needs_fit():
    X, y = _data()
    with pytest.raises(ValueError, match="partial_fit does not see"):
        MLPClassifier((3,), class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
