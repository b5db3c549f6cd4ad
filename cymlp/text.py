"""Word-embedding text classifier: a learned table ``E`` under the MLP of the core.

Two encoders turn a sentence into the input ``f`` of the MLP (``docs/model.md``):

* ``'window'`` (the lecture note): the first ``window`` tokens, padded with PAD or
  truncated, ``f = [E[j1]; ...; E[jn]]`` (``window * embed_dim`` features);
* ``'bag'``: the mean (or sum, or idf-weighted mean) of the embeddings of every token
  and, with ``ngram_range``, every word n-gram of the sentence; with
  ``char_ngram_range``, a word's vector is the mean of its own row and the rows of its
  character n-grams.

Backpropagation continues into ``E``; only the rows a batch touched are updated.
"""
import numbers

import numpy as np

from cymlp._validation import Interval, check_targets
from cymlp.mlp import _BaseNetwork
from cymlp.vocab import PAD, UNK, Vocabulary

__all__ = ["TextClassifier"]


def _check_texts(X, name="X"):
    """A list of str or of token lists; clear errors otherwise."""
    if X is None:
        raise ValueError(f"TextClassifier requires {name}, got None")
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


def _check_ngram_range(name, value):
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (min_n, max_n), got {value!r}") from None
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must hold positive integers, got {value!r}")
    if lo > hi:
        raise ValueError(f"{name} must have min_n <= max_n, got {value!r}")


def _check_char_ngram_range(name, value):
    if value is not None:
        _check_ngram_range(name, value)


def _check_token_weights(name, value):
    if value is not None and value != "idf":
        raise ValueError(f"{name} must be None or 'idf', got {value!r}")


def _check_max_vocab(name, value):
    if value is not None:
        Interval(int, 3, None).check(name, value)


def _pool(E, indptr, ids, weights):
    """``sum_q weights_q E[ids_q]`` for every CSR row, in the dtype of ``E`` (SciPy)."""
    from scipy import sparse

    rows = sparse.csr_matrix((np.asarray(weights, dtype=E.dtype), ids, indptr),
                             shape=(len(indptr) - 1, E.shape[0]))
    return np.asarray(rows @ E)


class TextClassifier(_BaseNetwork):
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
    leaky_slope, swish_beta, init, diagnostics :
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
    token_weights : {None, 'idf'}, default=None
        Weight each token of the bag by its inverse document frequency in the
        training texts, ``log((1 + N) / (1 + df)) + 1``.
    embed_init : float, default=0.1
        Standard deviation of the normal initialisation of ``E`` (PAD stays 0).
    token_dropout : float in [0, 1), default=0
        Word dropout: in every training epoch each token (and n-gram) occurrence is
        left out of its bag with this probability (window: replaced by PAD), a
        regulariser for bag models; prediction always uses every token.

    Attributes
    ----------
    vocabulary_ : Vocabulary
    embeddings_ : ndarray of shape (n_vocab, embed_dim)
        ``E``, live: in-place changes take effect, and a table assigned in its place
        (pre-trained vectors, say) is copied in before the next predict or
        partial_fit; the PAD row is kept at zero.
    classes_, coefs_, intercepts_, n_iter_, loss_curve_, validation_scores_,
    history_ : as in MLPClassifier.
    """

    _parameter_constraints = {
        **_BaseNetwork._parameter_constraints,
        "encoder": ("bag", "window"),
        "window": Interval(int, 1, None),
        "embed_dim": Interval(int, 1, None),
        "ngram_range": _check_ngram_range,
        "char_ngram_range": _check_char_ngram_range,
        "min_count": Interval(int, 1, None),
        "max_vocab": _check_max_vocab,
        "lowercase": bool,
        "pooling": ("mean", "sum"),
        "token_weights": _check_token_weights,
        "embed_init": Interval(float, 0, None),
        "token_dropout": Interval(float, 0, 1, closed="left"),
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
                 leaky_slope=0.01, swish_beta=1.0, init="auto", diagnostics=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.encoder = encoder
        self.window = window
        self.embed_dim = embed_dim
        self.ngram_range = ngram_range
        self.char_ngram_range = char_ngram_range
        self.min_count = min_count
        self.max_vocab = max_vocab
        self.lowercase = lowercase
        self.pooling = pooling
        self.token_weights = token_weights
        self.embed_init = embed_init
        self.token_dropout = token_dropout
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

    # ------------------------------------------------------------- encoding
    def _make_feed(self, X, *, fitting):
        texts = _check_texts(X)
        if fitting:
            span = tuple(self.ngram_range) if self.encoder == "bag" else (1, 1)
            chars = self.char_ngram_range
            if chars is not None:
                # (the Vocabulary checks that the word n-grams start at unigrams)
                if self.encoder != "bag":
                    raise ValueError("char_ngram_range applies to the bag encoder only; "
                                     "set char_ngram_range=None for encoder='window'")
                chars = tuple(chars)
            self.vocabulary_ = Vocabulary(min_count=self.min_count, max_size=self.max_vocab,
                                          ngram_range=span, lowercase=self.lowercase,
                                          char_ngram_range=chars)
            self.vocabulary_.fit(texts)
            self._encoder_ = self.encoder
            self._window_ = int(self.window)
            self._idf = None
        feed = self._encode(texts)
        if fitting and self.token_weights == "idf" and self._encoder_ == "bag":
            n_docs = len(texts)
            df = np.zeros(len(self.vocabulary_), dtype=np.float64)
            for i in range(n_docs):
                df[np.unique(feed["ids"][feed["indptr"][i]:feed["indptr"][i + 1]])] += 1
            self._idf = (np.log((1.0 + n_docs) / (1.0 + df)) + 1.0).astype(self._dtype)
            idf = self._idf[feed["ids"]]
            feed["tokw"] = np.ascontiguousarray(idf * feed["tokw"] if "tokw" in feed else idf)
        return feed, len(texts)

    def _subwords(self):
        """Whether the bag holds character n-grams (``char_ngram_range``)."""
        return self.vocabulary_.char_ngram_range is not None

    def _encode(self, texts):
        """Feed for the engine: window ids (n, window) or bag CSR (+ token weights)."""
        vocab = self.vocabulary_
        if self._encoder_ == "window":
            ids = np.ascontiguousarray(vocab.encode_window(texts, self._window_), dtype=np.intc)
            self._check_ids(ids)
            return {"ids": ids}
        shares = None
        if self._subwords():
            indptr, indices, shares = vocab.encode_bag(texts, return_shares=True)
        else:
            indptr, indices = vocab.encode_bag(texts)
        indptr = np.ascontiguousarray(indptr, dtype=np.intp)
        indices = np.ascontiguousarray(indices, dtype=np.intc)
        self._check_ids(indices)
        feed = {"ids": indices, "indptr": indptr}
        tokw = None
        if shares is not None:
            if self.pooling == "mean":
                # the engine only sums here (pool_mean is off): divide each share by
                # the number of units (words, word n-grams) of its text, a whole number
                lengths = np.diff(indptr)
                running = np.concatenate(([0.0], np.cumsum(shares)))
                units = np.rint(running[indptr[1:]] - running[indptr[:-1]])
                shares = shares / np.repeat(units, lengths)
            tokw = shares
        if getattr(self, "_idf", None) is not None:
            tokw = self._idf[indices] if tokw is None else self._idf[indices] * tokw
        if tokw is not None:
            feed["tokw"] = np.ascontiguousarray(tokw, dtype=self._dtype)
        return feed

    def _check_ids(self, ids):
        """Token ids index rows of E without bounds checks: verify the range here."""
        n_vocab = len(self.vocabulary_)
        if ids.size and (ids.min() < 0 or ids.max() >= n_vocab):
            raise ValueError(f"token ids must lie in [0, {n_vocab}); got ids from "
                             f"{ids.min()} to {ids.max()}")

    def _n_input_features(self):
        e = int(self.embed_dim)
        return e * self._window_ if self._encoder_ == "window" else e

    def _engine_kwargs(self):
        return {"encoder": self._encoder_, "window": self._window_,
                "embed_dim": int(self.embed_dim), "n_vocab": len(self.vocabulary_)}

    def _build_engine(self, sizes, n_features, rng):
        engine = super()._build_engine(sizes, n_features, rng)
        # with subwords, the mean over units is in the token weights (see _encode)
        engine.pool_mean = self.pooling == "mean" and not self._subwords()
        E = engine.E
        rng.standard_normal(out=E, dtype=E.dtype)  # drawn in place: no float64 temporary
        E *= float(self.embed_init)
        E[PAD] = 0
        return engine

    def _expose_params(self):
        super()._expose_params()
        self.embeddings_ = self._engine.E

    def _sync_params(self):
        """Also copy a table a user assigned to ``embeddings_`` into the engine."""
        super()._sync_params()
        E = self._engine.E
        if self.embeddings_ is not E:
            arr = np.asarray(self.embeddings_, dtype=self._dtype)
            if arr.shape != E.shape:
                raise ValueError(f"embeddings_ must have shape {E.shape} (one row per "
                                 f"vocabulary entry), got {arr.shape}")
            if not np.isfinite(arr).all():
                raise ValueError("embeddings_ contains NaN or infinity")
            E[...] = arr
            E[PAD] = 0
            self.embeddings_ = E

    def _extra_bytes(self):
        # E, and up to two optimiser states of its shape
        return 3 * len(self.vocabulary_) * int(self.embed_dim) * self._dtype.itemsize

    def _max_tokens(self, feed, batch_size):
        if self._encoder_ == "window":
            return batch_size * self._window_
        lengths = np.diff(feed["indptr"])
        if len(lengths) <= batch_size:
            return int(lengths.sum())
        return int(np.sort(lengths)[-batch_size:].sum())

    def _subset_feed(self, feed, idx):
        if self._encoder_ == "window":
            return {"ids": np.ascontiguousarray(feed["ids"][idx])}
        indptr = feed["indptr"]
        lengths = (indptr[1:] - indptr[:-1])[idx]
        new_ptr = np.zeros(len(idx) + 1, dtype=np.intp)
        np.cumsum(lengths, out=new_ptr[1:])
        take = np.concatenate([np.arange(indptr[i], indptr[i + 1]) for i in idx]) \
            if len(idx) else np.zeros(0, dtype=np.intp)
        out = {"ids": np.ascontiguousarray(feed["ids"][take]), "indptr": new_ptr}
        if feed.get("tokw") is not None:
            out["tokw"] = np.ascontiguousarray(feed["tokw"][take])
        return out

    def _epoch_feed(self, feed):
        p = float(self.token_dropout)
        if p <= 0:
            return feed
        rng = self._rng
        if self._encoder_ == "window":
            ids = feed["ids"].copy()
            ids[rng.random(ids.shape) < p] = PAD
            return {"ids": ids}
        indptr, ids = feed["indptr"], feed["ids"]
        keep = rng.random(len(ids)) >= p
        rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        new_ptr = np.zeros_like(indptr)
        np.cumsum(np.bincount(rows[keep], minlength=len(indptr) - 1), out=new_ptr[1:])
        out = {"ids": np.ascontiguousarray(ids[keep]), "indptr": new_ptr}
        if feed.get("tokw") is not None:
            out["tokw"] = np.ascontiguousarray(feed["tokw"][keep])
        return out

    def _extra_state_copy(self):
        return self._engine.E.copy()

    def _restore_extra_state(self, state):
        if state is not None:
            self._engine.E[...] = state

    # ------------------------------------------------------------- API
    def fit(self, X, y, validation_data=None):
        """Build the vocabulary from ``X`` and train.

        Parameters
        ----------
        X : sequence of str (tokens separated by whitespace) or of token lists
        y : array-like of labels
        validation_data : (texts, labels), optional
            A development set: scored every epoch; the best epoch's parameters are
            kept (instead of holding out ``validation_fraction`` of X).
        """
        return self._fit(X, y, incremental=False, validation_data=validation_data)

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y); the first call builds the vocabulary from X."""
        return self._fit(X, y, incremental=True, classes=classes)

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
        self._check_fitted()
        feed, n = self._make_feed(X, fitting=False)
        self._sync_params()
        E = self._engine.E
        if self._encoder_ == "window":
            return E[feed["ids"]].reshape(n, -1)
        indptr, ids = feed["indptr"], feed["ids"]
        weights = feed.get("tokw")
        weights = np.ones(len(ids)) if weights is None else weights.astype(np.float64)
        if self._engine.pool_mean:
            lengths = np.diff(indptr)
            weights = weights / np.repeat(lengths, lengths)
        return _pool(E, indptr, ids, weights)

    def _word_vectors(self):
        """Rows ``0..char_offset-1`` (float64): every word's vector as the bag uses it
        (with subwords, the mean of its row and its character n-grams' rows, from the
        vocabulary's own encoding of the one-word text), word n-grams' rows as they
        are."""
        vocab = self.vocabulary_
        vectors = self._engine.E[:vocab.char_offset].astype(np.float64)
        if self._subwords():
            words = [[w] for w in vocab.id_to_token[2:vocab.n_unigrams]]
            indptr, ids, shares = vocab.encode_bag(words, return_shares=True)
            vectors[2:vocab.n_unigrams] = _pool(self._engine.E, indptr, ids, shares)
        return vectors

    def _lookup_vector(self, word, vectors=None):
        """(id or None, vector) of ``word``, from ``vectors`` (:meth:`_word_vectors`)
        if given; KeyError if it has no vector."""
        if not isinstance(word, str):
            raise TypeError(f"word must be a str, got {type(word).__name__}")
        vocab = self.vocabulary_
        key = word.lower() if vocab.lowercase else word
        i = vocab.token_to_id.get(key)
        if i is not None and vectors is not None:
            return i, vectors[i]
        if i is not None and i >= vocab.n_unigrams:  # a word n-gram: its row
            return i, self._engine.E[i].astype(np.float64)
        # the bag of the one-word text: the word and its character n-grams, or UNK
        indptr, ids, shares = vocab.encode_bag([[key]], return_shares=True)
        if i is None and ids.tolist() == [UNK]:
            raise KeyError(f"{word!r} is not in the vocabulary ({vocab.char_offset} entries)"
                           + (" and has no known character n-gram" if self._subwords()
                              else ""))
        return i, _pool(self._engine.E, indptr, ids, shares)[0].astype(np.float64)

    def word_vector(self, word):
        """The vector the bag encoder uses for ``word`` (a float64 copy).

        Its row of ``E``; with ``char_ngram_range``, the mean of its row and its known
        character n-grams' rows, and for a word not in the vocabulary the mean of its
        known n-grams' rows. ``word`` is lower-cased first if the model lower-cases; a
        word n-gram in the vocabulary (``"not good"``) gives its row. KeyError if
        ``word`` has no vector.
        """
        self._check_fitted()
        return self._lookup_vector(word)[1]

    def most_similar(self, word, k=10):
        """The ``k`` tokens whose embeddings are closest to ``word``'s (cosine).

        Returns a list of ``(token, similarity)``, most similar first; PAD, UNK and the
        word itself are left out; ``word`` is lower-cased first if the model lower-cases.
        Vectors are those of :meth:`word_vector`: with ``char_ngram_range``, the
        candidates are the words and word n-grams, and ``word`` may be unseen if some of
        its character n-grams were seen. KeyError if ``word`` has no vector.
        """
        self._check_fitted()
        Interval(int, 1, None).check("k", k)
        vectors = self._word_vectors()
        i, query = self._lookup_vector(word, vectors)
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

    def save(self, path):
        """Write the model, with its vocabulary, to ``path`` (:func:`cymlp.save_model`)."""
        from cymlp.persist import save_model
        save_model(self, path)
        return path

    def score(self, X, y, sample_weight=None):
        """Accuracy on (X, y); labels never seen in training count as errors."""
        self._check_fitted()
        pred = self.predict(X)
        check_targets(y, len(pred), estimator="TextClassifier")
        # compare label objects one by one: a list mixing types (an unseen str label
        # among int labels) must not turn every label into a string
        truth = y.tolist() if isinstance(y, np.ndarray) else list(y)
        hit = np.fromiter((p == t for p, t in zip(pred.tolist(), truth)), dtype=bool,
                          count=len(pred))
        if sample_weight is None:
            return float(np.mean(hit))
        w = np.asarray(sample_weight, dtype=float)
        return float(np.sum(w * hit) / np.sum(w))
