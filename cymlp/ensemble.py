"""Seed ensembles: the same classifier trained from several seeds, probabilities averaged.

Networks trained from different initial weights and minibatch orders make different
errors on small data sets; the mean of their probabilities is usually a little more
accurate than a single one and varies less from seed to seed. :class:`SeedEnsemble`
trains ``n_estimators`` copies of a :class:`~cymlp.TextClassifier`,
:class:`~cymlp.MLPClassifier` or :class:`~cymlp.features.TextPipeline`, member ``k``
with ``random_state + k``, and predicts the class of largest mean probability.
"""
import numbers

import numpy as np

from cymlp import io as _io
from cymlp._compat import BaseEstimator, ClassifierMixin, NotFittedError, clone
from cymlp._tuned import TunedMixin
from cymlp._validation import Interval, encode_multilabel, is_multilabel
from cymlp.features import TextPipeline
from cymlp.io import ModelFileError
from cymlp.mlp import MLPClassifier
from cymlp.text import TextClassifier

__all__ = ["SeedEnsemble", "label_hits"]

#: the classes a member may be (model files name them)
MEMBER_CLASSES = {cls.__name__: cls for cls in (MLPClassifier, TextClassifier, TextPipeline)}


def label_hits(pred, y):
    """Whether each predicted label (an array) equals the true one (any sequence),
    compared as Python values, so labels of other dtypes (str against object, int
    against float) compare as their values do."""
    truth = y.tolist() if isinstance(y, np.ndarray) else list(y)
    return np.fromiter((p == t for p, t in zip(pred.tolist(), truth)), dtype=bool,
                       count=len(truth))


@_io.register
class SeedEnsemble(TunedMixin, ClassifierMixin, BaseEstimator):
    """``n_estimators`` copies of a classifier from consecutive seeds; mean probabilities.

    Parameters
    ----------
    estimator : TextClassifier, MLPClassifier or TextPipeline
        The member to copy (unfitted; its parameters are used, it is not changed).
    n_estimators : int, default=3
    random_state : int, default=0
        Member ``k`` is trained with ``random_state + k`` (so member 0 is the
        estimator trained with ``random_state``).

    Attributes
    ----------
    estimators_ : list
        The fitted members.
    classes_ : ndarray
    """

    def __init__(self, estimator=None, n_estimators=3, *, random_state=0):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.random_state = random_state

    def _check_params(self):
        if type(self.estimator).__name__ not in MEMBER_CLASSES:
            raise ValueError(f"estimator must be one of {sorted(MEMBER_CLASSES)}, got "
                             f"{type(self.estimator).__name__}")
        Interval(int, 1, None).check("n_estimators", self.n_estimators)
        if isinstance(self.random_state, bool) or not isinstance(self.random_state,
                                                                 numbers.Integral):
            raise ValueError(f"random_state must be an int (member k uses random_state + "
                             f"k), got {self.random_state!r}")

    def fit(self, X, y, validation_data=None, sample_weight=None):
        """Train every member on (X, y), each with its own seed; ``validation_data``
        drives each member's early stopping, as for a single model."""
        self._check_params()
        members = []
        for k in range(self.n_estimators):
            member = clone(self.estimator).set_params(random_state=int(self.random_state) + k)
            members.append(member.fit(X, y, validation_data=validation_data,
                                      sample_weight=sample_weight))
        self._set_members(members, is_multilabel(y))
        return self

    @classmethod
    def from_members(cls, members, random_state=0):
        """An ensemble of already fitted members (with the same classes)."""
        ens = cls(clone(members[0]), len(members), random_state=random_state)
        ens._set_members(list(members), None)
        return ens

    def _set_members(self, members, multilabel):
        classes = members[0].classes_
        for m in members[1:]:
            if not np.array_equal(m.classes_, classes):
                raise ValueError("the members of an ensemble must have the same classes")
        if multilabel is None:  # from the members' networks
            first = members[0]
            net = first.classifier_.network_ if isinstance(first, TextPipeline) else (
                first.network_)
            multilabel = net.output == "sigmoid"
        self.estimators_ = members
        self._multilabel = bool(multilabel)

    def __sklearn_is_fitted__(self):
        return getattr(self, "estimators_", None) is not None

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise NotFittedError("This SeedEnsemble instance is not fitted yet. Call 'fit' "
                                 "with appropriate arguments before using this estimator.")

    @property
    def classes_(self):
        self._check_fitted()
        return self.estimators_[0].classes_

    def predict_proba(self, X):
        """The mean of the members' probabilities, shape (n_samples, n_classes)."""
        self._check_fitted()
        total = None
        for m in self.estimators_:
            p = m.predict_proba(X)
            total = p if total is None else total + p
        return total / len(self.estimators_)

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The class of largest mean probability; for several labels per example, the
        indicator matrix of the labels whose mean probability reaches the members'
        ``threshold``."""
        p = self.predict_proba(X)
        if self._multilabel:
            first = self.estimators_[0]
            threshold = getattr(first, "threshold", None)
            if threshold is None:
                threshold = first.classifier_.threshold
            return (p >= threshold).astype(np.int64)
        return self.classes_[np.argmax(p, axis=1)]

    def score(self, X, y, sample_weight=None):
        """(Weighted) accuracy of :meth:`predict` (subset accuracy for several labels)."""
        pred = self.predict(X)
        if self._multilabel:
            _, Y = encode_multilabel(y, len(pred), np.asarray(self.classes_))
            hit = np.all(pred == (Y != 0), axis=1)
        else:
            hit = label_hits(pred, y)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        return float(np.average(hit, weights=w))

    # ------------------------------------------------------------- model files
    def save(self, path):
        """Write the fitted ensemble to ``path`` (:func:`cymlp.save`); returns ``path``."""
        self._check_fitted()
        _io.save(self, path)
        return path

    def _to_state(self):
        params = {"n_estimators": int(self.n_estimators),
                  "random_state": int(self.random_state)}
        if not self.__sklearn_is_fitted__():
            return {"estimator": "SeedEnsemble", "params": params, "fitted": None}, {}
        metas, arrays = [], {}
        for k, m in enumerate(self.estimators_):
            meta, member_arrays = m._to_state()
            metas.append(meta)
            arrays.update({f"member{k}.{name}": v for name, v in member_arrays.items()})
        fitted = {"members": metas, "multilabel": self._multilabel}
        return {"estimator": "SeedEnsemble", "params": params, "fitted": fitted}, arrays

    @classmethod
    def _state_arrays(cls, meta):
        """{array name: the most bytes it may hold}: every member's arrays, under its
        prefix (:func:`cymlp.load` reads only these)."""
        fitted = meta.get("fitted")
        members = fitted.get("members") if isinstance(fitted, dict) else None
        if not isinstance(members, list) or not members:
            raise ModelFileError("a SeedEnsemble needs a list of fitted members")
        limits = {}
        for k, m in enumerate(members):
            name = m.get("estimator") if isinstance(m, dict) else None
            if name not in MEMBER_CLASSES:
                raise ModelFileError(f"member {k}: unknown estimator {name!r}; expected one "
                                     f"of {sorted(MEMBER_CLASSES)}")
            limits.update({f"member{k}.{a}": v for a, v in
                           MEMBER_CLASSES[name]._state_arrays(m).items()})
        return limits

    @classmethod
    def _from_state(cls, meta, arrays):
        fitted = meta.get("fitted")
        members = fitted.get("members") if isinstance(fitted, dict) else None
        if not isinstance(members, list) or not members:
            raise ModelFileError("a SeedEnsemble needs a list of fitted members")
        loaded = []
        for k, m in enumerate(members):
            name = m.get("estimator") if isinstance(m, dict) else None
            if name not in MEMBER_CLASSES:
                raise ModelFileError(f"member {k}: unknown estimator {name!r}; expected one "
                                     f"of {sorted(MEMBER_CLASSES)}")
            prefix = f"member{k}."
            loaded.append(MEMBER_CLASSES[name]._from_state(
                m, {a[len(prefix):]: v for a, v in arrays.items() if a.startswith(prefix)}))
        params = meta.get("params") or {}
        seed = params.get("random_state", 0)
        ens = cls.from_members(loaded, random_state=seed if isinstance(seed, int) else 0)
        if not isinstance(fitted.get("multilabel"), bool) or fitted["multilabel"] != (
                ens._multilabel):
            raise ModelFileError("multilabel must be true exactly when the members predict "
                                 "several labels")
        return ens
