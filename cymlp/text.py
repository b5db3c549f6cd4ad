"""Word-embedding text classifier: a learned table ``E`` under the MLP of the core.

Two encoders turn a sentence into the input ``f`` of the MLP (``docs/model.md``):

* ``'window'`` (the lecture note): the first ``window`` tokens, padded with PAD or
  truncated, ``f = [E[j1]; ...; E[jn]]`` (``window * embed_dim`` features);
* ``'bag'``: the mean (or sum, or idf-weighted mean) of the embeddings of every token
  and, with ``ngram_range``, every word n-gram of the sentence; with
  ``char_ngram_range``, a word's vector is the mean of its own row and the rows of its
  character n-grams.

:class:`TextEncoder` is the fitted half of that: the vocabulary, the idf weights and
the subword shares that turn texts into token ids and weights for the engine, and the
same pooling in NumPy for :meth:`TextClassifier.sentence_vectors`. Backpropagation
continues into ``E``; only the rows a batch touched are updated.
"""
import os
import sys
import unicodedata
from types import SimpleNamespace

import numpy as np
from scipy import sparse

from cymlp import io as _io
from cymlp._estimator import _BaseNetwork, _store_arguments
from cymlp._inputs import TokenInputs
from cymlp._network import Embedding
from cymlp._tuned import TunedMixin, check_budget, fit_autotuned
from cymlp._datafiles import DataFormatError
from cymlp._validation import Interval, check_params
from cymlp.io import ModelFileError
from cymlp.vocab import PAD, UNK, Vocabulary, _check_span, _normalize

__all__ = ["ENCODERS", "TOKEN_WEIGHTS", "TextClassifier", "TextEncoder", "nb_ratios",
           "nb_weights", "read_word_vectors"]

#: the encoders of a sentence: a fixed window of tokens, or a bag of tokens and n-grams
ENCODERS = ("bag", "window")

#: the settings that describe a fitted encoder (changing one needs a new fit)
_ENCODER_SETTINGS = ("encoder", "window", "ngram_range", "char_ngram_range", "min_count",
                     "max_vocab", "lowercase", "pooling", "token_weights", "n_buckets")


def _check_texts(X, name="X"):
    """A list of str or of token lists; clear errors otherwise."""
    if X is None:
        raise ValueError(f"TextClassifier requires {name}, got None")
    if hasattr(X, "columns") and hasattr(X, "iloc"):  # a DataFrame: its column of texts
        if X.shape[1] != 1:
            raise ValueError(
                f"{name} is a DataFrame of {X.shape[1]} columns {list(X.columns)[:5]}; "
                f"TextClassifier needs one text per row: pass the column of texts, e.g. "
                f"{name}['text']")
        X = X.iloc[:, 0]
    if isinstance(X, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of texts, got a single string; "
                         "wrap it in a list")
    if isinstance(X, np.ndarray) and X.dtype.kind in "fiub":
        raise ValueError(f"{name} must hold texts (str or lists of tokens), got a numeric "
                         f"array of shape {X.shape}; use MLPClassifier for numeric features")
    texts = list(X)
    if len(texts) == 0:
        raise ValueError(f"{name} is empty: TextClassifier needs at least one text")
    for i, t in enumerate(texts):
        if isinstance(t, bytes):
            raise ValueError(f"{name}[{i}] is bytes; decode it to str first "
                             "(cymlp.datasets.read_labeled_text decodes files)")
        if not isinstance(t, str):
            if isinstance(t, (list, tuple)) and all(isinstance(w, str) for w in t):
                continue
            raise ValueError(f"{name}[{i}] is {type(t).__name__}; expected a str or a "
                             "list of str tokens")
    return texts


def _check_char_ngram_range(name, value):
    return None if value is None else _check_span(name, value)


#: the token weights of the bag encoder (besides None)
TOKEN_WEIGHTS = ("idf", "nb")

#: additive smoothing of the class counts of the naive-Bayes weights
NB_SMOOTHING = 1.0


def _check_token_weights(name, value):
    if value is not None and (not isinstance(value, str) or value not in TOKEN_WEIGHTS):
        raise ValueError(f"{name} must be None, 'idf' or 'nb', got {value!r}")


def idf_weights(ids, indptr, n_vocab):
    """Smoothed idf of every id, ``log((1 + N) / (1 + df_j)) + 1`` (float64), with
    ``df_j`` the number of the ``N`` bags (CSR ``ids``, ``indptr``) that hold id ``j``."""
    return _idf_of(_bag_counts(ids, indptr, n_vocab))


def _bag_counts(ids, indptr, n_vocab):
    """How often each bag holds each id: CSR, float64, ``len(indptr) - 1`` by
    ``n_vocab``, one entry per (bag, id) held, its indices sorted."""
    counts = sparse.csr_matrix((np.ones(len(ids)), ids, indptr), copy=True,
                               shape=(len(indptr) - 1, n_vocab))
    counts.sum_duplicates()   # sorts in place: hence the copy of the caller's arrays
    return counts


def _idf_of(counts):
    """:func:`idf_weights` from the bags' :func:`_bag_counts`."""
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    return np.log((1.0 + counts.shape[0]) / (1.0 + df)) + 1.0


def nb_ratios(ids, indptr, targets, n_vocab, alpha=NB_SMOOTHING):
    """Naive-Bayes log-count ratios ``r_c[j]`` of every id and class (docs/model.md).

    For each class (or label) ``c``, with ``p_c[j] = alpha + #{texts of class c holding
    id j}`` and ``q_c[j]`` the same over the texts of the other classes,
    ``r_c = log(p_c / |p_c|_1) - log(q_c / |q_c|_1)`` (Wang and Manning's ratio, class
    ``c`` against the rest). A text counts once per id it holds, however often.

    Parameters
    ----------
    ids, indptr : arrays of int
        The bags in CSR form (``TokenInputs.ids``, ``TokenInputs.indptr``).
    targets : ndarray of shape (n_texts,) of class indices, or (n_texts, n_labels) of 0/1
    n_vocab : int
    alpha : float, default=1

    Returns
    -------
    ndarray of shape (n_vocab, n_classes), float64
    """
    return _nb_ratios_of(_bag_counts(ids, indptr, n_vocab), targets, alpha)


def _nb_ratios_of(counts, targets, alpha=NB_SMOOTHING):
    """:func:`nb_ratios` from the bags' :func:`_bag_counts`."""
    n_texts = counts.shape[0]
    # which text holds which id, once however often (the counts' own index arrays)
    present = sparse.csr_matrix((np.ones(counts.nnz), counts.indices, counts.indptr),
                                shape=counts.shape)
    targets = np.asarray(targets)
    if targets.ndim == 1:
        Y = np.zeros((n_texts, int(targets.max()) + 1))
        Y[np.arange(n_texts), targets] = 1.0
    else:
        Y = (targets != 0).astype(np.float64)
    in_class = np.asarray(present.T @ Y)                     # (n_vocab, n_classes)
    holding = np.asarray(present.sum(axis=0)).reshape(-1, 1)  # texts holding each id
    p = in_class + alpha
    q = holding - in_class + alpha
    return np.log(p / p.sum(axis=0)) - np.log(q / q.sum(axis=0))


def nb_weights(ids, indptr, targets, n_vocab, alpha=NB_SMOOTHING):
    """Naive-Bayes log-count-ratio weight of every id: ``max_c |r_c|`` of
    :func:`nb_ratios`. With two classes ``r_1 = -r_0``, so the weight is NBSVM's
    ``|r|``; with more, an id weighs as much as it tells about the class it tells most
    about. Same parameters as :func:`nb_ratios`; returns an ndarray of shape
    (n_vocab,), float64, >= 0."""
    return _nb_weights_of(nb_ratios(ids, indptr, targets, n_vocab, alpha))


def _nb_weights_of(ratios):
    """:func:`nb_weights` from the ratios of :func:`nb_ratios` (``max_c |r_c|`` of each
    row), for a caller that has them already."""
    return np.abs(ratios).max(axis=1)


def _check_max_vocab(name, value):
    if value is not None:
        return Interval(int, 3, None).check(name, value)


def _check_n_buckets(name, value):
    if value is not None:
        return Interval(int, 1, None).check(name, value)


def _check_pretrained(name, value):
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{name} must be None or the path of a word-vector file, got "
                         f"{value!r}")
    return os.fspath(value)


def read_word_vectors(path, vocabulary, embed_dim):
    """The rows of ``E`` that a text file of word vectors gives the words of ``vocabulary``.

    Formats: fastText ``.vec`` and word2vec text (a first line ``N DIM``, then one
    ``word v_1 ... v_DIM`` a line) and GloVe text (no first line). The file is read one
    line at a time; the numbers of a line are parsed only when its word is a word of the
    vocabulary (unigrams: n-grams and subwords keep their own rows). Words are
    compared in NFC and, when the vocabulary lower-cases, lower-cased; the first
    vector of a word wins (files usually list the frequent spelling first).

    Parameters
    ----------
    path : str or os.PathLike
    vocabulary : Vocabulary
        Fitted.
    embed_dim : int
        The width of ``E``: the file's vectors must have it.

    Returns
    -------
    ids : ndarray of int
        Rows of ``E`` found in the file.
    vectors : ndarray of shape (len(ids), embed_dim), float64

    Raises
    ------
    FileNotFoundError
    DataFormatError
        A line that is not ``word`` followed by ``embed_dim`` numbers (the file and line
        named), vectors of another dimension, or no word of the vocabulary in the file.
    """
    lookup = {t: i for t, i in vocabulary.token_to_id.items()
              if 2 <= i < vocabulary.n_unigrams}
    lower = vocabulary.lowercase
    found = {}
    dim = None
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise DataFormatError(f"{path}, line {lineno}: not valid UTF-8") from None
            if not line.strip():
                continue
            parts = line.rstrip().split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # the header of fastText / word2vec text files
                if dim != embed_dim:
                    raise DataFormatError(f"{path}: the vectors have {dim} dimensions (line "
                                          f"1), but embed_dim is {embed_dim}")
                continue
            if dim is None:
                dim = len(parts) - 1
                if dim != embed_dim:
                    raise DataFormatError(f"{path}: the vectors have {dim} dimensions (line "
                                          f"{lineno}), but embed_dim is {embed_dim}")
            if len(parts) < dim + 1 or not parts[0]:
                raise DataFormatError(f"{path}, line {lineno}: expected a word and {dim} "
                                      f"numbers, got {len(parts)} fields")
            word = " ".join(parts[:len(parts) - dim])
            if not word.isascii():
                word = unicodedata.normalize("NFC", word)
            if lower:
                word = word.lower()
            i = lookup.get(word)
            if i is None or i in found:
                continue
            try:
                vector = np.array(parts[len(parts) - dim:], dtype=np.float64)
            except ValueError:
                raise DataFormatError(f"{path}, line {lineno}: a value of {word!r} is not "
                                      "a number") from None
            if not np.isfinite(vector).all():
                raise DataFormatError(f"{path}, line {lineno}: the vector of {word!r} holds "
                                      "NaN or infinity")
            found[i] = vector
    if not found:
        raise DataFormatError(f"{path}: none of the {len(lookup)} words of the vocabulary "
                              "has a vector in this file")
    ids = np.fromiter(found, dtype=np.intp, count=len(found))
    return ids, np.stack([found[i] for i in ids.tolist()])


def _pool(E, indptr, ids, weights):
    """``sum_q weights_q E[ids_q]`` for every CSR row, in the dtype of ``E`` (SciPy)."""
    rows = sparse.csr_matrix((np.asarray(weights, dtype=E.dtype), ids, indptr),
                             shape=(len(indptr) - 1, E.shape[0]))
    return np.asarray(rows @ E)


class TextEncoder:
    """Texts in, :class:`~cymlp._inputs.TokenInputs` out (the fitted text encoder).

    Parameters
    ----------
    settings : dict
        The validated encoder settings (:data:`_ENCODER_SETTINGS`).
    vocabulary : Vocabulary, optional
        Fitted; None for an encoder that is still to be fitted.
    idf : ndarray of shape (n_vocab,), optional
        ``log((1 + N) / (1 + df)) + 1`` per id, with ``token_weights='idf'``.
    nb : ndarray of shape (n_vocab,), optional
        The naive-Bayes weight of every id (:func:`nb_weights`), with
        ``token_weights='nb'``; set by :meth:`fit_labels`, once the labels are known.
    """

    def __init__(self, settings, vocabulary=None, idf=None, pretrained_coverage=None,
                 nb=None):
        self.settings = {k: settings[k] for k in _ENCODER_SETTINGS}
        self.vocabulary = vocabulary
        self.idf = idf
        self.nb = nb
        self.pretrained_coverage = pretrained_coverage

    @property
    def token_weight(self):
        """The weight of every id in the bag (idf or naive Bayes), or None."""
        return self.idf if self.idf is not None else self.nb

    @property
    def kind(self):
        return self.settings["encoder"]

    @property
    def window(self):
        return self.settings["window"] if self.kind == "window" else 0

    @property
    def subwords(self):
        """Whether the bag holds character n-grams (``char_ngram_range``)."""
        return self.vocabulary.char_ngram_range is not None

    # ------------------------------------------------------------- fitting
    def fit(self, X, dtype, n_jobs=1):
        """(fitted encoder, inputs of X): the vocabulary (and idf) of the texts ``X``."""
        s = self.settings
        texts = _check_texts(X)
        chars = s["char_ngram_range"]
        if chars is not None and self.kind != "bag":
            raise ValueError("char_ngram_range applies to the bag encoder only; "
                             "set char_ngram_range=None for encoder='window'")
        span = tuple(s["ngram_range"]) if self.kind == "bag" else (1, 1)
        buckets = s["n_buckets"] if self.kind == "bag" else None
        vocab = Vocabulary(min_count=s["min_count"], max_size=s["max_vocab"],
                           ngram_range=span, lowercase=s["lowercase"],
                           char_ngram_range=chars, n_buckets=buckets).fit(texts, n_jobs=n_jobs)
        fitted = TextEncoder(s, vocab)
        inputs = fitted.transform(texts, dtype, n_jobs)
        if s["token_weights"] == "idf" and self.kind == "bag":
            fitted.idf = fitted._idf_of(inputs, dtype)
            inputs = fitted.transform(texts, dtype, n_jobs)
        return fitted, inputs

    def fit_labels(self, targets, inputs, val, dtype):
        """Learn what depends on the labels (``token_weights='nb'``) from the training
        ``inputs`` and their encoded ``targets``; returns ``(inputs, val)`` with the new
        weights applied (``val``: the validation inputs, or None), else unchanged.
        ``dtype`` is the model's.

        Called once the labels are encoded and a validation split is taken out, so
        that the held-out texts' labels do not enter the weights.
        """
        if self.settings["token_weights"] != "nb" or self.kind != "bag":
            return inputs, val
        n_vocab = len(self.vocabulary)
        self.nb = nb_weights(inputs.ids, inputs.indptr, targets, n_vocab).astype(dtype)
        return self._reweigh(inputs), None if val is None else self._reweigh(val)

    def _reweigh(self, inputs):
        """Bags of ``inputs`` (encoded without naive-Bayes weights) with them."""
        nb = self.nb[inputs.ids]
        weights = nb if inputs.weights is None else inputs.weights * nb
        return TokenInputs(inputs.ids, inputs.indptr, weights, dtype=self.nb.dtype,
                           n_vocab=len(self.vocabulary))

    def _idf_of(self, inputs, dtype):
        """:func:`idf_weights` of the bags, in ``dtype``."""
        return idf_weights(inputs.ids, inputs.indptr, len(self.vocabulary)).astype(dtype)

    def layout_difference(self, settings):
        """None if ``settings`` describe this fitted encoder, else what changed."""
        for key in _ENCODER_SETTINGS:
            if key == "window" and self.kind != "window":
                continue
            if settings[key] != self.settings[key]:
                return f"{key} changed from {self.settings[key]!r} to {settings[key]!r}"
        return None

    # ------------------------------------------------------------- encoding
    def transform(self, X, dtype, n_jobs=1):
        """The engine's inputs for texts ``X``: window ids, or bags with weights
        (encoded by ``n_jobs`` threads, with the result of one)."""
        texts = _check_texts(X)
        vocab = self.vocabulary
        if self.kind == "window":
            return TokenInputs(vocab.encode_window(texts, self.window, n_jobs=n_jobs),
                               n_vocab=len(vocab))
        if self.subwords:
            indptr, ids, weights = vocab.encode_bag(texts, return_shares=True, n_jobs=n_jobs)
            if self.settings["pooling"] == "mean":
                # the engine only sums here (pool_mean is off): divide each share by
                # the number of units (words, word n-grams) of its text, a whole number
                lengths = np.diff(indptr)
                running = np.concatenate(([0.0], np.cumsum(weights)))
                units = np.rint(running[indptr[1:]] - running[indptr[:-1]])
                weights = weights / np.repeat(units, lengths)
        else:
            indptr, ids = vocab.encode_bag(texts, n_jobs=n_jobs)
            weights = None
        token_weight = self.token_weight
        if token_weight is not None:
            weights = token_weight[ids] if weights is None else token_weight[ids] * weights
        return TokenInputs(ids, indptr, weights, dtype=dtype, n_vocab=len(vocab))

    def n_features(self, settings):
        e = settings["embed_dim"]
        return e * self.window if self.kind == "window" else e

    def embedding(self, settings):
        """The embedding table the network needs for this vocabulary."""
        return Embedding(self.kind, len(self.vocabulary), settings["embed_dim"], self.window,
                         pool_mean=self.settings["pooling"] == "mean" and not self.subwords)

    # ------------------------------------------------------------- pooling in NumPy
    def pool(self, E, inputs):
        """The encoder's output ``f`` for ``inputs``, computed apart from the engine."""
        if inputs.kind == "window":
            return E[inputs.ids].reshape(len(inputs), -1)
        weights = (np.ones(len(inputs.ids)) if inputs.weights is None
                   else inputs.weights.astype(np.float64))
        if self.settings["pooling"] == "mean" and not self.subwords:
            lengths = inputs.lengths
            weights = weights / np.repeat(lengths, lengths)
        return _pool(E, inputs.indptr, inputs.ids, weights)

    def word_vectors(self, E):
        """Rows ``0..char_offset-1`` (float64): every word's vector as the bag uses it
        (with subwords, the mean of its row and its character n-grams' rows, from the
        vocabulary's own encoding of the one-word text), word n-grams' rows as they
        are."""
        vocab = self.vocabulary
        vectors = E[:vocab.char_offset].astype(np.float64)
        if self.subwords:
            words = [[w] for w in vocab.id_to_token[2:vocab.n_unigrams]]
            indptr, ids, shares = vocab.encode_bag(words, return_shares=True)
            vectors[2:vocab.n_unigrams] = _pool(E, indptr, ids, shares)
        return vectors

    def lookup_vector(self, word, E, vectors=None):
        """(id or None, vector) of ``word``, from ``vectors`` (:meth:`word_vectors`)
        if given; KeyError if it has no vector."""
        if not isinstance(word, str):
            raise TypeError(f"word must be a str, got {type(word).__name__}")
        vocab = self.vocabulary
        key = _normalize(word, vocab.lowercase, "word")
        i = vocab.token_to_id.get(key)
        if i is not None and vectors is not None:
            return i, vectors[i]
        if i is not None and i >= vocab.n_unigrams:  # a word n-gram: its row
            return i, E[i].astype(np.float64)
        # the bag of the one-word text: the word and its character n-grams, or UNK
        indptr, ids, shares = vocab.encode_bag([[key]], return_shares=True)
        if i is None and ids.tolist() == [UNK]:
            raise KeyError(f"{word!r} is not in the vocabulary ({vocab.char_offset} entries)"
                           + (" and has no known character n-gram" if self.subwords
                              else ""))
        return i, _pool(E, indptr, ids, shares)[0].astype(np.float64)

    # ------------------------------------------------------------- model files
    def to_state(self):
        meta = {"settings": {k: list(v) if isinstance(v, tuple) else v
                             for k, v in self.settings.items()},
                "vocabulary": self.vocabulary.to_dict(),
                "pretrained_coverage": self.pretrained_coverage}
        arrays = {}
        if self.idf is not None:
            arrays["idf"] = self.idf
        if self.nb is not None:
            arrays["nb"] = self.nb
        return meta, arrays

    @staticmethod
    def array_limits(meta, network):
        """The arrays of the encoder's state and their most bytes: the idf or
        naive-Bayes weights, one per row of ``E``."""
        if network.embedding is None:
            return {}
        size = network.embedding.n_vocab * network.itemsize
        return {"idf": size, "nb": size}

    @classmethod
    def from_state(cls, meta, arrays, network):
        if not isinstance(meta, dict) or not isinstance(meta.get("settings"), dict):
            raise ModelFileError("encoder must be an object with settings")
        settings = {"n_buckets": None, **meta["settings"]}  # (older files lack n_buckets)
        if set(settings) != set(_ENCODER_SETTINGS):
            raise ModelFileError(f"encoder settings must be {sorted(_ENCODER_SETTINGS)}")
        settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
        if settings["encoder"] not in ENCODERS:
            raise ModelFileError(f"bad encoder {settings['encoder']!r}")
        rules = TextClassifier._parameter_constraints
        try:  # the parameters' own checks
            settings = check_params(SimpleNamespace(**settings),
                                    {k: rules[k] for k in _ENCODER_SETTINGS})
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"bad encoder settings: {exc}") from None
        try:
            vocab = Vocabulary.from_dict(meta.get("vocabulary"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"bad vocabulary: {exc}") from None
        if vocab.lowercase != settings["lowercase"] or (
                settings["encoder"] == "bag"
                and tuple(vocab.ngram_range) != tuple(settings["ngram_range"])):
            raise ModelFileError("the vocabulary's ngram_range or lowercase differs from the "
                                 "encoder's settings")
        idf = arrays.get("idf")
        nb = arrays.get("nb")
        coverage = meta.get("pretrained_coverage")
        if coverage is not None and (isinstance(coverage, bool) or not isinstance(
                coverage, (int, float)) or not 0 <= coverage <= 1):
            raise ModelFileError(f"pretrained_coverage must be null or in [0, 1], got "
                                 f"{coverage!r}")
        encoder = cls(settings, vocab, idf, coverage, nb)
        if settings["encoder"] not in ENCODERS:
            raise ModelFileError(f"bad encoder {settings['encoder']!r}")
        want = (None if settings["char_ngram_range"] is None
                else tuple(settings["char_ngram_range"]))
        if want != vocab.char_ngram_range:
            raise ModelFileError("char_ngram_range of the parameters and of the vocabulary "
                                 "differ (in the encoder's fitted settings)")
        if settings["n_buckets"] != vocab.n_buckets and encoder.kind == "bag":
            raise ModelFileError("n_buckets of the encoder's settings and of the vocabulary "
                                 "differ")
        if network.embedding is None:
            raise ModelFileError("a text model's network needs an embedding table")
        expected = Embedding(encoder.kind, len(vocab), network.embedding.embed_dim,
                             encoder.window,
                             pool_mean=settings["pooling"] == "mean" and not encoder.subwords)
        if network.embedding != expected:
            raise ModelFileError(f"the network's embedding {network.embedding} does not "
                                 f"match the encoder's vocabulary ({len(vocab)} entries)")
        for kind, weight in (("idf", idf), ("nb", nb)):
            if (settings["token_weights"] == kind and encoder.kind == "bag") != (
                    weight is not None):
                raise ModelFileError(f"{kind} weights must be stored exactly when "
                                     f"token_weights='{kind}'")
            if weight is not None:
                if weight.shape != (len(vocab),) or weight.dtype != np.dtype(network.dtype):
                    raise ModelFileError(f"{kind} has shape {weight.shape} and dtype "
                                         f"{weight.dtype}, expected {network.dtype} of "
                                         f"shape ({len(vocab)},)")
                if not np.isfinite(weight).all():
                    raise ModelFileError(f"{kind} contains NaN or infinity")
        return encoder


@_io.register
class TextClassifier(TunedMixin, _BaseNetwork):
    """Sentence classifier: word (and n-gram) embeddings, an encoder, an MLP.

    The defaults are a bag of lower-cased uni- and bigram embeddings (mean, ``e = 100``), one
    hidden layer of 256 ReLU units with biases, Adagrad (learning rate 0.05),
    minibatches of 32 and early stopping on held-out data that keeps the best epoch:
    chosen on the development sets of three sentence tasks (``bench/accuracy.py``) as
    the best and fastest of the configurations tried, not tuned per dataset. The note's model is
    ``TextClassifier(encoder='window', window=20, embed_dim=50, ngram_range=(1, 1),
    lowercase=False, hidden_layer_sizes=(256,), solver='sgd', momentum=0,
    learning_rate_init=0.3, embed_init=0.01, max_iter=100, n_iter_no_change=5)``
    (hyper-parameters chosen on the development sets, as for the default).

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
    warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction,
    beta_1, beta_2, epsilon, n_iter_no_change, bias, label_smoothing, dtype,
    leaky_slope, swish_beta, init, diagnostics, class_weight, threshold, n_jobs :
        As in :class:`cymlp.MLPClassifier`; the optimiser also updates ``E``, lazily
        (only touched rows, with per-row state). ``alpha`` does not penalise ``E``.
    encoder : {'bag', 'window'}, default='bag'
    window : int, default=20
        Tokens per sentence for the window encoder.
    embed_dim : int, default=100
        ``e``, the width of ``E``.
    ngram_range : (int, int), default=(1, 2)
        Word n-grams added to the vocabulary (bag encoder; the window uses unigrams).
    char_ngram_range : (int, int) or None, default=None
        Subword units for the bag encoder: with ``(3, 5)``, say, the character 3- to
        5-grams of every word (marked ``"<word>"``) get rows in ``E`` too, and a word's
        vector is the mean of its own row and those of its known character n-grams, so
        words that share a stem or an ending share parameters, and a word unseen in
        training is represented by the n-grams it shares with seen words. Pooling then
        runs over words (and word n-grams) as before: each word counts once however
        many n-grams it has. See :class:`cymlp.Vocabulary`. Not for the window encoder.
    min_count : int, default=1
        Tokens and n-grams seen fewer times in the training texts map to UNK (n-grams
        are dropped).
    max_vocab : int or None
        Cap on the vocabulary size (most frequent first, PAD and UNK included).
    lowercase : bool, default=True
        Lower-case the texts before they are split into tokens.
    pooling : {'mean', 'sum'}, default='mean'
        How the bag encoder combines the embeddings of a sentence.
    token_weights : {None, 'idf', 'nb'}, default=None
        Weight each token of the bag by its inverse document frequency in the
        training texts, ``log((1 + N) / (1 + df)) + 1`` ('idf'), or by how much it
        tells about the class: the naive-Bayes log-count ratio of NBSVM (Wang and
        Manning, 2012), ``max_c |r_c|`` over the classes, each against the rest
        ('nb'; :func:`nb_weights`, ``docs/model.md``). The naive-Bayes weights come
        from the training rows only (not from a held-out ``validation_fraction``).
    embed_init : float, default=0.1
        Standard deviation of the normal initialisation of ``E`` (PAD stays 0).
    token_dropout : float in [0, 1), default=0
        Word dropout: in every training epoch each token (and n-gram) occurrence is
        left out of its bag with this probability (window: replaced by PAD), a
        regulariser for bag models; prediction always uses every token.
    pretrained_vectors : str or path, optional
        A text file of word vectors (fastText ``.vec``, word2vec text or GloVe; see
        :func:`read_word_vectors`) of dimension ``embed_dim``: the words of the fitted
        vocabulary found there start from their vectors, the others (and n-grams,
        subwords) from the random start. The share found is ``pretrained_coverage_``
        (and printed with ``verbose``).
    embed_trainable : bool, default=True
        With False, ``E`` is frozen: only the MLP above it learns.
    n_buckets : int or None, default=None
        Bag encoder: word n-grams (n >= 2) and character n-grams share ``n_buckets``
        rows of ``E`` by a stable hash of their UTF-8 bytes (32-bit FNV-1a, the same on
        every machine and run), as fastText's ``-bucket``: the table stays bounded
        however large the corpus (see :class:`cymlp.Vocabulary`).
    autotune_budget : float or None, default=None
        Seconds: ``fit`` then searches the bag and window encoders' hyper-parameters
        for that long (:func:`cymlp.autotune` with ``ensembles=False``), on
        ``validation_data`` if given, else by a 3-fold cross-validation of X, and
        keeps the best configuration's network, refitted on all the data
        (``docs/autotune.md``).
        The parameters set here to other than their defaults are held fixed; the
        estimator's parameters are not changed (``best_params_`` holds the choice, and
        ``autotune_trials_`` every trial). ``random_state`` seeds the search.

    Attributes
    ----------
    vocabulary_ : Vocabulary
    pretrained_coverage_ : float or None
        Share of the vocabulary's words that had a vector in ``pretrained_vectors``.
    idf_ : ndarray of shape (n_vocab,) or None
        The inverse document frequency of every id (``token_weights='idf'``), as the
        encoder uses it.
    nb_ : ndarray of shape (n_vocab,) or None
        The naive-Bayes weight of every id (``token_weights='nb'``), as the encoder
        uses it.
    embeddings_ : ndarray of shape (n_vocab, embed_dim)
        ``E``, live: in-place changes take effect, and a table assigned in its place
        (pre-trained vectors, say) is copied in before the next predict or
        partial_fit; the PAD row is kept at zero.
    classes_, coefs_, intercepts_, n_iter_, loss_curve_, validation_scores_,
    history_, network_ : as in MLPClassifier.
    """

    _parameter_constraints = {
        **_BaseNetwork._parameter_constraints,
        "encoder": ENCODERS,
        "window": Interval(int, 1, None),
        "embed_dim": Interval(int, 1, None),
        "ngram_range": _check_span,
        "char_ngram_range": _check_char_ngram_range,
        "min_count": Interval(int, 1, None),
        "max_vocab": _check_max_vocab,
        "lowercase": bool,
        "pooling": ("mean", "sum"),
        "token_weights": _check_token_weights,
        "embed_init": Interval(float, 0, None),
        "token_dropout": Interval(float, 0, 1, closed="left"),
        "pretrained_vectors": _check_pretrained,
        "embed_trainable": bool,
        "n_buckets": _check_n_buckets,
        "autotune_budget": check_budget,
    }

    def __init__(self, hidden_layer_sizes=(256,), activation="relu", *, encoder="bag",
                 window=20, embed_dim=100, ngram_range=(1, 2), char_ngram_range=None,
                 min_count=1, max_vocab=None,
                 lowercase=True, pooling="mean", token_weights=None, embed_init=0.1,
                 token_dropout=0.0,
                 solver="adagrad", alpha=0.0, batch_size=32, learning_rate="constant",
                 learning_rate_init=0.05, power_t=0.5, max_iter=30, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=True,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=3, bias="both", label_smoothing=0.0, dtype="float32",
                 leaky_slope=0.01, swish_beta=1.0, init="auto", diagnostics=False,
                 class_weight=None, threshold=0.5, n_jobs=None, pretrained_vectors=None,
                 embed_trainable=True, n_buckets=None, autotune_budget=None):
        _store_arguments(self, locals())

    _encoder_class = TextEncoder

    # ------------------------------------------------------------- hooks
    def _make_encoder(self, settings):
        return TextEncoder(settings)

    def _init_embedding(self, model, settings, rng):
        E = model.engine.E
        rng.standard_normal(out=E, dtype=E.dtype)  # drawn in place: no float64 temporary
        E *= settings["embed_init"]
        E[PAD] = 0
        path = settings["pretrained_vectors"]
        if path is not None:
            vocab = model.encoder.vocabulary
            ids, vectors = read_word_vectors(path, vocab, settings["embed_dim"])
            E[ids] = vectors
            n_words = max(vocab.n_unigrams - 2, 1)
            model.encoder.pretrained_coverage = len(ids) / n_words
            if settings["verbose"]:
                print(f"pretrained vectors: {len(ids):,} of {n_words:,} words "
                      f"({100 * len(ids) / n_words:.1f}%) from {path}", file=sys.stderr)

    def _epoch_inputs(self, inputs, settings, rng):
        p = settings["token_dropout"]
        return inputs if p <= 0 else inputs.dropout(p, rng, pad=PAD)

    # ------------------------------------------------------------- fitted attributes
    @property
    def vocabulary_(self):
        return self._fitted_attr("vocabulary_").encoder.vocabulary

    @property
    def idf_(self):
        return self._fitted_attr("idf_").encoder.idf

    @property
    def nb_(self):
        return self._fitted_attr("nb_").encoder.nb

    @property
    def pretrained_coverage_(self):
        return self._fitted_attr("pretrained_coverage_").encoder.pretrained_coverage

    @property
    def embeddings_(self):
        return self._fitted_attr("embeddings_").embeddings

    @embeddings_.setter
    def embeddings_(self, value):
        self._fitted_attr("embeddings_").embeddings = value

    @classmethod
    def _upgrade_v1(cls, meta, arrays):
        """State of a model file of model version 1 (before the network description)."""
        from cymlp._compat_v1 import upgrade
        return upgrade(cls, meta, arrays)

    # ------------------------------------------------------------- API
    def fit(self, X, y, validation_data=None, sample_weight=None):
        """Build the vocabulary from ``X`` and train.

        Parameters
        ----------
        X : sequence of str (tokens separated by whitespace) or of token lists
        y : array-like of labels, or a list of label lists (several labels per text)
        validation_data : (texts, labels) or (texts, labels, sample_weight), optional
            A development set: scored every epoch; the best epoch's parameters are
            kept (instead of holding out ``validation_fraction`` of X).
        sample_weight : array-like of shape (n_texts,), optional
            Weight of every text in the loss (see :meth:`MLPClassifier.fit`).
        """
        if self.autotune_budget is not None:
            return fit_autotuned(self, X, y, validation_data, sample_weight)
        return self._fit(X, y, incremental=False, validation_data=validation_data,
                         sample_weight=sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y); the first call builds the vocabulary from X."""
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def sentence_vectors(self, X):
        """The encoder's output ``f`` for each text: the input of the MLP.

        Window: the concatenated rows of the first ``window`` tokens; bag: the pooled
        (weighted) rows, as in ``docs/model.md``. Useful as sentence features, or to
        look at what the model sees; computed here with NumPy and SciPy, apart from the
        compiled engine.

        Parameters
        ----------
        X : sequence of str or of token lists

        Returns
        -------
        ndarray of shape (len(X), n_features), in the model's dtype
        """
        model, inputs = self._inputs_for_prediction(X)
        return model.encoder.pool(model.engine.E, inputs)

    def word_vector(self, word):
        """The vector the bag encoder uses for ``word`` (a float64 copy).

        Its row of ``E``; with ``char_ngram_range``, the mean of its row and its known
        character n-grams' rows, and for a word not in the vocabulary the mean of its
        known n-grams' rows. ``word`` is lower-cased first if the model lower-cases; a
        word n-gram in the vocabulary (``"not good"``) gives its row. KeyError if
        ``word`` has no vector.
        """
        model = self._check_fitted()
        model.sync()
        return model.encoder.lookup_vector(word, model.engine.E)[1]

    def most_similar(self, word, k=10):
        """The ``k`` tokens whose embeddings are closest to ``word``'s (cosine).

        Returns a list of ``(token, similarity)``, most similar first; PAD, UNK and the
        word itself are left out; ``word`` is lower-cased first if the model lower-cases.
        Vectors are those of :meth:`word_vector`: with ``char_ngram_range``, the
        candidates are the words and word n-grams, and ``word`` may be unseen if some of
        its character n-grams were seen. KeyError if ``word`` has no vector.
        """
        model = self._check_fitted()
        Interval(int, 1, None).check("k", k)
        model.sync()
        vectors = model.encoder.word_vectors(model.engine.E)
        i, query = model.encoder.lookup_vector(word, model.engine.E, vectors)
        n = self.vocabulary_.char_offset
        norms = np.linalg.norm(vectors[:n], axis=1)
        norms[norms == 0] = 1.0
        qnorm = np.linalg.norm(query) or 1.0
        sims = vectors[:n] @ query / (norms * qnorm)
        sims[[0, 1] if i is None else [0, 1, i]] = -np.inf
        k = min(k, n - (2 if i is None else 3))
        top = np.argpartition(-sims, k - 1)[:k] if k > 0 else np.zeros(0, dtype=int)
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(self.vocabulary_.id_to_token[j], float(sims[j])) for j in top]
