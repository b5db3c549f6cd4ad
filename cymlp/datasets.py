"""Data sets for cymlp: the user's data files, generated toy problems, splits.

Everything here is pure Python and NumPy (SciPy for sparse svmlight input).
Five groups of functions:

* readers of data files: :func:`read_file` reads one labelled file in any
  format of :data:`FORMATS` (``LABEL TEXT`` lines, fastText, CSV/TSV,
  JSON Lines, numeric CSV/TSV, ``.npz``, ``.npy``, Parquet, svmlight),
  guessing the format unless told, and returns a :class:`DataFile` with the
  examples, the format used and the file's SHA-256; :func:`read_labeled_text`
  is the older reader of text files, which keeps labels as strings;
* splits of a user's data set: :func:`load_files` builds the train / dev /
  test :class:`Splits` from given files, from stratified k-fold
  cross-validation (:func:`stratified_kfold_indices`) or from a stratified
  held-out fraction (:func:`stratified_holdout_indices`);
* generated data that needs no download: :func:`make_xor` (the four corners
  of the unit square, labelled by exclusive or) and
  :func:`make_negation_text` (short sentences whose sentiment is flipped by a
  negator, which a linear bag-of-words model cannot separate);
* the built-in data sets: the registry :data:`DATASETS` says each one's kind,
  files and split protocol, and :func:`load` gives its splits, following the
  published protocols :func:`kfold_indices` and :func:`holdout_indices`;
* :func:`download` fetches the original archive of a public data set for
  users with internet access and verifies its SHA-256 checksum.

Every path is made absolute against the current directory when a function is
called, so a relative ``data_dir`` keeps working if the caller later changes
directory. ``docs/data.md`` is the user's guide to all of this.
"""

import functools
import hashlib
import math
import numbers
import os
import pathlib
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass, field

import numpy as np

from cymlp._datafiles import (
    FORMATS,
    DataFile,
    DataFormatError,
    DataWarning,
    _absolute,
    _decode_lines,
    _parse_label_text,
    _parse_text_table,
    _read_bytes,
    _warn_repairs,
    guess_format,
    read_file,
)
from cymlp._validation import make_rng

__all__ = [
    "DATASETS",
    "FORMATS",
    "ChecksumError",
    "DataFile",
    "DataFormatError",
    "DataWarning",
    "LabeledText",
    "Splits",
    "download",
    "guess_format",
    "holdout_indices",
    "kfold_indices",
    "load",
    "load_files",
    "make_negation_text",
    "make_xor",
    "read_file",
    "read_labeled_text",
    "stratified_holdout_indices",
    "stratified_kfold_indices",
]


class ChecksumError(OSError):
    """A downloaded file does not have the expected SHA-256 checksum."""


# ---------------------------------------------------------------------------
# Reading labelled text files (labels kept as strings)
# ---------------------------------------------------------------------------


@dataclass
class LabeledText:
    """Texts and labels read from one file.

    Attributes
    ----------
    texts : list of str
        One text per example, in file order.
    labels : list of str
        The label of each example as written in the file.
    path : pathlib.Path
        The file that was read (absolute).
    n_repaired : int
        Number of lines that were not valid UTF-8 and were decoded as cp1252
        (bytes undefined in cp1252 as Latin-1).
    repaired_lines : list of int
        The 1-based line numbers of those lines.
    """

    texts: list
    labels: list
    path: pathlib.Path
    n_repaired: int = 0
    repaired_lines: list = field(default_factory=list)

    def __len__(self):
        return len(self.texts)


_FORMATS = ("label_text", "tsv", "csv")


def read_labeled_text(
    path,
    *,
    fmt="label_text",
    text_column="text",
    label_column="label",
    delimiter=None,
    encoding="utf-8",
):
    """Read a file of labelled texts, keeping every label as the string written.

    :func:`read_file` reads more formats and applies the label rule; this
    function reads the same text formats the same way but returns the labels
    as strings.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.
    fmt : {"label_text", "tsv", "csv"}, default="label_text"
        ``"label_text"``: one example per ``\\n``-terminated line, written
        ``LABEL TEXT``; the label is the first whitespace-delimited field and
        the text is the rest of the line (the whitespace after the label and
        the trailing ``\\r`` removed). A line with a label and no text gives
        an empty text; an empty line is an error.
        ``"tsv"`` and ``"csv"``: a header row naming the columns, then one
        example per row, read with the :mod:`csv` module (TSV without
        quoting, CSV with the RFC 4180 double-quote rules); surrounding
        whitespace is stripped from labels, texts are kept as written.
    text_column, label_column : str, default="text", "label"
        Header names of the text and label columns (``"tsv"``/``"csv"``).
    delimiter : str or None, default=None
        Field delimiter for ``"tsv"``/``"csv"``; None means a tab for TSV and
        a comma for CSV.
    encoding : str, default="utf-8"
        Encoding tried first for every line. A line that does not decode is
        decoded as cp1252 (bytes undefined there as Latin-1), counted in
        ``n_repaired``, and one :class:`DataWarning` summarises the repairs.

    Returns
    -------
    LabeledText
        ``texts`` and ``labels`` (lists of str, one per example, file order),
        and the repair record.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DataFormatError
        If the file is empty, or a line is malformed (empty line, missing
        column, wrong number of fields, empty label, header without rows);
        the message names the file and the 1-based line number.
    ValueError
        If ``fmt`` is not one of the supported formats.

    Notes
    -----
    Lines are split at ``\\n`` only (never at other line-break characters
    that a decoded line may contain), so every line of the file is exactly one
    example and the line numbers in messages match ``wc -l`` and editors.
    """
    if fmt not in _FORMATS:
        raise ValueError(f"fmt must be one of {_FORMATS}, got {fmt!r}")
    path, data = _read_bytes(path)
    lines, repaired = _decode_lines(data, encoding)
    if fmt == "label_text":
        texts, labels = _parse_label_text(lines, path)
    else:
        if delimiter is None:
            delimiter = "\t" if fmt == "tsv" else ","
        texts, labels = _parse_text_table(lines, path, fmt, delimiter, text_column, label_column)
    _warn_repairs(path, repaired, encoding, stacklevel=2)
    return LabeledText(
        texts=texts,
        labels=labels,
        path=path,
        n_repaired=len(repaired),
        repaired_lines=repaired,
    )


# ---------------------------------------------------------------------------
# Generated data
# ---------------------------------------------------------------------------


def _check_n_samples(n_samples, minimum=1):
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral):
        raise TypeError(f"n_samples must be an int, got {type(n_samples).__name__}")
    if n_samples < minimum:
        raise ValueError(f"n_samples must be >= {minimum}, got {n_samples}")
    return int(n_samples)


_XOR_CORNERS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
_XOR_LABELS = np.array([0, 1, 1, 0])


def make_xor(n_samples=4, *, noise=0.0, random_state=None):
    """The exclusive-or problem: corners of the unit square.

    Row ``i`` is corner ``i % 4`` of ``(0, 0), (0, 1), (1, 0), (1, 1)`` with
    label ``x1 XOR x2`` (``0, 1, 1, 0``), plus Gaussian noise of standard
    deviation ``noise`` on both coordinates. With the defaults this is the
    four-point table that no linear model can fit and a network with one
    hidden layer of two units can.

    Parameters
    ----------
    n_samples : int, default=4
        Number of points; the corners are repeated in turn.
    noise : float, default=0.0
        Standard deviation of the Gaussian noise added to the coordinates.
    random_state : None, int or numpy.random.Generator, default=None
        Seed or generator for the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
    """
    n_samples = _check_n_samples(n_samples)
    noise = float(noise)
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    corner = np.arange(n_samples) % 4
    X = _XOR_CORNERS[corner].copy()
    y = _XOR_LABELS[corner].astype(np.int64)
    if noise > 0:
        rng = make_rng(random_state)
        X += rng.normal(0.0, noise, size=X.shape)
    return X, y


_POSITIVE = (
    "good",
    "great",
    "excellent",
    "wonderful",
    "superb",
    "brilliant",
    "enjoyable",
    "delightful",
)
_NEGATIVE = (
    "bad",
    "awful",
    "terrible",
    "boring",
    "dull",
    "poor",
    "dreadful",
    "mediocre",
)
_NEGATORS = ("not", "never", "hardly")
_SUBJECTS = (
    "movie",
    "film",
    "plot",
    "story",
    "acting",
    "script",
    "cast",
    "ending",
    "soundtrack",
    "dialogue",
)
_DETERMINERS = ("the", "this", "that")
_VERBS = ("was", "is", "seemed", "felt")
_ADVERBS = ("", "really", "quite", "truly", "so")
_OPENERS = ("", "honestly", "overall", "i think", "to be fair")
_CLOSERS = ("", "in the end", "to me", "i guess", "at all times")


def make_negation_text(n_samples=2000, *, random_state=None):
    """Short reviews whose sentiment a negator flips.

    Each sentence is built from a template::

        [opener] DET SUBJECT VERB [NEGATOR] [adverb] SENTIMENT [closer]

    e.g. ``"honestly the plot was not really good to me"``. SENTIMENT is one
    word drawn from 8 positive or 8 negative words, NEGATOR one of
    ``not, never, hardly``; the remaining words are neutral filler.

    The label is ``1`` (positive) when the sentiment word is positive and not
    negated or negative and negated, ``0`` otherwise: the exclusive or of
    "positive word" and "negated". Polarity and negation are drawn
    independently with probability 1/2 and the filler independently of both,
    so every word, the negators included, is as frequent in one class as in
    the other. A linear model on unigram counts therefore stays near chance,
    while a model that combines words non-linearly (an MLP on unigram
    embeddings) can separate the classes almost perfectly.

    Parameters
    ----------
    n_samples : int, default=2000
        Number of sentences.
    random_state : None, int or numpy.random.Generator, default=None
        Seed or generator.

    Returns
    -------
    texts : list of str
        Space-separated, lower-case sentences.
    y : ndarray of shape (n_samples,), int64
        The labels, 0 or 1.
    """
    n_samples = _check_n_samples(n_samples)
    rng = make_rng(random_state)
    positive = rng.random(n_samples) < 0.5
    negated = rng.random(n_samples) < 0.5
    y = (positive ^ negated).astype(np.int64)

    def pick(words):
        return rng.integers(len(words), size=n_samples)

    choices = {
        "opener": pick(_OPENERS),
        "det": pick(_DETERMINERS),
        "subject": pick(_SUBJECTS),
        "verb": pick(_VERBS),
        "adverb": pick(_ADVERBS),
        "negator": pick(_NEGATORS),
        "sentiment": rng.integers(len(_POSITIVE), size=n_samples),
        "closer": pick(_CLOSERS),
    }
    texts = []
    for i in range(n_samples):
        words = [
            _OPENERS[choices["opener"][i]],
            _DETERMINERS[choices["det"][i]],
            _SUBJECTS[choices["subject"][i]],
            _VERBS[choices["verb"][i]],
            _NEGATORS[choices["negator"][i]] if negated[i] else "",
            _ADVERBS[choices["adverb"][i]],
            (_POSITIVE if positive[i] else _NEGATIVE)[choices["sentiment"][i]],
            _CLOSERS[choices["closer"][i]],
        ]
        texts.append(" ".join(w for w in words if w))
    return texts, y


# ---------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _check_folds(k, n):
    """k must be an int with 3 <= k <= n (a test, a dev and a training fold)."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 3:
        raise ValueError(f"k must be an int >= 3 (test, dev and train folds), got {k!r}")
    if k > n:
        raise ValueError(f"k={k} folds need at least k examples, got n={n}")


def kfold_indices(n, k=10, *, seed=0):
    """Train / dev / test indices of k-fold cross-validation.

    The protocol: permute ``range(n)`` with
    ``np.random.default_rng(seed).permutation(n)``, cut the permutation into
    ``k`` nearly equal consecutive folds (:func:`numpy.array_split`: the
    first ``n % k`` folds have one more item); for fold ``f``, fold ``f`` is
    the test set, fold ``(f + 1) % k`` the dev set and the other ``k - 2``
    folds, concatenated in fold order, the training set.

    Parameters
    ----------
    n : int
        Number of examples.
    k : int, default=10
        Number of folds, ``3 <= k <= n``.
    seed : int, default=0
        Seed of the permutation.

    Returns
    -------
    list of (train_idx, dev_idx, test_idx)
        ``k`` triples of int64 index arrays; over the ``k`` folds every index
        is in exactly one test set and exactly one dev set.
    """
    n = _check_n_samples(n)
    _check_folds(k, n)
    perm = np.random.default_rng(_check_seed(seed)).permutation(n)
    folds = np.array_split(perm, k)
    splits = []
    for f in range(k):
        dev_fold = (f + 1) % k
        train = np.concatenate([folds[g] for g in range(k) if g not in (f, dev_fold)])
        splits.append((train, folds[dev_fold], folds[f]))
    return splits


def holdout_indices(n, *, dev_fraction=0.1, seed=0):
    """Split ``range(n)`` into a training and a dev part.

    ``perm = np.random.default_rng(seed).permutation(n)``; the first
    ``round(n * dev_fraction)`` items of ``perm`` are the dev set, the rest
    the training set (both in permutation order).

    Parameters
    ----------
    n : int
        Number of examples, at least 2.
    dev_fraction : float, default=0.1
        Fraction held out, in ``(0, 1)``; at least one example goes to each
        part.
    seed : int, default=0
        Seed of the permutation.

    Returns
    -------
    train_idx, dev_idx : ndarray of int64
    """
    n = _check_n_samples(n, minimum=2)
    dev_fraction = float(dev_fraction)
    if not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in (0, 1), got {dev_fraction}")
    n_dev = min(max(int(round(n * dev_fraction)), 1), n - 1)
    perm = np.random.default_rng(_check_seed(seed)).permutation(n)
    return perm[n_dev:], perm[:n_dev]


def _strata(y):
    """The stratum of each example as an int: its class, or its label set (multi-label)."""
    if isinstance(y, np.ndarray) and y.ndim == 1:
        return np.unique(y, return_inverse=True)[1].reshape(-1).astype(np.int64)
    if len(y) and isinstance(y[0], (list, tuple)):
        keys = {}
        return np.array(
            [keys.setdefault(tuple(sorted(set(labels))), len(keys)) for labels in y],
            dtype=np.int64,
        )
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D labels (or a list of label lists), got shape {y.shape}")
    return _strata(y)


def _class_order(codes, perm):
    """``perm`` stably sorted by class: each class's items stay in permutation order."""
    return perm[np.argsort(codes[perm], kind="stable")]


def stratified_kfold_indices(y, k=10, *, seed=0):
    """Train / dev / test indices of stratified k-fold cross-validation.

    The protocol: ``perm = np.random.default_rng(seed).permutation(n)``;
    ``perm`` is sorted stably by class (classes in sorted label order, each
    class's items in permutation order) and the ``i``-th item of that order
    goes to fold ``i % k``; a fold lists its items in permutation order. For
    fold ``f``, fold ``f`` is the test set, fold ``(f + 1) % k`` the dev set
    and the other ``k - 2`` folds, concatenated in fold order, the training
    set, as in :func:`kfold_indices`.

    Each class's items are dealt out in turn, so every fold holds
    ``floor(n_c / k)`` or ``ceil(n_c / k)`` items of a class of ``n_c``
    items (within one example of its share), and fold sizes differ by at
    most one.

    Parameters
    ----------
    y : array-like of shape (n,), or list of label lists
        The labels. With multi-label lists, the stratum of an example is its
        set of labels.
    k, seed : int
        As in :func:`kfold_indices`.

    Returns
    -------
    list of (train_idx, dev_idx, test_idx)
        As :func:`kfold_indices` returns them.
    """
    codes = _strata(y)
    n = len(codes)
    _check_folds(k, n)
    perm = np.random.default_rng(_check_seed(seed)).permutation(n)
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[_class_order(codes, perm)] = np.arange(n) % k
    folds = [perm[fold_of[perm] == f] for f in range(k)]
    splits = []
    for f in range(k):
        dev_fold = (f + 1) % k
        train = np.concatenate([folds[g] for g in range(k) if g not in (f, dev_fold)])
        splits.append((train, folds[dev_fold], folds[f]))
    return splits


def _check_fractions(fractions):
    if isinstance(fractions, numbers.Real) and not isinstance(fractions, bool):
        fractions = (fractions,)
    try:
        fractions = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ValueError(f"fractions must be a number or a sequence of numbers, "
                         f"got {fractions!r}") from None
    if not fractions or not all(0.0 < f < 1.0 for f in fractions) or sum(fractions) >= 1.0:
        raise ValueError(f"fractions must each be in (0, 1) and sum to less than 1, "
                         f"got {fractions}")
    return fractions


def stratified_holdout_indices(y, fractions=0.1, *, seed=0):
    """Hold out stratified random parts of a data set.

    For each fraction ``f_j`` the part holds ``max(round(n * f_j), 1)``
    examples, and each class of ``n_c`` examples gives it
    ``floor(n_c * f_j)`` or ``ceil(n_c * f_j)`` of them: the classes with
    the largest remainders ``n_c * f_j - floor(n_c * f_j)`` (ties in sorted
    label order) give the extra one, until the part has its size. The
    examples are taken from each class in the order of
    ``np.random.default_rng(seed).permutation(n)``: the first ones go to the
    first part, the next ones to the second, the rest stay.

    Parameters
    ----------
    y : array-like of shape (n,), or list of label lists
        The labels (with label lists, an example's stratum is its label set).
    fractions : float or sequence of float, default=0.1
        The size of each held-out part as a fraction of ``n``; each in
        ``(0, 1)``, summing to less than 1.
    seed : int, default=0
        Seed of the permutation.

    Returns
    -------
    tuple of ndarray of int64
        ``(rest_idx, part_idx, ...)``: the examples left, then one index array
        per fraction, each in permutation order. With one fraction this is
        ``(train_idx, dev_idx)``, as :func:`holdout_indices` returns.
    """
    codes = _strata(y)
    n = len(codes)
    fractions = _check_fractions(fractions)
    sizes = [max(int(round(n * f)), 1) for f in fractions]
    if sum(sizes) > n - 1:
        raise ValueError(
            f"{n} example(s) are too few to hold out parts of {sizes} and keep one to train on"
        )
    counts = np.bincount(codes)
    capacity = counts.copy()
    taken = np.zeros((len(counts), len(fractions)), dtype=np.int64)
    for j, (f, size) in enumerate(zip(fractions, sizes)):
        share = counts * f
        base = np.minimum(np.floor(share).astype(np.int64), capacity)
        extra = size - int(base.sum())
        for c in np.argsort(-(share - np.floor(share)), kind="stable"):
            if extra <= 0:
                break
            if capacity[c] > base[c] and base[c] < math.ceil(share[c]):
                base[c] += 1
                extra -= 1
        taken[:, j] = base
        capacity -= base

    perm = np.random.default_rng(_check_seed(seed)).permutation(n)
    order = _class_order(codes, perm)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[codes[order]]
    part_of = np.full(n, -1, dtype=np.int64)
    bounds = np.cumsum(taken, axis=1)
    for j in range(len(fractions)):
        part_of[(part_of == -1) & (rank < bounds[codes, j])] = j
    in_order = part_of[perm]
    return (perm[in_order == -1],) + tuple(perm[in_order == j] for j in range(len(fractions)))


# ---------------------------------------------------------------------------
# The built-in data sets: one registry
# ---------------------------------------------------------------------------

#: The registry of the data sets :func:`load` knows; other code (the command
#: line, the workflow) reads names, files and protocols from here. Each entry:
#:
#: ``description``
#:     One line for people.
#: ``kind``
#:     ``"text"`` (X is a list of str) or ``"numeric"`` (a float64 array).
#: ``format``
#:     The :data:`FORMATS` key its files are read as; None when generated.
#: ``files``
#:     The file names looked up in ``data_dir``, in the order train, dev, test
#:     (as many as there are); empty when generated.
#: ``n_classes``
#:     Number of classes.
#: ``n_folds``
#:     How many values ``fold`` takes: ``k`` for cross-validation, else 1.
#: ``protocol``
#:     The split, a dict whose ``"split"`` says which:
#:     ``{"split": "generated", "n_train", "n_dev", "n_test"}`` (sizes of the
#:     generated parts, seeded by ``seed``);
#:     ``{"split": "cv", "file", "k", "seed", "stratified"}`` (fold f test,
#:     fold f+1 dev, the rest train; :func:`kfold_indices`);
#:     ``{"split": "given", "train", "dev", "test"}`` (one file each);
#:     ``{"split": "holdout", "train", "test", "dev_fraction", "seed",
#:     "stratified"}`` (dev taken out of the training file;
#:     :func:`holdout_indices`).
#: ``protocol_text``
#:     The protocol in words.
#: ``sources``
#:     The original archives :func:`download` fetches (they are not in the
#:     ``LABEL TEXT`` layout of ``files`` and need converting).
DATASETS = {
    "xor": {
        "description": "exclusive or of two binary inputs, corners with Gaussian noise 0.1",
        "kind": "numeric",
        "format": None,
        "files": (),
        "n_classes": 2,
        "n_folds": 1,
        "protocol": {"split": "generated", "n_train": 200, "n_dev": 100, "n_test": 400},
        "protocol_text": "generated: 200 train / 100 dev / 400 test points, seeded by seed",
        "sources": (),
    },
    "negation": {
        "description": "synthetic reviews whose sentiment word a negator flips",
        "kind": "text",
        "format": None,
        "files": (),
        "n_classes": 2,
        "n_folds": 1,
        "protocol": {"split": "generated", "n_train": 4000, "n_dev": 1000, "n_test": 1000},
        "protocol_text": "generated: 4000 train / 1000 dev / 1000 test sentences, seeded by seed",
        "sources": (),
    },
    "mr": {
        "description": "MR movie-review snippets, positive/negative (Pang and Lee, 2005)",
        "kind": "text",
        "format": "label_text",
        "files": ("rt-polarity.all",),
        "n_classes": 2,
        "n_folds": 10,
        "protocol": {
            "split": "cv",
            "file": "rt-polarity.all",
            "k": 10,
            "seed": 0,
            "stratified": False,
        },
        "protocol_text": (
            "10-fold cross-validation over a seed-0 permutation: "
            "fold k test, fold k+1 dev, the rest train"
        ),
        "sources": (
            "https://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz",
        ),
    },
    "sst2": {
        "description": (
            "SST-2, Stanford Sentiment Treebank, binary sentence labels (Socher et al., 2013)"
        ),
        "kind": "text",
        "format": "label_text",
        "files": ("stsa.binary.train", "stsa.binary.dev", "stsa.binary.test"),
        "n_classes": 2,
        "n_folds": 1,
        "protocol": {
            "split": "given",
            "train": "stsa.binary.train",
            "dev": "stsa.binary.dev",
            "test": "stsa.binary.test",
        },
        "protocol_text": "train / dev / test as given",
        "sources": ("https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip",),
    },
    "trec": {
        "description": "TREC question types, 6 coarse classes (Li and Roth, 2002)",
        "kind": "text",
        "format": "label_text",
        "files": ("TREC.train.all", "TREC.test.all"),
        "n_classes": 6,
        "n_folds": 1,
        "protocol": {
            "split": "holdout",
            "train": "TREC.train.all",
            "test": "TREC.test.all",
            "dev_fraction": 0.1,
            "seed": 0,
            "stratified": False,
        },
        "protocol_text": "test as given; dev = a seed-0 random 10% of the training file",
        "sources": (
            "https://cogcomp.seas.upenn.edu/Data/QA/QC/train_5500.label",
            "https://cogcomp.seas.upenn.edu/Data/QA/QC/TREC_10.label",
        ),
    },
}


@dataclass
class Splits:
    """Train, dev and test parts of a data set.

    Attributes
    ----------
    train, dev, test : tuple (X, y)
        ``X`` is a list of str for text, a float64 array of shape
        ``(n, n_features)`` for numeric data, or a float64 CSR matrix for
        svmlight files; ``y`` is a 1-d array of labels, int64 when every label
        in the files is a canonical integer, str otherwise (with
        multi-label files, a list of label lists).
    name : str
        The data set's name in :data:`DATASETS`, or the name given to
        :func:`load_files`.
    n_classes : int
        Number of classes of the data set.
    kind : {"text", "numeric"}
    format : str or None
        The :data:`FORMATS` key the files were read as (formats joined by
        ``+`` if the files differ); None for generated data.
    sha256 : dict
        Absolute path of every file read -> hex SHA-256 of its bytes.
    split : dict
        How the parts were made: the protocol (``"split"``: ``"generated"``,
        ``"cv"``, ``"given"`` or ``"holdout"``) with its parameters, the
        fold and seed, and the files by role.
    """

    train: tuple
    dev: tuple
    test: tuple
    name: str
    n_classes: int
    kind: str = None
    format: str = None
    sha256: dict = field(default_factory=dict)
    split: dict = field(default_factory=dict)


def _take(X, y, idx):
    """Rows ``idx`` of a part: X a list, an array or a CSR matrix; y an array or a list."""
    X = [X[i] for i in idx] if isinstance(X, list) else X[idx]
    y = [y[i] for i in idx] if isinstance(y, list) else y[idx]
    return X, y


def _subsample(X, y, n_samples):
    """The first ``n_samples`` of a seed-0 permutation, in their original order."""
    n = len(y)
    if n_samples is None or n_samples >= n:
        return X, y
    return _take(X, y, np.sort(np.random.default_rng(0).permutation(n)[:n_samples]))


def _unify_labels(ys):
    """The label rule over several files: strings everywhere if any file has them.

    An int64 label came from a canonical integer, so ``str`` gives back what
    was written.
    """
    if all(isinstance(y, np.ndarray) for y in ys):
        if any(y.dtype.kind in "UO" for y in ys):
            return [y.astype(str) if y.dtype.kind == "i" else y for y in ys]
        return ys
    if any(isinstance(label, str) for y in ys for labels in y for label in labels):
        return [[[str(label) for label in labels] for labels in y] for y in ys]
    return ys


def _n_classes(ys):
    if all(isinstance(y, np.ndarray) for y in ys):
        return len(np.unique(np.concatenate(ys)))
    return len({label for y in ys for labels in y for label in labels})


def _data_file(name, data_dir, filename):
    if data_dir is None:
        raise FileNotFoundError(
            f"data set {name!r} is read from {filename!r}: set data_dir to the folder that holds it"
        )
    path = data_dir / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"data set {name!r}: {path} not found; set data_dir to the folder "
            f"that holds {', '.join(DATASETS[name]['files'])}"
        )
    return path


def _check_fold(fold, n_folds, name):
    if isinstance(fold, bool) or not isinstance(fold, numbers.Integral) or not 0 <= fold < n_folds:
        if n_folds == 1:
            raise ValueError(f"data set {name!r} has one fixed split: fold must be 0, got {fold!r}")
        raise ValueError(f"fold must be an int in [0, {n_folds}) for {name!r}, got {fold!r}")
    return int(fold)


def _generated(name, protocol, seed, n_samples):
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]
    n_train = protocol["n_train"] if n_samples is None else n_samples
    if name == "xor":
        make = functools.partial(make_xor, noise=0.1)
    else:
        make = make_negation_text
    train = make(n_train, random_state=rngs[0])
    dev = make(protocol["n_dev"], random_state=rngs[1])
    test = make(protocol["n_test"], random_state=rngs[2])
    return train, dev, test


def load(name, *, data_dir=None, fold=0, seed=0, n_samples=None):
    """Train, dev and test splits of a built-in data set.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`: ``"xor"``, ``"negation"`` (generated, no
        files needed), ``"mr"``, ``"sst2"``, ``"trec"`` (read from
        ``data_dir``).
    data_dir : str or os.PathLike, optional
        Folder holding the files of the real data sets (made absolute against
        the current directory when called).
    fold : int, default=0
        For a cross-validated data set (``"mr"``), the fold in
        ``0..n_folds-1`` (fold ``fold`` test, ``fold + 1`` dev; see
        :func:`kfold_indices`, always seed 0). The other data sets have a
        single split and accept only 0.
    seed : int, default=0
        Seed of the generated data sets. The splits of the real data sets do
        not depend on it (they are fixed by the published protocol).
    n_samples : int, optional
        Use only this many training examples: the size of the generated
        training set, or, for a real data set, the first ``n_samples`` of a
        seed-0 permutation of its training part (kept in original order).
        Dev and test are never reduced.

    Returns
    -------
    Splits
        With ``kind``, ``format``, the SHA-256 of every file read and the
        ``split`` protocol.

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the valid names), or
        ``fold`` is out of range.
    FileNotFoundError
        If a real data set is asked for without ``data_dir``, or a file is
        missing there.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid names: {sorted(DATASETS)}")
    info = DATASETS[name]
    protocol = info["protocol"]
    if n_samples is not None:
        n_samples = _check_n_samples(n_samples)
    seed = _check_seed(seed)
    fold = _check_fold(fold, info["n_folds"], name)
    if data_dir is not None:
        data_dir = _absolute(data_dir)
    split = dict(protocol, fold=fold)

    if protocol["split"] == "generated":
        train, dev, test = _generated(name, protocol, seed, n_samples)
        return Splits(train, dev, test, name, info["n_classes"], kind=info["kind"],
                      split=dict(split, seed=seed))

    sha256 = {}

    def read(filename):
        data = read_file(_data_file(name, data_dir, filename), format=info["format"])
        sha256[str(data.path)] = data.sha256
        return data.X, data.y

    if protocol["split"] == "cv":
        X, y = read(protocol["file"])
        train_idx, dev_idx, test_idx = kfold_indices(len(y), protocol["k"],
                                                     seed=protocol["seed"])[fold]
        parts = [_take(X, y, idx) for idx in (train_idx, dev_idx, test_idx)]
    elif protocol["split"] == "given":
        parts = [read(protocol[role]) for role in ("train", "dev", "test")]
    else:  # holdout
        X, y = read(protocol["train"])
        test = read(protocol["test"])
        train_idx, dev_idx = holdout_indices(len(y), dev_fraction=protocol["dev_fraction"],
                                             seed=protocol["seed"])
        parts = [_take(X, y, train_idx), _take(X, y, dev_idx), test]
    ys = _unify_labels([y for _, y in parts])
    parts = [(X, y) for (X, _), y in zip(parts, ys)]
    train = _subsample(*parts[0], n_samples)
    return Splits(train, parts[1], parts[2], name, info["n_classes"], kind=info["kind"],
                  format=info["format"], sha256=sha256, split=split)


# ---------------------------------------------------------------------------
# The user's own data sets
# ---------------------------------------------------------------------------

_ROLES = ("train", "dev", "test")


def _holdout_fractions(holdout, given):
    """``holdout`` -> {role: fraction} for the parts taken out of the training file."""
    if holdout is None:
        return {}
    if isinstance(holdout, dict):
        unknown = set(holdout) - {"dev", "test"}
        if unknown:
            raise ValueError(f"holdout keys must be 'dev' and/or 'test', got {sorted(unknown)}")
        fractions = dict(holdout)
    else:
        fractions = {role: holdout for role in ("dev", "test") if role not in given}
        if not fractions:
            raise ValueError("holdout= has nothing to hold out: dev and test files are given")
    for role, fraction in fractions.items():
        if role in given:
            raise ValueError(f"both {role}= and a holdout fraction for {role!r} were given")
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
            raise ValueError(f"holdout fraction for {role!r} must be a number, got {fraction!r}")
    _check_fractions(tuple(fractions.values()))
    return {role: float(fractions[role]) for role in ("dev", "test") if role in fractions}


def _align_sparse(files, auto_base, n_features):
    """One width (and, for ``zero_based="auto"``, one index base) for svmlight files."""
    import scipy.sparse

    Xs = [f.X for f in files]
    if auto_base and not any(X.nnz and X.indices.min() == 0 for X in Xs):
        Xs = [X[:, 1:] if X.shape[1] else X for X in Xs]  # no index 0 anywhere: one-based
    width = max(X.shape[1] for X in Xs)
    if n_features is not None:
        if width > n_features:
            raise DataFormatError(
                f"feature index {width - 1} (zero-based) does not fit n_features={n_features}"
            )
        width = n_features
    return [
        scipy.sparse.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], width))
        for X in Xs
    ]


def _check_same_features(files):
    first = files[0]
    for other in files[1:]:
        if first.X.shape[1] != other.X.shape[1]:
            raise DataFormatError(
                f"{other.path} has {other.X.shape[1]} feature column(s) but {first.path} "
                f"has {first.X.shape[1]}"
            )
        if first.feature_names and other.feature_names and (
            first.feature_names != other.feature_names
        ):
            raise DataFormatError(
                f"{other.path} has feature columns {other.feature_names} but {first.path} "
                f"has {first.feature_names}; the columns must match in name and order"
            )


def load_files(
    train,
    dev=None,
    test=None,
    *,
    format=None,
    text_column=None,
    label_column=None,
    multilabel="auto",
    cv=None,
    fold=0,
    holdout=None,
    seed=0,
    n_samples=None,
    name=None,
    **read_options,
):
    """Train, dev and test splits of the user's own data files.

    The parts come from one of three protocols:

    * given files: ``train``, ``dev`` and ``test`` are read as they are, in
      file order;
    * ``cv=k``: stratified k-fold cross-validation of the ``train`` file alone
      (:func:`stratified_kfold_indices` with ``seed``): fold ``fold`` is the
      test set, fold ``fold + 1`` the dev set, the rest the training set;
    * ``holdout``: each part not given as a file is a stratified random
      fraction of the ``train`` file (:func:`stratified_holdout_indices`
      with ``seed``; dev first, then test).

    The same arguments give the same splits on every run.

    Parameters
    ----------
    train : str or os.PathLike
        The training file (with ``cv``, the whole data set).
    dev, test : str or os.PathLike, optional
        Dev and test files. A part that is neither given nor held out (nor
        made by ``cv``) is an error.
    format, text_column, label_column, multilabel
        As for :func:`read_file`, applied to every file (the format is
        guessed per file when None). With ``multilabel="auto"``, when one
        file is multi-label every file's labels become lists (a single-label
        file's label ``a`` is the list ``[a]``), so the parts agree.
    cv : int, optional
        Number of folds (at least 3).
    fold : int, default=0
        The fold, in ``[0, cv)``; only with ``cv``.
    holdout : float or dict, optional
        A fraction of the training file for each missing part (``0.1``), or
        a fraction per part (``{"dev": 0.1, "test": 0.2}``).
    seed : int, default=0
        Seed of the ``cv`` and ``holdout`` permutations.
    n_samples : int, optional
        Keep only this many training examples (the first ``n_samples`` of a
        seed-0 permutation of the training part, in their original order).
    name : str, optional
        The data set's name in the result; default the training file's stem.
    **read_options
        Further options of :func:`read_file` (``label_prefix``,
        ``delimiter``, ``x_key``, ``y_key``, ``zero_based``, ``n_features``,
        ``encoding``). With svmlight files and ``zero_based="auto"``, index 0
        in any file makes every file zero-based, and all files get the same
        width.

    Returns
    -------
    Splits
        With ``kind``, ``format``, the SHA-256 of every file read and the
        ``split`` used.

    Raises
    ------
    ValueError
        For inconsistent split options (the message says which).
    DataFormatError
        If a file is malformed, or the files disagree (text and numeric,
        different feature columns).
    """
    paths = {role: _absolute(p) for role, p in zip(_ROLES, (train, dev, test)) if p is not None}
    seed = _check_seed(seed)
    if n_samples is not None:
        n_samples = _check_n_samples(n_samples)
    if cv is not None:
        if isinstance(cv, bool) or not isinstance(cv, numbers.Integral) or cv < 3:
            raise ValueError(f"cv must be an int >= 3 (test, dev and train folds), got {cv!r}")
        if len(paths) > 1 or holdout is not None:
            raise ValueError("cv= splits the train file alone into train, dev and test: "
                             "pass neither dev=, test= nor holdout= with it")
        fold = _check_fold(fold, cv, name or paths["train"].stem)
        fractions = {}
    else:
        if fold != 0:
            raise ValueError(f"fold={fold!r} applies only with cv=")
        fractions = _holdout_fractions(holdout, set(paths))
        for role in ("dev", "test"):
            if role not in paths and role not in fractions:
                raise ValueError(
                    f"no {role} part: pass {role}=FILE, holdout= (a fraction of the "
                    "training file) or cv=K (cross-validation of the training file)"
                )

    zero_based = read_options.get("zero_based", "auto")
    n_features = read_options.get("n_features")
    if zero_based == "auto":  # decided below over all files together
        read_options = dict(read_options, zero_based=True, n_features=None)
    files = {
        role: read_file(path, format=format, text_column=text_column,
                        label_column=label_column, multilabel=multilabel, **read_options)
        for role, path in paths.items()
    }
    parts = list(files.values())
    kinds = {f.kind for f in parts}
    if len(kinds) > 1:
        raise DataFormatError(
            "the files hold different kinds of data: "
            + ", ".join(f"{f.path} {f.kind} ({f.format})" for f in parts)
        )
    Xs = [f.X for f in parts]
    n_sparse = sum(f.format == "svmlight" for f in parts)
    if 0 < n_sparse < len(parts):
        raise DataFormatError(
            "svmlight (sparse) files cannot be mixed with dense files: "
            + ", ".join(f"{f.path} ({f.format})" for f in parts)
        )
    if n_sparse:
        Xs = _align_sparse(parts, zero_based == "auto", n_features)
    elif kinds == {"numeric"}:
        _check_same_features(parts)
    ys = [f.y for f in parts]
    if any(isinstance(y, list) for y in ys):  # one multi-label file: lists everywhere
        ys = [y if isinstance(y, list) else [[label] for label in y.tolist()] for y in ys]
    ys = _unify_labels(ys)
    data = {role: (X, y) for role, X, y in zip(files, Xs, ys)}

    formats = list(dict.fromkeys(f.format for f in parts))
    split = {"files": {role: str(f.path) for role, f in files.items()}}
    if cv is not None:
        X, y = data["train"]
        train_idx, dev_idx, test_idx = stratified_kfold_indices(y, cv, seed=seed)[fold]
        data = {role: _take(X, y, idx)
                for role, idx in zip(_ROLES, (train_idx, dev_idx, test_idx))}
        split.update({"split": "cv", "k": cv, "fold": fold, "seed": seed, "stratified": True})
    elif fractions:
        X, y = data["train"]
        rest, *held = stratified_holdout_indices(y, tuple(fractions.values()), seed=seed)
        data["train"] = _take(X, y, rest)
        for role, idx in zip(fractions, held):
            data[role] = _take(X, y, idx)
        split.update({"split": "holdout", "seed": seed, "stratified": True})
        split.update({f"{role}_fraction": f for role, f in fractions.items()})
    else:
        split["split"] = "given"
    train_part = _subsample(*data["train"], n_samples)
    return Splits(
        train_part,
        data["dev"],
        data["test"],
        name if name is not None else paths["train"].stem,
        _n_classes([data[role][1] for role in _ROLES]),
        kind=kinds.pop(),
        format="+".join(formats),
        sha256={str(f.path): f.sha256 for f in parts},
        split=split,
    )



# ---------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------

_CHUNK = 1 << 20


def _sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url, dest_dir, sha256, timeout):
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https", "file"):
        raise ValueError(f"url must be http, https or file, got {url!r}")
    filename = os.path.basename(urllib.parse.unquote(parsed.path))
    if filename in ("", ".", ".."):
        raise ValueError(f"cannot tell a file name from url {url!r}")
    target = dest_dir / filename
    if sha256 is not None and target.is_file() and _sha256_of(target) == sha256:
        return target

    tmp = dest_dir / f".{filename}.{os.getpid()}.{os.urandom(4).hex()}.part"
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "xb") as out:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if sha256 is not None and got != sha256:
            raise ChecksumError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}; "
                "the download is corrupt or the file changed upstream "
                f"(nothing was written to {target})"
            )
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    if sha256 is None:
        warnings.warn(
            f"{target}: no checksum to verify against; sha256 of the fetched file "
            f"is {got} (pass sha256= to pin it)",
            DataWarning,
            stacklevel=3,
        )
    return target


def download(name, dest_dir, *, url=None, sha256=None, timeout=60.0):
    """Fetch the original file(s) of a public data set.

    Each file is streamed to a temporary file in ``dest_dir``, its SHA-256
    checked, then moved into place with :func:`os.replace`, so ``dest_dir``
    never holds a partial or unverified file under the final name. A file
    already present with the expected checksum is not fetched again.

    The originals are the publishers' archives, not the one-example-a-line
    files :func:`load` reads; they need converting before :func:`load` can use
    them.

    Parameters
    ----------
    name : str
        A data set in :data:`DATASETS` with sources (``"mr"``, ``"sst2"``,
        ``"trec"``), or any name when ``url`` is given.
    dest_dir : str or os.PathLike
        Folder to write to; created if missing.
    url : str, optional
        Fetch this URL (http, https or file) instead of the known sources.
    sha256 : str, optional
        Expected hex SHA-256 of the file (only with ``url``, or for a data
        set with a single source). Without it the file is kept and a
        :class:`DataWarning` reports its checksum so it can be pinned.
    timeout : float, default=60.0
        Network timeout in seconds.

    Returns
    -------
    list of pathlib.Path
        The files written, one per source (TREC has two).

    Raises
    ------
    ChecksumError
        If the fetched file does not match ``sha256``; nothing is kept.
    ValueError
        If ``name`` is unknown (without ``url``) or has nothing to download.
    urllib.error.URLError
        If the file cannot be fetched.
    """
    if url is None:
        if name not in DATASETS:
            raise ValueError(f"unknown data set {name!r}; valid names: {sorted(DATASETS)}")
        urls = DATASETS[name]["sources"]
        if not urls:
            raise ValueError(f"data set {name!r} is generated: there is nothing to download")
        if sha256 is not None and len(urls) != 1:
            raise ValueError(
                f"data set {name!r} has {len(urls)} source files; pass url= with sha256="
            )
    else:
        urls = (url,)
    if sha256 is not None:
        sha256 = str(sha256).lower()
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    dest_dir = pathlib.Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    return [_fetch(u, dest_dir, sha256, timeout) for u in urls]
