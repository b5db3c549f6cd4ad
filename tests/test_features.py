"""TfidfFeatures and TextPipeline: the features against a hand computation (and against
scikit-learn's TfidfVectorizer), the naive-Bayes columns, a development set of texts,
model files and pickles."""
import pickle
import warnings

import numpy as np
import pytest

import cymlp
from cymlp import MLPClassifier, TextPipeline, TfidfFeatures

TEXTS = ["a b a", "b c", "a d d d", "c c e", "e b", "", "a b c d e"]
Y = [0, 1, 0, 1, 1, 0, 1]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _by_hand(texts, fit_texts, tf, weights, y=None):
    """Rows of unigram features computed with dicts, in the vocabulary's column order."""
    words = sorted({w for t in fit_texts for w in t.split()})
    n = len(fit_texts)
    if weights == "idf":
        w = {v: np.log((1 + n) / (1 + sum(v in t.split() for t in fit_texts))) + 1
             for v in words}
    elif weights == "nb":
        w = {}
        for v in words:
            p = 1 + sum(v in t.split() for t, c in zip(fit_texts, y) if c == 1)
            q = 1 + sum(v in t.split() for t, c in zip(fit_texts, y) if c == 0)
            # every column (PAD and UNK too) holds alpha = 1 on both sides
            p_tot = len(words) + 2 + sum(len(set(t.split())) for t, c in zip(fit_texts, y)
                                         if c == 1)
            q_tot = len(words) + 2 + sum(len(set(t.split())) for t, c in zip(fit_texts, y)
                                         if c == 0)
            w[v] = abs(np.log(p / p_tot) - np.log(q / q_tot))
    else:
        w = {v: 1.0 for v in words}
    rows = []
    for t in texts:
        counts = {}
        for v in t.split():
            counts[v] = counts.get(v, 0) + 1
        row = {}
        for v, k in counts.items():
            if v not in w:
                continue
            f = {"raw": k, "log": 1 + np.log(k), "binary": 1.0}[tf]
            row[v] = f * w[v]
        norm = np.sqrt(sum(x * x for x in row.values())) or 1.0
        rows.append({v: x / norm for v, x in row.items()})
    return rows


@pytest.mark.parametrize("tf", ["raw", "log", "binary"])
@pytest.mark.parametrize("weights", ["idf", "nb", None])
def test_features_follow_the_formula(tf, weights):
    feats = TfidfFeatures(ngram_range=(1, 1), tf=tf, weights=weights, dtype="float64")
    probe = TEXTS + ["a zzz", "zzz"]
    A = feats.fit(TEXTS, Y).transform(probe)
    assert A.format == "csr" and A.dtype == np.float64
    assert A.shape == (len(probe), feats.n_features_)
    vocab = feats.vocabulary_
    for i, want in enumerate(_by_hand(probe, TEXTS, tf, weights, Y)):
        got = {vocab.id_to_token[j]: A[i, j] for j in A[i].indices}
        assert set(got) == set(want), (i, got, want)
        for v, x in want.items():
            assert got[v] == pytest.approx(x, rel=1e-12)
    # fit_transform is fit then transform
    np.testing.assert_array_equal(feats.fit_transform(TEXTS, Y).toarray(),
                                  feats.transform(TEXTS).toarray())


def test_features_match_scikit_learn():
    text = pytest.importorskip("sklearn.feature_extraction.text")
    from cymlp import datasets
    split = datasets.load("negation", n_samples=300, seed=2)
    X = split.train[0]
    ours = TfidfFeatures(ngram_range=(1, 2), tf="log", weights="idf", dtype="float64")
    A = ours.fit(X).transform(split.test[0][:100])
    theirs = text.TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True,
                                  token_pattern=r"\S+").fit(X)
    B = theirs.transform(split.test[0][:100])
    # the same columns, in another order
    order = [ours.vocabulary_.token_to_id[t] for t in theirs.get_feature_names_out()]
    np.testing.assert_allclose(A[:, order].toarray(), B.toarray(), rtol=1e-10, atol=1e-12)


def test_nb_features_need_labels():
    with pytest.raises(ValueError, match="needs the labels"):
        TfidfFeatures(weights="nb").fit(TEXTS)
    with pytest.raises(ValueError, match="weights must be"):
        TfidfFeatures(weights="bm25").fit(TEXTS, Y)
    with pytest.raises(ValueError, match="tf must be one of"):
        TfidfFeatures(tf="double").fit(TEXTS, Y)


def _pipe(**kw):
    return TextPipeline(TfidfFeatures(ngram_range=(1, 2), tf="binary", weights="nb"),
                        MLPClassifier((), learning_rate_init=0.05, max_iter=30,
                                      early_stopping=True, n_iter_no_change=3, **kw),
                        random_state=0)


def test_pipeline_is_logistic_regression_on_the_features():
    from cymlp import datasets
    split = datasets.load("negation", n_samples=300, seed=2)
    pipe = _pipe().fit(*split.train, validation_data=split.dev)
    assert pipe.best_validation_score_ is not None and pipe.best_epoch_ >= 1
    # the same classifier on the same features, by hand
    A = pipe.features_.transform(split.train[0])
    by_hand = MLPClassifier((), learning_rate_init=0.05, max_iter=30, early_stopping=True,
                            n_iter_no_change=3, random_state=0).fit(
        A, split.train[1], validation_data=(pipe.transform(split.dev[0]), split.dev[1]))
    probe = split.test[0][:50]
    np.testing.assert_array_equal(pipe.predict_proba(probe),
                                  by_hand.predict_proba(pipe.transform(probe)))
    assert pipe.score(*split.test) == by_hand.score(pipe.transform(split.test[0]),
                                                    split.test[1])
    # fit leaves its arguments as they were
    assert not hasattr(pipe.classifier, "_fitted") or pipe.classifier._fitted is None


def test_pipeline_round_trips(tmp_path):
    pipe = _pipe().fit(TEXTS, Y)
    probe = TEXTS + ["never seen", ""]
    want = pipe.predict_proba(probe)
    loaded = cymlp.load(pipe.save(tmp_path / "pipe"))
    assert isinstance(loaded, TextPipeline)
    np.testing.assert_array_equal(loaded.predict_proba(probe), want)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(pipe)).predict_proba(probe), want)
    np.testing.assert_array_equal(loaded.classes_, pipe.classes_)


def test_unfitted_pipeline_and_features_say_so():
    with pytest.raises(cymlp._compat.NotFittedError):
        TextPipeline().predict(TEXTS)
    with pytest.raises(cymlp._compat.NotFittedError):
        TfidfFeatures().transform(TEXTS)
    with pytest.raises(ValueError, match="features must be a TfidfFeatures"):
        TextPipeline(features=MLPClassifier()).fit(TEXTS, Y)


def _nb_direction_by_hand(texts, y, vocab, classes):
    """U[j, c] = r_c[j] / max_c |r_c[j]| with r from presence counts taken with dicts
    (every column, PAD and UNK too, holds alpha = 1 on both sides of every ratio)."""
    sets = [set(vocab.encode_bag([t])[1].tolist()) for t in texts]
    n_vocab = len(vocab)
    r = np.zeros((n_vocab, len(classes)))
    for c, label in enumerate(classes):
        inside = [s for s, lab in zip(sets, y) if lab == label]
        outside = [s for s, lab in zip(sets, y) if lab != label]
        p = np.array([1 + sum(j in s for s in inside) for j in range(n_vocab)], float)
        q = np.array([1 + sum(j in s for s in outside) for j in range(n_vocab)], float)
        r[:, c] = np.log(p / p.sum()) - np.log(q / q.sum())
    top = np.abs(r).max(axis=1, keepdims=True)
    return np.where(top > 0, r / np.where(top > 0, top, 1), 0.0)


@pytest.mark.parametrize("labels", [Y, [0, 1, 2, 1, 2, 0, 2]])
@pytest.mark.parametrize("beta", [0.0, 0.3, 0.75])
def test_nb_interpolation_pulls_the_weights_toward_naive_bayes(labels, beta):
    """NBSVM's interpolation: W' = beta W + (1 - beta) s U, U naive Bayes's classifier in
    the features (centred over the classes), s matching W's mean magnitude; the biases
    and everything else stay as trained."""
    plain = TextPipeline(TfidfFeatures(ngram_range=(1, 1), tf="binary", weights="nb",
                                       dtype="float64"),
                         MLPClassifier((), max_iter=20, random_state=0, dtype="float64"),
                         random_state=0).fit(TEXTS, labels)
    mixed = clone_with(plain, nb_interpolation=beta).fit(TEXTS, labels)
    W = plain.classifier_.coefs_[0]
    U = _nb_direction_by_hand(TEXTS, labels, plain.features_.vocabulary_, plain.classes_)
    U = U - U.mean(axis=1, keepdims=True)
    Wc = W - W.mean(axis=1, keepdims=True)
    want = beta * W + (1 - beta) * np.abs(Wc).mean() / np.abs(U).mean() * U
    np.testing.assert_allclose(mixed.classifier_.coefs_[0], want, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(mixed.classifier_.intercepts_[0],
                                  plain.classifier_.intercepts_[0])
    # the predictions are those of the interpolated logits
    A = plain.transform(TEXTS + ["b c d"]).toarray()
    z = A @ want + plain.classifier_.intercepts_[0]
    np.testing.assert_array_equal(mixed.predict(TEXTS + ["b c d"]),
                                  plain.classes_[z.argmax(axis=1)])


def clone_with(pipe, **params):
    return cymlp._compat.clone(pipe).set_params(**params)


def test_nb_interpolation_of_one_changes_nothing_and_round_trips(tmp_path):
    a = _pipe().fit(TEXTS, Y)
    b = clone_with(a, nb_interpolation=1.0).fit(TEXTS, Y)
    np.testing.assert_array_equal(a.predict_proba(TEXTS), b.predict_proba(TEXTS))
    c = clone_with(a, nb_interpolation=0.5).fit(TEXTS, Y)
    loaded = cymlp.load(c.save(tmp_path / "pipe"))
    assert loaded.nb_interpolation == 0.5
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), c.predict_proba(TEXTS))
    # several labels per text: sigmoid outputs, one direction per label, not centred
    multi = [[0], [1], [0, 1], [1], [1], [], [0, 1]]
    m = TextPipeline(TfidfFeatures(ngram_range=(1, 1), tf="binary", weights="nb"),
                     MLPClassifier((), max_iter=5, random_state=0),
                     nb_interpolation=0.5).fit(TEXTS, multi)
    assert m.predict_proba(TEXTS).shape == (len(TEXTS), 2)


@pytest.mark.parametrize("pipe, message", [
    (TextPipeline(TfidfFeatures(weights="idf"), nb_interpolation=0.5),
     "needs TfidfFeatures\\(weights='nb'\\).*got weights='idf'"),
    (TextPipeline(TfidfFeatures(weights="nb"), MLPClassifier((8,)), nb_interpolation=0.5),
     "without hidden layers.*hidden_layer_sizes=\\(8,\\)"),
    (TextPipeline(TfidfFeatures(weights="nb"), nb_interpolation=1.5),
     "nb_interpolation must be in \\[0, 1\\], got 1.5"),
    (TextPipeline(TfidfFeatures(weights="nb"), nb_interpolation=True),
     "nb_interpolation must be a number, got True"),
    (TextPipeline(TfidfFeatures(weights="nb"), nb_interpolation=float("nan")),
     "nb_interpolation must be finite, got nan"),
])
def test_nb_interpolation_refuses_what_it_cannot_do(pipe, message):
    with pytest.raises(ValueError, match=message):
        pipe.fit(TEXTS, Y)


def test_a_model_file_with_a_bad_nb_interpolation_is_refused(tmp_path):
    import json
    import zipfile
    path = _pipe().fit(TEXTS, Y).save(tmp_path / "pipe")
    path = next(tmp_path.iterdir()) if not str(path).endswith(".npz") else path
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    name = next(n for n in members if n.endswith(".json"))
    meta = json.loads(members[name])
    meta["params"]["nb_interpolation"] = 7
    members[name] = json.dumps(meta).encode()
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(cymlp.io.ModelFileError, match="nb_interpolation"):
        cymlp.load(bad)


def _char_grams(word, lo, hi):
    """The character n-grams of ``<word>``, written out here (not the library's)."""
    marked = f"<{word}>"
    return [marked[i:i + n] for n in range(lo, hi + 1) if n < len(marked)
            for i in range(len(marked) - n + 1)]


@pytest.mark.parametrize("norm", [None, "l2"])
def test_character_ngrams_are_columns_of_their_own(norm):
    fit_texts = ["ab abc", "b ab", "abc abc c"]
    feats = TfidfFeatures(ngram_range=(1, 1), char_ngram_range=(2, 3), tf="raw",
                          weights=None, norm=norm, dtype="float64").fit(fit_texts)
    vocab = feats.vocabulary_
    known_words = {w for t in fit_texts for w in t.split()}
    known_grams = {g for t in fit_texts for w in t.split() for g in _char_grams(w, 2, 3)}
    probe = fit_texts + ["abd ab", "zz", ""]
    A = feats.transform(probe)
    for i, text in enumerate(probe):
        want = {}
        for w in text.split():
            if w in known_words:
                want["word", w] = want.get(("word", w), 0) + 1.0
            for g in _char_grams(w, 2, 3):   # an unknown word keeps its known n-grams
                if g in known_grams:
                    want["char", g] = want.get(("char", g), 0) + 1.0
        if norm == "l2":   # words and characters each scaled to length 1/sqrt(2)
            for kind in ("word", "char"):
                length = np.sqrt(sum(x * x for k, x in want.items() if k[0] == kind))
                for k in want:
                    if k[0] == kind:
                        want[k] /= length * np.sqrt(2)
        got = {("char" if j >= vocab.char_offset else "word", vocab.id_to_token[j]): A[i, j]
               for j in A[i].indices}
        assert set(got) == set(want), (text, got, want)
        for k, x in want.items():
            assert got[k] == pytest.approx(x, rel=1e-12), (text, k)


def test_character_ngrams_weigh_as_much_as_the_words_together():
    feats = TfidfFeatures(char_ngram_range=(2, 5), tf="binary", weights="nb")
    A = feats.fit_transform(TEXTS + ["a longer text with many long words"], Y + [0])
    words = A[:, :feats.vocabulary_.char_offset]
    chars = A[:, feats.vocabulary_.char_offset:]
    for block in (words, chars):
        lengths = np.asarray(block.multiply(block).sum(axis=1)).ravel()
        filled = np.diff(block.indptr) > 0
        np.testing.assert_allclose(lengths[filled], 0.5, rtol=1e-6)
        assert (lengths[~filled] == 0).all()


@pytest.mark.parametrize("span", [(0, 3), (3, 2), "2-5", (2,)])
def test_a_bad_character_ngram_range_is_named(span):
    with pytest.raises(ValueError, match="char_ngram_range"):
        TfidfFeatures(char_ngram_range=span).fit(TEXTS, Y)


def test_a_pipeline_with_character_ngrams_round_trips(tmp_path):
    pipe = TextPipeline(TfidfFeatures(char_ngram_range=(2, 4), tf="binary", weights="nb"),
                        MLPClassifier((), learning_rate_init=0.05, max_iter=5),
                        random_state=0).fit(TEXTS, Y)
    probe = TEXTS + ["never seen", "abba"]
    loaded = cymlp.load(pipe.save(tmp_path / "pipe"))
    assert loaded.features_.char_ngram_range == (2, 4)
    np.testing.assert_array_equal(loaded.predict_proba(probe), pipe.predict_proba(probe))
