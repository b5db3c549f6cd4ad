"""Assertion shared by the trajectory tests: a model's parameters against expected arrays."""
import numpy as np


def assert_params_close(model, weights, biases, tol):
    """coefs_ == weights and intercepts_ == biases (None where a layer has no bias)."""
    for l, (got, want) in enumerate(zip(model.coefs_, weights)):
        np.testing.assert_allclose(got, want, **tol, err_msg=f"coefs_[{l}]")
    for l, (got, want) in enumerate(zip(model.intercepts_, biases)):
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, **tol, err_msg=f"intercepts_[{l}]")
