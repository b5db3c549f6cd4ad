"""scikit-learn interoperability without a hard dependency.

When scikit-learn is installed, cymlp's estimators derive from its ``BaseEstimator``
and ``ClassifierMixin`` (so ``clone``, pipelines, grid search and the estimator checks
work) and raise its exception classes. Without it, small stand-ins with the same
behaviour are used.
"""
import copy
import inspect

try:  # pragma: no cover - which branch runs depends on the environment
    from sklearn.base import BaseEstimator, ClassifierMixin, clone
    from sklearn.exceptions import ConvergenceWarning, DataConversionWarning, NotFittedError

    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover
    HAVE_SKLEARN = False

    class NotFittedError(ValueError, AttributeError):
        """The estimator is used before it was fitted."""

    class ConvergenceWarning(UserWarning):
        """Training stopped at ``max_iter`` before the stopping criterion was met."""

    class DataConversionWarning(UserWarning):
        """Input was converted (for example a column vector y raveled)."""

    class BaseEstimator:
        """get_params / set_params from the ``__init__`` signature."""

        @classmethod
        def _get_param_names(cls):
            sig = inspect.signature(cls.__init__)
            return sorted(p.name for p in sig.parameters.values()
                          if p.name != "self" and p.kind != p.VAR_KEYWORD)

        def get_params(self, deep=True):
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params):
            valid = self._get_param_names()
            for key, value in params.items():
                if key not in valid:
                    raise ValueError(
                        f"invalid parameter {key!r} for {type(self).__name__}; "
                        f"valid parameters: {valid}")
                setattr(self, key, value)
            return self

        def __repr__(self):
            sig = inspect.signature(type(self).__init__)
            changed = [f"{n}={getattr(self, n)!r}" for n, p in sig.parameters.items()
                       if n != "self" and getattr(self, n, p.default) is not p.default
                       and getattr(self, n, p.default) != p.default]
            return f"{type(self).__name__}({', '.join(changed)})"

    class ClassifierMixin:
        """``score`` = mean accuracy of ``predict``."""

        _estimator_type = "classifier"

        def score(self, X, y, sample_weight=None):
            import numpy as np
            pred = self.predict(X)
            y = np.asarray(y)
            if sample_weight is None:
                return float(np.mean(pred == y))
            from cymlp._validation import check_score_weights
            w = check_score_weights(sample_weight, len(pred))
            return float(np.sum(w * (pred == y)) / np.sum(w))

    def clone(estimator):
        """A new, unfitted estimator with the same parameters (estimators among the
        parameters are cloned too), as scikit-learn's ``clone``."""
        if isinstance(estimator, (list, tuple)):
            return type(estimator)(clone(e) for e in estimator)
        if not hasattr(estimator, "get_params") or isinstance(estimator, type):
            return copy.deepcopy(estimator)
        params = {name: clone(value) if hasattr(value, "get_params") else
                  copy.deepcopy(value)
                  for name, value in estimator.get_params(deep=False).items()}
        return type(estimator)(**params)
