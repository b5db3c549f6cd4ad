"""Multilayer perceptron classifier with hand-derived backpropagation.

The network, per minibatch of ``t`` rows (the note's symbols; ``docs/model.md``)::

    k = f H + b_H,   h = g(k),   z = h U + b_U,   o = softmax(z),   loss = mean(-log o_y)

repeated for every hidden layer. Training runs in the compiled engine (``_mlp.pyx``);
this module validates input, owns the parameters and runs the epochs.
"""
import math
import numbers
import os
import sys
import time
import warnings

import numpy as np

from cymlp import activations as _act
from cymlp._compat import BaseEstimator, ClassifierMixin, ConvergenceWarning, NotFittedError
from cymlp._mlp import SOLVERS, DivergenceError, Engine
from cymlp._validation import (
    Interval,
    check_array,
    check_hidden_sizes,
    check_params,
    check_targets,
    encode_labels,
    feature_names_of,
)

__all__ = ["MLPClassifier"]

BIAS_PLACEMENTS = ("both", "hidden", "output", "none")

#: rows used for the per-epoch diagnostics (saturation, dead units, gradient norms)
DIAGNOSTIC_ROWS = 512

#: the learning rate below which 'adaptive' stops dividing it
_MIN_ADAPTIVE_LR = 1e-6


def _check_dtype(name, value):
    try:
        dt = np.dtype(value)
    except TypeError:
        dt = None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"{name} must be 'float32' or 'float64', got {value!r}")


def _check_batch_size(name, value):
    if isinstance(value, str) and value == "auto":
        return
    Interval(int, 1, None).check(name, value)


def _check_random_state(name, value):
    if value is None or isinstance(value, (numbers.Integral, np.random.Generator,
                                           np.random.RandomState)):
        if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value}")
        return
    raise ValueError(f"{name} must be None, an int or a numpy Generator, got {value!r}")


def _check_verbose(name, value):
    if isinstance(value, (bool, np.bool_)):
        return
    Interval(int, 0, None).check(name, value)


def _check_activation(name, value):
    _act.code(value)


def make_rng(random_state):
    """A numpy Generator from None, an int, a Generator or a legacy RandomState."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    return np.random.default_rng(random_state)


def _available_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return None


class _BaseNetwork(ClassifierMixin, BaseEstimator):
    """Training loop, parameters and persistence shared by the classifiers.

    Subclasses turn their input into a *feed*: the keyword arguments of
    :meth:`Engine.train` (``X`` for dense rows; ``ids``/``indptr``/``tokw`` for the
    embedding encoders) plus the number of rows.
    """

    _parameter_constraints = {
        "hidden_layer_sizes": check_hidden_sizes,
        "activation": _check_activation,
        "solver": tuple(SOLVERS),
        "alpha": Interval(float, 0, None),
        "batch_size": _check_batch_size,
        "learning_rate": ("constant", "invscaling", "adaptive"),
        "learning_rate_init": Interval(float, 0, None, closed="neither"),
        "power_t": Interval(float, 0, None),
        "max_iter": Interval(int, 1, None),
        "shuffle": bool,
        "random_state": _check_random_state,
        "tol": Interval(float, 0, None),
        "verbose": _check_verbose,
        "warm_start": bool,
        "momentum": Interval(float, 0, 1),
        "nesterovs_momentum": bool,
        "early_stopping": bool,
        "validation_fraction": Interval(float, 0, 1, closed="neither"),
        "beta_1": Interval(float, 0, 1, closed="left"),
        "beta_2": Interval(float, 0, 1, closed="left"),
        "epsilon": Interval(float, 0, None, closed="neither"),
        "n_iter_no_change": Interval(int, 1, None),
        "bias": BIAS_PLACEMENTS,
        "label_smoothing": Interval(float, 0, 1, closed="left"),
        "dtype": _check_dtype,
        "leaky_slope": Interval(float, 0, None),
        "swish_beta": Interval(float, 0, None, closed="neither"),
        "init": ("auto", "glorot", "he", "fan_in"),
        "diagnostics": bool,
    }

    # ------------------------------------------------------------- subclass hooks
    def _make_feed(self, X, *, fitting):  # pragma: no cover - abstract
        raise NotImplementedError

    def _n_input_features(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _engine_kwargs(self):
        return {"encoder": "dense"}

    def _init_extra(self, rng):
        """Initialise parameters outside the MLP (the embedding table)."""

    def _max_tokens(self, feed, batch_size):
        return 0

    # ------------------------------------------------------------- parameters
    @property
    def _dtype(self):
        return np.dtype(self.dtype)

    def _validate_params(self):
        check_params(self, self._parameter_constraints)
        sizes = check_hidden_sizes("hidden_layer_sizes", self.hidden_layer_sizes)
        return sizes

    def _layer_widths(self, sizes):
        return list(sizes) + [len(self.classes_)]

    def _build_engine(self, sizes, n_features, rng):
        """Create the engine and draw the initial parameters (docs/model.md)."""
        act = self.activation
        widths = self._layer_widths(sizes)
        n_layers = len(widths)
        has_bias = [
            self.bias in ("both", "hidden") if l < n_layers - 1
            else self.bias in ("both", "output")
            for l in range(n_layers)
        ]
        self._check_memory(n_features, widths, self._extra_bytes())
        engine = Engine(n_features, widths, [_act.code(act)] * len(sizes), has_bias,
                        self._dtype, **self._engine_kwargs())
        params = engine.params
        he = (self.init == "he") or (self.init == "auto" and act in _act.HE_FAMILY)
        for l, ((fan_in, fan_out, _), (w_sl, b_sl)) in enumerate(
                zip(engine.layer_shapes(), engine.param_slices())):
            if self.init == "fan_in":
                bound = 1.0 / math.sqrt(fan_in)
            elif he and l < n_layers - 1:
                bound = math.sqrt(6.0 / fan_in)
            else:
                bound = math.sqrt(6.0 / (fan_in + fan_out))
            params[w_sl] = rng.uniform(-bound, bound, fan_in * fan_out)
            if self.init == "fan_in" and b_sl is not None:
                params[b_sl] = rng.uniform(-bound, bound, fan_out)
        return engine

    def _extra_bytes(self):
        """Memory for parameters outside the MLP (the embedding table and its state)."""
        return 0

    def _check_memory(self, n_features, widths, extra_bytes=0):
        n_params = 0
        fan_in = n_features
        for w in widths:
            n_params += (fan_in + 1) * 2 * w
            fan_in = w
        # params, grads, two optimiser states
        need = n_params * self._dtype.itemsize * 4 + extra_bytes
        avail = _available_memory()
        if avail is not None and need > avail:
            raise MemoryError(
                f"a network with layer sizes {widths} on {n_features} features needs about "
                f"{need / 2**30:.1f} GiB for its parameters and optimiser state, more than "
                f"the {avail / 2**30:.1f} GiB available; reduce hidden_layer_sizes (and, for text, "
                "embed_dim or the vocabulary)")

    def _expose_params(self):
        """coefs_ / intercepts_ as live views into the engine's flat parameters."""
        coefs, intercepts = [], []
        for (fan_in, fan_out, _), (w_sl, b_sl) in zip(self._engine.layer_shapes(),
                                                      self._engine.param_slices()):
            coefs.append(self._engine.params[w_sl].reshape(fan_in, fan_out))
            intercepts.append(None if b_sl is None else self._engine.params[b_sl])
        self.coefs_ = coefs
        self.intercepts_ = intercepts
        self._views = (list(coefs), list(intercepts))

    def _sync_params(self):
        """Copy arrays a user assigned to coefs_ / intercepts_ into the engine."""
        views_w, views_b = self._views
        coefs, intercepts = list(self.coefs_), list(self.intercepts_)
        if len(coefs) != len(views_w) or len(intercepts) != len(views_b):
            raise ValueError(
                f"coefs_ and intercepts_ must keep {len(views_w)} entries (one per layer)")
        changed = False
        for new, view, kind, l in [(c, v, "coefs_", i) for i, (c, v) in enumerate(zip(coefs, views_w))] + \
                [(b, v, "intercepts_", i) for i, (b, v) in enumerate(zip(intercepts, views_b))]:
            if new is view:
                continue
            if view is None:
                if new is not None:
                    raise ValueError(f"{kind}[{l}] must stay None: layer {l} has no bias "
                                     f"(bias={self.bias!r})")
                continue
            arr = np.asarray(new, dtype=self._dtype)
            if arr.shape != view.shape:
                raise ValueError(f"{kind}[{l}] must have shape {view.shape}, got {arr.shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"{kind}[{l}] contains NaN or infinity")
            view[...] = arr
            changed = True
        if changed:
            self._expose_params()

    def _set_hyper(self, engine):
        engine.alpha = float(self.alpha)
        engine.label_smoothing = float(self.label_smoothing)
        engine.leaky_slope = float(self.leaky_slope)
        engine.swish_beta = float(self.swish_beta)
        engine.beta_1 = float(self.beta_1)
        engine.beta_2 = float(self.beta_2)
        engine.epsilon = float(self.epsilon)
        engine.nesterov = bool(self.nesterovs_momentum)
        solver_code = SOLVERS[self.solver]
        momentum = float(self.momentum) if self.solver == "sgd" else 0.0
        if (engine.solver != solver_code or engine.momentum != momentum
                or not getattr(self, "_optimizer_ready", False)):
            engine.momentum = momentum
            engine.set_solver(solver_code)
            self._optimizer_ready = True

    # ------------------------------------------------------------- fitting
    def _resolve_batch_size(self, n):
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(f"batch_size={self.batch_size} is larger than the {n} training "
                          f"samples; using batches of {n}", UserWarning, stacklevel=4)
            return n
        return int(self.batch_size)

    def _fit(self, X, y, *, incremental, classes=None, validation_data=None,
             _train=True):
        sizes = self._validate_params()
        if _train and self.activation == "step":
            raise ValueError(
                "activation='step' has no derivative, so the network cannot be trained "
                "by backpropagation; set its weights by hand (coefs_, intercepts_) and "
                "use predict, or choose a differentiable activation such as 'sigmoid'")
        warm = (incremental or self.warm_start) and self.__sklearn_is_fitted__()
        feed, n = self._make_feed(X, fitting=not warm)
        y = check_targets(y, n, estimator=type(self).__name__)
        if warm:
            if classes is not None:
                given, _ = encode_labels(check_targets(classes, len(classes),
                                                       estimator=type(self).__name__))
                if not np.array_equal(given, self.classes_):
                    raise ValueError(
                        f"classes must be the same in every partial_fit call: first "
                        f"{list(self.classes_)}, now {list(given)}")
            y_idx = encode_labels(y, self.classes_)
            self._sync_params()
        else:
            if classes is not None:
                self.classes_, _ = encode_labels(check_targets(
                    classes, len(classes), estimator=type(self).__name__))
                y_idx = encode_labels(y, self.classes_)
            else:
                self.classes_, y_idx = encode_labels(y)
            if len(self.classes_) < 2:
                raise ValueError(
                    f"y has only one class ({self.classes_[0]!r}); a classifier needs "
                    "at least 2 classes (1 class found)")
            self._rng = make_rng(self.random_state)
            self._init_extra(self._rng)
            self._engine = self._build_engine(sizes, self._n_input_features(), self._rng)
            self._expose_params()
            self._reset_training_state()
        engine = self._engine
        self._set_hyper(engine)

        # validation data: given, or split off the training data (early_stopping)
        val = None
        if validation_data is not None:
            Xv, yv = validation_data
            vfeed, nv = self._make_feed(Xv, fitting=False)
            yv = check_targets(yv, nv, estimator=type(self).__name__)
            val = (vfeed, encode_labels(yv, self.classes_))
        elif self.early_stopping and not incremental and _train:
            train_idx, val_idx = self._split_validation(y_idx)
            val = (self._subset_feed(feed, val_idx), y_idx[val_idx])
            feed = self._subset_feed(feed, train_idx)
            y_idx = y_idx[train_idx]
            n = len(train_idx)
        if val is not None and self.validation_scores_ is None:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf

        batch_size = self._resolve_batch_size(n)
        diag_idx = None
        if self.diagnostics:
            # its own generator: recording diagnostics must not change the training
            diag_idx = np.sort(np.random.default_rng(0).permutation(n)[:DIAGNOSTIC_ROWS])
            diag_feed = self._subset_feed(feed, diag_idx)
        t_max = max(batch_size, len(diag_idx) if diag_idx is not None else 0)
        max_tokens = self._max_tokens(feed, t_max)
        if engine.t_max < t_max or engine.max_touched < min(max_tokens, engine.n_vocab):
            engine.allocate(t_max, max_tokens)

        n_epochs = (1 if incremental else int(self.max_iter)) if _train else 0
        chunk = max(1, 16384 // batch_size) * batch_size
        best_params = None
        stopped = False
        for _ in range(n_epochs):
            epoch = self.n_iter_ + 1
            order = (self._rng.permutation(n) if self.shuffle else np.arange(n)).astype(np.intp)
            lr = self._epoch_lr()
            tic = time.perf_counter()
            epoch_feed = self._epoch_feed(feed)
            loss_sum, correct = 0.0, 0
            try:
                for s in range(0, n, chunk):
                    l, c = engine.train(epoch_feed.get("X"), y_idx, order, s,
                                        min(n, s + chunk), batch_size, lr,
                                        ids=epoch_feed.get("ids"),
                                        indptr=epoch_feed.get("indptr"),
                                        tokw=epoch_feed.get("tokw"))
                    loss_sum += l
                    correct += c
            except DivergenceError:
                raise FloatingPointError(
                    f"training diverged at epoch {epoch}: the loss became NaN or infinite "
                    f"(learning rate {lr:g}, solver {self.solver!r}); lower "
                    "learning_rate_init or use a smaller batch, or rescale the input. "
                    "The parameters are those before the failing batch.") from None
            seconds = time.perf_counter() - tic
            self.n_iter_ += 1
            self.t_ += n
            loss = loss_sum / n
            self.loss_curve_.append(loss)
            record = {"epoch": epoch, "loss": loss, "train_accuracy": correct / n,
                      "val_accuracy": None, "lr": lr, "seconds": seconds,
                      "samples_per_s": n / seconds if seconds > 0 else float("inf")}
            if val is not None:
                score = float(np.mean(self._predict_idx(val[0]) == val[1]))
                record["val_accuracy"] = score
                self.validation_scores_.append(score)
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best_params = (engine.params.copy(), self._extra_state_copy(), epoch)
            if diag_idx is not None:
                record.update(self._diagnose(diag_feed, y_idx[diag_idx]))
            if not self._armed:
                # patience counts only once the model beats the most frequent class
                ref = val[1] if val is not None else y_idx
                now = record["val_accuracy"] if val is not None else record["train_accuracy"]
                self._armed = now > np.bincount(ref).max() / len(ref) + 0.01
            self.history_.append(record)
            if self.verbose:
                self._print_progress(record, n_epochs if not incremental else None)
            if self._update_no_improvement(loss, val is not None):
                if self.learning_rate == "adaptive" and self._lr > _MIN_ADAPTIVE_LR:
                    self._lr /= 5.0
                    self._no_improvement_count = 0
                    if self.verbose:
                        print(f"  learning rate divided by 5: {self._lr:g}", file=sys.stderr)
                else:
                    stopped = True
                    if self.verbose:
                        print(f"  stopping: no improvement by tol={self.tol} for "
                              f"{self.n_iter_no_change} epochs", file=sys.stderr)
                    break
        if best_params is not None:
            engine.params[...] = best_params[0]
            self._restore_extra_state(best_params[1])
            self.best_epoch_ = best_params[2]
        if _train and not incremental and not stopped and self.n_iter_ >= self.max_iter:
            warnings.warn(f"Stochastic optimizer: maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning)
        return self

    def _initialize(self, X, y):
        """Set up classes and initial parameters from (X, y) without training."""
        max_iter, self.max_iter = self.max_iter, 1
        try:
            self._fit(X, y, incremental=False, _train=False)
        finally:
            self.max_iter = max_iter
        return self

    def _encode_for_check(self, y, n):
        return encode_labels(check_targets(y, n, estimator=type(self).__name__),
                             self.classes_)

    def _reset_training_state(self):
        """Fresh optimiser and training record (a new fit, or a loaded model)."""
        self._optimizer_ready = False
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.validation_scores_ = None
        self.best_validation_score_ = None
        self.best_loss_ = np.inf
        self.history_ = []
        self._no_improvement_count = 0
        self._lr = float(self.learning_rate_init)
        self._armed = False
        self.best_epoch_ = None

    def _epoch_lr(self):
        if self.learning_rate == "invscaling":
            return float(self.learning_rate_init) / (self.t_ + 1) ** float(self.power_t)
        return self._lr

    def _update_no_improvement(self, loss, use_val):
        """True when training should stop (or the adaptive rate drop): scikit-learn's
        rule, armed only once the model does better than predicting the most frequent
        class, so a run on the initial plateau of plain SGD is never stopped early."""
        if use_val:
            last = self.validation_scores_[-1]
            previous_best = max(self.validation_scores_[:-1], default=-np.inf)
            improved = last >= previous_best + self.tol
        else:
            improved = loss <= self.best_loss_ - self.tol
            self.best_loss_ = min(self.best_loss_, loss)
        if not self._armed:
            return False
        self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
        return self._no_improvement_count > self.n_iter_no_change

    def _split_validation(self, y_idx):
        """Stratified split of the training rows (validation_fraction)."""
        n = len(y_idx)
        val = []
        for c in range(len(self.classes_)):
            rows = np.flatnonzero(y_idx == c)
            rows = self._rng.permutation(rows)
            k = int(round(len(rows) * self.validation_fraction))
            if k == 0 and len(rows) >= 2:
                k = 1  # every class is represented in validation when it can be
            val.append(rows[:k])
        val_idx = np.sort(np.concatenate(val)).astype(np.intp)
        if len(val_idx) == 0 or len(val_idx) == n:
            raise ValueError(
                f"early_stopping with validation_fraction={self.validation_fraction} leaves "
                f"{len(val_idx)} of {n} samples for validation; give more data or a "
                "different validation_fraction")
        train_idx = np.setdiff1d(np.arange(n), val_idx).astype(np.intp)
        return train_idx, val_idx

    def _epoch_feed(self, feed):
        """The training input of one epoch (the text model drops tokens here)."""
        return feed

    def _extra_state_copy(self):
        return None

    def _restore_extra_state(self, state):
        pass

    def _subset_feed(self, feed, idx):
        return {"X": np.ascontiguousarray(feed["X"][idx])}

    # ------------------------------------------------------------- diagnostics
    def _diagnose(self, feed, y_idx):
        """Saturation / dead units per hidden layer and gradient norm per layer."""
        engine = self._engine
        _, ks, hs = engine.forward(feed.get("X"), ids=feed.get("ids"),
                                   indptr=feed.get("indptr"), tokw=feed.get("tokw"),
                                   keep_hidden=True)
        saturated, dead = [], []
        for k, h in zip(ks, hs):
            k = k.astype(np.float64)
            h = h.astype(np.float64)
            if self.activation in ("sigmoid", "logistic"):
                deriv = h * (1 - h)
            elif self.activation == "tanh":
                deriv = 1 - h * h
            elif self.activation == "arctan":
                deriv = 1 / (1 + k * k)
            else:
                deriv = None
            saturated.append(None if deriv is None else float(np.mean(deriv < 0.01)))
            if self.activation in _act.RECTIFYING:
                active = (k > 0) if self.activation != "swiglu" else (k[:, :h.shape[1]] > 0)
                dead.append(float(np.mean(~active.any(axis=0))))
            else:
                dead.append(None)
        engine.gradient(feed.get("X"), y_idx, ids=feed.get("ids"), indptr=feed.get("indptr"),
                        tokw=feed.get("tokw"))
        norms = []
        for w_sl, b_sl in engine.param_slices():
            sq = float(np.sum(engine.grads[w_sl].astype(np.float64) ** 2))
            if b_sl is not None:
                sq += float(np.sum(engine.grads[b_sl].astype(np.float64) ** 2))
            norms.append(math.sqrt(sq))
        return {"saturated": saturated, "dead": dead, "grad_norm": norms}

    def _print_progress(self, r, n_epochs):
        total = f"/{n_epochs}" if n_epochs else ""
        val = "" if r["val_accuracy"] is None else f"  val_acc={r['val_accuracy']:.4f}"
        print(f"epoch {r['epoch']}{total}  loss={r['loss']:.5f}  "
              f"train_acc={r['train_accuracy']:.4f}{val}  lr={r['lr']:.3g}  "
              f"{r['samples_per_s']:,.0f} samples/s  ({r['seconds']:.2f} s)",
              file=sys.stderr, flush=True)

    # ------------------------------------------------------------- prediction
    def __sklearn_is_fitted__(self):
        return hasattr(self, "_engine")

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator.")

    def _logits(self, feed):
        self._sync_params()
        return self._engine.forward(feed.get("X"), ids=feed.get("ids"),
                                    indptr=feed.get("indptr"), tokw=feed.get("tokw"))

    def _predict_idx(self, feed):
        return np.argmax(self._logits(feed), axis=1)

    def predict_log_proba(self, X):
        """Log class probabilities, shape (n_samples, n_classes), columns in ``classes_``."""
        self._check_fitted()
        feed, _ = self._make_feed(X, fitting=False)
        z = self._logits(feed).astype(np.float64)
        if not np.isfinite(z).all():
            raise FloatingPointError(
                "the logits overflowed to infinity or NaN for some rows: the input is too "
                f"large for this model in {self._dtype.name}; rescale X (or use "
                "dtype='float64')")
        z -= z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def predict_proba(self, X):
        """Class probabilities ``o = softmax(z)``, shape (n_samples, n_classes)."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """Predicted labels (the class of largest probability)."""
        self._check_fitted()
        feed, _ = self._make_feed(X, fitting=False)
        return self.classes_[self._predict_idx(feed)]

    # ------------------------------------------------------------- pickling
    def __getstate__(self):
        state = self.__dict__.copy()
        engine = state.pop("_engine", None)
        if engine is not None:
            state["_engine_state"] = {
                "params": engine.params.copy(), "E": engine.E.copy(),
            }
        for key in ("coefs_", "intercepts_", "_views", "_optimizer_ready"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        engine_state = state.pop("_engine_state", None)
        self.__dict__.update(state)
        if engine_state is not None:
            sizes = check_hidden_sizes("hidden_layer_sizes", self.hidden_layer_sizes)
            self._engine = self._build_engine(sizes, self._n_input_features(),
                                              np.random.default_rng(0))
            self._engine.params[...] = engine_state["params"]
            if self._engine.E.shape == engine_state["E"].shape:
                self._engine.E[...] = engine_state["E"]
            self._optimizer_ready = False
            self._expose_params()


class MLPClassifier(_BaseNetwork):
    """Multilayer perceptron classifier trained by hand-derived backpropagation.

    A drop-in for :class:`sklearn.neural_network.MLPClassifier` where their parameters
    overlap (same names, meanings and defaults), plus the choices the lecture note
    leaves open: where the biases go, label smoothing, more activations.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Width ``v`` of each hidden layer; ``()`` gives a linear (softmax regression)
        model.
    activation : str, default='relu'
        ``g`` of every hidden layer: 'identity', 'step' (forward only), 'sigmoid'
        (alias 'logistic'), 'tanh', 'arctan', 'relu', 'leaky_relu', 'gelu',
        'gelu_tanh', 'swish' or 'swiglu' (see ``docs/model.md``).
    solver : {'adam', 'sgd', 'adagrad'}, default='adam'
        'sgd' with ``momentum=0`` is the note's plain SGD, ``W <- W - lr dW``.
    alpha : float, default=1e-4
        L2 penalty (scikit-learn's meaning: the gradient gains ``alpha W / t``).
    batch_size : int or 'auto', default='auto'
        Minibatch size ``t``; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
    learning_rate_init : float, default=1e-3
    power_t : float, default=0.5
    max_iter : int, default=200
        Number of epochs at most.
    shuffle : bool, default=True
    random_state : None, int or numpy Generator
        Seeds initialisation, shuffling and the validation split. The same seed and
        BLAS thread count give bit-identical parameters.
    tol, n_iter_no_change : float, int
        Stop when the training loss (or the validation score) has not improved by
        ``tol`` for more than ``n_iter_no_change`` epochs, counted once the training
        loss has fallen below 90% of its first-epoch value.
    verbose : bool or int, default=False
        Print one line per epoch (loss, accuracy, learning rate, samples/s) to stderr.
    warm_start : bool, default=False
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified) and keep the
        parameters of the best validation epoch. ``fit(..., validation_data=(X, y))``
        does the same with a given development set.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float
        Adam's (and Adagrad's ``epsilon``) constants.
    bias : {'both', 'hidden', 'output', 'none'}, default='both'
        Which layers have a bias: every layer (the note), hidden layers only, the
        output layer only, or none.
    label_smoothing : float in [0, 1), default=0
        Targets ``T = (1 - eps) onehot(y) + eps / n_classes``.
    dtype : {'float32', 'float64'}, default='float32'
        Precision of parameters and computation.
    leaky_slope : float, default=0.01
        Slope of 'leaky_relu' for negative inputs.
    swish_beta : float, default=1.0
        ``beta`` of 'swish' and 'swiglu' (1 is SiLU).
    init : {'auto', 'glorot', 'he', 'fan_in'}, default='auto'
        Weight initialisation; 'auto' is He for the ReLU family, Glorot otherwise
        (output layer: Glorot; biases 0). 'fan_in' draws every weight and bias of a
        layer from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the default of PyTorch's
        ``nn.Linear`` (for comparisons with models written there).
    diagnostics : bool, default=False
        Record, per epoch, the fraction of saturated (sigmoid, tanh, arctan) or dead
        (ReLU family) units of each hidden layer and each layer's gradient norm on up to
        512 training rows, in ``history_``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coefs_ : list of ndarray
        ``coefs_[l]`` is ``W[l]`` of shape ``(fan_in, fan_out)`` (``H`` then ``U``), a live
        view of the parameters: in-place changes take effect, and arrays assigned in its
        place are copied in before the next ``predict`` or ``partial_fit``.
    intercepts_ : list of ndarray or None
        ``b[l]``, ``None`` for a layer without bias.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    n_iter_ : int
        Epochs run.
    t_ : int
        Training samples seen.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    validation_scores_ : list of float or None
        Validation accuracy of each epoch (early stopping or ``validation_data``).
    best_validation_score_ : float or None
    history_ : list of dict
        Per epoch: epoch, loss, train_accuracy (during the epoch), val_accuracy, lr,
        seconds, samples_per_s, and with ``diagnostics`` saturated, dead, grad_norm.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, bias="both", label_smoothing=0.0, dtype="float32",
                 leaky_slope=0.01, swish_beta=1.0, init="auto", diagnostics=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.bias = bias
        self.label_smoothing = label_smoothing
        self.dtype = dtype
        self.leaky_slope = leaky_slope
        self.swish_beta = swish_beta
        self.init = init
        self.diagnostics = diagnostics

    def _make_feed(self, X, *, fitting):
        name = type(self).__name__
        if fitting:
            names = feature_names_of(X)
            X = check_array(X, self._dtype, estimator=name)
            self.n_features_in_ = X.shape[1]
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        else:
            X = check_array(X, self._dtype, estimator=name, n_features=self.n_features_in_,
                            feature_names=getattr(self, "feature_names_in_", None))
        return {"X": X}, X.shape[0]

    def _n_input_features(self):
        return self.n_features_in_

    def fit(self, X, y, validation_data=None):
        """Train from scratch (or continue, with ``warm_start``) for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels of any hashable type.
        validation_data : tuple (X_dev, y_dev), optional
            Development set scored after every epoch; the parameters of the best epoch
            are kept.

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False, validation_data=validation_data)

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing from the current parameters.

        ``classes`` (all labels that will ever appear) is needed on the first call
        when this batch does not show every class.
        """
        return self._fit(X, y, incremental=True, classes=classes)

    def save(self, path):
        """Write the model to ``path`` (see :func:`cymlp.io.save_model`)."""
        from cymlp.persist import save_model
        save_model(self, path)
        return path
