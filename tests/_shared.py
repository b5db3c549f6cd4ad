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


# ---------------------------------------------------------------------- fuzzing guards
def _status_kb(field):
    """A field of /proc/self/status in kB (VmRSS, VmHWM, VmSize), or None."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak():
    """Reset the peak resident size (VmHWM) to the current one; False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """The growth of the peak resident memory over a block, in MB.

    ``with PeakMemory() as peak: ...`` then ``peak.grown_mb``: VmHWM at the end less
    VmRSS at the start, VmHWM being reset at the start (Linux), so that a large
    allocation freed before the end still counts. Without /proc, ``grown_mb`` is the
    growth of ``ru_maxrss``, which only shows a peak above the earlier ones.
    """

    def __enter__(self):
        import resource
        self._exact = _reset_peak() and _status_kb("VmRSS") is not None
        self._start = (_status_kb("VmRSS") if self._exact
                       else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return self

    def __exit__(self, *exc):
        import resource
        end = (_status_kb("VmHWM") if self._exact
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        self.grown_mb = max(0, end - self._start) / 1024
        return False


class AddressSpaceLimit:
    """Lower this process's address-space limit to its current size plus ``extra_gb``
    for a block, so that runaway memory use is a MemoryError in the test rather than
    the machine running out; the limit is restored after. Does nothing under
    AddressSanitizer (whose shadow memory needs the address space) or without /proc.
    """

    def __init__(self, extra_gb=2.0):
        self.extra = int(extra_gb * 2**30)
        self._old = None

    def __enter__(self):
        import os
        import resource
        size_kb = _status_kb("VmSize")
        if size_kb is None or "asan" in os.environ.get("LD_PRELOAD", ""):
            return self
        self._old = resource.getrlimit(resource.RLIMIT_AS)
        soft = size_kb * 1024 + self.extra
        if self._old[1] != resource.RLIM_INFINITY:
            soft = min(soft, self._old[1])
        resource.setrlimit(resource.RLIMIT_AS, (soft, self._old[1]))
        return self

    def __exit__(self, *exc):
        import resource
        if self._old is not None:
            resource.setrlimit(resource.RLIMIT_AS, self._old)
        return False


def folder_state(folder):
    """(relative path, size, modification time) of everything under ``folder``: equal
    before and after a call that writes nothing."""
    folder = pathlib.Path(folder)
    return sorted((str(p.relative_to(folder)), p.lstat().st_size, p.lstat().st_mtime_ns)
                  for p in folder.rglob("*"))


def edit_bytes(raw, op, pos, data):
    """Apply one fuzzing edit to ``raw`` (a bytearray) at ``pos`` (< len(raw)):
    flip a byte's bits, overwrite with ``data``, cut the tail, insert ``data``, or
    delete ``len(data)`` bytes."""
    if op == "flip":
        raw[pos] ^= data[0] or 1
    elif op == "set":
        raw[pos:pos + len(data)] = data
    elif op == "cut":
        del raw[pos:]
    elif op == "insert":
        raw[pos:pos] = data
    elif op == "delete":
        del raw[pos:pos + len(data)]
    else:
        raise ValueError(f"unknown edit {op!r}")
