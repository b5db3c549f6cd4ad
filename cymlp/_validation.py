"""Checks at the Python boundary: everything a kernel relies on is verified here.

Kernels run without bounds checks, so every array reaching them has been given the
right dtype, layout and shape here, and every index has been range-checked.
Errors say what is wrong and what to do about it.
"""
import datetime
import math
import numbers
import os
import stat
import warnings

import numpy as np

from cymlp._compat import DataConversionWarning


def _is_sparse(X):
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def is_sparse(X):
    """Whether X is a SciPy sparse matrix or array."""
    return _is_sparse(X)


def check_sparse_array(X, dtype, *, estimator="estimator", n_features=None, name="X"):
    """X (a SciPy sparse matrix) as a CSR matrix of ``dtype`` with finite values; the
    checks of :func:`check_array` on its shape (never densified)."""
    from scipy import sparse

    X = sparse.csr_matrix(X)
    if X.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {X.dtype}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, got a sparse matrix of dtype {X.dtype}")
    n, d = X.shape
    if n < 1:
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum "
                         f"of 1 is required: {name} is empty")
    if d < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
                         f"of 1 is required: {name} has no columns")
    if n_features is not None and d != n_features:
        raise ValueError(f"X has {d} features, but {estimator} is expecting {n_features} "
                         "features as input")
    with np.errstate(over="ignore"):
        out = X.astype(dtype)
    if not np.isfinite(out.data).all():
        if np.isfinite(X.data).all():
            raise ValueError(f"{name} holds values too large for {np.dtype(dtype).name}; "
                             "rescale the data or use dtype='float64'")
        raise ValueError(f"Input {name} contains NaN or infinity; remove or impute "
                         "non-finite values first")
    return out


def feature_names_of(X):
    """Column names of a DataFrame whose columns are all strings, else None."""
    cols = getattr(X, "columns", None)
    if cols is None:
        return None
    names = np.asarray(list(cols), dtype=object)
    if len(names) and all(isinstance(c, str) for c in names):
        return names
    return None


def check_array(X, dtype, *, estimator="estimator", n_features=None,
                feature_names=None, name="X"):
    """Return X as a C-contiguous, finite, 2-D array of ``dtype``.

    Accepts lists, Fortran-ordered and strided arrays, integer, boolean and float16
    data (converted). Rejects sparse, complex, non-numeric, empty, non-2-D and
    non-finite input, and a feature count other than ``n_features``.
    """
    out, _ = check_rows(X, dtype, estimator=estimator, n_features=n_features,
                        feature_names=feature_names, name=name, scan=True)
    return out


def check_rows(X, dtype, *, estimator="estimator", n_features=None, feature_names=None,
               name="X", scan=False):
    """:func:`check_array`, leaving the scan for NaN and infinity to the caller where
    that is safe: ``(out, scanned)``.

    Without ``scan`` the values are scanned only if they were converted (a value
    that overflows the conversion must be named as such, which needs the original);
    otherwise ``scanned`` is False and :func:`raise_if_non_finite` is the caller's,
    before anything reads the values (the engine checks each batch's rows as it reads
    them, which spares a pass over the whole array).
    """
    if X is None:
        raise ValueError(f"{estimator} requires {name}, got None")
    if _is_sparse(X):
        raise TypeError(
            f"{estimator} does not take sparse input here; convert {name} with "
            f"{name}.toarray()")
    names = feature_names_of(X)
    if feature_names is not None or names is not None:
        _check_feature_names(names, feature_names, estimator)
    arr = np.asarray(X)
    if np.iscomplexobj(arr):
        raise ValueError(f"Complex data not supported: {name} has dtype {arr.dtype}")
    if arr.dtype.kind in "USV":
        raise ValueError(
            f"{name} holds strings (dtype {arr.dtype}); {estimator} needs numbers "
            "(for text use cymlp.TextClassifier)")
    if arr.dtype.kind in "mM":
        raise ValueError(
            f"{name} holds dates or times (dtype {arr.dtype}); {estimator} needs numbers: "
            "convert them first (e.g. to seconds since a reference time)")
    if arr.dtype.kind not in "biuf":
        arr = _objects_to_float(arr, name, estimator)
    if arr.ndim == 1:
        raise ValueError(
            f"Expected a 2-D array for {name}, got a 1-D array of {arr.shape[0]} values. "
            "Reshape your data with X.reshape(-1, 1) for a single feature or "
            "X.reshape(1, -1) for a single sample")
    if arr.ndim != 2:
        raise ValueError(f"Expected a 2-D array for {name}, got {arr.ndim} dimensions "
                         f"(shape {arr.shape})")
    if arr.shape[0] < 1:
        raise ValueError(f"Found array with 0 sample(s) (shape={arr.shape}) while a "
                         f"minimum of 1 is required: {name} is empty")
    if arr.shape[1] < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={arr.shape}) while a "
                         f"minimum of 1 is required: {name} has no columns")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"X has {arr.shape[1]} features, but {estimator} is expecting {n_features} "
            "features as input")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not scan and arr.dtype == out.dtype:
        return out, False
    raise_if_non_finite(out, name, original=arr)
    return out, True


def raise_if_non_finite(out, name="X", original=None):
    """Raise the ValueError naming the first NaN or infinity of the 2-D float array
    ``out`` (converted from ``original``, if given: a finite value that overflowed
    the conversion is named as such); nothing if every value is finite."""
    if _all_finite(out):
        return
    arr = out if original is None else original
    bad = np.argwhere(~np.isfinite(out))[0]
    what = "NaN" if np.isnan(out[tuple(bad)]) else "infinity"
    if np.isfinite(arr[tuple(bad)]) if arr.dtype.kind == "f" else False:
        # float64 is advice only where it helps: not for a longdouble beyond it
        fits = abs(arr[tuple(bad)]) <= np.finfo(np.float64).max
        advice = " or use dtype='float64'" if fits and out.dtype != np.float64 else ""
        raise ValueError(
            f"{name} holds values too large for {out.dtype.name} "
            f"(e.g. row {bad[0]}, column {bad[1]}); rescale the data{advice}")
    raise ValueError(
        f"Input {name} contains NaN or infinity ({what} at row {bad[0]}, column "
        f"{bad[1]}); remove or impute non-finite values first")


def _objects_to_float(arr, name, estimator):
    """An object array (a DataFrame of mixed columns, numbers in lists) as float64;
    a cell that is not a number is named with its row and column."""
    try:
        return arr.astype(np.float64)  # None becomes NaN (reported with the NaNs)
    except (TypeError, ValueError, OverflowError):
        if arr.ndim != 2:
            raise
        for (i, j), v in np.ndenumerate(arr):
            if _is_missing(v) and v is not None:
                raise ValueError(
                    f"Input {name} contains missing values ({v!r} at row {i}, column {j}); "
                    "remove or impute missing values first") from None
            if _is_date(v):
                raise ValueError(
                    f"{name} holds dates or times ({type(v).__name__} at row {i}, column "
                    f"{j}); {estimator} needs numbers: convert them first (e.g. to seconds "
                    "since a reference time)") from None
            if isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)):
                try:
                    float(v)
                except OverflowError:
                    raise ValueError(
                        f"{name} holds a value too large for float64 (row {i}, column {j}: "
                        f"an integer of about {_digits(v)} digits); rescale the data"
                    ) from None
        raise  # NumPy's own message: a string that is not a number, a dict, ...


def _is_date(v):
    """Whether ``v`` is a date, a time or a duration (Python's, NumPy's, pandas')."""
    return isinstance(v, (datetime.date, datetime.time, datetime.timedelta, np.datetime64,
                          np.timedelta64))


def _digits(n):
    """The number of decimal digits of the int ``n``, about (no conversion to str,
    which Python refuses beyond 4300 digits)."""
    return int(abs(int(n)).bit_length() * math.log10(2)) + 1


def _all_finite(a, chunk_bytes=16 * 2**20, allow_inf=False):
    """np.isfinite(a).all() in row chunks: no temporary larger than ``chunk_bytes``;
    with ``allow_inf``, only NaN counts."""
    rows = max(1, chunk_bytes // max(1, a.shape[1]))
    for s in range(0, a.shape[0], rows):
        part = a[s:s + rows]
        if np.isnan(part).any() if allow_inf else not np.isfinite(part).all():
            return False
    return True


def all_finite(a, allow_inf=False):
    """Whether every value of the float array ``a`` (any shape) is finite (not NaN, with
    ``allow_inf``), checked in chunks (no temporary larger than 16 MiB)."""
    a = np.asarray(a)
    if a.size == 0:
        return True
    # A sum is NaN if any value is, and finite if every value is (no NaN, no inf)
    # unless it overflows or adds inf to -inf: one fast pass answers True for almost
    # every array, and the exact check in chunks settles the rest.
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.sum(a)
    if not np.isnan(total) if allow_inf else np.isfinite(total):
        return True
    return _all_finite(a.reshape(a.shape[0] if a.ndim > 1 else 1, -1), allow_inf=allow_inf)


def _check_feature_names(names, fitted, estimator):
    if fitted is None:
        return
    if names is None:
        warnings.warn(f"X does not have valid feature names, but {estimator} was "
                      "fitted with feature names", UserWarning, stacklevel=4)
        return
    if len(names) != len(fitted) or np.any(names != fitted):
        raise ValueError(
            "The feature names should match those that were passed during fit "
            f"(fit: {list(fitted)[:5]}..., now: {list(names)[:5]}...)")


def check_targets(y, n_samples, *, estimator="estimator"):
    """Return y as a 1-D array of labels of length ``n_samples``.

    Missing labels (None, NaN, ``pd.NA``, ``NaT``) and complex numbers are refused.
    A sequence of labels keeps the values it holds where NumPy would change them:
    Python ints stay exact (NumPy makes ``[2**63, 5]`` floats): int64, uint64, or an
    object array beyond 64 bits; strings mixed with other labels stay as they are (an
    object array; NumPy would turn ``[1, 'a']`` into ``['1', 'a']``).
    """
    if y is None:
        raise ValueError(f"{estimator} requires y to be passed, but the target y is None")
    if _is_sparse(y):
        raise TypeError("sparse targets are not supported; pass a 1-D array of labels")
    y = _label_array(y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected. "
                      "Please change the shape of y to (n_samples,), for example "
                      "using ravel().", DataConversionWarning, stacklevel=3)
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per sample), got shape {y.shape}; "
                         "multi-output classification is not supported")
    if y.shape[0] != n_samples:
        raise ValueError(f"X and y have inconsistent numbers of samples: {n_samples} "
                         f"rows in X but {y.shape[0]} labels in y")
    if y.dtype.kind == "c":
        raise ValueError(f"complex labels are not supported (y has dtype {y.dtype}); a "
                         "classifier needs class labels: integers, strings or booleans")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError("y contains NaN or infinity; every sample needs a label")
        if np.any(y != np.round(y)):
            raise ValueError("Unknown label type: continuous. y holds non-integer "
                             "floats, a regression target; a classifier needs class labels")
    if y.dtype.kind in "mM" and np.isnat(y).any():
        i = int(np.argmax(np.isnat(y)))
        raise ValueError(f"y contains missing labels (None or NaN): y[{i}] is NaT; every "
                         "sample needs a label")
    if y.dtype.kind == "O":
        _check_label_objects(y)
    return y


def is_multilabel(y):
    """Whether ``y`` holds several labels per example: a 2-D indicator matrix of 0/1
    with more than one column (scikit-learn's form), or a sequence of label collections
    (lists, tuples or sets of labels, of any lengths: the text classifier's form).
    A single column is one label per example."""
    if y is None or isinstance(y, (str, bytes)) or _is_sparse(y):
        return False
    if isinstance(y, np.ndarray) and y.dtype.kind != "O":
        return y.ndim == 2 and y.shape[1] > 1
    try:
        items = list(y)
    except TypeError:
        return False
    if not items or not all(isinstance(v, (list, tuple, set, frozenset, np.ndarray))
                            for v in items):
        return False
    lengths = {len(v) for v in items}
    return lengths != {1}


def _is_indicator(y):
    """A multi-label ``y`` given as a numeric matrix (not as label collections)."""
    if isinstance(y, np.ndarray):
        return y.dtype.kind != "O"
    items = list(y)
    if any(isinstance(v, (set, frozenset)) for v in items):
        return False
    try:
        arr = np.asarray(items)
    except ValueError:  # ragged: label lists of different lengths
        return False
    return arr.ndim == 2 and arr.dtype.kind in "biuf"


def encode_multilabel(y, n_samples, classes=None, *, estimator="estimator"):
    """(classes, Y): the labels and an int8 indicator matrix of shape (n, n_classes).

    ``y`` is an indicator matrix (classes are then its column numbers, as in
    scikit-learn) or a sequence of label collections (classes are then the sorted
    labels). With ``classes`` given, labels outside it raise ValueError naming them.
    """
    if _is_indicator(y):
        Y = np.asarray(y)
        if Y.ndim != 2 or Y.shape[0] != n_samples:
            raise ValueError(f"X and y have inconsistent numbers of samples: {n_samples} "
                             f"rows in X but y has shape {Y.shape}")
        if Y.dtype.kind not in "biuf" or not np.isin(Y, (0, 1)).all():
            raise ValueError("y must be 1-D (one label per sample) or a multi-label "
                             "indicator matrix of 0 and 1; this 2-D y holds other values: "
                             "multi-output classification is not supported")
        got = np.arange(Y.shape[1])
        if classes is not None and not np.array_equal(np.asarray(classes), got):
            raise ValueError(f"y has {Y.shape[1]} label columns, but the classes are "
                             f"{list(classes)}")
        return got, np.ascontiguousarray(Y, dtype=np.int8)
    sets = [list(labels) for labels in y]
    if len(sets) != n_samples:
        raise ValueError(f"X and y have inconsistent numbers of samples: {n_samples} "
                         f"rows in X but {len(sets)} label lists in y")
    for labels in sets:
        for v in labels:
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                raise ValueError("y contains missing labels (None or NaN)")
    if classes is None:
        flat = [v for labels in sets for v in labels]
        if not flat:
            raise ValueError("y holds no label at all")
        try:
            classes = np.unique(np.asarray(flat))
        except TypeError:
            raise ValueError("the labels of a multi-label y must be of one type "
                             "(all numbers or all strings)") from None
    lookup = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
    Y = np.zeros((n_samples, len(lookup)), dtype=np.int8)
    unseen = set()
    for i, labels in enumerate(sets):
        for v in labels:
            j = lookup.get(v.item() if isinstance(v, np.generic) else v)
            if j is None:
                unseen.add(repr(v))
            else:
                Y[i, j] = 1
    if unseen:
        raise ValueError(f"y holds labels not among the classes {list(lookup)[:10]}: "
                         f"{', '.join(sorted(unseen)[:5])}")
    return np.asarray(classes), Y


def check_sample_weight(sample_weight, n_samples, dtype, *, name="sample_weight"):
    """One finite weight >= 0 per example, as an array of ``dtype`` (a scalar is
    repeated); None stays None. At least one weight must be positive."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.ndim == 0:
        w = np.full(n_samples, w)
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(f"{name} must have one weight per sample ({n_samples}), got "
                         f"shape {w.shape}")
    if w.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, got dtype {w.dtype}")
    w = w.astype(np.float64)
    if not np.isfinite(w).all():
        raise ValueError(f"{name} contains NaN or infinity")
    if np.any(w < 0):
        raise ValueError(f"{name} must be >= 0, got {w.min()}")
    if not w.any():
        raise ValueError(f"{name} is zero for every sample: nothing to learn from")
    out = w.astype(dtype)
    if np.isinf(out).any():
        raise ValueError(f"{name} holds values too large for {np.dtype(dtype).name}")
    return out


def _label_array(y):
    """``np.asarray(y)``, but without NumPy's silent changes of a sequence of labels:
    Python ints it would make floats stay exact ints, and labels of several types it
    would turn into strings stay as they were (an object array)."""
    arr = np.asarray(y)
    if isinstance(y, np.ndarray) or arr.ndim != 1:
        return arr
    if arr.dtype.kind in "US":
        if not all(isinstance(v, (str, bytes)) for v in y):
            out = np.empty(len(arr), dtype=object)  # the labels as they were given
            out[:] = list(y)
            return out
    elif arr.dtype.kind in "fO":
        values = arr.tolist() if arr.dtype.kind == "O" else list(y)
        if values and all(isinstance(v, numbers.Integral)
                          and not isinstance(v, (bool, np.bool_)) for v in values):
            ints = [int(v) for v in values]
            low, high = min(ints), max(ints)
            if -2**63 <= low and high < 2**63:
                return np.array(ints, dtype=np.int64)
            if 0 <= low and high < 2**64:
                return np.array(ints, dtype=np.uint64)
            out = np.empty(len(ints), dtype=object)
            out[:] = ints
            return out
    return arr


def _is_missing(v):
    """None, NaN, pandas' NA and NaT, NumPy's NaT."""
    if v is None or type(v).__name__ in ("NAType", "NaTType"):
        return True
    if isinstance(v, (float, np.floating)):
        return bool(np.isnan(v))
    if isinstance(v, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(v))
    return False


def _check_label_objects(y):
    """Labels of an object array: none missing, none complex."""
    for i, v in enumerate(y.tolist()):
        if _is_missing(v):
            raise ValueError(f"y contains missing labels (None or NaN): y[{i}] is "
                             f"{v!r}; every sample needs a label")
        if isinstance(v, (float, np.floating)) and not math.isfinite(v):
            raise ValueError("y contains NaN or infinity; every sample needs a label")
        if _is_complex(v):
            raise ValueError(f"complex labels are not supported (y[{i}] is {v!r}); a "
                             "classifier needs class labels: integers, strings or booleans")


def _is_complex(v):
    return isinstance(v, numbers.Complex) and not isinstance(v, numbers.Real)


def encode_labels(y, classes=None, *, advice=None):
    """(classes, y_idx): sorted unique labels and int32 indices into them.

    With ``classes`` given (fitted, or partial_fit's ``classes``), labels outside it
    raise ValueError naming them, followed by ``advice`` (what to do about it; by
    default: pass every class to the first partial_fit, or refit).
    """
    if classes is None:
        try:
            classes, idx = np.unique(y, return_inverse=True)
        except TypeError:  # labels of mixed, unorderable types: first-seen order
            seen = {}
            idx = np.array([seen.setdefault(v, len(seen)) for v in y.tolist()])
            classes = np.empty(len(seen), dtype=object)
            classes[:] = list(seen)
        return classes, np.ascontiguousarray(idx, dtype=np.intc)
    k = len(classes)
    if (classes.dtype.kind in "iu" and y.dtype.kind in "iu" and y.size
            and classes[0] == 0 and classes[-1] == k - 1 and y.min() >= 0
            and y.max() < k):
        # the classes 0..k-1 (sorted, distinct): a label is its own index
        return np.ascontiguousarray(y, dtype=np.intc)
    if classes.dtype.kind in "iufbU" and y.dtype.kind == classes.dtype.kind:
        # sorted classes of one numeric or string kind: vectorised lookup
        pos = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
        found = classes[pos] == y
        if found.all():
            return np.ascontiguousarray(pos, dtype=np.intc)
    lookup = {}
    for i, c in enumerate(classes.tolist()):
        lookup[c] = i
    idx = np.empty(len(y), dtype=np.intc)
    unseen = []
    for i, v in enumerate(y.tolist()):
        j = lookup.get(v)
        if j is None:
            unseen.append(v)
            j = 0
        idx[i] = j
    if unseen:
        shown = sorted({repr(u) for u in unseen})[:5]
        raise ValueError(
            f"y holds labels not among the classes {classes.tolist()[:10]}: {', '.join(shown)}; "
            + (advice or "pass every class to the first partial_fit (classes=...) or refit"))
    return idx


def check_validation_data(validation_data, transform, encode_targets):
    """(inputs, targets, weights or None) of a development set ``(X_dev, y_dev)`` or
    ``(X_dev, y_dev, sample_weight_dev)``: ``transform(X_dev)`` gives the inputs,
    ``encode_targets(y_dev, n_rows)`` the targets. Errors say that they are about
    ``validation_data``."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        if isinstance(validation_data, (tuple, list)):
            got = f"a {type(validation_data).__name__} of {len(validation_data)} item(s)"
        else:
            shape = getattr(validation_data, "shape", None)
            got = type(validation_data).__name__ + ("" if shape is None
                                                    else f" of shape {shape}")
        raise ValueError("validation_data must be a pair (X_dev, y_dev) or a triple "
                         f"(X_dev, y_dev, sample_weight_dev), got {got}")
    Xv, yv = validation_data[:2]
    try:
        inputs = transform(Xv)
        targets = encode_targets(yv, len(inputs))
        weights = None
        if len(validation_data) == 3:
            weights = check_sample_weight(validation_data[2], len(inputs), np.float64,
                                          name="sample_weight_dev")
        return inputs, targets, weights
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"validation_data: {exc}") from None


def check_score_weights(sample_weight, n_samples):
    """``sample_weight`` of ``score``: ``n_samples`` finite weights >= 0, not all 0
    (the weighted accuracy is otherwise undefined, 0/0)."""
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight must hold one weight per sample ({n_samples}), "
                         f"got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("sample_weight must hold finite weights >= 0")
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to 0: the weighted accuracy is undefined; "
                         "give at least one sample a positive weight")
    return w


# ----------------------------------------------------------------------- parameters
def _as_real(name, value, kind):
    """``value`` as an int or a float, or ValueError naming ``name``."""
    kinds = (numbers.Integral,) if kind is int else (numbers.Real,)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kinds):
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'},"
                         f" got {value!r}")
    if kind is int:
        value = int(value)
        if not -2**63 <= value < 2**63:
            raise ValueError(f"{name} must fit in a 64-bit integer, got {_show_int(value)}")
        return value
    try:
        out = float(value)
    except OverflowError:  # an int beyond the float range
        raise ValueError(f"{name} must be finite, got {_show_int(value)}, too large for "
                         "a float") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _show_int(n):
    """An int for a message: its digits, or their number if there are many."""
    digits = _digits(n)
    return str(int(n)) if digits <= 30 else f"an integer of about {digits} digits"


class Interval:
    """A numeric parameter constraint: type and open/closed bounds."""

    def __init__(self, kind, low=None, high=None, closed="both"):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def check(self, name, value):
        """The value as an int or float; ValueError naming ``name`` if out of bounds."""
        value = _as_real(name, value, self.kind)
        lo_ok = self.low is None or (value >= self.low if self.closed in ("both", "left")
                                     else value > self.low)
        hi_ok = self.high is None or (value <= self.high if self.closed in ("both", "right")
                                      else value < self.high)
        if not (lo_ok and hi_ok):
            left = "[" if self.closed in ("both", "left") else "("
            right = "]" if self.closed in ("both", "right") else ")"
            lo = "-inf" if self.low is None else self.low
            hi = "inf" if self.high is None else self.high
            raise ValueError(f"{name} must be in {left}{lo}, {hi}{right}, got {value!r}")
        return value


def check_params(estimator, constraints):
    """Validate every parameter of ``estimator`` against ``constraints``.

    Values are Interval, a tuple of allowed strings, ``bool`` or a callable
    ``rule(name, value)`` raising ValueError. Returns a dict of the validated values
    (ints and floats converted, sequences made tuples), which is what fitting reads:
    the estimator's own attributes are never read again during a fit.
    """
    out = {}
    for name, rule in constraints.items():
        value = getattr(estimator, name)
        if isinstance(rule, Interval):
            value = rule.check(name, value)
        elif isinstance(rule, tuple):
            if not isinstance(value, str) or value not in rule:
                raise ValueError(f"{name} must be one of {list(rule)}, got {value!r}")
        elif rule is bool:
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {value!r}")
            value = bool(value)
        else:
            result = rule(name, value)
            value = value if result is None else result
        out[name] = value
    return out


def check_epsilon(epsilon, dtype, solver):
    """Adam's and Adagrad's ``epsilon`` must be a normal number of the training dtype.

    The update divides by ``sqrt(v) + epsilon``; an epsilon that is 0 (or subnormal) in
    ``dtype`` turns the update of a parameter whose gradient has always been 0 (a
    constant column, a dead unit) into 0/0 = NaN.
    """
    if solver not in ("adam", "adagrad"):
        return
    tiny = float(np.finfo(dtype).tiny)
    if epsilon < tiny:
        other = ("" if dtype == "float64" or epsilon < float(np.finfo(np.float64).tiny)
                 else " or dtype='float64'")
        raise ValueError(
            f"epsilon={epsilon!r} is below the smallest normal {dtype} number ({tiny:.3g}): "
            f"in {dtype} it becomes 0 or subnormal, and {solver}'s update "
            "g / (sqrt(v) + epsilon) is then 0/0 = NaN for a parameter whose gradient is 0; "
            f"use epsilon >= {tiny:.3g}{other}")


def check_hidden_sizes(name, value):
    """hidden_layer_sizes: an int or a list/tuple/array of positive ints (may be empty)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        sizes = [value]
    elif isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray)
                                              and value.ndim == 1):
        sizes = list(value)
    else:
        # a generator or an iterator would be used up by this check: refuse it
        raise ValueError(f"{name} must hold positive integers: an int, or a list or tuple "
                         f"of ints, got {type(value).__name__} {value!r}")
    for s in sizes:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral) or s < 1:
            raise ValueError(f"{name} must hold positive integers, got {value!r}")
        if s >= 2**63:
            raise ValueError(f"{name} must hold positive integers that fit in 64 bits, got "
                             f"{_show_int(s)}")
    return tuple(int(s) for s in sizes)


class InvalidParameterError(ValueError, TypeError):
    """A parameter of the wrong type (a ValueError, as scikit-learn's parameter checks
    raise, and a TypeError, as a type mismatch is)."""
def open_regular(path):
    """``(fd, kind)``: a read-only descriptor on ``path`` and what it is, None for a
    regular file, else ``'a directory'``, ``'a character device'``, ``'a FIFO'``, ...

    The file is opened without blocking (a FIFO does not wait for a writer) and its
    type taken from the descriptor, so a path swapped after a check cannot deceive the
    caller; the descriptor is blocking again when returned. OSError (a missing file, a
    link loop, no permission) propagates; the caller closes the descriptor.
    """
    flags = os.O_RDONLY
    for name in ("O_NONBLOCK", "O_CLOEXEC", "O_BINARY"):
        flags |= getattr(os, name, 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    if stat.S_ISREG(mode):
        return fd, None
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISSOCK, "a socket"))
    return fd, next((kind for test, kind in kinds if test(mode)), "not a regular file")


def available_memory():
    """Bytes a new allocation can use, about, or None if unknown: MemAvailable of
    ``/proc/meminfo`` (free memory and the page cache the kernel can reclaim), else the
    free physical pages."""
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return None


def check_random_state(name, value):
    """None, an int >= 0, a NumPy ``Generator`` or ``SeedSequence``, or a legacy
    ``RandomState``: the one check of a random state in cymlp."""
    if value is None or isinstance(value, (np.random.Generator, np.random.RandomState,
                                           np.random.SeedSequence)):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        if value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value}")
        return int(value)
    raise InvalidParameterError(f"{name} must be None, an int or a numpy Generator, got "
                                f"{value!r}")


def make_rng(random_state):
    """A NumPy ``Generator`` from a value :func:`check_random_state` accepts.

    A ``Generator`` is used as it is (and advanced); a legacy ``RandomState`` seeds a
    new one from one draw.
    """
    random_state = check_random_state("random_state", random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    return np.random.default_rng(random_state)
