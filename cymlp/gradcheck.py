"""Finite-difference check of the compiled gradients."""
import numpy as np

__all__ = ["gradcheck"]


def _loss(engine, feed, y_idx):
    loss, _, _ = engine.gradient(feed.get("X"), y_idx, ids=feed.get("ids"),
                                 indptr=feed.get("indptr"), tokw=feed.get("tokw"))
    return loss


def _rel_err(analytic, numeric):
    scale = max(np.max(np.abs(analytic), initial=0.0), np.max(np.abs(numeric), initial=0.0),
                1e-10)
    return float(np.max(np.abs(analytic - numeric), initial=0.0) / scale)


def gradcheck(model, X, y, *, eps=1e-6):
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

    Returns
    -------
    dict
        ``{'W0': err, 'b0': err, ..., 'E': err}``: for each parameter the largest
        absolute difference between analytic and numerical gradient divided by the
        largest gradient magnitude of that parameter (0 is perfect; float64 with
        ``eps=1e-6`` gives about 1e-9 on smooth activations).
    """
    if np.dtype(model.dtype) != np.float64:
        raise ValueError("gradcheck needs a model with dtype='float64' (finite differences "
                         "in float32 are dominated by rounding)")
    if not model.__sklearn_is_fitted__():
        model._initialize(X, y)
    model._sync_params()
    feed, n = model._make_feed(X, fitting=False)
    y_idx = model._encode_for_check(y, n)
    engine = model._engine
    model._set_hyper(engine)
    if engine.t_max < n or engine.max_touched < min(model._max_tokens(feed, n), engine.n_vocab):
        engine.allocate(max(n, engine.t_max), model._max_tokens(feed, n))
    _, rows, e_grad = engine.gradient(feed.get("X"), y_idx, ids=feed.get("ids"),
                                      indptr=feed.get("indptr"), tokw=feed.get("tokw"))
    analytic = engine.grads.copy()
    params = engine.params
    out = {}
    for l, (w_sl, b_sl) in enumerate(engine.param_slices()):
        for name, sl in ((f"W{l}", w_sl), (f"b{l}", b_sl)):
            if sl is None:
                continue
            numeric = np.empty(sl.stop - sl.start)
            for i, j in enumerate(range(sl.start, sl.stop)):
                old = params[j]
                params[j] = old + eps
                up = _loss(engine, feed, y_idx)
                params[j] = old - eps
                down = _loss(engine, feed, y_idx)
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
                up = _loss(engine, feed, y_idx)
                E[row, c] = old - eps
                down = _loss(engine, feed, y_idx)
                E[row, c] = old
                numeric[r, c] = (up - down) / (2 * eps)
        out["E"] = _rel_err(e_grad, numeric)
    return out
