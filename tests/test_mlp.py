"""Behaviour of :class:`cymlp.MLPClassifier` as an estimator.

Incremental and warm-started training, early stopping and development sets, the
progress report, ``history_`` and its diagnostics, labels of any type, the learning
rate schedules, the convergence warning, pickling, and the parameters exposed as
live views (``coefs_``, ``intercepts_``).
"""

import itertools
import pickle
import re
import warnings

import numpy as np
import pytest

from cymlp import MLPClassifier
from cymlp import _reference as ref
from cymlp._compat import ConvergenceWarning

HISTORY_KEYS = {"epoch", "loss", "train_accuracy", "val_accuracy", "lr", "seconds",
                "samples_per_s"}
DIAGNOSTIC_KEYS = {"saturated", "dead", "grad_norm"}


def _fit(model, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **kwargs)


def _split(X, y, n_dev):
    return X[n_dev:], y[n_dev:], X[:n_dev], y[:n_dev]


# ------------------------------------------------------------------ basics
def test_fit_returns_self_and_learns(blobs):
    X, y = blobs
    model = MLPClassifier((10,), solver="adam", learning_rate_init=0.01, max_iter=100,
                          random_state=0)
    assert _fit(model, X, y) is model
    assert model.score(X, y) > 0.95
    assert model.n_features_in_ == 4
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    assert model.n_iter_ == len(model.loss_curve_) <= 100
    assert model.t_ == model.n_iter_ * len(y)
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    proba = model.predict_proba(X)
    assert proba.shape == (len(y), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(model.predict_log_proba(X)), proba, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), model.classes_[proba.argmax(axis=1)])


def test_linear_model_without_hidden_layers(blobs):
    X, y = blobs
    model = _fit(MLPClassifier((), solver="sgd", learning_rate_init=0.1, max_iter=50,
                               random_state=0), X, y)
    assert len(model.coefs_) == 1 and model.coefs_[0].shape == (4, 3)
    assert model.score(X, y) > 0.95


def test_swiglu_layer_shapes(blobs):
    X, y = blobs
    model = _fit(MLPClassifier((6, 5), "swiglu", max_iter=2, random_state=0), X, y)
    assert [w.shape for w in model.coefs_] == [(4, 12), (6, 10), (5, 3)]
    assert [b.shape for b in model.intercepts_] == [(12,), (10,), (3,)]


@pytest.mark.parametrize("bias, expected", [
    ("both", [True, True, True]), ("hidden", [True, True, False]),
    ("output", [False, False, True]), ("none", [False, False, False]),
])
def test_bias_placement_attributes(blobs, bias, expected):
    X, y = blobs
    model = _fit(MLPClassifier((5, 4), bias=bias, max_iter=2, random_state=0), X, y)
    assert [b is not None for b in model.intercepts_] == expected


def test_batch_size_larger_than_data_warns(blobs):
    X, y = blobs
    with pytest.warns(UserWarning, match="batch_size=500 is larger than the 90"):
        _fit(MLPClassifier((4,), batch_size=500, max_iter=2, random_state=0), X, y)


# ------------------------------------------------------------------ incremental training
def test_partial_fit_with_classes(blobs):
    X, y = blobs
    model = MLPClassifier((8,), random_state=0)
    first = y < 2
    assert model.partial_fit(X[first], y[first], classes=np.array([0, 1, 2])) is model
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    assert model.predict_proba(X).shape == (len(y), 3)
    assert model.n_iter_ == 1 and model.t_ == first.sum()
    model.partial_fit(X, y)  # the third class may now appear
    assert model.n_iter_ == 2 and model.t_ == first.sum() + len(y)
    assert len(model.loss_curve_) == 2


def test_partial_fit_continues_where_it_stopped(blobs):
    """k partial_fit calls equal a fit of k epochs (same seed, same shuffles)."""
    X, y = blobs
    params = {"hidden_layer_sizes": (6,), "solver": "adam", "random_state": 3, "tol": 0.0}
    incremental = MLPClassifier(**params)
    for _ in range(4):
        incremental.partial_fit(X, y)
    full = _fit(MLPClassifier(max_iter=4, **params), X, y)
    for a, b in zip(incremental.coefs_ + incremental.intercepts_,
                    full.coefs_ + full.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert incremental.loss_curve_ == full.loss_curve_


def test_partial_fit_learns(blobs):
    X, y = blobs
    model = MLPClassifier((10,), learning_rate_init=0.01, random_state=0)
    for _ in range(60):
        model.partial_fit(X, y)
    assert model.score(X, y) > 0.95


def test_warm_start_continues_training(blobs):
    X, y = blobs
    model = MLPClassifier((8,), warm_start=True, max_iter=5, tol=0.0, random_state=0)
    _fit(model, X, y)
    after_first = [w.copy() for w in model.coefs_]
    curve = list(model.loss_curve_)
    _fit(model, X, y)
    assert model.n_iter_ == 10 and len(model.loss_curve_) == 10
    assert model.loss_curve_[:5] == curve
    assert not np.array_equal(model.coefs_[0], after_first[0])
    # the same two fits without warm start: the second restarts from the seed
    cold = MLPClassifier((8,), warm_start=False, max_iter=5, tol=0.0, random_state=0)
    _fit(cold, X, y)
    _fit(cold, X, y)
    assert cold.n_iter_ == 5
    np.testing.assert_array_equal(cold.coefs_[0], after_first[0])
    # and warm-started training equals ten epochs in one go
    ten = _fit(MLPClassifier((8,), max_iter=10, tol=0.0, random_state=0), X, y)
    np.testing.assert_array_equal(model.coefs_[0], ten.coefs_[0])


# ------------------------------------------------------------------ validation
def test_validation_data_keeps_the_best_epoch(make_blobs):
    X, y = make_blobs(n_per_class=60, spread=2.5, seed=4)  # overlapping classes
    Xtr, ytr, Xdev, ydev = _split(X, y, 60)
    model = MLPClassifier((32,), solver="sgd", learning_rate_init=0.3, momentum=0.9,
                          max_iter=40, tol=0.0, n_iter_no_change=100, random_state=0)
    _fit(model, Xtr, ytr, validation_data=(Xdev, ydev))
    scores = model.validation_scores_
    assert len(scores) == model.n_iter_ == 40
    assert [h["val_accuracy"] for h in model.history_] == scores
    assert model.best_validation_score_ == max(scores)
    assert model.best_epoch_ == int(np.argmax(scores)) + 1
    assert model.score(Xdev, ydev) == pytest.approx(model.best_validation_score_)


def test_validation_data_restores_parameters_of_the_best_epoch(make_blobs):
    """The kept parameters are those after the best epoch, not after the last one."""
    X, y = make_blobs(n_per_class=60, spread=2.5, seed=4)
    Xtr, ytr, Xdev, ydev = _split(X, y, 60)
    params = {"hidden_layer_sizes": (32,), "solver": "sgd", "learning_rate_init": 0.3,
                  "momentum": 0.9, "tol": 0.0, "n_iter_no_change": 100, "random_state": 0}
    model = _fit(MLPClassifier(max_iter=40, **params), Xtr, ytr,
                 validation_data=(Xdev, ydev))
    best = model.best_epoch_
    replay = _fit(MLPClassifier(max_iter=best, **params), Xtr, ytr)
    for a, b in zip(model.coefs_ + model.intercepts_, replay.coefs_ + replay.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_holds_out_a_stratified_fraction(blobs):
    X, y = blobs  # 30 rows of each of 3 classes
    model = _fit(MLPClassifier((8,), early_stopping=True, validation_fraction=0.1,
                               max_iter=15, tol=0.0, random_state=0), X, y)
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert 1 <= model.best_epoch_ <= model.n_iter_
    # 3 of the 30 rows of each class are held out: 81 training rows per epoch
    assert model.t_ == 81 * model.n_iter_
    assert all(0.0 <= s <= 1.0 for s in model.validation_scores_)


def test_early_stopping_stops_and_keeps_the_best(make_blobs):
    X, y = make_blobs(n_per_class=60, spread=3.0, seed=2)
    model = _fit(MLPClassifier((16,), early_stopping=True, validation_fraction=0.2,
                               solver="adam", learning_rate_init=0.05, max_iter=300,
                               n_iter_no_change=5, random_state=0), X, y)
    assert model.n_iter_ < 300  # stopped by the validation score
    scores = model.validation_scores_
    assert model.best_epoch_ == int(np.argmax(scores)) + 1
    # stopped more than n_iter_no_change epochs after the last improvement
    assert model.n_iter_ - model.best_epoch_ > 5


def test_no_validation_without_early_stopping(blobs):
    X, y = blobs
    model = _fit(MLPClassifier((4,), max_iter=3, random_state=0), X, y)
    assert model.validation_scores_ is None
    assert model.best_validation_score_ is None
    assert all(h["val_accuracy"] is None for h in model.history_)


# ------------------------------------------------------------------ reporting
def test_verbose_prints_one_line_per_epoch_to_stderr(blobs, capsys):
    X, y = blobs
    model = _fit(MLPClassifier((4,), max_iter=3, tol=0.0, verbose=True, random_state=0),
                 X, y)
    out, err = capsys.readouterr()
    assert out == ""
    lines = [line for line in err.splitlines() if line.startswith("epoch")]
    assert len(lines) == model.n_iter_ == 3
    for i, line in enumerate(lines, start=1):
        assert line.startswith(f"epoch {i}/3")
        assert "samples/s" in line
        loss = float(re.search(r"loss=([0-9.]+)", line).group(1))
        assert loss == pytest.approx(model.loss_curve_[i - 1], abs=1e-5)


def test_silent_by_default(blobs, capsys):
    X, y = blobs
    _fit(MLPClassifier((4,), max_iter=2, random_state=0), X, y)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_history_records_every_epoch(blobs):
    X, y = blobs
    model = _fit(MLPClassifier((4,), solver="sgd", max_iter=4, tol=0.0, random_state=0),
                 X, y)
    assert len(model.history_) == model.n_iter_ == 4
    for i, h in enumerate(model.history_, start=1):
        assert set(h) == HISTORY_KEYS
        assert h["epoch"] == i
        assert h["loss"] == model.loss_curve_[i - 1]
        assert 0.0 <= h["train_accuracy"] <= 1.0
        assert h["lr"] == model.learning_rate_init
        assert h["seconds"] >= 0 and h["samples_per_s"] > 0


def test_diagnostics_entries(blobs):
    X, y = blobs
    for activation, sat_kind, dead_kind in (("sigmoid", float, type(None)),
                                            ("relu", type(None), float),
                                            ("swiglu", type(None), float)):
        model = _fit(MLPClassifier((6, 5), activation, max_iter=3, tol=0.0,
                                   diagnostics=True, random_state=0), X, y)
        for h in model.history_:
            assert set(h) == HISTORY_KEYS | DIAGNOSTIC_KEYS
            assert len(h["saturated"]) == 2 and len(h["dead"]) == 2
            assert len(h["grad_norm"]) == 3
            assert all(isinstance(s, sat_kind) for s in h["saturated"])
            assert all(isinstance(d, dead_kind) for d in h["dead"])
            for v in h["saturated"] + h["dead"]:
                assert v is None or 0.0 <= v <= 1.0
            assert all(g > 0 for g in h["grad_norm"])
    model = _fit(MLPClassifier((4,), max_iter=2, random_state=0), X, y)
    assert not DIAGNOSTIC_KEYS & set(model.history_[0])


def test_diagnostic_gradient_norms_are_the_full_data_gradient(blobs):
    """With fewer than 512 rows the norms are those of the gradient of all the data,
    at the parameters reached at the end of the epoch."""
    X, y = blobs
    model = _fit(MLPClassifier((6, 5), "tanh", bias="hidden", dtype="float64", alpha=0.01,
                               max_iter=2, tol=0.0, diagnostics=True, random_state=0), X, y)
    weights = [w.copy() for w in model.coefs_]
    biases = [None if b is None else b.copy() for b in model.intercepts_]
    want = ref.loss_and_grads(weights, biases, X, y, 3, ["tanh", "tanh"], alpha=0.01)
    norms = [np.sqrt(np.sum(dw ** 2) + (0.0 if db is None else np.sum(db ** 2)))
             for dw, db in zip(want["dW"], want["db"])]
    np.testing.assert_allclose(model.history_[-1]["grad_norm"], norms, rtol=1e-10)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_diagnostics_do_not_change_training(blobs, early_stopping):
    """Recording diagnostics only observes: same seed, same parameters and losses."""
    X, y = blobs
    params = {"hidden_layer_sizes": (6,), "batch_size": 10, "max_iter": 3, "tol": 0.0,
                  "early_stopping": early_stopping, "random_state": 0}
    plain = _fit(MLPClassifier(**params), X, y)
    observed = _fit(MLPClassifier(diagnostics=True, **params), X, y)
    for a, b in zip(plain.coefs_ + plain.intercepts_,
                    observed.coefs_ + observed.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert plain.loss_curve_ == observed.loss_curve_


def test_dead_units_are_counted(blobs):
    """Units whose incoming weights are all negative on positive data never fire."""
    X, y = blobs
    X = np.abs(X) + 0.1
    model = MLPClassifier((4,), "relu", solver="sgd", learning_rate_init=1e-9,
                          diagnostics=True, random_state=0)
    model._initialize(X, y)
    model.coefs_[0][:, :2] = -1.0  # units 0 and 1: k < 0 on every row
    model.coefs_[0][:, 2:] = 1.0  # units 2 and 3: k > 0 on every row
    model.partial_fit(X, y)
    assert model.history_[-1]["dead"] == [0.5]


def test_sigmoid_saturates_with_a_huge_learning_rate(blobs):
    X, y = blobs
    saturation = {}
    for lr in (1e-3, 50.0):
        model = _fit(MLPClassifier((16,), "sigmoid", solver="sgd", momentum=0.0,
                                   learning_rate_init=lr, max_iter=10, tol=0.0,
                                   diagnostics=True, random_state=0), X, y)
        saturation[lr] = model.history_[-1]["saturated"][0]
    assert saturation[1e-3] < 0.1
    assert saturation[50.0] > 0.5


# ------------------------------------------------------------------ labels
def test_string_labels(blobs):
    X, y = blobs
    names = np.array(["setosa", "versicolor", "virginica"])
    model = _fit(MLPClassifier((8,), learning_rate_init=0.01, max_iter=80,
                               random_state=0), X, names[y])
    np.testing.assert_array_equal(model.classes_, names)
    pred = model.predict(X)
    assert pred.dtype.kind == "U"
    assert set(pred) <= set(names)
    assert model.score(X, names[y]) > 0.95


def test_string_labels_partial_fit(blobs):
    X, y = blobs
    names = np.array(["a", "b", "c"])
    model = MLPClassifier((8,), random_state=0)
    model.partial_fit(X[y == 0], names[y[y == 0]], classes=names)
    np.testing.assert_array_equal(model.classes_, names)
    with pytest.raises(ValueError, match="'d'"):
        model.partial_fit(X[:2], ["a", "d"])


def test_mixed_type_labels(blobs):
    X, y = blobs
    labels = np.array([1, "one", 2.5], dtype=object)
    model = _fit(MLPClassifier((8,), learning_rate_init=0.01, max_iter=80,
                               random_state=0), X, labels[y])
    assert len(model.classes_) == 3
    assert set(model.classes_.tolist()) == {1, "one", 2.5}
    pred = model.predict(X)
    assert np.mean(pred == labels[y]) > 0.95


def test_label_order_follows_classes(blobs):
    X, y = blobs
    labels = np.array([10, -3, 7])
    model = _fit(MLPClassifier((8,), learning_rate_init=0.01, max_iter=80,
                               random_state=0), X, labels[y])
    np.testing.assert_array_equal(model.classes_, [-3, 7, 10])
    proba = model.predict_proba(X)
    # the column of a class is its position in classes_
    np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)], model.predict(X))
    assert np.mean(model.predict(X) == labels[y]) > 0.95


def test_two_classes(blobs):
    X, y = blobs
    keep = y < 2
    model = _fit(MLPClassifier((4,), max_iter=30, learning_rate_init=0.01,
                               random_state=0), X[keep], y[keep] == 1)
    np.testing.assert_array_equal(model.classes_, [False, True])
    assert model.predict_proba(X).shape == (len(X), 2)
    assert model.coefs_[-1].shape == (4, 2)


# ------------------------------------------------------------------ schedules
def test_invscaling_schedule(blobs):
    X, y = blobs
    model = _fit(MLPClassifier((4,), solver="sgd", learning_rate="invscaling",
                               learning_rate_init=0.1, power_t=0.5, max_iter=4, tol=0.0,
                               random_state=0), X, y)
    n = len(y)
    expected = [0.1 / (e * n + 1) ** 0.5 for e in range(4)]
    np.testing.assert_allclose([h["lr"] for h in model.history_], expected, rtol=1e-12)


def test_adaptive_schedule_divides_by_five(blobs):
    """With an unattainable tol every epoch after arming is 'no improvement'."""
    X, y = blobs
    params = {"hidden_layer_sizes": (10,), "solver": "sgd", "learning_rate_init": 0.1,
                  "tol": 10.0, "n_iter_no_change": 2, "max_iter": 12, "random_state": 0}
    adaptive = _fit(MLPClassifier(learning_rate="adaptive", **params), X, y)
    lrs = [h["lr"] for h in adaptive.history_]
    assert lrs[0] == 0.1
    drops = [b / a for a, b in itertools.pairwise(lrs) if b != a]
    assert drops and all(r == pytest.approx(0.2) for r in drops)
    assert adaptive.n_iter_ == 12  # it keeps going with smaller steps
    constant = _fit(MLPClassifier(learning_rate="constant", **params), X, y)
    assert constant.n_iter_ < 12  # the same condition stops a constant rate
    assert all(h["lr"] == 0.1 for h in constant.history_)


def test_convergence_warning_at_max_iter(blobs):
    X, y = blobs
    with pytest.warns(ConvergenceWarning, match=r"maximum iterations \(3\)"):
        MLPClassifier((4,), max_iter=3, tol=0.0, random_state=0).fit(X, y)


def test_no_convergence_warning_when_stopped_early(blobs):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MLPClassifier((10,), solver="sgd", learning_rate_init=0.1, tol=10.0,
                              n_iter_no_change=2, max_iter=50, random_state=0).fit(X, y)
    assert model.n_iter_ < 50


def test_partial_fit_does_not_warn(blobs):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        MLPClassifier((4,), max_iter=1).partial_fit(X, y)


# ------------------------------------------------------------------ persistence
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pickle_round_trip(blobs, dtype):
    X, y = blobs
    model = _fit(MLPClassifier((6, 5), "gelu", bias="hidden", dtype=dtype, max_iter=5,
                               random_state=0), X, y)
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))
    for a, b in zip(clone.coefs_ + clone.intercepts_, model.coefs_ + model.intercepts_):
        if b is None:
            assert a is None
        else:
            np.testing.assert_array_equal(a, b)
    assert clone.loss_curve_ == model.loss_curve_ and clone.n_iter_ == model.n_iter_
    # the copy is independent and still trainable
    clone.partial_fit(X, y)
    assert not np.array_equal(clone.coefs_[0], model.coefs_[0])
    assert clone.n_iter_ == model.n_iter_ + 1


def test_pickle_keeps_string_classes(blobs):
    X, y = blobs
    model = _fit(MLPClassifier((4,), max_iter=2, random_state=0), X,
                 np.array(["x", "y", "z"])[y])
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))


# ------------------------------------------------------------------ parameter views
def test_coefs_are_live_views(blobs):
    X, y = blobs
    model = _fit(MLPClassifier((4,), dtype="float64", max_iter=2, random_state=0), X, y)
    before = model.predict_proba(X)
    model.coefs_[-1][...] = 0.0
    model.intercepts_[-1][...] = [0.0, 0.0, np.log(3.0)]
    proba = model.predict_proba(X)
    assert not np.allclose(proba, before)
    np.testing.assert_allclose(proba, np.tile([0.2, 0.2, 0.6], (len(X), 1)), rtol=1e-12)


def test_assigned_coefs_are_used_by_predict_and_partial_fit(blobs):
    X, y = blobs
    model = MLPClassifier((5,), "tanh", solver="sgd", momentum=0.0, alpha=0.0,
                          batch_size=30, shuffle=False, learning_rate_init=0.1,
                          dtype="float64", random_state=0)
    model._initialize(X, y)
    rng = np.random.default_rng(1)
    new_W0 = rng.normal(0.0, 0.5, size=model.coefs_[0].shape)
    new_b1 = rng.normal(0.0, 0.5, size=3)
    model.coefs_[0] = new_W0  # a new array, not an in-place change
    model.intercepts_[1] = new_b1
    weights = [new_W0.copy(), model.coefs_[1].copy()]
    biases = [model.intercepts_[0].copy(), new_b1.copy()]
    _, _, Z = ref.forward(weights, biases, X, ["tanh"])
    np.testing.assert_allclose(model.predict_proba(X), ref.softmax(Z), rtol=1e-12)
    batches = [(X[s:s + 30], y[s:s + 30]) for s in range(0, 90, 30)]
    ref.train_steps(weights, biases, batches, 3, ["tanh"], solver="sgd", lr=0.1)
    model.partial_fit(X, y)
    for got, want in zip(model.coefs_ + model.intercepts_, weights + biases):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    # the assigned array itself is not trained: it was copied in
    assert not np.allclose(new_W0, model.coefs_[0])


def test_assigning_a_wrong_shape_raises(blobs):
    X, y = blobs
    model = _fit(MLPClassifier((4,), max_iter=2, random_state=0), X, y)
    model.coefs_[0] = np.zeros((4, 5))
    with pytest.raises(ValueError, match=r"coefs_\[0\] must have shape \(4, 4\)"):
        model.predict(X)
    with pytest.raises(ValueError, match=r"coefs_\[0\] must have shape"):
        model.partial_fit(X, y)


def test_assigning_bad_values_raises(blobs):
    X, y = blobs
    model = _fit(MLPClassifier((4,), bias="output", max_iter=2, random_state=0), X, y)
    model.intercepts_[0] = np.zeros(4)
    with pytest.raises(ValueError, match=r"intercepts_\[0\] must stay None"):
        model.predict(X)
    model.intercepts_[0] = None
    model.coefs_[1] = np.full((4, 3), np.nan)
    with pytest.raises(ValueError, match=r"coefs_\[1\] contains NaN"):
        model.predict(X)
    model.coefs_[1] = np.zeros((4, 3))
    model.coefs_.append(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="must keep 2 entries"):
        model.predict(X)


# ------------------------------------------------------------------ initialisation

@pytest.mark.parametrize("init, activation", [("auto", "relu"), ("auto", "tanh"),
                                              ("he", "tanh"), ("glorot", "relu"),
                                              ("fan_in", "relu")])
def test_initial_weights_follow_the_documented_distributions(init, activation):
    """docs/model.md: uniform in [-r, r] with r from Glorot, He or 1/sqrt(fan_in); the
    output layer is Glorot except with 'fan_in'; biases 0 except with 'fan_in'."""
    d, v, m = 400, 300, 50
    X = np.random.default_rng(0).standard_normal((m, d))
    model = MLPClassifier((v,), activation, init=init, random_state=0)
    model._initialize(X, np.arange(m))
    he = init == "he" or (init == "auto" and activation == "relu")
    for l, (fan_in, fan_out) in enumerate([(d, v), (v, m)]):
        W, b = model.coefs_[l], model.intercepts_[l]
        if init == "fan_in":
            r = 1 / np.sqrt(fan_in)
        elif he and l == 0:
            r = np.sqrt(6 / fan_in)
        else:
            r = np.sqrt(6 / (fan_in + fan_out))
        assert W.shape == (fan_in, fan_out)
        assert np.abs(W).max() <= r
        # uniform on [-r, r]: standard deviation r / sqrt(3), all of the range used
        np.testing.assert_allclose(W.std(), r / np.sqrt(3), rtol=0.02)
        assert np.abs(W).max() > 0.99 * r
        if init == "fan_in":
            assert np.abs(b).max() <= r and np.abs(b).max() > 0.5 * r
        else:
            assert not b.any()
