"""The fitted state of an estimator has one owner and changes only when a fit succeeds.

* a fit that fails after a successful one (bad labels, an unseen label in the
  development set, another number of features, a diverging loss) leaves the fitted
  estimator bitwise as it was;
* parameters changed with ``set_params`` after a fit take effect at the next fit, not
  before: prediction, model files and pickles keep the fitted network; continuing
  training (``warm_start``, ``partial_fit``) with another structure is a clear error;
* model files and pickles hold the optimiser state and the generator that shuffles,
  so that training continued after a round trip is bitwise the training that was never
  interrupted, for every optimiser.
"""
import pickle
import warnings

import numpy as np
import pytest

import cymlp
from cymlp import MLPClassifier, TextClassifier
from cymlp._compat import NotFittedError
from cymlp.datasets import make_negation_text

SOLVERS = {
    "sgd": {"solver": "sgd", "momentum": 0.0},
    "momentum": {"solver": "sgd", "momentum": 0.9, "nesterovs_momentum": False},
    "nesterov": {"solver": "sgd", "momentum": 0.9, "nesterovs_momentum": True},
    "adagrad": {"solver": "adagrad"},
    "adam": {"solver": "adam"},
}


def _blobs(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.standard_normal((n, d)) + 2.0 * y[:, None]
    return X, y


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _mlp(**params):
    base = {"hidden_layer_sizes": (6,), "max_iter": 5, "random_state": 0}
    return _quiet(MLPClassifier(**{**base, **params}).fit, *_blobs())


def _texts():
    return make_negation_text(120, random_state=0)


def _text(**params):
    X, y = _texts()
    base = {"hidden_layer_sizes": (6,), "embed_dim": 4, "max_iter": 3, "random_state": 0,
            "early_stopping": False}
    return _quiet(TextClassifier(**{**base, **params}).fit, X, y)


def _snapshot(model, X):
    """Everything a failed fit must leave alone, as copies."""
    out = {
        "proba": model.predict_proba(X),
        "coefs": [w.copy() for w in model.coefs_],
        "intercepts": [None if b is None else b.copy() for b in model.intercepts_],
        "classes": model.classes_.copy(),
        "n_iter": model.n_iter_,
        "loss_curve": list(model.loss_curve_),
    }
    if isinstance(model, TextClassifier):
        out["vocabulary"] = model.vocabulary_.to_dict()
        out["E"] = model.embeddings_.copy()
    else:
        out["n_features_in"] = model.n_features_in_
    return out


def _assert_unchanged(model, X, before):
    after = _snapshot(model, X)
    np.testing.assert_array_equal(after["proba"], before["proba"])
    for got, want in zip(after["coefs"] + after["intercepts"],
                         before["coefs"] + before["intercepts"]):
        if want is None:
            assert got is None
        else:
            np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(after["classes"], before["classes"])
    assert after["n_iter"] == before["n_iter"]
    assert after["loss_curve"] == before["loss_curve"]
    if "vocabulary" in before:
        assert after["vocabulary"] == before["vocabulary"]
        np.testing.assert_array_equal(after["E"], before["E"])
    else:
        assert after["n_features_in"] == before["n_features_in"]


# ------------------------------------------------------------------ failed re-fits
X_MLP, Y_MLP = _blobs()
DIVERGE = {"solver": "sgd", "momentum": 0.0, "learning_rate_init": 1e38, "batch_size": 8}

MLP_FAILURES = {
    "one_class": (lambda m: m.fit(X_MLP, np.zeros(len(Y_MLP))), "only one class"),
    "unseen_label_in_validation_data": (
        lambda m: m.fit(X_MLP, Y_MLP, validation_data=(X_MLP[:5], [0, 1, 2, 7, 0])),
        "validation_data: .*7"),
    "other_feature_count_and_one_class": (
        lambda m: m.fit(X_MLP[:, :3], np.zeros(len(Y_MLP))), "only one class"),
    "partial_fit_other_feature_count": (lambda m: m.partial_fit(X_MLP[:, :3], Y_MLP),
                                        "3 features"),
    "partial_fit_unseen_label": (lambda m: m.partial_fit(X_MLP, Y_MLP + 5),
                                 "not among the classes"),
    "warm_start_new_hidden_sizes": (
        lambda m: m.set_params(warm_start=True, hidden_layer_sizes=(9,)).fit(X_MLP, Y_MLP),
        r"hidden changed from \(6,\) to \(9,\)"),
    # a rate this large makes the first batch's update overflow the next batch's
    # logits: some batches of the call update the parameters before it diverges
    "diverging_refit": (lambda m: m.set_params(**DIVERGE).fit(X_MLP, Y_MLP), "diverged"),
    "diverging_partial_fit": (lambda m: m.set_params(**DIVERGE).partial_fit(X_MLP, Y_MLP),
                              "diverged"),
    "diverging_warm_start": (
        lambda m: m.set_params(warm_start=True, **DIVERGE).fit(X_MLP, Y_MLP), "diverged"),
}


@pytest.mark.parametrize("case", list(MLP_FAILURES))
def test_a_failed_refit_leaves_the_mlp_bitwise_unchanged(case):
    action, match = MLP_FAILURES[case]
    model = _mlp(solver="adam")
    before = _snapshot(model, X_MLP)
    with pytest.raises((ValueError, FloatingPointError), match=match):
        _quiet(action, model)
    model.set_params(warm_start=False)
    _assert_unchanged(model, X_MLP, before)
    # and it still saves and loads to the same predictions
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict_proba(X_MLP), before["proba"])


def _text_failures():
    X, y = _texts()
    y = np.asarray(y)
    return {
        "one_class": (lambda m: m.fit(X, np.zeros(len(y))), "only one class"),
        "unseen_label_in_validation_data": (
            lambda m: m.fit(X, y, validation_data=(X[:3], [0, 1, 9])), "validation_data"),
        "partial_fit_unseen_label": (lambda m: m.partial_fit(X, y + 5),
                                     "not among the classes"),
        "not_texts": (lambda m: m.fit(np.zeros((len(y), 3)), y), "numeric array"),
        "diverging_partial_fit": (lambda m: m.set_params(**DIVERGE).partial_fit(X, y),
                                  "diverged"),
    }


@pytest.mark.parametrize("case", list(_text_failures()))
def test_a_failed_refit_leaves_the_text_model_bitwise_unchanged(case):
    action, match = _text_failures()[case]
    X, _ = _texts()
    model = _text(solver="adagrad")
    before = _snapshot(model, X)
    with pytest.raises((ValueError, FloatingPointError), match=match):
        _quiet(action, model)
    _assert_unchanged(model, X, before)


def test_a_failed_first_fit_leaves_the_estimator_unfitted():
    model = MLPClassifier((4,))
    with pytest.raises(ValueError, match="only one class"):
        model.fit(X_MLP, np.zeros(len(Y_MLP)))
    assert not hasattr(model, "classes_") and not hasattr(model, "coefs_")
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict(X_MLP)


def test_a_failed_partial_fit_restores_the_optimiser_state_too():
    """After a diverging partial_fit, the next partial_fit continues exactly as if
    the failed call had never been made."""
    model = _mlp(solver="adam")
    twin = pickle.loads(pickle.dumps(model))
    adam = model.get_params()
    # another solver for the failing call: its fresh state must not survive it either
    with pytest.raises(FloatingPointError):
        _quiet(model.set_params(**DIVERGE).partial_fit, X_MLP, Y_MLP)
    assert model.n_iter_ == twin.n_iter_
    model.set_params(**adam).partial_fit(X_MLP, Y_MLP)
    twin.partial_fit(X_MLP, Y_MLP)
    for a, b in zip(model.coefs_ + model.intercepts_, twin.coefs_ + twin.intercepts_):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ parameters after fit
MLP_STRUCTURE = [
    {"activation": "tanh"},
    {"bias": "none"},
    {"dtype": "float64"},
    {"hidden_layer_sizes": (3, 3)},
    {"leaky_slope": 0.5, "activation": "leaky_relu"},
    {"activation": "swiglu"},
]


@pytest.mark.parametrize("change", MLP_STRUCTURE, ids=lambda c: ",".join(c))
def test_structural_set_params_after_fit_waits_for_the_next_fit(change, tmp_path):
    model = _mlp(activation="relu")
    proba = model.predict_proba(X_MLP)
    network = model.network_
    model.set_params(**change)
    assert model.network_ is network
    np.testing.assert_array_equal(model.predict_proba(X_MLP), proba)
    # the file and the pickle keep the fitted network, and the changed parameters
    path = model.save(tmp_path / "m.cymlp")
    for other in (cymlp.load(path), pickle.loads(pickle.dumps(model))):
        np.testing.assert_array_equal(other.predict_proba(X_MLP), proba)
        assert other.get_params() == model.get_params()
    # the next fit uses them
    _quiet(model.fit, X_MLP, Y_MLP)
    for key, value in change.items():
        if key == "hidden_layer_sizes":
            assert model.network_.hidden == value
        elif key == "dtype":
            assert model.coefs_[0].dtype == np.dtype(value)
        elif key in ("activation", "bias", "leaky_slope"):
            assert getattr(model.network_, key) == value


@pytest.mark.parametrize("change, match", [
    ({"hidden_layer_sizes": (9,)}, r"hidden changed from \(6,\) to \(9,\)"),
    ({"bias": "none"}, "bias changed from 'both' to 'none'"),
    ({"dtype": "float64"}, "dtype changed"),
    ({"activation": "swiglu"}, "activation changed from 'relu' to 'swiglu'"),
])
def test_continuing_with_another_structure_is_a_clear_error(change, match):
    for how in ("partial_fit", "warm_start"):
        model = _mlp(activation="relu")
        proba = model.predict_proba(X_MLP)
        model.set_params(**change)
        with pytest.raises(ValueError, match=match + ".*warm_start=False"):
            if how == "partial_fit":
                model.partial_fit(X_MLP, Y_MLP)
            else:
                model.set_params(warm_start=True).fit(X_MLP, Y_MLP)
        np.testing.assert_array_equal(model.predict_proba(X_MLP), proba)


def test_continuing_takes_the_new_shape_parameters():
    """Parameters that keep the layout (an activation of the same shape, its slope)
    take effect at the next partial_fit."""
    model = _mlp(activation="relu")
    model.set_params(activation="leaky_relu", leaky_slope=0.3)
    model.partial_fit(X_MLP, Y_MLP)
    assert model.network_.activation == "leaky_relu"
    assert model.network_.leaky_slope == 0.3


@pytest.mark.parametrize("change", [{"embed_dim": 6}, {"encoder": "window"},
                                    {"ngram_range": (1, 1)}, {"pooling": "sum"},
                                    {"min_count": 2}, {"lowercase": False}],
                         ids=lambda c: ",".join(c))
def test_text_structural_set_params_after_fit(change, tmp_path):
    X, y = _texts()
    model = _text()
    proba = model.predict_proba(X)
    model.set_params(**change)
    np.testing.assert_array_equal(model.predict_proba(X), proba)
    path = model.save(tmp_path / "t.cymlp")
    for other in (cymlp.load(path), pickle.loads(pickle.dumps(model))):
        np.testing.assert_array_equal(other.predict_proba(X), proba)
    with pytest.raises(ValueError, match="changed from"):
        model.partial_fit(X, y)
    np.testing.assert_array_equal(model.predict_proba(X), proba)


# ------------------------------------------------------------------ continued training
def _continued(make, X, y, n_first, n_after, via, tmp_path):
    """Parameters after n_first + n_after partial_fit epochs, with a round trip
    through ``via`` ('none', 'file', 'pickle') in between."""
    model = make()
    for _ in range(n_first):
        model.partial_fit(X, y)
    if via == "file":
        model = cymlp.load(model.save(tmp_path / f"{via}.cymlp"))
    elif via == "pickle":
        model = pickle.loads(pickle.dumps(model))
    for _ in range(n_after):
        model.partial_fit(X, y)
    arrays = [w.copy() for w in model.coefs_] + [b.copy() for b in model.intercepts_
                                                  if b is not None]
    if isinstance(model, TextClassifier):
        arrays.append(model.embeddings_.copy())
    return arrays, list(model.loss_curve_), model.n_iter_, model.t_


@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("via", ["file", "pickle"])
def test_partial_fit_after_a_round_trip_equals_uninterrupted_training_mlp(solver, via,
                                                                           tmp_path):
    params = {"hidden_layer_sizes": (5,), "random_state": 3, "learning_rate_init": 0.05,
              "batch_size": 16, **SOLVERS[solver]}
    X, y = X_MLP, Y_MLP
    want = _continued(lambda: MLPClassifier(**params), X, y, 2, 3, "none", tmp_path)
    got = _continued(lambda: MLPClassifier(**params), X, y, 2, 3, via, tmp_path)
    for a, b in zip(got[0], want[0]):
        np.testing.assert_array_equal(a, b)
    assert got[1:] == want[1:]


@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("via", ["file", "pickle"])
def test_partial_fit_after_a_round_trip_equals_uninterrupted_training_text(solver, via,
                                                                            tmp_path):
    X, y = _texts()
    params = {"hidden_layer_sizes": (5,), "embed_dim": 4, "random_state": 3,
              "learning_rate_init": 0.05, "batch_size": 16, "token_dropout": 0.1,
              **SOLVERS[solver]}
    want = _continued(lambda: TextClassifier(**params), X, y, 2, 2, "none", tmp_path)
    got = _continued(lambda: TextClassifier(**params), X, y, 2, 2, via, tmp_path)
    for a, b in zip(got[0], want[0]):
        np.testing.assert_array_equal(a, b)
    assert got[1:] == want[1:]


def test_warm_start_after_a_round_trip_continues_the_record(tmp_path):
    model = _mlp(max_iter=3)
    loaded = cymlp.load(model.save(tmp_path / "m.cymlp"))
    assert loaded.history_ == model.history_
    assert loaded.t_ == model.t_ and loaded.n_iter_ == model.n_iter_
    _quiet(loaded.set_params(warm_start=True).fit, X_MLP, Y_MLP)
    assert loaded.n_iter_ == model.n_iter_ + 3
