"""Tests of the NumPy reference ``cymlp._reference`` against ``docs/model.md``.

The reference is the oracle of the compiled kernels, so it is checked here
against finite differences, hand-worked numbers and the optimiser formulas.
"""

import importlib.util
import math
import pathlib
import warnings

import numpy as np
import pytest

try:
    from cymlp import _reference as ref
except ImportError:  # the compiled extension is not built: load the file directly
    _path = pathlib.Path(__file__).resolve().parents[1] / "cymlp" / "_reference.py"
    _spec = importlib.util.spec_from_file_location("cymlp_reference", _path)
    ref = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(ref)


DIFFERENTIABLE = [a for a in ref.ACTIVATIONS if a != "step"]
BIAS_PLACEMENTS = ("both", "hidden", "output", "none")
N_FEATURES, WIDTH, N_CLASSES, T = 3, 3, 3, 4


def rel_err(a, b):
    """Norm-wise relative error ||a - b|| / (||a|| + ||b||)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def make_net(rng, activations, bias, n_features=N_FEATURES, width=WIDTH,
             n_classes=N_CLASSES, dtype=np.float64):
    """Random weights and the list of biases of a placement ('both', ...)."""
    n_hidden = len(activations)
    weights, biases = [], []
    fan_in = n_features
    for l in range(n_hidden + 1):
        is_output = l == n_hidden
        if is_output:
            fan_out = n_classes
        else:
            fan_out = 2 * width if activations[l] == "swiglu" else width
        weights.append(rng.normal(0.0, 0.8, size=(fan_in, fan_out)).astype(dtype))
        has_bias = (
            bias == "both"
            or (bias == "hidden" and not is_output)
            or (bias == "output" and is_output)
        )
        biases.append(
            rng.normal(0.0, 0.5, size=fan_out).astype(dtype) if has_bias else None
        )
        fan_in = width
    return weights, biases


def check_all_grads(weights, biases, X, y, activations, **kw):
    """Compare dW, db, dX of loss_and_grads with central differences."""
    res = ref.loss_and_grads(weights, biases, X, y, N_CLASSES, activations,
                             input_grad=True, **kw)

    def loss():
        return ref.loss_and_grads(weights, biases, X, y, N_CLASSES, activations,
                                  **kw)["loss"]

    for l, W in enumerate(weights):
        num = ref.numerical_grad(loss, W)
        assert rel_err(res["dW"][l], num) < 1e-6, f"dW[{l}]"
    for l, b in enumerate(biases):
        if b is None:
            assert res["db"][l] is None
        else:
            num = ref.numerical_grad(loss, b)
            assert rel_err(res["db"][l], num) < 1e-6, f"db[{l}]"
    num = ref.numerical_grad(loss, X)
    assert rel_err(res["dX"], num) < 1e-6, "dX"
    return res


# ---------------------------------------------------------------------------
# (1) gradients of loss_and_grads
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("reg", [(0.0, 0.0), (0.2, 0.0), (0.0, 0.3), (0.2, 0.3)],
                         ids=["plain", "smooth", "alpha", "smooth+alpha"])
@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("bias", BIAS_PLACEMENTS)
@pytest.mark.parametrize("act", DIFFERENTIABLE)
def test_gradients_match_finite_differences(act, bias, depth, reg):
    label_smoothing, alpha = reg
    seed = 100 * DIFFERENTIABLE.index(act) + 10 * BIAS_PLACEMENTS.index(bias) + depth
    rng = np.random.default_rng(seed)
    activations = [act] * depth
    weights, biases = make_net(rng, activations, bias)
    X = rng.normal(size=(T, N_FEATURES))
    y = np.array([0, 2, 1, 2])
    Ks, _, _ = ref.forward(weights, biases, X, activations)
    if act in ("relu", "leaky_relu"):
        # keep every pre-activation off the kink so that differences are valid;
        # an exact 0 (a bias-free layer fed an all-zero relu row) stays 0 under
        # every perturbation, so it is no kink
        assert all(np.all((K == 0) | (np.abs(K) > 1e-4)) for K in Ks)
    check_all_grads(weights, biases, X, y, activations,
                    alpha=alpha, label_smoothing=label_smoothing)


def test_gradients_no_hidden_layer():
    rng = np.random.default_rng(1)
    weights, biases = make_net(rng, [], "both")
    X = rng.normal(size=(T, N_FEATURES))
    check_all_grads(weights, biases, X, np.array([1, 0, 2, 2]), [],
                    alpha=0.5, label_smoothing=0.1)


def test_gradients_mixed_layers_and_parameters():
    # swiglu (fan_out 2v) feeding a leaky_relu layer; non-default slope and beta
    rng = np.random.default_rng(2)
    activations = ["swiglu", "leaky_relu", "swish"]
    weights, biases = make_net(rng, activations, "both")
    X = rng.normal(size=(T, N_FEATURES))
    res = check_all_grads(weights, biases, X, np.array([2, 2, 0, 1]), activations,
                          alpha=0.1, label_smoothing=0.05,
                          leaky_slope=0.3, swish_beta=1.7)
    assert res["dW"][0].shape == (N_FEATURES, 2 * WIDTH)


def test_step_cannot_be_trained():
    rng = np.random.default_rng(3)
    weights, biases = make_net(rng, ["step"], "both")
    X = rng.normal(size=(T, N_FEATURES))
    _, As, _ = ref.forward(weights, biases, X, ["step"])
    assert set(np.unique(As[1])) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="not differentiable"):
        ref.loss_and_grads(weights, biases, X, np.zeros(T, int), N_CLASSES, ["step"])


def test_input_grad_off_returns_none():
    rng = np.random.default_rng(4)
    weights, biases = make_net(rng, ["tanh"], "both")
    X = rng.normal(size=(T, N_FEATURES))
    res = ref.loss_and_grads(weights, biases, X, np.zeros(T, int), N_CLASSES, ["tanh"])
    assert res["dX"] is None


def test_activation_values():
    k = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]])
    expected = {
        "identity": k,
        "step": np.array([[0.0, 0.0, 0.0, 1.0, 1.0]]),
        "sigmoid": 1.0 / (1.0 + np.exp(-k)),
        "tanh": np.tanh(k),
        "arctan": np.arctan(k),
        "relu": np.array([[0.0, 0.0, 0.0, 0.5, 2.0]]),
        "leaky_relu": np.array([[-0.02, -0.005, 0.0, 0.5, 2.0]]),
        "gelu": np.array([[v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in k[0]]]),
        "swish": k / (1.0 + np.exp(-k)),
    }
    for name, want in expected.items():
        np.testing.assert_allclose(ref.activation(name, k), want, rtol=1e-14,
                                   atol=1e-15, err_msg=name)
    # gelu_tanh approximates gelu to about 1e-3
    np.testing.assert_allclose(ref.activation("gelu_tanh", k), expected["gelu"],
                               atol=1e-3)
    assert not np.allclose(ref.activation("gelu_tanh", k), expected["gelu"],
                           atol=1e-7)
    # swiglu: a = 2, c = 3 -> swish(2) * 3 = 3 * 2 / (1 + e^-2)
    h = ref.activation("swiglu", np.array([[2.0, 3.0]]))
    np.testing.assert_allclose(h, [[6.0 / (1.0 + math.exp(-2.0))]], rtol=1e-14)
    np.testing.assert_allclose(ref.activation("logistic", k), expected["sigmoid"])
    with pytest.raises(ValueError, match="unknown activation"):
        ref.activation("softplus", k)


# ---------------------------------------------------------------------------
# (2) embedding encoders
# ---------------------------------------------------------------------------


N_VOCAB, EMBED = 6, 2


def embed_net(rng, n_in, act="tanh"):
    weights, biases = make_net(rng, [act], "both", n_features=n_in)
    E = rng.normal(size=(N_VOCAB, EMBED))
    E[0] = 0.0
    return weights, biases, E


def test_window_encode_layout():
    E = np.arange(N_VOCAB * EMBED, dtype=float).reshape(N_VOCAB, EMBED)
    X = ref.window_encode(E, np.array([[2, 0, 5]]))
    np.testing.assert_array_equal(X, [[4.0, 5.0, 0.0, 1.0, 10.0, 11.0]])


@pytest.mark.parametrize("alpha", [0.0, 0.4])
def test_window_backward_matches_finite_differences(alpha):
    rng = np.random.default_rng(10)
    # id 3 repeated inside the first example, 2 and 4 repeated across examples,
    # PAD (0) in two positions, id 5 unused
    ids = np.array([[3, 2, 3, 0], [4, 2, 1, 0], [4, 4, 3, 2]])
    y = np.array([0, 1, 2])
    n = ids.shape[1]
    weights, biases, E = embed_net(rng, n * EMBED)

    res = ref.loss_and_grads(weights, biases, ref.window_encode(E, ids), y,
                             N_CLASSES, ["tanh"], alpha=alpha, input_grad=True)
    dE = ref.window_backward(ids, res["dX"], N_VOCAB)

    def loss():
        X = ref.window_encode(E, ids)
        return ref.loss_and_grads(weights, biases, X, y, N_CLASSES, ["tanh"],
                                  alpha=alpha)["loss"]

    num = ref.numerical_grad(loss, E)
    assert np.all(dE[0] == 0.0)  # PAD row forced to zero
    assert np.all(dE[5] == 0.0)  # unused id
    assert np.linalg.norm(num[0]) > 1e-3  # PAD is used: only the rule zeroes it
    assert rel_err(dE[1:], num[1:]) < 1e-6


@pytest.mark.parametrize("use_weights", [False, True])
@pytest.mark.parametrize("pooling", ["mean", "sum"])
def test_bag_backward_matches_finite_differences(pooling, use_weights):
    rng = np.random.default_rng(11)
    # example 0: 3 repeated; example 1 empty; 2 and 4 across examples
    indptr = np.array([0, 4, 4, 6, 9])
    indices = np.array([3, 2, 3, 1, 4, 2, 4, 4, 5])
    bag_w = rng.uniform(0.5, 2.0, size=indices.shape) if use_weights else None
    y = np.array([0, 1, 2, 1])
    weights, biases, E = embed_net(rng, EMBED)

    X = ref.bag_encode(E, indptr, indices, bag_w, pooling)
    assert np.all(X[1] == 0.0)  # empty example
    res = ref.loss_and_grads(weights, biases, X, y, N_CLASSES, ["tanh"],
                             input_grad=True)
    dE = ref.bag_backward(indptr, indices, res["dX"], N_VOCAB, bag_w, pooling)

    def loss():
        Xp = ref.bag_encode(E, indptr, indices, bag_w, pooling)
        return ref.loss_and_grads(weights, biases, Xp, y, N_CLASSES, ["tanh"])["loss"]

    num = ref.numerical_grad(loss, E)
    assert np.all(dE[0] == 0.0)
    assert rel_err(dE, num) < 1e-6


def test_bag_encode_by_hand():
    E = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 5.0], [7.0, 11.0]])
    indptr = np.array([0, 3, 3, 4])
    indices = np.array([1, 3, 1, 2])
    w = np.array([1.0, 2.0, 3.0, 0.5])
    # example 0: 1*[1,2] + 2*[7,11] + 3*[1,2] = [18, 30]; mean divides by r = 3
    # example 1: empty; example 2: 0.5*[3,5] = [1.5, 2.5], r = 1
    np.testing.assert_array_equal(ref.bag_encode(E, indptr, indices, w, "sum"),
                                  [[18.0, 30.0], [0.0, 0.0], [1.5, 2.5]])
    np.testing.assert_allclose(ref.bag_encode(E, indptr, indices, w, "mean"),
                               [[6.0, 10.0], [0.0, 0.0], [1.5, 2.5]], rtol=1e-15)
    # unweighted mean of example 0: ([1,2] + [7,11] + [1,2]) / 3 = [3, 5]
    np.testing.assert_allclose(ref.bag_encode(E, indptr, indices)[0], [3.0, 5.0])
    with pytest.raises(ValueError, match="unknown pooling"):
        ref.bag_encode(E, indptr, indices, pooling="max")


# ---------------------------------------------------------------------------
# (3) hand-worked example: 3 inputs, 2 hidden tanh units, 2 classes
# ---------------------------------------------------------------------------
#
# f = [1, 2, -1],  H = [[1, 0], [0, 1], [1, 2]],  b_H = [ln 3, ln 2]
#   f H = [1 + 0 - 1, 0 + 2 - 2] = [0, 0]   ->  k = [ln 3, ln 2]
#   h = tanh k:  tanh(ln 3) = (9 - 1)/(9 + 1) = 0.8,  tanh(ln 2) = (4 - 1)/(4 + 1) = 0.6
# U = [[0.5, -0.5], [-1, 1]],  b_U = [0.2, ln 3 - 0.2]
#   h U = [0.4 - 0.6, -0.4 + 0.6] = [-0.2, 0.2]  ->  z = [0, ln 3]
#   o = [1, 3] / 4 = [0.25, 0.75]
# y = 0, no smoothing: T = [1, 0]
#   loss = lse(z) - z_0 = ln(1 + 3) - 0 = ln 4
#   dz = o - T = [-0.75, 0.75]
#   dU = h^T dz = [[-0.6, 0.6], [-0.45, 0.45]],  db_U = [-0.75, 0.75]
#   dh = dz U^T = [-0.375 - 0.375, 0.75 + 0.75] = [-0.75, 1.5]
#   dk = dh (1 - h^2) = [-0.75 * 0.36, 1.5 * 0.64] = [-0.27, 0.96]
#   dH = f^T dk = [[-0.27, 0.96], [-0.54, 1.92], [0.27, -0.96]],  db_H = [-0.27, 0.96]
#   df = dk H^T = [-0.27, 0.96, -0.27 + 1.92] = [-0.27, 0.96, 1.65]
# Smoothing eps = 0.5 (m = 2) and alpha = 2, same single row (t = 1):
#   T = [0.75, 0.25];  loss = ln 4 - 0.25 ln 3 + (2/2)(||H||^2 + ||U||^2)
#   ||H||^2 = 1 + 1 + 1 + 4 = 7,  ||U||^2 = 0.25 + 0.25 + 1 + 1 = 2.5  -> penalty 9.5
#   dz = o - T = [-0.5, 0.5];  db_U = [-0.5, 0.5]
#   dU = h^T dz + 2 U = [[-0.4, 0.4], [-0.3, 0.3]] + [[1, -1], [-2, 2]]
#      = [[0.6, -0.6], [-2.3, 2.3]]
#   dh = [-0.25 - 0.25, 0.5 + 0.5] = [-0.5, 1];  dk = [-0.18, 0.64];  db_H = dk
#   dH = f^T dk + 2 H = [[-0.18, 0.64], [-0.36, 1.28], [0.18, -0.64]]
#        + [[2, 0], [0, 2], [2, 4]] = [[1.82, 0.64], [-0.36, 3.28], [2.18, 3.36]]
# The same row twice (t = 2, y = [0, 0]): the data part is unchanged (batch
# mean) but the penalty halves, alpha/(2t) * 9.5 = 4.75, and dW = (2 f^T dk + 2 W)/2
#   dU = [[-0.4, 0.4], [-0.3, 0.3]] + [[0.5, -0.5], [-1, 1]] = [[0.1, -0.1], [-1.3, 1.3]]
#   dH = [[-0.18, 0.64], [-0.36, 1.28], [0.18, -0.64]] + [[1, 0], [0, 1], [1, 2]]
#      = [[0.82, 0.64], [-0.36, 2.28], [1.18, 1.36]]


def hand_net():
    H = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 2.0]])
    b_H = np.array([math.log(3.0), math.log(2.0)])
    U = np.array([[0.5, -0.5], [-1.0, 1.0]])
    b_U = np.array([0.2, math.log(3.0) - 0.2])
    return [H, U], [b_H, b_U]


def test_hand_worked_example():
    weights, biases = hand_net()
    f = np.array([[1.0, 2.0, -1.0]])
    _, As, Z = ref.forward(weights, biases, f, ["tanh"])
    np.testing.assert_allclose(As[1], [[0.8, 0.6]], rtol=1e-14)
    np.testing.assert_allclose(Z, [[0.0, math.log(3.0)]], atol=1e-15)
    np.testing.assert_allclose(ref.softmax(Z), [[0.25, 0.75]], rtol=1e-14)

    res = ref.loss_and_grads(weights, biases, f, np.array([0]), 2, ["tanh"],
                             input_grad=True)
    assert res["loss"] == pytest.approx(math.log(4.0), rel=1e-14)
    np.testing.assert_allclose(res["dW"][1], [[-0.6, 0.6], [-0.45, 0.45]], rtol=1e-13)
    np.testing.assert_allclose(res["db"][1], [-0.75, 0.75], rtol=1e-13)
    np.testing.assert_allclose(res["dW"][0], [[-0.27, 0.96], [-0.54, 1.92],
                                              [0.27, -0.96]], rtol=1e-13)
    np.testing.assert_allclose(res["db"][0], [-0.27, 0.96], rtol=1e-13)
    np.testing.assert_allclose(res["dX"], [[-0.27, 0.96, 1.65]], rtol=1e-13)


def test_hand_worked_example_smoothing_and_alpha():
    weights, biases = hand_net()
    f = np.array([[1.0, 2.0, -1.0]])
    res = ref.loss_and_grads(weights, biases, f, np.array([0]), 2, ["tanh"],
                             alpha=2.0, label_smoothing=0.5)
    want_loss = math.log(4.0) - 0.25 * math.log(3.0) + 9.5
    assert res["loss"] == pytest.approx(want_loss, rel=1e-14)
    np.testing.assert_allclose(res["dW"][1], [[0.6, -0.6], [-2.3, 2.3]], rtol=1e-13)
    np.testing.assert_allclose(res["db"][1], [-0.5, 0.5], rtol=1e-13)
    np.testing.assert_allclose(res["dW"][0], [[1.82, 0.64], [-0.36, 3.28],
                                              [2.18, 3.36]], rtol=1e-13)
    np.testing.assert_allclose(res["db"][0], [-0.18, 0.64], rtol=1e-13)

    # two identical rows: batch mean unchanged, penalty and alpha W scaled by 1/t
    res2 = ref.loss_and_grads(weights, biases, np.vstack([f, f]), np.array([0, 0]),
                              2, ["tanh"], alpha=2.0, label_smoothing=0.5)
    want_loss2 = math.log(4.0) - 0.25 * math.log(3.0) + 4.75
    assert res2["loss"] == pytest.approx(want_loss2, rel=1e-14)
    np.testing.assert_allclose(res2["dW"][1], [[0.1, -0.1], [-1.3, 1.3]], rtol=1e-13)
    np.testing.assert_allclose(res2["dW"][0], [[0.82, 0.64], [-0.36, 2.28],
                                               [1.18, 1.36]], rtol=1e-13)
    np.testing.assert_allclose(res2["db"][0], [-0.18, 0.64], rtol=1e-13)


# ---------------------------------------------------------------------------
# (4) softmax stability
# ---------------------------------------------------------------------------


def test_softmax_stable_for_large_logits():
    z = np.array([[1000.0, 1000.0], [1000.0, 0.0], [-1000.0, -1000.0 + math.log(3.0)],
                  [1000.0, 1000.0 + math.log(3.0)]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow / invalid warning fails
        o = ref.softmax(z)
    assert np.all(np.isfinite(o))
    # exp(z - lse) loses a few digits when lse ~ 1000 (1000 - (1000 + ln 2))
    np.testing.assert_allclose(o[0], [0.5, 0.5], rtol=1e-12)
    np.testing.assert_allclose(o[1], [1.0, 0.0], atol=1e-300)
    np.testing.assert_allclose(o[2], [0.25, 0.75], rtol=1e-12)
    np.testing.assert_allclose(o[3], [0.25, 0.75], rtol=1e-12)


def test_loss_finite_for_large_logits():
    # logits [1000, 0] with y = 1: loss = lse - z_1 = 1000 + log(1 + e^-1000) = 1000
    weights = [np.array([[1000.0, 0.0]])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = ref.loss_and_grads(weights, [None], np.array([[1.0]]), np.array([1]),
                                 2, [])
    assert res["loss"] == pytest.approx(1000.0, rel=1e-15)
    # dz = o - T = [1, -1];  dW = f^T dz = [[1, -1]]
    np.testing.assert_allclose(res["dW"][0], [[1.0, -1.0]], rtol=1e-15)


# ---------------------------------------------------------------------------
# (5) optimisers on one parameter: w = 1, gradients g1 then g2, lr = 0.1
# ---------------------------------------------------------------------------


def run_optimizer(solver, grads, **kw):
    w = np.array([1.0])
    opt = ref.Optimizer(solver, 0.1, **kw)
    out = []
    for g in grads:
        opt.step([w, None], [np.array([g]), None])
        out.append(float(w[0]))
    assert opt.step_count == len(grads)
    return out


def test_sgd_plain():
    # w = 1 - 0.1*0.5 = 0.95;  0.95 - 0.1*0.5 = 0.9
    assert run_optimizer("sgd", [0.5, 0.5]) == pytest.approx([0.95, 0.9], rel=1e-15)


def test_sgd_momentum():
    # mu = 0.9, g = 1: vel = -0.1, w = 0.9;  vel = -0.09 - 0.1 = -0.19, w = 0.71
    out = run_optimizer("sgd", [1.0, 1.0], momentum=0.9)
    assert out == pytest.approx([0.9, 0.71], rel=1e-14)


def test_sgd_nesterov():
    # vel = -0.1, w += 0.9*(-0.1) - 0.1 = -0.19 -> 0.81
    # vel = 0.9*(-0.1) - 0.1 = -0.19, w += 0.9*(-0.19) - 0.1 = -0.271 -> 0.539
    out = run_optimizer("sgd", [1.0, 1.0], momentum=0.9, nesterov=True)
    assert out == pytest.approx([0.81, 0.539], rel=1e-14)


def test_adagrad():
    # g = 2: G = 4, w -= 0.1*2/2 = 0.1 -> 0.9
    # g = 1: G = 5, w -= 0.1/sqrt(5) = 0.0447213595 -> 0.8552786405
    out = run_optimizer("adagrad", [2.0, 1.0], epsilon=0.0)
    assert out == pytest.approx([0.9, 0.9 - 0.1 / math.sqrt(5.0)], rel=1e-14)
    assert out[1] == pytest.approx(0.8552786405, abs=1e-10)
    # epsilon is added to sqrt(G): g = 2, eps = 1 -> w -= 0.1*2/(2 + 1)
    out = run_optimizer("adagrad", [2.0], epsilon=1.0)
    assert out == pytest.approx([1.0 - 0.2 / 3.0], rel=1e-14)


def test_adam():
    # b1 = 0.9, b2 = 0.999, eps = 0
    # step 1, g = 2: m = 0.2, v = 0.004, lr_t = 0.1 sqrt(0.001)/0.1 = sqrt(0.001)
    #   update = sqrt(0.001) * 0.2 / sqrt(0.004) = 0.2 * 0.5 = 0.1 -> w = 0.9
    # step 2, g = 1: m = 0.18 + 0.1 = 0.28, v = 0.003996 + 0.001 = 0.004996
    #   lr_t = 0.1 sqrt(1 - 0.998001) / (1 - 0.81) = 0.1 sqrt(0.001999) / 0.19
    #        = 0.0235316...
    #   update = lr_t * 0.28 / sqrt(0.004996) = 0.0235316 * 3.96138 = 0.0932177...
    #   w = 0.9 - 0.0932177 = 0.8067823...
    out = run_optimizer("adam", [2.0, 1.0], epsilon=0.0)
    step2 = 0.1 * math.sqrt(0.001999) / 0.19 * 0.28 / math.sqrt(0.004996)
    assert out == pytest.approx([0.9, 0.9 - step2], rel=1e-13)
    assert out[1] == pytest.approx(0.80678, abs=1e-5)


def test_sparse_step_is_lazy_and_uses_global_step():
    # Adam, eps = 0; rows: 0 PAD, 1 never touched, 2 touched at step 1, 3 at step 2
    E = np.array([[0.0], [1.0], [1.0], [1.0]])
    opt = ref.Optimizer("adam", 0.1, epsilon=0.0)
    with pytest.raises(ValueError, match="must follow step"):
        opt.sparse_step(E, np.array([2]), np.array([[2.0]]))
    opt.step([], [])
    opt.sparse_step(E, np.array([2]), np.array([[2.0]]))
    # first Adam step moves by lr: row 2 -> 0.9
    np.testing.assert_allclose(E[:, 0], [0.0, 1.0, 0.9, 1.0], rtol=1e-14)
    opt.step([], [])
    opt.sparse_step(E, np.array([3]), np.array([[1.0]]))
    # row 3 has zero state but step = 2: m = 0.1, v = 0.001,
    #   update = 0.1 sqrt(0.001999)/0.19 * 0.1/sqrt(0.001) = 0.07440...
    upd = 0.1 * math.sqrt(0.001999) / 0.19 * 0.1 / math.sqrt(0.001)
    assert upd == pytest.approx(0.0744, abs=1e-4)
    np.testing.assert_allclose(E[:, 0], [0.0, 1.0, 0.9, 1.0 - upd], rtol=1e-14)
    assert opt.step_count == 2
    # row 2 was untouched at step 2: its state stayed m = 0.2, v = 0.004; at step 3
    # with g = 0: m = 0.18, v = 0.003996, lr_t = 0.1 sqrt(1 - 0.999^3)/(1 - 0.9^3)
    opt.step([], [])
    opt.sparse_step(E, np.array([2]), np.array([[0.0]]))
    lr_t = 0.1 * math.sqrt(1 - 0.999**3) / (1 - 0.9**3)
    np.testing.assert_allclose(E[2, 0], 0.9 - lr_t * 0.18 / math.sqrt(0.003996),
                               rtol=1e-13)


def test_sparse_step_momentum_matches_dense_on_touched_rows():
    # a row touched at every step follows the dense rule exactly
    E = np.array([[0.0], [1.0]])
    opt_sparse = ref.Optimizer("sgd", 0.1, momentum=0.9)
    for g in (1.0, 1.0):
        opt_sparse.step([], [])
        opt_sparse.sparse_step(E, np.array([1]), np.array([[g]]))
    dense = run_optimizer("sgd", [1.0, 1.0], momentum=0.9)
    assert E[1, 0] == pytest.approx(dense[1], rel=1e-14)
    assert E[0, 0] == 0.0


# ---------------------------------------------------------------------------
# training loop and dtypes
# ---------------------------------------------------------------------------


def test_train_steps_sgd_single_update():
    rng = np.random.default_rng(20)
    weights, biases = make_net(rng, ["tanh"], "hidden")
    X = rng.normal(size=(T, N_FEATURES))
    y = np.array([0, 1, 2, 0])
    before_w = [W.copy() for W in weights]
    res = ref.loss_and_grads(weights, biases, X, y, N_CLASSES, ["tanh"], alpha=0.1)
    b0 = biases[0].copy()
    losses = ref.train_steps(weights, biases, [(X, y)], N_CLASSES, ["tanh"],
                             lr=0.5, alpha=0.1)
    assert losses == [res["loss"]]
    for l in range(2):
        np.testing.assert_allclose(weights[l], before_w[l] - 0.5 * res["dW"][l],
                                   rtol=1e-14)
    np.testing.assert_allclose(biases[0], b0 - 0.5 * res["db"][0], rtol=1e-14)
    assert biases[1] is None


@pytest.mark.parametrize("solver", ["sgd", "adagrad", "adam"])
def test_train_steps_learns_xor(solver):
    rng = np.random.default_rng(21)
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0, 1, 1, 0])
    weights, biases = make_net(rng, ["tanh"], "both", n_features=2, width=4,
                               n_classes=2)
    lr = {"sgd": 0.5, "adagrad": 0.3, "adam": 0.05}[solver]
    losses = ref.train_steps(weights, biases, [(X, y)] * 300, 2, ["tanh"],
                             solver=solver, lr=lr, momentum=0.9)
    assert losses[-1] < 0.1 < losses[0]
    _, _, Z = ref.forward(weights, biases, X, ["tanh"])
    np.testing.assert_array_equal(np.argmax(Z, axis=1), y)


def test_train_steps_window_updates_only_touched_rows():
    rng = np.random.default_rng(22)
    ids = np.array([[3, 2, 3], [2, 0, 1]])  # id 4 and 5 untouched, PAD present
    y = np.array([0, 2])
    weights, biases, E = embed_net(rng, 3 * EMBED)
    E0 = E.copy()
    res = ref.loss_and_grads(weights, biases, ref.window_encode(E, ids), y,
                             N_CLASSES, ["tanh"], input_grad=True)
    dE = ref.window_backward(ids, res["dX"], N_VOCAB)
    ref.train_steps(weights, biases, [(ids, y)], N_CLASSES, ["tanh"], lr=0.3,
                    E=E, encoder="window")
    np.testing.assert_array_equal(E[[0, 4, 5]], E0[[0, 4, 5]])
    np.testing.assert_allclose(E[1:4], E0[1:4] - 0.3 * dE[1:4], rtol=1e-14)
    assert np.all(np.abs(E[1:4] - E0[1:4]) > 0)


def test_train_steps_bag_adam_lazy():
    rng = np.random.default_rng(23)
    weights, biases, E = embed_net(rng, EMBED)
    E0 = E.copy()
    batches = [((np.array([0, 2, 3]), np.array([1, 1, 2]), None), np.array([0, 1])),
               ((np.array([0, 1]), np.array([4]), None), np.array([2]))]
    losses = ref.train_steps(weights, biases, batches, N_CLASSES, ["tanh"],
                             solver="adam", lr=0.01, epsilon=0.0, E=E,
                             encoder="bag", pooling="sum")
    assert len(losses) == 2
    # rows 1 and 2 (batch 1) and 4 (batch 2) moved; 0, 3, 5 did not
    np.testing.assert_array_equal(E[[0, 3, 5]], E0[[0, 3, 5]])
    # first Adam step of a row (eps = 0) moves each coordinate by lr
    np.testing.assert_allclose(np.abs(E[[1, 2]] - E0[[1, 2]]), 0.01, rtol=1e-10)
    # row 4 first touched at global step 2: |move| = lr sqrt(1-b2^2)/(1-b1^2) * 0.1/sqrt(0.001)
    move = 0.01 * math.sqrt(1 - 0.999**2) / (1 - 0.81) * 0.1 / math.sqrt(0.001)
    np.testing.assert_allclose(np.abs(E[4] - E0[4]), move, rtol=1e-10)


@pytest.mark.parametrize("act", ["tanh", "gelu", "swiglu", "relu"])
def test_float32_preserved_and_close_to_float64(act):
    rng = np.random.default_rng(30)
    w64, b64 = make_net(rng, [act], "both")
    X64 = rng.normal(size=(T, N_FEATURES))
    y = np.array([0, 1, 2, 1])
    w32 = [W.astype(np.float32) for W in w64]
    b32 = [b.astype(np.float32) for b in b64]
    X32 = X64.astype(np.float32)
    r32 = ref.loss_and_grads(w32, b32, X32, y, N_CLASSES, [act], alpha=0.1,
                             label_smoothing=0.1, input_grad=True)
    r64 = ref.loss_and_grads(w64, b64, X64, y, N_CLASSES, [act], alpha=0.1,
                             label_smoothing=0.1, input_grad=True)
    for a32, a64 in zip(r32["dW"] + r32["db"] + [r32["dX"], r32["Z"]],
                        r64["dW"] + r64["db"] + [r64["dX"], r64["Z"]]):
        assert a32.dtype == np.float32
        np.testing.assert_allclose(a32, a64, rtol=1e-4, atol=1e-5)
    assert r32["loss"] == pytest.approx(r64["loss"], rel=1e-5)

    E = rng.normal(size=(N_VOCAB, EMBED)).astype(np.float32)
    ids = np.array([[1, 2], [2, 5]])
    assert ref.window_encode(E, ids).dtype == np.float32
    dX = np.ones((2, 2 * EMBED), dtype=np.float32)
    assert ref.window_backward(ids, dX, N_VOCAB).dtype == np.float32
    bag = (np.array([0, 1, 2]), np.array([1, 2]), np.array([0.5, 2.0]))
    assert ref.bag_encode(E, *bag).dtype == np.float32
    assert ref.bag_backward(bag[0], bag[1], dX[:, :EMBED], N_VOCAB, bag[2]).dtype \
        == np.float32

    for solver in ("sgd", "adagrad", "adam"):
        p = [W.copy() for W in w32]
        ref.Optimizer(solver, 0.1, momentum=0.9).step(p, r32["dW"])
        assert all(q.dtype == np.float32 for q in p)
