"""Property-based comparison of the compiled engine with ``cymlp._reference``.

Hypothesis draws small random networks (depth 0-3, layers of one unit included,
up to 1000 classes), both dtypes, every trainable activation and bias placement,
label smoothing and the L2 penalty, batches of one row and batches larger than the
data, and inputs in awkward layouts (Fortran order, row or column slices with step 2,
integer arrays). For each draw:

* one ``partial_fit`` epoch (plain SGD, ``shuffle=False``) from given parameters
  ends where :func:`cymlp._reference.train_steps` ends on the same batches;
* ``predict_proba`` rows sum to 1 and equal the reference forward pass + softmax;
* ``Engine.gradient`` (``engine.grads``) equals :func:`cymlp._reference.loss_and_grads`;
* the window and bag encoders (ids with repeats, PAD, empty bags, token weights)
  give the reference gradient of the touched rows of ``E`` and the same training
  step.

Runs are derandomised (the same examples every time) and keep no example database,
so a failure reproduces on any machine.
"""

import contextlib
import warnings
from unittest import mock

import numpy as np
import pytest
from _shared import assert_params_close, dense_inputs, layers_of, make_engine, token_inputs
from cymlp._mlp import SOLVERS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cymlp import MLPClassifier
from cymlp import _reference as ref
from cymlp import activations as act

SETTINGS = settings(deadline=None, max_examples=50, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large])

#: rtol 1e-5 (float32) and 1e-10 (float64), atol a floor for entries near zero
TOL = {"float32": {"rtol": 1e-5, "atol": 2e-6}, "float64": {"rtol": 1e-10, "atol": 1e-12}}
LAYOUTS = ("C", "F", "rows_step2", "cols_step2", "int")
BIASES = ("both", "hidden", "output", "none")


_numpy_empty = np.empty


def _nan_empty(shape, dtype=float, *args, **kwargs):
    """np.empty whose floating-point memory holds NaN: garbage made visible."""
    out = _numpy_empty(shape, dtype, *args, **kwargs)
    if out.dtype.kind == "f":
        out.fill(np.nan)
    return out


@contextlib.contextmanager
def poisoned_empty():
    """Within the block every new np.empty float array is NaN-filled.

    Uninitialised memory may hold anything, NaN included; a kernel that reads a
    buffer before writing it then gives NaN here every time, not once in a while.
    """
    with mock.patch.object(np, "empty", _nan_empty):
        yield


# ---------------------------------------------------------------------- strategies
@st.composite
def networks(draw):
    """A small network, its hyper-parameters and a seed for the data."""
    depth = draw(st.integers(0, 3))
    return {
        "dtype": draw(st.sampled_from(["float32", "float64"])),
        "hidden": tuple(draw(st.lists(st.integers(1, 5), min_size=depth, max_size=depth))),
        "activation": draw(st.sampled_from(act.TRAINABLE)),
        "bias": draw(st.sampled_from(BIASES)),
        "n_classes": draw(st.one_of(st.integers(2, 6), st.sampled_from([57, 300, 1000]))),
        "n_features": draw(st.integers(1, 6)),
        "n_rows": draw(st.integers(1, 12)),
        "layout": draw(st.sampled_from(LAYOUTS)),
        "label_smoothing": draw(st.sampled_from([0.0, 0.1, 0.6])),
        "alpha": draw(st.sampled_from([0.0, 0.0, 1e-2])),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def _layout(X, layout, rng):
    """X (float64, C order) given in another memory layout or dtype, same values."""
    if layout == "C":
        return X
    if layout == "F":
        return np.asfortranarray(X)
    if layout == "rows_step2":
        big = rng.standard_normal((2 * X.shape[0], X.shape[1]))
        big[::2] = X
        return big[::2]
    if layout == "cols_step2":
        big = rng.standard_normal((X.shape[0], 2 * X.shape[1]))
        big[:, ::2] = X
        return big[:, ::2]
    return X.astype(np.int64)


def _data(cfg, rng):
    """(X_given, X_values): the input in its layout and as a C float64 array."""
    X = rng.standard_normal((cfg["n_rows"], cfg["n_features"]))
    if cfg["layout"] == "int":
        X = rng.integers(-3, 4, size=X.shape).astype(np.float64)
    return _layout(X, cfg["layout"], rng), X


def _labels(cfg, rng):
    return rng.integers(0, cfg["n_classes"], cfg["n_rows"])


def _initialised_model(cfg, X, y, rng, **params):
    """A model with parameters drawn by ``rng`` (random biases too), not trained."""
    model = MLPClassifier(cfg["hidden"], cfg["activation"], dtype=cfg["dtype"],
                          bias=cfg["bias"], solver="sgd", momentum=0.0, shuffle=False,
                          alpha=cfg["alpha"], label_smoothing=cfg["label_smoothing"],
                          random_state=0, **params)
    # set up classes and parameters without training (all classes, seen or not)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # batch_size larger than X
        model._initialize(X, y, classes=np.arange(cfg["n_classes"]))
    for w in model.coefs_:
        w[...] = rng.normal(0.0, 0.5, size=w.shape)
    for b in model.intercepts_:
        if b is not None:
            b[...] = rng.normal(0.0, 0.5, size=b.shape)
    return model


def _copies(model, dtype=None):
    weights = [np.array(w, dtype=dtype) for w in model.coefs_]
    biases = [None if b is None else np.array(b, dtype=dtype) for b in model.intercepts_]
    return weights, biases


_assert_params = assert_params_close


# ---------------------------------------------------------------------- the MLP
@SETTINGS
@given(cfg=networks(), batch_size=st.integers(1, 15),
       lr=st.sampled_from([0.01, 0.1, 0.5]))
def test_one_sgd_epoch_matches_reference_train_steps(cfg, batch_size, lr):
    rng = np.random.default_rng(cfg["seed"])
    X, Xv = _data(cfg, rng)
    y = _labels(cfg, rng)
    n = cfg["n_rows"]
    model = _initialised_model(cfg, X, y, rng, batch_size=batch_size,
                               learning_rate_init=lr)
    dtype = np.dtype(cfg["dtype"])
    weights, biases = _copies(model)
    t = min(batch_size, n)
    Xd = Xv.astype(dtype)
    batches = [(Xd[s:s + t], y[s:s + t]) for s in range(0, n, t)]
    losses = ref.train_steps(weights, biases, batches, cfg["n_classes"],
                             [cfg["activation"]] * len(cfg["hidden"]), solver="sgd", lr=lr,
                             alpha=cfg["alpha"], label_smoothing=cfg["label_smoothing"])

    if batch_size > n:
        with pytest.warns(UserWarning, match=f"batch_size={batch_size} is larger"):
            model.partial_fit(X, y)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning when the batch fits
            model.partial_fit(X, y)

    tol = TOL[dtype.name]
    assert model.n_iter_ == 1 and model.t_ == n
    _assert_params(model, weights, biases, tol)
    assert all(w.dtype == dtype for w in model.coefs_)
    sizes = [len(b[1]) for b in batches]
    expected_loss = float(np.dot(losses, sizes) / n)
    assert model.loss_curve_[-1] == pytest.approx(expected_loss, rel=20 * tol["rtol"],
                                                  abs=tol["atol"])


@SETTINGS
@given(cfg=networks(), layout=st.sampled_from(LAYOUTS))
def test_predict_proba_matches_reference_softmax(cfg, layout):
    rng = np.random.default_rng(cfg["seed"])
    X, _ = _data(cfg, rng)
    y = _labels(cfg, rng)
    model = _initialised_model(cfg, X, y, rng)
    dtype = np.dtype(cfg["dtype"])
    # predict on other rows, given in a (possibly different) layout
    Xp_values = rng.standard_normal((cfg["n_rows"] + 2, cfg["n_features"]))
    if layout == "int":
        Xp_values = np.round(3 * Xp_values)
    Xp = _layout(Xp_values, layout, rng)

    with poisoned_empty():
        proba = model.predict_proba(Xp)
    assert proba.shape == (len(Xp_values), cfg["n_classes"])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-10)
    assert np.all(proba >= 0)

    weights, biases = _copies(model, np.float64)
    _, _, Z = ref.forward(weights, biases, Xp_values.astype(dtype).astype(np.float64),
                          [cfg["activation"]] * len(cfg["hidden"]))
    tol = TOL[dtype.name]
    np.testing.assert_allclose(proba, ref.softmax(Z), rtol=tol["rtol"],
                               atol=10 * tol["atol"])
    np.testing.assert_allclose(model.predict_log_proba(Xp), np.log(proba), rtol=1e-12,
                               atol=1e-300)


@SETTINGS
@given(cfg=networks())
def test_engine_gradient_matches_reference_loss_and_grads(cfg):
    rng = np.random.default_rng(cfg["seed"])
    X, Xv = _data(cfg, rng)
    y = _labels(cfg, rng)
    model = _initialised_model(cfg, X, y, rng)
    dtype = np.dtype(cfg["dtype"])
    engine = model._engine
    model._configure_engine(engine, model._validate_params())
    n = cfg["n_rows"]
    if engine.t_max < n:
        engine.allocate(n)
    Xd = np.ascontiguousarray(Xv, dtype=dtype)
    engine.grads[...] = np.nan  # every entry must be written
    loss, rows, eg = engine.gradient(dense_inputs(Xd), np.ascontiguousarray(y, dtype=np.intc))
    assert rows is None and eg is None

    weights, biases = _copies(model)
    want = ref.loss_and_grads(weights, biases, Xd, y, cfg["n_classes"],
                              [cfg["activation"]] * len(cfg["hidden"]),
                              alpha=cfg["alpha"], label_smoothing=cfg["label_smoothing"])
    tol = TOL[dtype.name]
    assert loss == pytest.approx(want["loss"], rel=20 * tol["rtol"], abs=tol["atol"])
    for l, layer in enumerate(engine.network.layers):
        w_sl, b_sl = layer.w_slice, layer.b_slice
        np.testing.assert_allclose(engine.grads[w_sl].reshape(want["dW"][l].shape),
                                   want["dW"][l], **tol, err_msg=f"dW[{l}]")
        if b_sl is None:
            assert want["db"][l] is None
        else:
            np.testing.assert_allclose(engine.grads[b_sl], want["db"][l], **tol,
                                       err_msg=f"db[{l}]")


# ---------------------------------------------------------------------- encoders
@st.composite
def text_networks(draw):
    """An embedding network, token ids with repeats (and empty bags), a seed."""
    encoder = draw(st.sampled_from(["window", "bag"]))
    depth = draw(st.integers(0, 2))
    n_rows = draw(st.integers(1, 8))
    n_vocab = draw(st.integers(2, 12))
    cfg = {
        "encoder": encoder,
        "dtype": draw(st.sampled_from(["float32", "float64"])),
        "hidden": tuple(draw(st.lists(st.integers(1, 4), min_size=depth, max_size=depth))),
        "activation": draw(st.sampled_from(act.TRAINABLE)),
        "bias": draw(st.sampled_from(BIASES)),
        "n_classes": draw(st.integers(2, 5)),
        "n_vocab": n_vocab,
        "embed_dim": draw(st.integers(1, 4)),
        "window": draw(st.integers(1, 5)),
        "pooling": draw(st.sampled_from(["mean", "sum"])),
        "weighted": draw(st.booleans()),
        "n_rows": n_rows,
        "seed": draw(st.integers(0, 2**32 - 1)),
    }
    if encoder == "window":
        # PAD (0) and repeated ids allowed
        cfg["ids"] = draw(st.lists(
            st.lists(st.integers(0, n_vocab - 1), min_size=cfg["window"],
                     max_size=cfg["window"]), min_size=n_rows, max_size=n_rows))
    else:
        # PAD never appears in a bag; a bag may be empty and may repeat an id
        cfg["bags"] = draw(st.lists(st.lists(st.integers(1, n_vocab - 1), max_size=6),
                                    min_size=n_rows, max_size=n_rows))
    return cfg


def _text_engine(cfg, rng):
    """An Engine with the encoder, random parameters and E (PAD row zero)."""
    dtype = np.dtype(cfg["dtype"])
    e = cfg["embed_dim"]
    n_features = e * cfg["window"] if cfg["encoder"] == "window" else e
    widths = list(cfg["hidden"]) + [cfg["n_classes"]]
    n_layers = len(widths)
    has_bias = [cfg["bias"] in ("both", "hidden") if l < n_layers - 1
                else cfg["bias"] in ("both", "output") for l in range(n_layers)]
    engine = make_engine(n_features, widths, cfg["activation"], has_bias, dtype,
                         encoder=cfg["encoder"], window=cfg["window"], embed_dim=e,
                         n_vocab=cfg["n_vocab"], pool_mean=cfg["pooling"] == "mean")
    engine.params[...] = rng.normal(0.0, 0.5, size=engine.params.shape)
    engine.E[...] = rng.normal(0.0, 0.5, size=engine.E.shape)
    engine.E[0] = 0
    weights, biases = layers_of(engine)
    return engine, weights, biases


def _text_feed(cfg, rng, dtype):
    """(engine keyword arguments, reference input of train_steps, n_tokens)."""
    if cfg["encoder"] == "window":
        ids = np.ascontiguousarray(cfg["ids"], dtype=np.intc)
        return token_inputs(ids), ids, ids.size
    lengths = [len(b) for b in cfg["bags"]]
    indptr = np.zeros(len(lengths) + 1, dtype=np.intp)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.asarray([j for b in cfg["bags"] for j in b], dtype=np.intc)
    tokw = None
    if cfg["weighted"]:
        tokw = rng.uniform(0.2, 2.0, size=len(indices)).astype(dtype)
    return token_inputs(indices, indptr, tokw), (indptr, indices, tokw), len(indices)


def _reference_input(cfg, E, ref_in):
    if cfg["encoder"] == "window":
        return ref.window_encode(E, ref_in)
    indptr, indices, tokw = ref_in
    return ref.bag_encode(E, indptr, indices, tokw, cfg["pooling"])


def _reference_dE(cfg, ref_in, dX, n_vocab):
    if cfg["encoder"] == "window":
        return ref.window_backward(ref_in, dX, n_vocab)
    indptr, indices, tokw = ref_in
    return ref.bag_backward(indptr, indices, dX, n_vocab, tokw, cfg["pooling"])


def _touched(cfg, ref_in):
    ids = ref_in if cfg["encoder"] == "window" else ref_in[1]
    rows = np.unique(np.asarray(ids))
    return rows[rows != 0]


@SETTINGS
@given(cfg=text_networks())
def test_encoder_gradient_and_forward_match_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    dtype = np.dtype(cfg["dtype"])
    engine, weights, biases = _text_engine(cfg, rng)
    feed, ref_in, n_tokens = _text_feed(cfg, rng, dtype)
    y = rng.integers(0, cfg["n_classes"], cfg["n_rows"])
    engine.allocate(cfg["n_rows"], n_tokens)
    tol = TOL[dtype.name]

    # forward: logits of every row, empty bags included
    X_ref = _reference_input(cfg, engine.E.copy(), ref_in)
    _, _, Z = ref.forward(weights, biases, X_ref, [cfg["activation"]] * len(cfg["hidden"]))
    with poisoned_empty():
        logits = engine.forward(feed)
    np.testing.assert_allclose(logits, Z, **tol)

    loss, rows, eg = engine.gradient(feed, np.ascontiguousarray(y, dtype=np.intc))
    want = ref.loss_and_grads(weights, biases, X_ref, y, cfg["n_classes"],
                              [cfg["activation"]] * len(cfg["hidden"]), input_grad=True)
    assert loss == pytest.approx(want["loss"], rel=20 * tol["rtol"], abs=tol["atol"])
    dE = _reference_dE(cfg, ref_in, want["dX"], cfg["n_vocab"])
    touched = _touched(cfg, ref_in)
    # every touched row once (PAD never), in any order
    assert sorted(rows.tolist()) == touched.tolist()
    order = np.argsort(rows)
    np.testing.assert_allclose(eg[order], dE[touched], **tol)
    for l, layer in enumerate(engine.network.layers):
        np.testing.assert_allclose(engine.grads[layer.w_slice].reshape(want["dW"][l].shape),
                                   want["dW"][l], **tol, err_msg=f"dW[{l}]")


@SETTINGS
@given(cfg=text_networks(), batch_size=st.integers(1, 4))
def test_encoder_sgd_steps_match_reference_train_steps(cfg, batch_size):
    rng = np.random.default_rng(cfg["seed"])
    dtype = np.dtype(cfg["dtype"])
    engine, weights, biases = _text_engine(cfg, rng)
    feed, ref_in, n_tokens = _text_feed(cfg, rng, dtype)
    n = cfg["n_rows"]
    y = rng.integers(0, cfg["n_classes"], n)
    t = min(batch_size, n)
    engine.allocate(t, n_tokens)
    engine.momentum = 0.0
    engine.set_solver(SOLVERS["sgd"])
    E = engine.E.copy()
    E_before = engine.E.copy()

    batches = []
    for s in range(0, n, t):
        if cfg["encoder"] == "window":
            batches.append((ref_in[s:s + t], y[s:s + t]))
        else:
            indptr, indices, tokw = ref_in
            lo, hi = indptr[s], indptr[min(n, s + t)]
            sub_ptr = indptr[s:min(n, s + t) + 1] - lo
            sub_w = None if tokw is None else tokw[lo:hi]
            batches.append(((sub_ptr, indices[lo:hi], sub_w), y[s:s + t]))
    ref.train_steps(weights, biases, batches, cfg["n_classes"],
                    [cfg["activation"]] * len(cfg["hidden"]), solver="sgd", lr=0.1,
                    E=E, encoder=cfg["encoder"], pooling=cfg["pooling"])

    engine.train(feed, np.ascontiguousarray(y, dtype=np.intc), np.arange(n, dtype=np.intp),
                 t, 0.1)
    tol = TOL[dtype.name]
    np.testing.assert_allclose(engine.E, E, **tol)
    assert np.all(engine.E[0] == 0), "the PAD row must stay zero"
    untouched = np.setdiff1d(np.arange(cfg["n_vocab"]), _touched(cfg, ref_in))
    np.testing.assert_array_equal(engine.E[untouched], E_before[untouched])
    for l, layer in enumerate(engine.network.layers):
        w_sl, b_sl = layer.w_slice, layer.b_slice
        np.testing.assert_allclose(engine.params[w_sl].reshape(weights[l].shape),
                                   weights[l], **tol, err_msg=f"W[{l}]")
        if b_sl is not None:
            np.testing.assert_allclose(engine.params[b_sl], biases[l], **tol,
                                       err_msg=f"b[{l}]")


# ---------------------------------------------------------------------- regressions
@pytest.mark.parametrize("hidden, n_features", [((1,), 3), ((), 1), ((4,), 1), ((3, 1), 2)])
def test_predict_proba_with_a_one_wide_layer_input_is_finite(hidden, n_features):
    """A layer whose input is one column (one feature, or a one-unit hidden layer
    before it) multiplies through the rank-1 path of the GEMM wrapper; its output
    must not depend on what the workspace held before (``beta = 0``)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, n_features))
    y = np.arange(300) % 20
    model = MLPClassifier(hidden, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    with poisoned_empty():
        proba = model.predict_proba(X[:5])
    assert np.isfinite(proba).all()
    weights, biases = _copies(model, np.float64)
    _, _, Z = ref.forward(weights, biases, X[:5].astype(np.float32).astype(np.float64),
                          ["relu"] * len(hidden))
    np.testing.assert_allclose(proba, ref.softmax(Z), rtol=1e-5, atol=1e-6)
