"""Training and prediction from several Python threads.

The engine releases the GIL while it trains and predicts, and keeps every buffer on
the engine (training) or local to the call (prediction), so:

* two models trained at the same time in two threads end with the parameters, bit
  for bit, that they have when trained one after the other (same seeds, one BLAS
  thread);
* one fitted model serves ``predict_proba`` to four threads at once and each gets
  what a sequential call gives;
* while a thread is inside the compiled training loop, another thread runs Python
  code (the GIL is released, not only between batches).
"""

import sys
import threading
import time

import numpy as np
import pytest
from _shared import dense_inputs
from threadpoolctl import threadpool_limits

from cymlp import MLPClassifier, TextClassifier
from cymlp._compat import ConvergenceWarning
from cymlp.datasets import make_negation_text

# warnings.catch_warnings is not thread-safe: filter for the whole module instead
pytestmark = pytest.mark.filterwarnings("ignore", category=ConvergenceWarning)


def _blobs(n=1500, d=20, m=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.standard_normal((m, d))
    y = rng.integers(0, m, n)
    X = centres[y] + rng.standard_normal((n, d))
    return X, y


def _run_in_threads(functions):
    """Run the callables at once (released together by a barrier); re-raise errors."""
    barrier = threading.Barrier(len(functions))
    results = [None] * len(functions)
    errors = []

    def target(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i, fn)) for i, fn in enumerate(functions)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return results


def _state(model):
    """Everything a fit determines: flat parameters, E, loss curve."""
    return (model._engine.params.copy(), model._engine.E.copy(), list(model.loss_curve_))


def _assert_same_state(a, b):
    assert np.array_equal(a[0], b[0]), "parameters differ"
    assert np.array_equal(a[1], b[1]), "embedding tables differ"
    assert a[2] == b[2], "loss curves differ"


def _fit(make, X, y):
    return make().fit(X, y)


# ------------------------------------------------------------------ training
def _mlp(seed):
    return MLPClassifier((64, 32), random_state=seed, max_iter=6, batch_size=32)


def _text(seed):
    return TextClassifier((32,), embed_dim=16, random_state=seed, max_iter=3,
                          early_stopping=True)


@pytest.mark.parametrize("kind", ["mlp", "text"])
def test_two_models_trained_at_once_equal_the_same_trained_in_turn(kind):
    if kind == "mlp":
        X, y = _blobs()
        make = _mlp
    else:
        X, y = make_negation_text(1200, random_state=0)
        make = _text
    with threadpool_limits(1):
        first = _state(_fit(lambda: make(1), X, y))
        second = _state(_fit(lambda: make(2), X, y))
        together = _run_in_threads([lambda: _fit(lambda: make(1), X, y),
                                    lambda: _fit(lambda: make(2), X, y)])
    _assert_same_state(_state(together[0]), first)
    _assert_same_state(_state(together[1]), second)
    # the two seeds give different models, so the comparison can tell them apart
    assert not np.array_equal(first[0], second[0])


# ------------------------------------------------------------------ prediction
@pytest.mark.parametrize("kind", ["mlp", "text"])
def test_shared_model_predicts_in_four_threads_as_in_sequence(kind):
    if kind == "mlp":
        X, y = _blobs()
        model = _fit(lambda: _mlp(0), X, y)
        rng = np.random.default_rng(1)
        inputs = [rng.standard_normal((2500 + 100 * i, X.shape[1])) * (1 + i)
                  for i in range(4)]
    else:
        X, y = make_negation_text(1200, random_state=0)
        model = _fit(lambda: _text(0), X, y)
        inputs = [make_negation_text(1500 + 100 * i, random_state=10 + i)[0]
                  for i in range(4)]
    with threadpool_limits(1):
        expected = [model.predict_proba(inp) for inp in inputs]
        got = _run_in_threads([(lambda inp=inp: [model.predict_proba(inp) for _ in range(3)])
                               for inp in inputs])
    for want, repeats in zip(expected, got):
        for proba in repeats:
            assert np.array_equal(proba, want)
    # the inputs differ, so a mix-up between threads would show
    assert not np.array_equal(expected[0][:100], expected[1][:100])


# ------------------------------------------------------------------ the GIL
def test_gil_is_released_inside_the_training_loop():
    """A pure-Python counter in the main thread advances while the other thread is
    inside one ``Engine.train`` call (one C call over every batch of an epoch).

    The switch interval is made huge, so the interpreter never takes the GIL away
    from a thread: the main thread can run during the call only if the call itself
    releases the GIL. The main thread hands the GIL back now and then
    (``time.sleep(0)``) so the worker can return from the call.
    """
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12000, 100)).astype(np.float32)  # one call: ~0.1-0.3 s
    y = rng.integers(0, 5, len(X))
    model = MLPClassifier((256,), solver="sgd", momentum=0.0, random_state=0)
    model._initialize(X, y)
    engine = model._engine
    inputs = dense_inputs(X)
    y_idx = np.ascontiguousarray(y, dtype=np.intc)
    order = np.arange(len(X), dtype=np.intp)
    counter = [0]
    advanced = []
    ready = threading.Event()
    done = threading.Event()

    def train():
        try:
            before = counter[0]
            ready.set()  # does not give up the GIL
            engine.train(inputs, y_idx, order, engine.t_max, 0.01)
            advanced.append(counter[0] - before)
        finally:
            ready.set()
            done.set()

    interval = sys.getswitchinterval()
    with threadpool_limits(1):
        sys.setswitchinterval(1000.0)
        try:
            worker = threading.Thread(target=train)
            worker.start()
            ready.wait()  # blocks, releasing the GIL to the worker
            while not done.is_set():
                counter[0] += 1
                if counter[0] % 1000 == 0:
                    time.sleep(0)  # let the worker take the GIL back
            worker.join()
        finally:
            sys.setswitchinterval(interval)
    assert len(advanced) == 1
    # between its two reads of the counter the worker ran no Python code and was
    # never asked to give up the GIL: only a released GIL lets the counter move
    assert advanced[0] > 0


# ------------------------------------------------------------------ n_jobs
@pytest.mark.parametrize("kind", ["dense", "sparse", "window", "bag"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_prediction_with_several_threads_equals_one_thread_bitwise(kind, dtype):
    """n_jobs shares the chunks of rows among threads; every chunk is computed as one
    thread computes it, so the probabilities are bitwise the same (and the rows are
    many chunks, so the threads really split them)."""
    rng = np.random.default_rng(0)
    if kind in ("dense", "sparse"):
        X = rng.standard_normal((5000, 40)) * (rng.random((5000, 40)) < 0.3)
        y = np.arange(5000) % 4
        model = MLPClassifier((32, 16), max_iter=2, random_state=0, dtype=dtype)
        if kind == "sparse":
            from scipy import sparse
            X = sparse.csr_matrix(X)
    else:
        X, y = make_negation_text(5000, random_state=0)
        model = TextClassifier((16,), encoder=kind, embed_dim=8, window=8, max_iter=1,
                               early_stopping=False, random_state=0, dtype=dtype)
    with pytest.warns(ConvergenceWarning):
        model.fit(X, y)
    one = model.predict_proba(X)
    for n_jobs in (2, 3, -1):
        model.set_params(n_jobs=n_jobs)
        np.testing.assert_array_equal(model.predict_proba(X), one)
        np.testing.assert_array_equal(model.predict(X), model.classes_[np.argmax(one, 1)])
    model.set_params(n_jobs=None)


def test_engine_forward_threads_keep_hidden_and_reject_bad_counts():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3000, 10)).astype(np.float32)
    model = MLPClassifier((12,), max_iter=1, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model.fit(X, np.arange(3000) % 3)
    inputs = dense_inputs(X)
    one = model._engine.forward(inputs, keep_hidden=True)
    four = model._engine.forward(inputs, keep_hidden=True, n_jobs=4)
    for a, b in zip([one[0]] + one[1] + one[2], [four[0]] + four[1] + four[2]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="n_jobs must be >= 1"):
        model._engine.forward(inputs, n_jobs=0)
    with pytest.raises(ValueError, match=r"n_jobs must be None, -1 \(every core\) or an int"):
        model.set_params(n_jobs=0).predict(X)
