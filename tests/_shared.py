"""Helpers shared by several test modules."""
import importlib
import importlib.util
import pathlib
import sys

import numpy as np


def import_cymlp_module(name):
    """Import ``cymlp.<name>``, or load the file alone if the package cannot import
    (the pure-Python modules stay testable without the compiled extension)."""
    try:
        return importlib.import_module(f"cymlp.{name}")
    except ImportError:
        path = pathlib.Path(__file__).resolve().parents[1] / "cymlp" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"_cymlp_file_{name}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module


def assert_params_close(model, weights, biases, tol):
    """coefs_ == weights and intercepts_ == biases (None where a layer has no bias)."""
    for l, (got, want) in enumerate(zip(model.coefs_, weights)):
        np.testing.assert_allclose(got, want, **tol, err_msg=f"coefs_[{l}]")
    for l, (got, want) in enumerate(zip(model.intercepts_, biases)):
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, **tol, err_msg=f"intercepts_[{l}]")


def make_engine(n_features, widths, activation, biases, dtype, *, encoder="dense", window=0,
                embed_dim=0, n_vocab=0, pool_mean=True, leaky_slope=0.01, swish_beta=1.0):
    """An engine for a network of hidden ``widths[:-1]`` and ``widths[-1]`` classes, with
    one bias flag per layer in ``biases`` (any combination, not only the placements)."""
    from cymlp._mlp import Engine

    from cymlp._network import Embedding, Network

    embedding = None if encoder == "dense" else Embedding(
        encoder, n_vocab, embed_dim, window if encoder == "window" else 0, pool_mean)
    network = Network.build(n_features=n_features, hidden=list(widths[:-1]),
                            n_outputs=widths[-1], activation=activation, bias=tuple(biases),
                            dtype=dtype, leaky_slope=leaky_slope, swish_beta=swish_beta,
                            embedding=embedding)
    return Engine(network)


def token_inputs(ids, indptr=None, tokw=None, dtype=np.float64, n_vocab=None):
    """Engine inputs from window ids, or from a bag's CSR arrays and token weights."""
    from cymlp._inputs import TokenInputs

    return TokenInputs(ids, indptr, tokw, dtype=dtype if tokw is None else tokw.dtype,
                       n_vocab=n_vocab)


def dense_inputs(X):
    from cymlp._inputs import DenseInputs

    return DenseInputs(X)


def layers_of(engine):
    """(weights, biases) of an engine as the reference takes them (copies)."""
    weights, biases = [], []
    for layer in engine.network.layers:
        weights.append(engine.params[layer.w_slice].reshape(layer.w_shape).copy())
        biases.append(None if not layer.has_bias else engine.params[layer.b_slice].copy())
    return weights, biases
