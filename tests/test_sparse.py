"""Sparse input (SciPy CSR; CSC and COO converted) to MLPClassifier, never densified.

The engine multiplies the first layer from the nonzeros (``K = X W`` row by row) and
forms the first layer's weight gradient from them (``X^T dK``); every optimiser takes
the exact step, so the parameters equal those of the same data given dense.
"""
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from scipy import sparse

from cymlp import MLPClassifier, gradcheck

SOLVERS = {
    "sgd": {"solver": "sgd", "momentum": 0.0},
    "sgd_l2": {"solver": "sgd", "momentum": 0.0, "alpha": 0.3},
    "momentum": {"solver": "sgd", "momentum": 0.9, "nesterovs_momentum": False},
    "nesterov": {"solver": "sgd", "momentum": 0.9, "nesterovs_momentum": True},
    "adagrad": {"solver": "adagrad"},
    "adam": {"solver": "adam", "alpha": 0.01},
}


def _data(n=20, d=30, seed=0):
    """Sparse rows with empty rows and all-zero columns, labels in 3 classes."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.15)
    X[[3, 11]] = 0.0  # empty rows
    X[:, [0, 7, 29]] = 0.0  # columns never used
    y = np.arange(n) % 3
    return X, y


def _model(**params):
    base = {"hidden_layer_sizes": (6,), "activation": "tanh", "dtype": "float64",
            "batch_size": 4, "random_state": 0, "learning_rate_init": 0.1}
    return MLPClassifier(**{**base, **params})


@pytest.mark.parametrize("solver", list(SOLVERS))
def test_sparse_trajectory_equals_dense(solver):
    """Five minibatch steps (one shuffled epoch of 20 rows) from the same start."""
    X, y = _data()
    dense = _model(**SOLVERS[solver]).partial_fit(X, y)
    csr = _model(**SOLVERS[solver]).partial_fit(sparse.csr_matrix(X), y)
    assert dense.n_iter_ == csr.n_iter_ == 1
    for a, b in zip(csr.coefs_ + csr.intercepts_, dense.coefs_ + dense.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert csr.loss_curve_ == pytest.approx(dense.loss_curve_, rel=1e-10)
    # and a second epoch, continuing the optimiser state
    dense.partial_fit(X, y)
    csr.partial_fit(sparse.csr_matrix(X), y)
    for a, b in zip(csr.coefs_, dense.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_other_formats_and_prediction(fmt):
    X, y = _data()
    model = _model(max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(sparse.csr_matrix(X).asformat(fmt), y)
    np.testing.assert_allclose(model.predict_proba(sparse.csr_matrix(X).asformat(fmt)),
                               model.predict_proba(X), rtol=1e-12)
    # a model trained dense predicts sparse input as well
    assert model.n_features_in_ == X.shape[1]


def test_float32_sparse_matches_dense():
    X, y = _data()
    dense = _model(dtype="float32").partial_fit(X, y)
    csr = _model(dtype="float32").partial_fit(sparse.csr_matrix(X, dtype=np.float32), y)
    for a, b in zip(csr.coefs_, dense.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_gradcheck_on_sparse_input():
    X, y = _data(12)
    model = _model(hidden_layer_sizes=(3,), alpha=0.2, label_smoothing=0.1)
    model._initialize(sparse.csr_matrix(X), y)
    errors = gradcheck(model, sparse.csr_matrix(X), y)
    assert max(errors.values()) < 1e-6, errors


def test_plain_sgd_leaves_the_weights_of_absent_features_alone():
    X, y = _data()
    model = _model(solver="sgd", momentum=0.0, alpha=0.0)
    model._initialize(sparse.csr_matrix(X), y)
    before = model.coefs_[0].copy()
    model.partial_fit(sparse.csr_matrix(X), y)
    unused = [0, 7, 29]
    np.testing.assert_array_equal(model.coefs_[0][unused], before[unused])
    assert np.all(np.any(model.coefs_[0][[1, 2]] != before[[1, 2]], axis=1))


def test_in_a_pipeline_after_tfidf():
    pipeline = pytest.importorskip("sklearn.pipeline")
    text = pytest.importorskip("sklearn.feature_extraction.text")
    from cymlp.datasets import make_negation_text

    texts, y = make_negation_text(400, random_state=0)
    params = {"hidden_layer_sizes": (16,), "max_iter": 40, "learning_rate_init": 0.01,
              "dtype": "float64", "random_state": 0}
    pipe = pipeline.make_pipeline(text.TfidfVectorizer(ngram_range=(1, 2)),
                                  MLPClassifier(**params))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(texts, y)
        # the same features given dense: the same model
        tfidf = text.TfidfVectorizer(ngram_range=(1, 2)).fit(texts)
        dense = MLPClassifier(**params).fit(tfidf.transform(texts).toarray(), y)
    assert pipe.score(texts, y) > 0.95
    np.testing.assert_allclose(pipe.predict_proba(texts[:50]),
                               dense.predict_proba(tfidf.transform(texts[:50]).toarray()),
                               rtol=1e-8, atol=1e-10)


def test_sparse_errors():
    X, y = _data()
    bad = sparse.csr_matrix(X)
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="contains NaN or infinity"):
        _model().fit(bad, y)
    model = _model(max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(sparse.csr_matrix(X), y)
    with pytest.raises(ValueError, match="X has 31 features, but MLPClassifier is expecting 30"):
        model.predict(sparse.csr_matrix(np.zeros((2, 31))))


def test_peak_memory_of_a_million_columns_stays_far_below_dense():
    """2,000 rows x 1,000,000 columns (dense: 8 GB in float32) with 20 nonzeros a row:
    the fit raises the process's peak resident memory by less than 500 MB, a sixteenth of
    the dense matrix alone (the first layer's 8 x 1e6 weights, their gradient and Adam's
    state take 128 MB of it). The peak is measured from the one reached before the fit,
    so that the interpreter's own size (larger under AddressSanitizer) does not count."""
    code = textwrap.dedent("""
        import resource, warnings
        import numpy as np
        from scipy import sparse
        from cymlp import MLPClassifier
        rng = np.random.default_rng(0)
        n, d, k = 2000, 1_000_000, 20
        rows = np.repeat(np.arange(n), k)
        cols = rng.integers(0, d, n * k)
        X = sparse.csr_matrix((rng.random(n * k).astype(np.float32), (rows, cols)),
                              shape=(n, d))
        y = cols.reshape(n, k)[:, 0] % 2
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MLPClassifier((8,), max_iter=2, batch_size=64, random_state=0).fit(X, y)
        assert model.predict(X[:10]).shape == (10,)
        print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    before_kb, peak_kb = (int(v) for v in proc.stdout.split()[-2:])
    rise_mb = (peak_kb - before_kb) / 1024
    assert rise_mb < 500, f"the fit raised peak RSS by {rise_mb:.0f} MB"
