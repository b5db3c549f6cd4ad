"""Starting the text classifier from pretrained word vectors, and freezing the table."""
import warnings

import numpy as np
import pytest

import cymlp
from cymlp import TextClassifier
from cymlp.datasets import DataFormatError

TEXTS = ["good movie", "bad movie", "great film", "awful film", "good fun", "bad plot"] * 4
Y = [1, 0, 1, 0, 1, 0] * 4
DIM = 4
VECTORS = {"good": [0.5, 0.1, -0.2, 0.3], "bad": [-0.5, 0.2, 0.1, -0.3],
           "film": [0.0, 1.0, 0.0, 1.0], "unused": [9.0, 9.0, 9.0, 9.0]}


def _write(path, header, vectors=VECTORS, extra_lines=()):
    lines = [f"{len(vectors)} {DIM}"] if header else []
    lines += [w + " " + " ".join(f"{v:.6g}" for v in vec) for w, vec in vectors.items()]
    lines += list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _model(path, **params):
    base = {"hidden_layer_sizes": (4,), "embed_dim": DIM, "ngram_range": (1, 1),
            "max_iter": 3, "early_stopping": False, "random_state": 0, "dtype": "float64",
            "pretrained_vectors": path}
    return TextClassifier(**{**base, **params})


def _fit(model, texts=TEXTS, y=Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(texts, y)


@pytest.mark.parametrize("kind", ["vec", "word2vec", "glove"])
def test_the_vocabulary_words_start_from_their_vectors(tmp_path, kind):
    path = _write(tmp_path / f"v.{kind}", header=kind != "glove")
    model = _model(path, max_iter=1, embed_trainable=False)
    model._initialize(TEXTS, Y)
    vocab, E = model.vocabulary_, model.embeddings_
    for word in ("good", "bad", "film"):
        np.testing.assert_array_equal(E[vocab.token_to_id[word]], VECTORS[word])
    assert "unused" not in vocab
    # words without a vector keep the random start
    assert not np.allclose(E[vocab.token_to_id["movie"]], 0.0)
    n_words = vocab.n_unigrams - 2
    assert model.pretrained_coverage_ == pytest.approx(3 / n_words)


def test_a_frozen_table_stays_bitwise_unchanged(tmp_path):
    path = _write(tmp_path / "v.vec", header=True)
    model = _model(path, embed_trainable=False, solver="adam")
    model._initialize(TEXTS, Y)
    before = model.embeddings_.copy()
    W_before = model.coefs_[0].copy()
    for _ in range(3):
        model.partial_fit(TEXTS, Y)
    np.testing.assert_array_equal(model.embeddings_, before)
    assert not np.array_equal(model.coefs_[0], W_before)  # the MLP above does learn
    # and a trainable table moves from the same start
    trained = _fit(_model(path, embed_trainable=True))
    assert not np.array_equal(trained.embeddings_, before)


def test_lower_cased_vocabularies_match_any_spelling_first_wins(tmp_path):
    vectors = {"Good": [1, 1, 1, 1], "good": [2, 2, 2, 2], "BAD": [3, 3, 3, 3]}
    path = _write(tmp_path / "v.txt", header=False, vectors=vectors)
    model = _model(path, lowercase=True)
    model._initialize(TEXTS, Y)
    E, vocab = model.embeddings_, model.vocabulary_
    np.testing.assert_array_equal(E[vocab.token_to_id["good"]], [1, 1, 1, 1])
    np.testing.assert_array_equal(E[vocab.token_to_id["bad"]], [3, 3, 3, 3])


def test_coverage_is_kept_by_model_files(tmp_path):
    path = _write(tmp_path / "v.vec", header=True)
    model = _fit(_model(path))
    loaded = cymlp.load(model.save(tmp_path / "m.cymlp"))
    assert loaded.pretrained_coverage_ == model.pretrained_coverage_
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), model.predict_proba(TEXTS))


@pytest.mark.parametrize("case, match", [
    ("dimension", "the vectors have 3 dimensions .*but embed_dim is 4"),
    ("header_dimension", r"the vectors have 5 dimensions \(line 1\)"),
    ("malformed", r"line 3: expected a word and 4 numbers, got 3 fields"),
    ("not_a_number", r"line 2: a value of 'good' is not a number"),
    ("nan", r"the vector of 'good' holds NaN"),
    ("no_overlap", "none of the .* words of the vocabulary has a vector"),
    ("bad_bytes", r"line 2: not valid UTF-8"),
])
def test_bad_vector_files_are_clear_errors(tmp_path, case, match):
    path = tmp_path / "v.vec"
    if case == "dimension":
        path.write_text("good 1 2 3\nbad 1 2 3\n")
    elif case == "header_dimension":
        path.write_text("2 5\ngood 1 2 3 4 5\n")
    elif case == "malformed":
        path.write_text("bad 1 2 3 4\nfilm 1 2 3 4\ngood 1 2\n")
    elif case == "not_a_number":
        path.write_text("bad 1 2 3 4\ngood 1 x 3 4\n")
    elif case == "nan":
        path.write_text("good 1 nan 3 4\n")
    elif case == "no_overlap":
        path.write_text("zebra 1 2 3 4\n")
    else:
        path.write_bytes(b"bad 1 2 3 4\ngo\xffod 1 2 3 4\n")
    with pytest.raises(DataFormatError, match=match):
        _model(path)._initialize(TEXTS, Y)


def test_missing_file_and_bad_parameter(tmp_path):
    with pytest.raises(FileNotFoundError):
        _model(tmp_path / "absent.vec")._initialize(TEXTS, Y)
    with pytest.raises(ValueError, match="pretrained_vectors must be None or the path"):
        _model(3)._initialize(TEXTS, Y)
    with pytest.raises(ValueError, match="embed_trainable must be True or False"):
        _model(None, embed_trainable="no")._initialize(TEXTS, Y)
