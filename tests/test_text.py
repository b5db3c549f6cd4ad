"""TextClassifier: gradients into E, sparse updates, behaviour and bad input.

* gradients: :func:`cymlp.gradcheck` (central differences, float64) of ``E`` and of
  every MLP parameter, for both encoders, every bias placement, label smoothing,
  repeated ids within and across the sentences of the batch;
* training: a few minibatch updates through ``partial_fit`` against
  :func:`cymlp._reference.train_steps` from the same initial parameters and on the same
  batches, for SGD, Adagrad and Adam (lazy updates of the touched rows of ``E`` only);
* behaviour of the estimator: strings and token lists, string labels, ``most_similar``,
  the live ``embeddings_``, the best epoch on ``validation_data``, save/load, word
  dropout, the negation task (a hidden layer is needed), determinism;
* bad input, with the message of each error, and the documented behaviour on empty
  and unknown sentences and unseen labels.
"""

import warnings
from itertools import pairwise

import numpy as np
import pytest
from _shared import assert_params_close, token_inputs

import cymlp
from cymlp import TextClassifier, gradcheck
from cymlp import _reference as ref
from cymlp.vocab import PAD, UNK

#: word ids repeat inside sentences ("a b a c", "a a a") and across them; lengths 1..6
GRAD_TEXTS = ["a b a c", "b b", "c a d e f g", "d", "a a a", "e f b c"]
GRAD_Y = [0, 1, 2, 0, 1, 2]
BIAS_PLACEMENTS = ("both", "hidden", "output", "none")
#: largest relative error of the finite-difference check
GRAD_TOL = 1e-6

TOL = {"float32": {"rtol": 1e-5, "atol": 1e-6}, "float64": {"rtol": 1e-12, "atol": 1e-14}}


@pytest.fixture(autouse=True)
def _quiet():
    """The tiny data sets trigger batch-size and convergence warnings on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _inputs(model, texts):
    """The engine's inputs for ``texts``, as the fitted model's encoder makes them."""
    return model._fitted.encoder.transform(texts, model.dtype)


def _labels(model, y):
    """The class indices of labels ``y``."""
    return np.searchsorted(model.classes_, np.asarray(y)).astype(np.intc)


def _randomise(model, seed=1, scale=0.5):
    """Draw the biases (which start at 0) so that every bias placement matters."""
    rng = np.random.default_rng(seed)
    for b in model.intercepts_:
        if b is not None:
            b[...] = rng.normal(0.0, scale, b.shape)


def _expected_keys(bias, n_layers):
    keys = {"E"}
    for l in range(n_layers):
        keys.add(f"W{l}")
        hidden = l < n_layers - 1
        if bias == "both" or (bias == "hidden" and hidden) or (bias == "output" and not hidden):
            keys.add(f"b{l}")
    return keys


def _grad_model(encoder, bias, *, hidden=(4,), activation="tanh", **params):
    return TextClassifier(hidden, activation, encoder=encoder, embed_dim=3,
                          dtype="float64", label_smoothing=0.1, bias=bias, random_state=0,
                          embed_init=0.5, **params)


# ---------------------------------------------------------------- (1) gradients
GRAD_CASES = [
    pytest.param("window", {"window": 2}, id="window2-shorter-than-sentences"),
    pytest.param("window", {"window": 8}, id="window8-longer-than-sentences"),
] + [
    pytest.param("bag", {"pooling": pooling, "token_weights": weights,
                         "ngram_range": ngrams},
                 id=f"bag-{pooling}-{weights or 'unweighted'}-{ngrams[0]}{ngrams[1]}")
    for pooling in ("mean", "sum")
    for weights in (None, "idf", "nb")
    for ngrams in ((1, 1), (1, 2))
] + [
    # subwords: the character n-grams of the one-letter words ("<", "a", ">", "<a",
    # "a>") repeat within and across sentences, and "a" is spelled like a word
    pytest.param("bag", {"pooling": pooling, "token_weights": weights,
                         "ngram_range": (1, 2), "char_ngram_range": (1, 2)},
                 id=f"bag-{pooling}-{weights or 'unweighted'}-12-chars12")
    for pooling in ("mean", "sum")
    for weights in (None, "idf", "nb")
]


@pytest.mark.parametrize("bias", BIAS_PLACEMENTS)
@pytest.mark.parametrize("encoder, params", GRAD_CASES)
def test_gradcheck_embedding_and_mlp(encoder, params, bias):
    model = _grad_model(encoder, bias, **params)
    model._initialize(GRAD_TEXTS, GRAD_Y)
    _randomise(model)
    errors = gradcheck(model, GRAD_TEXTS, GRAD_Y)
    assert set(errors) == _expected_keys(bias, 2)
    assert max(errors.values()) < GRAD_TOL, errors


@pytest.mark.parametrize("encoder, params", [
    pytest.param("window", {"window": 3}, id="window"),
    pytest.param("bag", {"ngram_range": (1, 2), "token_weights": "idf"}, id="bag"),
    pytest.param("bag", {"ngram_range": (1, 2), "token_weights": "nb"}, id="bag-nb"),
])
@pytest.mark.parametrize("hidden", [(), (4, 3)], ids=["linear", "two-hidden"])
def test_gradcheck_other_depths(encoder, params, hidden):
    model = _grad_model(encoder, "both", hidden=hidden, **params)
    model._initialize(GRAD_TEXTS, GRAD_Y)
    _randomise(model)
    errors = gradcheck(model, GRAD_TEXTS, GRAD_Y)
    assert set(errors) == _expected_keys("both", len(hidden) + 1)
    assert max(errors.values()) < GRAD_TOL, errors


def test_gradcheck_unknown_words_train_the_unk_row():
    """min_count=2 maps the rare words to UNK, whose row then gets a gradient."""
    model = _grad_model("bag", "both", min_count=2, ngram_range=(1, 1))
    model._initialize(GRAD_TEXTS, GRAD_Y)
    inputs = _inputs(model, GRAD_TEXTS)
    assert UNK in inputs.ids
    errors = gradcheck(model, GRAD_TEXTS, GRAD_Y)
    assert max(errors.values()) < GRAD_TOL, errors
    _, rows, _ = model._engine.gradient(inputs, _labels(model, GRAD_Y))
    assert UNK in rows.tolist()


@pytest.mark.parametrize("encoder, params", [
    pytest.param("window", {"window": 3}, id="window"),
    pytest.param("bag", {"pooling": "sum", "token_weights": "idf"}, id="bag"),
])
def test_gradcheck_relu_away_from_the_kink(encoder, params):
    model = _grad_model(encoder, "both", hidden=(5,), activation="relu", **params)
    model._initialize(GRAD_TEXTS, GRAD_Y)
    _randomise(model, seed=3)
    _, ks, _ = model._engine.forward(_inputs(model, GRAD_TEXTS), keep_hidden=True)
    # a step of 1e-6 in any parameter moves a pre-activation by far less than this
    assert np.min(np.abs(ks[0])) > 1e-3
    assert np.any(ks[0] > 0) and np.any(ks[0] < 0)  # both sides of the kink are used
    errors = gradcheck(model, GRAD_TEXTS, GRAD_Y)
    assert max(errors.values()) < GRAD_TOL, errors


@pytest.mark.parametrize("encoder, params", [
    pytest.param("window", {"window": 3}, id="window"),
    pytest.param("bag", {"ngram_range": (1, 2)}, id="bag"),
])
def test_gradient_touches_exactly_the_used_rows(encoder, params):
    """The rows gradcheck perturbs are the rows the batch uses (PAD excluded); a row
    outside them does not change the loss at all."""
    texts_all = GRAD_TEXTS + ["x y z", "z w"]
    model = _grad_model(encoder, "both", **params)
    model._initialize(texts_all, GRAD_Y + [0, 1])
    inputs = _inputs(model, GRAD_TEXTS)
    n = len(inputs)
    engine = model._engine
    y_idx = _labels(model, GRAD_Y)
    engine.allocate(n, inputs.max_tokens(n))
    loss, rows, eg = engine.gradient(inputs, y_idx)
    used = np.unique(inputs.ids)
    np.testing.assert_array_equal(np.sort(rows), used[used != PAD])
    assert np.all(np.any(eg != 0, axis=1))
    unused = np.setdiff1d(np.arange(len(model.vocabulary_)), used)
    assert len(unused) >= 3  # x, y, z, w (and their bigrams) are not in the batch
    for row in unused[unused != PAD]:
        engine.E[row] += 0.5
        again, _, _ = engine.gradient(inputs, y_idx)
        engine.E[row] -= 0.5
        assert again == loss


def test_gradcheck_requires_float64():
    model = TextClassifier((4,), embed_dim=3, dtype="float32")
    with pytest.raises(ValueError, match="float64"):
        gradcheck(model, GRAD_TEXTS, GRAD_Y)


# ---------------------------------------------------------------- (2) sparse updates
#: the vocabulary comes from all texts; training sees only the first 7, so the rows of
#: "x y z w v u q r" (and their n-grams) are never touched
VOCAB_TEXTS = ["a b a c", "b b", "c a d e f g", "", "a a a", "e f b c", "g d",
               "x y z", "w v u x", "q r"]
VOCAB_Y = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
N_TRAIN, BATCH = 7, 3
LR = {"sgd": 0.3, "adagrad": 0.05, "adam": 0.01}

UPDATE_CASES = [
    pytest.param("window", {"window": 3}, id="window3"),
    pytest.param("window", {"window": 7}, id="window7"),
    pytest.param("bag", {"pooling": "mean", "token_weights": "idf", "ngram_range": (1, 2)},
                 id="bag-mean-idf-12"),
    pytest.param("bag", {"pooling": "sum", "ngram_range": (1, 1)}, id="bag-sum-11"),
    pytest.param("bag", {"pooling": "sum", "token_weights": "nb", "ngram_range": (1, 2)},
                 id="bag-sum-nb-12"),
    pytest.param("bag", {"pooling": "mean", "ngram_range": (1, 2), "char_ngram_range": (2, 4)},
                 id="bag-mean-12-chars24"),
]


def _update_model(encoder, params, solver, dtype, **extra):
    kw = {"solver": solver, "momentum": 0.0, "learning_rate_init": LR[solver],
          "batch_size": BATCH, "shuffle": False, "early_stopping": False,
          "label_smoothing": 0.1, "random_state": 0, "embed_init": 0.5}
    kw.update(extra)
    model = TextClassifier((4,), "tanh", encoder=encoder, embed_dim=3, dtype=dtype,
                           **params, **kw)
    model._initialize(VOCAB_TEXTS, VOCAB_Y)
    _randomise(model, seed=2)
    return model


def _batches(model, texts, y):
    """The consecutive minibatches partial_fit trains on, in the reference's format."""
    feed = _inputs(model, texts)
    n = len(feed)
    y_idx = _labels(model, y)
    out = []
    for s in range(0, n, model.batch_size):
        idx = np.arange(s, min(n, s + model.batch_size))
        if model.encoder == "window":
            out.append((feed.ids[idx], y_idx[idx]))
        else:
            ptr = feed.indptr
            lo, hi = ptr[idx[0]], ptr[idx[-1] + 1]
            tokw = feed.weights
            out.append(((ptr[idx[0]:idx[-1] + 2] - lo, feed.ids[lo:hi],
                         None if tokw is None else tokw[lo:hi]), y_idx[idx]))
    return feed, out


def _check_updates(model, n_epochs=2):
    texts, y = VOCAB_TEXTS[:N_TRAIN], np.asarray(VOCAB_Y[:N_TRAIN])
    dtype = np.dtype(model.dtype).name
    tol = TOL[dtype]
    weights = [w.copy() for w in model.coefs_]
    biases = [None if b is None else b.copy() for b in model.intercepts_]
    E0 = model.embeddings_.copy()
    E = E0.copy()
    assert E.dtype == np.dtype(dtype)
    assert np.all(E0[PAD] == 0)
    feed, batches = _batches(model, texts, y)
    losses = ref.train_steps(
        weights, biases, batches * n_epochs, 3, ["tanh"], solver=model.solver,
        lr=model.learning_rate_init, alpha=model.alpha,
        label_smoothing=model.label_smoothing,
        momentum=model.momentum if model.solver == "sgd" else 0.0,
        nesterov=model.nesterovs_momentum, epsilon=model.epsilon, E=E,
        encoder=model.encoder,
        # with subwords the token weights already hold the division by the units
        pooling="sum" if model.char_ngram_range is not None else model.pooling)
    for _ in range(n_epochs):
        model.partial_fit(texts, y)

    assert model.n_iter_ == n_epochs
    np.testing.assert_allclose(model.embeddings_, E, **tol, err_msg="E")
    assert_params_close(model, weights, biases, tol)
    sizes = np.array([len(b[1]) for b in batches])
    for epoch in range(n_epochs):
        part = losses[epoch * len(batches):(epoch + 1) * len(batches)]
        assert model.loss_curve_[epoch] == pytest.approx(
            float(np.dot(part, sizes) / N_TRAIN), rel=10 * tol["rtol"])

    # lazy updates: rows never used are bit-identical, PAD stays exactly zero
    used = np.unique(feed.ids)
    untouched = np.setdiff1d(np.arange(len(E0)), used)
    assert len(untouched) >= 5
    np.testing.assert_array_equal(model.embeddings_[untouched], E0[untouched])
    assert np.all(model.embeddings_[PAD] == 0.0)
    touched = used[used != PAD]
    assert np.all(np.any(model.embeddings_[touched] != E0[touched], axis=1))


@pytest.mark.parametrize("solver", ["sgd", "adagrad", "adam"])
@pytest.mark.parametrize("encoder, params", UPDATE_CASES)
def test_updates_match_reference_float64(encoder, params, solver):
    _check_updates(_update_model(encoder, params, solver, "float64"))


@pytest.mark.parametrize("solver", ["sgd", "adagrad", "adam"])
@pytest.mark.parametrize("encoder, params", [UPDATE_CASES[0], UPDATE_CASES[2]])
def test_updates_match_reference_float32(encoder, params, solver):
    _check_updates(_update_model(encoder, params, solver, "float32"))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("encoder, params", [UPDATE_CASES[0], UPDATE_CASES[2]])
@pytest.mark.parametrize("extra", [
    pytest.param({"momentum": 0.9, "nesterovs_momentum": False}, id="momentum"),
    pytest.param({"momentum": 0.9, "nesterovs_momentum": True, "alpha": 0.3},
                 id="nesterov-l2"),
])
def test_updates_match_reference_with_momentum(encoder, params, extra, dtype):
    """Momentum keeps a velocity per row of E, advanced only when the row is used."""
    _check_updates(_update_model(encoder, params, "sgd", dtype, **extra), n_epochs=3)


# ---------------------------------------------------------------- (3) behaviour
SENT_TEXTS = ["good movie", "bad movie", "great film", "awful film", "good good fun",
              "bad bad plot", "a great plot", "an awful movie", "fun and good",
              "plot was bad"]
SENT_Y = ["pos", "neg", "pos", "neg", "pos", "neg", "pos", "neg", "pos", "neg"]


def _sent_model(**params):
    kw = {"embed_dim": 8, "random_state": 0, "early_stopping": False, "max_iter": 40,
          "batch_size": 4, "learning_rate_init": 0.1}
    kw.update(params)
    return TextClassifier((8,), **kw)


@pytest.mark.parametrize("encoder", ["bag", "window"])
def test_fit_predict_score_on_strings_and_token_lists(encoder):
    model = _sent_model(encoder=encoder, window=3).fit(SENT_TEXTS, SENT_Y)
    np.testing.assert_array_equal(model.classes_, ["neg", "pos"])
    assert model.n_iter_ >= 1 and len(model.loss_curve_) == model.n_iter_
    pred = model.predict(SENT_TEXTS)
    assert pred.shape == (10,) and set(pred.tolist()) <= {"neg", "pos"}
    assert model.score(SENT_TEXTS, SENT_Y) == 1.0
    proba = model.predict_proba(SENT_TEXTS)
    assert proba.shape == (10, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.classes_[np.argmax(proba, axis=1)], pred)

    tokens = [t.split() for t in SENT_TEXTS]
    np.testing.assert_array_equal(model.predict_proba(tokens), proba)
    np.testing.assert_array_equal(model.predict([tuple(t) for t in tokens]), pred)
    # fitting on token lists is fitting on the same tokens
    twin = _sent_model(encoder=encoder, window=3).fit(tokens, SENT_Y)
    np.testing.assert_array_equal(twin.embeddings_, model.embeddings_)
    assert twin.vocabulary_.id_to_token == model.vocabulary_.id_to_token


def test_string_labels_are_returned_as_given():
    labels = np.array(["zeta", "alpha", "mid"])[np.arange(10) % 3]
    model = _sent_model(max_iter=3).fit(SENT_TEXTS, labels)
    np.testing.assert_array_equal(model.classes_, ["alpha", "mid", "zeta"])
    assert set(model.predict(SENT_TEXTS).tolist()) <= {"alpha", "mid", "zeta"}
    assert model.predict_proba(SENT_TEXTS[:2]).shape == (2, 3)


def test_most_similar():
    model = _sent_model(embed_dim=3, ngram_range=(1, 1), max_iter=1).fit(SENT_TEXTS, SENT_Y)
    vocab = model.vocabulary_
    E = model.embeddings_
    E[2:] = [0.0, 0.0, 1.0]  # every word, unless set below
    # values exact in float32, so the cosines are known to float64 precision
    vectors = {"good": [1.0, 0.0, 0.0], "great": [1.0, 0.5, 0.0], "fun": [1.0, 1.0, 0.0],
               "bad": [-1.0, 0.0, 0.0], "awful": [-1.0, -0.25, 0.0]}
    for word, v in vectors.items():
        E[vocab.token_to_id[word]] = v
    E[UNK] = [2.0, 0.0, 0.0]  # as close to "good" as can be: must still be left out
    out = model.most_similar("good", k=3)
    assert [w for w, _ in out] == ["great", "fun"] + [out[2][0]]
    assert out[2][1] == pytest.approx(0.0, abs=1e-12)  # an orthogonal word
    assert out[0][1] == pytest.approx(1 / np.sqrt(1.25), rel=1e-12)
    assert out[1][1] == pytest.approx(1 / np.sqrt(2), rel=1e-12)
    everything = model.most_similar("good", k=1000)
    assert len(everything) == len(vocab) - 3  # all but PAD, UNK and "good"
    words = [w for w, _ in everything]
    assert "good" not in words and "<pad>" not in words and "<unk>" not in words
    sims = [s for _, s in everything]
    assert sims == sorted(sims, reverse=True)
    assert words[-2:] == ["awful", "bad"]
    assert everything[-1][1] == pytest.approx(-1.0, rel=1e-12)
    with pytest.raises(KeyError, match="'terrible' is not in the vocabulary"):
        model.most_similar("terrible")
    with pytest.raises(KeyError, match="not in the vocabulary"):
        model.most_similar("<pad>")
    with pytest.raises(ValueError, match="k must be"):
        model.most_similar("good", k=0)


def test_embeddings_are_live():
    model = _sent_model(max_iter=2).fit(SENT_TEXTS, SENT_Y)
    E = model.embeddings_
    assert E.shape == (len(model.vocabulary_), 8)
    assert E.dtype == np.float32
    before = model.predict_proba(SENT_TEXTS)
    snapshot = E.copy()
    model.partial_fit(SENT_TEXTS, SENT_Y)
    assert model.embeddings_ is E  # the same array, updated in place
    assert not np.array_equal(E, snapshot)
    # an in-place change of the table changes the predictions
    after_fit = model.predict_proba(SENT_TEXTS)
    E[2:] = 0.0
    zeroed = model.predict_proba(SENT_TEXTS)
    assert not np.allclose(zeroed, after_fit)
    np.testing.assert_allclose(zeroed, zeroed[[0]].repeat(10, axis=0), rtol=1e-6)
    assert not np.allclose(before, after_fit)


def test_assigned_embeddings_are_the_ones_used():
    """``embeddings_`` is documented as E, live. Assigning a new table of the right
    shape (as one does with pretrained vectors, and as coefs_ allows) must leave the
    model predicting with the table ``embeddings_`` shows, like an in-place write."""
    model = _sent_model(max_iter=2).fit(SENT_TEXTS, SENT_Y)
    new = np.random.default_rng(5).normal(0.0, 1.0, model.embeddings_.shape)
    new = new.astype(np.float32)
    new[PAD] = 0.0
    twin = _sent_model(max_iter=2).fit(SENT_TEXTS, SENT_Y)
    twin.embeddings_[...] = new  # in place: takes effect
    want = twin.predict_proba(SENT_TEXTS)
    model.embeddings_ = new  # assignment
    got = model.predict_proba(SENT_TEXTS)
    np.testing.assert_array_equal(model.embeddings_, new)
    np.testing.assert_array_equal(got, want)


def _negation(n_train=600, seed=0):
    splits = cymlp.datasets.load("negation", n_samples=n_train, seed=seed)
    return splits.train, splits.dev, splits.test


def test_validation_data_keeps_the_best_epoch():
    (X, y), (Xd, yd), _ = _negation(300)
    Xd, yd = Xd[:200], yd[:200]
    params = {"embed_dim": 8, "ngram_range": (1, 1), "random_state": 0, "max_iter": 12,
              "batch_size": 16, "learning_rate_init": 0.1, "n_iter_no_change": 50}
    model = TextClassifier((16,), **params).fit(X, y, validation_data=(Xd, yd))
    scores = model.validation_scores_
    assert len(scores) == model.n_iter_ == 12
    assert model.best_epoch_ == int(np.argmax(scores)) + 1
    assert model.best_validation_score_ == max(scores)
    assert model.score(Xd, yd) == max(scores) > 0.9
    # these settings peak before the last epoch, so the choice is visible
    assert model.best_epoch_ < model.n_iter_
    # the kept parameters are those after epoch best_epoch_: rerun that many epochs
    rerun = TextClassifier((16,), **{**params, "max_iter": model.best_epoch_,
                                     "early_stopping": False}).fit(X, y)
    np.testing.assert_array_equal(model.embeddings_, rerun.embeddings_)
    for a, b in zip(model.coefs_, rerun.coefs_):
        np.testing.assert_array_equal(a, b)
    last = TextClassifier((16,), **{**params, "early_stopping": False}).fit(X, y)
    assert not np.array_equal(model.embeddings_, last.embeddings_)


@pytest.mark.parametrize("encoder, params", [
    pytest.param("window", {"window": 3}, id="window"),
    pytest.param("bag", {"ngram_range": (1, 2)}, id="bag"),
    pytest.param("bag", {"ngram_range": (1, 2), "token_weights": "idf", "pooling": "sum"},
                 id="bag-idf"),
    pytest.param("bag", {"ngram_range": (1, 2), "token_weights": "nb"}, id="bag-nb"),
    pytest.param("bag", {"ngram_range": (1, 2), "char_ngram_range": (2, 4)}, id="bag-chars"),
])
def test_save_load_round_trip(tmp_path, encoder, params):
    model = _sent_model(encoder=encoder, max_iter=5, **params).fit(SENT_TEXTS, SENT_Y)
    probe = SENT_TEXTS + ["", "never seen words", "good unknown fun"]
    want = model.predict_proba(probe)
    path = model.save(tmp_path / "model")
    loaded = cymlp.load(path)
    assert isinstance(loaded, TextClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(probe), want)
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    np.testing.assert_array_equal(loaded.embeddings_, model.embeddings_)
    assert loaded.vocabulary_.id_to_token == model.vocabulary_.id_to_token
    weights = params.get("token_weights")
    if weights is not None:
        name = f"{weights}_"
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
        # the weights matter: without them the probabilities change
        getattr(loaded, name)[...] = 1
        assert not np.allclose(loaded.predict_proba(probe), want)


def test_idf_weights_follow_the_formula():
    texts = ["a b", "a c", "a a d"]
    model = TextClassifier((2,), embed_dim=2, ngram_range=(1, 1), token_weights="idf",
                           early_stopping=False, max_iter=1).fit(texts, [0, 1, 0])
    vocab = model.vocabulary_
    df = {"a": 3, "b": 1, "c": 1, "d": 1}
    for word, d in df.items():
        assert model.idf_[vocab.token_to_id[word]] == pytest.approx(
            np.log(4 / (1 + d)) + 1, rel=1e-6)


def _nb_by_hand(texts, y, words, alpha=1.0):
    """``max_c |log(p_c / |p_c|) - log(q_c / |q_c|)|`` for each of ``words`` (the
    vocabulary without PAD and UNK), counted with dicts: a text counts once per word."""
    weights = {w: 0.0 for w in words}
    for c in sorted(set(y)):
        p = {w: alpha for w in words}
        q = {w: alpha for w in words}
        for t, label in zip(texts, y):
            for w in set(t.split()):
                (p if label == c else q)[w] += 1
        # PAD and UNK have rows too, holding alpha on both sides
        p_total = sum(p.values()) + 2 * alpha
        q_total = sum(q.values()) + 2 * alpha
        for w in words:
            r = np.log(p[w] / p_total) - np.log(q[w] / q_total)
            weights[w] = max(weights[w], abs(r))
    return weights


def _nb_of(model, texts, y):
    vocab = model.vocabulary_
    words = vocab.id_to_token[2:]
    hand = _nb_by_hand(texts, y, words)
    return np.array([hand[w] for w in words])


@pytest.mark.parametrize("y", [[0, 1, 0, 1, 1], [0, 1, 2, 2, 0]], ids=["binary", "3-class"])
def test_nb_weights_follow_the_formula(y):
    texts = ["a b a", "b c", "a d", "c c e", "e b"]
    model = TextClassifier((2,), embed_dim=2, ngram_range=(1, 1), token_weights="nb",
                           early_stopping=False, max_iter=1, dtype="float64").fit(texts, y)
    np.testing.assert_allclose(model.nb_[2:], _nb_of(model, texts, y), rtol=1e-12)
    assert model.idf_ is None
    # the weights are what the bag uses: the input of the MLP is the weighted mean
    vocab = model.vocabulary_
    ids = [vocab.token_to_id[w] for w in "a b a".split()]
    want = model.nb_[ids] @ model.embeddings_[ids] / 3
    np.testing.assert_allclose(model.sentence_vectors(["a b a"])[0], want, rtol=1e-12)


@pytest.mark.parametrize("weights", ["idf", "nb"])
def test_token_weights_survive_a_model_file(weights, tmp_path):
    """The idf or naive-Bayes weights are saved with the model and loaded back as they
    were (the loader admits both arrays)."""
    texts = ["a b a", "b c", "a d", "c c e", "e b"]
    model = TextClassifier((2,), embed_dim=2, ngram_range=(1, 2), token_weights=weights,
                           early_stopping=False, max_iter=2, random_state=0).fit(
        texts, [0, 1, 0, 1, 1])
    loaded = cymlp.load(cymlp.save(model, tmp_path / "m"))
    attr = f"{weights}_"
    np.testing.assert_array_equal(getattr(loaded, attr), getattr(model, attr))
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))


def test_nb_weights_come_from_the_training_rows_only():
    """The labels of a development set, or of the rows early stopping holds out, do not
    enter the weights."""
    texts = ["a b", "b c", "a d", "c e", "e b", "a a", "d c", "b e"]
    y = [0, 1, 0, 1, 1, 0, 1, 0]
    kw = dict(embed_dim=2, ngram_range=(1, 1), token_weights="nb", max_iter=1,
              random_state=0, dtype="float64")
    dev = (["a c", "b d"], [0, 1])
    first = TextClassifier((2,), **kw).fit(texts, y, validation_data=dev)
    np.testing.assert_allclose(first.nb_[2:], _nb_of(first, texts, y), rtol=1e-12)
    flipped = TextClassifier((2,), **kw).fit(texts, y, validation_data=(dev[0], [1, 0]))
    np.testing.assert_array_equal(first.nb_, flipped.nb_)
    # early stopping holds one text of each class out: the weights are those of the
    # six others (of some such pair), not of all eight
    held = TextClassifier((2,), **kw, validation_fraction=0.25).fit(texts, y)
    assert not np.allclose(held.nb_[2:], _nb_of(held, texts, y), rtol=1e-9)
    matches = [(i, j) for i in range(8) for j in range(8) if y[i] == 0 and y[j] == 1
               and np.allclose(held.nb_[2:], _nb_of(
                   held, [t for k, t in enumerate(texts) if k not in (i, j)],
                   [v for k, v in enumerate(y) if k not in (i, j)]), rtol=1e-9)]
    assert len(matches) == 1


def _without_negators(split):
    """The sentences of a negation split that hold no negator: the label is then the
    polarity of the sentiment word, a task word dropout does not make ambiguous."""
    X, y = split
    keep = [i for i, t in enumerate(X) if not {"not", "never", "hardly"} & set(t.split())]
    return [X[i] for i in keep], y[keep]


@pytest.mark.parametrize("encoder", ["bag", "window"])
def test_token_dropout_trains_and_prediction_is_deterministic(encoder):
    train, _, test = _negation(600)
    (X, y), (Xt, yt) = _without_negators(train), _without_negators(test)
    params = {"encoder": encoder, "window": 12, "embed_dim": 8, "ngram_range": (1, 1),
              "random_state": 0, "max_iter": 10, "batch_size": 16, "early_stopping": False,
              "learning_rate_init": 0.1}
    model = TextClassifier((16,), token_dropout=0.3, **params).fit(X, y)
    plain = TextClassifier((16,), **params).fit(X, y)
    assert not np.array_equal(model.embeddings_, plain.embeddings_)  # dropout did act
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]
    assert model.score(Xt, yt) > 0.95
    first = model.predict_proba(Xt[:50])
    np.testing.assert_array_equal(model.predict_proba(Xt[:50]), first)
    # prediction uses every token: the logits of the full encoding
    feed = _inputs(model, Xt[:50])
    E = model.embeddings_.astype(np.float64)
    if encoder == "bag":
        x = ref.bag_encode(E, feed.indptr, feed.ids, None, "mean")
    else:
        x = ref.window_encode(E, feed.ids)
    weights = [w.astype(np.float64) for w in model.coefs_]
    biases = [b.astype(np.float64) for b in model.intercepts_]
    _, _, Z = ref.forward(weights, biases, x, ["relu"])
    np.testing.assert_allclose(first, ref.softmax(Z), rtol=1e-4, atol=1e-6)


def test_negation_needs_a_hidden_layer():
    """The note's point: the label is the exclusive or of polarity and negation, which
    a linear model on averaged embeddings cannot represent."""
    (X, y), _, (Xt, yt) = _negation(1000)
    params = {"encoder": "bag", "ngram_range": (1, 1), "embed_dim": 16, "max_iter": 15,
              "batch_size": 16, "early_stopping": False, "random_state": 0}
    mlp = TextClassifier((32,), "relu", **params).fit(X, y)
    linear = TextClassifier((), **params).fit(X, y)
    assert mlp.score(Xt, yt) > 0.9
    assert linear.score(Xt, yt) < 0.8


def test_same_random_state_same_embeddings():
    (X, y), _, _ = _negation(200)
    params = {"embed_dim": 4, "max_iter": 3, "batch_size": 16, "token_dropout": 0.1}
    a = TextClassifier((8,), random_state=7, **params).fit(X, y)
    b = TextClassifier((8,), random_state=7, **params).fit(X, y)
    c = TextClassifier((8,), random_state=8, **params).fit(X, y)
    np.testing.assert_array_equal(a.embeddings_, b.embeddings_)
    for wa, wb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.embeddings_, c.embeddings_)


# ---------------------------------------------------------------- (4) bad input
@pytest.mark.parametrize("X, match", [
    pytest.param([], "X is empty", id="empty-list"),
    pytest.param("good movie", "single string", id="single-string"),
    pytest.param(np.array([[1.0, 2.0], [3.0, 4.0]]), "numeric array", id="numeric-array"),
    pytest.param([b"good movie", b"bad"], r"X\[0\] is bytes", id="bytes"),
    pytest.param(None, "got None", id="none"),
    pytest.param(["good", 3], r"X\[1\] is int", id="number-in-list"),
    pytest.param([["good", 3], ["bad"]], r"X\[0\] is list", id="number-in-tokens"),
])
def test_bad_texts(X, match):
    with pytest.raises(ValueError, match=match):
        TextClassifier().fit(X, [0, 1])


def test_bad_texts_at_predict():
    model = _sent_model(max_iter=1).fit(SENT_TEXTS, SENT_Y)
    with pytest.raises(ValueError, match="single string"):
        model.predict("good movie")
    with pytest.raises(ValueError, match="bytes"):
        model.predict_proba([b"good"])
    with pytest.raises(ValueError, match="X is empty"):
        model.predict([])


def test_texts_and_labels_of_different_lengths():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        TextClassifier().fit(SENT_TEXTS, SENT_Y[:-1])


def test_a_single_class():
    with pytest.raises(ValueError, match="only one class"):
        TextClassifier().fit(SENT_TEXTS, ["pos"] * len(SENT_TEXTS))


@pytest.mark.parametrize("params, match", [
    ({"encoder": "cnn"}, "encoder must be one of"),
    ({"pooling": "max"}, "pooling must be one of"),
    ({"window": 0}, "window must be in"),
    ({"embed_dim": 0}, "embed_dim must be in"),
    ({"ngram_range": (2, 1)}, "min_n <= max_n"),
    ({"ngram_range": (0, 1)}, "positive integers"),
    ({"token_weights": "foo"}, "token_weights must be None, 'idf' or 'nb'"),
    ({"token_dropout": 1.0}, "token_dropout must be in"),
    ({"max_vocab": 2}, "max_vocab must be in"),
    ({"char_ngram_range": (3, 2)}, "char_ngram_range must have min_n <= max_n"),
    ({"char_ngram_range": 3}, "char_ngram_range must be a pair"),
    ({"char_ngram_range": (0, 2)}, "char_ngram_range must hold positive integers"),
    ({"char_ngram_range": (2, 3), "encoder": "window"}, "bag encoder only"),
    ({"char_ngram_range": (2, 3), "ngram_range": (2, 2)}, "must start at 1"),
])
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        TextClassifier(**params).fit(SENT_TEXTS, SENT_Y)


@pytest.mark.parametrize("encoder", ["bag", "window"])
def test_empty_and_unknown_sentences_get_a_probability_row(encoder):
    model = _sent_model(encoder=encoder, window=3, max_iter=3).fit(SENT_TEXTS, SENT_Y)
    probe = ["", "   ", "zzz qqq", [], ["never", "seen"], "good movie"]
    proba = model.predict_proba(probe)
    assert proba.shape == (6, 2)
    assert np.all(np.isfinite(proba)) and np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # all empty sentences are the same input (x = 0, or all PAD)
    np.testing.assert_allclose(proba[[1, 3]], proba[[0, 0]], rtol=1e-6)
    # unknown words are UNK: the two all-unknown sentences agree (bag mean of UNK)
    if encoder == "bag":
        np.testing.assert_allclose(proba[4], proba[2], rtol=1e-6)
    assert len(model.predict(probe)) == 6


def test_unseen_labels_at_score_count_as_wrong():
    model = _sent_model().fit(SENT_TEXTS, SENT_Y)
    assert model.score(SENT_TEXTS, SENT_Y) == 1.0
    y = list(SENT_Y)
    y[0] = "neutral"
    y[3] = "other"
    assert model.score(SENT_TEXTS, y) == pytest.approx(0.8)
    assert model.score(SENT_TEXTS[:1], ["neutral"]) == 0.0


def test_unseen_label_of_another_type_counts_only_itself_as_wrong():
    """A model with int labels scored on labels holding one unseen *string* label: only
    that row is an error. (np.asarray turns the mixed list into strings, so a plain
    ``pred == y`` would compare every int prediction with a string and miss all.)"""
    y_int = [1, 0] * 5
    model = _sent_model().fit(SENT_TEXTS, y_int)
    assert model.score(SENT_TEXTS, y_int) == 1.0
    y = list(y_int)
    y[0] = "unknown"
    assert model.score(SENT_TEXTS, y) == pytest.approx(0.9)


def test_partial_fit_with_unseen_labels():
    model = _sent_model(max_iter=1).fit(SENT_TEXTS, SENT_Y)
    with pytest.raises(ValueError, match="'neutral'"):
        model.partial_fit(SENT_TEXTS[:2], ["pos", "neutral"])
    first = TextClassifier((4,), embed_dim=3)
    first.partial_fit(SENT_TEXTS[:2], ["pos", "neg"], classes=["neg", "pos"])
    with pytest.raises(ValueError, match="'meh'"):
        first.partial_fit(SENT_TEXTS[:2], ["meh", "neg"])


@pytest.mark.parametrize("encoder", ["bag", "window"])
def test_token_ids_outside_the_table_are_rejected(encoder):
    model = _sent_model(encoder=encoder, window=3, max_iter=1, ngram_range=(1, 2))
    model.fit(SENT_TEXTS, SENT_Y)
    n_vocab = len(model.vocabulary_)
    assert model._engine.n_vocab == n_vocab == model._engine.E.shape[0]

    def check_ids(ids):
        """The engine's check of token ids (in the model's layout, padded with PAD),
        before any kernel reads them."""
        ids = np.asarray(ids).ravel()
        if encoder == "window":
            ids = np.concatenate([ids, np.zeros(-len(ids) % 3, ids.dtype)]).reshape(-1, 3)
            model._engine._check(token_inputs(ids))
        else:
            model._engine._check(token_inputs(ids, np.array([0, len(ids)])))

    check_ids(np.array([0, 1, n_vocab - 1], dtype=np.intc))  # in range: no error
    check_ids(np.zeros(0, dtype=np.intc))
    with pytest.raises(ValueError, match=rf"token ids must lie in \[0, {n_vocab}\)"):
        check_ids(np.array([2, n_vocab], dtype=np.intc))
    with pytest.raises(ValueError, match=r"got ids from -1"):
        check_ids(np.array([[3, -1], [2, 2]], dtype=np.intc))
    # a damaged vocabulary cannot smuggle an out-of-range id into the kernels
    vocab = model.vocabulary_
    vocab._unigram_get = {"good": -4}.get
    with pytest.raises(ValueError, match="token ids must lie in"):
        model.predict(["good movie"])
    if encoder == "bag":
        vocab._unigram_get = {"good": 3}.get
        vocab._ngram_get = {"good movie": n_vocab + 1000}.get
        with pytest.raises(ValueError, match="token ids must lie in"):
            model.predict_proba(["good movie"])


# ---------------------------------------------------------------- (4) subwords
def _word_unit(model, word, span):
    """A word's vector from the token strings alone (see the test below)."""
    vocab, E = model.vocabulary_, model.embeddings_
    chars = {t: i for i, t in enumerate(vocab.id_to_token) if i >= vocab.char_offset}
    marked = "<" + word + ">"
    grams = [marked[i:i + n] for n in range(span[0], span[1] + 1)
             for i in range(len(marked) - n + 1) if n < len(marked)]
    rows = [chars[g] for g in grams if g in chars]
    if word in vocab:
        rows.append(vocab.token_to_id[word])
    return E[rows].mean(axis=0) if rows else E[UNK]


def test_subword_bag_is_the_mean_over_words_of_each_words_mean_row():
    """The pooled input, computed here from the token strings alone: a known word is
    the mean of its row and its known character n-grams' rows, an unknown word the mean
    of its known n-grams' rows (UNK without any), a word bigram its row; the sentence
    is the mean of these (or their sum)."""
    texts = ["where were we", "we were here", "here we go"]
    for pooling in ("mean", "sum"):
        model = TextClassifier((), embed_dim=3, ngram_range=(1, 2), char_ngram_range=(2, 3),
                               pooling=pooling, dtype="float64", random_state=0,
                               max_iter=1, early_stopping=False, embed_init=1.0)
        model.fit(texts, [0, 1, 0])
        vocab, E = model.vocabulary_, model.embeddings_
        probe = ["where were we", "were here", "wherever we go", "zzz", "here here"]
        for text in probe:
            words = text.split()
            units = [_word_unit(model, w, (2, 3)) for w in words]
            units += [E[vocab.token_to_id[" ".join(pair)]] for pair in pairwise(words)
                      if " ".join(pair) in vocab]
            f = np.sum(units, axis=0) / (len(units) if pooling == "mean" else 1)
            z = f @ model.coefs_[0] + model.intercepts_[0]
            p = np.exp(z - z.max())
            np.testing.assert_allclose(model.predict_proba([text])[0], p / p.sum(),
                                       rtol=1e-12, err_msg=f"{pooling}: {text!r}")


def _suffix_task(seed, n_stems):
    """Label 1 for words ending in 'ful', 0 for 'less', on random stems: a word unseen
    in training can only be classified by its characters."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("bcdfghjkmnprstvwz"))
    stems = ["".join(rng.choice(letters, 4)) for _ in range(n_stems)]
    y = rng.integers(0, 2, n_stems)
    texts = [stem + ("ful" if label else "less") for stem, label in zip(stems, y)]
    return texts, y


def test_subwords_classify_words_never_seen_in_training():
    X, y = _suffix_task(0, 300)
    X_new, y_new = _suffix_task(1, 200)
    assert not set(X) & set(X_new)
    kw = {"embed_dim": 8, "random_state": 0, "max_iter": 30, "early_stopping": False}
    words = TextClassifier((8,), **kw).fit(X, y)
    chars = TextClassifier((8,), char_ngram_range=(3, 5), **kw).fit(X, y)
    assert words.score(X_new, y_new) < 0.7  # every new word is UNK
    assert chars.score(X_new, y_new) > 0.95


def test_most_similar_with_subwords():
    X, y = _suffix_task(0, 100)
    model = TextClassifier((8,), embed_dim=8, char_ngram_range=(3, 5), random_state=0,
                           max_iter=20, early_stopping=False).fit(X, y)
    vocab = model.vocabulary_
    out = model.most_similar(X[0], k=5)
    assert len(out) == 5 and X[0] not in [t for t, _ in out]
    # candidates are words only, never character n-grams
    assert all(vocab.token_to_id[t] < vocab.char_offset for t, _ in out)
    everything = model.most_similar(X[0], k=10**6)
    assert len(everything) == vocab.char_offset - 3 < len(vocab) - 3
    # an unseen word has a vector through its n-grams; its neighbours share its ending
    ending = "ful" if y[0] else "less"
    unseen = model.most_similar("qqqq" + ending, k=10)
    assert sum(t.endswith(ending) for t, _ in unseen) >= 8
    with pytest.raises(KeyError, match="no known character n-gram"):
        model.most_similar("xyxyxy")


def test_word_vector_is_the_unit_the_bag_uses():
    X, y = _suffix_task(0, 50)
    model = TextClassifier((), embed_dim=4, char_ngram_range=(3, 5), ngram_range=(1, 1),
                           pooling="sum", dtype="float64", random_state=0, max_iter=2,
                           early_stopping=False).fit(X, y)
    for word in (X[0], X[1].upper(), "qqqqful"):
        # a one-word text's pooled sum is exactly that word's unit
        np.testing.assert_allclose(model.word_vector(word),
                                   model.sentence_vectors([word])[0], rtol=1e-12)
        np.testing.assert_allclose(model.word_vector(word),
                                   _word_unit(model, word.lower(), (3, 5)), rtol=1e-12)
    plain = _sent_model(max_iter=1).fit(SENT_TEXTS, SENT_Y)
    vocab = plain.vocabulary_
    np.testing.assert_array_equal(plain.word_vector("Good"),
                                  plain.embeddings_[vocab.token_to_id["good"]])
    with pytest.raises(KeyError, match="not in the vocabulary"):
        plain.word_vector("zebra")
    with pytest.raises(TypeError, match="word must be a str"):
        plain.word_vector(3)


@pytest.mark.parametrize("params", [
    pytest.param({"encoder": "window", "window": 3}, id="window"),
    pytest.param({"ngram_range": (1, 2)}, id="bag-mean"),
    pytest.param({"ngram_range": (1, 2), "pooling": "sum", "token_weights": "idf"},
                 id="bag-sum-idf"),
    pytest.param({"ngram_range": (1, 2), "token_weights": "nb"}, id="bag-mean-nb"),
    pytest.param({"ngram_range": (1, 2), "char_ngram_range": (2, 4)}, id="bag-chars"),
])
def test_sentence_vectors_are_the_input_of_the_mlp(params):
    """A linear model's probabilities from the sentence vectors, computed apart from
    the engine, match predict_proba; window rows are the embeddings in order."""
    model = TextClassifier((), embed_dim=8, random_state=0, early_stopping=False,
                           max_iter=3, batch_size=4, dtype="float64", **params)
    model.fit(SENT_TEXTS, SENT_Y)
    probe = SENT_TEXTS + ["", "never seen words", "good unknown fun"]
    F = model.sentence_vectors(probe)
    assert F.shape == (len(probe), model.coefs_[0].shape[0]) and F.dtype == np.float64
    z = F @ model.coefs_[0] + model.intercepts_[0]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(model.predict_proba(probe), p / p.sum(axis=1, keepdims=True),
                               rtol=1e-12, atol=1e-15)
    if model.encoder == "window":
        ids = model.vocabulary_.encode_window(probe, 3)
        np.testing.assert_array_equal(F, model.embeddings_[ids].reshape(len(probe), -1))
    else:
        assert np.all(F[len(SENT_TEXTS)] == 0)  # the empty sentence


# ---------------------------------------------------------------- hashed n-grams, threads
def test_hashed_ngrams_bound_the_table(tmp_path):
    """n_buckets: word bigrams (and character n-grams) share a fixed number of rows."""
    texts, y = _negation(600)[0]
    model = TextClassifier((16,), embed_dim=8, ngram_range=(1, 2), char_ngram_range=(3, 4),
                           n_buckets=1000, max_iter=30, early_stopping=False,
                           learning_rate_init=0.1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(texts, y)
    vocab = model.vocabulary_
    assert len(vocab) == vocab.n_unigrams + 1000 == model.embeddings_.shape[0]
    assert model.score(texts, y) > 0.9
    loaded = cymlp.load(model.save(tmp_path / "m.cymlp"))
    assert loaded.vocabulary_.n_buckets == 1000
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    with pytest.raises(ValueError, match="n_buckets must be in"):
        TextClassifier(n_buckets=0).fit(texts, y)


@pytest.mark.parametrize("encoder", ["bag", "window"])
def test_threaded_encoding_gives_the_same_model(encoder):
    texts, y = _negation(400)[0]
    params = {"hidden_layer_sizes": (8,), "encoder": encoder, "embed_dim": 4,
              "max_iter": 2, "random_state": 0, "early_stopping": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = TextClassifier(**params).fit(texts, y)
        two = TextClassifier(n_jobs=2, **params).fit(texts, y)
    np.testing.assert_array_equal(two.embeddings_, one.embeddings_)
    np.testing.assert_array_equal(two.predict_proba(texts), one.predict_proba(texts))


def test_word_vectors_normalise_the_query_like_the_vocabulary():
    """A decomposed spelling of a known word (NFD) finds the word's vector."""
    import unicodedata

    texts = ["café noir", "thé vert", "café crème", "thé noir"] * 3
    model = _sent_model().fit(texts, [0, 1, 0, 1] * 3)
    np.testing.assert_array_equal(model.word_vector(unicodedata.normalize("NFD", "café")),
                                  model.word_vector("café"))
