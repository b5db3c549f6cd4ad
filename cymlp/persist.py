"""Saving and loading fitted models as bundles (``cymlp.io``): JSON + ``.npy``, no pickle.

The metadata holds the estimator's class name and hyper-parameters, the classes, the
vocabulary (text models) and the training record; the arrays are the flat parameter
vector (``W[0], b[0], W[1], ...``, layout of ``docs/model.md``), the embedding table
and the idf weights. Loading rebuilds the estimator from the hyper-parameters and checks
every array against the shapes they imply, so a damaged or inconsistent file gives a
:class:`cymlp.io.ModelFileError`, never a model that computes garbage.
"""
import numbers

import numpy as np

from cymlp.io import ModelFileError, load_bundle, save_bundle

__all__ = ["save_model", "load", "ModelFileError"]

_TUPLE_PARAMS = ("hidden_layer_sizes", "ngram_range", "char_ngram_range")


def _estimators():
    from cymlp.mlp import MLPClassifier
    from cymlp.text import TextClassifier
    return {"MLPClassifier": MLPClassifier, "TextClassifier": TextClassifier}


def _jsonable_params(est):
    out = {}
    for key, value in est.get_params().items():
        if key == "random_state" and not (value is None or isinstance(value, numbers.Integral)):
            value = None  # a Generator's state is not part of the model
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def _labels_to_json(classes):
    values = classes.tolist()
    for kind, types in (("int", numbers.Integral), ("str", str), ("float", numbers.Real)):
        if all(isinstance(v, types) and not isinstance(v, bool) for v in values):
            return kind, values
    if all(isinstance(v, bool) for v in values):
        return "bool", values
    raise TypeError("only models whose labels are all int, all str, all float or all bool "
                    f"can be saved; got labels {values[:5]!r}")


def save_model(est, path):
    """Write a fitted MLPClassifier or TextClassifier to ``path`` (atomic)."""
    est._check_fitted()
    est._sync_params()
    kind, labels = _labels_to_json(est.classes_)
    meta = {
        "estimator": type(est).__name__,
        "params": _jsonable_params(est),
        "classes": labels,
        "classes_kind": kind,
        "dtype": np.dtype(est.dtype).name,
        "n_iter": int(est.n_iter_),
        "loss_curve": [float(v) for v in est.loss_curve_],
    }
    from cymlp import __version__
    meta["cymlp_version"] = __version__
    arrays = {"params": est._engine.params}
    if type(est).__name__ == "TextClassifier":
        meta["vocabulary"] = est.vocabulary_.to_dict()
        meta["encoder"] = est._encoder_
        meta["window"] = est._window_
        arrays["E"] = est._engine.E
        if est._idf is not None:
            arrays["idf"] = est._idf
    else:
        meta["n_features_in"] = int(est.n_features_in_)
        if hasattr(est, "feature_names_in_"):
            meta["feature_names_in"] = [str(v) for v in est.feature_names_in_]
    save_bundle(path, meta, arrays)


def _n_params(est, sizes):
    """Length of the flat parameter vector the hyper-parameters imply (no allocation)."""
    from cymlp.activations import CODES
    widths = list(sizes) + [len(est.classes_)]
    swiglu = CODES[est.activation] == CODES["swiglu"]
    fan_in, total = est._n_input_features(), 0
    for l, width in enumerate(widths):
        hidden = l < len(widths) - 1
        fan_out = 2 * width if (hidden and swiglu) else width
        total += fan_in * fan_out
        if est.bias in (("both", "hidden") if hidden else ("both", "output")):
            total += fan_out
        fan_in = width
    return total


def _expect(cond, path, what):
    if not cond:
        raise ModelFileError(f"{path}: {what}")


def load(path):
    """Read a model written by ``save``; returns a fitted estimator.

    Raises
    ------
    FileNotFoundError
    cymlp.io.ModelFileError
        Damaged, truncated, inconsistent (an array of the wrong shape or dtype),
        written by a newer cymlp, or not a cymlp model.
    """
    meta, arrays = load_bundle(path)
    estimators = _estimators()
    name = meta.get("estimator")
    _expect(name in estimators, path, f"unknown estimator {name!r}; expected one of "
            f"{sorted(estimators)}")
    cls = estimators[name]
    params = meta.get("params")
    _expect(isinstance(params, dict), path, "'params' missing or not an object")
    valid = set(cls().get_params())
    unknown = set(params) - valid
    _expect(not unknown, path, f"unknown parameters {sorted(unknown)}")
    params = {k: tuple(v) if k in _TUPLE_PARAMS and isinstance(v, list) else v
              for k, v in params.items()}
    est = cls(**params)
    try:
        sizes = est._validate_params()
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: invalid parameters: {exc}") from None
    labels = meta.get("classes")
    _expect(isinstance(labels, list) and len(labels) >= 2, path, "'classes' must list "
            "at least 2 labels")
    kind = meta.get("classes_kind")
    dtypes = {"int": np.int64, "str": str, "float": np.float64, "bool": bool}
    _expect(kind in dtypes, path, f"unknown classes_kind {kind!r}")
    try:
        est.classes_ = np.asarray(labels, dtype=dtypes[kind])
    except (TypeError, ValueError):
        raise ModelFileError(f"{path}: classes do not match classes_kind {kind!r}") from None
    _expect(np.dtype(est.dtype).name == meta.get("dtype"), path, "dtype does not match "
            "the parameters")
    if name == "TextClassifier":
        from cymlp.vocab import Vocabulary
        try:
            est.vocabulary_ = Vocabulary.from_dict(meta["vocabulary"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: bad vocabulary: {exc}") from None
        given = est.char_ngram_range
        _expect((None if given is None else tuple(given))
                == est.vocabulary_.char_ngram_range, path,
                "char_ngram_range of the parameters and of the vocabulary differ")
        est._encoder_ = meta.get("encoder")
        est._window_ = meta.get("window")
        _expect(est._encoder_ in ("bag", "window"), path, "bad encoder")
        _expect(isinstance(est._window_, int) and est._window_ >= 1, path, "bad window")
        est._idf = arrays.get("idf")
        if est._idf is not None:
            _expect(est._idf.shape == (len(est.vocabulary_),), path,
                    f"idf has shape {est._idf.shape}, expected ({len(est.vocabulary_)},)")
            est._idf = np.ascontiguousarray(est._idf, dtype=est.dtype)
    else:
        n_features = meta.get("n_features_in")
        _expect(isinstance(n_features, int) and n_features >= 1, path,
                "'n_features_in' missing or not a positive int")
        est.n_features_in_ = n_features
        if "feature_names_in" in meta:
            est.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
    flat = arrays.get("params")
    _expect(flat is not None, path, "no 'params' array")
    expected = _n_params(est, sizes)
    _expect(flat.shape == (expected,), path,
            f"'params' has shape {flat.shape}, but the model described needs ({expected},)")
    try:
        est._engine = est._build_engine(sizes, est._n_input_features(),
                                        np.random.default_rng(0))
    except MemoryError as exc:
        raise ModelFileError(f"{path}: the model it describes does not fit in memory: "
                             f"{exc}") from None
    _expect(flat.shape == est._engine.params.shape, path,
            f"'params' has shape {flat.shape}, but the model described needs "
            f"{est._engine.params.shape}")
    _expect(flat.dtype == est._engine.params.dtype, path,
            f"'params' has dtype {flat.dtype}, expected {est._engine.params.dtype}")
    _expect(bool(np.isfinite(flat).all()), path, "'params' contains NaN or infinity")
    est._engine.params[...] = flat
    if name == "TextClassifier":
        E = arrays.get("E")
        _expect(E is not None and E.shape == est._engine.E.shape
                and E.dtype == est._engine.E.dtype, path,
                f"'E' must be {est._engine.E.dtype} of shape {est._engine.E.shape}")
        _expect(bool(np.isfinite(E).all()), path, "'E' contains NaN or infinity")
        est._engine.E[...] = E
    est._expose_params()
    est._reset_training_state()
    est.n_iter_ = int(meta.get("n_iter", 0))
    est.loss_curve_ = [float(v) for v in meta.get("loss_curve", [])]
    est._rng = np.random.default_rng(est.random_state if isinstance(est.random_state, int)
                                     else None)
    return est
