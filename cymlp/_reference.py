"""Pure NumPy reference of the model in ``docs/model.md``.

Every equation of the model page is written here once more, as plainly as
possible, so that the compiled kernels can be compared against it and timed
against it. Nothing here is tuned for speed beyond ordinary vectorised NumPy.

Names follow the note and the general layer names:

* ``A[0] = f`` (input, ``(t, n_features)``), ``W[0] = H``, ``b[0] = b_H``,
  ``W[L] = U``, ``b[L] = b_U``;
* ``K[l] = A[l] W[l] + b[l]`` is the pre-activation ``k``, ``A[l+1] = g(K[l])``
  the activation ``h``;
* ``z`` are the logits and ``o = softmax(z)``;
* ``E`` is the embedding table ``(n_vocab, embed_dim)``, row 0 is PAD.

All computations stay in the floating dtype of the inputs: constants are
Python floats (weakly typed under NumPy's promotion rules), so float32 inputs
give float32 results.
"""

import math

import numpy as np
from scipy.special import erf, expit

__all__ = [
    "ACTIVATIONS",
    "Optimizer",
    "activation",
    "activation_backward",
    "bag_backward",
    "bag_encode",
    "forward",
    "loss_and_grads",
    "numerical_grad",
    "softmax",
    "train_steps",
    "window_backward",
    "window_encode",
]

ACTIVATIONS = (
    "identity",
    "step",
    "sigmoid",
    "tanh",
    "arctan",
    "relu",
    "leaky_relu",
    "gelu",
    "gelu_tanh",
    "swish",
    "swiglu",
)

_ALIASES = {"logistic": "sigmoid"}

_SQRT_2 = math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_TANH_C = 0.044715

SOLVERS = ("sgd", "adagrad", "adam")
POOLINGS = ("mean", "sum")
ENCODERS = ("window", "bag")


def _canonical(name):
    """Return the canonical activation name, or raise ``ValueError``."""
    name = _ALIASES.get(name, name)
    if name not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {ACTIVATIONS}"
        )
    return name


def _split_swiglu(k):
    """Split ``K = [a, c]`` into its first and last ``v`` columns."""
    if k.shape[-1] % 2 != 0:
        raise ValueError(
            f"swiglu needs an even number of pre-activation columns, got {k.shape[-1]}"
        )
    v = k.shape[-1] // 2
    return k[..., :v], k[..., v:]


def _swish(k, beta):
    """swish(k) = k sigma(beta k)."""
    return k * expit(beta * k)


def _swish_prime(k, beta):
    """swish'(k) = sigma(beta k) + beta k sigma(beta k) (1 - sigma(beta k))."""
    s = expit(beta * k)
    return s + beta * k * s * (1.0 - s)


def activation(name, k, *, leaky_slope=0.01, swish_beta=1.0):
    """Apply the activation ``h = g(k)`` elementwise.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS` (``'logistic'`` is accepted for ``'sigmoid'``).
    k : ndarray of shape (t, fan_out)
        Pre-activation ``K[l]``. For ``'swiglu'``, ``fan_out = 2 v``.
    leaky_slope : float, default=0.01
        Slope ``s`` of ``leaky_relu`` for ``k <= 0``.
    swish_beta : float, default=1.0
        ``beta`` of ``swish`` and ``swiglu``.

    Returns
    -------
    h : ndarray of shape (t, width)
        ``A[l+1]``; ``width = fan_out`` except for ``'swiglu'`` (``v``).
    """
    name = _canonical(name)
    leaky_slope = float(leaky_slope)
    beta = float(swish_beta)
    if name == "identity":
        return k.copy()
    if name == "step":
        return (k > 0).astype(k.dtype)
    if name == "sigmoid":
        return expit(k)
    if name == "tanh":
        return np.tanh(k)
    if name == "arctan":
        return np.arctan(k)
    if name == "relu":
        return np.where(k > 0, k, 0.0).astype(k.dtype, copy=False)
    if name == "leaky_relu":
        return np.where(k > 0, k, leaky_slope * k)
    if name == "gelu":
        # k Phi(k), Phi(k) = (1 + erf(k / sqrt 2)) / 2
        return k * (0.5 * (1.0 + erf(k / _SQRT_2)))
    if name == "gelu_tanh":
        # k (1 + tanh u) / 2,  u = sqrt(2/pi) (k + 0.044715 k^3)
        u = _SQRT_2_OVER_PI * (k + _GELU_TANH_C * k**3)
        return 0.5 * k * (1.0 + np.tanh(u))
    if name == "swish":
        return _swish(k, beta)
    # swiglu: h = swish(a) * c
    a, c = _split_swiglu(k)
    return _swish(a, beta) * c


def activation_backward(name, k, dh, *, leaky_slope=0.01, swish_beta=1.0):
    """Backpropagate through the activation: ``dk = dh * g'(k)``.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS` except ``'step'``.
    k : ndarray of shape (t, fan_out)
        Pre-activation ``K[l]`` of the forward pass.
    dh : ndarray of shape (t, width)
        Gradient with respect to ``A[l+1] = g(K[l])``.
    leaky_slope, swish_beta : float
        As in :func:`activation`.

    Returns
    -------
    dk : ndarray of shape (t, fan_out)
        Gradient with respect to ``K[l]``. For ``'swiglu'``, ``dk = [da, dc]``
        with ``da = dh * c * swish'(a)`` and ``dc = dh * swish(a)``.

    Raises
    ------
    ValueError
        For ``'step'``, which is not differentiable.
    """
    name = _canonical(name)
    leaky_slope = float(leaky_slope)
    beta = float(swish_beta)
    if name == "step":
        raise ValueError("activation 'step' is not differentiable and cannot be trained")
    if name == "identity":
        return dh.copy()
    if name == "sigmoid":
        h = expit(k)
        return dh * h * (1.0 - h)
    if name == "tanh":
        h = np.tanh(k)
        return dh * (1.0 - h * h)
    if name == "arctan":
        return dh / (1.0 + k * k)
    if name == "relu":
        return np.where(k > 0, dh, 0.0).astype(dh.dtype, copy=False)
    if name == "leaky_relu":
        return np.where(k > 0, dh, leaky_slope * dh)
    if name == "gelu":
        # Phi(k) + k phi(k)
        phi_cdf = 0.5 * (1.0 + erf(k / _SQRT_2))
        phi_pdf = np.exp(-0.5 * k * k) / _SQRT_2_PI
        return dh * (phi_cdf + k * phi_pdf)
    if name == "gelu_tanh":
        # (1 + tanh u)/2 + k (1 - tanh^2 u) sqrt(2/pi) (1 + 3 c k^2) / 2
        u = _SQRT_2_OVER_PI * (k + _GELU_TANH_C * k**3)
        th = np.tanh(u)
        du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_TANH_C * k * k)
        return dh * (0.5 * (1.0 + th) + 0.5 * k * (1.0 - th * th) * du)
    if name == "swish":
        return dh * _swish_prime(k, beta)
    # swiglu
    a, c = _split_swiglu(k)
    da = dh * c * _swish_prime(a, beta)
    dc = dh * _swish(a, beta)
    return np.concatenate([da, dc], axis=-1)


def _logsumexp(z):
    """lse(z) = m + log sum exp(z - m), m = max z, over the last axis."""
    m = np.max(z, axis=-1, keepdims=True)
    return m + np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))


def softmax(z):
    """o = softmax(z) = exp(z - lse(z)), row by row.

    Parameters
    ----------
    z : ndarray of shape (t, n_classes)
        Logits.

    Returns
    -------
    o : ndarray of shape (t, n_classes)
        Class probabilities; each row sums to one.
    """
    return np.exp(z - _logsumexp(z))


def _affine(A, W, b):
    """K = A W + b   (b omitted when None)."""
    K = A @ W
    if b is not None:
        K = K + b
    return K


def _check_layers(weights, biases, activations):
    """Return the biases as a list of length ``L + 1`` after shape checks."""
    n_layers = len(weights)
    if n_layers < 1:
        raise ValueError("weights must hold at least the output layer")
    if len(activations) != n_layers - 1:
        raise ValueError(
            f"got {len(activations)} activations for {n_layers - 1} hidden layers"
        )
    if biases is None:
        biases = [None] * n_layers
    if len(biases) != n_layers:
        raise ValueError(f"got {len(biases)} biases for {n_layers} layers")
    return list(biases)


def forward(weights, biases, X, activations, *, leaky_slope=0.01, swish_beta=1.0):
    """Forward pass ``K[l] = A[l] W[l] + b[l]``, ``A[l+1] = g(K[l])``, ``z = A[L] W[L] + b[L]``.

    Parameters
    ----------
    weights : list of L+1 ndarrays
        ``W[l]`` of shape ``(fan_in, fan_out)``; the last one is ``U``.
    biases : list of L+1 (ndarray of shape (fan_out,) or None), or None
        ``b[l]``; ``None`` where the layer has no bias (``None`` for all: no biases).
    X : ndarray of shape (t, n_features)
        Input ``A[0] = f``.
    activations : list of L str
        One activation name per hidden layer.
    leaky_slope, swish_beta : float
        As in :func:`activation`.

    Returns
    -------
    Ks : list of L ndarrays
        Hidden pre-activations ``K[0..L-1]``.
    As : list of L+1 ndarrays
        ``[X, A[1], ..., A[L]]``.
    Z : ndarray of shape (t, n_classes)
        Logits ``z``.
    """
    biases = _check_layers(weights, biases, activations)
    Ks = []
    As = [X]
    for l, name in enumerate(activations):
        K = _affine(As[l], weights[l], biases[l])
        Ks.append(K)
        As.append(
            activation(name, K, leaky_slope=leaky_slope, swish_beta=swish_beta)
        )
    Z = _affine(As[-1], weights[-1], biases[-1])
    return Ks, As, Z


def _targets(y, n_classes, label_smoothing, dtype):
    """T[i] = (1 - eps) onehot(y_i) + eps / m."""
    y = np.asarray(y)
    eps = float(label_smoothing)
    T = np.zeros((y.shape[0], n_classes), dtype=dtype)
    T[np.arange(y.shape[0]), y] = 1.0
    return (1.0 - eps) * T + eps / n_classes


def _binary_targets(Y, label_smoothing, dtype):
    """T = (1 - eps) Y + eps / 2: each label is a problem of two classes."""
    eps = float(label_smoothing)
    return (1.0 - eps) * np.asarray(Y, dtype=dtype) + eps / 2.0


def loss_and_grads(
    weights,
    biases,
    X,
    y,
    n_classes,
    activations,
    *,
    alpha=0.0,
    label_smoothing=0.0,
    leaky_slope=0.01,
    swish_beta=1.0,
    input_grad=False,
    sample_weight=None,
    multilabel=False,
):
    """Batch-mean cross-entropy with L2 penalty and its gradients.

    ``loss = (1/t) sum_i [lse(z_i) - sum_c T[i,c] z[i,c]] + alpha/(2t) sum_l ||W[l]||^2``

    Backward: ``dK[L] = o - T`` (softmax with cross-entropy, no Jacobian is
    formed), ``dW[l] = (A[l]^T dK[l] + alpha W[l]) / t``,
    ``db[l] = colsum(dK[l]) / t``, ``dA[l] = dK[l] W[l]^T``,
    ``dK[l-1] = dA[l] * g'(K[l-1])``, ``dX = dK[0] W[0]^T / t``.

    With ``sample_weight`` ``w`` the batch loss is the weighted mean: every row's
    loss (and so its ``dK``) is multiplied by ``w_i`` and ``t`` becomes ``sum_i w_i``
    everywhere, the penalty's ``1/t`` included. With ``multilabel`` the output is one
    sigmoid per label and the loss of a row the sum over labels of the binary
    cross-entropy ``softplus(z) - T z`` (``T`` the 0/1 indicator smoothed to
    ``(1 - eps) Y + eps / 2``); then ``dK[L] = sigma(z) - T``.

    Parameters
    ----------
    weights, biases, X, activations
        As in :func:`forward`.
    y : ndarray of shape (t,)
        Class indices in ``[0, n_classes)``; with ``multilabel``, a 0/1 indicator
        matrix of shape ``(t, n_classes)``.
    n_classes : int
        Number of classes ``m``.
    alpha : float, default=0.0
        L2 penalty (scaled by ``1/t``, biases not penalised).
    label_smoothing : float, default=0.0
        ``eps`` of the smoothed targets.
    leaky_slope, swish_beta : float
        As in :func:`activation`.
    input_grad : bool, default=False
        Also return ``dX``, the gradient of the loss with respect to ``X``.
    sample_weight : ndarray of shape (t,), optional
        Weight of every row.
    multilabel : bool, default=False
        Sigmoid outputs with a binary cross-entropy per label.

    Returns
    -------
    result : dict
        ``loss`` (float), ``dW`` (list of L+1 arrays), ``db`` (list of L+1
        arrays or None where there is no bias), ``dX`` (``(t, n_features)``
        array, or None unless ``input_grad``), ``Z`` (logits).
    """
    biases = _check_layers(weights, biases, activations)
    Ks, As, Z = forward(
        weights, biases, X, activations, leaky_slope=leaky_slope, swish_beta=swish_beta
    )
    w = (np.ones(X.shape[0], dtype=Z.dtype) if sample_weight is None
         else np.asarray(sample_weight, dtype=Z.dtype))
    t = float(np.sum(w, dtype=np.float64))
    alpha = float(alpha)
    if multilabel:
        T = _binary_targets(y, label_smoothing, Z.dtype)
        # softplus(z) - T z, summed over the labels of a row
        row_loss = np.sum(np.logaddexp(0.0, Z) - T * Z, axis=1)
        # dK[L] = sigma(z) - T: the sigmoid + binary cross-entropy shortcut
        dK = 1.0 / (1.0 + np.exp(-Z)) - T
    else:
        T = _targets(y, n_classes, label_smoothing, Z.dtype)
        lse = _logsumexp(Z)[:, 0]
        row_loss = lse - np.sum(T * Z, axis=1)
        # dK[L] = o - T: the softmax + cross-entropy shortcut (rows of T sum to 1).
        dK = np.exp(Z - lse[:, None]) - T
    data_loss = np.sum(w * row_loss) / t
    penalty = alpha / (2.0 * t) * sum(np.sum(W * W) for W in weights)
    loss = float(data_loss + penalty)
    if sample_weight is not None:
        dK = dK * w[:, None]

    n_layers = len(weights)
    dW = [None] * n_layers
    db = [None] * n_layers
    for l in range(n_layers - 1, -1, -1):
        dW[l] = (As[l].T @ dK + alpha * weights[l]) / t
        if biases[l] is not None:
            db[l] = np.sum(dK, axis=0) / t
        if l > 0 or input_grad:
            dA = dK @ weights[l].T  # uses W[l] before any update
        if l > 0:
            dK = activation_backward(
                activations[l - 1],
                Ks[l - 1],
                dA,
                leaky_slope=leaky_slope,
                swish_beta=swish_beta,
            )
    dX = dA / t if input_grad else None
    return {"loss": loss, "dW": dW, "db": db, "dX": dX, "Z": Z}


# ----------------------------------------------------------------------------
# Embedding encoders
# ----------------------------------------------------------------------------


def window_encode(E, ids):
    """x = [E[j1], E[j2], ..., E[jn]]   (window encoder, concatenation).

    Parameters
    ----------
    E : ndarray of shape (n_vocab, embed_dim)
        Embedding table.
    ids : int ndarray of shape (t, n)
        Token ids per example and position.

    Returns
    -------
    X : ndarray of shape (t, n * embed_dim)
    """
    ids = np.asarray(ids)
    t, n = ids.shape
    return E[ids].reshape(t, n * E.shape[1])


def window_backward(ids, dX, n_vocab):
    """dE[j_p] += dX[i, p*e:(p+1)*e]   (window encoder, scatter-add).

    Parameters
    ----------
    ids : int ndarray of shape (t, n)
        Token ids used by :func:`window_encode`.
    dX : ndarray of shape (t, n * embed_dim)
        Gradient with respect to the encoded input.
    n_vocab : int
        Number of rows of ``E``.

    Returns
    -------
    dE : ndarray of shape (n_vocab, embed_dim)
        Dense gradient of ``E``; repeated ids add up; row 0 (PAD) is zero.
    """
    ids = np.asarray(ids)
    t, n = ids.shape
    e = dX.shape[1] // n
    dE = np.zeros((n_vocab, e), dtype=dX.dtype)
    np.add.at(dE, ids.reshape(-1), dX.reshape(t * n, e))
    dE[0] = 0.0
    return dE


def _bag_scale(indptr, indices, weights, pooling, dtype):
    """Per-entry row owner ``i`` and factor ``w_q / r`` (mean) or ``w_q`` (sum)."""
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; expected one of {POOLINGS}")
    indptr = np.asarray(indptr)
    counts = np.diff(indptr)
    owner = np.repeat(np.arange(counts.shape[0]), counts)
    if weights is None:
        scale = np.ones(len(indices), dtype=dtype)
    else:
        scale = np.asarray(weights).astype(dtype, copy=True)
    if pooling == "mean":
        scale = scale / counts[owner].astype(dtype)
    return owner, scale


def bag_encode(E, indptr, indices, weights=None, pooling="mean"):
    """x = sum_q w_q E[j_q]  (``'sum'``)  or  sum_q w_q E[j_q] / r  (``'mean'``).

    Parameters
    ----------
    E : ndarray of shape (n_vocab, embed_dim)
        Embedding table.
    indptr : int ndarray of shape (t + 1,)
        Example ``i`` uses ``indices[indptr[i]:indptr[i+1]]`` (CSR layout).
    indices : int ndarray of shape (nnz,)
        Token ids.
    weights : ndarray of shape (nnz,), optional
        Weights ``w_q``; 1 when omitted.
    pooling : {'mean', 'sum'}, default='mean'
        ``r`` is the number of ids of the example; an empty example gives 0.

    Returns
    -------
    X : ndarray of shape (t, embed_dim)
    """
    indices = np.asarray(indices)
    owner, scale = _bag_scale(indptr, indices, weights, pooling, E.dtype)
    t = len(indptr) - 1
    X = np.zeros((t, E.shape[1]), dtype=E.dtype)
    np.add.at(X, owner, scale[:, None] * E[indices])
    return X


def bag_backward(indptr, indices, dX, n_vocab, weights=None, pooling="mean"):
    """dE[j_q] += (w_q / r  or  w_q) dX[i]   (bag encoder, scatter-add).

    Parameters
    ----------
    indptr, indices, weights, pooling
        As in :func:`bag_encode`.
    dX : ndarray of shape (t, embed_dim)
        Gradient with respect to the encoded input.
    n_vocab : int
        Number of rows of ``E``.

    Returns
    -------
    dE : ndarray of shape (n_vocab, embed_dim)
        Dense gradient of ``E``; repeated ids add up; row 0 (PAD) is zero.
    """
    indices = np.asarray(indices)
    owner, scale = _bag_scale(indptr, indices, weights, pooling, dX.dtype)
    dE = np.zeros((n_vocab, dX.shape[1]), dtype=dX.dtype)
    np.add.at(dE, indices, scale[:, None] * dX[owner])
    dE[0] = 0.0
    return dE


# ----------------------------------------------------------------------------
# Optimisers
# ----------------------------------------------------------------------------


class Optimizer:
    """SGD (with momentum / Nesterov), Adagrad and Adam as in ``docs/model.md``.

    * ``sgd``: ``vel = mu vel - lr g``; ``W += vel`` or, with Nesterov,
      ``W += mu vel - lr g`` (``mu = 0`` gives ``W -= lr g``);
    * ``adagrad``: ``G += g^2``; ``W -= lr g / (sqrt(G) + epsilon)``;
    * ``adam``: ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
      ``lr_t = lr sqrt(1 - b2^step) / (1 - b1^step)``;
      ``W -= lr_t m / (sqrt(v) + epsilon)``.

    Parameters
    ----------
    solver : {'sgd', 'adagrad', 'adam'}
    lr : float
        Current learning rate (may be changed between steps).
    momentum : float, default=0.0
        ``mu`` of ``sgd``.
    nesterov : bool, default=False
        Nesterov momentum for ``sgd``.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam decay rates ``b1``, ``b2``.
    epsilon : float, default=1e-8
        Denominator offset of Adagrad and Adam.

    Attributes
    ----------
    step_count : int
        Number of dense updates made so far (``step`` of the note).
    """

    def __init__(
        self,
        solver,
        lr,
        *,
        momentum=0.0,
        nesterov=False,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
    ):
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; expected one of {SOLVERS}")
        self.solver = solver
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.step_count = 0
        self._state = None  # per dense parameter: tuple of state arrays
        self._sparse_state = None  # per embedding table row: tuple of arrays

    def _new_state(self, p):
        """Zero state arrays shaped like ``p`` for the chosen solver."""
        if self.solver == "sgd":
            return (np.zeros_like(p),)  # vel
        if self.solver == "adagrad":
            return (np.zeros_like(p),)  # G
        return (np.zeros_like(p), np.zeros_like(p))  # m, v

    def _update(self, state, g):
        """Update ``state`` in place from gradient ``g``; return the increment of ``W``."""
        lr = self.lr
        if self.solver == "sgd":
            (vel,) = state
            mu = self.momentum
            vel[...] = mu * vel - lr * g
            if self.nesterov:
                return mu * vel - lr * g
            return vel.copy()
        if self.solver == "adagrad":
            (G,) = state
            G[...] = G + g * g
            return -lr * g / (np.sqrt(G) + self.epsilon)
        m, v = state
        b1, b2 = self.beta_1, self.beta_2
        m[...] = b1 * m + (1.0 - b1) * g
        v[...] = b2 * v + (1.0 - b2) * g * g
        step = self.step_count
        lr_t = lr * math.sqrt(1.0 - b2**step) / (1.0 - b1**step)
        return -lr_t * m / (np.sqrt(v) + self.epsilon)

    def step(self, params, grads):
        """One dense update of every parameter, in place; ``step_count += 1``.

        Parameters
        ----------
        params : list of (ndarray or None)
            Parameters, updated in place; ``None`` entries are skipped.
        grads : list of (ndarray or None)
            Gradients, aligned with ``params``. The list layout must be the
            same at every call (state is kept by position).
        """
        if len(params) != len(grads):
            raise ValueError(f"got {len(params)} parameters and {len(grads)} gradients")
        if self._state is None:
            self._state = [None if p is None else self._new_state(p) for p in params]
        if len(self._state) != len(params):
            raise ValueError("the parameter list changed between steps")
        self.step_count += 1
        for p, g, state in zip(params, grads, self._state):
            if p is None:
                continue
            p += self._update(state, g)

    def sparse_step(self, E, rows, grad_rows):
        """Lazy update of the touched rows of the embedding table, in place.

        Only ``E[rows]`` and their optimiser state change; Adam uses the
        global ``step_count`` of the dense step made in the same update, so
        call :meth:`step` first; the count is not incremented here.

        Parameters
        ----------
        E : ndarray of shape (n_vocab, embed_dim)
            Embedding table, updated in place.
        rows : int ndarray of shape (n_rows,)
            Unique touched row ids (PAD excluded).
        grad_rows : ndarray of shape (n_rows, embed_dim)
            Summed gradient of each touched row.
        """
        if self.step_count == 0:
            raise ValueError("sparse_step must follow step within the same update")
        rows = np.asarray(rows)
        if np.unique(rows).shape[0] != rows.shape[0]:
            raise ValueError("rows must be unique")
        if self._sparse_state is None:
            self._sparse_state = self._new_state(E)
        sub_state = tuple(s[rows] for s in self._sparse_state)
        E[rows] += self._update(sub_state, grad_rows)
        for full, sub in zip(self._sparse_state, sub_state):
            full[rows] = sub


# ----------------------------------------------------------------------------
# Training loop
# ----------------------------------------------------------------------------


def train_steps(
    weights,
    biases,
    batches,
    n_classes,
    activations,
    *,
    solver="sgd",
    lr=0.1,
    alpha=0.0,
    label_smoothing=0.0,
    momentum=0.0,
    nesterov=False,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
    leaky_slope=0.01,
    swish_beta=1.0,
    E=None,
    encoder=None,
    pooling="mean",
    multilabel=False,
):
    """Run one optimisation step per batch, updating the arrays in place.

    Parameters
    ----------
    weights, biases, n_classes, activations
        As in :func:`loss_and_grads`; ``weights``, the biases and ``E`` are
        updated in place.
    batches : list of (input, y) or (input, y, sample_weight)
        ``input`` is a dense ``(t, n_features)`` array without encoder, an
        int id array ``(t, n)`` for ``'window'``, or
        ``(indptr, indices, weights_or_None)`` for ``'bag'``. A batch whose
        weights sum to 0 is skipped (no step).
    solver, lr, momentum, nesterov, beta_1, beta_2, epsilon
        As in :class:`Optimizer` (constant learning rate).
    alpha, label_smoothing, leaky_slope, swish_beta
        As in :func:`loss_and_grads`.
    E : ndarray of shape (n_vocab, embed_dim), optional
        Embedding table (required with an encoder); PAD row 0 is never updated.
    encoder : {None, 'window', 'bag'}
    pooling : {'mean', 'sum'}
        Bag pooling.

    Returns
    -------
    losses : list of float
        Loss of each batch, evaluated before its update.
    """
    if encoder is not None and encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; expected one of {ENCODERS}")
    if (encoder is None) != (E is None):
        raise ValueError("E and encoder must be given together")
    biases = _check_layers(weights, biases, activations)
    opt = Optimizer(
        solver,
        lr,
        momentum=momentum,
        nesterov=nesterov,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
    )
    losses = []
    for batch in batches:
        inputs, y = batch[:2]
        sample_weight = batch[2] if len(batch) > 2 else None
        if sample_weight is not None and np.sum(sample_weight) <= 0:
            losses.append(0.0)
            continue
        if encoder == "window":
            X = window_encode(E, inputs)
        elif encoder == "bag":
            indptr, indices, bag_w = inputs
            X = bag_encode(E, indptr, indices, bag_w, pooling)
        else:
            X = inputs
        res = loss_and_grads(
            weights,
            biases,
            X,
            y,
            n_classes,
            activations,
            alpha=alpha,
            label_smoothing=label_smoothing,
            leaky_slope=leaky_slope,
            swish_beta=swish_beta,
            input_grad=E is not None,
            sample_weight=sample_weight,
            multilabel=multilabel,
        )
        losses.append(res["loss"])
        opt.step(list(weights) + biases, res["dW"] + res["db"])
        if E is not None:
            n_vocab = E.shape[0]
            if encoder == "window":
                touched = np.unique(np.asarray(inputs))
                dE = window_backward(inputs, res["dX"], n_vocab)
            else:
                touched = np.unique(np.asarray(indices))
                dE = bag_backward(indptr, indices, res["dX"], n_vocab, bag_w, pooling)
            rows = touched[touched != 0]
            opt.sparse_step(E, rows, dE[rows])
    return losses


def numerical_grad(f, x, eps=1e-6):
    """Central differences ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``.

    Parameters
    ----------
    f : callable
        ``f()`` returns a scalar and reads ``x``.
    x : ndarray
        Perturbed in place one element at a time, and restored exactly.
    eps : float, default=1e-6
        Step.

    Returns
    -------
    grad : ndarray of the shape and dtype of ``x``
    """
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        orig = x[idx].copy()
        x[idx] = orig + eps
        f_plus = f()
        x[idx] = orig - eps
        f_minus = f()
        x[idx] = orig
        grad[idx] = (f_plus - f_minus) / (2.0 * eps)
    return grad
