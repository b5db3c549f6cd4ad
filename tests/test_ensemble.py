"""SeedEnsemble: the members are the estimator trained from consecutive seeds, and the
ensemble's probabilities their mean; model files keep every member."""
import warnings

import numpy as np
import pytest

import cymlp
from cymlp import MLPClassifier, SeedEnsemble, TextClassifier, TextPipeline, datasets


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def split():
    return datasets.load("negation", n_samples=300, seed=3)


@pytest.mark.parametrize("make", [
    pytest.param(lambda: TextClassifier((8,), embed_dim=8, max_iter=3), id="text"),
    pytest.param(lambda: TextPipeline(), id="pipeline"),
])
def test_members_are_seeded_copies_and_probabilities_are_averaged(split, make):
    ens = SeedEnsemble(make(), n_estimators=3, random_state=5).fit(
        *split.train, validation_data=split.dev)
    probe = split.test[0][:80]
    singles = [make().set_params(random_state=5 + k).fit(*split.train,
                                                          validation_data=split.dev)
               for k in range(3)]
    want = np.mean([m.predict_proba(probe) for m in singles], axis=0)
    np.testing.assert_allclose(ens.predict_proba(probe), want, rtol=1e-12)
    assert not np.allclose(singles[0].predict_proba(probe), singles[1].predict_proba(probe))
    np.testing.assert_array_equal(ens.predict(probe), ens.classes_[want.argmax(axis=1)])
    assert ens.score(*split.test) == np.mean(ens.predict(split.test[0]) == split.test[1])


def test_ensemble_round_trips(split, tmp_path):
    ens = SeedEnsemble(MLPClassifier((4,), max_iter=5), n_estimators=2, random_state=0)
    X = np.random.default_rng(0).standard_normal((60, 3))
    y = (X[:, 0] > 0).astype(int)
    ens.fit(X, y)
    loaded = cymlp.load(ens.save(tmp_path / "ens"))
    assert isinstance(loaded, SeedEnsemble) and len(loaded.estimators_) == 2
    np.testing.assert_array_equal(loaded.predict_proba(X), ens.predict_proba(X))


def test_bad_ensembles():
    with pytest.raises(ValueError, match="estimator must be one of"):
        SeedEnsemble("tree").fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(ValueError, match="n_estimators must be"):
        SeedEnsemble(MLPClassifier(), n_estimators=0).fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(cymlp._compat.NotFittedError):
        SeedEnsemble(MLPClassifier()).predict([[0.0]])
