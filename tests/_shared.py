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
