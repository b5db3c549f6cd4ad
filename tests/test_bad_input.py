"""Input validation of :class:`cymlp.MLPClassifier`: clear errors and safe conversions.

Every rejected input raises an error whose message names the problem (checked with
``match=``); every accepted layout or dtype is converted at the boundary and gives
the same model as the plain C-contiguous float array. Also: a diverging run stops
with a ``FloatingPointError`` naming the epoch, equal seeds give bit-identical
parameters, and the float32 default is kept whatever the input dtype.
"""

import pickle
import warnings

import numpy as np
import pytest

from cymlp import MLPClassifier
from cymlp._compat import ConvergenceWarning, DataConversionWarning


def _quick(**params):
    defaults = {"hidden_layer_sizes": (5,), "max_iter": 5, "random_state": 0}
    defaults.update(params)
    return MLPClassifier(**defaults)


@pytest.fixture
def fitted(blobs):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _quick().fit(X, y), X, y


def _fit_quietly(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


# ------------------------------------------------------------------ rejected X
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X_at_fit(blobs, bad):
    X, y = blobs
    X = X.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match="NaN or infinity.*row 3, column 2"):
        _quick().fit(X, y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X_at_partial_fit_is_named_and_changes_nothing(blobs, bad, shuffle,
                                                                  dtype):
    """partial_fit leaves the scan of X to the engine's batches (X already in the
    model's dtype): the error still names the first bad cell, wherever it falls
    in the epoch, and the model keeps its parameters from before the call."""
    X, y = blobs
    X = X.astype(dtype)  # no conversion: the engine checks the rows
    model = _quick(batch_size=8, shuffle=shuffle, dtype=dtype).partial_fit(X, y)
    before = [w.copy() for w in model.coefs_] + [b.copy() for b in model.intercepts_]
    n_iter = model.n_iter_
    last = len(X) - 2  # late in an unshuffled epoch: earlier batches are trained first
    for row in (0, last):
        Xb = X.copy()
        Xb[row, 1] = bad
        what = "NaN" if np.isnan(bad) else "infinity"
        with pytest.raises(ValueError, match=rf"Input X contains NaN or infinity "
                                             rf"\({what} at row {row}, column 1\)"):
            model.partial_fit(Xb, y)
        after = [w for w in model.coefs_] + [b for b in model.intercepts_]
        for a, b in zip(before, after):
            np.testing.assert_array_equal(a, b)
        assert model.n_iter_ == n_iter
    # a first call fails the same way and leaves nothing fitted
    Xb = X.copy()
    Xb[last, 0] = bad
    fresh = _quick(batch_size=8, shuffle=shuffle, dtype=dtype)
    with pytest.raises(ValueError, match=rf"row {last}, column 0"):
        fresh.partial_fit(Xb, y, classes=np.unique(y))
    assert not hasattr(fresh, "coefs_")


def test_partial_fit_names_values_too_large_for_float32(blobs):
    """A float64 X converted to float32 is scanned at the conversion, where a value
    that overflows is named as too large (not as an infinity)."""
    X, y = blobs
    X = X.astype(np.float64)
    X[4, 0] = 1e300
    with pytest.raises(ValueError, match=r"too large for float32 \(e\.g\. row 4, column 0\)"):
        _quick(dtype="float32").partial_fit(X, y)


def test_non_finite_X_at_predict(fitted):
    model, X, _ = fitted
    X = X.copy()
    X[0, 0] = np.nan
    for method in (model.predict, model.predict_proba, model.predict_log_proba):
        with pytest.raises(ValueError, match="NaN or infinity"):
            method(X)


def test_values_too_large_for_float32(blobs):
    X, y = blobs
    X = X.copy()
    X[1, 1] = 1e300  # finite in float64, infinite in float32
    with pytest.raises(ValueError, match="too large for float32"):
        _quick().fit(X, y)
    _fit_quietly(_quick(dtype="float64"), X, y)  # fine in float64


def test_one_dimensional_X(blobs, fitted):
    X, y = blobs
    with pytest.raises(ValueError, match="2-D array.*1-D"):
        _quick().fit(X[:, 0], y)
    model, X, _ = fitted
    with pytest.raises(ValueError, match="2-D array.*1-D"):
        model.predict(X[0])


def test_three_dimensional_X(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="2-D array.*3 dimensions"):
        _quick().fit(X.reshape(len(X), 2, 2), y)


def test_feature_count_differs_at_predict(fitted):
    model, X, _ = fitted
    with pytest.raises(ValueError, match="X has 3 features.*expecting 4 features"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="X has 5 features.*expecting 4 features"):
        model.predict_proba(np.hstack([X, X[:, :1]]))


def test_feature_count_differs_at_partial_fit(fitted):
    model, X, y = fitted
    with pytest.raises(ValueError, match="expecting 4 features"):
        model.partial_fit(X[:, :2], y)


def test_empty_X(blobs):
    _, y = blobs
    with pytest.raises(ValueError, match="0 sample"):
        _quick().fit(np.empty((0, 4)), y[:0])
    with pytest.raises(ValueError, match="0 feature"):
        _quick().fit(np.empty((len(y), 0)), y)


def test_empty_X_at_predict(fitted):
    model, _, _ = fitted
    with pytest.raises(ValueError, match="0 sample"):
        model.predict(np.empty((0, 4)))


def test_sparse_X(blobs):
    """Sparse X is accepted (never densified) and trains the model dense X trains."""
    sparse = pytest.importorskip("scipy.sparse")
    X, y = blobs
    dense = _fit_quietly(_quick(dtype="float64", random_state=0), X, y)
    model = _fit_quietly(_quick(dtype="float64", random_state=0), sparse.csr_matrix(X), y)
    for a, b in zip(model.coefs_, dense.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_complex_X(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="Complex data not supported"):
        _quick().fit(X + 1j, y)


def test_strings_in_X(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="strings"):
        _quick().fit(X.astype(str), y)
    with pytest.raises(ValueError, match="strings"):
        _quick().fit([["a", "b"], ["c", "d"]], [0, 1])


def test_none_X_and_y(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="requires X"):
        _quick().fit(None, y)
    with pytest.raises(ValueError, match="requires y"):
        _quick().fit(X, None)


# ------------------------------------------------------------------ rejected y
def test_single_class(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="only one class"):
        _quick().fit(X, np.zeros(len(X), dtype=int))


def test_y_length_mismatch(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        _quick().fit(X, y[:-1])


def test_continuous_y(blobs):
    X, _ = blobs
    y = np.random.default_rng(0).standard_normal(len(X))
    with pytest.raises(ValueError, match="continuous"):
        _quick().fit(X, y)


def test_integer_valued_float_y_is_accepted(blobs):
    X, y = blobs
    model = _fit_quietly(_quick(), X, y.astype(float))
    np.testing.assert_array_equal(model.classes_, [0.0, 1.0, 2.0])


def test_non_finite_y(blobs):
    X, y = blobs
    y = y.astype(float)
    y[0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        _quick().fit(X, y)


def test_multi_output_y(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="1-D"):
        _quick().fit(X, np.c_[y, y])


def test_column_vector_y_warns_and_works(blobs):
    X, y = blobs
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        _fit_quietly(_quick(), X, y[:, None])


def test_partial_fit_label_not_in_classes(blobs):
    X, y = blobs
    model = _quick()
    model.partial_fit(X[y < 2], y[y < 2], classes=[0, 1])
    with pytest.raises(ValueError, match="not among the classes.*2"):
        model.partial_fit(X, y)


def test_partial_fit_classes_must_not_change(blobs):
    X, y = blobs
    model = _quick()
    model.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="classes must be the same"):
        model.partial_fit(X, y, classes=[0, 1, 5])


def test_partial_fit_classes_in_another_order_are_the_same_classes(blobs):
    X, y = blobs
    model = _quick()
    model.partial_fit(X, y, classes=[2, 0, 1])
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    model.partial_fit(X, y, classes=[2, 0, 1])  # the same set: accepted
    model.partial_fit(X, y, classes=np.array([0, 1, 2]))
    assert model.n_iter_ == 3


def test_partial_fit_fewer_classes_later_is_rejected(blobs):
    X, y = blobs
    model = _quick()
    model.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="classes must be the same"):
        model.partial_fit(X[y < 2], y[y < 2], classes=[0, 1])


def test_predict_before_fit(blobs):
    X, _ = blobs
    from cymlp._compat import NotFittedError
    with pytest.raises(NotFittedError, match="not fitted"):
        _quick().predict(X)


# ------------------------------------------------------------------ rejected parameters
@pytest.mark.parametrize("params, match", [
    ({"activation": "softplus"}, "unknown activation 'softplus'"),
    ({"activation": None}, "unknown activation"),
    ({"bias": "input"}, "bias must be one of"),
    ({"solver": "lbfgs"}, "solver must be one of"),
    ({"hidden_layer_sizes": (5, 0)}, "hidden_layer_sizes must hold positive integers"),
    ({"hidden_layer_sizes": -3}, "hidden_layer_sizes must hold positive integers"),
    ({"hidden_layer_sizes": (4.5,)}, "hidden_layer_sizes must hold positive integers"),
    ({"hidden_layer_sizes": "big"}, "hidden_layer_sizes must hold positive integers"),
    ({"learning_rate_init": 0.0}, r"learning_rate_init must be in \(0"),
    ({"learning_rate_init": -0.1}, "learning_rate_init must be in"),
    ({"learning_rate": "optimal"}, "learning_rate must be one of"),
    ({"batch_size": 0}, "batch_size must be in"),
    ({"batch_size": "large"}, "batch_size must be an integer"),
    ({"max_iter": 0}, "max_iter must be in"),
    ({"max_iter": 2.5}, "max_iter must be an integer"),
    ({"alpha": -1.0}, "alpha must be in"),
    ({"momentum": 1.5}, "momentum must be in"),
    ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\)"),
    ({"dtype": "float16"}, "dtype must be 'float32' or 'float64'"),
    ({"dtype": "int"}, "dtype must be 'float32' or 'float64'"),
    ({"random_state": -1}, "random_state must be a non-negative int"),
    ({"random_state": "seed"}, "random_state must be None, an int or a numpy Generator"),
    ({"init": "xavier"}, "init must be one of"),
    ({"validation_fraction": 1.0}, "validation_fraction must be in"),
    ({"tol": np.nan}, "tol must be finite"),
    ({"shuffle": "yes"}, "shuffle must be True or False"),
    ({"swish_beta": 0.0}, "swish_beta must be in"),
])
def test_bad_parameters(blobs, params, match):
    X, y = blobs
    with pytest.raises(ValueError, match=match):
        _quick(**params).fit(X, y)
    with pytest.raises(ValueError, match=match):
        _quick(**params).partial_fit(X, y, classes=[0, 1, 2])


def test_bad_parameters_are_reported_before_the_data_is_checked():
    """Parameter validation comes first, so a bad name is not hidden by a data error."""
    with pytest.raises(ValueError, match="solver must be one of"):
        _quick(solver="newton").fit(np.full((3, 2), np.nan), [0, 1, 0])


# ------------------------------------------------------------------ accepted and converted
def _reference_fit(X, y):
    return _fit_quietly(_quick(), np.ascontiguousarray(X, dtype=np.float32), y)


def _same_model(a, b, X):
    for wa, wb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_fortran_ordered_X(blobs):
    X, y = blobs
    ref = _reference_fit(X, y)
    _same_model(_fit_quietly(_quick(), np.asfortranarray(X), y), ref, X)
    np.testing.assert_array_equal(ref.predict(np.asfortranarray(X)), ref.predict(X))


def test_strided_X(blobs):
    X, y = blobs
    wide = np.zeros((len(X), 2 * X.shape[1]))
    wide[:, ::2] = X
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous and not strided.flags.f_contiguous
    ref = _reference_fit(X, y)
    _same_model(_fit_quietly(_quick(), strided, y), ref, X)
    np.testing.assert_array_equal(ref.predict_proba(strided), ref.predict_proba(X))
    rows = np.repeat(X, 2, axis=0)[::2]  # strided along rows
    _same_model(_fit_quietly(_quick(), rows, y), ref, X)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_, np.float16,
                                   np.float64])
def test_other_input_dtypes(blobs, dtype):
    X, y = blobs
    Xd = (X > 0) if dtype is np.bool_ else (np.round(X * 10) if np.dtype(dtype).kind in "iu"
                                             else X).astype(dtype)
    if np.dtype(dtype).kind == "u":
        Xd = np.abs(np.round(X * 10)).astype(dtype)
    ref = _reference_fit(Xd.astype(np.float64), y)
    model = _fit_quietly(_quick(), Xd, y)
    _same_model(model, ref, Xd.astype(np.float32))
    assert model.coefs_[0].dtype == np.float32
    np.testing.assert_array_equal(model.predict(Xd), ref.predict(Xd.astype(np.float32)))


def test_list_input(blobs):
    X, y = blobs
    ref = _reference_fit(X, y)
    _same_model(_fit_quietly(_quick(), X.tolist(), y.tolist()), ref, X)


def test_read_only_arrays(blobs):
    X, y = blobs
    ref = _reference_fit(X, y)
    for Xr in (X.copy(), X.astype(np.float32)):  # converted, and used without a copy
        yr = y.copy()
        Xr.setflags(write=False)
        yr.setflags(write=False)
        model = _fit_quietly(_quick(), Xr, yr)
        _same_model(model, ref, X)
        model.partial_fit(Xr, yr)
        assert model.predict(Xr).shape == y.shape


def test_pandas_dataframe(blobs):
    pd = pytest.importorskip("pandas")
    X, y = blobs
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    ref = _reference_fit(X, y)
    model = _fit_quietly(_quick(), df, pd.Series(y))
    _same_model(model, ref, df)
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c", "d"])
    np.testing.assert_array_equal(model.predict(df), ref.predict(X))
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(df[["b", "a", "c", "d"]])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        model.predict(X)
    # integer column names are not feature names
    model = _fit_quietly(_quick(), pd.DataFrame(X), y)
    assert not hasattr(model, "feature_names_in_")


# ------------------------------------------------------------------ divergence
def test_diverging_run_names_the_epoch(blobs):
    X, y = blobs
    model = MLPClassifier((5,), solver="sgd", learning_rate_init=1e9, max_iter=5,
                          random_state=0)
    with pytest.raises(FloatingPointError, match="epoch"):
        model.fit(X * 1e6, y)
    # a failed fit leaves the estimator as it was: here, not fitted (and so no NaN
    # parameters to predict with)
    assert not hasattr(model, "coefs_")


def test_divergence_error_message_names_the_remedy(blobs):
    X, y = blobs
    model = MLPClassifier((5,), solver="sgd", learning_rate_init=1e9, max_iter=5,
                          random_state=0, dtype="float64")
    with pytest.raises(FloatingPointError,
                       match=r"diverged at epoch \d+.*learning_rate_init") as info:
        model.fit(X * 1e150, y)
    # the failing epoch is the one after the last completed epoch (the error carries
    # the record of the completed ones)
    assert f"epoch {len(info.value.history) + 1}:" in str(info.value)


# ------------------------------------------------------------------ determinism and dtype
@pytest.mark.parametrize("solver", ["adam", "sgd", "adagrad"])
def test_same_seed_gives_bit_identical_parameters(blobs, solver):
    X, y = blobs
    a = _fit_quietly(_quick(solver=solver, max_iter=8, random_state=42), X, y)
    b = _fit_quietly(_quick(solver=solver, max_iter=8, random_state=42), X, y)
    for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert np.array_equal(wa, wb)
    assert a.loss_curve_ == b.loss_curve_
    c = _fit_quietly(_quick(solver=solver, max_iter=8, random_state=43), X, y)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_refit_restarts_from_the_seed(blobs):
    X, y = blobs
    model = _quick(random_state=7)
    first = [w.copy() for w in _fit_quietly(model, X, y).coefs_]
    second = _fit_quietly(model, X, y).coefs_
    for a, b in zip(first, second):
        assert np.array_equal(a, b)


def test_generator_random_state_is_accepted(blobs):
    X, y = blobs
    a = _fit_quietly(_quick(random_state=np.random.default_rng(3)), X, y)
    b = _fit_quietly(_quick(random_state=np.random.default_rng(3)), X, y)
    assert np.array_equal(a.coefs_[0], b.coefs_[0])


@pytest.mark.parametrize("input_dtype", [np.float64, np.float32, np.int64])
def test_float32_default_is_preserved(blobs, input_dtype):
    X, y = blobs
    model = _fit_quietly(_quick(), X.astype(input_dtype), y)
    assert all(w.dtype == np.float32 for w in model.coefs_)
    assert all(b.dtype == np.float32 for b in model.intercepts_)
    model = _fit_quietly(_quick(dtype="float64"), X.astype(input_dtype), y)
    assert all(w.dtype == np.float64 for w in model.coefs_)


def test_float32_model_survives_pickling_with_its_dtype(blobs):
    X, y = blobs
    model = pickle.loads(pickle.dumps(_fit_quietly(_quick(), X, y)))
    assert model.coefs_[0].dtype == np.float32
