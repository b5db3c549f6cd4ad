"""What a model found by :func:`cymlp.autotune` carries: the record of its search.

:class:`TunedMixin` gives every classifier the search can return (``MLPClassifier``,
``TextClassifier``, ``TextPipeline``, ``SeedEnsemble``) the same read-only view of it:
``autotune_trials_`` (one row per trial, a pandas DataFrame), ``autotune_records()``
(the same as plain JSON values, for a run record), ``autotune_summary_`` and
``best_params_``. The search itself (``cymlp.autotune``) knows the estimators; this
module knows none, so the estimators can import it.
"""

__all__ = ["TunedMixin", "check_budget", "fit_autotuned"]


def check_budget(name, value):
    """None, or a positive number of seconds."""
    import math
    import numbers

    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be None or a positive number of seconds, got "
                         f"{value!r}")
    return float(value)


class TunedMixin:
    """The record of the search that chose this model (set by ``cymlp.autotune``)."""

    def _autotune_result(self, name):
        result = getattr(self, "_autotune", None)
        if result is None:
            raise AttributeError(f"{name} is set when the model comes from cymlp.autotune "
                                 "(or a fit with autotune_budget)")
        return result

    @property
    def autotune_trials_(self):
        """One row per trial of the search (pandas DataFrame; needs pandas): trial,
        family, status, dev_score, best_epoch, epochs, seconds, started, error, and
        one ``param_<name>`` column per hyper-parameter."""
        return self._autotune_result("autotune_trials_").trials_frame()

    @property
    def autotune_summary_(self):
        """The search as a whole (a dict of JSON values): budget, seconds used, trials
        by status, the best trial and its dev score, the refit."""
        return self._autotune_result("autotune_summary_").summary()

    @property
    def best_params_(self):
        """The chosen configuration: family, n_estimators and the estimator's
        parameters (JSON values)."""
        return self._autotune_result("best_params_").best_params()

    def autotune_records(self):
        """Every trial as a dict of plain JSON values (``json.dumps`` takes them as
        they are): trial, family, params, status, dev_score, best_epoch, epochs,
        seconds, started, error, rung_scores."""
        return self._autotune_result("autotune_records").records()


def fit_autotuned(estimator, X, y, validation_data=None, sample_weight=None):
    """``estimator.fit`` with ``autotune_budget`` set: search the estimator's own
    family for that many seconds and take the refitted best network as its fitted
    state (its parameters are left as they are; ``best_params_`` holds the choice)."""
    from cymlp.tuning import autotune

    s = estimator._validate_params()
    if s["warm_start"]:
        raise ValueError("warm_start=True cannot be combined with autotune_budget: the "
                         "search trains new networks; set one of them off")
    seed = s["random_state"]
    if not isinstance(seed, int):  # None, a Generator, a SeedSequence: draw the seed
        from cymlp._validation import make_rng
        seed = int(make_rng(seed).integers(2**31 - 1))
    validation = validation_data if validation_data is not None else 3
    base = estimator.__class__(**{**estimator.get_params(deep=False),
                                  "autotune_budget": None})
    model = autotune(base, X, y, time_budget=s["autotune_budget"], validation=validation,
                     random_state=seed, ensembles=False, verbose=s["verbose"],
                     sample_weight=sample_weight)
    # the search returns a new estimator of the same class: take its fitted state
    estimator._fitted = model._fitted
    estimator._autotune = model._autotune
    return estimator
