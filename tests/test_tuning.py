"""cymlp.autotune: determinism, the test split kept out, the budget, the trial records,
failed trials, the estimators' autotune_budget, both searches.

Small generated data (texts whose class is given by one keyword among filler words,
with some labels flipped; blobs): every model family learns it in a few epochs, so a
trial takes a fraction of a second.
"""
import dataclasses
import json
import signal
import sys
import time
import warnings

import numpy as np
import pytest

import cymlp
from cymlp import MLPClassifier, SeedEnsemble, TextClassifier, TextPipeline
from cymlp.tuning import STATUSES, autotune_splits, sample_configuration

#: the keys of every trial's record
RECORD_KEYS = {"trial", "stage", "based_on", "blend_of", "family", "n_estimators", "params",
               "status", "dev_score", "fold_scores", "best_epoch", "epochs", "rung_scores",
               "seconds", "started", "error"}
#: the keys that hold wall times (the rest of a record is reproducible)
TIMES = ("seconds", "started")


@pytest.fixture(autouse=True)
def _quiet():
    """No warnings, and one BLAS thread (as the benchmarks): on a loaded machine a
    multi-threaded BLAS makes the small products of these trials many times slower."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if threadpool_limits is None:
            yield
        else:
            with threadpool_limits(1):
                yield


@dataclasses.dataclass
class _Splits:
    train: tuple
    dev: tuple
    test: tuple


def _keywords(n, seed, noise=0.1):
    """``n`` texts of 3 to 7 filler words and one keyword of its class (3 classes), a
    share ``noise`` of the labels drawn at random."""
    rng = np.random.default_rng(seed)
    filler = [f"w{i}" for i in range(40)]
    keys = [["good", "great"], ["bad", "awful"], ["odd", "strange"]]
    texts, labels = [], []
    for _ in range(n):
        c = int(rng.integers(3))
        words = [str(w) for w in rng.choice(filler, int(rng.integers(3, 8)))]
        words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(keys[c])))
        texts.append(" ".join(words))
        labels.append(int(rng.integers(3)) if rng.random() < noise else c)
    return texts, np.array(labels)


@pytest.fixture(scope="module")
def data():
    """Training, development and test keyword texts."""
    return _Splits(_keywords(300, 1), _keywords(150, 2), _keywords(150, 3))


def _untimed(records):
    return [{k: v for k, v in r.items() if k not in TIMES} for r in records]


class _Alarm:
    """Fail (rather than hang) if the block runs longer than ``seconds``."""

    def __init__(self, seconds):
        self.seconds = seconds

    def _ring(self, signum, frame):
        raise TimeoutError(f"still running after {self.seconds} s")

    def __enter__(self):
        self.previous = signal.signal(signal.SIGALRM, self._ring)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.previous)


# ---------------------------------------------------------------- determinism
@pytest.mark.parametrize("search", ["random", "tpe"])
def test_same_seed_and_trial_count_give_the_same_search_and_model(data, search):
    if search == "tpe":
        pytest.importorskip("optuna")
    X, y = data.train
    kw = {"n_trials": 11 if search == "tpe" else 6, "validation": 0.25, "random_state": 3,
          "search": search, "ensembles": 2}
    first = cymlp.autotune("text", X, y, **kw)
    again = cymlp.autotune("text", X, y, **kw)
    assert _untimed(first.autotune_records()) == _untimed(again.autotune_records())
    probe = data.test[0][:200]
    np.testing.assert_array_equal(first.predict_proba(probe), again.predict_proba(probe))
    assert first.best_params_ == again.best_params_
    # another seed draws other configurations
    other = cymlp.autotune("text", X, y, **{**kw, "random_state": 4})
    assert [r["params"] for r in other.autotune_records()] != [
        r["params"] for r in first.autotune_records()]


def test_configurations_do_not_depend_on_the_budget(data):
    """With a budget only the number of trials depends on time: the configurations
    tried are those of the same seed without one."""
    X, y = data.train
    timed = cymlp.autotune("text", X, y, time_budget=4.0, validation=0.25, random_state=5,
                           ensembles=1)
    got = [r["params"] for r in timed.autotune_records() if r["stage"] == "search"]
    counted = cymlp.autotune("text", X, y, n_trials=len(got), validation=0.25,
                             random_state=5, ensembles=1)
    want = [r["params"] for r in counted.autotune_records() if r["stage"] == "search"]
    assert len(got) >= 2 and got == want


# ---------------------------------------------------------------- the test split
@pytest.mark.parametrize("validation", ["dev", 3])
def test_the_test_split_never_reaches_the_search(data, validation):
    """Poisoned test labels (and texts) change the reported test accuracy and nothing
    else: not a trial, not the choice, not the model."""
    kw = {"n_trials": 4, "random_state": 0, "validation": validation, "ensembles": 2}
    model, record = autotune_splits(data, "text", **kw)
    rng = np.random.default_rng(0)
    test_X, test_y = data.test
    wrong = (np.asarray(test_y) + 1) % 3
    poisoned = dataclasses.replace(data, test=(list(test_X), wrong))
    model2, record2 = autotune_splits(poisoned, "text", **kw)
    assert _untimed(record["trials"]) == _untimed(record2["trials"])
    assert record["autotune"]["best_params"] == record2["autotune"]["best_params"]
    np.testing.assert_array_equal(model.predict_proba(test_X), model2.predict_proba(test_X))
    assert record["test_accuracy"] == np.mean(model.predict(test_X) == test_y) > 0.5
    assert record2["test_accuracy"] == np.mean(model.predict(test_X) == wrong) < 0.5
    # texts of another distribution in the test part: still nothing changes
    shuffled = [" ".join(rng.permutation(t.split())) for t in test_X]
    other = dataclasses.replace(data, test=(shuffled, test_y))
    _, record3 = autotune_splits(other, "text", **kw)
    assert _untimed(record3["trials"]) == _untimed(record["trials"])
    json.dumps(record)  # the run record is plain JSON


def test_autotune_splits_takes_the_dev_split_or_folds(data):
    with pytest.raises(ValueError, match="'dev' or a number of folds"):
        autotune_splits(data, n_trials=1, validation=0.5)


# ---------------------------------------------------------------- the budget
@pytest.mark.parametrize("refit", ["train", "train+dev"])
def test_the_budget_is_respected(refit, make_blobs):
    """Trials that would train for ever (no early stopping, no epoch limit) are cut at
    the deadline: the call ends within 5% (plus 0.3 s) of the budget, and uses at
    least half of it. One BLAS thread, as the benchmarks: an epoch cannot be cut, and on a loaded
    machine a multi-threaded BLAS can make one take a second."""
    threadpoolctl = pytest.importorskip("threadpoolctl")  # (the fixture's limit, explicit)
    X, y = make_blobs(n_per_class=400, n_features=20, n_classes=3, spread=3.0)
    endless = MLPClassifier(max_iter=10**6, n_iter_no_change=10**6, tol=0.0)
    budget = 3.0
    with _Alarm(60), threadpoolctl.threadpool_limits(1):
        tic = time.perf_counter()
        model = cymlp.autotune(endless, X, y, time_budget=budget, validation=0.2,
                               refit=refit, random_state=0)
        elapsed = time.perf_counter() - tic
    # (the time kept for a refit that then does not fit is not used: at least half)
    assert budget * 0.5 <= elapsed <= budget * 1.05 + 0.3, elapsed
    summary = model.autotune_summary_
    assert summary["seconds"] <= budget * 1.05 + 0.3
    assert summary["trials_timeout"] >= 1
    # no trial starts in the last 3% of the budget
    assert all(r["started"] <= 0.97 * budget for r in model.autotune_records())
    # a trial cut by the deadline after some epochs still ranks: its best epoch so far
    assert model.predict(X).shape == (len(y),)


def test_time_the_ensemble_stage_leaves_goes_to_more_trials(data, monkeypatch):
    """The time kept back for seed ensembles that the ensemble stage does not use (no
    ensemble beat the single model) goes to more trials, not to waiting."""
    from cymlp import tuning
    ended = []

    def nothing_gained(self):  # an ensemble stage that finds no better size at once
        ended.append(time.perf_counter() - self.t0)
        return 1

    monkeypatch.setattr(tuning._Search, "_grow", nothing_gained)
    X, y = data.train
    with _Alarm(60):
        model = cymlp.autotune("bag", X, y, time_budget=4, validation=3, ensembles=5,
                               blend=False, random_state=0)
    assert len(ended) == 1
    after = [r for r in model.autotune_records()
             if r["stage"] == "search" and r["started"] > ended[0]]
    assert after, "no trial after the ensemble stage"
    assert model.autotune_summary_["refit"]["status"] == "complete"


def test_a_trial_stops_before_a_fold_that_would_leave_no_time_for_its_refit(
        data, monkeypatch):
    """A trial runs its next fold only if its own refit, should it be chosen, would
    still end in time after it: here every refit is estimated at 100 s of fitting
    (180 s kept) and the budget is 150 s, so the one trial stops after its first fold
    (without that check it completes all three)."""
    from cymlp import tuning
    monkeypatch.setattr(tuning, "_member_fit_seconds", lambda entry: 100.0)
    X, y = data.train
    model = cymlp.autotune("bag", X, y, time_budget=150, validation=3, ensembles=1,
                           random_state=0)
    records = model.autotune_records()
    assert [r["status"] for r in records] == ["timeout"]
    assert len(records[0]["fold_scores"]) == 1
    assert model.autotune_summary_["refit"]["status"].startswith("skipped")


def test_the_refit_is_timed_for_its_epochs_and_data(data):
    """The time kept for a refit: a fit as long as the trial's first fold took, for the
    mean of the folds' best epochs (what the refit trains), on data as many times
    larger as the refit's is than a fold's training part."""
    from cymlp import tuning
    rng = np.random.default_rng(0)
    X, y = data.train
    assert tuning._Data(X, y, None, 3, rng).growth() == pytest.approx(1.5, rel=0.01)
    assert tuning._Data(X, y, None, 0.2, rng).growth() == pytest.approx(1.25, rel=0.01)
    assert tuning._Data(X, y, None, data.dev, rng).growth() == pytest.approx(1.5)

    class Member:
        def __init__(self, best):
            self.best_epoch_, self.n_iter_ = best, 10

    # first epoch 1 s (encoding included), then 0.5 s an epoch; best epochs 2, 4, 6
    entry = {"fit_seconds": 5.5, "first_epoch": 1.0, "epochs_run": 10,
             "folds": [[Member(2)], [Member(4)], [Member(6)]]}
    assert tuning._member_fit_seconds(entry) == pytest.approx(1.0 + 0.5 * 3)


def test_a_trial_is_scored_at_the_epoch_its_refit_trains():
    """A fold scores at the epoch the refit trains (the mean of the folds' best), not
    at its own best: that would score the maximum of a noisy curve. Where the kept
    model's score differs from the curve's (an interpolation after training), the
    fold scores its kept model less what the common epoch loses on the curve."""
    from cymlp import tuning

    class Member:
        def __init__(self, best):
            self.best_epoch_, self.n_iter_ = best, 4

    curves = [[0.5, 0.7, 0.6, 0.55], [0.6, 0.65, 0.8, 0.7], [0.4, 0.9]]
    folds = [[Member(2)], [Member(3)], [Member(2)]]   # mean 2.33: epoch 2
    assert tuning._common_epoch_scores(curves, folds, [0.7, 0.8, 0.9]) == \
        pytest.approx([0.7, 0.65, 0.9])
    assert tuning._common_epoch_scores(curves, folds, [0.72, 0.81, 0.9]) == \
        pytest.approx([0.72, 0.66, 0.9])
    # a fold that stopped before the common epoch counts its last
    curves = [[0.5, 0.6, 0.7, 0.8], [0.5, 0.6, 0.7, 0.75], [0.4, 0.9]]
    folds = [[Member(4)], [Member(4)], [Member(2)]]   # mean 3.33: epoch 3
    assert tuning._common_epoch_scores(curves, folds, [0.8, 0.75, 0.9]) == \
        pytest.approx([0.7, 0.7, 0.9])


def test_a_budget_or_a_trial_count_is_needed(data):
    with pytest.raises(ValueError, match="time_budget"):
        cymlp.autotune("text", *data.train)
    with pytest.raises(ValueError, match="time_budget must be"):
        cymlp.autotune("text", *data.train, time_budget=-1)
    with pytest.raises(ValueError, match="n_trials must be"):
        cymlp.autotune("text", *data.train, n_trials=0)


# ---------------------------------------------------------------- records
def test_every_trial_record_is_complete(data):
    X, y = data.train
    model = cymlp.autotune("text", X, y, n_trials=10, validation=data.dev,
                           random_state=1, ensembles=3, blend=False)
    records = model.autotune_records()
    # ten trials of the search, then ensembles of 2 and 3 of the chosen configuration
    assert [r["stage"] for r in records] == ["search"] * 10 + ["ensemble"] * 2
    assert [r["n_estimators"] for r in records[10:]] == [2, 3]
    json.dumps(records)
    for i, r in enumerate(records):
        assert set(r) == RECORD_KEYS
        assert r["trial"] == i and r["status"] in STATUSES
        assert r["family"] in ("bag", "window", "tfidf") and r["params"]
        assert r["seconds"] > 0 and r["started"] >= 0
        assert (r["stage"], r["based_on"] is None) in (("search", True), ("ensemble", False))
        if r["status"] == "complete":
            assert 0 <= r["dev_score"] <= 1 and r["best_epoch"] >= 1 and r["epochs"] >= 1
            assert r["error"] is None and len(r["fold_scores"]) == 1
        elif r["status"] == "failed":
            assert r["dev_score"] is None and r["error"]
        elif r["status"] == "pruned":
            assert r["dev_score"] is None and r["rung_scores"]
    frame = model.autotune_trials_
    assert len(frame) == 12 and {"trial", "status", "dev_score", "seconds"} <= set(frame)
    assert any(c.startswith("param_") for c in frame.columns)
    summary = model.autotune_summary_
    assert sum(summary[f"trials_{s}"] for s in STATUSES) == 12
    # the first best: the single model, then an ensemble only if strictly better
    best = max((r for r in records if r["status"] == "complete"),
               key=lambda r: (r["dev_score"], -r["trial"]))
    assert summary["best_trial"] == best["trial"]
    assert model.best_params_ == {"family": best["family"],
                                  "n_estimators": best["n_estimators"],
                                  "params": best["params"]}
    json.dumps(summary)


def test_the_trials_frame_says_pandas_is_missing(data, monkeypatch):
    model = cymlp.autotune("bag", *data.train, n_trials=1, validation=0.25)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="install pandas"):
        _ = model.autotune_trials_
    assert model.autotune_records()  # the plain records need nothing


def test_a_diverged_trial_is_recorded_and_skipped(make_blobs):
    X, y = make_blobs(n_per_class=60, n_features=5)
    X = X * 1e3
    starts = [{"mlp.solver": "sgd", "mlp.lr.sgd": 1e9, "mlp.depth": 1},
              {"mlp.solver": "adam"}]
    model = cymlp.autotune("mlp", X, y, n_trials=2, validation=0.25, starts=starts,
                           random_state=0, ensembles=1)
    first, second = model.autotune_records()
    assert first["status"] == "failed" and "diverged" in first["error"]
    assert first["dev_score"] is None
    assert second["status"] == "complete"
    assert model.autotune_summary_["best_trial"] == 1
    assert model.score(X, y) > 0.5


def test_no_completed_trial_is_an_error(make_blobs):
    X, y = make_blobs(n_per_class=30, n_features=5)
    with pytest.raises(RuntimeError, match="no trial completed"):
        cymlp.autotune("mlp", X * 1e3, y, n_trials=1, validation=0.25,
                       starts=[{"mlp.solver": "sgd", "mlp.lr.sgd": 1e9}])


# ---------------------------------------------------------------- what is searched
def test_families_and_pinned_parameters(data):
    X, y = data.train
    model = cymlp.autotune(TextClassifier(embed_dim=7, hidden_layer_sizes=()), X, y,
                           n_trials=5, validation=0.25, ensembles=False)
    for r in model.autotune_records():
        assert r["family"] in ("bag", "window") and r["n_estimators"] == 1
        assert r["params"]["embed_dim"] == 7 and r["params"]["hidden_layer_sizes"] == []
    assert isinstance(model, TextClassifier) and model.embeddings_.shape[1] == 7
    only = cymlp.autotune("tfidf", X, y, n_trials=3, validation=0.25, ensembles=False)
    assert isinstance(only, TextPipeline)
    assert {r["family"] for r in only.autotune_records()} == {"tfidf"}
    with pytest.raises(ValueError, match="unknown family"):
        cymlp.autotune("cnn", X, y, n_trials=1)
    with pytest.raises(ValueError, match="X holds texts"):
        cymlp.autotune("mlp", X, y, n_trials=1)


def test_sampled_configurations_cover_the_space():
    draws = [sample_configuration("text", seed) for seed in range(80)]
    assert {d["family"] for d in draws} == {"bag", "window", "tfidf"}
    bags = [d["params"] for d in draws if d["family"] == "bag"]
    assert {p["token_weights"] for p in bags} == {None, "idf", "nb"}
    assert {len(p["hidden_layer_sizes"]) for p in bags} == {0, 1, 2}
    tfidf = [d["params"] for d in draws if d["family"] == "tfidf"]
    assert {p["features"]["weights"] for p in tfidf} == {None, "idf", "nb"}


def test_the_tfidf_family_draws_character_ngrams_for_a_linear_model_only():
    draws = [sample_configuration("tfidf", seed)["params"] for seed in range(60)]
    linear = [d["features"] for d in draws if not d["classifier"]["hidden_layer_sizes"]]
    hidden = [d["features"] for d in draws if d["classifier"]["hidden_layer_sizes"]]
    assert linear and hidden
    # as JSON values: a span is a list
    assert {str(f["char_ngram_range"]) for f in linear} == {"None", "[2, 5]", "[3, 5]"}
    # under a hidden layer the column cap would keep no character n-gram
    for f in hidden:
        assert "char_ngram_range" not in f and f["max_features"] > 0


def test_cross_validation_refits_on_everything(data):
    X, y = data.train
    small = TextClassifier(hidden_layer_sizes=(16,), embed_dim=16)
    model = cymlp.autotune(small, X, y, n_trials=2, validation=3, random_state=0,
                           ensembles=1, refit="train")
    for r in model.autotune_records():
        if r["status"] == "complete":
            assert len(r["fold_scores"]) == 3
            assert r["dev_score"] == pytest.approx(np.mean(r["fold_scores"]))
    refit = model.autotune_summary_["refit"]
    assert refit["on"] == "train+dev" and refit["status"] == "complete"
    assert model.n_iter_ == refit["epochs"][0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_ensemble_is_returned_when_it_wins_on_dev(data, seed):
    X, y = data.train
    model = cymlp.autotune("bag", X, y, n_trials=1, validation=0.25, random_state=seed,
                           ensembles=3, refit="train")
    single, two, three = model.autotune_records()
    assert (two["n_estimators"], three["n_estimators"]) == (2, 3)
    assert two["based_on"] == three["based_on"] == 0
    scores = [single["dev_score"], two["dev_score"], three["dev_score"]]
    size = 1 + scores.index(max(scores))  # the smallest of the best
    assert model.best_params_["n_estimators"] == size
    if size == 1:
        assert isinstance(model, TextClassifier)
    else:
        assert isinstance(model, SeedEnsemble) and len(model.estimators_) == size
        assert [m.random_state for m in model.estimators_] == list(
            range(seed, seed + size))
    assert model.score(*data.dev[:2]) >= 0  # usable


# ---------------------------------------------------------------- the estimators
@pytest.mark.parametrize("make", [
    pytest.param(lambda: TextClassifier(random_state=0, autotune_budget=2.0), id="text"),
    pytest.param(lambda: MLPClassifier(random_state=0, autotune_budget=2.0), id="mlp"),
])
def test_fit_with_autotune_budget(make, data, make_blobs):
    est = make()
    if isinstance(est, TextClassifier):
        X, y = data.train
    else:
        X, y = make_blobs(n_per_class=50, n_features=5)
    params = est.get_params()
    tic = time.perf_counter()
    assert est.fit(X, y) is est
    assert time.perf_counter() - tic <= 2.0 + 2.0  # (the budget test is above)
    assert est.get_params() == params  # the choice is in best_params_, not the params
    assert est.best_params_["n_estimators"] == 1
    assert est.score(X, y) > 0.6
    assert len(est.autotune_trials_) >= 1
    chosen = est.best_params_["params"]
    assert list(est.network_.hidden) == chosen["hidden_layer_sizes"]


def test_autotune_budget_is_checked():
    with pytest.raises(ValueError, match="autotune_budget must be"):
        TextClassifier(autotune_budget=0).fit(["a b", "c d"], [0, 1])
    with pytest.raises(ValueError, match="warm_start"):
        TextClassifier(autotune_budget=1, warm_start=True).fit(["a b", "c d"], [0, 1])
    with pytest.raises(AttributeError, match="cymlp.autotune"):
        _ = TextClassifier(max_iter=1, early_stopping=False).fit(["a b", "c d"],
                                                                 [0, 1]).best_params_


def test_a_tuned_model_saves_and_loads(data, tmp_path):
    X, y = data.train
    model = cymlp.autotune("text", X, y, n_trials=3, validation=0.25, random_state=2,
                           starts=[{"family": "tfidf"}])
    path = cymlp.save(model, tmp_path / "tuned")
    loaded = cymlp.load(path)
    assert type(loaded) is type(model)
    probe = data.test[0][:100]
    np.testing.assert_array_equal(loaded.predict_proba(probe), model.predict_proba(probe))


def test_progress_goes_to_stderr(data, capsys):
    """verbose=1: one line per trial on stderr with its number, family, status, dev
    score, the best so far, the time left and the configuration; nothing on stdout."""
    X, y = data.train
    cymlp.autotune("tfidf", X, y, n_trials=2, time_budget=60, validation=0.25,
                   random_state=0, ensembles=1, verbose=1)
    out, err = capsys.readouterr()
    assert out == ""
    lines = [line for line in err.splitlines() if line.startswith("autotune trial")]
    assert len(lines) == 2
    for number, line in enumerate(lines):
        assert line.split()[2:4] == [str(number), "tfidf"]
        assert " dev " in line and " best " in line and " s left" in line
        assert "features.ngram_range=" in line and "learning_rate_init=" in line
    assert "autotune: best trial" in err.splitlines()[-1]


# ---------------------------------------------------------------- blends
@pytest.mark.parametrize("noise, seed, kept", [(0.35, 12, True), (0.35, 0, False),
                                               (0.1, 0, False)])
def test_a_blend_keeps_only_additions_that_raise_the_dev_score(noise, seed, kept):
    """After the search, the other best completed trials are tried as additions to the
    chosen model, best first; an addition is kept only if the dev score rises. With
    refit='train' the returned model is the blend as scored: its accuracy on dev is
    the record's score, and its members are the kept trials' models. (Noisy labels
    leave room for a blend to win: it does with seed 12.)"""
    from cymlp.tuning import BLEND_POOL
    (X, y), dev = _keywords(300, 1, noise), _keywords(150, 2, noise)
    model = cymlp.autotune("text", X, y, n_trials=8, validation=dev,
                           random_state=seed, ensembles=2, refit="train")
    records = model.autotune_records()
    search = [r for r in records if r["stage"] == "search"]
    blends = [r for r in records if r["stage"] == "blend"]
    complete = sorted((r for r in search if r["status"] == "complete"),
                      key=lambda r: (-r["dev_score"], r["trial"]))
    chosen = complete[0]
    # the candidates: the next best completed trials, then the best of each family
    # not among them, best first
    top = complete[:BLEND_POOL + 1]
    others = [r for r in complete[BLEND_POOL + 1:]
              if r["family"] not in {t["family"] for t in top}]
    others = [r for i, r in enumerate(others)
              if r["family"] not in {o["family"] for o in others[:i]}]
    assert [r["blend_of"] for r in blends] == [r["trial"] for r in top[1:] + others]
    score, base, size = chosen["dev_score"], chosen["trial"], 1
    for r in blends:
        assert r["based_on"] == base and r["status"] == "complete"
        assert r["n_estimators"] == size + 1 and r["family"] == records[r["blend_of"]]["family"]
        if r["dev_score"] > score:
            score, base, size = r["dev_score"], r["trial"], size + 1
    summary = model.autotune_summary_
    assert summary["best_trial"] == base and summary["best_dev_score"] == score
    assert model.score(*dev) == pytest.approx(score, abs=1e-12)
    assert (base != chosen["trial"]) == kept
    if base == chosen["trial"]:
        # nothing kept: the seed ensemble stage runs as without blends
        assert any(r["stage"] == "ensemble" for r in records)
        return
    assert not any(r["stage"] == "ensemble" for r in records)
    assert isinstance(model, SeedEnsemble) and len(model.estimators_) == size
    best = model.best_params_
    assert best["family"] == "blend" and best["n_estimators"] == size
    trials = [m["trial"] for m in best["params"]["members"]]
    assert trials[0] == chosen["trial"] and len(trials) == size
    assert all(records[t]["stage"] == "search" for t in trials)


def test_a_blend_whose_refit_would_not_end_in_time_is_not_tried(monkeypatch):
    """A blend takes in another trial's models only while the refit of the larger blend
    fits in the time left: here each addition's refit would take a million seconds, so
    none is tried (the same search with no such cost tries them)."""
    from cymlp import tuning
    (X, y) = _keywords(300, 1, 0.35)
    options = dict(n_trials=8, time_budget=600, validation=3, random_state=0,
                   ensembles=2)
    free = cymlp.autotune("text", X, y, **options).autotune_records()
    assert any(r["stage"] == "blend" for r in free)
    blending, original_fit, original_blend = [], tuning._member_fit_seconds, \
        tuning._Search._blend

    def fit_seconds(entry):
        if blending and entry is not blending[-1].chosen:
            return 1e6
        return original_fit(entry)

    def blend(self):
        blending.append(self)
        try:
            return original_blend(self)
        finally:
            blending.pop()

    monkeypatch.setattr(tuning, "_member_fit_seconds", fit_seconds)
    monkeypatch.setattr(tuning._Search, "_blend", blend)
    model = cymlp.autotune("text", X, y, **options)
    records = model.autotune_records()
    assert not any(r["stage"] == "blend" for r in records)
    assert _untimed([r for r in records if r["stage"] == "search"]) == _untimed(
        [r for r in free if r["stage"] == "search"])
    assert model.autotune_summary_["refit"]["status"] == "complete"


def test_the_blend_pool_keeps_the_best_trials_and_each_familys_best():
    """The models kept for blending: the BLEND_POOL + 1 best completed trials and the
    best of every family not among them (one of each), best first."""
    from cymlp.tuning import BLEND_POOL, _blend_pool
    scores = [0.9, 0.89, 0.88, 0.87, 0.86, 0.85, 0.84, 0.83, 0.82, 0.81]
    families = ["tfidf"] * 7 + ["bag", "window", "bag"]
    entries = [{"rec": {"trial": t, "dev_score": sc, "family": f}}
               for t, (sc, f) in enumerate(zip(scores, families))]
    pool = None
    for entry in entries[::-1]:            # as the trials complete, worst first
        pool = _blend_pool((pool or []) + [entry])
    assert [e["rec"]["trial"] for e in pool] == list(range(BLEND_POOL + 1)) + [7, 8]
    # equal scores: the earlier trial first; a family among the best adds nothing
    tied = [{"rec": {"trial": t, "dev_score": 0.5, "family": "bag"}} for t in (3, 1, 2)]
    assert [e["rec"]["trial"] for e in _blend_pool(tied)] == [1, 2, 3]
    many = [{"rec": {"trial": t, "dev_score": 1 - t / 100, "family": "bag"}}
            for t in range(BLEND_POOL + 3)]
    assert [e["rec"]["trial"] for e in _blend_pool(many)] == list(range(BLEND_POOL + 1))


def test_the_last_refit_starts_on_its_estimate_without_the_margin(data, monkeypatch):
    """Once the search is over nothing else can use the time left, so the refit starts
    if its plain estimate (no REFIT_MARGIN) ends in time; short of that it is skipped."""
    from cymlp import tuning
    original = tuning._Search._final
    where = []

    def with_time_left(self):
        # the time left: a share of the way from the plain estimate to the one with
        # the margin (below the plain estimate when negative)
        plain = self._refit_seconds(len(self.chosen["folds"][0]), margin=1.0)
        kept = self._refit_seconds(len(self.chosen["folds"][0]))
        assert kept > plain
        self.deadline = time.perf_counter() + plain + where[0] * (kept - plain)
        return original(self)

    monkeypatch.setattr(tuning._Search, "_final", with_time_left)
    X, y = data.train
    status = {}
    for part in (-1.0, 0.5):
        where[:] = [part]
        model = cymlp.autotune("bag", X, y, n_trials=2, time_budget=600, validation=3,
                               random_state=0, ensembles=1)
        status[part] = model.autotune_summary_["refit"]["status"]
    assert status[-1.0].startswith("skipped")
    assert not status[0.5].startswith("skipped")


def test_blending_is_off_for_a_single_model_or_when_asked(data):
    X, y = data.train
    for options in ({"ensembles": 1}, {"blend": False}):
        model = cymlp.autotune("text", X, y, n_trials=6, validation=data.dev,
                               random_state=0, **options)
        assert not any(r["stage"] == "blend" for r in model.autotune_records())


def test_a_refit_out_of_time_returns_the_models_of_every_fold(data, monkeypatch):
    """When the refit does not fit in the time left, a cross-validated search returns
    the chosen models of every fold together (each trained on all folds but one),
    and a search for a single model (ensembles=1, as fit(autotune_budget=...) runs
    it) the first fold's model."""
    from cymlp import tuning
    original = tuning._Search._final

    def out_of_time(self):
        self.deadline = time.perf_counter()  # the search is over: no time is left
        return original(self)

    monkeypatch.setattr(tuning._Search, "_final", out_of_time)
    X, y = data.train
    many = cymlp.autotune("bag", X, y, n_trials=2, time_budget=60, validation=3,
                          random_state=0, ensembles=2, blend=False)
    assert many.autotune_summary_["refit"]["status"].startswith("skipped")
    assert "every fold" in many.autotune_summary_["refit"]["status"]
    size = many.best_params_["n_estimators"]
    assert isinstance(many, SeedEnsemble) and len(many.estimators_) == 3 * size
    one = cymlp.autotune("bag", X, y, n_trials=2, time_budget=60, validation=3,
                         random_state=0, ensembles=1)
    assert one.autotune_summary_["refit"]["status"].startswith("skipped")
    assert isinstance(one, TextClassifier)


def test_blend_must_be_a_bool(data):
    with pytest.raises(ValueError, match="blend must be True or False"):
        cymlp.autotune("text", *data.train, n_trials=1, blend="no")
