"""The embedding kernels of the compiled engine against the NumPy reference.

The engine (``cymlp._mlp.Engine``) is built directly, with a hand-made table ``E`` and
hand-made token ids (repeated ids within an example and across examples, PAD in the
window, empty bags), so that the gather and the scatter-add are exercised on inputs a
:class:`cymlp.Vocabulary` would never produce in that form:

* the gather ``A[0] = [E[j1]; ...; E[jn]]`` (window) or ``sum_q w_q E[j_q] (/ r)`` (bag),
  read back through an identity hidden layer (``W[0] = I``, ``g = identity``) with
  ``Engine.forward(..., keep_hidden=True)``;
* the logits of ``Engine.forward`` against :func:`cymlp._reference.forward` on the
  reference encoders, in chunks smaller than the data (``chunk=2`` on 7 rows);
* ``Engine.gradient``: the loss, the weight gradients and the touched rows of ``E`` with
  their summed gradients against :func:`cymlp._reference.loss_and_grads` and
  :func:`~cymlp._reference.window_backward` / :func:`~cymlp._reference.bag_backward`.

Tolerances follow the style guide: ``rtol`` 1e-12 in float64, 1e-5 in float32.
"""

import numpy as np
import pytest
from _shared import layers_of, make_engine, token_inputs

from cymlp import _reference as ref

DTYPES = ("float32", "float64")
TOL = {"float32": {"rtol": 1e-5, "atol": 1e-6}, "float64": {"rtol": 1e-12, "atol": 1e-14}}
N_VOCAB, EMBED, WINDOW, N_CLASSES, HIDDEN = 9, 3, 4, 3, 5

#: 7 window examples: id 3 repeated inside example 0, ids 2 and 4 across examples,
#: PAD (0) at the ends of short examples, an all-PAD (empty) example, ids 7 and 8 unused
WINDOW_IDS = np.array([
    [3, 2, 3, 0],
    [4, 2, 1, 0],
    [4, 4, 3, 2],
    [0, 0, 0, 0],
    [5, 1, 0, 0],
    [6, 6, 6, 6],
    [2, 0, 0, 0],
], dtype=np.intc)

#: 7 bags (CSR): id 3 repeated in bag 0, bags 1 and 5 empty, ids across bags, id 8 unused
BAG_INDPTR = np.array([0, 4, 4, 6, 9, 10, 10, 13], dtype=np.intp)
BAG_INDICES = np.array([3, 2, 3, 1, 4, 2, 4, 4, 5, 7, 6, 2, 6], dtype=np.intc)
Y7 = np.array([0, 1, 2, 1, 0, 2, 1], dtype=np.intc)


def _table(dtype, seed=0):
    """A random embedding table with the PAD row at zero."""
    rng = np.random.default_rng(seed)
    E = rng.normal(0.0, 0.7, size=(N_VOCAB, EMBED)).astype(dtype)
    E[0] = 0.0
    return E


def _bag_weights(dtype, seed=1):
    return np.random.default_rng(seed).uniform(0.3, 2.0, BAG_INDICES.shape).astype(dtype)


def _engine(encoder, dtype, *, hidden=(HIDDEN,), activation="tanh", bias=None,
            seed=0, pool_mean=True):
    """An engine with random weights and biases (every layer has one unless ``bias``
    says otherwise) and the table of :func:`_table`."""
    e = EMBED
    if bias is None:
        bias = [True] * (len(hidden) + 1)
    n_features = WINDOW * e if encoder == "window" else e
    widths = list(hidden) + [N_CLASSES]
    engine = make_engine(n_features, widths, activation, list(bias), dtype, encoder=encoder,
                         window=WINDOW if encoder == "window" else 0, embed_dim=e,
                         n_vocab=N_VOCAB, pool_mean=pool_mean)
    rng = np.random.default_rng(seed + 10)
    engine.params[...] = rng.normal(0.0, 0.6, engine.n_params)
    engine.E[...] = _table(dtype, seed)
    return engine


_layers = layers_of


def _encode(encoder, E, tokw=None, pooling="mean"):
    if encoder == "window":
        return ref.window_encode(E, WINDOW_IDS)
    return ref.bag_encode(E, BAG_INDPTR, BAG_INDICES, tokw, pooling)


def _feed(encoder, tokw=None):
    if encoder == "window":
        return token_inputs(WINDOW_IDS)
    return token_inputs(BAG_INDICES, BAG_INDPTR, tokw)


BAG_CASES = [
    pytest.param("mean", False, id="bag-mean"),
    pytest.param("sum", False, id="bag-sum"),
    pytest.param("mean", True, id="bag-mean-weighted"),
    pytest.param("sum", True, id="bag-sum-weighted"),
]
ENCODER_CASES = [pytest.param("window", "mean", False, id="window")] + [
    pytest.param("bag", *p.values, id=p.id) for p in BAG_CASES]


# ---------------------------------------------------------------- gather
def _identity_engine(encoder, dtype, pool_mean=True):
    """One identity hidden layer of width n_features with W[0] = I and no bias:
    the hidden activations are the gathered input A[0] itself."""
    n_features = WINDOW * EMBED if encoder == "window" else EMBED
    engine = _engine(encoder, dtype, hidden=(n_features,), activation="identity",
                     bias=(False, True), pool_mean=pool_mean)
    engine.params[engine.network.layers[0].w_slice] = np.eye(n_features, dtype=dtype).ravel()
    return engine


@pytest.mark.parametrize("dtype", DTYPES)
def test_window_gather_is_the_concatenation_of_rows(dtype):
    engine = _identity_engine("window", dtype)
    _, ks, hs = engine.forward(token_inputs(WINDOW_IDS), keep_hidden=True)
    want = ref.window_encode(engine.E, WINDOW_IDS)
    # a copy of rows of E through an identity matrix: exact
    np.testing.assert_array_equal(ks[0], want)
    np.testing.assert_array_equal(hs[0], want)
    # by hand: example 0 is [E[3], E[2], E[3], E[PAD] = 0]
    np.testing.assert_array_equal(hs[0][0], np.concatenate(
        [engine.E[3], engine.E[2], engine.E[3], np.zeros(EMBED, dtype)]))
    np.testing.assert_array_equal(hs[0][3], np.zeros(WINDOW * EMBED))  # all PAD


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pooling, weighted", [p.values for p in BAG_CASES],
                         ids=[p.id for p in BAG_CASES])
def test_bag_gather_pools_the_rows(pooling, weighted, dtype):
    engine = _identity_engine("bag", dtype, pool_mean=pooling == "mean")
    tokw = _bag_weights(dtype) if weighted else None
    _, _, hs = engine.forward(token_inputs(BAG_INDICES, BAG_INDPTR, tokw), keep_hidden=True)
    want = ref.bag_encode(engine.E, BAG_INDPTR, BAG_INDICES, tokw, pooling)
    np.testing.assert_allclose(hs[0], want, **TOL[dtype])
    # empty bags give exactly 0
    np.testing.assert_array_equal(hs[0][[1, 5]], np.zeros((2, EMBED)))
    # by hand, in float64: bag 0 holds 3, 2, 3, 1
    E = engine.E.astype(np.float64)
    w = np.ones(4) if tokw is None else tokw[:4].astype(np.float64)
    by_hand = w[0] * E[3] + w[1] * E[2] + w[2] * E[3] + w[3] * E[1]
    if pooling == "mean":
        by_hand /= 4
    np.testing.assert_allclose(hs[0][0], by_hand, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_reads_the_live_table(dtype):
    """Changing a row of E in place changes exactly the examples that use it."""
    engine = _identity_engine("bag", dtype, pool_mean=False)
    _, _, before = engine.forward(token_inputs(BAG_INDICES, BAG_INDPTR), keep_hidden=True)
    engine.E[5] += 1.0  # id 5 only occurs in bag 3
    _, _, after = engine.forward(token_inputs(BAG_INDICES, BAG_INDPTR), keep_hidden=True)
    changed = np.flatnonzero(np.any(after[0] != before[0], axis=1))
    np.testing.assert_array_equal(changed, [3])
    np.testing.assert_allclose(after[0][3] - before[0][3], np.ones(EMBED), **TOL[dtype])


# ---------------------------------------------------------------- forward
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("encoder, pooling, weighted", [p.values for p in ENCODER_CASES],
                         ids=[p.id for p in ENCODER_CASES])
def test_forward_logits_match_reference_in_small_chunks(encoder, pooling, weighted, dtype):
    engine = _engine(encoder, dtype, pool_mean=pooling == "mean")
    tokw = _bag_weights(dtype) if weighted else None
    feed = _feed(encoder, tokw)
    weights, biases = _layers(engine)
    Ks, As, Z = ref.forward(weights, biases, _encode(encoder, engine.E, tokw, pooling),
                            ["tanh"])
    whole = engine.forward(feed)
    assert whole.shape == (7, N_CLASSES) and whole.dtype == np.dtype(dtype)
    np.testing.assert_allclose(whole, Z, **TOL[dtype])
    for chunk in (1, 2, 3, 7, 100):
        logits, ks, hs = engine.forward(feed, chunk=chunk, keep_hidden=True)
        # the rows do not depend on how they were split into chunks (up to rounding:
        # a one-row chunk takes the matrix-vector BLAS path)
        np.testing.assert_allclose(logits, whole, **TOL[dtype], err_msg=f"chunk={chunk}")
        np.testing.assert_allclose(logits, Z, **TOL[dtype], err_msg=f"chunk={chunk}")
        np.testing.assert_allclose(ks[0], Ks[0], **TOL[dtype])
        np.testing.assert_allclose(hs[0], As[1], **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("encoder", ["window", "bag"])
def test_forward_two_hidden_layers_and_no_bias(encoder, dtype):
    engine = _engine(encoder, dtype, hidden=(4, 3), activation="sigmoid",
                     bias=(False, True, False))
    weights, biases = _layers(engine)
    assert biases[0] is None and biases[2] is None
    _, _, Z = ref.forward(weights, biases, _encode(encoder, engine.E), ["sigmoid"] * 2)
    np.testing.assert_allclose(engine.forward(_feed(encoder), chunk=2), Z,
                               **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_bag_of_only_empty_examples(dtype):
    """Every bag empty (no indices at all): the logits are those of x = 0."""
    engine = _engine("bag", dtype)
    indptr = np.zeros(4, dtype=np.intp)
    indices = np.zeros(0, dtype=np.intc)
    weights, biases = _layers(engine)
    _, _, Z = ref.forward(weights, biases, np.zeros((3, EMBED), dtype), ["tanh"])
    got = engine.forward(token_inputs(indices, indptr), chunk=2)
    np.testing.assert_allclose(got, Z, **TOL[dtype])
    np.testing.assert_allclose(got[2], got[0], **TOL[dtype])


@pytest.mark.parametrize("encoder", ["window", "bag"])
def test_forward_no_rows(encoder):
    engine = _engine(encoder, "float64")
    if encoder == "window":
        out = engine.forward(token_inputs(np.zeros((0, WINDOW), dtype=np.intc)))
    else:
        out = engine.forward(token_inputs(np.zeros(0, dtype=np.intc),
                                          np.zeros(1, dtype=np.intp)))
    assert out.shape == (0, N_CLASSES)


# ---------------------------------------------------------------- gradient / scatter
def _reference_gradient(engine, encoder, tokw, pooling, label_smoothing):
    weights, biases = _layers(engine)
    E = engine.E.copy()
    res = ref.loss_and_grads(weights, biases, _encode(encoder, E, tokw, pooling), Y7,
                             N_CLASSES, ["tanh"], label_smoothing=label_smoothing,
                             input_grad=True)
    if encoder == "window":
        dE = ref.window_backward(WINDOW_IDS, res["dX"], N_VOCAB)
        used = np.unique(WINDOW_IDS)
    else:
        dE = ref.bag_backward(BAG_INDPTR, BAG_INDICES, res["dX"], N_VOCAB, tokw, pooling)
        used = np.unique(BAG_INDICES)
    return res, dE, used[used != 0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("encoder, pooling, weighted", [p.values for p in ENCODER_CASES],
                         ids=[p.id for p in ENCODER_CASES])
def test_gradient_scatters_into_touched_rows(encoder, pooling, weighted, dtype):
    engine = _engine(encoder, dtype, pool_mean=pooling == "mean")
    engine.label_smoothing = 0.1
    tokw = _bag_weights(dtype) if weighted else None
    engine.allocate(7, 7 * WINDOW if encoder == "window" else len(BAG_INDICES))
    E_before = engine.E.copy()
    params_before = engine.params.copy()
    loss, rows, eg = engine.gradient(_feed(encoder, tokw), Y7)
    res, dE, used = _reference_gradient(engine, encoder, tokw, pooling, 0.1)

    # gradient() does not update anything
    np.testing.assert_array_equal(engine.E, E_before)
    np.testing.assert_array_equal(engine.params, params_before)
    assert loss == pytest.approx(res["loss"], rel=TOL[dtype]["rtol"])
    # the touched rows: every id used, each once, PAD never; unused ids absent
    assert rows.dtype.kind == "i" and len(rows) == len(set(rows.tolist()))
    np.testing.assert_array_equal(np.sort(rows), used)
    assert eg.shape == (len(rows), EMBED) and eg.dtype == np.dtype(dtype)
    np.testing.assert_allclose(eg, dE[rows], **TOL[dtype])
    # the weight gradients, through the flat layout
    for l, layer in enumerate(engine.network.layers):
        np.testing.assert_allclose(engine.grads[layer.w_slice], res["dW"][l].ravel(),
                                   **TOL[dtype], err_msg=f"dW[{l}]")
        np.testing.assert_allclose(engine.grads[layer.b_slice], res["db"][l], **TOL[dtype],
                                   err_msg=f"db[{l}]")


@pytest.mark.parametrize("pooling", ["mean", "sum"])
def test_gradient_of_repeated_id_adds_up(pooling):
    """An id used twice in one bag gets twice the gradient of an id used once there
    (sum), and a 1/r share per use (mean): compare bags {a, a} and {a}."""
    engine = _engine("bag", "float64", hidden=(), pool_mean=pooling == "mean")
    engine.allocate(1, 2)
    y = np.array([1], dtype=np.intc)
    twice = engine.gradient(token_inputs(np.array([4, 4], dtype=np.intc),
                                         np.array([0, 2], dtype=np.intp)), y)
    once = engine.gradient(token_inputs(np.array([4], dtype=np.intc),
                                        np.array([0, 1], dtype=np.intp)), y)
    assert twice[1].tolist() == once[1].tolist() == [4]
    if pooling == "mean":
        # the same input x = E[4] either way: the same gradient
        np.testing.assert_allclose(twice[2], once[2], rtol=1e-12)
    else:
        # x = 2 E[4] versus E[4]: linear model, dx is (o - T) W^T at different o;
        # compare against the reference instead of a closed form
        weights, biases = _layers(engine)
        res = ref.loss_and_grads(weights, biases, 2 * engine.E[[4]], y, N_CLASSES, [],
                                 input_grad=True)
        np.testing.assert_allclose(twice[2][0], 2 * res["dX"][0], rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("encoder, pooling, weighted", [p.values for p in ENCODER_CASES],
                         ids=[p.id for p in ENCODER_CASES])
def test_train_updates_match_reference(encoder, pooling, weighted, dtype):
    """Engine.train over three minibatches of the 7 examples (3, 3, 1) with Adagrad
    against reference.train_steps: touched rows only, PAD untouched."""
    engine = _engine(encoder, dtype, pool_mean=pooling == "mean")
    engine.set_solver(1)  # adagrad (cymlp._mlp.SOLVERS)
    tokw = _bag_weights(dtype) if weighted else None
    engine.allocate(3, 3 * WINDOW if encoder == "window" else len(BAG_INDICES))
    weights, biases = _layers(engine)
    E = engine.E.copy()
    E0 = engine.E.copy()
    batches = []
    for s in range(0, 7, 3):
        idx = np.arange(s, min(7, s + 3))
        if encoder == "window":
            batches.append((WINDOW_IDS[idx], Y7[idx]))
        else:
            lo, hi = BAG_INDPTR[idx[0]], BAG_INDPTR[idx[-1] + 1]
            batches.append(((BAG_INDPTR[idx[0]:idx[-1] + 2] - lo, BAG_INDICES[lo:hi],
                             None if tokw is None else tokw[lo:hi]), Y7[idx]))
    losses = ref.train_steps(weights, biases, batches, N_CLASSES, ["tanh"],
                             solver="adagrad", lr=0.2, E=E, encoder=encoder,
                             pooling=pooling)
    order = np.arange(7, dtype=np.intp)
    loss_sum, _ = engine.train(_feed(encoder, tokw), Y7, order, 3, 0.2)
    assert engine.step == 3
    sizes = np.array([3, 3, 1])
    assert loss_sum == pytest.approx(float(np.dot(losses, sizes)), rel=10 * TOL[dtype]["rtol"])
    np.testing.assert_allclose(engine.E, E, **TOL[dtype])
    for got, want in zip(_layers(engine)[0], weights):
        np.testing.assert_allclose(got, want, **TOL[dtype])
    unused = np.setdiff1d(np.arange(N_VOCAB), _feed(encoder).ids)
    assert 0 in unused or encoder == "window"
    np.testing.assert_array_equal(engine.E[unused], E0[unused])
    np.testing.assert_array_equal(engine.E[0], np.zeros(EMBED))
    # the optimiser state of E is kept per row: untouched rows have none
    np.testing.assert_array_equal(engine.E_state1[unused], 0.0)
    assert np.all(engine.E_state1[np.setdiff1d(_feed(encoder).ids, [0])] > 0)


# ---------------------------------------------------------------- construction
def test_engine_rejects_inconsistent_embedding_description():
    with pytest.raises(ValueError, match="inconsistent embedding"):
        make_engine(EMBED * WINDOW + 1, [N_CLASSES], "relu", [True], "float64",
                    encoder="window", window=WINDOW, embed_dim=EMBED, n_vocab=N_VOCAB)
    with pytest.raises(ValueError, match="inconsistent embedding"):
        make_engine(EMBED, [N_CLASSES], "relu", [True], "float64", encoder="bag",
                    embed_dim=EMBED, n_vocab=1)
    with pytest.raises(ValueError, match="unknown encoder"):
        make_engine(EMBED, [N_CLASSES], "relu", [True], "float64", encoder="cnn",
                    embed_dim=EMBED, n_vocab=N_VOCAB)


def test_window_ids_of_the_wrong_width_are_rejected():
    engine = _engine("window", "float64")
    with pytest.raises(ValueError, match="wrong number of columns"):
        engine.forward(token_inputs(np.zeros((2, WINDOW + 1), dtype=np.intc)))
    engine.allocate(2, 2 * WINDOW)
    with pytest.raises(ValueError, match="wrong number of columns"):
        engine.gradient(token_inputs(np.zeros((2, WINDOW - 1), dtype=np.intc)),
                        np.zeros(2, dtype=np.intc))
