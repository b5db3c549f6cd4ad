"""Finite-difference check of the compiled gradients."""
import numpy as np

from cymlp._validation import check_sample_weight, check_targets, is_multilabel

__all__ = ["analytic_gradient", "gradcheck"]


def _prepared(model, X, y, sample_weight=None):
    """(fitted model, inputs, targets, weights) of ``(X, y)`` as one batch.

    An unfitted ``model`` is initialised (not trained) on ``(X, y)`` by the same step
    that prepares a fit; a fitted one is used as it is, with arrays assigned to its
    ``coefs_`` / ``intercepts_`` / ``embeddings_`` copied in.
    """
    if np.dtype(model.dtype) != np.float64:
        raise ValueError("gradcheck needs a model with dtype='float64' (finite differences "
                         "in float32 are dominated by rounding)")
    if not model.__sklearn_is_fitted__():
        model._initialize(X, y)
    fitted = model._fitted
    fitted.sync()
    inputs = fitted.encoder.transform(X, fitted.network.dtype)
    multilabel = is_multilabel(y)
    if not multilabel:
        y = check_targets(y, len(inputs), estimator=type(model).__name__)
    _, targets = model._targets(y, len(inputs), fitted.classes, multilabel)
    weights = check_sample_weight(sample_weight, len(inputs), fitted.network.dtype)
    model._configure_engine(fitted.engine, model._validate_params())
    return fitted, inputs, targets, weights


def analytic_gradient(model, X, y, sample_weight=None):
    """The compiled engine's loss and gradient on all of ``(X, y)`` taken as one batch.

    Parameters
    ----------
    model : MLPClassifier or TextClassifier
        Initialised (not trained) on ``(X, y)`` first if it is not fitted.
    X, y : input and labels, as for ``fit``.

    Returns
    -------
    dict
        ``loss`` (the batch-mean loss of ``docs/model.md``, with the model's ``alpha``
        and ``label_smoothing``), ``dW`` and ``db`` (one array per layer, ``None`` for a
        layer without bias), and for text models ``E_rows`` (the ids of the rows of
        ``E`` the batch touched) and ``dE`` (their gradients).
    """
    fitted, inputs, targets, weights = _prepared(model, X, y, sample_weight)
    loss, rows, e_grad = fitted.engine.gradient(inputs, targets, weights)
    grads = fitted.engine.grads
    out = {"loss": loss,
           "dW": [grads[L.w_slice].reshape(L.w_shape).copy() for L in fitted.network.layers],
           "db": [None if not L.has_bias else grads[L.b_slice].copy()
                  for L in fitted.network.layers]}
    if rows is not None:
        out["E_rows"], out["dE"] = rows, e_grad
    return out


def _loss(engine, inputs, targets, weights=None):
    return engine.gradient(inputs, targets, weights)[0]


def _rel_err(analytic, numeric):
    scale = max(np.max(np.abs(analytic), initial=0.0), np.max(np.abs(numeric), initial=0.0),
                1e-10)
    return float(np.max(np.abs(analytic - numeric), initial=0.0) / scale)


def gradcheck(model, X, y, *, eps=1e-6, sample_weight=None):
    """Compare the analytic gradient of every parameter with central differences.

    The loss is the batch-mean loss of ``docs/model.md`` over all of ``(X, y)`` taken as
    one batch (with the model's ``alpha`` and ``label_smoothing``). Each parameter entry
    ``p`` is perturbed in place: ``(loss(p + eps) - loss(p - eps)) / (2 eps)``.

    Parameters
    ----------
    model : MLPClassifier or TextClassifier with ``dtype='float64'``
        If it is not fitted yet, it is initialised (not trained) on ``(X, y)``.
    X, y : training input and labels, as for ``fit``.
    eps : float, default=1e-6
    sample_weight : array-like of shape (n_samples,), optional
        Check the weighted loss (multi-label ``y`` is checked as it is given).

    Returns
    -------
    dict
        ``{'W0': err, 'b0': err, ..., 'E': err}``: for each parameter the largest
        absolute difference between analytic and numerical gradient divided by the
        largest gradient magnitude of that parameter (0 is perfect; float64 with
        ``eps=1e-6`` gives about 1e-9 on smooth activations).
    """
    fitted, inputs, targets, weights = _prepared(model, X, y, sample_weight)
    engine = fitted.engine
    _, rows, e_grad = engine.gradient(inputs, targets, weights)
    analytic = engine.grads.copy()
    params = engine.params
    out = {}
    for l, layer in enumerate(fitted.network.layers):
        for name, sl in ((f"W{l}", layer.w_slice), (f"b{l}", layer.b_slice)):
            if sl is None:
                continue
            numeric = np.empty(sl.stop - sl.start)
            for i, j in enumerate(range(sl.start, sl.stop)):
                old = params[j]
                params[j] = old + eps
                up = _loss(engine, inputs, targets, weights)
                params[j] = old - eps
                down = _loss(engine, inputs, targets, weights)
                params[j] = old
                numeric[i] = (up - down) / (2 * eps)
            out[name] = _rel_err(analytic[sl], numeric)
    if rows is not None:
        E = engine.E
        numeric = np.empty_like(e_grad)
        for r, row in enumerate(rows):
            for c in range(E.shape[1]):
                old = E[row, c]
                E[row, c] = old + eps
                up = _loss(engine, inputs, targets, weights)
                E[row, c] = old - eps
                down = _loss(engine, inputs, targets, weights)
                E[row, c] = old
                numeric[r, c] = (up - down) / (2 * eps)
        out["E"] = _rel_err(e_grad, numeric)
    return out
