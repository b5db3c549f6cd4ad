"""Reading model files of model version 1 (cymlp 0.1.0 before the network description).

Those files hold the hyper-parameters, the classes, the flat parameters (and for text
models the vocabulary, the encoder and ``E``) but no network description, optimiser
state or training record beyond ``n_iter`` and ``loss_curve``. :func:`upgrade` turns
them into the current state: the network is described from the hyper-parameters they
were written with, the optimiser starts afresh at the next ``partial_fit``.
"""
import numpy as np

from cymlp.io import ModelFileError

__all__ = ["upgrade"]

_CLASS_DTYPES = {"int": np.int64, "float": np.float64, "bool": bool}


def _classes(meta, arrays):
    labels, kind = meta.get("classes"), meta.get("classes_kind")
    if not isinstance(labels, list):
        raise ModelFileError("'classes' must be a list")
    if kind == "str":
        return {"kind": "str", "values": labels}
    if kind not in _CLASS_DTYPES:
        raise ModelFileError(f"unknown classes_kind {kind!r}")
    try:
        arrays["classes"] = np.asarray(labels, dtype=_CLASS_DTYPES[kind])
    except (TypeError, ValueError, OverflowError):
        raise ModelFileError(f"classes do not match classes_kind {kind!r}") from None
    return {"kind": "array"}


def upgrade(cls, meta, arrays):
    """(meta, arrays) of the current model version from a version-1 file's."""
    params = meta.get("params")
    if not isinstance(params, dict):
        raise ModelFileError("'params' missing or not an object")
    p = {**cls().get_params(), **params}
    arrays = dict(arrays)
    text = cls.__name__ == "TextClassifier"
    hidden = p["hidden_layer_sizes"]
    hidden = [hidden] if isinstance(hidden, int) else hidden
    network = {"hidden": hidden, "activation": p["activation"], "bias": p["bias"],
               "dtype": meta.get("dtype"), "leaky_slope": p["leaky_slope"],
               "swish_beta": p["swish_beta"], "embedding": None}
    if text:
        vocabulary = meta.get("vocabulary")
        kind, window = meta.get("encoder"), meta.get("window")
        if not isinstance(vocabulary, dict) or not isinstance(vocabulary.get("id_to_token"), list):
            raise ModelFileError("bad vocabulary")
        if kind not in ("bag", "window") or isinstance(window, bool) or not isinstance(window, int):
            raise ModelFileError("bad encoder or window")
        settings = {k: p[k] for k in ("ngram_range", "char_ngram_range", "min_count",
                                      "lowercase", "pooling", "token_weights")}
        settings.update(encoder=kind, window=window, max_vocab=p["max_vocab"], n_buckets=None)
        embed_dim = p["embed_dim"]
        network["n_features"] = embed_dim * window if kind == "window" else embed_dim
        network["embedding"] = {
            "kind": kind, "n_vocab": len(vocabulary["id_to_token"]), "embed_dim": embed_dim,
            "window": window if kind == "window" else 0,
            "pool_mean": p["pooling"] == "mean" and p["char_ngram_range"] is None}
        encoder = {"settings": settings, "vocabulary": vocabulary}
        if "idf" in arrays:
            arrays["encoder.idf"] = arrays.pop("idf")
    else:
        network["n_features"] = meta.get("n_features_in")
        encoder = {"n_features_in": meta.get("n_features_in"),
                   "feature_names_in": meta.get("feature_names_in")}
    classes = _classes(meta, arrays)
    network["n_outputs"] = len(meta["classes"])
    record = {"lr": p["learning_rate_init"], "n_iter": meta.get("n_iter", 0), "t": 0,
              "loss_curve": meta.get("loss_curve", []), "validation_scores": None,
              "best_validation_score": None, "best_loss": None, "no_improvement_count": 0,
              "armed": False, "best_epoch": None, "history": []}
    fitted = {"classes": classes, "network": network, "encoder": encoder,
              "record": record, "optimizer": None, "rng": None}
    return {"estimator": cls.__name__, "params": params, "fitted": fitted}, arrays
