"""Sparse n-gram features of texts, and a classifier that takes raw texts through them.

:class:`TfidfFeatures` turns texts into the rows of a CSR matrix, one column per word
n-gram of a :class:`~cymlp.Vocabulary`: a term frequency (raw count, ``1 + log``
count, or 0/1) times a weight per column (the inverse document frequency, or the
naive-Bayes log-count ratio of NBSVM, :func:`cymlp.text.nb_weights`), each row scaled
to unit length. :class:`TextPipeline` puts the features under a
:class:`~cymlp.MLPClassifier` (sparse input, never densified), so that the pair is one
classifier of texts: ``fit(texts, y)``, ``predict(texts)``, a development set of texts,
``cymlp.save``. With ``hidden_layer_sizes=()`` that is logistic regression on TF-IDF
(or NBSVM's features), without scikit-learn.
"""
import numbers

import numpy as np
from scipy import sparse

from cymlp import io as _io
from cymlp._compat import BaseEstimator, ClassifierMixin, NotFittedError, clone
from cymlp._estimator import _check_dtype
from cymlp._network import Network
from cymlp._tuned import TunedMixin
from cymlp._validation import (
    Interval,
    check_params,
    check_targets,
    encode_labels,
    encode_multilabel,
    is_multilabel,
)
from cymlp.io import ModelFileError
from cymlp.mlp import MLPClassifier
from cymlp.text import (
    _bag_counts,
    _check_char_ngram_range,
    _check_texts,
    _idf_of,
    _nb_ratios_of,
    _nb_weights_of,
)
from cymlp.vocab import Vocabulary, _check_span

__all__ = ["COLUMN_WEIGHTS", "TERM_FREQUENCIES", "TextPipeline", "TfidfFeatures"]

#: the term frequency of an n-gram in a text, from its count k: k, 1 + log k, or 1
TERM_FREQUENCIES = ("raw", "log", "binary")

#: the weight of a column: inverse document frequency, naive Bayes, or none
COLUMN_WEIGHTS = ("idf", "nb", None)


def _check_weights(name, value):
    if value is not None and (not isinstance(value, str) or value not in COLUMN_WEIGHTS):
        raise ValueError(f"{name} must be 'idf', 'nb' or None, got {value!r}")


def _check_max_features(name, value):
    if value is not None:
        return Interval(int, 1, None).check(name, value)


def _check_norm(name, value):
    if value is not None and value != "l2":
        raise ValueError(f"{name} must be 'l2' or None, got {value!r}")


def _encoded_targets(y, n):
    """Class indices (or a 0/1 indicator matrix for several labels per text) of ``y``."""
    if is_multilabel(y):
        return encode_multilabel(y, n)[1]
    return encode_labels(check_targets(y, n, estimator="TfidfFeatures"))[1]


class TfidfFeatures(BaseEstimator):
    """Texts to l2-normalised rows of weighted word n-gram frequencies (CSR).

    Row ``i``, column ``j`` (the ``j``-th n-gram of the vocabulary) holds
    ``tf(k_ij) * w_j``, scaled so that every row has length 1 (``norm='l2'``; a text
    without a known n-gram is a row of zeros). ``k_ij`` is the number of times the
    n-gram occurs in text ``i``.

    Parameters
    ----------
    ngram_range : (int, int), default=(1, 2)
        Word n-grams, as :class:`cymlp.Vocabulary` makes them.
    tf : {'log', 'raw', 'binary'}, default='log'
        ``1 + log k`` (scikit-learn's ``sublinear_tf``), ``k``, or 1 (present).
    weights : {'idf', 'nb', None}, default='idf'
        ``'idf'``: ``log((1 + N) / (1 + df_j)) + 1`` over the ``N`` training texts
        (scikit-learn's smooth idf, as ``TextClassifier(token_weights='idf')``);
        ``'nb'``: the naive-Bayes log-count ratio ``max_c |r_c[j]|`` of
        :func:`cymlp.text.nb_weights` (needs ``y`` in ``fit``); with ``tf='binary'``
        these are NBSVM's features (Wang and Manning, 2012); None: 1.
    char_ngram_range : (int, int), optional
        Also a column for each character n-gram (``n`` in this range) of the words,
        each word marked as ``"<" + word + ">"``, as :class:`cymlp.Vocabulary` makes
        them; ``k_ij`` counts an n-gram once per occurrence of a word that holds it,
        and a word never seen in training still has its known n-grams. These columns
        come after the word n-grams' (from ``vocabulary_.char_offset``).
    min_count : int, default=1
        N-grams seen fewer times in the training texts get no column.
    max_features : int, optional
        Keep only this many columns, the most frequent unigrams first (then word
        n-grams, then character n-grams).
    lowercase : bool, default=True
    norm : {'l2', None}, default='l2'
        With ``char_ngram_range``, the word columns and the character columns of a
        row are scaled apart, each to length ``1/sqrt(2)`` (so the row has length 1
        when it has both): a word has many character n-grams, which would otherwise
        outweigh it.
    dtype : {'float32', 'float64'}, default='float32'
        Of the values (the dtype of the classifier that reads them).

    Attributes
    ----------
    vocabulary_ : Vocabulary
        Its ids are the columns; PAD and UNK have columns that are always 0.
    weights_ : ndarray of shape (n_features,), float64
        ``w_j`` of every column (0 for PAD and UNK).
    n_features_ : int
    """

    _parameter_constraints = {
        "ngram_range": _check_span,
        "tf": TERM_FREQUENCIES,
        "weights": _check_weights,
        "char_ngram_range": _check_char_ngram_range,
        "min_count": Interval(int, 1, None),
        "max_features": _check_max_features,
        "lowercase": bool,
        "norm": _check_norm,
        "dtype": _check_dtype,
    }

    def __init__(self, *, ngram_range=(1, 2), tf="log", weights="idf",
                 char_ngram_range=None, min_count=1, max_features=None, lowercase=True,
                 norm="l2", dtype="float32"):
        self.ngram_range = ngram_range
        self.char_ngram_range = char_ngram_range
        self.tf = tf
        self.weights = weights
        self.min_count = min_count
        self.max_features = max_features
        self.lowercase = lowercase
        self.norm = norm
        self.dtype = dtype

    # ------------------------------------------------------------- fitting
    def fit(self, X, y=None):
        """Learn the vocabulary (and the column weights) of the texts ``X``; ``y`` is
        needed for ``weights='nb'``."""
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y=None):
        """:meth:`fit`, and the features of ``X`` (``transform``, computed once)."""
        return self._fit(X, y)[0]

    def _fit(self, X, y):
        """(the features of ``X``, the naive-Bayes ratios of
        :func:`cymlp.text.nb_ratios` of every column and class with ``weights='nb'``,
        else None) of a fit."""
        s = check_params(self, self._parameter_constraints)
        texts = _check_texts(X)
        if s["weights"] == "nb" and y is None:
            raise ValueError("TfidfFeatures(weights='nb') needs the labels: fit(X, y)")
        max_size = None if s["max_features"] is None else s["max_features"] + 2
        vocab = Vocabulary(min_count=s["min_count"], max_size=max_size,
                           ngram_range=tuple(s["ngram_range"]),
                           char_ngram_range=s["char_ngram_range"],
                           lowercase=s["lowercase"]).fit(texts)
        indptr, ids = vocab.encode_bag(texts)
        counts = _bag_counts(ids, indptr, len(vocab))
        ratios = None
        if s["weights"] == "idf":
            weights = _idf_of(counts)
        elif s["weights"] == "nb":
            ratios = _nb_ratios_of(counts, _encoded_targets(y, len(texts)))
            weights = _nb_weights_of(ratios)
        else:
            weights = np.ones(len(vocab))
        weights[[vocab.PAD, vocab.UNK]] = 0.0
        self.vocabulary_, self.weights_ = vocab, weights
        return self._rows(counts), ratios

    def _fitted(self):
        if getattr(self, "vocabulary_", None) is None:
            raise NotFittedError("This TfidfFeatures instance is not fitted yet; call fit")

    @property
    def n_features_(self):
        self._fitted()
        return len(self.vocabulary_)

    # ------------------------------------------------------------- features
    def transform(self, X):
        """The features of the texts ``X``: a CSR matrix of shape
        ``(len(X), n_features_)`` in ``dtype``."""
        self._fitted()
        indptr, ids = self.vocabulary_.encode_bag(_check_texts(X))
        return self._rows(_bag_counts(ids, indptr, len(self.vocabulary_)))

    def _rows(self, counts):
        """The features of the bags' :func:`~cymlp.text._bag_counts` (whose values
        this changes)."""
        if self.tf == "log":
            counts.data = 1.0 + np.log(counts.data)
        elif self.tf == "binary":
            counts.data[:] = 1.0
        rows = sparse.csr_matrix(counts.multiply(self.weights_.reshape(1, -1)))
        rows.eliminate_zeros()
        rows.sort_indices()
        if self.norm == "l2":
            # the length of each row's block (words, or characters when they have columns)
            n_rows = rows.shape[0]
            entry_rows = np.repeat(np.arange(n_rows), np.diff(rows.indptr))
            blocks = 1 if self.char_ngram_range is None else 2
            block = entry_rows * blocks
            if blocks == 2:
                block += rows.indices >= self.vocabulary_.char_offset
            lengths = np.sqrt(np.bincount(block, weights=rows.data ** 2,
                                          minlength=n_rows * blocks)) * np.sqrt(blocks)
            lengths[lengths == 0] = 1.0
            rows.data *= (1.0 / lengths)[block]
        return rows.astype(self.dtype)

    # ------------------------------------------------------------- state
    def _to_state(self):
        """(meta, arrays) of the fitted featuriser (JSON values and arrays)."""
        self._fitted()
        return ({"params": _io.jsonable_params(self), "vocabulary": self.vocabulary_.to_dict()},
                {"weights": self.weights_})

    @classmethod
    def _from_state(cls, meta, arrays):
        if not isinstance(meta, dict) or not isinstance(meta.get("params"), dict):
            raise ModelFileError("features must be an object with params")
        params = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in meta["params"].items()}
        try:
            features = cls(**params)
            check_params(features, cls._parameter_constraints)
            vocab = Vocabulary.from_dict(meta.get("vocabulary"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"bad features: {exc}") from None
        weights = arrays.get("weights")
        if (weights is None or weights.shape != (len(vocab),) or weights.dtype != np.float64
                or not np.isfinite(weights).all()):
            raise ModelFileError(f"features: weights must be {len(vocab)} finite float64 "
                                 "values")
        features.vocabulary_, features.weights_ = vocab, weights
        return features

    def __getstate__(self):
        if getattr(self, "vocabulary_", None) is None:
            return {"params": self.get_params(deep=False), "fitted": None}
        return {"params": self.get_params(deep=False), "fitted": self._to_state()}

    def __setstate__(self, state):
        self.__dict__.update(state["params"])
        if state["fitted"] is not None:
            fitted = type(self)._from_state(*state["fitted"])
            self.vocabulary_, self.weights_ = fitted.vocabulary_, fitted.weights_


_NB_INTERPOLATION = Interval(float, 0, 1)


def _interpolate_nb(classifier, ratios, multilabel, beta):
    """NBSVM's interpolation of the fitted linear ``classifier``'s weights toward naive
    Bayes (``TextPipeline(nb_interpolation=beta)``), in place; ``ratios`` are those of
    the features' fit."""
    top = _nb_weights_of(ratios)[:, None]
    U = np.divide(ratios, top, out=np.zeros_like(ratios), where=top > 0)
    W = classifier.coefs_[0]
    Wd = W.astype(np.float64)
    if not multilabel:   # softmax: what a class's logit gains over their mean
        U = U - U.mean(axis=1, keepdims=True)
        Wd_size = np.abs(Wd - Wd.mean(axis=1, keepdims=True)).mean()
    else:
        Wd_size = np.abs(Wd).mean()
    U_size = np.abs(U).mean()
    if U_size == 0:   # no n-gram tells one class from another: no direction to pull to
        return
    W[...] = beta * Wd + (1.0 - beta) * (Wd_size / U_size) * U


@_io.register
class TextPipeline(TunedMixin, ClassifierMixin, BaseEstimator):
    """A classifier of raw texts: :class:`TfidfFeatures`, then a classifier of their rows.

    ``fit`` fits copies of both (``features_``, ``classifier_``; the arguments are left
    as they are, as in scikit-learn); a development set of texts is turned into
    features by the fitted ``features_`` and given to the classifier's early stopping.

    Parameters
    ----------
    features : TfidfFeatures, optional
        Default ``TfidfFeatures()``.
    classifier : MLPClassifier, optional
        Default ``MLPClassifier(hidden_layer_sizes=(), early_stopping=True)``: logistic
        regression on the features.
    random_state : None or int, default=None
        If not None, the classifier's ``random_state`` (a seed ensemble sets it).
    nb_interpolation : float in [0, 1], default=1
        NBSVM's interpolation (Wang and Manning, 2012) for a linear classifier on
        naive-Bayes features (``TfidfFeatures(weights='nb')`` into an
        ``MLPClassifier`` without hidden layers): after fitting, the weights ``W``
        become ``beta W + (1 - beta) s U``, where ``U[j, c] = r_c[j] / max_c |r_c[j]|``
        is naive Bayes's own classifier in these features (:func:`cymlp.text.nb_ratios`;
        centred over the classes for softmax outputs), and ``s`` gives it the mean
        magnitude of ``W``. 1 leaves the weights as trained; smaller values pull them
        toward naive Bayes, a prior that helps where the training set is small for its
        vocabulary. The biases are left as trained.

    Attributes
    ----------
    features_ : TfidfFeatures
    classifier_ : MLPClassifier
    classes_, n_iter_, best_epoch_, best_validation_score_, validation_scores_,
    history_ : those of ``classifier_``.
    """

    def __init__(self, features=None, classifier=None, *, random_state=None,
                 nb_interpolation=1.0):
        self.features = features
        self.classifier = classifier
        self.random_state = random_state
        self.nb_interpolation = nb_interpolation

    def _parts(self):
        features = TfidfFeatures() if self.features is None else self.features
        classifier = (MLPClassifier((), early_stopping=True) if self.classifier is None
                      else self.classifier)
        if not isinstance(features, TfidfFeatures):
            raise ValueError(f"features must be a TfidfFeatures, got "
                             f"{type(features).__name__}")
        if not hasattr(classifier, "fit") or not hasattr(classifier, "predict_proba"):
            raise ValueError(f"classifier must be a classifier (fit, predict_proba), got "
                             f"{type(classifier).__name__}")
        if self.random_state is not None and not (
                isinstance(self.random_state, numbers.Integral)
                and not isinstance(self.random_state, bool)):
            raise ValueError(f"random_state must be None or an int, got "
                             f"{self.random_state!r}")
        beta = _NB_INTERPOLATION.check("nb_interpolation", self.nb_interpolation)
        if beta != 1.0:
            hidden = classifier.get_params().get("hidden_layer_sizes") if isinstance(
                classifier, MLPClassifier) else None
            if features.weights != "nb" or hidden is None or len(tuple(hidden)) != 0:
                raise ValueError(
                    f"nb_interpolation={beta!r} needs TfidfFeatures(weights='nb') and an "
                    f"MLPClassifier without hidden layers (a linear classifier of the "
                    f"naive-Bayes features); got weights={features.weights!r} and "
                    f"{type(classifier).__name__}"
                    + ("" if hidden is None else f"(hidden_layer_sizes={tuple(hidden)})"))
        return clone(features), clone(classifier), beta

    def fit(self, X, y, validation_data=None, sample_weight=None):
        """Fit the features on ``X`` (and ``y``), then the classifier on their rows.

        Parameters
        ----------
        X : sequence of texts
        y : labels (or label lists)
        validation_data : (texts, labels) or (texts, labels, sample_weight), optional
        sample_weight : array-like of shape (n_texts,), optional
        """
        features, classifier, beta = self._parts()
        # the per-epoch hook of cymlp.autotune goes to the network that trains
        hook = getattr(self, "_epoch_callback", None)
        if hook is not None:
            classifier._epoch_callback = hook
        if self.random_state is not None:
            classifier.set_params(random_state=int(self.random_state))
        if features.dtype != getattr(classifier, "dtype", features.dtype):
            features.set_params(dtype=classifier.dtype)
        A, ratios = features._fit(X, y)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a pair (X_dev, y_dev) or a triple "
                                 "(X_dev, y_dev, sample_weight_dev)")
            val = (features.transform(validation_data[0]), *validation_data[1:])
        classifier.fit(A, y, validation_data=val, sample_weight=sample_weight)
        if beta != 1.0:
            _interpolate_nb(classifier, ratios, is_multilabel(y), beta)
        self.features_, self.classifier_ = features, classifier
        return self

    def __sklearn_is_fitted__(self):
        return getattr(self, "classifier_", None) is not None

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise NotFittedError("This TextPipeline instance is not fitted yet. Call 'fit' "
                                 "with appropriate arguments before using this estimator.")

    def transform(self, X):
        """The features of the texts ``X`` (CSR), as the classifier sees them."""
        self._check_fitted()
        return self.features_.transform(X)

    def predict(self, X):
        A = self.transform(X)
        return self.classifier_.predict(A)

    def predict_proba(self, X):
        A = self.transform(X)
        return self.classifier_.predict_proba(A)

    def predict_log_proba(self, X):
        A = self.transform(X)
        return self.classifier_.predict_log_proba(A)

    def score(self, X, y, sample_weight=None):
        """Accuracy of the classifier on the features of ``X``."""
        A = self.transform(X)
        return self.classifier_.score(A, y, sample_weight=sample_weight)

    def _fitted_attr(name):  # a helper that makes properties (not a method)
        def get(self):
            classifier = getattr(self, "classifier_", None)
            if classifier is None:
                raise AttributeError(f"{name} is set by fit; this TextPipeline is not "
                                     "fitted yet")
            return getattr(classifier, name)
        return property(get)

    classes_ = _fitted_attr("classes_")
    n_iter_ = _fitted_attr("n_iter_")
    best_epoch_ = _fitted_attr("best_epoch_")
    best_validation_score_ = _fitted_attr("best_validation_score_")
    validation_scores_ = _fitted_attr("validation_scores_")
    history_ = _fitted_attr("history_")
    del _fitted_attr

    # ------------------------------------------------------------- model files
    def save(self, path):
        """Write the fitted pipeline to ``path`` (:func:`cymlp.save`); returns ``path``."""
        self._check_fitted()
        _io.save(self, path)
        return path

    def _to_state(self):
        if not self.__sklearn_is_fitted__():
            return {"estimator": "TextPipeline", "params": {}, "fitted": None}, {}
        f_meta, f_arrays = self.features_._to_state()
        c_meta, c_arrays = self.classifier_._to_state()
        arrays = {f"features.{k}": v for k, v in f_arrays.items()}
        arrays.update({f"classifier.{k}": v for k, v in c_arrays.items()})
        meta = {"estimator": "TextPipeline",
                "params": {"random_state": self.random_state,
                           "nb_interpolation": float(self.nb_interpolation)},
                "fitted": {"features": f_meta, "classifier": c_meta}}
        return meta, arrays

    @classmethod
    def _state_arrays(cls, meta):
        """{array name: the most bytes it may hold}: the classifier's arrays, and the
        features' weights, one float64 per input column of the classifier
        (:func:`cymlp.load` reads only these)."""
        fitted = meta.get("fitted")
        if not isinstance(fitted, dict) or not isinstance(fitted.get("classifier"), dict):
            raise ModelFileError("a TextPipeline needs its fitted features and classifier")
        c_meta = fitted["classifier"]
        if c_meta.get("estimator") != "MLPClassifier":
            raise ModelFileError(f"a TextPipeline's classifier must be an MLPClassifier, "
                                 f"got {c_meta.get('estimator')!r}")
        limits = {f"classifier.{k}": v for k, v in
                  MLPClassifier._state_arrays(c_meta).items()}
        c_fitted = c_meta.get("fitted")
        if not isinstance(c_fitted, dict):
            raise ModelFileError("a TextPipeline's classifier must be fitted")
        try:
            n_columns = Network.from_dict(c_fitted.get("network")).n_features
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"bad network description: {exc}") from None
        limits["features.weights"] = 8 * n_columns
        return limits

    @classmethod
    def _from_state(cls, meta, arrays):
        fitted = meta.get("fitted")
        if not isinstance(fitted, dict) or not isinstance(fitted.get("classifier"), dict):
            raise ModelFileError("a TextPipeline needs its fitted features and classifier")
        features = TfidfFeatures._from_state(
            fitted.get("features"), {k[len("features."):]: v for k, v in arrays.items()
                                     if k.startswith("features.")})
        c_meta = fitted["classifier"]
        if c_meta.get("estimator") != "MLPClassifier":
            raise ModelFileError(f"a TextPipeline's classifier must be an MLPClassifier, "
                                 f"got {c_meta.get('estimator')!r}")
        classifier = MLPClassifier._from_state(
            c_meta, {k[len("classifier."):]: v for k, v in arrays.items()
                     if k.startswith("classifier.")})
        if classifier.n_features_in_ != features.n_features_:
            raise ModelFileError(f"the classifier reads {classifier.n_features_in_} "
                                 f"features, the features have {features.n_features_}")
        params = meta.get("params") or {}
        if not isinstance(params, dict):
            raise ModelFileError("a TextPipeline's params must be an object")
        try:
            beta = _NB_INTERPOLATION.check("nb_interpolation",
                                           params.get("nb_interpolation", 1.0))
        except ValueError as exc:
            raise ModelFileError(f"bad TextPipeline parameters: {exc}") from None
        pipe = cls(clone(features), clone(classifier),
                   random_state=params.get("random_state"), nb_interpolation=beta)
        pipe.features_, pipe.classifier_ = features, classifier
        return pipe
