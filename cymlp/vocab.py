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
character n-grams were seen. With ``n_buckets``, n-grams share a fixed number of
hashed rows instead of getting one each.

Every text (and every token given in a list) is put in Unicode normal form NFC
before it is split, so that the composed and the decomposed spelling of a word
are the same token.

Two implementations do the work behind one interface: the compiled text path
(``cymlp._text``: C hash tables, no Python object per token, the GIL released)
and the pure-Python reference in this module (:class:`_PyCounter`,
:class:`_PyIndex`), which the tests hold the compiled path to.
:class:`Vocabulary` uses the compiled one; ``_ReferenceVocabulary`` the other.
"""

import numbers
import os
import re
import unicodedata
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from itertools import chain, repeat

import numpy as np

try:
    from cymlp import _text
except ImportError:
    # only when this file is loaded on its own because the package is not built
    # (see tests/_shared.py): then the reference path is all there is
    _text = None

__all__ = ["PAD", "UNK", "Vocabulary", "tokenize"]

#: Id of the padding token.
PAD = 0
#: Id of the unknown-word token.
UNK = 1

_PAD_TOKEN = "<pad>"
_UNK_TOKEN = "<unk>"
_RESERVED = (_PAD_TOKEN, _UNK_TOKEN)

#: ids are int32
_MAX_ID = np.iinfo(np.int32).max
_MAX_BUCKETS = _MAX_ID - 2

_SURROGATE = re.compile("[\ud800-\udfff]")

# groups of entries, in id order (also the group numbers of cymlp._text)
_WORDS, _GRAMS, _CHARS = 0, 1, 2


# ---------------------------------------------------------------- normalising
def _normalize(text, lowercase, where="text"):
    """``text`` in NFC, lower-cased if asked (and put in NFC again: lower-casing can
    undo it); a ValueError naming ``where`` if it holds a lone surrogate."""
    if text.isascii():  # (repeated in cymlp._text.fill_chunk, without a call)
        return text.lower() if lowercase else text
    bad = _SURROGATE.search(text)
    if bad is not None:
        raise ValueError(
            f"{where} holds a lone surrogate U+{ord(bad.group()):04X} at character "
            f"{bad.start()}: texts must be valid Unicode (decode bytes with "
            "errors='replace', not 'surrogateescape')"
        )
    text = unicodedata.normalize("NFC", text)
    if lowercase:
        text = unicodedata.normalize("NFC", text.lower())
    return text


def tokenize(text, *, lowercase=False):
    """Split a text at whitespace.

    Parameters
    ----------
    text : str
        The text; the data files are already tokenised, with tokens separated
        by single spaces. It is put in Unicode normal form NFC first, so that
        composed and decomposed spellings (``"caf\\u00e9"``, ``"cafe\\u0301"``)
        give the same token.
    lowercase : bool, default=False
        Lower-case the text (after NFC; the result is put in NFC again).

    Returns
    -------
    list of str
        The tokens, as ``str.split()`` finds them: runs of whitespace (any
        character for which ``str.isspace()`` is true, U+2028 and U+0085
        included) and leading or trailing whitespace give no empty tokens.

    Raises
    ------
    TypeError
        If ``text`` is not a str.
    ValueError
        If ``text`` holds a lone surrogate (such as ``"\\udcff"``, which
        ``errors='surrogateescape'`` decoding leaves for undecodable bytes).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _normalize(text, lowercase).split()


def _fnv1a_32(data):
    """32-bit FNV-1a of ``data`` (bytes): the hash that places an n-gram in its
    bucket (``cymlp._text`` computes the same)."""
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


# -------------------------------------------------------------------- helpers
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


def _check_n_jobs(n_jobs):
    """Number of threads for ``n_jobs``: an int >= 1, or -1 for every usable core."""
    if (
        isinstance(n_jobs, bool)
        or not isinstance(n_jobs, numbers.Integral)
        or not (n_jobs >= 1 or n_jobs == -1)
    ):
        raise ValueError(f"n_jobs must be an int >= 1, or -1 for every core, got {n_jobs!r}")
    if n_jobs == -1:
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    return int(n_jobs)


def _in_ranges(n, n_jobs, work):
    """``[work(start, stop), ...]`` over ``n_jobs`` consecutive ranges of ``0..n``
    (fewer if ``n`` is small), in threads when there are several; results in the
    order of the ranges, so the first failing range raises."""
    k = max(1, min(n_jobs, n))
    bounds = [n * j // k for j in range(k + 1)]
    if k == 1:
        return [work(0, n)]
    with ThreadPoolExecutor(max_workers=k) as pool:
        futures = [pool.submit(work, bounds[j], bounds[j + 1]) for j in range(k)]
        return [f.result() for f in futures]


def _indptr(lengths):
    """CSR row pointers (int64) from the row lengths."""
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return indptr


def _split(prepared):
    """Tokens of a prepared text (a str to split, or already a token list)."""
    return prepared.split() if isinstance(prepared, str) else prepared


def _capped(n):
    """An n-gram length for the compiled tables (C ints): lengths beyond 2**31 - 1 give
    the n-grams of that length, none, as no text or word is so long."""
    return min(n, 2**31 - 1)


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


# ------------------------------------------------------- the reference path
class _PyCounter:
    """Counting in pure Python (the reference for ``cymlp._text.Counter``, same
    interface): unigram and word n-gram counts of a corpus, then the character
    n-grams of its words; with ``n_buckets`` the n-gram counts per bucket."""

    def __init__(self, lo, hi, n_buckets):
        self.lo_gram = max(lo, 2)
        self.hi = hi
        self.n_buckets = n_buckets
        self.groups = (Counter(), Counter(), Counter())
        self.grams_of = {}  # each word's character n-grams, for _PyIndex
        self._ranked = {}

    @property
    def n_tokens(self):
        return sum(self.groups[_WORDS].values())

    def add(self, texts, start, stop, lowercase, prepare):
        words, grams, _ = self.groups
        for i in range(start, stop):
            tokens = _split(prepare(texts[i], i))
            words.update(tokens)
            if self.hi >= 2:
                grams.update(_ngrams(tokens, self.lo_gram, self.hi))

    def merge(self, other):
        for mine, theirs in zip(self.groups, other.groups):
            mine.update(theirs)

    def count_chars(self, lo, hi):
        chars = self.groups[_CHARS]
        for word, count in self.groups[_WORDS].items():
            if word in _RESERVED:
                continue
            self.grams_of[word] = grams = _char_ngrams(word, lo, hi)
            for gram in grams:
                chars[gram] += count

    def ranked(self, g, min_count):
        items = [(t, c) for t, c in self.groups[g].items()
                 if c >= min_count and (self.n_buckets == 0 or g == _WORDS)]
        if g == _WORDS:
            items = [(t, c) for t, c in items if t not in _RESERVED]
        items.sort(key=lambda kv: (-kv[1], kv[0]))
        self._ranked[g] = [t for t, _ in items]
        return (np.arange(len(items), dtype=np.int64),
                np.fromiter((c for _, c in items), dtype=np.int64, count=len(items)))

    def tokens(self, g, order):
        ranked = self._ranked[g]
        return [ranked[j] for j in order]

    def bucket_counts(self):
        counts = np.zeros(self.n_buckets, dtype=np.int64)
        for g in (_GRAMS, _CHARS):
            for gram, count in self.groups[g].items():
                counts[_fnv1a_32(gram.encode("utf-8")) % self.n_buckets] += count
        return counts


class _PyIndex:
    """Look-up and encoding in pure Python (the reference for
    ``cymlp._text.Index``, same interface): dicts from token to id, each known
    word's pieces, and the encoders over ranges of texts."""

    def __init__(self, lo, hi, clo, chi, n_unigrams, char_offset, n_buckets):
        self.span = (lo, hi)
        self.char_span = (clo, chi) if chi else None
        self.n_unigrams = n_unigrams
        self.char_offset = char_offset
        self.n_buckets = n_buckets
        self.maps = ({}, {}, {})
        self.grams_of = {}
        self.unigram_get = self.ngram_get = self.char_get = None
        self.word_pieces = {}

    # -- building
    def add_counted(self, g, counter, order, first_id):
        """Give the entries ``order`` of the counter's group ``g`` the ids
        ``first_id, first_id + 1, ...``."""
        self.add_tokens(g, counter.tokens(g, order), first_id)
        if g == _WORDS:
            self.grams_of = counter.grams_of

    def add_tokens(self, g, tokens, first_id):
        table = self.maps[g]
        for j, token in enumerate(tokens):
            table.setdefault(token, first_id + j)

    def tokens(self, g, first_id, count):
        out = [None] * count
        for token, i in self.maps[g].items():
            out[i - first_id] = token
        return out

    def finish(self):
        words, grams, chars = self.maps
        self.unigram_get = words.get
        # Separate maps: a token is looked up among the unigrams only (a token given
        # in a list may contain a space and must not hit an n-gram), an n-gram among
        # the n-grams only.
        self.ngram_get = grams.get if grams else None
        self.char_get = chars.get if self.char_span is not None and not self.n_buckets else None
        if self.char_span is not None:
            for word, i in words.items():
                ids = (i, *self.char_ids(word, self.grams_of.get(word)))
                self.word_pieces[word] = (ids, (1.0 / len(ids),) * len(ids))
        self.grams_of = {}

    # -- ids
    def bucket(self, gram):
        return self.n_unigrams + _fnv1a_32(gram.encode("utf-8")) % self.n_buckets

    def char_ids(self, word, grams=None):
        if grams is None:
            grams = _char_ngrams(word, *self.char_span)
        if self.n_buckets:
            return [self.bucket(g) for g in grams]
        return [i for i in map(self.char_get, grams) if i is not None]

    def ngram_ids(self, tokens):
        """Ids of the known word n-grams (``n >= 2``) of ``tokens``, by n then position
        (of every one, with buckets)."""
        lo, hi = self.span
        if hi < 2 or (self.ngram_get is None and not self.n_buckets):
            return []
        grams = _ngrams(tokens, max(lo, 2), hi)
        if self.n_buckets:
            return [self.bucket(g) for g in grams]
        return [i for i in map(self.ngram_get, grams) if i is not None]

    def pieces(self, tokens):
        """Bag ids of ``tokens`` with character n-grams, and each id's share of its
        word: a known word and its k known character n-grams get ``1 / (k + 1)``
        each, an unknown word's k known n-grams ``1 / k`` (UNK alone if ``k = 0``),
        a word n-gram 1; so the shares of a text sum to its number of words plus
        its number of known word n-grams."""
        ids, shares = [], []
        word_pieces = self.word_pieces
        for token in tokens:
            pieces = word_pieces.get(token)
            if pieces is None:  # an unknown word: its known n-grams, or UNK
                chars = self.char_ids(token) or [UNK]
                pieces = (chars, (1.0 / len(chars),) * len(chars))
            ids.extend(pieces[0])
            shares.extend(pieces[1])
        n_word_ids = len(ids)
        ids.extend(self.ngram_ids(tokens))
        shares.extend(repeat(1.0, len(ids) - n_word_ids))
        return ids, shares

    def ids(self, tokens):
        if self.char_span is not None:
            return self.pieces(tokens)[0]
        ids = list(map(self.unigram_get, tokens, repeat(UNK))) if self.span[0] == 1 else []
        ids.extend(self.ngram_ids(tokens))
        return ids

    # -- encoders
    def encode_bag(self, texts, start, stop, lowercase, prepare, want_shares):
        token_lists = [_split(prepare(texts[i], i)) for i in range(start, stop)]
        lo, hi = self.span
        shares = None
        if self.char_span is not None:
            pieces = [self.pieces(tokens) for tokens in token_lists]
            id_lists = [ids for ids, _ in pieces]
            if want_shares:
                shares = np.fromiter(chain.from_iterable(part for _, part in pieces),
                                     dtype=np.float64)
        elif lo == 1 and (hi == 1 or (self.ngram_get is None and not self.n_buckets)):
            # unigrams only: one lookup pass over the tokens of all texts
            lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
            ids = np.fromiter(map(self.unigram_get, chain.from_iterable(token_lists), repeat(UNK)),
                              dtype=np.int32, count=int(lengths.sum()))
            return lengths, ids, (np.ones(len(ids)) if want_shares else None)
        else:
            id_lists = [self.ids(tokens) for tokens in token_lists]
        lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
        ids = np.fromiter(chain.from_iterable(id_lists), dtype=np.int32, count=int(lengths.sum()))
        if want_shares and shares is None:
            shares = np.ones(len(ids))
        return lengths, ids, shares

    def encode_window(self, texts, start, stop, lowercase, prepare, out):
        n = out.shape[1]
        pad = [PAD] * n
        flat = []
        for i in range(start, stop):
            ids = list(map(self.unigram_get, _split(prepare(texts[i], i))[:n], repeat(UNK)))
            flat.extend(ids)
            flat.extend(pad[len(ids):])
        out[...] = np.array(flat, dtype=np.int32).reshape(-1, n)

    def subword_ids(self, word):
        if self.char_span is None:
            return np.zeros(0, dtype=np.int32)
        pieces = self.word_pieces.get(word)
        chars = pieces[0][1:] if pieces is not None else self.char_ids(word)
        return np.asarray(chars, dtype=np.int32)


# ----------------------------------------------------------------- Vocabulary
class Vocabulary:
    """Map tokens and word n-grams to integer ids.

    Ids: ``0`` is PAD, ``1`` is UNK, then the unigrams by descending count
    (ties broken alphabetically, so the result does not depend on the order
    of the corpus), then the word n-grams (``n >= 2``) by descending count,
    ties alphabetically, then (with ``char_ngram_range``) the character
    n-grams, in the same order. An n-gram is its words joined by a single
    space. With ``n_buckets``, the word and character n-grams have no ids of
    their own: they share ``n_buckets`` rows after the unigrams (see below).

    Texts are split at whitespace as ``str.split()`` splits. Every text, and
    every token given in a list, is first put in Unicode normal form NFC (then
    lower-cased with ``lowercase``, and put in NFC again), so the composed and
    the decomposed spellings of a word (``"caf\\u00e9"``, ``"cafe\\u0301"``)
    get the same id. A text holding a lone surrogate (``"\\udcff"``, as
    ``errors='surrogateescape'`` decoding leaves for undecodable bytes) is
    refused with a ValueError that names it.

    Parameters
    ----------
    min_count : int, default=1
        Keep a unigram or n-gram only if it occurs at least this often in the
        corpus given to :meth:`fit`. (With ``n_buckets``: unigrams only; every
        n-gram has its bucket.)
    max_size : int, optional
        Cap on the total number of ids, PAD and UNK included (at least 2).
        Unigrams take precedence over word n-grams, and these over character
        n-grams; the least frequent are dropped. With ``n_buckets`` the buckets
        count too, so ``max_size`` must be at least ``n_buckets + 2``, and the
        unigrams get the rest.
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
    n_buckets : int, optional
        Hash the word n-grams (``n >= 2``) and the character n-grams into this
        many shared rows, ids ``n_unigrams .. n_unigrams + n_buckets - 1``,
        instead of giving each its own id; the table then stays this size
        however many n-grams the corpus has, and an n-gram never seen in
        training still has a row. The row of an n-gram is ``n_unigrams +
        fnv1a_32(utf8) % n_buckets``, the 32-bit FNV-1a hash of its UTF-8
        bytes (as fastText places its n-grams), the same on every machine and
        in every process. Different n-grams can share a bucket.

    Attributes
    ----------
    id_to_token : list of str
        Token of each id; ``"<pad>"`` and ``"<unk>"`` for ids 0 and 1; with
        ``n_buckets``, ``"<bucket b>"`` for the bucket ``b`` (id
        ``n_unigrams + b``).
    token_to_id : dict of str to int
        The inverse map, without the two reserved tokens and without buckets
        (for reading: the encoders use their own tables, made when the
        vocabulary is fitted or loaded).
    counts : ndarray of shape (n_vocab,), int64
        Corpus count of each id; for UNK, the number of unigram occurrences
        that were left out (below ``min_count`` or beyond ``max_size``); 0
        for PAD; for a bucket, the occurrences of all the n-grams that hash
        to it (a character n-gram once per occurrence of a word holding it).
    n_unigrams : int
        Number of ids that are PAD, UNK or a unigram (ids ``0..n_unigrams-1``).
    char_offset : int
        First id of the character n-grams (``len(vocab)`` without them). A
        character n-gram may be spelled like a word (``"the"``); the two have
        different ids, and ``token_to_id`` maps words and word n-grams only.
        With ``n_buckets``: ``n_unigrams`` (no id from there on is a word).

    Notes
    -----
    A corpus token spelled ``"<pad>"`` or ``"<unk>"`` is treated as unknown
    and encoded as UNK, so PAD is never produced for a real token.

    The work per token (splitting, counting, n-grams, look-up, CSR assembly)
    is compiled and runs without the GIL (``cymlp._text``); the encoders and
    :meth:`fit` can split the texts across threads (``n_jobs``) with the same
    result as one thread.

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

    #: the compiled text path (``_ReferenceVocabulary`` sets this to False)
    _compiled = _text is not None

    def __init__(self, *, min_count=1, max_size=None, ngram_range=(1, 1), lowercase=False,
                 char_ngram_range=None, n_buckets=None):
        self.min_count = min_count
        self.max_size = max_size
        self.ngram_range = ngram_range
        self.lowercase = lowercase
        self.char_ngram_range = char_ngram_range
        self.n_buckets = n_buckets
        self._id_to_token = None
        self._token_to_id = None
        self.counts = None
        self.n_unigrams = None
        self.char_offset = None
        self._encoder = None

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
        n_buckets = self.n_buckets
        if n_buckets is not None:
            if (
                isinstance(n_buckets, bool)
                or not isinstance(n_buckets, numbers.Integral)
                or not 1 <= n_buckets <= _MAX_BUCKETS
            ):
                raise ValueError(
                    f"n_buckets must be None or an int in [1, {_MAX_BUCKETS}], got {n_buckets!r}"
                )
            if max_size is not None and max_size < n_buckets + 2:
                raise ValueError(
                    f"max_size={max_size!r} leaves no room for PAD, UNK and the "
                    f"{n_buckets} buckets: it must be at least n_buckets + 2"
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

    def _buckets(self):
        """``n_buckets`` as an int, 0 for None (after :meth:`_validate_params`)."""
        return 0 if self.n_buckets is None else int(self.n_buckets)

    def _check_fitted(self):
        if self._encoder is None:
            raise ValueError("this Vocabulary is not fitted yet: call fit(texts) first")

    # -- texts --------------------------------------------------------------

    def _prepare(self, text, i=None, strict=False):
        """A text made ready to split: a str in NFC (lower-cased with ``lowercase``),
        or, for a token list, the list of its tokens, each so. ``i`` is its index
        in the corpus, for the error messages; ``strict`` (fitting) also refuses
        empty tokens and tokens holding whitespace."""
        where = "text" if i is None else f"texts[{i}]"
        if isinstance(text, str):
            return _normalize(text, self.lowercase, where)
        if isinstance(text, (bytes, bytearray)):
            raise TypeError("texts must be str or lists of str tokens, got bytes")
        try:
            tokens = list(text)
        except TypeError:
            raise TypeError(
                f"a text must be a str or a list of str tokens, got {type(text).__name__}"
            ) from None
        for j, token in enumerate(tokens):
            if not isinstance(token, str):
                raise TypeError(f"tokens must be str, got {type(token).__name__} ({where}[{j}])")
            tokens[j] = token = _normalize(token, self.lowercase, f"{where}[{j}]")
            if strict and token.split() != [token]:
                raise ValueError(
                    f"tokens must be non-empty and hold no whitespace, got {token!r} ({where}[{j}])"
                )
        return tokens

    def _prepare_one(self, text, i):
        """:meth:`_prepare` for a text given alone (no index in the messages)."""
        return self._prepare(text)

    @staticmethod
    def _corpus(texts, what):
        """The texts as a list (after refusing a single str)."""
        if isinstance(texts, (str, bytes)):
            raise TypeError(f"{what} takes a sequence of texts, not a single str")
        return texts if type(texts) is list else list(texts)

    def _counter_type(self):
        return _text.Counter if self._compiled else _PyCounter

    def _index_type(self):
        return _text.Index if self._compiled else _PyIndex

    # -- fitting ------------------------------------------------------------

    def fit(self, texts, *, n_jobs=1):
        """Count tokens and n-grams and assign ids.

        Parameters
        ----------
        texts : iterable of (str or list of str)
            The corpus: texts (split with :func:`tokenize`) or token lists.
        n_jobs : int, default=1
            Count in this many threads (each a share of the texts, the counts
            added up: the result is the same); -1 for every core.

        Returns
        -------
        self : Vocabulary

        Raises
        ------
        ValueError
            If the corpus holds no token, a parameter is invalid, a token
            given in a list is empty or contains whitespace, or a text holds a
            lone surrogate.
        """
        lo, hi = self._validate_params()
        char_span = self._check_char_ngram_range(lo)
        n_buckets = self._buckets()
        n_jobs = _check_n_jobs(n_jobs)
        texts = self._corpus(texts, "fit")
        lo, hi = _capped(lo), _capped(hi)  # no text holds 2**31 tokens
        counter = self._count(texts, lo, hi, n_buckets, n_jobs)
        if counter.n_tokens == 0:
            raise ValueError("cannot fit a Vocabulary on an empty corpus (no tokens)")
        if char_span is not None:
            counter.count_chars(*map(_capped, char_span))
        # the frequent entries of each group by descending count, ties by token
        ranked = [counter.ranked(g, self.min_count) for g in (_WORDS, _GRAMS, _CHARS)]
        keep = [len(order) for order, _ in ranked]
        if self.max_size is not None:  # unigrams first, then word n-grams, then characters
            room = self.max_size - 2 - n_buckets
            for g in range(3):
                keep[g] = min(keep[g], max(room, 0))
                room -= keep[g]
        (words, word_counts), (grams, gram_counts), (chars, char_counts) = (
            (order[:k], counts[:k]) for (order, counts), k in zip(ranked, keep))
        n_unk = counter.n_tokens - int(word_counts.sum())  # the reserved spellings too
        n_unigrams = 2 + len(words)
        char_offset = n_unigrams + len(grams)
        if n_unigrams + n_buckets - 1 > _MAX_ID:
            raise ValueError(f"{n_unigrams} unigrams and {n_buckets} buckets exceed the "
                             f"int32 ids (at most {_MAX_ID + 1})")
        counts = [np.array([0, n_unk], dtype=np.int64), word_counts]
        if n_buckets:
            counts.append(counter.bucket_counts())
        else:
            counts += [gram_counts, char_counts]
        index = self._index_type()(lo, hi, *map(_capped, char_span or (0, 0)), n_unigrams,
                                   char_offset, n_buckets)
        for g, order, first in ((_WORDS, words, 2), (_GRAMS, grams, n_unigrams),
                                (_CHARS, chars, char_offset)):
            index.add_counted(g, counter, order, first)
        index.finish()
        # id_to_token is made from the index when first read
        self._set_tables(None, np.concatenate(counts), n_unigrams, char_offset, index)
        return self

    def _count(self, texts, lo, hi, n_buckets, n_jobs):
        """One counter over all texts (a counter per thread, then added up)."""
        counter_type = self._counter_type()
        prepare = partial(self._prepare, strict=True)

        def count(start, stop):
            counter = counter_type(lo, hi, n_buckets)
            counter.add(texts, start, stop, self.lowercase, prepare)
            return counter

        counters = _in_ranges(len(texts), n_jobs, count)
        for other in counters[1:]:
            counters[0].merge(other)
        return counters[0]

    def _build_index(self, id_to_token, n_unigrams, char_offset, index_type=None):
        """The encoder's tables from the token list (loading, or the reference path)."""
        lo, hi = self._validate_params()
        char_span = self._check_char_ngram_range(lo)
        n_buckets = self._buckets()
        index = (index_type or self._index_type())(
            _capped(lo), _capped(hi), *map(_capped, char_span or (0, 0)), n_unigrams,
            char_offset, n_buckets)
        index.add_tokens(_WORDS, id_to_token[2:n_unigrams], 2)
        if not n_buckets:
            index.add_tokens(_GRAMS, id_to_token[n_unigrams:char_offset], n_unigrams)
            index.add_tokens(_CHARS, id_to_token[char_offset:], char_offset)
        index.finish()
        return index

    def _set_tables(self, id_to_token, counts, n_unigrams, char_offset, index):
        """Swap in a fitted (or loaded) state, all at once (``id_to_token`` may be
        None: then it is made from the index when first read)."""
        self._id_to_token = None if id_to_token is None else list(id_to_token)
        self.char_offset = int(char_offset)
        self._token_to_id = None  # made when first read: the encoders do not need it
        self.counts = np.asarray(counts, dtype=np.int64)
        self.n_unigrams = int(n_unigrams)
        self._span = self._validate_params()
        self._char_span = self._check_char_ngram_range(self._span[0])
        self._encoder = index

    # Both token tables are made when first read: fitting and encoding need neither,
    # and a vocabulary with word n-grams has many entries.
    @property
    def id_to_token(self):
        """list of str: the token of each id (see the class)."""
        if self._id_to_token is None and self._encoder is not None:
            n_unigrams, char_offset = self.n_unigrams, self.char_offset
            encoder = self._encoder
            names = [_PAD_TOKEN, _UNK_TOKEN] + encoder.tokens(_WORDS, 2, n_unigrams - 2)
            if self._buckets():
                names += [f"<bucket {b}>" for b in range(self._buckets())]
            else:
                names += encoder.tokens(_GRAMS, n_unigrams, char_offset - n_unigrams)
                names += encoder.tokens(_CHARS, char_offset, len(self.counts) - char_offset)
            self._id_to_token = names
        return self._id_to_token

    @id_to_token.setter
    def id_to_token(self, names):
        self._id_to_token = names

    @property
    def token_to_id(self):
        """dict of str to int: the id of each word and word n-gram (see the class)."""
        if self._token_to_id is None and self._encoder is not None:
            names_end = self.n_unigrams if self._buckets() else self.char_offset
            self._token_to_id = dict(zip(self.id_to_token[2:names_end], range(2, names_end)))
        return self._token_to_id

    @token_to_id.setter
    def token_to_id(self, table):
        self._token_to_id = table

    # -- the reference path's look-up, reachable from outside ------------------

    def _python_encoder(self):
        """The encoder as a :class:`_PyIndex` (built from the tables if it is the
        compiled one)."""
        if not isinstance(self._encoder, _PyIndex):
            self._encoder = self._build_index(self.id_to_token, self.n_unigrams,
                                              self.char_offset, _PyIndex)
        return self._encoder

    # Code that replaces the look-up of a fitted vocabulary (a test of the id
    # checks downstream does, to simulate a damaged table) keeps working: the
    # vocabulary then encodes with the reference path, which uses these.
    @property
    def _unigram_get(self):
        return self._python_encoder().unigram_get

    @_unigram_get.setter
    def _unigram_get(self, get):
        self._python_encoder().unigram_get = get

    @property
    def _ngram_get(self):
        return self._python_encoder().ngram_get

    @_ngram_get.setter
    def _ngram_get(self, get):
        self._python_encoder().ngram_get = get

    # -- encoding -----------------------------------------------------------

    def subword_ids(self, word):
        """Ids of the known character n-grams of ``word`` (empty without
        ``char_ngram_range``; with ``n_buckets``, the buckets of all of them).

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
        return self._encoder.subword_ids(_normalize(word, self.lowercase, "word"))

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
            dropped (with ``n_buckets`` every n-gram has its bucket). With
            ``char_ngram_range``, each word's id is followed by the ids of its
            known character n-grams (see the class).
        """
        self._check_fitted()
        return self._encoder.encode_bag([text], 0, 1, self.lowercase, self._prepare_one,
                                        False)[1]

    def encode_window(self, texts, n, *, n_jobs=1):
        """Fixed-length unigram ids for the window encoder.

        Parameters
        ----------
        texts : sequence of (str or list of str)
        n : int
            Window length (``n >= 1``).
        n_jobs : int, default=1
            Encode in this many threads, each a share of the texts (the result
            is the same); -1 for every core.

        Returns
        -------
        ndarray of shape (len(texts), n), int32
            Row ``i`` holds the ids of the first ``n`` tokens of text ``i``
            (unknown words as UNK), padded with PAD; n-grams are not used.
        """
        self._check_fitted()
        texts = self._corpus(texts, "encode_window")
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"window length n must be an int >= 1, got {n!r}")
        n_jobs = _check_n_jobs(n_jobs)
        out = np.empty((len(texts), int(n)), dtype=np.int32)
        encoder = self._encoder
        _in_ranges(len(texts), n_jobs, lambda start, stop: encoder.encode_window(
            texts, start, stop, self.lowercase, self._prepare, out[start:stop]))
        return out

    def encode_bag(self, texts, *, return_shares=False, n_jobs=1):
        """Variable-length ids for the bag encoder, as CSR arrays.

        Parameters
        ----------
        texts : sequence of (str or list of str)
        return_shares : bool, default=False
            Also return each id's share of its unit.
        n_jobs : int, default=1
            Encode in this many threads, each a share of the texts (the arrays
            are the same as with one); -1 for every core.

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
        texts = self._corpus(texts, "encode_bag")
        n_jobs = _check_n_jobs(n_jobs)
        want_shares = return_shares and self._char_span is not None
        encoder = self._encoder
        parts = _in_ranges(len(texts), n_jobs, lambda start, stop: encoder.encode_bag(
            texts, start, stop, self.lowercase, self._prepare, want_shares))
        if len(parts) == 1:
            lengths, indices, shares = parts[0]
        else:
            lengths, indices = (np.concatenate([p[j] for p in parts]) for j in (0, 1))
            shares = np.concatenate([p[2] for p in parts]) if want_shares else None
        indptr = _indptr(lengths)
        if not return_shares:
            return indptr, indices
        if shares is None:
            shares = np.ones(len(indices), dtype=np.float64)
        return indptr, indices, shares

    # -- container protocol ---------------------------------------------------

    def __len__(self):
        self._check_fitted()
        return len(self.counts)

    def __contains__(self, token):
        return self._encoder is not None and token in self.token_to_id

    def __repr__(self):
        params = (
            f"min_count={self.min_count!r}, max_size={self.max_size!r}, "
            f"ngram_range={tuple(self.ngram_range)!r}, lowercase={self.lowercase!r}"
        )
        if self.char_ngram_range is not None:
            params += f", char_ngram_range={tuple(self.char_ngram_range)!r}"
        if self.n_buckets is not None:
            params += f", n_buckets={self.n_buckets!r}"
        size = "" if self._encoder is None else f", n_vocab={len(self.counts)}"
        return f"{type(self).__name__}({params}{size})"

    # -- serialisation --------------------------------------------------------

    def to_dict(self):
        """The parameters and tables as a JSON-serialisable dict.

        Returns
        -------
        dict
            Keys ``min_count``, ``max_size``, ``ngram_range``, ``lowercase``,
            ``char_ngram_range``, ``n_buckets``, ``id_to_token``, ``counts``,
            ``n_unigrams``, ``char_offset``. With ``n_buckets``, ``id_to_token``
            holds PAD, UNK and the unigrams only (the bucket names follow from
            ``n_buckets``), and ``counts`` every id, the buckets included.
        """
        self._check_fitted()
        lo, hi = self._span
        n_buckets = self._buckets()
        return {
            "min_count": int(self.min_count),
            "max_size": None if self.max_size is None else int(self.max_size),
            "ngram_range": [lo, hi],
            "lowercase": bool(self.lowercase),
            "char_ngram_range": None if self._char_span is None else list(self._char_span),
            "n_buckets": n_buckets or None,
            "id_to_token": list(self.id_to_token[:self.n_unigrams] if n_buckets
                                else self.id_to_token),
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
            ``char_offset``, are read as having no character n-grams; dicts
            without ``n_buckets`` as having no buckets.)

        Notes
        -----
        The tokens are used as stored. A vocabulary fitted before texts were
        put in NFC on a corpus with decomposed spellings keeps those entries,
        and normalised texts no longer reach them.
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
            n_buckets=d.get("n_buckets"),
        )
        vocab._validate_params()
        n_buckets = vocab._buckets()
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
        if any(_SURROGATE.search(t) for t in id_to_token):
            raise ValueError("vocabulary dict: id_to_token holds a lone surrogate")
        if n_buckets and n_unigrams != len(id_to_token):
            raise ValueError(
                "vocabulary dict: with n_buckets, id_to_token holds PAD, UNK and the "
                "unigrams only, n_unigrams entries"
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
        if not isinstance(counts, list) or len(counts) != len(id_to_token) + n_buckets:
            raise ValueError(
                "vocabulary dict: counts must be a list as long as id_to_token"
                + (" plus n_buckets" if n_buckets else "")
            )
        if (
            isinstance(n_unigrams, bool)
            or not isinstance(n_unigrams, int)
            or not 2 <= n_unigrams <= char_offset
        ):
            raise ValueError("vocabulary dict: n_unigrams must be an int in [2, char_offset]")
        if n_buckets:
            id_to_token = id_to_token + [f"<bucket {b}>" for b in range(n_buckets)]
        index = vocab._build_index(id_to_token, n_unigrams, char_offset)
        vocab._set_tables(id_to_token, counts, n_unigrams, char_offset, index)
        return vocab


class _ReferenceVocabulary(Vocabulary):
    """:class:`Vocabulary` on the pure-Python path (:class:`_PyCounter`,
    :class:`_PyIndex`): the reference the compiled path is tested against."""

    _compiled = False
