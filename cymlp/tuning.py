"""Hyper-parameters and model families chosen on development data, within a time budget.

:func:`autotune` tries configurations of one or more *families* of models, scores each
on development data that never includes a test set, and returns the best one, fitted:

* ``'bag'``: :class:`~cymlp.TextClassifier` with the bag encoder (n-grams, embedding
  width, pooling, idf or naive-Bayes token weights, subwords, hashed buckets, token
  dropout) under zero to two hidden layers;
* ``'window'``: :class:`~cymlp.TextClassifier` with the window encoder;
* ``'tfidf'``: :class:`~cymlp.features.TextPipeline`, TF-IDF or naive-Bayes weighted
  n-gram features into an :class:`~cymlp.MLPClassifier` (none or one hidden layer);
* ``'mlp'``: :class:`~cymlp.MLPClassifier` on numeric features;

each optionally as a :class:`~cymlp.ensemble.SeedEnsemble`. ``'text'`` is the first
three. Every trial trains with early stopping on the development data, which chooses the
number of epochs. The search is random sampling from fixed priors (the same for every
data set: ``docs/autotune.md``) after a few fixed starting configurations, with
successive-halving pruning of trials that score poorly after their first epochs
(``search='random'``), or optuna's TPE sampler with its successive-halving pruner
(``search='tpe'``, needs optuna). ``docs/autotune.md`` gives the space, the priors, the
budget semantics, what is deterministic, and the measurements that chose the
defaults.
"""
import copy
import json
import math
import numbers
import sys
import time
import warnings

import numpy as np
from scipy import sparse

from cymlp._compat import clone
from cymlp._tuned import check_budget
from cymlp._validation import (
    check_random_state,
    check_targets,
    encode_labels,
    encode_multilabel,
    is_multilabel,
)
from cymlp.ensemble import SeedEnsemble, label_hits
from cymlp.io import jsonable as _jsonable
from cymlp.features import TextPipeline, TfidfFeatures
from cymlp.mlp import MLPClassifier
from cymlp.text import TextClassifier

__all__ = ["FAMILIES", "SEARCHES", "AutotuneResult", "autotune", "autotune_splits",
           "sample_configuration"]

#: the model families, and the name of all text families
FAMILIES = ("bag", "window", "tfidf", "mlp")
TEXT_FAMILIES = ("bag", "window", "tfidf")

#: the search strategies
SEARCHES = ("random", "tpe")

#: what a trial can end as
STATUSES = ("complete", "pruned", "failed", "timeout")

#: how the returned model is trained once the search has chosen
REFITS = ("train", "train+dev")

#: successive halving: a trial is scored after these epochs of its first fit, and
#: stopped unless it is in the best 1 / REDUCTION of the trials scored there so far
#: (once MIN_REPORTS have been)
RUNGS = (1, 3)
REDUCTION = 3
MIN_REPORTS = 6

#: the most one trial may take (share of the budget); the margin on the estimate of the
#: refit's time (a fit as long as the trial's, scaled to the larger data)
TRIAL_SHARE = 0.25
REFIT_MARGIN = 1.2

#: no trial starts in the last share of the budget
START_MARGIN = 0.03

#: the most of the budget the search keeps back for the ensemble stage: when the
#: chosen configuration trains slowly, growing its ensemble to ``ensembles`` members
#: would otherwise leave next to no time to search
ENSEMBLE_SHARE = 0.25

#: the blend stage: the best completed trials besides the chosen one whose fold models
#: are kept, to be tried as additions to the chosen model (best first; then the best
#: trial of each family not among them)
BLEND_POOL = 4

#: epochs and patience of the trials of each family (early stopping on dev)
FIT_SETTINGS = {
    "bag": {"max_iter": 30, "n_iter_no_change": 3},
    "window": {"max_iter": 30, "n_iter_no_change": 3},
    "tfidf": {"max_iter": 50, "n_iter_no_change": 3},
    "mlp": {"max_iter": 200, "n_iter_no_change": 5},
}

#: the configurations every search starts with (the same for every data set): the
#: defaults of TextClassifier, and logistic regression on NBSVM's features
STARTS = {
    "bag": [{}],
    "window": [],
    "tfidf": [{"tfidf.tf": "binary", "tfidf.weights": "nb"}],
    "mlp": [{}],
}


class _Pruned(Exception):
    """Raised by the epoch hook: the trial scores too low at a rung."""


class _OutOfTime(Exception):
    """Raised by the epoch hook: the budget is spent."""


# ----------------------------------------------------------------------------- space
class _Suggester:
    """Draws one configuration: each call names a dimension, its options or range,
    its prior and its default; ``values`` keeps what was drawn. Subclasses decide how
    a value is chosen (random from the prior, optuna, fixed)."""

    def __init__(self, pinned=None):
        self.pinned = pinned or {}
        self.values = {}

    def choice(self, name, options, weights, default, param=None):
        """One of ``options`` (a dict of label to value; labels are str or int)."""
        if param is not None and param in self.pinned:
            return self.pinned[param]
        labels = list(options)
        label = self._choice(name, labels, np.asarray(weights, dtype=float), default)
        self.values[name] = label
        return options[label]

    def log_uniform(self, name, low, high, default, param=None):
        """A number in ``[low, high]``, uniform in its logarithm."""
        if param is not None and param in self.pinned:
            return self.pinned[param]
        value = float(self._log_uniform(name, low, high, default))
        self.values[name] = value
        return value

    def uniform(self, name, low, high, default, param=None):
        if param is not None and param in self.pinned:
            return self.pinned[param]
        value = float(self._uniform(name, low, high, default))
        self.values[name] = value
        return value

    def pinned_or(self, param, make):
        """The pinned value of ``param``, or ``make()``."""
        return self.pinned[param] if param in self.pinned else make()


class _RandomSuggester(_Suggester):
    """Values drawn from the priors with a NumPy generator; ``fixed`` values (a starting
    configuration) are taken as given, and with ``defaults_only`` every other
    dimension takes its default."""

    def __init__(self, rng, pinned=None, fixed=None, defaults_only=False):
        super().__init__(pinned)
        self.rng = rng
        self.fixed = fixed or {}
        self.defaults_only = defaults_only

    def _given(self, name, default):
        if name in self.fixed:
            return True, self.fixed[name]
        if self.defaults_only:
            return True, default
        return False, None

    def _choice(self, name, labels, weights, default):
        given, value = self._given(name, default)
        if given:
            if value not in labels:
                raise ValueError(f"{name} must be one of {labels}, got {value!r}")
            return value
        return labels[self.rng.choice(len(labels), p=weights / weights.sum())]

    def _log_uniform(self, name, low, high, default):
        given, value = self._given(name, default)
        if given:
            return value
        return math.exp(self.rng.uniform(math.log(low), math.log(high)))

    def _uniform(self, name, low, high, default):
        given, value = self._given(name, default)
        if given:
            return value
        return self.rng.uniform(low, high)


class _OptunaSuggester(_Suggester):
    """Values from an optuna trial (its sampler ignores the priors' weights: a
    categorical dimension starts uniform there)."""

    def __init__(self, trial, pinned=None):
        super().__init__(pinned)
        self.trial = trial

    def _choice(self, name, labels, weights, default):
        return self.trial.suggest_categorical(name, labels)

    def _log_uniform(self, name, low, high, default):
        return self.trial.suggest_float(name, low, high, log=True)

    def _uniform(self, name, low, high, default):
        return self.trial.suggest_float(name, low, high)


def _flag_then(s, name, on_weight, low, high, default, *, log, param):
    """0 with probability ``1 - on_weight``, else a number in [low, high]."""
    if param in s.pinned:
        return s.pinned[param]
    on = s.choice(f"{name}.on", {"no": False, "yes": True}, (1 - on_weight, on_weight),
                  "yes" if default else "no")
    if not on:
        return 0.0
    draw = s.log_uniform if log else s.uniform
    return draw(name, low, high, default or low)


def _network(s, family, depth_weights, widths, width_weights, width_default,
             depth_default=1):
    """hidden_layer_sizes, activation, bias (zero to two hidden layers of one width)."""
    def sizes():
        depth = s.choice(f"{family}.depth", {0: 0, 1: 1, 2: 2}, depth_weights, depth_default)
        if depth == 0:
            return ()
        width = s.choice(f"{family}.width", {w: w for w in widths}, width_weights,
                         width_default)
        return (width,) * depth
    hidden = s.pinned_or("hidden_layer_sizes", sizes)
    out = {"hidden_layer_sizes": tuple(hidden)}
    if len(out["hidden_layer_sizes"]):
        out["activation"] = s.choice(
            f"{family}.activation", {a: a for a in ("relu", "gelu", "tanh", "swish")},
            (0.55, 0.15, 0.15, 0.15), "relu", param="activation")
    out["bias"] = s.choice(f"{family}.bias", {b: b for b in ("both", "hidden", "output",
                                                              "none")},
                           (0.7, 0.1, 0.1, 0.1), "both", param="bias")
    return out


#: learning-rate ranges (and defaults) per solver, for embedding models / sparse
#: features / dense features
_RATES = {
    "text": {"adagrad": (0.01, 0.3, 0.05), "adam": (3e-4, 1e-2, 1e-3),
             "sgd": (0.01, 1.0, 0.1)},
    "tfidf": {"adam": (1e-3, 5e-2, 0.01), "adagrad": (0.01, 0.5, 0.1)},
    "mlp": {"adam": (1e-4, 1e-2, 1e-3), "sgd": (1e-3, 0.3, 0.01),
            "adagrad": (3e-3, 0.3, 0.03)},
}


def _optimiser(s, family, kind, solvers, solver_weights, solver_default, batches,
               batch_weights, batch_default, alpha_on, alpha_range, alpha_default,
               batch_name="batch_size"):
    out = {}
    solver = s.choice(f"{family}.solver", {k: k for k in solvers}, solver_weights,
                      solver_default, param="solver")
    out["solver"] = solver
    low, high, default = _RATES[kind][solver]
    out["learning_rate_init"] = s.log_uniform(f"{family}.lr.{solver}", low, high, default,
                                              param="learning_rate_init")
    out["batch_size"] = s.choice(f"{family}.{batch_name}", {b: b for b in batches},
                                 batch_weights, batch_default, param="batch_size")
    out["alpha"] = _flag_then(s, f"{family}.alpha", alpha_on, *alpha_range, alpha_default,
                              log=True, param="alpha")
    out["label_smoothing"] = _flag_then(s, f"{family}.label_smoothing", 0.4, 0.02, 0.2,
                                        0.0, log=False, param="label_smoothing")
    return out


_NGRAMS = {"1": (1, 1), "1-2": (1, 2), "1-3": (1, 3)}


def _embedding_tail(s, family, lowercase_weights, dropout_on, dropout_high, depth_weights):
    """The draws the two embedding families share, in this order: lower-casing,
    token dropout, the network, the optimiser."""
    p = {"lowercase": s.choice(f"{family}.lowercase", {"yes": True, "no": False},
                               lowercase_weights, "yes", param="lowercase"),
         "token_dropout": _flag_then(s, f"{family}.token_dropout", dropout_on, 0.05,
                                     dropout_high, 0.0, log=False, param="token_dropout")}
    p.update(_network(s, family, depth_weights, (64, 128, 256, 512),
                      (0.15, 0.25, 0.4, 0.2), 256))
    p.update(_optimiser(s, family, "text", ("adagrad", "adam", "sgd"), (0.6, 0.3, 0.1),
                        "adagrad", (16, 32, 64, 128), (0.2, 0.45, 0.2, 0.15), 32,
                        0.4, (1e-6, 1e-2), 0.0))
    return p


def _bag(s):
    p = {"encoder": "bag"}
    p["ngram_range"] = s.choice("bag.ngram_range", _NGRAMS, (0.2, 0.6, 0.2), "1-2",
                                param="ngram_range")
    p["char_ngram_range"] = s.choice("bag.char_ngram_range",
                                     {"none": None, "2-4": (2, 4), "3-5": (3, 5)},
                                     (0.75, 0.1, 0.15), "none", param="char_ngram_range")
    p["n_buckets"] = s.choice("bag.n_buckets", {"none": None, "32768": 32768,
                                                "131072": 131072},
                              (0.8, 0.1, 0.1), "none", param="n_buckets")
    p["token_weights"] = s.choice("bag.token_weights", {"none": None, "idf": "idf",
                                                        "nb": "nb"},
                                  (0.4, 0.2, 0.4), "none", param="token_weights")
    p["pooling"] = s.choice("bag.pooling", {"mean": "mean", "sum": "sum"}, (0.8, 0.2),
                            "mean", param="pooling")
    p["embed_dim"] = s.choice("bag.embed_dim", {50: 50, 100: 100, 200: 200},
                              (0.25, 0.5, 0.25), 100, param="embed_dim")
    p.update(_embedding_tail(s, "bag", (0.85, 0.15), 0.4, 0.4, (0.35, 0.45, 0.2)))
    return p


def _window(s):
    p = {"encoder": "window"}
    p["window"] = s.choice("window.window", {10: 10, 20: 20, 40: 40}, (0.3, 0.5, 0.2), 20,
                           param="window")
    p["embed_dim"] = s.choice("window.embed_dim", {25: 25, 50: 50, 100: 100},
                              (0.25, 0.5, 0.25), 50, param="embed_dim")
    p.update(_embedding_tail(s, "window", (0.7, 0.3), 0.3, 0.3, (0.1, 0.6, 0.3)))
    return p


#: columns of the TF-IDF features under a hidden layer: Adam and Adagrad update every
#: row of the first layer each batch, so its size is the cost of a step
TFIDF_HIDDEN_COLUMNS = 30000


_NB_INTERPOLATION = {"1": 1.0, "0.75": 0.75, "0.5": 0.5}

#: character n-grams of the words, next to the word n-grams (TfidfFeatures)
_CHAR_NGRAMS = {"none": None, "2-5": (2, 5), "3-5": (3, 5)}


def _tfidf(s):
    f = {"ngram_range": s.choice("tfidf.ngram_range", _NGRAMS, (0.15, 0.6, 0.25), "1-2"),
         "tf": s.choice("tfidf.tf", {k: k for k in ("binary", "log", "raw")},
                        (0.5, 0.4, 0.1), "log"),
         "weights": s.choice("tfidf.weights", {"nb": "nb", "idf": "idf", "none": None},
                             (0.55, 0.35, 0.1), "idf"),
         "min_count": s.choice("tfidf.min_count", {1: 1, 2: 2}, (0.8, 0.2), 1)}
    c = _network(s, "tfidf", (0.8, 0.2, 0.0), (32, 64, 128), (0.4, 0.4, 0.2), 64,
                 depth_default=0)
    hidden = len(c["hidden_layer_sizes"]) > 0
    if hidden:
        f["max_features"] = TFIDF_HIDDEN_COLUMNS
    else:
        # under a hidden layer the column cap would leave no room for them
        f["char_ngram_range"] = s.choice("tfidf.char_ngram_range", _CHAR_NGRAMS,
                                         (0.5, 0.3, 0.2), "none")
    batches = (128, 256) if hidden else (32, 64, 128, 256)
    batch_weights = (0.5, 0.5) if hidden else (0.3, 0.3, 0.2, 0.2)
    c.update(_optimiser(s, "tfidf", "tfidf", ("adam", "adagrad"), (0.7, 0.3), "adam",
                        batches, batch_weights, 128 if hidden else 64,
                        0.4, (1e-6, 1e-3), 0.0,
                        batch_name="batch_size.hidden" if hidden else "batch_size"))
    out = {"features": f, "classifier": c}
    if not hidden and f["weights"] == "nb":
        # NBSVM's interpolation toward naive Bayes (TextPipeline(nb_interpolation=...))
        out["pipeline"] = {"nb_interpolation": s.choice(
            "tfidf.nb_interpolation", _NB_INTERPOLATION, (0.4, 0.3, 0.3), "0.75")}
    return out


def _mlp(s):
    p = _network(s, "mlp", (0.15, 0.5, 0.35), (32, 64, 128, 256, 512),
                 (0.15, 0.2, 0.3, 0.2, 0.15), 128)
    p.update(_optimiser(s, "mlp", "mlp", ("adam", "sgd", "adagrad"), (0.6, 0.25, 0.15),
                        "adam", (32, 64, 128, 256), (0.25, 0.3, 0.25, 0.2), 64,
                        0.7, (1e-6, 1e-2), 1e-4))
    return p


_SPACES = {"bag": _bag, "window": _window, "tfidf": _tfidf, "mlp": _mlp}

#: prior of the families (renormalised over those searched)
FAMILY_PRIOR = {"bag": 0.45, "window": 0.15, "tfidf": 0.4, "mlp": 1.0}



def _configuration(s, families):
    """(family, params) drawn through the suggester ``s``."""
    weights = [FAMILY_PRIOR[f] for f in families]
    family = families[0] if len(families) == 1 else s.choice(
        "family", {f: f for f in families}, weights, families[0])
    return family, _SPACES[family](s)


def sample_configuration(family="text", random_state=0):
    """One configuration drawn from the priors (to look at the space).

    Returns
    -------
    dict
        ``family`` and ``params`` (JSON values).
    """
    families = _families(family)
    s = _RandomSuggester(np.random.default_rng(random_state))
    fam, params = _configuration(s, families)
    return {"family": fam, "params": _jsonable(params)}


# ------------------------------------------------------------------------ helpers
def _families(spec):
    names = [spec] if isinstance(spec, str) else list(spec)
    out = []
    for name in names:
        if name == "text":
            out += [f for f in TEXT_FAMILIES if f not in out]
        elif name in FAMILIES:
            if name not in out:
                out.append(name)
        else:
            raise ValueError(f"unknown family {name!r}; families are {list(FAMILIES)} "
                             "and 'text' (bag, window, tfidf)")
    if not out:
        raise ValueError("no family to search")
    if "mlp" in out and len(out) > 1:
        raise ValueError("'mlp' (numeric features) cannot be searched together with the "
                         "text families")
    return tuple(out)


#: parameters of the space, by estimator (a value set on the estimator pins them)
_SEARCHED = ("ngram_range", "char_ngram_range", "n_buckets", "token_weights", "pooling",
             "embed_dim", "lowercase", "token_dropout", "hidden_layer_sizes", "activation",
             "bias", "solver", "learning_rate_init", "batch_size", "alpha",
             "label_smoothing", "window", "encoder")


def _pinned(estimator):
    """The searched parameters that ``estimator`` sets to other than their default."""
    defaults = type(estimator)().get_params(deep=False)
    params = estimator.get_params(deep=False)
    pinned = {}
    for name in _SEARCHED:
        if name in params and _differs(params[name], defaults.get(name)):
            pinned[name] = tuple(params[name]) if isinstance(params[name], list) else (
                params[name])
    return pinned


def _differs(a, b):
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        try:
            return tuple(a) != tuple(b)
        except TypeError:
            return True
    return a != b


def _resolve(spec):
    """(families, base parameters, pinned parameters, estimator class) of the first
    argument of :func:`autotune`."""
    if isinstance(spec, (str, list, tuple)):
        families = _families(spec)
        return families, {}, {}
    if isinstance(spec, TextClassifier):
        pinned = _pinned(spec)
        families = ("bag", "window")
        if "encoder" in pinned:
            families = (pinned.pop("encoder"),)
        elif spec.encoder != "bag":
            families = (spec.encoder,)
        return families, spec.get_params(deep=False), pinned
    if isinstance(spec, MLPClassifier):
        return ("mlp",), spec.get_params(deep=False), _pinned(spec)
    if isinstance(spec, TextPipeline):
        return ("tfidf",), {}, {}
    raise ValueError(f"estimator_or_family must be a family name ({list(FAMILIES)} or "
                     "'text'), a list of them, or a TextClassifier, MLPClassifier or "
                     f"TextPipeline; got {type(spec).__name__}")


def _is_texts(X):
    if isinstance(X, np.ndarray):
        return X.dtype.kind in "OU"
    if sparse.issparse(X) or hasattr(X, "iloc"):
        return False
    try:
        first = next(iter(X))
    except (TypeError, StopIteration):
        return False
    return isinstance(first, (str, list, tuple)) and (
        isinstance(first, str) or all(isinstance(w, str) for w in first))


def _take(X, rows):
    """Rows of texts, arrays, sparse matrices or label lists."""
    if sparse.issparse(X):
        return sparse.csr_matrix(X)[rows]
    if isinstance(X, np.ndarray):
        return X[rows]
    if hasattr(X, "iloc"):
        return X.iloc[rows]
    return [X[i] for i in rows.tolist()]


def _concat(a, b):
    if sparse.issparse(a):
        return sparse.vstack([sparse.csr_matrix(a), sparse.csr_matrix(b)]).tocsr()
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return np.concatenate([a, b])
    if hasattr(a, "iloc"):
        import pandas as pd
        return pd.concat([a, b], ignore_index=True)
    return list(a) + list(b)


def _length(X):
    return X.shape[0] if sparse.issparse(X) or isinstance(X, np.ndarray) else len(X)


def _encoded(y, n):
    """Class indices (or rows of label sets) to stratify on."""
    if is_multilabel(y):
        _, Y = encode_multilabel(y, n)
        _, idx = np.unique(Y, axis=0, return_inverse=True)
        return idx.ravel()
    return encode_labels(check_targets(y, n, estimator="autotune"))[1]


def _stratified_split(strata, fraction, rng):
    """(train rows, dev rows): ``fraction`` of every stratum (at least one row of a
    stratum of two or more) held out."""
    dev = []
    for c in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == c))
        k = round(len(rows) * fraction)
        if k == 0 and len(rows) >= 2:
            k = 1
        dev.append(rows[:k])
    dev = np.sort(np.concatenate(dev)).astype(np.intp)
    if len(dev) == 0 or len(dev) == len(strata):
        raise ValueError(f"validation={fraction} leaves {len(dev)} of {len(strata)} "
                         "examples for development; give more data or another fraction")
    return np.setdiff1d(np.arange(len(strata)), dev).astype(np.intp), dev


def _stratified_folds(strata, k, rng):
    """k (train rows, dev rows) pairs: every stratum dealt round the folds."""
    fold = np.empty(len(strata), dtype=np.intp)
    for c in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == c))
        fold[rows] = np.arange(len(rows)) % k
    out = []
    for j in range(k):
        dev = np.flatnonzero(fold == j)
        if len(dev) == 0:
            raise ValueError(f"validation={k} folds: fold {j} is empty; use fewer folds")
        out.append((np.flatnonzero(fold != j), dev))
    return out


class _Data:
    """The training data and the development data of the search: one split (given,
    or held out), or the folds of a cross-validation."""

    def __init__(self, X, y, sample_weight, validation, rng):
        n = _length(X)
        self.X, self.y, self.w = X, y, sample_weight
        self.given = None
        if isinstance(validation, (tuple, list)):
            if len(validation) not in (2, 3):
                raise ValueError("validation must be (X_dev, y_dev), (X_dev, y_dev, "
                                 "sample_weight_dev), a fraction in (0, 1) or a number "
                                 "of folds >= 2")
            self.kind = "given"
            self.given = tuple(validation)
            self.folds = [(None, None)]
        elif isinstance(validation, numbers.Integral) and not isinstance(validation, bool):
            if validation < 2:
                raise ValueError(f"validation={validation}: cross-validation needs at "
                                 "least 2 folds")
            self.kind = "cv"
            self.folds = _stratified_folds(_encoded(y, n), int(validation), rng)
        elif isinstance(validation, numbers.Real) and not isinstance(validation, bool) and (
                0 < validation < 1):
            self.kind = "split"
            self.folds = [_stratified_split(_encoded(y, n), float(validation), rng)]
        else:
            raise ValueError(f"validation must be (X_dev, y_dev), a fraction in (0, 1) or "
                             f"a number of folds >= 2, got {validation!r}")

    def fold(self, j):
        """(X_train, y_train, w_train, (X_dev, y_dev, w_dev)) of fold ``j``."""
        if self.kind == "given":
            return self.X, self.y, self.w, self.dev(j)
        return (*self._part(self.folds[j][0]), self.dev(j))

    def dev(self, j):
        """(X_dev, y_dev, w_dev) of fold ``j``."""
        if self.kind == "given":
            return self.given if len(self.given) == 3 else (*self.given, None)
        return self._part(self.folds[j][1])

    def _part(self, rows):
        return (_take(self.X, rows), _take(self.y, rows),
                None if self.w is None else np.asarray(self.w)[rows])

    def growth(self):
        """How many times the rows of a fold's training part the refit trains on."""
        if self.kind == "given":
            return (_length(self.X) + _length(self.given[0])) / _length(self.X)
        return _length(self.X) / len(self.folds[0][0])

    def everything(self):
        """(X, y, w) of training and development data together (the refit)."""
        if self.kind != "given":
            return self.X, self.y, self.w
        Xd, yd = self.given[:2]
        wd = self.given[2] if len(self.given) == 3 else None
        if self.w is None and wd is None:
            w = None
        else:
            w = np.concatenate([np.ones(_length(self.X)) if self.w is None else
                                np.asarray(self.w, dtype=np.float64),
                                np.ones(_length(Xd)) if wd is None else
                                np.asarray(wd, dtype=np.float64)])
        return _concat(self.X, Xd), _concat(self.y, yd), w


# ------------------------------------------------------------------------ pruning
class _Rungs:
    """Asynchronous successive halving on the epochs of a trial's first fit: at each
    rung a trial goes on only if its best dev score so far is among the best
    ``1 / reduction`` of the scores reported at that rung (once ``min_reports`` are)."""

    def __init__(self, rungs=RUNGS, reduction=REDUCTION, min_reports=MIN_REPORTS):
        self.rungs = tuple(rungs)
        self.reduction = reduction
        self.min_reports = min_reports
        self.scores = {r: [] for r in self.rungs}

    def prune(self, epoch, score):
        if epoch not in self.scores:
            return False
        seen = self.scores[epoch]
        seen.append(score)
        if len(seen) < self.min_reports:
            return False
        keep = max(1, math.ceil(len(seen) / self.reduction))
        return score < sorted(seen, reverse=True)[keep - 1]


# ------------------------------------------------------------------------ searches
class _RandomSearch:
    """The starting configurations, then random draws from the priors; successive
    halving on the epochs."""

    name = "random"

    def __init__(self, seed, families, pinned, starts, pruning):
        self.rng = np.random.default_rng(seed)
        self.families, self.pinned = families, pinned
        self.starts = list(starts)
        self.rungs = _Rungs() if pruning else None

    def ask(self):
        if self.starts:
            fixed = self.starts.pop(0)
            s = _RandomSuggester(self.rng, self.pinned, fixed, defaults_only=True)
        else:
            s = _RandomSuggester(self.rng, self.pinned)
        config = _configuration(s, self.families)
        return s, config

    def report(self, handle, epoch, score):
        return self.rungs is not None and self.rungs.prune(epoch, score)

    def tell(self, handle, status, score):
        pass


class _TPESearch:
    """optuna's TPE sampler and successive-halving pruner, asked and told one trial at
    a time; the starting configurations are enqueued first."""

    name = "tpe"

    def __init__(self, seed, families, pinned, starts, pruning):
        try:
            import optuna
        except ImportError:
            raise ImportError("search='tpe' needs optuna: pip install 'cymlp[autotune]' "
                              "(or use search='random')") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.families, self.pinned = families, pinned
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=10,
                                             multivariate=True, group=True,
                                             constant_liar=False,
                                             warn_independent_sampling=False)
        # the same successive halving as the random search (so that the two differ in
        # the sampler only); optuna is told which trials it pruned
        self.rungs = _Rungs() if pruning else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature warnings
            self.study = optuna.create_study(direction="maximize", sampler=sampler,
                                             pruner=optuna.pruners.NopPruner())
        for fixed in starts:
            s = _RandomSuggester(None, pinned, fixed, defaults_only=True)
            _configuration(s, families)
            self.study.enqueue_trial(s.values)

    def ask(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = self.study.ask()
            s = _OptunaSuggester(trial, self.pinned)
            config = _configuration(s, self.families)
        return s, config

    def report(self, handle, epoch, score):
        handle.trial.report(score, step=epoch)
        return self.rungs is not None and self.rungs.prune(epoch, score)

    def tell(self, handle, status, score):
        state = self.optuna.trial.TrialState
        if status == "complete":
            self.study.tell(handle.trial, score)
        elif status == "pruned":
            self.study.tell(handle.trial, state=state.PRUNED)
        else:
            self.study.tell(handle.trial, state=state.FAIL)


# ------------------------------------------------------------------------ models
def _make(family, params, base, seed, fit_settings):
    """The estimator of one member of a trial."""
    if family == "tfidf":
        classifier = {"early_stopping": True, **fit_settings, **params["classifier"],
                      "random_state": seed}
        dtype = base.get("dtype", "float32") if base else "float32"
        return TextPipeline(TfidfFeatures(**params["features"], dtype=dtype),
                            MLPClassifier(**classifier, dtype=dtype), random_state=seed,
                            **params.get("pipeline", {}))
    settings = {**base, **params, "random_state": seed, "verbose": 0,
                "autotune_budget": None}
    for key, value in fit_settings.items():
        if not base or key not in base or base[key] == _class_default(family, key):
            settings[key] = value
    cls = MLPClassifier if family == "mlp" else TextClassifier
    return cls(**settings)


def _class_default(family, key):
    cls = MLPClassifier if family == "mlp" else TextClassifier
    return cls().get_params(deep=False)[key]


def _with_epochs(member, epochs):
    """An unfitted copy of ``member`` that trains exactly ``epochs`` epochs without a
    development set (the refit on training and development data)."""
    est = clone(member)
    target = est.classifier if isinstance(est, TextPipeline) else est
    target.set_params(max_iter=max(1, int(epochs)), early_stopping=False)
    if isinstance(est, TextPipeline):
        est.set_params(classifier=target)
    return est


def _hook(estimator, hook):
    """Put the per-epoch hook of the search on the network a member trains."""
    estimator._epoch_callback = hook
    return estimator


# ------------------------------------------------------------------------ result
class AutotuneResult:
    """The record of one search: every trial, the choice, the refit, the time."""

    def __init__(self, search, seed, budget, n_trials, validation, refit, families):
        self.search, self.seed, self.budget, self.n_trials = search, seed, budget, n_trials
        self.validation, self.refit_policy, self.families = validation, refit, families
        self.trials = []
        self.best = None
        self.refit = None
        self.seconds = None

    def records(self):
        """Every trial as a dict of JSON values (a deep copy)."""
        return json.loads(json.dumps(self.trials))

    def best_params(self):
        """The chosen configuration: ``{"family", "n_estimators", "params"}``; for a
        blend, family ``'blend'`` and ``params["members"]``, the configuration of each
        trial it joins (``{"trial", "family", "params"}``, the first the chosen one)."""
        if self.best is None:
            return None
        rec = self.trials[self.best]
        if rec["stage"] != "blend":
            return {"family": rec["family"], "n_estimators": rec["n_estimators"],
                    "params": copy.deepcopy(rec["params"])}
        joined = []
        while rec["stage"] == "blend":
            joined.append(rec["blend_of"])
            rec = self.trials[rec["based_on"]]
        joined.append(rec["trial"])
        members = [{"trial": t, "family": self.trials[t]["family"],
                    "params": copy.deepcopy(self.trials[t]["params"])}
                   for t in reversed(joined)]
        return {"family": "blend", "n_estimators": self.trials[self.best]["n_estimators"],
                "params": {"members": members}}

    def summary(self):
        counts = {s: sum(t["status"] == s for t in self.trials) for s in STATUSES}
        best = None if self.best is None else self.trials[self.best]
        return _jsonable({
            "search": self.search, "seed": self.seed, "time_budget": self.budget,
            "n_trials": self.n_trials, "validation": self.validation,
            "families": list(self.families), "seconds": self.seconds,
            "trials": len(self.trials), **{f"trials_{s}": c for s, c in counts.items()},
            "best_trial": None if best is None else best["trial"],
            "best_dev_score": None if best is None else best["dev_score"],
            "best_params": self.best_params(), "refit": self.refit})

    def trials_frame(self):
        """The trials as a pandas DataFrame: one row per trial, the parameters in
        ``param_<name>`` columns."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("autotune_trials_ is a pandas DataFrame: install pandas "
                              "(pip install pandas), or use autotune_records() for plain "
                              "records") from None
        rows = []
        for rec in self.trials:
            row = {k: v for k, v in rec.items() if k not in ("params", "rung_scores")}
            for name, value in _flat(rec["params"]).items():
                row[f"param_{name}"] = (json.dumps(value) if isinstance(value, (list, dict))
                                        else value)
            rows.append(row)
        return pd.DataFrame(rows)


def _flat(params, prefix=""):
    out = {}
    for k, v in params.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# ------------------------------------------------------------------------ the search
class _Search:
    """One call of :func:`autotune`: the trials, the ensemble stage, the refit."""

    def __init__(self, data, families, base, pinned, search, seed, budget, n_trials,
                 refit, ensembles, blend, pruning, starts, verbose, result, t0):
        self.data, self.families, self.base, self.pinned = data, families, base, pinned
        self.seed, self.budget, self.n_trials = seed, budget, n_trials
        self.refit, self.verbose, self.result, self.t0 = refit, verbose, result, t0
        self.ensembles = ensembles
        self.blend = blend
        self.deadline = math.inf if budget is None else t0 + budget
        self.trial_cap = math.inf if budget is None else TRIAL_SHARE * budget
        cls = _TPESearch if search == "tpe" else _RandomSearch
        self.searcher = cls(seed, families, pinned, starts, pruning)
        self.chosen = None  # {"rec", "folds": members per fold, "fit_seconds", ...}
        self.pool = []  # the best completed trials (entries like chosen), best first
        self.blended = None  # the kept blend: {"rec", "folds"}
        self.partial = None  # the same, of the best trial cut short by the budget
        self.first_epochs = []  # seconds from the start of each trial to its first epoch
        self.grown = False  # the ensemble stage is over

    # ------------------------------------------------------------- bookkeeping
    def _left(self, end=None):
        return (self.deadline if end is None else end) - time.perf_counter()

    def _refit_seconds(self, n_members=1, entries=None, margin=None):
        """Seconds to keep for refitting on training and development data (0 without
        a refit): ``n_members`` members of the chosen configuration, or with a kept
        blend each of its members (or each of ``entries``, a blend considered). A
        member takes its encoding and first epoch, then its other epochs up to the
        mean of its folds' best ones (what the refit trains), as they took in its
        trial, scaled to the larger data, times ``margin`` (by default
        ``REFIT_MARGIN``)."""
        # (while no trial has completed, the best one the budget cut short is what
        # would be refitted)
        if not self._refits():
            return 0.0
        if entries is None:
            c = self.chosen if self.chosen is not None else self.partial
            if c is None:
                return 0.0
            entries = (self.blended["entries"] if self.blended is not None else
                       [c] * n_members)
        scale = (REFIT_MARGIN if margin is None else margin) * self.data.growth()
        return scale * sum(_member_fit_seconds(e) for e in entries) + 0.2

    def _kept_back(self):
        """Seconds the search leaves for what follows it: the ensemble stage (the
        chosen configuration's fit once per new member and fold), at most
        ``ENSEMBLE_SHARE`` of the budget, and the refit of the largest ensemble that
        fits in that."""
        if self.chosen is None:
            return self._refit_seconds(1)
        if self.blended is not None:    # a kept blend: no seed ensemble stage follows
            return self._refit_seconds()
        if self.grown:
            return self._refit_seconds(1)
        per_member = self.chosen["fit_seconds"] * len(self.data.folds)
        grow = (self.ensembles - 1) * per_member
        members = self.ensembles
        if self.budget is not None and grow > ENSEMBLE_SHARE * self.budget:
            grow = ENSEMBLE_SHARE * self.budget
            members = 1 + int(grow // per_member)
        return grow + self._refit_seconds(members)

    def _refits(self):
        return self.refit == "train+dev" or self.data.kind == "cv"


    def _print(self, rec):
        if not self.verbose:
            return
        best = (None if self.chosen is None else self.chosen["rec"])
        score = "-" if rec["dev_score"] is None else f"{rec['dev_score']:.4f}"
        best_s = "-" if best is None else f"{best['dev_score']:.4f} (#{best['trial']})"
        left = "" if self.budget is None else f"  {max(0.0, self._left()):.1f} s left"
        what = (" ".join(f"{k}={v}" for k, v in _flat(rec["params"]).items())
                if rec["stage"] == "search" else
                f"trial {rec['based_on']} with trial {rec['blend_of']}'s models"
                if rec["stage"] == "blend" else f"seed ensemble of trial {rec['based_on']}")
        print(f"autotune trial {rec['trial']:3d} {rec['family']:6s} x{rec['n_estimators']} "
              f"{rec['status']:8s} dev {score}  best {best_s}  {rec['seconds']:.1f} s{left}"
              f"  {what}", file=sys.stderr, flush=True)

    def _new_record(self, family, params, n_estimators, stage, based_on=None):
        return {"trial": len(self.result.trials), "stage": stage, "based_on": based_on,
                "family": family, "n_estimators": n_estimators,
                "params": _jsonable(params), "status": None, "dev_score": None,
                "fold_scores": [], "best_epoch": None, "epochs": 0, "rung_scores": {},
                "seconds": None, "started": time.perf_counter() - self.t0, "error": None,
                "blend_of": None}

    def _finish_record(self, rec, tic):
        rec["seconds"] = time.perf_counter() - tic
        self.result.trials.append(rec)
        self._print(rec)

    # ------------------------------------------------------------- the stages
    def run(self):
        self._search()
        if self.chosen is None and self.partial is not None:
            self.chosen = self.partial  # the budget ended every trial early
            self.result.best = self.partial["rec"]["trial"]
        if self.chosen is None:
            counts = {s: sum(t["status"] == s for t in self.result.trials)
                      for s in STATUSES}
            errors = sorted({t["error"] for t in self.result.trials if t["error"]})
            raise RuntimeError(
                f"autotune: no trial completed ({len(self.result.trials)} tried in "
                f"{time.perf_counter() - self.t0:.1f} s: {counts}); give more time"
                + (f"; errors: {errors[:3]}" if errors else ""))
        if self.blend:
            # a kept blend needs no seed ensemble stage: the time kept back for that
            # goes to more trials, then the blend is made again from the new pool
            self._blend()
            while self.blended is not None and self._search():
                self._blend()
        if self.blended is None and self.ensembles > 1 and self._grow() == 1:
            # no seed ensemble beat the single model: the time the ensemble stage
            # did not use goes to more trials (and blends of them)
            self.grown = True
            while self._search():
                if self.blend:
                    self._blend()
        if self.blended is not None:
            self.chosen["folds"] = self.blended["folds"]
        return self._final()

    def _search(self):
        """Trials while the budget (and ``n_trials``, counted over the whole call)
        allows; returns how many ran."""
        number = sum(r["stage"] == "search" for r in self.result.trials)
        ran = 0
        while self.n_trials is None or number < self.n_trials:
            # start a trial only if its first epoch (as long as the median first epoch
            # so far, encoding included) can end in time, the refit kept back, and
            # not in the last START_MARGIN of the budget: an epoch cannot be cut, and
            # a new configuration's first one may take much longer than the median
            first = float(np.median(self.first_epochs)) if self.first_epochs else 0.0
            margin = 0.0 if self.budget is None else START_MARGIN * self.budget
            if self._left() - self._kept_back() <= max(first, margin):
                break
            self._trial()
            number += 1
            ran += 1
        return ran

    def _trial(self):
        handle, (family, params) = self.searcher.ask()
        rec = self._new_record(family, params, 1, "search")
        tic = time.perf_counter()
        first = [True]
        running = [-math.inf]  # the best dev score of the first fit so far
        curves = []  # every fold's dev score after each epoch
        clock = _EpochClock(min(self.deadline - self._kept_back(), tic + self.trial_cap))

        def hook(record):
            """After every epoch: prune (raise), or stop the fit when time is up."""
            if first[0]:
                epoch = record["epoch"]
                if epoch == 1:
                    self._first_epoch = time.perf_counter() - tic
                    self.first_epochs.append(self._first_epoch)
                running[0] = max(running[0], record["val_accuracy"])
                if epoch in RUNGS:
                    rec["rung_scores"][str(epoch)] = running[0]
                if self.searcher.report(handle, epoch, running[0]):
                    raise _Pruned()
            curves[-1].append(record["val_accuracy"])
            rec["epochs"] += 1
            return clock.tick()

        folds, kept, fit_seconds = [], [], None  # kept: each fold's model's dev score
        self._params = params
        self._first_epoch = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for j in range(len(self.data.folds)):
                    # the next fold, as long as the first, must end in time, and leave
                    # the time this trial's own refit would take if it is chosen (it
                    # may need longer than the refit kept back for the best so far)
                    if j and (time.perf_counter() + fit_seconds > clock.end or
                              self._left() < fit_seconds + self._refit_seconds(
                                  entries=[self._timing(folds, fit_seconds)])):
                        raise _OutOfTime()
                    Xt, yt, wt, dev = self.data.fold(j)
                    est = _make(family, params, self.base, self.seed, FIT_SETTINGS[family])
                    fit_tic = time.perf_counter()
                    curves.append([])
                    est.fit(Xt, yt, validation_data=_hook_fit(est, hook, dev),
                            sample_weight=wt)
                    fit_seconds = fit_seconds or time.perf_counter() - fit_tic
                    kept.append(est.score(*dev))
                    folds.append([est])
                    if clock.spent:
                        raise _OutOfTime()
                    first[0] = False
            rec["status"] = "complete"
        except _Pruned:
            rec["status"] = "pruned"
        except _OutOfTime:
            rec["status"] = "timeout"
        except (FloatingPointError, ArithmeticError, ValueError, MemoryError) as exc:
            # a diverged (or otherwise impossible) configuration: recorded, skipped
            rec["status"] = "failed"
            rec["error"] = f"{type(exc).__name__}: {exc}"
        if rec["status"] in ("complete", "timeout") and folds:
            rec["fold_scores"] = _common_epoch_scores(curves, folds, kept)
            rec["dev_score"] = float(np.mean(rec["fold_scores"]))
            rec["best_epoch"] = _best_epoch(folds[0][0])
        self.searcher.tell(handle, rec["status"], rec["dev_score"])
        self._consider(rec, folds, kept, fit_seconds)
        self._finish_record(rec, tic)

    def _consider(self, rec, folds, kept, fit_seconds):
        """Keep the trial if it is the best completed one so far; a trial the budget
        cut short, with a scored first fit, is kept apart: it is chosen only if no
        trial completes (its score rests on fewer epochs, or folds, than the others)."""
        if rec["dev_score"] is None or not folds:
            return
        entry = self._timing(folds[:1] if rec["status"] != "complete" else folds,
                             fit_seconds)
        entry.update(rec=rec, params=self._params,
                     # the score of the models as trained (each fold's at its own best
                     # epoch): what blends and seed ensembles of them are compared with
                     kept_score=float(np.mean(kept[:1] if rec["status"] != "complete"
                                              else kept)))
        if rec["status"] != "complete":
            if self.partial is None or rec["dev_score"] > self.partial["rec"]["dev_score"]:
                self.partial = entry
            return
        best = None if self.chosen is None else self.chosen["rec"]
        if best is None or rec["dev_score"] > best["dev_score"]:
            self.chosen = entry
            self.result.best = rec["trial"]
        if self.blend:
            self.pool = _blend_pool(self.pool + [entry])

    def _timing(self, folds, fit_seconds):
        """What the refit's time is estimated from (``_member_fit_seconds``), for the
        running trial's ``folds`` so far: its first fold's fit, first epoch and
        epochs."""
        return {"folds": folds, "fit_seconds": fit_seconds,
                "first_epoch": self._first_epoch or fit_seconds,
                "epochs_run": folds[0][0].n_iter_}

    @staticmethod
    def _dev_proba(cache, member, j, X_dev):
        """A member's probabilities on ``X_dev``, the development part of fold ``j``
        (cached)."""
        key = (id(member), j)
        if key not in cache:
            cache[key] = member.predict_proba(X_dev)
        return cache[key]

    def _blend(self):
        """The blend stage: the other best completed trials (``BLEND_POOL``, best
        first, then each other family's best) are tried as additions to the chosen
        model: their fold models join the chosen ones, the mean of the probabilities
        is scored on dev, and an addition is kept only if the score rises. No model
        is trained. The best blend of every pass so far is ``self.blended`` (None
        while no blend beats the best single trial). Single-label data; several
        labels per example are not blended."""
        chosen = self.chosen
        if chosen["rec"]["status"] != "complete" or is_multilabel(self.data.y):
            return
        folds = [list(m) for m in chosen["folds"]]
        score, entries = chosen["kept_score"], [chosen]
        based_on, kept, cache = chosen["rec"]["trial"], False, {}
        devs = [self.data.dev(j) for j in range(len(folds))]
        for cand in self.pool:
            if cand is chosen or self._left() < self._refit_seconds(
                    entries=entries + [cand]):
                continue    # (a blend whose refit would not end in time is not tried)
            rec = self._new_record(cand["rec"]["family"], cand["params"],
                                   len(folds[0]) + len(cand["folds"][0]), "blend",
                                   based_on=based_on)
            rec["blend_of"] = cand["rec"]["trial"]
            tic = time.perf_counter()
            joined = [folds[j] + cand["folds"][j] for j in range(len(folds))]
            for j, members in enumerate(joined):
                Xd, yd, wd = devs[j]
                mean = sum(self._dev_proba(cache, m, j, Xd) for m in members) / len(members)
                pred = members[0].classes_[np.argmax(mean, axis=1)]
                rec["fold_scores"].append(float(np.average(label_hits(pred, yd),
                                                           weights=wd)))
            rec["status"] = "complete"
            rec["dev_score"] = float(np.mean(rec["fold_scores"]))
            rec["best_epoch"] = cand["rec"]["best_epoch"]
            self._finish_record(rec, tic)
            if rec["dev_score"] > score:
                folds, score, based_on, kept = joined, rec["dev_score"], rec["trial"], True
                entries = entries + [cand]
        # the best blend of every pass so far (a later pass starts from the then best
        # single trial, so it may not rebuild an earlier, better blend)
        if kept and (self.blended is None or score > self.blended["rec"]["dev_score"]):
            self.blended = {"rec": self.result.trials[based_on], "folds": folds,
                            "entries": entries}
        best = self.blended["rec"] if self.blended is not None else chosen["rec"]
        if self.blended is not None and best["dev_score"] <= chosen["kept_score"]:
            best = chosen["rec"]                # a new single trial beats the blend
            self.blended = None
        self.result.best = best["trial"]

    def _grow(self):
        """The ensemble stage: members of the chosen configuration from the next seeds,
        one at a time, the running mean scored on dev after each; the best size is
        kept (the smallest on a tie); returns its size."""
        single = self.chosen["rec"]
        if single["status"] != "complete":
            return 1
        family, params = single["family"], self.chosen["params"]
        folds = [list(m) for m in self.chosen["folds"]]
        best_size, best_score = 1, self.chosen["kept_score"]
        for size in range(2, self.ensembles + 1):
            # the next member, trained in as long as the last one took, and a refit of
            # every member, must fit in what is left
            need = self.chosen["fit_seconds"] * len(folds) + self._refit_seconds(size)
            if self._left() < need:
                break
            rec = self._new_record(family, single["params"], size, "ensemble",
                                   based_on=single["trial"])
            tic = time.perf_counter()
            clock = _EpochClock(self.deadline - self._refit_seconds(size))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    for j in range(len(folds)):
                        Xt, yt, wt, dev = self.data.fold(j)
                        est = _make(family, params, self.base, self.seed + size - 1,
                                    FIT_SETTINGS[family])
                        est.fit(Xt, yt, validation_data=_hook_fit(est, _counting(rec, clock),
                                                                   dev),
                                sample_weight=wt)
                        if clock.spent:
                            raise _OutOfTime()
                        folds[j].append(est)
                        rec["fold_scores"].append(SeedEnsemble.from_members(
                            folds[j], random_state=self.seed).score(*dev))
                rec["status"] = "complete"
                rec["dev_score"] = float(np.mean(rec["fold_scores"]))
                rec["best_epoch"] = _best_epoch(folds[0][-1])
            except _OutOfTime:
                rec["status"] = "timeout"
            except (FloatingPointError, ArithmeticError, ValueError, MemoryError) as exc:
                rec["status"] = "failed"
                rec["error"] = f"{type(exc).__name__}: {exc}"
            self._finish_record(rec, tic)
            if rec["status"] != "complete":
                break
            if rec["dev_score"] > best_score:
                best_size, best_score = size, rec["dev_score"]
                self.result.best = rec["trial"]
        self.chosen["folds"] = [members[:best_size] for members in folds]
        return best_size

    def _kept_all_folds(self):
        """Whether a model kept without its refit is every fold's models together:
        with cross-validation, unless a single model was asked for (ensembles=1)."""
        return self.data.kind == "cv" and self.ensembles > 1

    def _kept_what(self):
        return ("the models of every fold" if self._kept_all_folds() else
                "the model trained on the training part")

    def _final(self):
        """The model to return: refitted on training and development data together,
        or the chosen trial's as trained (on the training part, early stopping on
        dev) when there is no refit or it does not fit in the time left; with
        cross-validation that is the models of every fold together (each trained on
        all folds but one, their probabilities averaged), unless ``ensembles=1``
        asks for a single model (then the first fold's)."""
        folds = self.chosen["folds"]
        members = folds[0]
        trained = ([m for fold in folds for m in fold] if self._kept_all_folds() else
                   members)
        kept = trained[0] if len(trained) == 1 else SeedEnsemble.from_members(
            trained, random_state=self.seed)
        if not self._refits():
            self.result.refit = {"on": "train", "status": "kept", "seconds": 0.0}
            return kept
        # the search is over and nothing else can use the time left: the refit is
        # started if its plain estimate (no margin) ends in time, and abandoned at
        # the deadline if it runs over
        if self.budget is not None and self._left() < self._refit_seconds(len(members),
                                                                           margin=1.0):
            # it would not end in time: not started (an epoch cannot be cut)
            self.result.refit = {"on": "train+dev", "status": "skipped, not enough time "
                                 f"left; kept {self._kept_what()}", "seconds": 0.0}
            return kept
        X, y, w = self.data.everything()
        epochs = [_refit_epochs(folds, k) for k in range(len(members))]
        tic = time.perf_counter()
        refitted = []
        clock = _EpochClock(self.deadline)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for k, member in enumerate(members):
                    est = _with_epochs(member, epochs[k])
                    _hook_fit(est, lambda record: clock.tick(), None)
                    refitted.append(est.fit(X, y, sample_weight=w))
                    if clock.spent:
                        raise _OutOfTime()
        except _OutOfTime:
            self.result.refit = {"on": "train+dev",
                                 "status": f"timeout, kept {self._kept_what()}",
                                 "seconds": time.perf_counter() - tic}
            return kept
        self.result.refit = {"on": "train+dev", "status": "complete",
                             "epochs": [int(e) for e in epochs],
                             "seconds": time.perf_counter() - tic}
        return refitted[0] if len(refitted) == 1 else SeedEnsemble.from_members(
            refitted, random_state=self.seed)


def _blend_pool(entries):
    """The completed trials whose models are kept for the blend stage, best first
    (the earlier of equal scores first): the ``BLEND_POOL + 1`` best, and the best of
    every other family. A family's best can lose to the other family's next best and
    still raise a blend more than they do: models of one family tend to make the same
    errors. The models of the others are let go."""
    ranked = sorted(entries, key=lambda e: (-e["rec"]["dev_score"], e["rec"]["trial"]))
    families = set()
    pool = []
    for rank, entry in enumerate(ranked):
        family = entry["rec"]["family"]
        if rank <= BLEND_POOL or family not in families:
            pool.append(entry)
        families.add(family)
    return pool


def _refit_epochs(folds, k=0):
    """The epochs the refit trains member ``k`` of ``folds`` (its models per fold) for:
    the mean of their best epochs, rounded."""
    return int(round(np.mean([_best_epoch(fold[k]) for fold in folds])))


def _common_epoch_scores(curves, folds, kept):
    """A trial's fold scores: each fold's dev score after the epoch the refit trains
    (the mean of the folds' best epochs; a fold stopped before it counts its last).
    Each fold's own best epoch would score the maximum of a noisy curve, which
    favours the configurations whose curves are noisiest. ``kept`` are the scores of
    the folds' models as trained (at their best epochs), ``curves`` the network's dev
    score after every epoch; the two differ where a pipeline changes the trained
    weights (NBSVM's interpolation), so a fold scores its model as trained less what
    the common epoch loses against the best one on the curve."""
    epochs = [_best_epoch(fold[0]) for fold in folds]
    common = _refit_epochs(folds)
    return [float(score - (curve[best - 1] - curve[min(common, len(curve)) - 1]))
            for score, curve, best in zip(kept, curves, epochs)]


def _member_fit_seconds(entry):
    """Seconds a fit of the search's ``entry`` takes, on a fold's training part, for
    the epochs its refit trains (see _refit_seconds)."""
    rest = max(entry["epochs_run"] - 1, 1)
    per_epoch = max(entry["fit_seconds"] - entry["first_epoch"], 0.0) / rest
    return entry["first_epoch"] + per_epoch * max(_refit_epochs(entry["folds"]) - 1, 0)


def _counting(rec, clock):
    """An epoch hook that counts the epochs into ``rec`` and stops at the deadline."""
    def hook(record):
        rec["epochs"] += 1
        return clock.tick()
    return hook


class _EpochClock:
    """Says when to stop a fit: at an epoch after which the next one, if it takes as
    long as the last (scoring included), would end past ``end``; so a fit stops
    before the deadline, not one epoch after it. ``spent`` stays True from then on."""

    def __init__(self, end):
        self.end = end
        self.last = time.perf_counter()
        self.spent = False

    def tick(self):
        now = time.perf_counter()
        epoch, self.last = now - self.last, now
        self.spent = self.spent or now + epoch > self.end
        return self.spent


def _hook_fit(est, hook, dev):
    """Attach ``hook`` to the network ``est`` trains; returns the validation data."""
    _hook(est, hook)
    return None if dev is None else (dev if dev[2] is not None else dev[:2])


def _best_epoch(member):
    epoch = member.best_epoch_
    return member.n_iter_ if epoch is None else epoch


# ------------------------------------------------------------------------ entry point
def autotune(estimator_or_family, X, y, *, time_budget=None, n_trials=None,
             validation=3, random_state=0, search="random", refit="train+dev",
             ensembles=5, blend=True, pruning=True, sample_weight=None, starts=None,
             verbose=0):
    """Search hyper-parameters and model families on development data; return the best
    model, fitted.

    Parameters
    ----------
    estimator_or_family : str, list of str, or estimator
        What to search: a family (``'bag'``, ``'window'``, ``'tfidf'``, ``'mlp'``),
        ``'text'`` (bag, window and tfidf), a list of families, or an estimator: a
        ``TextClassifier`` (the bag and window families; the encoder and every
        searched parameter it sets to other than its default are held fixed, its
        other parameters are kept), an ``MLPClassifier`` (``'mlp'``, likewise) or a
        ``TextPipeline`` (``'tfidf'``).
    X, y : training data (texts, or numeric features for ``'mlp'``) and labels
    time_budget : float, optional
        Seconds of wall time for the whole call: trials start while time is left
        (less the expected time of the ensemble stage and the refit, and never in
        the last 3%), a trial still running when the time is up is stopped after its
        current epoch (``'timeout'``), and a refit that would not end in time is not
        started (or abandoned) for the best trial's model. At least one of
        ``time_budget`` and ``n_trials``.
    n_trials : int, optional
        Stop after this many trials (pruned, failed and stopped ones included).
    validation : int, float or (X_dev, y_dev[, w_dev]), default=3
        Development data: the number of folds of a stratified cross-validation of
        ``X`` (every trial trains once per fold, its score is the mean; seeded by
        ``random_state``); a stratified fraction of ``X`` held out; or given. With
        folds the score of a trial rests on every training example, so the search is
        less often misled by a lucky split (``docs/autotune.md``).
    random_state : int, default=0
        Seeds the search, the held-out split or the folds, and the models (every
        trial's member ``k`` is seeded with ``random_state + k``).
    search : {'random', 'tpe'}, default='random'
        Random draws from the priors after the starting configurations, or optuna's
        TPE (needs optuna; ``docs/autotune.md`` compares the two).
    refit : {'train+dev', 'train'}, default='train+dev'
        ``'train+dev'``: train the chosen configuration again on training and
        development data together, for the number of epochs early stopping chose
        (the mean over folds); ``'train'``: return the best trial's model as trained
        (training part only, best dev epoch). Cross-validation always refits.
    ensembles : int, default=5
        The largest seed ensemble tried: once the search has chosen a configuration,
        members from the next seeds are added one at a time, the running mean of
        their probabilities scored on dev after each, and the best size kept (the
        smallest on a tie). With a budget, the search stops early enough to leave the
        time this takes for the best configuration so far (and its refit). 1 (or
        False): no ensembles.
    blend : bool, default=True
        After the search, try the other best completed trials (up to
        ``BLEND_POOL``, best first, then the best of each family not among them)
        as additions to the chosen model: their models (one per fold, already
        trained) join the chosen ones, the mean probability is scored on dev, and
        each addition is kept only if the score rises. The models of different
        families and settings make different errors, so their mean can beat each.
        No model is trained for this; a kept blend is refitted member by member
        like an ensemble, and the seed ensemble stage is then skipped. Single-label
        data only; ``ensembles=1`` (a single model) turns it off too.
    pruning : bool, default=True
        Successive halving: stop trials that score in the lower two thirds after
        their first or third epoch.
    sample_weight : array-like, optional
        Weights of the training examples.
    starts : list of dict, optional
        Configurations to try first (dimension name to value, as in the trial
        records' search names; the others at their defaults); default the
        family defaults (``STARTS``).
    verbose : int, default=0
        1: one line per trial on stderr (number, family, status, dev score, best so
        far, seconds, time left, configuration).

    Returns
    -------
    estimator
        Fitted: a ``TextClassifier``, ``TextPipeline``, ``MLPClassifier`` or a
        ``SeedEnsemble`` of one of them, with ``autotune_trials_`` (DataFrame),
        ``autotune_records()`` (JSON values), ``autotune_summary_`` and
        ``best_params_``.

    Notes
    -----
    With ``n_trials`` and no ``time_budget``, the result is bitwise the same on every
    run with the same ``random_state`` and BLAS thread count. With a budget, which
    configurations are tried, in which order, and every trial's result are the same
    too; only how many trials fit in the budget (and so which one is best) depends on
    the speed of the machine.
    """
    t0 = time.perf_counter()
    budget = check_budget("time_budget", time_budget)
    if n_trials is not None:
        if isinstance(n_trials, bool) or not isinstance(n_trials, numbers.Integral) or (
                n_trials < 1):
            raise ValueError(f"n_trials must be None or an int >= 1, got {n_trials!r}")
        n_trials = int(n_trials)
    if budget is None and n_trials is None:
        raise ValueError("give time_budget (seconds), n_trials, or both")
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {list(SEARCHES)}, got {search!r}")
    if refit not in REFITS:
        raise ValueError(f"refit must be one of {list(REFITS)}, got {refit!r}")
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        check_random_state("random_state", random_state)
        raise ValueError(f"random_state must be an int (the search is seeded), got "
                         f"{random_state!r}")
    seed = int(random_state)
    if isinstance(ensembles, bool):
        ensembles = 5 if ensembles else 1
    if not isinstance(ensembles, numbers.Integral) or ensembles < 0:
        raise ValueError(f"ensembles must be an int >= 1 (the largest ensemble tried), "
                         f"got {ensembles!r}")
    ensembles = max(1, int(ensembles))
    if not isinstance(blend, (bool, np.bool_)):
        raise ValueError(f"blend must be True or False, got {blend!r}")
    families, base, pinned = _resolve(estimator_or_family)
    texts = _is_texts(X)
    if texts and "mlp" in families:
        raise ValueError("X holds texts: search a text family ('text', 'bag', 'window', "
                         "'tfidf') or a TextClassifier")
    if not texts and "mlp" not in families:
        raise ValueError("the text families need X to be a list of texts; for numeric "
                         "features search 'mlp' or an MLPClassifier")
    data = _Data(X, y, sample_weight, validation, np.random.default_rng(seed))
    if starts is None:
        starts = [s if len(families) == 1 else {"family": f, **s}
                  for f in families for s in STARTS[f]]
    described = ("given" if data.kind == "given" else
                 f"{len(data.folds)} folds" if data.kind == "cv" else
                 f"held out {validation}")
    result = AutotuneResult(search, seed, budget, n_trials, described, refit, families)
    run = _Search(data, families, base, pinned, search, seed, budget, n_trials, refit,
                  ensembles, bool(blend) and ensembles > 1, pruning, starts, verbose,
                  result, t0)
    model = run.run()
    result.seconds = time.perf_counter() - t0
    model._autotune = result
    if verbose:
        best = result.trials[result.best]
        print(f"autotune: best trial {best['trial']} ({best['family']}, dev "
              f"{best['dev_score']:.4f}) of {len(result.trials)}; refit "
              f"{result.refit['on']} ({result.refit['status']}); {result.seconds:.1f} s",
              file=sys.stderr, flush=True)
    return model


def autotune_splits(splits, estimator_or_family="text", *, validation=3,
                    time_budget=None, n_trials=None, random_state=0, **options):
    """:func:`autotune` on a data set's training and development parts, then the test
    part scored once: the protocol of a benchmark run, in one call.

    The search and the refit see ``splits.train`` and ``splits.dev`` only; the test
    texts and labels are read after the model is final, to score it.

    Parameters
    ----------
    splits : cymlp.datasets.Splits
        ``train``, ``dev`` and ``test``, each ``(X, y)`` (as :func:`cymlp.datasets.load`
        gives them).
    validation : int or 'dev', default=3
        An int ``k``: the trials are scored by a stratified ``k``-fold
        cross-validation of ``train`` and ``dev`` together (every example is scored
        once per trial); ``'dev'``: they train on ``train`` and are scored on
        ``dev``. Either way the returned model is refitted on both (unless
        ``refit='train'`` with ``'dev'``).
    estimator_or_family, time_budget, n_trials, random_state, **options
        As for :func:`autotune`.

    Returns
    -------
    model : the fitted estimator :func:`autotune` returns
    record : dict of JSON values
        ``test_accuracy``, ``dev_accuracy`` (the chosen trial's score on the
        development data), ``seconds`` (the search and the refit), ``validation``,
        ``autotune`` (the summary) and ``trials`` (every trial's record): ready for
        ``json.dump``.
    """
    if isinstance(validation, str) and validation == "dev":
        X, y = splits.train
        held = splits.dev
    elif isinstance(validation, numbers.Integral) and not isinstance(validation, bool):
        X, y = _concat(splits.train[0], splits.dev[0]), _concat(splits.train[1],
                                                                 splits.dev[1])
        held = int(validation)
    else:
        raise ValueError(f"validation must be 'dev' or a number of folds, got "
                         f"{validation!r}")
    tic = time.perf_counter()
    model = autotune(estimator_or_family, X, y, time_budget=time_budget, n_trials=n_trials,
                     validation=held, random_state=random_state, **options)
    seconds = time.perf_counter() - tic
    result = model._autotune
    # the model is final here: the test part is read for the first and only time
    test_accuracy = float(model.score(splits.test[0], splits.test[1]))
    summary = result.summary()
    record = {"test_accuracy": test_accuracy, "dev_accuracy": summary["best_dev_score"],
              "seconds": seconds, "validation": validation, "autotune": summary,
              "trials": result.records()}
    return model, _jsonable(record)
