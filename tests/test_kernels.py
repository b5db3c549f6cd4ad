"""Compiled kernels against the NumPy reference ``cymlp._reference``.

* training trajectories: five minibatch updates of :class:`cymlp.MLPClassifier`
  (one ``partial_fit`` epoch, ``shuffle=False``) against
  :func:`cymlp._reference.train_steps` from the same initial parameters, for every
  activation, bias placement, optimiser, the L2 penalty and label smoothing;
* ``predict_proba`` against :func:`cymlp._reference.forward` and ``softmax``;
* the activation kernels (through the ``cymlp._activations`` shims) against
  :func:`cymlp._reference.activation` / ``activation_backward``, extreme inputs
  included;
* the row-major GEMM wrapper (``cymlp._blas.gemm_memview``) against NumPy.

Tolerances follow the style guide: ``rtol`` 1e-5 in float32 and 1e-12 in float64,
with an absolute floor for entries near zero.
"""

import numpy as np
import pytest
from _shared import assert_params_close
from cymlp._blas import gemm_memview

from cymlp import MLPClassifier
from cymlp import _activations as kernels
from cymlp import _mlp
from cymlp import _reference as ref
from cymlp.activations import CODES, TRAINABLE

DTYPES = ("float32", "float64")
TOL = {"float32": {"rtol": 1e-5, "atol": 1e-6}, "float64": {"rtol": 1e-12, "atol": 1e-13}}
#: the fused-type signature of a NumPy dtype in the Cython shims
C_TYPE = {"float32": "float", "float64": "double"}
N_STEPS, BATCH, N_FEATURES, N_CLASSES = 5, 4, 5, 3


def _data(n_rows, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_rows, N_FEATURES))
    y = rng.integers(0, N_CLASSES, n_rows)
    y[:N_CLASSES] = np.arange(N_CLASSES)  # every class present
    return X, y


def _setup(activation, dtype, *, hidden=(6, 4), n_rows=N_STEPS * BATCH, seed=0, **params):
    """A model initialised on (X, y) with random parameters set through coefs_ views.

    Returns the model, the data and float copies of the initial parameters.
    """
    X, y = _data(n_rows, seed)
    defaults = {"solver": "sgd", "momentum": 0.0, "shuffle": False, "batch_size": BATCH,
                    "learning_rate_init": 0.1, "alpha": 0.0}
    defaults.update(params)
    model = MLPClassifier(hidden, activation, dtype=dtype, **defaults)
    model._initialize(X, y)
    rng = np.random.default_rng(seed + 100)
    for w in model.coefs_:
        w[...] = rng.normal(0.0, 0.5, size=w.shape)
    for b in model.intercepts_:
        if b is not None:
            b[...] = rng.normal(0.0, 0.5, size=b.shape)
    weights = [w.copy() for w in model.coefs_]
    biases = [None if b is None else b.copy() for b in model.intercepts_]
    assert all(w.dtype == np.dtype(dtype) for w in weights)
    return model, X, y, weights, biases


def _reference_trajectory(model, X, y, weights, biases, n_rows):
    """Run the reference over the same consecutive batches; returns the batch losses."""
    dtype = weights[0].dtype
    batches = [(X[s:s + BATCH].astype(dtype), y[s:s + BATCH])
               for s in range(0, n_rows, BATCH)]
    n_hidden = len(weights) - 1
    return ref.train_steps(
        weights, biases, batches, N_CLASSES, [model.activation] * n_hidden,
        solver=model.solver, lr=model.learning_rate_init, alpha=model.alpha,
        label_smoothing=model.label_smoothing,
        momentum=model.momentum if model.solver == "sgd" else 0.0,
        nesterov=model.nesterovs_momentum, beta_1=model.beta_1, beta_2=model.beta_2,
        epsilon=model.epsilon, leaky_slope=model.leaky_slope, swish_beta=model.swish_beta)


def _assert_same_trajectory(model, X, y, weights, biases, n_rows=N_STEPS * BATCH):
    losses = _reference_trajectory(model, X, y, weights, biases, n_rows)
    model.partial_fit(X, y)
    tol = TOL[np.dtype(model.dtype).name]
    assert model.n_iter_ == 1 and model.t_ == n_rows
    assert_params_close(model, weights, biases, tol)
    # the epoch loss is the row-weighted mean of the batch losses before each update
    sizes = np.diff(np.r_[np.arange(0, n_rows, BATCH), n_rows])
    mean_loss = float(np.dot(losses, sizes) / n_rows)
    assert model.loss_curve_[-1] == pytest.approx(mean_loss, rel=10 * tol["rtol"])


# ---------------------------------------------------------------- trajectories
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", TRAINABLE)
def test_sgd_trajectory_every_activation(activation, dtype):
    model, X, y, weights, biases = _setup(activation, dtype)
    _assert_same_trajectory(model, X, y, weights, biases)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", ["both", "hidden", "output", "none"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "swiglu"])
def test_sgd_trajectory_every_bias_placement(activation, bias, dtype):
    model, X, y, weights, biases = _setup(activation, dtype, bias=bias)
    _assert_same_trajectory(model, X, y, weights, biases)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", [(), (7,), (5, 4, 3)])
def test_sgd_trajectory_other_depths(hidden, dtype):
    model, X, y, weights, biases = _setup("tanh", dtype, hidden=hidden)
    _assert_same_trajectory(model, X, y, weights, biases)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_trajectory_with_a_short_last_batch(dtype):
    n_rows = N_STEPS * BATCH - 3  # batches of 4, 4, 4, 4, 1
    model, X, y, weights, biases = _setup("gelu", dtype, n_rows=n_rows)
    _assert_same_trajectory(model, X, y, weights, biases, n_rows=n_rows)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("params", [
    pytest.param({"momentum": 0.9, "nesterovs_momentum": False}, id="momentum"),
    pytest.param({"momentum": 0.9, "nesterovs_momentum": True}, id="nesterov"),
    pytest.param({"momentum": 0.5, "nesterovs_momentum": True, "alpha": 0.3}, id="nesterov-l2"),
    pytest.param({"solver": "adagrad", "learning_rate_init": 0.05}, id="adagrad"),
    pytest.param({"solver": "adagrad", "learning_rate_init": 0.05, "epsilon": 1e-3},
                 id="adagrad-eps"),
    pytest.param({"solver": "adam", "learning_rate_init": 0.01}, id="adam"),
    pytest.param({"solver": "adam", "learning_rate_init": 0.01, "beta_1": 0.5, "beta_2": 0.9,
                      "alpha": 0.2}, id="adam-betas-l2"),
    pytest.param({"alpha": 0.5}, id="sgd-l2"),
    pytest.param({"label_smoothing": 0.2}, id="sgd-smoothing"),
    pytest.param({"label_smoothing": 0.1, "alpha": 0.1, "momentum": 0.9}, id="all"),
])
def test_trajectory_optimisers_penalty_smoothing(params, dtype):
    model, X, y, weights, biases = _setup("tanh", dtype, **params)
    _assert_same_trajectory(model, X, y, weights, biases)


@pytest.mark.parametrize("dtype", DTYPES)
def test_trajectory_shape_parameters(dtype):
    model, X, y, weights, biases = _setup("swiglu", dtype, swish_beta=1.6)
    _assert_same_trajectory(model, X, y, weights, biases)
    model, X, y, weights, biases = _setup("leaky_relu", dtype, leaky_slope=0.3)
    _assert_same_trajectory(model, X, y, weights, biases)


@pytest.mark.parametrize("dtype", DTYPES)
def test_optimiser_state_carries_over_between_epochs(dtype):
    """Two partial_fit epochs equal ten reference steps with one optimiser."""
    model, X, y, weights, biases = _setup("relu", dtype, solver="adam",
                                          learning_rate_init=0.01)
    dt = weights[0].dtype
    batches = [(X[s:s + BATCH].astype(dt), y[s:s + BATCH])
               for s in range(0, len(y), BATCH)] * 2
    ref.train_steps(weights, biases, batches, N_CLASSES, ["relu"] * 2, solver="adam",
                    lr=0.01, alpha=0.0)
    model.partial_fit(X, y)
    model.partial_fit(X, y)
    tol = TOL[np.dtype(dtype).name]
    for got, want in zip(model.coefs_ + model.intercepts_, weights + biases):
        np.testing.assert_allclose(got, want, **tol)


# ---------------------------------------------------------------- prediction
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", TRAINABLE + ("step",))
def test_predict_proba_matches_reference_forward(activation, dtype):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2500, N_FEATURES))  # more rows than one forward chunk
    y = np.arange(len(X)) % N_CLASSES
    model = MLPClassifier((6, 5), activation, dtype=dtype, bias="hidden", random_state=0)
    model._initialize(X, y)
    for b in model.intercepts_:
        if b is not None:
            b[...] = rng.normal(0.0, 0.5, size=b.shape)
    weights = [w.astype(np.float64) for w in model.coefs_]
    biases = [None if b is None else b.astype(np.float64) for b in model.intercepts_]
    Xd = X.astype(dtype).astype(np.float64)
    _, _, Z = ref.forward(weights, biases, Xd, [activation] * 2)
    if activation == "step":
        # a pre-activation within rounding of 0 may flip the step: keep only clear rows
        Ks, _, _ = ref.forward(weights, biases, Xd, [activation] * 2)
        clear = np.all(np.abs(Ks[0]) > 1e-4, axis=1) & np.all(np.abs(Ks[1]) > 1e-4, axis=1)
        assert clear.mean() > 0.9
    else:
        clear = np.ones(len(X), dtype=bool)
    proba = model.predict_proba(X)
    tol = TOL[np.dtype(dtype).name]
    np.testing.assert_allclose(proba[clear], ref.softmax(Z)[clear], **tol)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X)[clear], np.argmax(Z, axis=1)[clear])


# ---------------------------------------------------------------- activations
def _ref_name(name):
    return "sigmoid" if name == "logistic" else name


def _inputs(dtype, width, extreme):
    rng = np.random.default_rng(5)
    K = rng.uniform(-6.0, 6.0, size=(7, width))
    if extreme:
        K[:, : min(width, 6)] = np.array([-1e4, -50.0, -1e-3, 1e-3, 50.0, 1e4])[:min(width, 6)]
        K[0, :] = 1e4
        K[1, :] = -1e4
        K[2, :] = 50.0
        K[3, :] = -50.0
    return K.astype(dtype)


def _both_ways(name, dtype, K, slope, beta):
    code = CODES[name]
    swiglu = name == "swiglu"
    width = K.shape[1] // 2 if swiglu else K.shape[1]
    A = np.empty((K.shape[0], width), dtype=dtype)
    kernels.forward(code, K, A, slope, beta)
    dA = np.random.default_rng(6).standard_normal(A.shape).astype(dtype)
    dK = np.empty_like(K)
    if name != "step":
        kernels.backward(code, K, A, dA, dK, slope, beta)
    return A, dA, dK


@pytest.mark.parametrize("extreme", [False, True], ids=["moderate", "extreme"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CODES))
def test_activation_kernels_match_reference(name, dtype, extreme):
    """Kernels in ``dtype`` against the reference evaluated in float64 on the same inputs.

    The float64 evaluation is the oracle for both precisions: in float32 the reference
    suffers the same cancellations as any float32 code (``1 - tanh(u)^2`` of
    ``gelu_tanh`` near ``|k| = 5``), and there it is less accurate than the kernel.
    """
    width = 12 if name == "swiglu" else 6
    K = _inputs(dtype, width, extreme)
    slope, beta = (0.01, 1.0) if extreme else (0.13, 1.4)
    A, dA, dK = _both_ways(name, dtype, K, slope, beta)
    assert A.dtype == np.dtype(dtype)
    assert np.isfinite(A).all(), f"{name} forward is not finite"
    K64 = K.astype(np.float64)
    want = ref.activation(_ref_name(name), K64, leaky_slope=slope, swish_beta=beta)
    tol = TOL[dtype]
    np.testing.assert_allclose(A, want, **tol)
    if name == "step":
        return
    assert dK.dtype == np.dtype(dtype)
    assert np.isfinite(dK).all(), f"{name} backward is not finite"
    want_dK = ref.activation_backward(_ref_name(name), K64, dA.astype(np.float64),
                                      leaky_slope=slope, swish_beta=beta)
    np.testing.assert_allclose(dK, want_dK, **tol)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "gelu", "gelu_tanh", "swish"])
def test_float32_activation_kernels_on_a_fine_grid(name):
    """Every float32 input of [-12, 12] on a fine grid (``dA = 1``) against float64.

    ``dA = 1`` makes ``dK`` the derivative itself, so the absolute floor of 1e-6 is
    measured on values of order one.
    """
    K = np.linspace(-12.0, 12.0, 20001).astype(np.float32).reshape(1, -1)
    A = np.empty_like(K)
    kernels.forward(CODES[name], K, A)
    dK = np.empty_like(K)
    kernels.backward(CODES[name], K, A, np.ones_like(K), dK)
    K64 = K.astype(np.float64)
    np.testing.assert_allclose(A, ref.activation(name, K64), **TOL["float32"])
    np.testing.assert_allclose(
        dK, ref.activation_backward(name, K64, np.ones_like(K64)), **TOL["float32"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_step_kernel_and_its_zero_derivative(dtype):
    K = np.array([[-2.0, -0.0, 0.0, 1e-30, 3.0]], dtype=dtype)
    A = np.empty_like(K)
    kernels.forward(CODES["step"], K, A)
    np.testing.assert_array_equal(A, [[0, 0, 0, 1, 1]])
    dK = np.full_like(K, 7.0)
    kernels.backward(CODES["step"], K, A, np.ones_like(K), dK)
    np.testing.assert_array_equal(dK, 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_saturating_activations_reach_their_limits(dtype):
    """At +-50 and +-1e4 the bounded activations sit at their asymptotes, gradient ~0."""
    K = np.array([[-1e4, -50.0, 50.0, 1e4]], dtype=dtype)
    A = np.empty_like(K)
    dK = np.empty_like(K)
    ones = np.ones_like(K)
    for name, low, high in (("sigmoid", 0.0, 1.0), ("tanh", -1.0, 1.0),
                            ("arctan", -np.pi / 2 + 1e-4, np.pi / 2 - 1e-4)):
        kernels.forward(CODES[name], K, A)
        np.testing.assert_allclose(A[0, [0, 3]], [low, high], rtol=1e-6, atol=1e-7)
        kernels.backward(CODES[name], K, A, ones, dK)
        assert np.all(np.abs(dK) < 1e-3), name
        assert np.all(dK >= 0), name
    for name in ("gelu", "gelu_tanh", "swish", "relu"):
        kernels.forward(CODES[name], K, A)
        np.testing.assert_allclose(A[0], [0.0, 0.0, 50.0, 1e4], atol=1e-6, rtol=1e-6)
        kernels.backward(CODES[name], K, A, ones, dK)
        np.testing.assert_allclose(dK[0], [0.0, 0.0, 1.0, 1.0], atol=1e-6)


def test_activation_shim_rejects_bad_shapes():
    K = np.zeros((3, 4))
    with pytest.raises(ValueError, match="incompatible shapes"):
        kernels.forward(CODES["tanh"], K, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="incompatible shapes"):
        kernels.forward(CODES["swiglu"], K, np.zeros((3, 4)))  # needs width 2


# ---------------------------------------------------------------- BLAS
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("alpha, beta", [(1.0, 0.0), (-0.7, 0.0), (0.5, 1.3)])
def test_gemm_matches_numpy(trans_a, trans_b, alpha, beta, dtype):
    rng = np.random.default_rng(9)
    m, n, k = 7, 5, 11
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    want = alpha * ((a.T if trans_a else a) @ (b.T if trans_b else b)) + beta * c
    # a Python float alpha would select the double version: pick the signature
    gemm_memview[C_TYPE[dtype]](trans_a, trans_b, alpha, a, b, beta, c)
    assert c.dtype == np.dtype(dtype)
    np.testing.assert_allclose(c, want, rtol=10 * TOL[dtype]["rtol"],
                               atol=10 * TOL[dtype]["atol"])


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 9, 4), (13, 1, 6), (3, 4, 1)])
def test_gemm_degenerate_shapes(shape):
    m, n, k = shape
    rng = np.random.default_rng(10)
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    c = np.zeros((m, n))
    gemm_memview["double"](False, False, 1.0, a, b, 0.0, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-12, atol=1e-14)


def test_gemm_rejects_incompatible_shapes():
    a = np.zeros((3, 4))
    with pytest.raises(ValueError, match="incompatible"):
        gemm_memview["double"](False, False, 1.0, a, np.zeros((5, 2)), 0.0, np.zeros((3, 2)))


def test_softmax_exp_is_within_two_ulp_and_underflows_to_zero():
    """The float32 exp of the softmax (a polynomial, so that its loop vectorises) on a
    dense grid of the normal range: within 2 ulp of the exact exp; 0 below -87.3 and
    for -inf; the largest input clamped, never inf."""
    from cymlp import _mlp
    x = np.linspace(-87.2, 88.0, 1_000_003).astype(np.float32)
    exact = np.exp(x.astype(np.float64))
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    err = np.abs(_mlp._expf(x).astype(np.float64) - exact) / ulp
    assert err.max() <= 2.0, f"{err.max():.2f} ulp at x = {x[err.argmax()]}"
    low = _mlp._expf(np.array([-87.4, -100.0, -1e30, -np.inf], dtype=np.float32))
    np.testing.assert_array_equal(low, 0.0)
    high = _mlp._expf(np.array([88.0, 1e30], dtype=np.float32))
    assert np.all(np.isfinite(high)) and high[0] == high[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [5, 31, 32, 40, 257])
def test_the_first_largest_logit_is_found_wherever_it_lies(dtype, m):
    """A row counts as correct when its first largest logit is the label: the largest
    entry at every position (chunk boundaries of the wide-row search included), ties
    within and across chunks, a row of equal entries, very negative entries. Each row is
    its own batch, so that every row's count is checked."""
    from _shared import dense_inputs, make_engine
    rows, labels = [], []
    rng = np.random.default_rng(m)
    for where in sorted({0, 1, 7, 8, 9, 15, 16, m // 2, m - 9, m - 8, m - 1} & set(range(m))):
        z = rng.uniform(-3.0, 3.0, size=m)
        z[where] = 5.0
        for label in {where, (where + 1) % m}:
            rows.append(z.copy())
            labels.append(label)
    for first, second in [(3, 4), (7, 8), (0, m - 1), (m - 9, m - 1)]:
        if not 0 <= first < second < m:
            continue
        z = rng.uniform(-3.0, 3.0, size=m)
        z[[first, second]] = 4.0
        for label in (first, second):
            rows.append(z.copy())
            labels.append(label)
    z = np.full(m, 1.5)
    rows += [z, z]
    labels += [0, m - 1]
    z = rng.uniform(-3.0, 3.0, size=m)
    z[::3] = -1e30
    z[m - 1] = 9.0
    rows.append(z)
    labels.append(m - 1)
    X = np.array(rows, dtype=dtype)
    y = np.array(labels, dtype=np.intc)
    engine = make_engine(m, [m], "identity", [False], dtype)   # logits = X
    engine.params[...] = np.eye(m, dtype=dtype).ravel()
    engine.allocate(1)
    inputs = dense_inputs(X)
    got = [engine.train(inputs, y, np.array([i], dtype=np.intp), 1, 0.0)[1]
           for i in range(len(y))]
    np.testing.assert_array_equal(got, np.argmax(X, axis=1) == y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [2, 3, 7, 16, 33, 1000])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_softmax_loss_gradient_and_hits_match_numpy(dtype, m, eps):
    """The engine's softmax cross-entropy (vectorised row kernels) against NumPy for
    class counts that leave every remainder of a SIMD width, large logits, label
    smoothing and tied rows: the loss, the gradient (X^T (o - T) / t and the column
    means of o - T) and the count of rows whose first largest logit is the label."""
    from _shared import dense_inputs, make_engine
    rng = np.random.default_rng(m)
    t, d = 9, 4
    engine = make_engine(d, [m], "identity", [True], dtype)
    engine.label_smoothing = eps
    X = rng.normal(size=(t, d)).astype(dtype)
    X[1] = 0.0                      # logits = bias: tied where the bias ties
    y = rng.integers(0, m, size=t).astype(np.intc)
    params = rng.normal(scale=10.0, size=engine.params.shape)
    params[d * m:] = np.round(params[d * m:])       # ties in row 1
    engine.params[...] = params
    W, b = params[:d * m].reshape(d, m), params[d * m:]
    z = X.astype(np.float64) @ W + b
    o = ref.softmax(z)
    T = (1 - eps) * np.eye(m)[y] + eps / m
    loss = -np.mean(np.sum(T * np.log(o), axis=1))
    dz = (o - T) / t
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10,
                                                                      atol=1e-12)
    got_loss, _, _ = engine.gradient(dense_inputs(X), y)
    np.testing.assert_allclose(got_loss, loss, **tol)
    np.testing.assert_allclose(engine.grads[:d * m], (X.T @ dz).ravel(), **tol)
    np.testing.assert_allclose(engine.grads[d * m:], dz.sum(axis=0), **tol)
    engine.allocate(t)
    _, hits = engine.train(dense_inputs(X), y, np.arange(t, dtype=np.intp), t, 0.0)
    zk = (X @ W.astype(dtype) + b.astype(dtype)).astype(dtype)
    assert hits == np.sum(np.argmax(zk, axis=1) == y)


def _engine_inputs(dtype, width):
    """Pre-activations with zeros of both signs, NaN, infinities and huge values."""
    K = _inputs(dtype, width, extreme=True).astype(np.float64)
    K[4, :4] = [0.0, -0.0, np.inf, -np.inf]
    K[5, :3] = [np.nan, 1e30, -1e30]
    return K.astype(dtype)


#: every activation with its workspaces apart, and those the engine runs in place
LAYOUTS = [(name, False) for name in sorted(CODES)] + [
    (name, True) for name in sorted(CODES) if CODES[name] in _mlp._IN_PLACE]


@pytest.mark.parametrize("bias", [False, True], ids=["no_bias", "bias"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, in_place", LAYOUTS)
def test_engine_layer_passes_match_the_activation_kernels(name, in_place, dtype, bias):
    """The engine's fused passes (bias and activation; activation backward and the
    bias gradient's column sums; ReLU and Leaky ReLU in their own C kernels) give
    bitwise what the activation kernels give, NaN and infinities included, also when
    the workspaces overlap as the training engine lays them out (A over K, dK over
    dA, for the activations whose derivative is read from their output)."""
    code = CODES[name]
    width = 12 if name == "swiglu" else 6
    K0 = _engine_inputs(dtype, width)
    fo = K0.shape[1]
    b = np.linspace(-1.5, 1.5, fo).astype(dtype) if bias else None
    slope, beta = 0.13, 1.4
    with np.errstate(all="ignore"):
        Kb = K0 + b if bias else K0.copy()
        A_want, dA, dK_want = _both_ways(name, dtype, Kb, slope, beta)
    sums_want = np.zeros(fo, dtype=dtype)
    for row in dK_want:  # in row order, as the engine adds them
        sums_want += row
    K = K0.copy()
    dA_in = dA.copy()
    sums = np.full(fo, 7.0, dtype=dtype)  # overwritten, not added to
    with np.errstate(all="ignore"):
        if in_place:
            _mlp._layer_pass(code, K, K, b, dA_in, dA_in, sums, slope, beta)
            A, dK = K, dA_in
        else:
            A = np.full_like(A_want, 5.0)
            dK = np.full_like(dK_want, 5.0)
            _mlp._layer_pass(code, K, A, b, dA_in, dK, sums, slope, beta)
            np.testing.assert_array_equal(K, Kb)
    np.testing.assert_array_equal(A, A_want)
    if name == "step":
        return
    np.testing.assert_array_equal(dK, dK_want)
    np.testing.assert_array_equal(sums, sums_want)


def test_engine_refuses_a_negative_leaky_slope():
    """With a slope below zero the sign of Leaky ReLU's output is no longer that of its
    input, which the engine's in-place workspaces rely on: refused, clearly."""
    from _shared import make_engine

    engine = make_engine(3, [4, 2], "leaky_relu", (True, True), "float32")
    engine.leaky_slope = 0.5
    assert engine.leaky_slope == 0.5
    with pytest.raises(ValueError, match="leaky_slope must be >= 0"):
        engine.leaky_slope = -0.1
    assert engine.leaky_slope == 0.5
