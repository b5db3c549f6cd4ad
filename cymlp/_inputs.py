"""The one input type of the compiled engine, validated once when it is made.

* :class:`DenseInputs`: rows of numeric features ``X`` (the MLP's ``f``);
* :class:`SparseInputs`: the same rows as a CSR matrix, never densified: the engine
  multiplies the first layer from the nonzeros;
* :class:`TokenInputs`: token ids for the embedding encoders, either a fixed window
  per example (``ids`` of shape ``(n, window)``) or a bag per example in CSR form
  (``indptr``, ``ids`` and optional per-id ``weights``).

The arrays are converted to the exact dtype and layout the kernels read, checked
(ids >= 0; row pointers rising from 0 to ``len(ids)``; finite token weights) and held
as read-only views, so that the engine only has to compare a few numbers (the feature count,
the largest id) with its own shape before it indexes them without bounds checks.
The estimators' encoders make these objects; nothing else unpacks their arrays.
"""
import numpy as np

from cymlp._validation import raise_if_non_finite

__all__ = ["DenseInputs", "SparseInputs", "TokenInputs"]


def _frozen(array, dtype, ndim, name):
    """A read-only C-contiguous view of ``array`` in ``dtype`` (a copy only if needed)."""
    out = np.ascontiguousarray(array, dtype=dtype).view()
    if out.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {out.shape}")
    out.flags.writeable = False
    return out


class _Inputs:
    """What every input type answers. ``finite``: whether every value is known to be
    finite (checked when the object was made, unless it says otherwise)."""

    finite = True

    def check_finite(self):
        """Raise the ValueError naming a NaN or infinity among the values; the values
        of this type were checked when it was made."""


class DenseInputs(_Inputs):
    """``n`` rows of ``n_features`` numeric features, float32 or float64.

    ``finite``: whether X is known to be free of NaN and infinity (the estimators'
    ``check_rows`` scanned it). If not, :meth:`check_finite` scans it before X is
    read by anything but training, and the engine checks each batch's rows as it
    reads them (a NaN could not make it read out of bounds, but would be trained on).
    """

    kind = "dense"

    def __init__(self, X, *, finite=True, _trusted=False):
        if _trusted:  # an already frozen array (a row subset of validated inputs)
            self.X = X
        else:
            X = np.asarray(X)
            if X.dtype not in (np.float32, np.float64):
                raise TypeError(f"DenseInputs: X must be float32 or float64, got {X.dtype}")
            self.X = _frozen(X, X.dtype, 2, "X")
        self.finite = bool(finite)
        self.n, self.n_features = self.X.shape
        self.dtype = self.X.dtype

    def check_finite(self):
        """Raise the ValueError of ``check_array`` (naming the first bad value) if X
        holds a NaN or an infinity; scan X only once."""
        if not self.finite:
            raise_if_non_finite(self.X)
            self.finite = True

    def take(self, rows):
        """The inputs of ``rows`` (an index array), in that order (X is checked first,
        so that a bad value is named by its row in X)."""
        self.check_finite()
        X = self.X[np.asarray(rows, dtype=np.intp)]
        X.flags.writeable = False
        return DenseInputs(X, _trusted=True)

    def max_tokens(self, batch_size):
        """Token occurrences in the largest batch: none for dense rows."""
        return 0

    def __len__(self):
        return self.n


class SparseInputs(_Inputs):
    """``n`` rows of ``n_features`` numeric features in CSR form, float32 or float64.

    Parameters
    ----------
    X : scipy.sparse matrix or array
        CSR (any other sparse format is converted); duplicate entries are summed.
    dtype : numpy dtype
        Precision of the values (the model's dtype).
    """

    kind = "sparse"

    def __init__(self, X, dtype, *, _trusted=False):
        if _trusted:
            self.indptr, self.indices, self.data, self.n_features = X
        else:
            from scipy import sparse

            X = sparse.csr_matrix(X)
            X.sum_duplicates()
            self.indptr = _frozen(X.indptr, np.intp, 1, "indptr")
            self.indices = _frozen(X.indices, np.intc, 1, "indices")
            self.data = _frozen(X.data, dtype, 1, "data")
            self.n_features = X.shape[1]
            p = self.indptr
            if p.shape[0] < 1 or p[0] != 0 or p[-1] != len(self.indices) or np.any(np.diff(p) < 0):
                raise ValueError("SparseInputs: indptr must rise from 0 to the number of "
                                 "stored values")
            if self.indices.size and (self.indices.min() < 0
                                      or self.indices.max() >= self.n_features):
                raise ValueError(f"SparseInputs: column indices must lie in "
                                 f"[0, {self.n_features})")
        self.n = self.indptr.shape[0] - 1
        self.dtype = self.data.dtype

    def take(self, rows):
        """The inputs of ``rows`` (an index array), in that order."""
        rows = np.asarray(rows, dtype=np.intp)
        lengths = np.diff(self.indptr)[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.intp)
        np.cumsum(lengths, out=indptr[1:])
        take = np.repeat(self.indptr[rows] - indptr[:-1], lengths) + np.arange(
            indptr[-1], dtype=np.intp)
        arrays = [indptr, self.indices[take], self.data[take]]
        for a in arrays:
            a.flags.writeable = False
        return SparseInputs((*arrays, self.n_features), None, _trusted=True)

    def max_tokens(self, batch_size):
        return 0

    def __len__(self):
        return self.n


class TokenInputs(_Inputs):
    """Token ids of ``n`` examples: a window of ids each, or a bag of ids each.

    Parameters
    ----------
    ids : array of int
        ``(n, window)`` for the window encoder; the concatenated bags for the bag
        encoder (with ``indptr``).
    indptr : array of int, optional
        CSR row pointers of the bags, ``n + 1`` entries rising from 0 to ``len(ids)``.
    weights : array of float, optional
        One weight per id of a bag (token weights, subword shares), in ``dtype``.
    dtype : numpy dtype
        Precision of ``weights`` (the model's dtype).
    n_vocab : int, optional
        Rows of the embedding table: ids must lie in ``[0, n_vocab)``.
    """

    def __init__(self, ids, indptr=None, weights=None, *, dtype=np.float64, n_vocab=None,
                 _trusted=False):
        if _trusted:
            self.ids, self.indptr, self.weights = ids, indptr, weights
        else:
            if ids is None:
                raise ValueError("TokenInputs needs token ids")
            bag = indptr is not None
            self.ids = _frozen(ids, np.intc, 1 if bag else 2, "ids")
            self.indptr = None if not bag else _frozen(indptr, np.intp, 1, "indptr")
            self.weights = None
            if weights is not None:
                if not bag:
                    raise ValueError("TokenInputs: weights apply to bags only")
                self.weights = _frozen(weights, dtype, 1, "weights")
            self._check(n_vocab)
        self.kind = "window" if self.indptr is None else "bag"
        self.n = self.ids.shape[0] if self.indptr is None else self.indptr.shape[0] - 1
        self.window = self.ids.shape[1] if self.indptr is None else 0
        self.max_id = int(self.ids.max()) if self.ids.size else 0
        self.min_id = int(self.ids.min()) if self.ids.size else 0

    def _check(self, n_vocab):
        if self.ids.size:
            lo, hi = self.ids.min(), self.ids.max()
            if lo < 0 or (n_vocab is not None and hi >= n_vocab):
                raise ValueError(f"token ids must lie in [0, {n_vocab or 'n_vocab'}); got "
                                 f"ids from {lo} to {hi}")
        if self.indptr is not None:
            p = self.indptr
            if (p.shape[0] < 1 or p[0] != 0 or p[-1] != self.ids.shape[0]
                    or np.any(np.diff(p) < 0)):
                raise ValueError("TokenInputs: indptr must rise from 0 to len(ids)")
        if self.weights is not None:
            if self.weights.shape != self.ids.shape:
                raise ValueError("TokenInputs: weights must have one entry per id")
            if not np.isfinite(self.weights).all():
                raise ValueError("TokenInputs: weights hold NaN or infinity")

    @property
    def lengths(self):
        """Number of ids of each example (the window for every window example)."""
        if self.indptr is None:
            return np.full(self.n, self.window, dtype=np.intp)
        return np.diff(self.indptr)

    def take(self, rows):
        """The inputs of ``rows`` (an index array), in that order."""
        rows = np.asarray(rows, dtype=np.intp)
        if self.indptr is None:
            return self._trusted(self.ids[rows], None, None)
        lengths = self.lengths[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.intp)
        np.cumsum(lengths, out=indptr[1:])
        # positions of the kept ids: each row's start repeated, plus 0..length-1
        starts = np.repeat(self.indptr[rows] - indptr[:-1], lengths)
        take = starts + np.arange(indptr[-1], dtype=np.intp)
        weights = None if self.weights is None else self.weights[take]
        return self._trusted(self.ids[take], indptr, weights)

    def dropout(self, p, rng, pad=0):
        """Each id left out of its bag (window: replaced by ``pad``) with probability ``p``."""
        if self.indptr is None:
            ids = self.ids.copy()
            ids[rng.random(ids.shape) < p] = pad
            return self._trusted(ids, None, None)
        keep = rng.random(len(self.ids)) >= p
        rows = np.repeat(np.arange(self.n), self.lengths)
        indptr = np.zeros_like(self.indptr)
        np.cumsum(np.bincount(rows[keep], minlength=self.n), out=indptr[1:])
        weights = None if self.weights is None else self.weights[keep]
        return self._trusted(self.ids[keep], indptr, weights)

    def max_tokens(self, batch_size):
        """Token occurrences in the largest possible batch of ``batch_size`` examples."""
        lengths = self.lengths
        if len(lengths) <= batch_size:
            return int(lengths.sum())
        return int(np.partition(lengths, len(lengths) - batch_size)[-batch_size:].sum())

    @staticmethod
    def _trusted(ids, indptr, weights):
        for a in (ids, indptr, weights):
            if a is not None:
                a.flags.writeable = False
        return TokenInputs(ids, indptr, weights, _trusted=True)

    def __len__(self):
        return self.n
