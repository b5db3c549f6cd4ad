"""A short soak: many small fits in a loop do not make the process grow.

After a warm-up (imports, BLAS buffers, allocator pools), a few hundred more
fit / partial_fit / predict / save / load cycles of both estimators must leave the
resident set size within 5% of its value after the warm-up. A leak of the engine's
buffers (parameters, gradients, workspaces: about a megabyte per fit here) would add
hundreds of megabytes. ``bench/soak.py`` is the long version.
"""

import gc
import os
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

import cymlp
from cymlp import MLPClassifier, TextClassifier
from cymlp.datasets import make_negation_text

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes():
    """Resident set size of this process (``/proc/self/statm``, second field)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def rss_growth(step, *, warmup, repeats, seconds=None):
    """Relative RSS growth over ``repeats`` calls of ``step`` after ``warmup`` calls.

    Stops early after ``seconds`` (if given) and returns ``(growth, calls_made)``.
    """
    for i in range(warmup):
        step(i)
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    made = 0
    for i in range(repeats):
        step(warmup + i)
        made += 1
        if seconds is not None and time.perf_counter() - start > seconds:
            break
    gc.collect()
    return (rss_bytes() - before) / before, made


def _workload(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 40)).astype(np.float32)
    y = rng.integers(0, 4, len(X))
    texts, ty = make_negation_text(300, random_state=0)
    path = tmp_path / "soak.cymlp"

    def step(i):
        kind = i % 3
        if kind == 0:
            model = MLPClassifier((128,), max_iter=3, random_state=i, tol=0.0)
            model.fit(X, y)
            model.partial_fit(X[:50], y[:50])
            model.predict_proba(X)
        elif kind == 1:
            model = TextClassifier((32,), embed_dim=32, max_iter=2, random_state=i,
                                   early_stopping=(i % 2 == 0))
            model.fit(texts, ty)
            model.predict(texts[:100])
        else:
            model = MLPClassifier((64,), solver="sgd", max_iter=2, random_state=i,
                                  dtype="float64")
            model.fit(X, y)
            model.save(path)
            cymlp.load(path).predict(X[:10])

    return step


def test_rss_does_not_grow_over_many_fits(tmp_path):
    step = _workload(tmp_path)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        growth, made = rss_growth(step, warmup=30, repeats=1000, seconds=6.0)
    assert made >= 30, f"only {made} fits in the time budget"
    assert growth < 0.05, f"RSS grew by {100 * growth:.1f}% over {made} fits"


def test_the_measurement_sees_a_leak():
    """Control: the same measurement flags a step that keeps 1 MB per call."""
    kept = []

    def leaky(i):
        kept.append(np.ones(2**18, dtype=np.float32))  # 1 MB, touched

    base = rss_bytes()
    n = max(30, int(0.1 * base / 2**20))  # enough to be 10% of the process
    growth, _ = rss_growth(leaky, warmup=5, repeats=n)
    assert growth > 0.05
