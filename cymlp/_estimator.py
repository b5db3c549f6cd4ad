"""The estimator machinery shared by :class:`~cymlp.MLPClassifier` and
:class:`~cymlp.TextClassifier`: parameter checks, the fit in named steps, prediction,
and persistence.

A fit is a transaction. :meth:`_BaseNetwork._prepare` validates every parameter and
input and builds the :class:`~cymlp._fitted.FittedModel` to train: a fresh one, or for
``warm_start``/``partial_fit`` the current one (its engine, with a copy of its training
record), of which a snapshot is taken first; :meth:`_BaseNetwork._run_epochs` trains
it; only then does the estimator take it as its fitted state. Anything that fails on
the way, bad input or a diverging loss, leaves a fitted estimator exactly as it was
(a warm fit's engine is restored from the snapshot).

Subclasses provide three hooks: ``_make_encoder`` (the unfitted input encoder for the
validated parameters), ``_init_embedding`` (the initial table ``E``, text models only)
and ``_epoch_inputs`` (the inputs of one training epoch, e.g. with token dropout).
"""
import math
import numbers
import os
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

from cymlp import activations as _act
from cymlp import io as _io
from cymlp._compat import BaseEstimator, ClassifierMixin, ConvergenceWarning, NotFittedError
from cymlp._fitted import FittedModel
from cymlp._mlp import SOLVERS, DivergenceError
from cymlp._network import BIAS_PLACEMENTS, Network
from cymlp._validation import (
    Interval,
    available_memory,
    check_epsilon,
    check_hidden_sizes,
    check_params,
    check_random_state,
    check_sample_weight,
    check_score_weights,
    check_targets,
    check_validation_data,
    encode_labels,
    encode_multilabel,
    is_multilabel,
    make_rng,
)
from cymlp.io import ModelFileError as StateError

__all__ = ["_BaseNetwork"]

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
    return dt.name


def _check_batch_size(name, value):
    if isinstance(value, str) and value == "auto":
        return value
    return Interval(int, 1, None).check(name, value)


def _check_verbose(name, value):
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    return Interval(int, 0, None).check(name, value)


def _check_activation(name, value):
    _act.canonical(value)


def _majority_share(targets, weights):
    """The (weighted) share of the most frequent class, or label set: the accuracy of
    always predicting it."""
    if targets.ndim == 2:
        _, targets = np.unique(targets, axis=0, return_inverse=True)
        targets = targets.ravel()
    counts = np.bincount(targets, weights=weights)
    return counts.max() / counts.sum()


def _check_class_weight(name, value):
    if value is None or (isinstance(value, str) and value == "balanced"):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be None, 'balanced' or a dict of label to weight, "
                         f"got {value!r}")
    for label, weight in value.items():
        Interval(float, 0, None).check(f"{name}[{label!r}]", weight)
    return value


def _check_n_jobs(name, value):
    """None (one thread), -1 (one per core) or a positive int."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or (
            value < 1 and value != -1) or value > 2**31 - 1:
        raise ValueError(f"{name} must be None, -1 (every core) or an int in [1, 2**31 - 1],"
                         f" got {value!r}")
    return int(value)


def n_threads(n_jobs):
    """Threads for ``n_jobs`` (None: 1; -1: the number of cores)."""
    n_jobs = _check_n_jobs("n_jobs", n_jobs)
    if n_jobs is None:
        return 1
    return os.cpu_count() or 1 if n_jobs == -1 else n_jobs


def _available_memory():
    return available_memory()


def _store_arguments(estimator, arguments):
    """``__init__`` stores every argument as an attribute of the same name, unchanged
    (scikit-learn's contract: validation happens in fit)."""
    for name, value in arguments.items():
        if name != "self":
            setattr(estimator, name, value)


@dataclass
class _Run:
    """One fit call in progress: the model being trained and what it trains on."""

    model: FittedModel
    settings: dict
    inputs: object
    y: np.ndarray  # class indices, or an indicator matrix (multi-label)
    w: np.ndarray  # sample weights (with class weights), or None
    val: tuple  # (inputs, y, w) or None
    batch_size: int
    n_epochs: int
    incremental: bool
    diag: tuple = None  # (inputs, y) of the diagnostic rows, or None
    best: tuple = None  # (params, E, epoch) of the best validation epoch
    stopped: bool = False


class _BaseNetwork(ClassifierMixin, BaseEstimator):
    """Parameters, fitting, prediction and persistence shared by the classifiers."""

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
        "random_state": check_random_state,
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
        "class_weight": _check_class_weight,
        "threshold": Interval(float, 0, 1, closed="neither"),
        "n_jobs": _check_n_jobs,
    }

    # ------------------------------------------------------------- subclass hooks
    def _make_encoder(self, settings):  # pragma: no cover - abstract
        """The unfitted input encoder for the validated ``settings``."""
        raise NotImplementedError

    def _init_embedding(self, model, settings, rng):
        """Draw the initial embedding table in place (models with one)."""

    def _epoch_inputs(self, inputs, settings, rng):
        """The training inputs of one epoch (the text model drops tokens here)."""
        return inputs

    # ------------------------------------------------------------- fitted state
    def __sklearn_is_fitted__(self):
        return getattr(self, "_fitted", None) is not None

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator.")
        return self._fitted

    def _fitted_attr(self, name):
        fitted = getattr(self, "_fitted", None)
        if fitted is None:
            raise AttributeError(f"{name} is set by fit; this {type(self).__name__} "
                                 "is not fitted yet")
        return fitted

    classes_ = property(lambda self: self._fitted_attr("classes_").classes)
    n_iter_ = property(lambda self: self._fitted_attr("n_iter_").record.n_iter)
    t_ = property(lambda self: self._fitted_attr("t_").record.t)
    loss_curve_ = property(lambda self: self._fitted_attr("loss_curve_").record.loss_curve)
    history_ = property(lambda self: self._fitted_attr("history_").record.history)
    best_loss_ = property(lambda self: self._fitted_attr("best_loss_").record.best_loss)
    best_epoch_ = property(lambda self: self._fitted_attr("best_epoch_").record.best_epoch)
    validation_scores_ = property(
        lambda self: self._fitted_attr("validation_scores_").record.validation_scores)
    best_validation_score_ = property(
        lambda self: self._fitted_attr("best_validation_score_").record.best_validation_score)
    network_ = property(lambda self: self._fitted_attr("network_").network,
                        doc="The fitted network's structure (cymlp._network.Network).")

    @property
    def coefs_(self):
        return self._fitted_attr("coefs_").coefs

    @coefs_.setter
    def coefs_(self, value):
        self._fitted_attr("coefs_").coefs = value

    @property
    def intercepts_(self):
        return self._fitted_attr("intercepts_").intercepts

    @intercepts_.setter
    def intercepts_(self, value):
        self._fitted_attr("intercepts_").intercepts = value

    @property
    def _engine(self):
        return self._check_fitted().engine

    # ------------------------------------------------------------- fitting
    def fit(self, X, y, validation_data=None, sample_weight=None):
        """Train from scratch (or continue, with ``warm_start``) for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features), or texts
            (TextClassifier)
        y : array-like of shape (n_samples,), or multi-label
            Labels of any hashable type; for several labels per example an indicator
            matrix of shape (n_samples, n_labels) or a list of label lists.
        validation_data : tuple (X_dev, y_dev) or (X_dev, y_dev, sample_weight_dev)
            Development set scored after every epoch; the parameters of the best epoch
            are kept.
        sample_weight : array-like of shape (n_samples,), optional
            Weight of every example in the loss (an integer weight k acts like k copies
            of the example); multiplied by the class weights of ``class_weight``.

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False, validation_data=validation_data,
                         sample_weight=sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), continuing from the current parameters.

        ``classes`` (all labels that will ever appear) is needed on the first call
        when this batch does not show every class.
        """
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def _fit(self, X, y, *, incremental, classes=None, validation_data=None,
             sample_weight=None):
        current = getattr(self, "_fitted", None)
        # a warm fit trains the fitted model itself: keep what it changes, to undo it
        warm = current is not None and (incremental or (
            isinstance(self.warm_start, (bool, np.bool_)) and bool(self.warm_start)))
        undo = current.snapshot() if warm else None
        run = None
        try:
            run = self._prepare(X, y, incremental=incremental, classes=classes,
                                validation_data=validation_data,
                                sample_weight=sample_weight)
            self._run_epochs(run)
            self._finish(run)
        except BaseException as exc:
            if undo is not None:
                current.restore(undo)
            if isinstance(exc, FloatingPointError) and run is not None:
                # what was trained before the failure, for the record (not kept)
                exc.history = list(run.model.record.history)
            raise
        self._fitted = run.model
        return self

    def _validate_params(self):
        """The validated parameters, as :func:`check_params` returns them."""
        return check_params(self, self._parameter_constraints)

    def _prepare(self, X, y, *, incremental, classes=None, validation_data=None,
                 sample_weight=None, train=True):
        """Validate everything and build the model a fit call trains (a :class:`_Run`).

        Nothing of the estimator changes here.
        """
        s = self._validate_params()
        check_epsilon(s["epsilon"], s["dtype"], s["solver"])
        if train and s["activation"] == "step":
            raise ValueError(
                "activation='step' has no derivative, so the network cannot be trained "
                "by backpropagation; set its weights by hand (coefs_, intercepts_) and "
                "use predict, or choose a differentiable activation such as 'sigmoid'")
        current = getattr(self, "_fitted", None)
        warm = (incremental or s["warm_start"]) and current is not None
        threads = n_threads(s["n_jobs"])
        if warm:
            encoder = current.encoder
            inputs = encoder.transform(X, s["dtype"], threads)
        else:
            encoder, inputs = self._make_encoder(s).fit(X, s["dtype"], threads)
        multilabel = is_multilabel(y)
        if not multilabel:
            y = check_targets(y, len(inputs), estimator=type(self).__name__)
        if warm:
            model, targets = self._continue(current, s, inputs, y, classes, multilabel)
        else:
            model, targets = self._initialize_model(encoder, inputs, s, y, classes,
                                                    multilabel)
        weights = self._sample_weights(s, model, targets, sample_weight, incremental)
        val, inputs, targets, weights = self._validation(
            model, s, inputs, targets, weights, validation_data, incremental and train)
        if not warm:  # what the encoder learns from the labels (of the training rows only)
            inputs, val_inputs = model.encoder.fit_labels(
                targets, inputs, None if val is None else val[0], s["dtype"])
            val = None if val is None else (val_inputs, *val[1:])
        batch_size = self._batch_size(s, len(inputs))
        diag = None
        if s["diagnostics"]:
            # its own generator: recording diagnostics must not change the training
            rows = np.sort(np.random.default_rng(0).permutation(len(inputs))[:DIAGNOSTIC_ROWS])
            diag = (inputs.take(rows), targets[rows])
        model.engine.ensure_allocated(inputs, max(batch_size, len(diag[0]) if diag else 0))
        n_epochs = (1 if incremental else s["max_iter"]) if train else 0
        if n_epochs != 1:
            # scanned once here; a single epoch (partial_fit) lets the engine check
            # each batch's rows while it reads them instead of reading X twice
            inputs.check_finite()
        return _Run(model, s, inputs, targets, weights, val, batch_size, n_epochs,
                    incremental, diag)

    def _targets(self, y, n, classes, multilabel):
        """(classes, targets): class indices, or for multi-label y an indicator matrix."""
        name = type(self).__name__
        if multilabel:
            return encode_multilabel(y, n, classes, estimator=name)
        if classes is None:
            return encode_labels(y)
        return classes, encode_labels(y, classes)

    def _initialize_model(self, encoder, inputs, s, y, classes, multilabel):
        """A fresh model for labels ``y``: classes, network and initial parameters."""
        name = type(self).__name__
        if classes is not None and not multilabel:
            classes, _ = encode_labels(check_targets(classes, len(classes), estimator=name))
        elif classes is not None:
            classes = np.asarray(classes)
        classes, targets = self._targets(y, len(inputs), classes, multilabel)
        if len(classes) < 2:
            raise ValueError(
                f"y has only one {'label' if multilabel else 'class'} ({classes[0]!r}); a "
                "classifier needs at least 2 classes (1 class found)")
        network = self._network(s, encoder, len(classes), multilabel)
        rng = make_rng(s["random_state"])
        model = FittedModel.new(encoder, classes, network, s["learning_rate_init"], rng)
        self._init_parameters(model, s, rng)
        self._init_embedding(model, s, rng)
        self._configure_engine(model.engine, s)
        return model, targets

    def _sample_weights(self, s, model, targets, sample_weight, incremental):
        """The weight of every example: ``sample_weight`` times its class's weight
        (``class_weight``), in the model's dtype; None when all weights are 1."""
        n, dtype = len(targets), model.network.dtype
        w = check_sample_weight(sample_weight, n, dtype)
        cw = s["class_weight"]
        if cw is None:
            return w
        if targets.ndim == 2:
            raise ValueError("class_weight is not supported with multi-label y; give "
                             "sample_weight instead")
        classes = model.classes.tolist()
        if isinstance(cw, str):  # 'balanced': n_samples / (n_classes * count of the class)
            if incremental:
                raise ValueError(
                    "class_weight='balanced' needs the labels of the whole training set, "
                    "which partial_fit does not see: give a dict of label to weight, e.g. "
                    "n_samples / (n_classes * count) computed on the full data")
            counts = np.bincount(targets, minlength=len(classes))
            per_class = n / (len(classes) * np.maximum(counts, 1))
        else:
            unknown = [k for k in cw if k not in set(classes)]
            if unknown:
                raise ValueError(f"class_weight names labels that are not classes: "
                                 f"{unknown[:5]} (classes: {classes[:10]})")
            per_class = np.array([float(cw.get(c, 1.0)) for c in classes])
        per_sample = per_class[targets]
        combined = per_sample if w is None else w.astype(np.float64) * per_sample
        return check_sample_weight(combined, n, dtype,
                                   name="sample_weight times class_weight")

    def _network(self, s, encoder, n_classes, multilabel):
        """The network the settings describe; MemoryError if it cannot fit in memory."""
        embedding = encoder.embedding(s)
        network = Network.build(
            n_features=encoder.n_features(s), hidden=s["hidden_layer_sizes"],
            n_outputs=n_classes, activation=s["activation"], bias=s["bias"],
            dtype=s["dtype"], leaky_slope=s["leaky_slope"], swish_beta=s["swish_beta"],
            embedding=embedding, output="sigmoid" if multilabel else "softmax")
        need = network.n_bytes(s["solver"], s["momentum"])
        avail = _available_memory()
        if avail is not None and need > avail:
            raise MemoryError(
                f"a network with layer sizes {list(network.hidden) + [n_classes]} on "
                f"{network.n_features} features needs about {need / 2**30:.1f} GiB for its "
                f"parameters and optimiser state, more than the {avail / 2**30:.1f} GiB "
                "available; reduce hidden_layer_sizes (and, for text, embed_dim or the "
                "vocabulary)")
        return network

    def _init_parameters(self, model, s, rng):
        """Draw the initial weights (and biases) of every layer (docs/model.md)."""
        params = model.engine.params
        init = s["init"]
        he = init == "he" or (init == "auto" and _act.info(s["activation"]).init == "he")
        last = model.network.n_layers - 1
        for l, layer in enumerate(model.network.layers):
            fan_in, fan_out = layer.w_shape
            if init == "fan_in":
                bound = 1.0 / math.sqrt(fan_in)
            elif he and l < last:
                bound = math.sqrt(6.0 / fan_in)
            else:
                bound = math.sqrt(6.0 / (fan_in + fan_out))
            params[layer.w_slice] = rng.uniform(-bound, bound, fan_in * fan_out)
            if init == "fan_in" and layer.has_bias:
                params[layer.b_slice] = rng.uniform(-bound, bound, fan_out)

    def _continue(self, current, s, inputs, y, classes, multilabel):
        """The current model, to be trained further: same structure, a copy of its
        record; the settings' activation shape parameters take effect."""
        name = type(self).__name__
        fitted_multilabel = current.network.output == "sigmoid"
        if multilabel != fitted_multilabel:
            kinds = {True: "multi-label", False: "single-label"}
            raise ValueError(
                f"the model was fitted on {kinds[fitted_multilabel]} y, this y is "
                f"{kinds[multilabel]}; call fit with warm_start=False to train a new model")
        if classes is not None:
            given = (np.asarray(classes) if multilabel else
                     encode_labels(check_targets(classes, len(classes), estimator=name))[0])
            if not np.array_equal(given, current.classes):
                raise ValueError(
                    f"classes must be the same in every partial_fit call: first "
                    f"{list(current.classes)}, now {list(given)}")
        _, targets = self._targets(y, len(inputs), current.classes, multilabel)
        change = current.encoder.layout_difference(s)
        network = None if change else self._network(s, current.encoder, len(current.classes),
                                                    multilabel)
        change = change or current.network.layout_difference(network)
        if change is not None:
            raise ValueError(
                f"cannot continue training the fitted network: {change} since it was "
                "fitted. Call fit with warm_start=False to train a new network, or set the "
                "parameter back.")
        current.sync()
        record = current.record.copy()
        if record.lr_init != s["learning_rate_init"]:  # a new rate: the schedule restarts
            record.lr = record.lr_init = s["learning_rate_init"]
        model = FittedModel(current.encoder, current.classes, network, current.engine,
                            record, current.rng)
        model.engine.leaky_slope = network.leaky_slope
        model.engine.swish_beta = network.swish_beta
        self._configure_engine(model.engine, s)
        return model, targets

    def _configure_engine(self, engine, s):
        """Training settings of the engine; a new solver (or momentum on/off) starts
        from a fresh optimiser state."""
        engine.alpha = s["alpha"]
        engine.label_smoothing = s["label_smoothing"]
        engine.beta_1 = s["beta_1"]
        engine.beta_2 = s["beta_2"]
        engine.epsilon = s["epsilon"]
        engine.nesterov = s["nesterovs_momentum"]
        engine.train_embeddings = s.get("embed_trainable", True)
        code = SOLVERS[s["solver"]]
        momentum = s["momentum"] if s["solver"] == "sgd" else 0.0
        fresh = engine.state1.size == 0 and engine.step == 0
        if engine.solver != code or engine.momentum != momentum or fresh:
            engine.momentum = momentum
            engine.set_solver(code)

    def _validation(self, model, s, inputs, targets, weights, validation_data, incremental):
        """(validation set or None, training inputs, targets, weights): a given
        development set ``(X, y)`` or ``(X, y, sample_weight)``, or a stratified split of
        the training data (early_stopping)."""
        if validation_data is not None:
            multilabel = targets.ndim == 2

            def encode(yv, n):
                if multilabel:
                    return encode_multilabel(yv, n, model.classes)[1]
                yv = check_targets(yv, n, estimator=type(self).__name__)
                return encode_labels(yv, model.classes, advice="a development set can only "
                                     "hold classes of the training data")

            val = check_validation_data(
                validation_data, lambda Xv: model.encoder.transform(Xv, s["dtype"]), encode)
        elif s["early_stopping"] and not incremental:
            train_rows, val_rows = self._split_validation(targets, len(model.classes),
                                                          s["validation_fraction"],
                                                          model.rng)
            val = (inputs.take(val_rows), targets[val_rows],
                   None if weights is None else weights[val_rows].astype(np.float64))
            inputs, targets = inputs.take(train_rows), targets[train_rows]
            weights = None if weights is None else weights[train_rows]
            if weights is not None and not weights.any():
                raise ValueError("every training example left after the validation split "
                                 "has weight 0")
        else:
            return None, inputs, targets, weights
        if model.record.validation_scores is None:
            model.record.validation_scores = []
            model.record.best_validation_score = -np.inf
        return val, inputs, targets, weights

    @staticmethod
    def _split_validation(targets, n_classes, fraction, rng):
        """Split of the training rows (validation_fraction), stratified by class (by
        label set for multi-label targets)."""
        if targets.ndim == 2:
            _, y_idx = np.unique(targets, axis=0, return_inverse=True)
            y_idx = y_idx.ravel()
            n_classes = y_idx.max() + 1
        else:
            y_idx = targets
        n = len(y_idx)
        val = []
        for c in range(n_classes):
            rows = rng.permutation(np.flatnonzero(y_idx == c))
            k = int(round(len(rows) * fraction))
            if k == 0 and len(rows) >= 2:
                k = 1  # every class is represented in validation when it can be
            val.append(rows[:k])
        val_idx = np.sort(np.concatenate(val)).astype(np.intp)
        if len(val_idx) == 0 or len(val_idx) == n:
            raise ValueError(
                f"early_stopping with validation_fraction={fraction} leaves "
                f"{len(val_idx)} of {n} samples for validation; give more data or a "
                "different validation_fraction")
        return np.setdiff1d(np.arange(n), val_idx).astype(np.intp), val_idx

    @staticmethod
    def _batch_size(s, n):
        if s["batch_size"] == "auto":
            return min(200, n)
        if s["batch_size"] > n:
            warnings.warn(f"batch_size={s['batch_size']} is larger than the {n} training "
                          f"samples; using batches of {n}", UserWarning, stacklevel=5)
            return n
        return s["batch_size"]

    def _initialize(self, X, y, classes=None):
        """Set up classes and initial parameters from (X, y) without training (the
        prepare step of a fit; :func:`cymlp.gradcheck` uses it)."""
        run = self._prepare(X, y, incremental=False, classes=classes, train=False)
        self._fitted = run.model
        return self

    # ------------------------------------------------------------- the epochs
    def _run_epochs(self, run):
        # cymlp.autotune watches the epochs of its trials: the hook returns True to end
        # the fit here (the budget is spent: the best epoch so far is kept), or raises
        # to abandon it (a pruned trial), which then fails like any other fit
        watch = getattr(self, "_epoch_callback", None)
        for _ in range(run.n_epochs):
            record = self._epoch(run)
            if watch is not None and watch(record):
                run.stopped = True
                break
            if self._should_stop(run, record):
                run.stopped = True
                break

    def _epoch(self, run):
        """Train one epoch; append its record to the history and return it."""
        model, s, rec = run.model, run.settings, run.model.record
        n = len(run.inputs)
        order = (model.rng.permutation(n).astype(np.intp, copy=False) if s["shuffle"]
                 else np.arange(n, dtype=np.intp))
        lr = self._epoch_lr(s, rec)
        inputs = self._epoch_inputs(run.inputs, s, model.rng)
        tic = time.perf_counter()
        try:
            loss_sum, correct = model.engine.train(inputs, run.y, order, run.batch_size, lr,
                                                   sample_weight=run.w)
        except DivergenceError:
            raise FloatingPointError(
                f"training diverged at epoch {rec.n_iter + 1}: the loss became NaN or "
                f"infinite (learning rate {lr:g}, solver {s['solver']!r}); lower "
                "learning_rate_init or use a smaller batch, or rescale the input. "
                "The estimator keeps its state from before this fit.") from None
        bad = model.non_finite(after_epoch=True)
        if bad is not None:
            # the loss can stay finite while parameters are NaN (a ReLU maps NaN to 0)
            raise FloatingPointError(
                f"training diverged at epoch {rec.n_iter + 1}: {bad} became NaN or "
                f"infinite although the loss stayed finite (learning rate {lr:g}, solver "
                f"{s['solver']!r}, epsilon {s['epsilon']:g}); lower learning_rate_init, "
                "raise epsilon or rescale the input. The estimator keeps its state from "
                "before this fit.")
        seconds = time.perf_counter() - tic
        rec.n_iter += 1
        rec.t += n
        total = n if run.w is None else float(run.w.sum(dtype=np.float64))
        loss = loss_sum / total
        rec.loss_curve.append(loss)
        record = {"epoch": rec.n_iter, "loss": loss, "train_accuracy": correct / total,
                  "val_accuracy": None, "lr": lr, "seconds": seconds,
                  "samples_per_s": n / seconds if seconds > 0 else float("inf")}
        if run.val is not None:
            score = self._accuracy(model, *run.val)
            record["val_accuracy"] = score
            rec.validation_scores.append(score)
            if score > rec.best_validation_score:
                rec.best_validation_score = score
                run.best = (model.engine.params.copy(), model.engine.E.copy(), rec.n_iter)
        if run.diag is not None:
            record.update(self._diagnose(model, *run.diag))
        if not rec.armed:
            # patience counts only once the model beats the most frequent class
            ref = run.val if run.val is not None else (None, run.y, run.w)
            now = record["val_accuracy"] if run.val is not None else record["train_accuracy"]
            rec.armed = bool(now > _majority_share(ref[1], ref[2]) + 0.01)
        rec.history.append(record)
        if s["verbose"]:
            self._print_progress(record, None if run.incremental else run.n_epochs)
        return record

    @staticmethod
    def _epoch_lr(s, rec):
        if s["learning_rate"] == "invscaling":
            try:
                return s["learning_rate_init"] / (rec.t + 1) ** s["power_t"]
            except OverflowError:
                return 0.0
        return rec.lr

    def _should_stop(self, run, record):
        """The stopping rule and the adaptive learning rate, after one epoch."""
        s, rec = run.settings, run.model.record
        if not self._no_improvement(s, rec, record["loss"], run.val is not None):
            return False
        if s["learning_rate"] == "adaptive" and rec.lr > _MIN_ADAPTIVE_LR:
            rec.lr /= 5.0
            rec.no_improvement_count = 0
            if s["verbose"]:
                print(f"  learning rate divided by 5: {rec.lr:g}", file=sys.stderr)
            return False
        if s["verbose"]:
            print(f"  stopping: no improvement by tol={s['tol']} for "
                  f"{s['n_iter_no_change']} epochs", file=sys.stderr)
        return True

    @staticmethod
    def _no_improvement(s, rec, loss, use_val):
        """True when training should stop (or the adaptive rate drop): scikit-learn's
        rule, armed only once the model does better than predicting the most frequent
        class, so a run on the initial plateau of plain SGD is never stopped early."""
        if use_val:
            last = rec.validation_scores[-1]
            previous_best = max(rec.validation_scores[:-1], default=-np.inf)
            improved = last >= previous_best + s["tol"]
        else:
            improved = loss <= rec.best_loss - s["tol"]
            rec.best_loss = min(rec.best_loss, loss)
        if not rec.armed:
            return False
        rec.no_improvement_count = 0 if improved else rec.no_improvement_count + 1
        return rec.no_improvement_count > s["n_iter_no_change"]

    def _finish(self, run):
        """Restore the best validation epoch's parameters; warn at max_iter."""
        if run.best is not None:
            params, E, epoch = run.best
            run.model.engine.params[...] = params
            run.model.engine.E[...] = E
            run.model.record.best_epoch = epoch
        if (run.n_epochs and not run.incremental and not run.stopped
                and run.model.record.n_iter >= run.settings["max_iter"]):
            warnings.warn(f"Stochastic optimizer: maximum iterations "
                          f"({run.settings['max_iter']}) reached and the optimization "
                          "hasn't converged yet.", ConvergenceWarning, stacklevel=4)

    # ------------------------------------------------------------- diagnostics
    @staticmethod
    def _diagnose(model, inputs, y_idx):
        """Saturation / dead units per hidden layer and gradient norm per layer."""
        engine, network = model.engine, model.network
        family = _act.info(network.activation).family
        _, ks, hs = engine.forward(inputs, keep_hidden=True)
        saturated, dead = [], []
        for k, h in zip(ks, hs):
            k = k.astype(np.float64)
            h = h.astype(np.float64)
            if network.activation == "sigmoid":
                deriv = h * (1 - h)
            elif network.activation == "tanh":
                deriv = 1 - h * h
            elif network.activation == "arctan":
                deriv = 1 / (1 + k * k)
            else:
                deriv = None
            saturated.append(None if deriv is None else float(np.mean(deriv < 0.01)))
            if family == "rectifying":
                active = k[:, :h.shape[1]] > 0
                dead.append(float(np.mean(~active.any(axis=0))))
            else:
                dead.append(None)
        engine.gradient(inputs, y_idx)
        norms = []
        for layer in network.layers:
            sq = float(np.sum(engine.grads[layer.w_slice].astype(np.float64) ** 2))
            if layer.has_bias:
                sq += float(np.sum(engine.grads[layer.b_slice].astype(np.float64) ** 2))
            norms.append(math.sqrt(sq))
        return {"saturated": saturated, "dead": dead, "grad_norm": norms}

    @staticmethod
    def _print_progress(r, n_epochs):
        total = f"/{n_epochs}" if n_epochs else ""
        val = "" if r["val_accuracy"] is None else f"  val_acc={r['val_accuracy']:.4f}"
        print(f"epoch {r['epoch']}{total}  loss={r['loss']:.5f}  "
              f"train_acc={r['train_accuracy']:.4f}{val}  lr={r['lr']:.3g}  "
              f"{r['samples_per_s']:,.0f} samples/s  ({r['seconds']:.2f} s)",
              file=sys.stderr, flush=True)

    # ------------------------------------------------------------- prediction
    def _logits(self, model, inputs):
        z = model.engine.forward(inputs, n_jobs=n_threads(self.n_jobs))
        if not np.isfinite(z).all():
            raise FloatingPointError(
                "the logits overflowed to infinity or NaN for some rows: the input is too "
                f"large for this model in {model.network.dtype}; rescale X (or use "
                "dtype='float64')")
        return z

    def _accuracy(self, model, inputs, targets, weights=None):
        """(Weighted) accuracy of the model on encoded targets; for multi-label targets
        the share of examples whose every label is right (subset accuracy)."""
        z = self._logits(model, inputs)
        if targets.ndim == 2:
            hit = np.all((z > 0) == (targets != 0), axis=1)
        else:
            hit = np.argmax(z, axis=1) == targets
        return float(np.average(hit, weights=weights))

    def _inputs_for_prediction(self, X):
        model = self._check_fitted()
        model.sync()
        return model, model.encoder.transform(X, model.network.dtype, n_threads(self.n_jobs))

    def predict_log_proba(self, X):
        """Log probabilities, shape (n_samples, n_classes), columns in ``classes_``: of
        each class (softmax), or of each label on its own (multi-label: log sigma(z))."""
        model, inputs = self._inputs_for_prediction(X)
        z = self._logits(model, inputs).astype(np.float64)
        if model.network.output == "sigmoid":
            return -np.logaddexp(0.0, -z)
        z -= z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def predict_proba(self, X):
        """Probabilities ``o = softmax(z)``, shape (n_samples, n_classes); for a
        multi-label model the probability of each label, ``sigma(z)``."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """Predicted labels: the class of largest probability; for a multi-label model
        the indicator matrix of the labels whose probability reaches ``threshold``."""
        model, inputs = self._inputs_for_prediction(X)
        z = self._logits(model, inputs)
        if model.network.output == "sigmoid":
            threshold = Interval(float, 0, 1, closed="neither").check("threshold",
                                                                      self.threshold)
            # sigma(z) >= threshold  <=>  z >= logit(threshold)
            return (z >= np.log(threshold / (1.0 - threshold))).astype(np.int64)
        return model.classes[np.argmax(z, axis=1)]

    def predict_topk(self, X, k=1, threshold=0.0):
        """The ``k`` most probable labels of every example, with their probabilities.

        Parameters
        ----------
        X : input, as for ``predict``
        k : int, default=1
            Labels per example at most (fastText's ``-k``).
        threshold : float in [0, 1), default=0
            Labels of lower probability are left out (fastText's ``-threshold``), so an
            example may get fewer than ``k``.

        Returns
        -------
        labels : list of ndarray
            For each example, its labels (from ``classes_``), most probable first.
        probabilities : list of ndarray
            Their probabilities (softmax, or per label for multi-label models).
        """
        k = Interval(int, 1, None).check("k", k)
        threshold = Interval(float, 0, 1, closed="left").check("threshold", threshold)
        proba = self.predict_proba(X)
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(proba, order, axis=1)
        classes = self._fitted.classes
        labels, probabilities = [], []
        for row_order, row_p in zip(order, top):
            keep = row_p >= threshold
            labels.append(classes[row_order[keep]])
            probabilities.append(row_p[keep])
        return labels, probabilities

    def score(self, X, y, sample_weight=None):
        """(Weighted) accuracy on (X, y): the share of examples predicted right, for a
        multi-label model those whose every label is right; labels never seen in
        training count as errors."""
        model, inputs = self._inputs_for_prediction(X)
        n = len(inputs)
        w = None if sample_weight is None else check_score_weights(sample_weight, n)
        if model.network.output == "sigmoid":
            if not is_multilabel(y):
                raise ValueError("this model predicts several labels per example: y must "
                                 "be an indicator matrix or a list of label lists")
            known, unseen = self._known_labels(y, n, model.classes)
            _, Y = encode_multilabel(known, n, model.classes)
            hit = np.all((self._logits(model, inputs) >= np.log(
                self.threshold / (1 - self.threshold))) == (Y != 0), axis=1) & ~unseen
        else:
            pred = model.classes[np.argmax(self._logits(model, inputs), axis=1)]
            check_targets(y, n, estimator=type(self).__name__)
            # compare label objects one by one: a list mixing types (an unseen str label
            # among int labels) must not turn every label into a string
            truth = y.tolist() if isinstance(y, np.ndarray) else list(y)
            hit = np.fromiter((p == t for p, t in zip(pred.tolist(), truth)),
                              dtype=bool, count=n)
        return float(np.average(hit, weights=w))

    @staticmethod
    def _known_labels(y, n, classes):
        """(y without labels outside ``classes``, rows that had such a label)."""
        from cymlp._validation import _is_indicator
        if _is_indicator(y):
            return y, np.zeros(n, dtype=bool)
        allowed = set(np.asarray(classes).tolist())
        rows = [list(labels) for labels in y]
        unseen = np.array([any(v not in allowed for v in labels) for labels in rows],
                          dtype=bool)
        return [[v for v in labels if v in allowed] for labels in rows], unseen

    # ------------------------------------------------------------- persistence
    def _to_state(self):
        """(meta, arrays): the parameters and, once fitted, the fitted state."""
        meta = {"estimator": type(self).__name__, "params": _io.jsonable_params(self)}
        arrays = {}
        if self.__sklearn_is_fitted__():
            self._fitted.sync()
            meta["fitted"], arrays = self._fitted.to_state()
        else:
            meta["fitted"] = None
        return meta, arrays

    @classmethod
    def _state_arrays(cls, meta):
        """{array name: the most bytes of data it may hold} for the state ``meta``:
        the arrays a model file of this estimator is read for (:func:`cymlp.io.load`)."""
        fitted = meta.get("fitted")
        return {} if fitted is None else FittedModel.array_limits(fitted, cls._encoder_class)

    @classmethod
    def _from_state(cls, meta, arrays):
        """Rebuild an estimator from :meth:`_to_state`; :class:`StateError` naming the
        problem for anything inconsistent."""
        params = meta.get("params")
        if not isinstance(params, dict):
            raise StateError("'params' missing or not an object")
        valid = cls._get_param_names()
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise StateError(f"unknown parameters {unknown}")
        est = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})
        try:
            est._validate_params()
        except (ValueError, TypeError) as exc:
            raise StateError(f"invalid parameters: {exc}") from None
        fitted = meta.get("fitted")
        if fitted is not None:
            est._fitted = FittedModel.from_state(fitted, arrays, cls._encoder_class)
        return est

    def save(self, path):
        """Write the fitted model to ``path`` (:func:`cymlp.save`); returns ``path``."""
        self._check_fitted()
        _io.save(self, path)
        return path

    def __getstate__(self):
        meta, arrays = self._to_state()
        params = self.get_params(deep=False)
        return {"params": params, "fitted": meta["fitted"], "arrays": arrays}

    def __setstate__(self, state):
        self.__dict__.update(state["params"])
        if state["fitted"] is not None:
            self._fitted = FittedModel.from_state(state["fitted"], state["arrays"],
                                                  self._encoder_class)
