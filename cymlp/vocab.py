"""Tokens to integer ids for the embedding encoders.

:class:`Vocabulary` maps whitespace tokens (and, optionally, word n-grams) to
the rows of an embedding table ``E`` of shape ``(n_vocab, embed_dim)``, with
the two reserved rows of ``docs/model.md``: id 0 is PAD (padding, kept at
zero, never produced for a real token) and id 1 is UNK (every unknown word).
It encodes texts for both encoders: :meth:`Vocabulary.encode_window` gives
the fixed-length id matrix of the ``window`` encoder, and
:meth:`Vocabulary.encode_bag` the CSR id lists of the ``bag`` encoder.

With ``char_ngram_range``, the bag also holds subword units: the character
n-grams of every word, marked at its boundaries (``"<where>"`` gives ``"<wh"``,
``"whe"``, ... for ``n = 3``), so that words that share a stem or an ending share
rows, and a word never seen in training still has a vector if some of its
character n-grams were seen.
"""

import numbers
from collections import Counter
from itertools import chain, repeat

import numpy as np

__all__ = ["PAD", "UNK", "Vocabulary", "tokenize"]

#: Id of the padding token.
PAD = 0
#: Id of the unknown-word token.
UNK = 1

_PAD_TOKEN = "<pad>"
_UNK_TOKEN = "<unk>"
_RESERVED = (_PAD_TOKEN, _UNK_TOKEN)


def tokenize(text, *, lowercase=False):
    """Split a text at whitespace.

    Parameters
    ----------
    text : str
        The text; the data files are already tokenised, with tokens separated
        by single spaces.
    lowercase : bool, default=False
        Lower-case the text first.

    Returns
    -------
    list of str
        The tokens; runs of whitespace and leading or trailing whitespace give
        no empty tokens.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if lowercase:
        text = text.lower()
    return text.split()


def _check_span(name, span):
    """``(lo, hi)`` as ints, for a pair of ints with ``1 <= lo <= hi`` (the one check of
    an n-gram range, for word and character n-grams alike)."""
    try:
        lo, hi = span
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (min_n, max_n), got {span!r}") from None
    if (
        not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (lo, hi))
        or not (lo >= 1 and hi >= 1)
    ):
        raise ValueError(f"{name} must hold positive integers (a pair (min_n, max_n) with "
                         f"1 <= min_n <= max_n), got {span!r}")
    if lo > hi:
        raise ValueError(f"{name} must have min_n <= max_n, got {span!r}")
    return int(lo), int(hi)


def _indptr(lists):
    """CSR row pointers (int64) of a list of lists."""
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, lists), dtype=np.int64, count=len(lists)), out=indptr[1:])
    return indptr


def _to_csr(id_lists):
    """``indptr`` (int64) and the concatenated ids (int32) of a list of id lists."""
    indptr = _indptr(id_lists)
    flat = np.fromiter(chain.from_iterable(id_lists), dtype=np.int32, count=int(indptr[-1]))
    return indptr, flat


def _char_ngrams(word, lo, hi):
    """Character n-grams (``n = lo..hi``) of ``"<" + word + ">"``, by ``n`` then
    position, without the whole marked word itself."""
    marked = "<" + word + ">"
    size = len(marked)
    return [marked[i:i + n] for n in range(lo, min(hi, size - 1) + 1)
            for i in range(size - n + 1)]


def _ngrams(tokens, lo, hi):
    """Word n-grams of ``tokens`` for ``n = lo..hi`` (``lo >= 2``), joined by a space."""
    grams = []
    for n in range(lo, min(hi, len(tokens)) + 1):  # none longer than the text
        # the n-grams of one length, in order: " ".join of n shifted views
        grams.extend(map(" ".join, zip(*(tokens[k:] for k in range(n)))))
    return grams


class Vocabulary:
    """Map tokens and word n-grams to integer ids.

    Ids: ``0`` is PAD, ``1`` is UNK, then the unigrams by descending count
    (ties broken alphabetically, so the result does not depend on the order
    of the corpus), then the word n-grams (``n >= 2``) by descending count,
    ties alphabetically, then (with ``char_ngram_range``) the character
    n-grams, in the same order. An n-gram is its words joined by a single
    space.

    Parameters
    ----------
    min_count : int, default=1
        Keep a unigram or n-gram only if it occurs at least this often in the
        corpus given to :meth:`fit`.
    max_size : int, optional
        Cap on the total number of ids, PAD and UNK included (at least 2).
        Unigrams take precedence over word n-grams, and these over character
        n-grams; the least frequent are dropped.
    ngram_range : tuple (lo, hi), default=(1, 1)
        Which n-grams :meth:`encode` and :meth:`encode_bag` emit; n-grams with
        ``n`` in ``max(lo, 2)..hi`` get ids after the unigrams. Unigrams always
        have ids (the window encoder uses them), but are emitted by
        :meth:`encode` only when ``lo == 1``.
    lowercase : bool, default=False
        Lower-case texts (and tokens given as lists) before use.
    char_ngram_range : tuple (lo, hi), optional
        Also give ids to the character n-grams (``n`` in ``lo..hi``) of the
        words of the corpus, each word marked as ``"<" + word + ">"`` (the whole
        marked word is not one of its n-grams). A character n-gram is counted
        once per occurrence of a word that contains it, and kept if that count
        reaches ``min_count``. The bag encodings then list each word's id
        followed by the ids of its known character n-grams; an unknown word is
        represented by its known character n-grams alone (UNK if it has none).
        Needs ``ngram_range[0] == 1``.

    Attributes
    ----------
    id_to_token : list of str
        Token of each id; ``"<pad>"`` and ``"<unk>"`` for ids 0 and 1.
    token_to_id : dict of str to int
        The inverse map, without the two reserved tokens (for reading: the
        encoders use their own copies, made when the vocabulary is fitted or
        loaded).
    counts : ndarray of shape (n_vocab,), int64
        Corpus count of each id; for UNK, the number of unigram occurrences
        that were left out (below ``min_count`` or beyond ``max_size``); 0
        for PAD.
    n_unigrams : int
        Number of ids that are PAD, UNK or a unigram (ids ``0..n_unigrams-1``).
    char_offset : int
        First id of the character n-grams (``len(vocab)`` without them). A
        character n-gram may be spelled like a word (``"the"``); the two have
        different ids, and ``token_to_id`` maps words and word n-grams only.

    Notes
    -----
    A corpus token spelled ``"<pad>"`` or ``"<unk>"`` is treated as unknown
    and encoded as UNK, so PAD is never produced for a real token.

    Examples
    --------
    >>> vocab = Vocabulary().fit(["a b a", "b c"])
    >>> vocab.id_to_token
    ['<pad>', '<unk>', 'a', 'b', 'c']
    >>> vocab.encode("a c d").tolist()
    [2, 4, 1]
    """

    PAD = PAD
    UNK = UNK

    def __init__(self, *, min_count=1, max_size=None, ngram_range=(1, 1), lowercase=False,
                 char_ngram_range=None):
        self.min_count = min_count
        self.max_size = max_size
        self.ngram_range = ngram_range
        self.lowercase = lowercase
        self.char_ngram_range = char_ngram_range
        self.id_to_token = None
        self.token_to_id = None
        self.counts = None
        self.n_unigrams = None
        self.char_offset = None

    # -- parameters ---------------------------------------------------------

    def _validate_params(self):
        min_count = self.min_count
        if (
            isinstance(min_count, bool)
            or not isinstance(min_count, numbers.Integral)
            or min_count < 1
        ):
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
        max_size = self.max_size
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, numbers.Integral) or max_size < 2
        ):
            raise ValueError(
                f"max_size must be None or an int >= 2 (PAD and UNK included), got {max_size!r}"
            )
        return _check_span("ngram_range", self.ngram_range)

    def _check_char_ngram_range(self, lo_word):
        """The character n-gram span (or None); ``lo_word`` is ``ngram_range[0]``."""
        if self.char_ngram_range is None:
            return None
        span = _check_span("char_ngram_range", self.char_ngram_range)
        if lo_word != 1:
            raise ValueError(
                "char_ngram_range needs the unigrams: ngram_range must start at 1, "
                f"got ngram_range={tuple(self.ngram_range)!r}"
            )
        return span

    def _check_fitted(self):
        if self.id_to_token is None:
            raise ValueError("this Vocabulary is not fitted yet: call fit(texts) first")

    # -- tokens -------------------------------------------------------------

    def _tokens(self, text):
        if type(text) is str:  # the common case, without the checks of tokenize
            return text.lower().split() if self.lowercase else text.split()
        if isinstance(text, str):
            return tokenize(text, lowercase=self.lowercase)
        if isinstance(text, (bytes, bytearray)):
            raise TypeError("texts must be str or lists of str tokens, got bytes")
        try:
            tokens = list(text)
        except TypeError:
            raise TypeError(
                f"a text must be a str or a list of str tokens, got {type(text).__name__}"
            ) from None
        for token in tokens:
            if not isinstance(token, str):
                raise TypeError(f"tokens must be str, got {type(token).__name__}")
        if self.lowercase:
            tokens = [token.lower() for token in tokens]
        return tokens

    @staticmethod
    def _check_corpus(texts, what):
        if isinstance(texts, (str, bytes)):
            raise TypeError(f"{what} takes a sequence of texts, not a single str")

    # -- fitting ------------------------------------------------------------

    def fit(self, texts):
        """Count tokens and n-grams and assign ids.

        Parameters
        ----------
        texts : iterable of (str or list of str)
            The corpus: texts (split with :func:`tokenize`) or token lists.

        Returns
        -------
        self : Vocabulary

        Raises
        ------
        ValueError
            If the corpus holds no token, a parameter is invalid, or a token
            given in a list is empty or contains whitespace.
        """
        lo, hi = self._validate_params()
        self._check_corpus(texts, "fit")
        unigram_counts = Counter()
        ngram_counts = Counter()
        lo_ngram = max(lo, 2)
        for text in texts:
            tokens = self._tokens(text)
            unigram_counts.update(tokens)
            if hi >= 2:
                ngram_counts.update(_ngrams(tokens, lo_ngram, hi))
        if not unigram_counts:
            raise ValueError("cannot fit a Vocabulary on an empty corpus (no tokens)")
        for token in unigram_counts:
            if not token or any(c.isspace() for c in token):
                raise ValueError(f"tokens must be non-empty and hold no whitespace, got {token!r}")

        n_unk = sum(unigram_counts.pop(token, 0) for token in _RESERVED)
        order = sorted(unigram_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        unigrams = [(t, c) for t, c in order if c >= self.min_count]

        def frequent(counts):
            return sorted(((t, c) for t, c in counts.items() if c >= self.min_count),
                          key=lambda kv: (-kv[1], kv[0]))

        ngrams = frequent(ngram_counts)
        chars = []
        char_span = self._check_char_ngram_range(lo)
        grams_of = {}
        if char_span is not None:
            char_counts = Counter()
            for word, count in unigram_counts.items():
                grams_of[word] = grams = _char_ngrams(word, *char_span)
                for gram in grams:
                    char_counts[gram] += count
            chars = frequent(char_counts)
        if self.max_size is not None:
            room = self.max_size - 2
            unigrams = unigrams[:room]
            ngrams = ngrams[: max(room - len(unigrams), 0)]
            chars = chars[: max(room - len(unigrams) - len(ngrams), 0)]
        n_unk += sum(c for _, c in order) - sum(c for _, c in unigrams)

        entries = [(_PAD_TOKEN, 0), (_UNK_TOKEN, n_unk)] + unigrams + ngrams + chars
        self._set_tables([t for t, _ in entries], [c for _, c in entries], 2 + len(unigrams),
                         len(entries) - len(chars), grams_of)
        return self

    def _set_tables(self, id_to_token, counts, n_unigrams, char_offset=None, grams_of=None):
        self.id_to_token = list(id_to_token)
        self.char_offset = len(self.id_to_token) if char_offset is None else int(char_offset)
        self.token_to_id = {t: i for i, t in enumerate(self.id_to_token[:self.char_offset])
                            if i >= 2}
        self.counts = np.asarray(counts, dtype=np.int64)
        self.n_unigrams = int(n_unigrams)
        self._span = self._validate_params()
        self._char_span = self._check_char_ngram_range(self._span[0])
        # character n-grams: their map, and each known word's known n-gram ids
        self._char_get = None
        self._word_pieces = {}
        if self._char_span is not None:
            self._char_get = {t: i for i, t in enumerate(self.id_to_token)
                              if i >= self.char_offset}.get
            # each known word's ids (its own, then its n-grams') and shares
            for i in range(2, self.n_unigrams):
                word = self.id_to_token[i]
                grams = grams_of.get(word) if grams_of else None
                ids = (i, *self._lookup_chars(word, grams))
                self._word_pieces[word] = (ids, (1.0 / len(ids),) * len(ids))
        # Separate maps for the encoders' hot loops: a token is looked up among the
        # unigrams only (a token given in a list may contain a space and must not hit
        # an n-gram), an n-gram among the n-grams only.
        self._unigram_get = {t: i for t, i in self.token_to_id.items()
                             if i < self.n_unigrams}.get
        ngram_ids = {t: i for t, i in self.token_to_id.items() if i >= self.n_unigrams}
        self._ngram_get = ngram_ids.get if ngram_ids else None

    # -- encoding -----------------------------------------------------------

    def _unigram_ids(self, tokens):
        return list(map(self._unigram_get, tokens, repeat(UNK)))

    def _lookup_chars(self, word, grams=None):
        if grams is None:
            grams = _char_ngrams(word, *self._char_span)
        return [i for i in map(self._char_get, grams) if i is not None]

    def _pieces(self, tokens):
        """Bag ids of ``tokens`` with character n-grams, and each id's share of its
        word: a known word and its k known character n-grams get ``1 / (k + 1)``
        each, an unknown word's k known n-grams ``1 / k`` (UNK alone if ``k = 0``),
        a word n-gram 1; so the shares of a text sum to its number of words plus
        its number of known word n-grams."""
        ids, shares = [], []
        word_pieces = self._word_pieces
        for token in tokens:
            pieces = word_pieces.get(token)
            if pieces is None:  # an unknown word: its known n-grams, or UNK
                chars = self._lookup_chars(token) or [UNK]
                pieces = (chars, (1.0 / len(chars),) * len(chars))
            ids.extend(pieces[0])
            shares.extend(pieces[1])
        n_word_ids = len(ids)
        ids.extend(self._ngram_ids(tokens))
        shares.extend(repeat(1.0, len(ids) - n_word_ids))
        return ids, shares

    def _ngram_ids(self, tokens):
        """Ids of the known word n-grams (``n >= 2``) of ``tokens``, by n then position."""
        lo, hi = self._span
        if hi < 2 or self._ngram_get is None:
            return []
        return [i for i in map(self._ngram_get, _ngrams(tokens, max(lo, 2), hi))
                if i is not None]

    def subword_ids(self, word):
        """Ids of the known character n-grams of ``word`` (empty without
        ``char_ngram_range``).

        Parameters
        ----------
        word : str

        Returns
        -------
        ndarray of int32
        """
        self._check_fitted()
        if not isinstance(word, str):
            raise TypeError(f"word must be a str, got {type(word).__name__}")
        if self._char_get is None:
            return np.zeros(0, dtype=np.int32)
        if self.lowercase:
            word = word.lower()
        pieces = self._word_pieces.get(word)
        chars = pieces[0][1:] if pieces is not None else self._lookup_chars(word)
        return np.asarray(chars, dtype=np.int32)

    def _ids(self, tokens):
        if self._char_get is not None:
            return self._pieces(tokens)[0]
        ids = self._unigram_ids(tokens) if self._span[0] == 1 else []
        ids.extend(self._ngram_ids(tokens))
        return ids

    def encode(self, text):
        """Ids of one text: its unigrams, then its known n-grams.

        Parameters
        ----------
        text : str or list of str

        Returns
        -------
        ndarray of shape (n_ids,), int32
            Unigram ids in token order (unknown words as UNK, only when
            ``ngram_range[0] == 1``), then the ids of the n-grams that are in
            the vocabulary, by ``n`` then position; unknown n-grams are
            dropped. With ``char_ngram_range``, each word's id is followed by
            the ids of its known character n-grams (see the class).
        """
        self._check_fitted()
        return np.asarray(self._ids(self._tokens(text)), dtype=np.int32)

    def encode_window(self, texts, n):
        """Fixed-length unigram ids for the window encoder.

        Parameters
        ----------
        texts : sequence of (str or list of str)
        n : int
            Window length (``n >= 1``).

        Returns
        -------
        ndarray of shape (len(texts), n), int32
            Row ``i`` holds the ids of the first ``n`` tokens of text ``i``
            (unknown words as UNK), padded with PAD; n-grams are not used.
        """
        self._check_fitted()
        self._check_corpus(texts, "encode_window")
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"window length n must be an int >= 1, got {n!r}")
        n = int(n)
        pad = [PAD] * n
        flat = []
        for text in texts:
            ids = self._unigram_ids(self._tokens(text)[:n])
            flat.extend(ids)
            flat.extend(pad[len(ids):])
        return np.array(flat, dtype=np.int32).reshape(-1, n)

    def encode_bag(self, texts, *, return_shares=False):
        """Variable-length ids for the bag encoder, as CSR arrays.

        Parameters
        ----------
        texts : sequence of (str or list of str)
        return_shares : bool, default=False
            Also return each id's share of its unit.

        Returns
        -------
        indptr : ndarray of shape (len(texts) + 1,), int64
            Text ``i`` has the ids ``indices[indptr[i]:indptr[i + 1]]``.
        indices : ndarray of shape (indptr[-1],), int32
            The concatenated :meth:`encode` ids; PAD never appears.
        shares : ndarray of shape (indptr[-1],), float64
            Only with ``return_shares``. 1 for every id, except with
            ``char_ngram_range``: a word's id and the ids of its character
            n-grams then split 1 equally, so a word counts once however long
            it is. A text's shares sum to its number of units (words and known
            word n-grams); the bag encoder's mean is the share-weighted sum of
            the rows over that number.
        """
        self._check_fitted()
        self._check_corpus(texts, "encode_bag")
        if self._char_get is not None:
            pieces = [self._pieces(self._tokens(text)) for text in texts]
            indptr, indices = _to_csr([ids for ids, _ in pieces])
            if return_shares:
                shares = np.fromiter(chain.from_iterable(part for _, part in pieces),
                                     dtype=np.float64, count=len(indices))
                return indptr, indices, shares
            return indptr, indices
        indptr, indices = self._encode_words(texts)
        if return_shares:
            return indptr, indices, np.ones(len(indices), dtype=np.float64)
        return indptr, indices

    def _encode_words(self, texts):
        lo, hi = self._span
        if lo == 1 and (hi == 1 or self._ngram_get is None):
            # unigrams only: one lookup pass over the tokens of all texts
            token_lists = [self._tokens(text) for text in texts]
            indptr = _indptr(token_lists)
            indices = np.fromiter(
                map(self._unigram_get, chain.from_iterable(token_lists), repeat(UNK)),
                dtype=np.int32, count=int(indptr[-1]))
            return indptr, indices
        return _to_csr([self._ids(self._tokens(text)) for text in texts])

    # -- container protocol ---------------------------------------------------

    def __len__(self):
        self._check_fitted()
        return len(self.id_to_token)

    def __contains__(self, token):
        return self.token_to_id is not None and token in self.token_to_id

    def __repr__(self):
        params = (
            f"min_count={self.min_count!r}, max_size={self.max_size!r}, "
            f"ngram_range={tuple(self.ngram_range)!r}, lowercase={self.lowercase!r}"
        )
        if self.char_ngram_range is not None:
            params += f", char_ngram_range={tuple(self.char_ngram_range)!r}"
        size = "" if self.id_to_token is None else f", n_vocab={len(self.id_to_token)}"
        return f"Vocabulary({params}{size})"

    # -- serialisation --------------------------------------------------------

    def to_dict(self):
        """The parameters and tables as a JSON-serialisable dict.

        Returns
        -------
        dict
            Keys ``min_count``, ``max_size``, ``ngram_range``, ``lowercase``,
            ``char_ngram_range``, ``id_to_token``, ``counts``, ``n_unigrams``,
            ``char_offset``.
        """
        self._check_fitted()
        lo, hi = self._span
        return {
            "min_count": int(self.min_count),
            "max_size": None if self.max_size is None else int(self.max_size),
            "ngram_range": [lo, hi],
            "lowercase": bool(self.lowercase),
            "char_ngram_range": None if self._char_span is None else list(self._char_span),
            "id_to_token": list(self.id_to_token),
            "counts": [int(c) for c in self.counts],
            "n_unigrams": self.n_unigrams,
            "char_offset": self.char_offset,
        }

    @classmethod
    def from_dict(cls, d):
        """Rebuild a fitted Vocabulary from :meth:`to_dict` output.

        Parameters
        ----------
        d : dict

        Returns
        -------
        Vocabulary

        Raises
        ------
        ValueError
            If a key is missing or the tables are inconsistent. (Dicts written
            before ``char_ngram_range`` existed, without it and
            ``char_offset``, are read as having no character n-grams.)
        """
        keys = (
            "min_count",
            "max_size",
            "ngram_range",
            "lowercase",
            "id_to_token",
            "counts",
            "n_unigrams",
        )
        if not isinstance(d, dict):
            raise ValueError(f"expected a dict, got {type(d).__name__}")
        missing = [k for k in keys if k not in d]
        if missing:
            raise ValueError(f"vocabulary dict is missing keys {missing}")
        char_span = d.get("char_ngram_range")
        if char_span is not None:
            if not isinstance(char_span, list):
                raise ValueError("vocabulary dict: char_ngram_range must be null or a list")
            char_span = tuple(char_span)
        vocab = cls(
            min_count=d["min_count"],
            max_size=d["max_size"],
            ngram_range=tuple(d["ngram_range"]),
            lowercase=d["lowercase"],
            char_ngram_range=char_span,
        )
        vocab._validate_params()
        id_to_token = d["id_to_token"]
        counts = d["counts"]
        n_unigrams = d["n_unigrams"]
        if (
            not isinstance(id_to_token, list)
            or len(id_to_token) < 2
            or list(id_to_token[:2]) != list(_RESERVED)
            or not all(isinstance(t, str) and t for t in id_to_token)
        ):
            raise ValueError(
                "vocabulary dict: id_to_token must be a list of str starting with '<pad>', '<unk>'"
            )
        char_offset = d.get("char_offset", len(id_to_token))
        if (
            isinstance(char_offset, bool)
            or not isinstance(char_offset, int)
            or not 2 <= char_offset <= len(id_to_token)
            or (char_span is None and char_offset != len(id_to_token))
        ):
            raise ValueError(
                "vocabulary dict: char_offset must be an int in [2, len(id_to_token)], "
                "and len(id_to_token) without char_ngram_range"
            )
        for part in (id_to_token[:char_offset], id_to_token[char_offset:]):
            if len(set(part)) != len(part):
                raise ValueError("vocabulary dict: id_to_token holds duplicate tokens")
        if not isinstance(counts, list) or len(counts) != len(id_to_token):
            raise ValueError("vocabulary dict: counts must be a list as long as id_to_token")
        if (
            isinstance(n_unigrams, bool)
            or not isinstance(n_unigrams, int)
            or not 2 <= n_unigrams <= char_offset
        ):
            raise ValueError("vocabulary dict: n_unigrams must be an int in [2, char_offset]")
        vocab._set_tables(id_to_token, counts, n_unigrams, char_offset)
        return vocab
