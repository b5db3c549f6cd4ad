"""Data sets for cymlp: the user's data files, generated toy problems, splits.

Everything here is pure Python and NumPy (SciPy for sparse svmlight input).
Four groups of functions:

* readers of data files: :func:`read_file` reads one labelled file in any
  format of :data:`FORMATS` (``LABEL TEXT`` lines, fastText, CSV/TSV,
  JSON Lines, numeric CSV/TSV, ``.npz``, ``.npy``, Parquet, svmlight),
  guessing the format unless told, and returns a :class:`DataFile` with the
  examples, the format used and the file's SHA-256; :func:`read_labeled_text`
  is the older reader of text files, which keeps labels as strings;
* generated data that needs no download: :func:`make_xor` (the four corners
  of the unit square, labelled by exclusive or) and
  :func:`make_negation_text` (short sentences whose sentiment is flipped by a
  negator, which a linear bag-of-words model cannot separate);
* split protocols: :func:`kfold_indices` and :func:`holdout_indices`, used by
  :func:`load` to give the train / dev / test splits of the named data sets in
  :data:`DATASETS`, and their stratified variants
  :func:`stratified_kfold_indices` and :func:`stratified_holdout_indices`;
* :func:`download` fetches the original archive of a public data set for
  users with internet access and verifies its SHA-256 checksum.

Every path is made absolute against the current directory when a reader is
called.
"""

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


def _check_random_state(random_state):
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.SeedSequence)):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    raise TypeError(
        "random_state must be None, an int or a numpy.random.Generator, "
        f"got {type(random_state).__name__}"
    )


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
        rng = _check_random_state(random_state)
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
    rng = _check_random_state(random_state)
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
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 3:
        raise ValueError(f"k must be an int >= 3 (test, dev and train folds), got {k!r}")
    if k > n:
        raise ValueError(f"k={k} folds need at least k examples, got n={n}")
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
    codes = _strata(y)
    n = len(codes)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 3:
        raise ValueError(f"k must be an int >= 3 (test, dev and train folds), got {k!r}")
    if k > n:
        raise ValueError(f"k={k} folds need at least k examples, got n={n}")
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
# Named data sets
# ---------------------------------------------------------------------------

#: The data sets :func:`load` knows. ``files`` are looked up in ``data_dir``;
#: ``sources`` are the original archives :func:`download` fetches (they are
#: not in the ``LABEL TEXT`` layout of ``files`` and need converting).
DATASETS = {
    "xor": {
        "description": "exclusive or of two binary inputs, corners with Gaussian noise 0.1",
        "files": (),
        "n_classes": 2,
        "protocol": "generated: 200 train / 100 dev / 400 test points, seeded by seed",
        "sources": (),
    },
    "negation": {
        "description": "synthetic reviews whose sentiment word a negator flips",
        "files": (),
        "n_classes": 2,
        "protocol": "generated: 4000 train / 1000 dev / 1000 test sentences, seeded by seed",
        "sources": (),
    },
    "mr": {
        "description": "MR movie-review snippets, positive/negative (Pang and Lee, 2005)",
        "files": ("rt-polarity.all",),
        "n_classes": 2,
        "protocol": (
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
        "files": ("stsa.binary.train", "stsa.binary.dev", "stsa.binary.test"),
        "n_classes": 2,
        "protocol": "train / dev / test as given",
        "sources": ("https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip",),
    },
    "trec": {
        "description": "TREC question types, 6 coarse classes (Li and Roth, 2002)",
        "files": ("TREC.train.all", "TREC.test.all"),
        "n_classes": 6,
        "protocol": "test as given; dev = a seed-0 random 10% of the training file",
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
        ``X`` is a float64 array of shape ``(n, n_features)`` for numeric
        data sets or a list of str for text; ``y`` is a 1-d array of labels,
        int64 when every label in the files is an integer, str otherwise.
    name : str
        The data set's name in :data:`DATASETS`.
    n_classes : int
        Number of classes of the data set.
    """

    train: tuple
    dev: tuple
    test: tuple
    name: str
    n_classes: int


def _labels_array(labels):
    try:
        return np.array([int(label) for label in labels], dtype=np.int64)
    except ValueError:
        return np.array(labels, dtype=str)


def _take(texts, labels, idx):
    return [texts[i] for i in idx], labels[idx]


def _data_file(name, data_dir, filename):
    if data_dir is None:
        raise FileNotFoundError(
            f"data set {name!r} is read from {filename!r}: set data_dir to the folder that holds it"
        )
    path = pathlib.Path(data_dir) / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"data set {name!r}: {path} not found; set data_dir to the folder "
            f"that holds {', '.join(DATASETS[name]['files'])}"
        )
    return path


def _read(name, data_dir, filename):
    data = read_labeled_text(_data_file(name, data_dir, filename))
    return data.texts, _labels_array(data.labels)


def _subsample(X, y, n_samples):
    """The first ``n_samples`` of a seed-0 permutation, in their original order."""
    n = len(y)
    if n_samples is None or n_samples >= n:
        return X, y
    idx = np.sort(np.random.default_rng(0).permutation(n)[:n_samples])
    if isinstance(X, np.ndarray):
        return X[idx], y[idx]
    return [X[i] for i in idx], y[idx]


def load(name, *, data_dir=None, fold=0, seed=0, n_samples=None):
    """Train, dev and test splits of a named data set.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`: ``"xor"``, ``"negation"`` (generated, no
        files needed), ``"mr"``, ``"sst2"``, ``"trec"`` (read from
        ``data_dir``).
    data_dir : str or os.PathLike, optional
        Folder holding the files of the real data sets.
    fold : int, default=0
        For ``"mr"``, the cross-validation fold in ``0..9`` (fold ``fold``
        test, ``fold + 1`` dev; see :func:`kfold_indices`, always seed 0).
        The other data sets have a single split and accept only 0.
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
    if n_samples is not None:
        n_samples = _check_n_samples(n_samples)
    seed = _check_seed(seed)
    n_folds = 10 if name == "mr" else 1
    if isinstance(fold, bool) or not isinstance(fold, numbers.Integral) or not 0 <= fold < n_folds:
        if n_folds == 1:
            raise ValueError(f"data set {name!r} has one fixed split: fold must be 0, got {fold!r}")
        raise ValueError(f"fold must be an int in [0, {n_folds}) for {name!r}, got {fold!r}")
    n_classes = DATASETS[name]["n_classes"]

    if name == "xor":
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]
        n_train = 200 if n_samples is None else n_samples
        train = make_xor(n_train, noise=0.1, random_state=rngs[0])
        dev = make_xor(100, noise=0.1, random_state=rngs[1])
        test = make_xor(400, noise=0.1, random_state=rngs[2])
        return Splits(train, dev, test, name, n_classes)

    if name == "negation":
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]
        n_train = 4000 if n_samples is None else n_samples
        train = make_negation_text(n_train, random_state=rngs[0])
        dev = make_negation_text(1000, random_state=rngs[1])
        test = make_negation_text(1000, random_state=rngs[2])
        return Splits(train, dev, test, name, n_classes)

    if name == "mr":
        texts, labels = _read(name, data_dir, "rt-polarity.all")
        train_idx, dev_idx, test_idx = kfold_indices(len(texts), 10, seed=0)[fold]
        train = _take(texts, labels, train_idx)
        dev = _take(texts, labels, dev_idx)
        test = _take(texts, labels, test_idx)
    elif name == "sst2":
        train = _read(name, data_dir, "stsa.binary.train")
        dev = _read(name, data_dir, "stsa.binary.dev")
        test = _read(name, data_dir, "stsa.binary.test")
    else:  # trec
        texts, labels = _read(name, data_dir, "TREC.train.all")
        test = _read(name, data_dir, "TREC.test.all")
        train_idx, dev_idx = holdout_indices(len(texts), dev_fraction=0.1, seed=0)
        train = _take(texts, labels, train_idx)
        dev = _take(texts, labels, dev_idx)
    train = _subsample(*train, n_samples)
    return Splits(train, dev, test, name, n_classes)


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
