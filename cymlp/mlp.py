"""Multilayer perceptron classifier with hand-derived backpropagation.

The network, per minibatch of ``t`` rows (the note's symbols; ``docs/model.md``)::

    k = f H + b_H,   h = g(k),   z = h U + b_U,   o = softmax(z),   loss = mean(-log o_y)

repeated for every hidden layer. Training runs in the compiled engine (``_mlp.pyx``);
the fit itself, shared with the text classifier, is in ``_estimator.py``. This module
adds what is particular to numeric features: :class:`DenseEncoder`, which checks the
columns and turns ``X`` into the engine's inputs.
"""
import numpy as np

from cymlp import io as _io
from cymlp._estimator import _BaseNetwork, _store_arguments
from cymlp._inputs import DenseInputs, SparseInputs
from cymlp._tuned import TunedMixin, check_budget, fit_autotuned
from cymlp._validation import check_rows, check_sparse_array, feature_names_of, is_sparse
from cymlp.io import ModelFileError

__all__ = ["DenseEncoder", "MLPClassifier"]


class DenseEncoder:
    """Numeric features in, :class:`~cymlp._inputs.DenseInputs` out (or
    :class:`~cymlp._inputs.SparseInputs` for a SciPy sparse ``X``, never densified).

    Fitted on the training ``X``: it remembers the number of columns and, for a
    DataFrame with string column names, the names, and checks both on later input.
    """

    estimator = "MLPClassifier"

    def __init__(self, n_features=None, feature_names=None):
        self.n_features_in = n_features
        self.feature_names_in = feature_names

    def fit(self, X, dtype, n_jobs=1):
        """(fitted encoder, inputs of X)."""
        if is_sparse(X):
            X = check_sparse_array(X, dtype, estimator=self.estimator)
            return DenseEncoder(X.shape[1]), SparseInputs(X, dtype)
        names = feature_names_of(X)
        X, finite = check_rows(X, dtype, estimator=self.estimator)
        return DenseEncoder(X.shape[1], names), DenseInputs(X, finite=finite)

    def transform(self, X, dtype, n_jobs=1):
        if is_sparse(X):
            X = check_sparse_array(X, dtype, estimator=self.estimator,
                                   n_features=self.n_features_in)
            return SparseInputs(X, dtype)
        X, finite = check_rows(X, dtype, estimator=self.estimator,
                               n_features=self.n_features_in,
                               feature_names=self.feature_names_in)
        return DenseInputs(X, finite=finite)

    def fit_labels(self, targets, inputs, val, dtype):
        """Numeric columns learn nothing from the labels: ``(inputs, val)`` unchanged."""
        return inputs, val

    def n_features(self, settings):
        return self.n_features_in

    def layout_difference(self, settings):
        """Nothing to compare: the columns are checked on the data (:meth:`transform`)."""

    def embedding(self, settings):
        """Numeric features need no embedding table."""

    def to_state(self):
        names = None if self.feature_names_in is None else [str(v) for v in
                                                            self.feature_names_in]
        return {"n_features_in": self.n_features_in, "feature_names_in": names}, {}

    @staticmethod
    def array_limits(meta, network):
        """The arrays of the encoder's state and their most bytes: none."""
        return {}

    @classmethod
    def from_state(cls, meta, arrays, network):
        if not isinstance(meta, dict):
            raise ModelFileError("encoder must be an object")
        n = meta.get("n_features_in")
        names = meta.get("feature_names_in")
        if isinstance(n, bool) or not isinstance(n, int) or n != network.n_features:
            raise ModelFileError(f"n_features_in must be the network's input width "
                                 f"{network.n_features}, got {n!r}")
        if names is not None:
            if (not isinstance(names, list) or len(names) != n
                    or not all(isinstance(v, str) for v in names)):
                raise ModelFileError(f"feature_names_in must be a list of {n} strings")
            names = np.asarray(names, dtype=object)
        return cls(n, names)


@_io.register
class MLPClassifier(TunedMixin, _BaseNetwork):
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
    class_weight : None, 'balanced' or dict, default=None
        Weight of each class in the loss, multiplied into ``sample_weight``: a dict of
        label to weight (labels left out weigh 1), or 'balanced', ``n_samples /
        (n_classes * count of the class)`` on the training labels (``fit`` only).
    threshold : float in (0, 1), default=0.5
        Multi-label models: ``predict`` gives the labels whose probability reaches it
        (read at prediction time; a decision rule, not part of the fitted network).
    n_jobs : int or None, default=None
        Threads for prediction (``predict``, ``predict_proba``, ...; -1: one per core).
        The rows are shared out in the same chunks one thread would compute, so the
        results are bitwise those of one thread. Read at prediction time. Training
        runs in one thread of its own (plus the BLAS library's threads).
    autotune_budget : float or None, default=None
        Seconds: ``fit`` then searches the hyper-parameters of the network (depth,
        width, activation, biases, solver, learning rate, batch size, L2, label
        smoothing) for that long with :func:`cymlp.autotune` (``ensembles=False``), on
        ``validation_data`` if given, else by a 3-fold cross-validation of X, and
        keeps the best configuration's network, refitted on all the data
        (``docs/autotune.md``).
        The parameters set here to other than their defaults are held fixed; the
        estimator's parameters are not changed (``best_params_`` holds the choice).

    Multi-label classification: ``y`` given as an indicator matrix of shape
    ``(n_samples, n_labels)`` (or a list of label lists) trains one sigmoid output per
    label with a binary cross-entropy each (``docs/model.md``); ``classes_`` are then
    the labels, ``predict`` returns an indicator matrix and ``predict_proba`` one
    probability per label. Sparse ``X`` (SciPy CSR; other formats are converted) is
    never densified: the first layer is multiplied from its nonzeros, and with plain
    SGD only the weights of the features a batch holds are updated (L2 decay and the
    other optimisers update every weight: the exact gradient step, as for dense X).

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
    network_ : cymlp._network.Network
        The fitted structure: layer widths, activation, biases, parameter layout.
        Parameters changed with ``set_params`` after a fit take effect at the next fit.
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
                 leaky_slope=0.01, swish_beta=1.0, init="auto", diagnostics=False,
                 class_weight=None, threshold=0.5, n_jobs=None, autotune_budget=None):
        _store_arguments(self, locals())

    _parameter_constraints = {**_BaseNetwork._parameter_constraints,
                              "autotune_budget": check_budget}

    _encoder_class = DenseEncoder

    def _make_encoder(self, settings):
        return DenseEncoder()

    def fit(self, X, y, validation_data=None, sample_weight=None):
        """Train from scratch (or continue, with ``warm_start``); see
        :meth:`_BaseNetwork.fit`. With ``autotune_budget``, search first
        (:func:`cymlp.autotune`) and keep the best configuration's network."""
        if self.autotune_budget is not None:
            return fit_autotuned(self, X, y, validation_data, sample_weight)
        return self._fit(X, y, incremental=False, validation_data=validation_data,
                         sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        return tags

    @property
    def n_features_in_(self):
        return self._fitted_attr("n_features_in_").encoder.n_features_in

    @property
    def feature_names_in_(self):
        names = self._fitted_attr("feature_names_in_").encoder.feature_names_in
        if names is None:
            raise AttributeError("feature_names_in_ is set only when fit was given a "
                                 "DataFrame with string column names")
        return names

    @classmethod
    def _upgrade_v1(cls, meta, arrays):
        """State of a model file of model version 1 (before the network description)."""
        from cymlp._compat_v1 import upgrade
        return upgrade(cls, meta, arrays)
