"""Hostile inputs: what a user gets for every bad input in ``docs/bad-inputs.md``.

Each row of the table in ``docs/bad-inputs.md`` names a test here: most rows are one
case of :func:`test_bad_input` (an action, the exception type and a message
excerpt), the others are tests of their own (warnings and repairs, results checked
in a subprocess). :func:`test_the_documented_table_matches_the_tests` keeps the
table and the tests in step.

The riskiest cases run in a child process, under an address-space limit so that a
missing memory check fails the test instead of exhausting the machine, and the
child's return code must not be negative (no signal: no segmentation fault).
"""

import ast
import functools
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

from cymlp import MLPClassifier, TextClassifier
from cymlp._compat import NotFittedError
from cymlp._inputs import DenseInputs, TokenInputs
from cymlp.datasets import DataFormatError, DataWarning, read_labeled_text

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "bad-inputs.md"


# ---------------------------------------------------------------------- helpers
def _X(n=20, d=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def _y(n=20, m=2):
    return np.arange(n) % m


def _mlp(**params):
    defaults = {"hidden_layer_sizes": (3,), "max_iter": 2, "random_state": 0}
    defaults.update(params)
    return MLPClassifier(**defaults)


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


@functools.cache
def _fitted_mlp():
    return _quiet(lambda: _mlp().fit(_X(), _y()))


TEXTS = ["a good film", "a bad film", "not good", "not bad at all"] * 3
TEXT_Y = [1, 0, 0, 1] * 3


@functools.cache
def _fitted_text(encoder="bag"):
    return _quiet(lambda: TextClassifier((3,), encoder=encoder, window=4, embed_dim=4,
                                         max_iter=2, early_stopping=False,
                                         random_state=0).fit(TEXTS, TEXT_Y))


def _huge_rows():
    """Rows of finite float32 values (near the largest float32) that overflow the logits
    of :func:`_fitted_mlp`."""
    return np.clip(_X(5) * 3e38, -3.3e38, 3.3e38)


def _with_nan(value, row=2, col=1):
    X = _X()
    X[row, col] = value
    return X


def _partial_fit_then(X2, y2, classes2=None):
    model = _mlp()
    model.partial_fit(_X(), _y(), classes=[0, 1])
    model.partial_fit(X2, y2, classes=classes2)


def _engine_call(kind):
    """Misuse of the compiled engine that its own boundary checks reject."""
    if kind == "columns":
        _fitted_mlp()._engine.forward(DenseInputs(np.zeros((2, 3), np.float32)))
    elif kind == "dtype":
        _fitted_mlp()._engine.forward(DenseInputs(np.zeros((2, 4), np.float64)))
    elif kind == "layout":
        # inputs that skipped their validation: the kernels' typed views still refuse
        X = np.asfortranarray(np.zeros((2, 4), np.float32))
        _fitted_mlp()._engine.forward(DenseInputs(X, _trusted=True))
    elif kind == "batch":
        engine = _fitted_mlp()._engine
        engine.train(DenseInputs(_X().astype(np.float32)), np.zeros(20, np.intc),
                     np.arange(20, dtype=np.intp), engine.t_max + 1, 0.1)
    elif kind == "window":
        _fitted_text("window")._engine.forward(TokenInputs(np.zeros((2, 3), np.intc)))


def _check_ids(model, ids):
    """The engine's check of token ids of a text model (as a bag of the model's
    vocabulary), made before any kernel reads them."""
    ids = np.asarray(ids)
    model._engine._check(TokenInputs(ids, np.array([0, len(ids)]),
                                     n_vocab=len(model.vocabulary_)))


def _read(tmp_path, data, **kwargs):
    path = tmp_path / "data.txt"
    path.write_bytes(data)
    return read_labeled_text(path, **kwargs)


# ---------------------------------------------------------------------- the table
#: (test id, action (takes tmp_path), exception type, message excerpt (regex))
CASES = [
    # malformed arrays
    ("ragged_list", lambda p: _mlp().fit([[1.0, 2.0], [3.0]], [0, 1]),
     ValueError, "inhomogeneous shape"),
    ("three_d", lambda p: _mlp().fit(np.zeros((4, 2, 2)), [0, 1, 0, 1]),
     ValueError, r"Expected a 2-D array for X, got 3 dimensions \(shape \(4, 2, 2\)\)"),
    ("one_d", lambda p: _mlp().fit(np.zeros(4), [0, 1, 0, 1]),
     ValueError, r"got a 1-D array of 4 values.*reshape\(-1, 1\)"),
    ("scalar", lambda p: _mlp().fit(5.0, [0]),
     ValueError, "got 0 dimensions"),
    ("object_strings", lambda p: _mlp().fit(np.array([["a", "b"], ["c", "d"]], dtype=object),
                                            [0, 1]),
     ValueError, "could not convert string to float: 'a'"),
    ("str_array", lambda p: _mlp().fit(np.array([["1", "2"], ["3", "4"]]), [0, 1]),
     ValueError, r"X holds strings \(dtype <U1\).*TextClassifier"),
    ("complex", lambda p: _mlp().fit(_X() + 1j, _y()),
     ValueError, "Complex data not supported: X has dtype complex128"),
    ("dict", lambda p: _mlp().fit({"a": 1.0}, [0]),
     TypeError, r"float\(\) argument must be"),
    ("sparse_nan", lambda p: _mlp().fit(__import__("scipy.sparse").sparse.csr_matrix(
        np.where(_X() > 1, np.nan, _X())), _y()),
     ValueError, r"Input X contains NaN or infinity"),
    ("nan", lambda p: _mlp().fit(_with_nan(np.nan), _y()),
     ValueError, r"Input X contains NaN or infinity \(NaN at row 2, column 1\)"),
    ("inf", lambda p: _mlp().fit(_with_nan(-np.inf), _y()),
     ValueError, r"\(infinity at row 2, column 1\)"),
    ("partial_fit_nan", lambda p: _mlp(shuffle=False, batch_size=4).partial_fit(
        _with_nan(np.nan, row=17).astype(np.float32), _y()),
     ValueError, r"Input X contains NaN or infinity \(NaN at row 17, column 1\)"),
    ("none_in_object_array", lambda p: _mlp().fit(np.array([[None, 1], [2, 3]], dtype=object),
                                                  [0, 1]),
     ValueError, r"NaN at row 0, column 0"),
    ("overflow_float32", lambda p: _mlp().fit(_with_nan(1e300), _y()),
     ValueError, r"too large for float32 \(e.g. row 2, column 1\).*dtype='float64'"),
    ("x_pd_na", lambda p: _mlp().fit(pd.DataFrame({"a": pd.array([1, None] * 10, "Int64"),
                                                   "b": _X()[:, 0]}), _y()),
     ValueError, (r"Input X contains missing values \(<NA> at row 1, column 0\); remove or "
                  "impute")),
    ("x_datetime_column", lambda p: _mlp().fit(pd.DataFrame({
        "b": _X()[:, 0], "when": pd.date_range("2020-01-01", periods=20)}), _y()),
     ValueError, (r"X holds dates or times \(Timestamp at row 0, column 1\); MLPClassifier "
                  "needs numbers")),
    ("x_datetime_array", lambda p: _mlp().fit(np.zeros((20, 2), "datetime64[D]"), _y()),
     ValueError, r"X holds dates or times \(dtype datetime64\[D\]\)"),
    ("x_int_beyond_float64", lambda p: _mlp().fit(
        np.array([[10**400, 1]] + [[1, 2]] * 19, dtype=object), _y()),
     ValueError, (r"X holds a value too large for float64 \(row 0, column 0: an integer of "
                  r"about 401 digits\); rescale the data")),
    ("x_longdouble_beyond_float64", lambda p: _mlp(dtype="float64").fit(
        np.full((20, 2), np.longdouble("1e4000")), _y()),
     ValueError, (r"X holds values too large for float64 \(e.g. row 0, column 0\); rescale "
                  "the data$")),
    ("zero_rows", lambda p: _mlp().fit(np.empty((0, 4)), []),
     ValueError, r"0 sample\(s\) \(shape=\(0, 4\)\)"),
    ("zero_columns", lambda p: _mlp().fit(np.empty((20, 0)), _y()),
     ValueError, r"0 feature\(s\) \(shape=\(20, 0\)\)"),
    ("predict_wrong_width", lambda p: _fitted_mlp().predict(_X(5, 3)),
     ValueError, "X has 3 features, but MLPClassifier is expecting 4 features"),
    ("predict_before_fit", lambda p: _mlp().predict(_X()),
     NotFittedError, "not fitted yet"),
    ("logits_overflow_predict", lambda p: _fitted_mlp().predict(_huge_rows()),
     FloatingPointError, r"the logits overflowed to infinity or NaN for some rows: .*rescale X"),
    ("logits_overflow_predict_proba", lambda p: _fitted_mlp().predict_proba(_huge_rows()),
     FloatingPointError, r"the logits overflowed to infinity or NaN for some rows: .*rescale X"),
    # labels
    ("y_length", lambda p: _mlp().fit(_X(), _y(19)),
     ValueError, "inconsistent numbers of samples: 20 rows in X but 19 labels"),
    ("y_non_integer_floats", lambda p: _mlp().fit(_X(), _y() + 0.5),
     ValueError, "Unknown label type: continuous"),
    ("y_nan", lambda p: _mlp().fit(_X(), np.r_[np.nan, _y(19)]),
     ValueError, "y contains NaN or infinity"),
    ("y_none", lambda p: _mlp().fit(_X(), [None] + [0, 1] * 9 + [1]),
     ValueError, r"missing labels \(None or NaN\)"),
    ("y_one_class", lambda p: _mlp().fit(_X(), np.zeros(20)),
     ValueError, "only one class"),
    ("y_two_d", lambda p: _mlp().fit(_X(), np.c_[_y(), _y() + 2]),
     ValueError, r"y must be 1-D.*multi-output"),
    ("unseen_label_partial_fit", lambda p: _partial_fit_then(_X(), _y(20, 3)),
     ValueError, r"not among the classes \[0, 1\]: 2.*classes=\.\.\."),
    ("changed_classes_partial_fit", lambda p: _partial_fit_then(_X(), _y(), [0, 1, 2]),
     ValueError, "classes must be the same in every partial_fit call"),
    ("validation_data_one_tuple", lambda p: _mlp().fit(_X(), _y(), validation_data=(_X(),)),
     ValueError, r"validation_data must be a pair \(X_dev, y_dev\) or a triple .*, got a tuple "
                 r"of 1 item"),
    ("validation_data_bare_array", lambda p: _mlp().fit(_X(), _y(), validation_data=_X()),
     ValueError, (r"validation_data must be a pair \(X_dev, y_dev\) or a triple .*, got "
                  r"ndarray of shape \(20, 4\)")),
    ("validation_data_unseen_label", lambda p: _mlp().fit(_X(), _y(),
                                                          validation_data=(_X(), _y() * 5)),
     ValueError, (r"^validation_data: y holds labels not among the classes \[0, 1\]: 5; a "
                  "development set can only hold classes of the training data$")),
    ("validation_data_wrong_width", lambda p: _mlp().fit(_X(), _y(),
                                                         validation_data=(_X(5, 3), _y(5))),
     ValueError, "^validation_data: X has 3 features, but MLPClassifier is expecting 4"),
    ("score_zero_weights_text", lambda p: _fitted_text().score(TEXTS, TEXT_Y,
                                                               sample_weight=[0] * 12),
     ValueError, "sample_weight sums to 0: the weighted accuracy is undefined"),
    ("score_zero_weights", lambda p: _fitted_mlp().score(_X(), _y(), sample_weight=[0] * 20),
     ValueError, "sample_weight sums to 0: the weighted accuracy is undefined"),
    ("y_pd_na", lambda p: _mlp().fit(_X(), pd.array(["a", "b"] * 9 + [pd.NA, "a"],
                                                     dtype="string")),
     ValueError, r"missing labels \(None or NaN\): y\[18\] is <NA>"),
    ("y_nat", lambda p: _mlp().fit(_X(), np.array(["2020-01-01", "2021-01-01"] * 9
                                                  + ["NaT", "2020-01-01"], "datetime64[D]")),
     ValueError, r"missing labels \(None or NaN\): y\[18\] is NaT"),
    ("y_nat_pandas", lambda p: _mlp().fit(_X(), pd.Series(pd.to_datetime(
        ["2020-01-01", None] + ["2021-01-01"] * 18))),
     ValueError, r"missing labels \(None or NaN\): y\[1\] is NaT"),
    ("y_complex", lambda p: _mlp().fit(_X(), _y() + 1j),
     ValueError, r"complex labels are not supported \(y has dtype complex128\)"),
    ("y_complex_in_a_list", lambda p: _mlp().fit(_X(), [1j, 0] * 10),
     ValueError, r"complex labels are not supported"),
    ("y_complex_object", lambda p: _mlp().fit(_X(), np.array([1j, "a"] * 10, dtype=object)),
     ValueError, r"complex labels are not supported \(y\[0\] is 1j\)"),
    # text
    ("text_empty_list", lambda p: TextClassifier().fit([], []),
     ValueError, "X is empty: TextClassifier needs at least one text"),
    ("text_single_string", lambda p: TextClassifier().fit("a good film", [1]),
     ValueError, "got a single string; wrap it in a list"),
    ("text_bytes", lambda p: TextClassifier().fit([b"a b", "c"], [0, 1]),
     ValueError, r"X\[0\] is bytes; decode it to str first"),
    ("text_numeric_array", lambda p: TextClassifier().fit(np.zeros((2, 3)), [0, 1]),
     ValueError, "numeric array of shape \\(2, 3\\); use MLPClassifier"),
    ("text_non_str_tokens", lambda p: TextClassifier().fit([[1, 2], ["a"]], [0, 1]),
     ValueError, r"X\[0\] is list; expected a str or a list of str tokens"),
    ("text_none_item", lambda p: TextClassifier().fit(["a", None], [0, 1]),
     ValueError, r"X\[1\] is NoneType"),
    ("text_dataframe_two_columns", lambda p: TextClassifier().fit(
        pd.DataFrame({"text": TEXTS, "x": TEXT_Y}), TEXT_Y),
     ValueError, (r"X is a DataFrame of 2 columns \['text', 'x'\]; TextClassifier needs one "
                  r"text per row: pass the column of texts, e.g. X\['text'\]")),
    ("text_no_tokens", lambda p: TextClassifier().fit(["", "  "], [0, 1]),
     ValueError, r"empty corpus \(no tokens\)"),
    ("token_id_too_large", lambda p: _check_ids(_fitted_text(),
        np.array([2, len(_fitted_text().vocabulary_)])),
     ValueError, r"token ids must lie in \[0, \d+\); got ids from 2 to \d+"),
    ("token_id_negative", lambda p: _check_ids(_fitted_text(), np.array([-1, 2])),
     ValueError, r"token ids must lie in \[0, \d+\); got ids from -1 to 2"),
    # the compiled engine's own checks
    ("engine_columns", lambda p: _engine_call("columns"),
     ValueError, r"Engine: X has the wrong number of columns.*shape \(n, 4\)"),
    ("engine_dtype", lambda p: _engine_call("dtype"),
     ValueError, "Buffer dtype mismatch, expected 'const float' but got 'double'"),
    ("engine_layout", lambda p: _engine_call("layout"),
     ValueError, "ndarray is not C-contiguous"),
    ("engine_batch_size", lambda p: _engine_call("batch"),
     ValueError, r"batch_size outside \[1, t_max\]"),
    ("engine_window_width", lambda p: _engine_call("window"),
     ValueError, r"ids have the wrong number of columns.*shape \(n, 4\)"),
    # hyper-parameters
    ("learning_rate_1e9", lambda p: _mlp(solver="sgd", learning_rate_init=1e9, max_iter=5)
     .fit(_X() * 1e6, _y()),
     FloatingPointError, r"training diverged at epoch \d+: .*lower learning_rate_init"),
    ("learning_rate_inf", lambda p: _mlp(learning_rate_init=float("inf")).fit(_X(), _y()),
     ValueError, "learning_rate_init must be finite, got inf"),
    ("batch_size_0", lambda p: _mlp(batch_size=0).fit(_X(), _y()),
     ValueError, r"batch_size must be in \[1, inf\], got 0"),
    ("max_iter_0", lambda p: _mlp(max_iter=0).fit(_X(), _y()),
     ValueError, r"max_iter must be in \[1, inf\], got 0"),
    ("max_iter_beyond_int64", lambda p: _mlp(max_iter=10**20).fit(_X(), _y()),
     ValueError, "max_iter must fit in a 64-bit integer, got 100000000000000000000"),
    ("alpha_int_beyond_float", lambda p: _mlp(alpha=10**400).fit(_X(), _y()),
     ValueError, ("alpha must be finite, got an integer of about 401 digits, too large for a "
                  "float")),
    ("hidden_beyond_int64", lambda p: _mlp(hidden_layer_sizes=(2**64,)).fit(_X(), _y()),
     ValueError, ("hidden_layer_sizes must hold positive integers that fit in 64 bits, got "
                  "18446744073709551616")),
    ("alpha_negative", lambda p: _mlp(alpha=-1.0).fit(_X(), _y()),
     ValueError, r"alpha must be in \[0, inf\], got -1.0"),
    ("momentum_1_5", lambda p: _mlp(momentum=1.5).fit(_X(), _y()),
     ValueError, r"momentum must be in \[0, 1\], got 1.5"),
    ("label_smoothing_1", lambda p: _mlp(label_smoothing=1.0).fit(_X(), _y()),
     ValueError, r"label_smoothing must be in \[0, 1\), got 1.0"),
    ("dtype_float16", lambda p: _mlp(dtype="float16").fit(_X(), _y()),
     ValueError, "dtype must be 'float32' or 'float64', got 'float16'"),
    ("activation_softmax", lambda p: _mlp(activation="softmax").fit(_X(), _y()),
     ValueError, "unknown activation 'softmax'; expected one of"),
    ("activation_step_training", lambda p: _mlp(activation="step").fit(_X(), _y()),
     ValueError, "activation='step' has no derivative"),
    ("bias_input", lambda p: _mlp(bias="input").fit(_X(), _y()),
     ValueError, r"bias must be one of \['both', 'hidden', 'output', 'none'\], got 'input'"),
    ("hidden_zero", lambda p: _mlp(hidden_layer_sizes=(5, 0)).fit(_X(), _y()),
     ValueError, "hidden_layer_sizes must hold positive integers"),
    ("hidden_generator", lambda p: _mlp(hidden_layer_sizes=(h for h in (3,))).fit(_X(), _y()),
     ValueError, ("hidden_layer_sizes must hold positive integers: an int, or a list or tuple "
                  "of ints, got generator")),
    ("epsilon_below_float32_adam", lambda p: _mlp(epsilon=1e-300).fit(_X(), _y()),
     ValueError, (r"epsilon=1e-300 is below the smallest normal float32 number \(1.18e-38\)"
                  r".*0/0 = NaN.*use epsilon >= 1.18e-38 or dtype='float64'")),
    ("epsilon_below_float32_adagrad", lambda p: _mlp(solver="adagrad", epsilon=1e-46)
     .fit(_X(), _y()), ValueError, r"epsilon=1e-46 is below the smallest normal float32"),
    ("epsilon_below_float64", lambda p: _mlp(epsilon=1e-320, dtype="float64").fit(_X(), _y()),
     ValueError, (r"epsilon=1e-320 is below the smallest normal float64 number "
                  r"\(2.23e-308\).*use epsilon >= 2.23e-308$")),
    ("embed_dim_0", lambda p: TextClassifier(embed_dim=0).fit(TEXTS, TEXT_Y),
     ValueError, r"embed_dim must be in \[1, inf\], got 0"),
    ("char_ngrams_window", lambda p: TextClassifier(encoder="window", char_ngram_range=(3, 5))
     .fit(TEXTS, TEXT_Y), ValueError, "char_ngram_range applies to the bag encoder only"),
    ("char_ngrams_reversed", lambda p: TextClassifier(char_ngram_range=(5, 3))
     .fit(TEXTS, TEXT_Y), ValueError, r"char_ngram_range must have min_n <= max_n, got \(5, 3\)"),
    # data files
    ("data_empty_line", lambda p: _read(p, b"1 good\n\n0 bad\n"),
     DataFormatError, r"data.txt, line 2: empty line; expected 'LABEL TEXT'"),
    ("data_whitespace_line", lambda p: _read(p, b"1 good\n  \t \n"),
     DataFormatError, "line 2: line holds only whitespace"),
    ("data_tsv_missing_field", lambda p: _read(p, b"label\ttext\n1\tgood\nbad\n", fmt="tsv"),
     DataFormatError, r"line 3: 1 field\(s\), expected 2"),
    ("data_tsv_no_label_column", lambda p: _read(p, b"y\ttext\n1\tgood\n", fmt="tsv"),
     DataFormatError, "line 1: header has no column 'label'"),
    ("data_empty_file", lambda p: _read(p, b""),
     DataFormatError, "is empty: expected at least one example"),
    ("data_directory", lambda p: read_labeled_text(p),
     IsADirectoryError, "Is a directory"),
    ("data_missing_file", lambda p: read_labeled_text(p / "absent.txt"),
     FileNotFoundError, "data file not found: .*absent.txt"),
    ("data_unknown_format", lambda p: _read(p, b"1 a\n", fmt="json"),
     ValueError, "fmt must be one of"),
]

CASE_IDS = [case[0] for case in CASES]


@pytest.mark.parametrize("action, error, match", [c[1:] for c in CASES], ids=CASE_IDS)
def test_bad_input(tmp_path, action, error, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a warning on the way is not the result
        with pytest.raises(error, match=match):
            action(tmp_path)


# ---------------------------------------------------------------------- accepted with a warning
def test_batch_size_larger_than_the_data_warns_and_clips():
    model = _mlp(batch_size=1000, max_iter=1)
    with pytest.warns(UserWarning, match="batch_size=1000 is larger than the 20 training "
                                         "samples; using batches of 20"):
        _quiet_convergence(lambda: model.fit(_X(), _y()))
    assert model._engine.t_max == 20


def _quiet_convergence(fn):
    from cymlp._compat import ConvergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn()


def test_string_labels_are_fine():
    y = np.array(["spam", "ham"])[_y()]
    model = _quiet(lambda: _mlp().fit(_X(), y))
    assert list(model.classes_) == ["ham", "spam"]
    assert set(model.predict(_X())) <= {"ham", "spam"}


def test_mixed_labels_keep_their_types(tmp_path):
    """[1, 'a'] is not turned into ['1', 'a'] (what np.asarray does): the classes are
    the int 1 and the str 'a', predictions are those objects, and a model file keeps
    them."""
    import cymlp
    y = [1, "a", 2.5] * 6 + [1, "a"]
    model = _quiet(lambda: _mlp().fit(_X(), y))
    assert model.classes_.tolist() == [1, "a", 2.5]
    assert [type(c) for c in model.classes_] == [int, str, float]
    assert set(model.predict(_X())) <= {1, "a", 2.5}
    loaded = cymlp.load(model.save(tmp_path / "m.cymlp"))
    assert [type(c) for c in loaded.classes_] == [int, str, float]
    assert loaded.predict(_X()).tolist() == model.predict(_X()).tolist()


@pytest.mark.parametrize("labels, dtype", [
    (np.array([1, 200], np.uint8), "uint8"),
    (np.array([-5, 7], np.int16), "int16"),
    (np.array([2**63, 2**64 - 1], np.uint64), "uint64"),
    ([2**63, 5], "uint64"),                 # NumPy would make these float64
    ([2**64 - 1, 1], "uint64"),             # ... and 2**64 - 1 the float 2**64
    ([-(2**63), 2**63 - 1], "int64"),
    ([2**70, -(2**70), 3], "object"),       # beyond 64 bits: Python ints
    (np.array([True, False]), "bool"),
    (np.array([0.5, 1.0]) * 2, "float64"),
])
def test_labels_keep_their_exact_value_and_dtype_through_a_model_file(tmp_path, labels,
                                                                      dtype):
    import cymlp
    n = len(labels)
    y = [labels[i % n] for i in range(20)]
    y = np.array(y, dtype=labels.dtype) if isinstance(labels, np.ndarray) else y
    model = _quiet(lambda: _mlp().fit(_X(), y))
    expected = sorted(int(v) if dtype != "float64" and dtype != "bool" else v
                      for v in (labels.tolist() if isinstance(labels, np.ndarray) else labels))
    assert model.classes_.tolist() == expected
    assert model.classes_.dtype == np.dtype(dtype)
    loaded = cymlp.load(model.save(tmp_path / "m.cymlp"))
    assert loaded.classes_.dtype == np.dtype(dtype)
    assert loaded.classes_.tolist() == expected
    assert loaded.predict(_X()).tolist() == model.predict(_X()).tolist()


def test_invscaling_rate_underflows_to_zero_instead_of_overflowing():
    """learning_rate_init / (t + 1) ** power_t with power_t=1000: (t + 1) ** 1000 is
    beyond the float range after the first epoch, and the rate is then 0, not an
    OverflowError."""
    model = _quiet(lambda: _mlp(solver="sgd", learning_rate="invscaling", power_t=1000,
                                max_iter=3).fit(_X(), _y()))
    assert [h["lr"] for h in model.history_] == [0.001, 0.0, 0.0]
    assert model.n_iter_ == 3


def test_integer_and_boolean_inputs_are_converted():
    X = (_X() > 0)
    model = _quiet(lambda: _mlp().fit(X, _y()))
    assert model.coefs_[0].dtype == np.float32
    np.testing.assert_array_equal(model.predict(X), model.predict(X.astype(np.float32)))
    Xi = np.round(_X() * 10).astype(np.int64)
    assert _quiet(lambda: _mlp().fit(Xi, _y())).predict(Xi).shape == (20,)


def test_a_one_column_dataframe_of_texts_is_its_column():
    """A DataFrame with one column of texts gives TextClassifier that column (it used to
    be read as one text, its column name: "1 rows in X but 12 labels")."""
    frame = pd.DataFrame({"review": TEXTS})
    model = _quiet(lambda: TextClassifier((3,), embed_dim=4, max_iter=2,
                                          early_stopping=False, random_state=0)
                   .fit(frame, TEXT_Y))
    same = _quiet(lambda: TextClassifier((3,), embed_dim=4, max_iter=2,
                                         early_stopping=False, random_state=0)
                  .fit(TEXTS, TEXT_Y))
    np.testing.assert_array_equal(model.predict_proba(frame), same.predict_proba(TEXTS))


def test_unknown_words_and_empty_texts_at_predict_are_fine():
    model = _fitted_text()
    proba = model.predict_proba(["zzz qqq", "", "good zzz"])
    assert proba.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_latin1_bytes_are_repaired_with_a_warning(tmp_path):
    data = "1 café crème\n0 naïve\n1 plain\n".encode("latin-1")
    with pytest.warns(DataWarning, match=r"2 line\(s\) were not valid utf-8 and were "
                                         r"decoded as cp1252 \(lines 1, 2\)"):
        got = _read(tmp_path, data)
    assert got.texts == ["café crème", "naïve", "plain"]
    assert got.labels == ["1", "0", "1"]
    assert got.n_repaired == 2 and got.repaired_lines == [1, 2]


def test_binary_garbage_is_read_line_by_line_with_a_warning(tmp_path):
    """Binary data without an empty line reads as (garbage) examples, one per line,
    with one DataWarning; it never crashes and never mixes lines up."""
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    lines = [line for line in raw.split(b"\n") if line.strip()]
    data = b"\n".join(b"x" + line for line in lines) + b"\n"  # no empty line
    with pytest.warns(DataWarning, match="were not valid utf-8"):
        got = _read(tmp_path, data)
    assert len(got) == len(lines)
    assert got.n_repaired > 0
    with pytest.raises(DataFormatError, match="empty line"):
        _read(tmp_path, data + b"\n1 ok\n")


def _zero_column_data():
    """Data with a constant-zero column: with alpha=0 its weights get a gradient of
    exactly 0 in every batch, the case where Adam's and Adagrad's epsilon is all that
    keeps the update from being 0/0."""
    X = _X()
    X[:, 3] = 0
    return X, _y()


def test_an_epsilon_that_float32_cannot_hold_is_refused_only_where_it_is_used():
    X, y = _zero_column_data()
    # the same epsilon is a normal float64 number, and plain SGD does not use it
    for params in ({"dtype": "float64"}, {"solver": "sgd"}):
        model = _quiet(lambda params=params: _mlp(epsilon=1e-300, alpha=0.0, max_iter=5,
                                                  **params).fit(X, y))
        assert all(np.isfinite(c).all() for c in model.coefs_)
    with pytest.raises(ValueError, match="epsilon=1e-300 is below"):
        _mlp(epsilon=1e-300, alpha=0.0).fit(X, y)


def test_nan_parameters_behind_a_finite_loss_stop_the_fit(monkeypatch):
    """A NaN weight can hide behind a finite loss (a ReLU maps NaN to 0, so the loss
    sits at log 2 and every prediction is one class). The per-epoch check of the
    parameters finds it: FloatingPointError naming the array, and the estimator keeps
    the state it had before the fit. (The epsilon check, which refuses the cause met
    here, is switched off so that the NaN really arises.)"""
    import cymlp._estimator
    monkeypatch.setattr(cymlp._estimator, "check_epsilon", lambda *args: None)
    X, y = _zero_column_data()
    fresh = _mlp(epsilon=1e-300, alpha=0.0, max_iter=5)
    with pytest.raises(FloatingPointError,
                       match=r"training diverged at epoch 1: coefs_\[0\] became NaN or "
                             r"infinite although the loss stayed finite .*epsilon 1e-300"):
        _quiet(lambda: fresh.fit(X, y))
    assert not hasattr(fresh, "coefs_") or fresh._fitted is None
    fitted = _quiet(lambda: _mlp(alpha=0.0, max_iter=3).fit(X, y))
    before = [c.copy() for c in fitted.coefs_]
    fitted.set_params(epsilon=1e-300)
    with pytest.raises(FloatingPointError, match="coefs_"):
        _quiet(lambda: fitted.partial_fit(X, y))
    for b, c in zip(before, fitted.coefs_):
        np.testing.assert_array_equal(b, c)


@pytest.mark.parametrize("solver", ["sgd", "adagrad", "adam"])
def test_a_nan_embedding_row_behind_a_finite_loss_stops_the_epoch(solver):
    """The embedding table is not scanned after each epoch (it can be far larger than
    the rest): the engine checks each row it writes. A NaN in the optimiser state of
    a row the data uses turns that row into NaN at the update of the epoch's one
    batch, after the forward pass, so the loss and the weights stay finite and only
    that check finds it: FloatingPointError naming embeddings_, and the state from
    before the call."""
    texts, y = ["good film", "bad film", "good plot", "bad plot"] * 4, [1, 0, 1, 0] * 4
    model = TextClassifier((4,), max_iter=2, early_stopping=False, solver=solver,
                           batch_size=len(texts), random_state=0)
    _quiet(lambda: model.fit(texts, y))
    j = model.vocabulary_.token_to_id["film"]
    model._fitted.engine.E_state1[j, 0] = np.nan
    before = model.embeddings_.copy()
    with pytest.raises(FloatingPointError,
                       match=r"epoch 3: embeddings_ became NaN or infinite although the "
                             r"loss stayed finite"):
        model.partial_fit(texts, y)
    np.testing.assert_array_equal(model.embeddings_, before)


# ---------------------------------------------------------------------- in a subprocess
def _run_child(code, *, address_space_gb=2.0, timeout=240):
    """Run ``code`` in a fresh interpreter with a bounded address space."""
    limit = int(address_space_gb * 2**30)
    prelude = textwrap.dedent(f"""
        import resource, warnings
        resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
        warnings.simplefilter("ignore")
        import numpy as np
        def peak_rss_mb():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) / 1024
    """)
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("an address-space limit cannot be combined with AddressSanitizer")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}\n{proc.stderr}"
    return proc


def test_huge_hidden_layer_is_a_memory_error_before_allocating():
    proc = _run_child("""
        from cymlp import MLPClassifier
        X = np.random.default_rng(0).standard_normal((4, 1000))
        try:
            MLPClassifier((10**7,)).fit(X, [0, 1, 0, 1])
        except MemoryError as exc:
            print("MemoryError:", exc)
        print("peak_mb", peak_rss_mb())
    """)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"MemoryError: a network with layer sizes \[10000000, 2\] on 1000 "
                     r"features needs about \d+\.\d GiB .* reduce hidden_layer_sizes",
                     proc.stdout), proc.stdout
    peak = float(proc.stdout.split("peak_mb")[1])
    assert peak < 1024, f"{peak} MB resident: the check came after allocating"


def test_memory_check_counts_the_embedding_table():
    """A text model whose embedding table (not its MLP) does not fit in memory gets
    the library's MemoryError before the table is allocated and drawn.

    The child pretends 256 MiB are available; the table needs 2000 x 60000 float32
    (0.45 GiB, plus as much again for Adagrad's state) while the MLP on top of it needs
    a few MB. The address-space limit keeps a run without the check from touching
    gigabytes: it then fails inside NumPy with a message of its own.
    """
    proc = _run_child("""
        import cymlp._estimator
        from cymlp import TextClassifier
        cymlp._estimator._available_memory = lambda: 256 * 2**20
        texts = [f"w{i} w{i + 1}" for i in range(2000)]
        try:
            TextClassifier((4,), embed_dim=60000, ngram_range=(1, 1), max_iter=1,
                           early_stopping=False).fit(texts, [0, 1] * 1000)
        except MemoryError as exc:
            print("MemoryError:", exc)
    """, address_space_gb=1.5)
    assert proc.returncode == 0, proc.stderr
    assert "MemoryError:" in proc.stdout, proc.stdout
    assert "GiB available" in proc.stdout, (
        "the MemoryError does not come from the library's memory check: " + proc.stdout)


def test_predict_proba_never_returns_nan_silently():
    """Finite float32 input large enough to overflow the logits: predict_proba must
    raise, as training does (FloatingPointError), or return finite probabilities;
    NaN rows and the arbitrary labels predict derives from them are not an answer."""
    model = _fitted_mlp()
    X = np.clip(_X(5) * 3e38, -3.3e38, 3.3e38)  # every value is a finite float32
    try:
        proba = model.predict_proba(X)
    except (FloatingPointError, ValueError) as exc:
        assert re.search("overflow|NaN|infinit|too large", str(exc))
    else:
        assert np.isfinite(proba).all(), f"NaN probabilities without an error:\n{proba}"


_ENGINE_SETUP = """
    from cymlp import MLPClassifier, TextClassifier
    from cymlp._inputs import DenseInputs, TokenInputs
    X = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)
    y = np.arange(20) % 2
    mlp = MLPClassifier((3,), max_iter=1).fit(X, y)
    text = TextClassifier((3,), max_iter=1, early_stopping=False).fit(
        ["a b c", "d e", "f"] * 4, [0, 1, 0] * 4)
    order = np.arange(20, dtype=np.intp)
"""

ENGINE_MISUSE = {
    # y shorter than the rows the order refers to
    "labels_shorter_than_rows": (
        "mlp._engine.train(DenseInputs(X), np.zeros(2, np.intc), order, 1, 0.1)",
        "2 labels for 20 examples"),
    # rows not yet checked for NaN: training checks each batch, inference all of X
    "unchecked_rows_with_nan_train": (
        ("mlp._engine.train(DenseInputs(np.where(X > 1, np.nan, X), finite=False), "
         "np.zeros(20, np.intc), order, 4, 0.1)"),
        r"Input X contains NaN or infinity \(NaN at row \d+"),
    "unchecked_rows_with_nan_forward": (
        "mlp._engine.forward(DenseInputs(np.where(X > 1, np.inf, X), finite=False))",
        r"Input X contains NaN or infinity \(infinity at row \d+"),
    # a bag (CSR) without its ids
    "bag_without_ids": (
        "text._engine.forward(TokenInputs(None, indptr=np.array([0, 2], np.intp)))",
        "needs token ids"),
    # indptr pointing past the end of the ids
    "bag_indptr_past_ids": (
        ("text._engine.forward(TokenInputs(np.array([2, 3], np.intc), "
         "indptr=np.array([0, 500000], np.intp)))"),
        r"indptr must rise from 0 to len\(ids\)"),
    # token ids outside the embedding table
    "token_ids_out_of_range": (
        ("text._engine.forward(TokenInputs(np.array([10**6, 3], np.intc), "
         "indptr=np.array([0, 2], np.intp)))"),
        r"token ids must lie in \[0, \d+\)"),
}


@pytest.fixture(scope="module")
def engine_misuse_outcomes():
    """Run every ENGINE_MISUSE call in its own forked process of one child.

    Returns {case: "raised: <type> <message>", "returned" or "signal N"}.
    """
    calls = "".join(f"    {name!r}: lambda: {call},\n"
                    for name, (call, _) in ENGINE_MISUSE.items())
    proc = _run_child(textwrap.dedent(_ENGINE_SETUP) + "calls = {\n" + calls + "}\n"
                      + textwrap.dedent("""
        import os
        for name, call in calls.items():
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                try:
                    call()
                    msg = "returned"
                except (ValueError, TypeError, IndexError) as exc:
                    msg = f"raised: {type(exc).__name__} {exc}"
                os.write(write_end, msg.encode())
                os._exit(0)
            os.close(write_end)
            _, status = os.waitpid(pid, 0)
            msg = os.read(read_end, 4096).decode()
            os.close(read_end)
            if os.WIFSIGNALED(status):
                msg = f"signal {os.WTERMSIG(status)}"
            print(f"{name}|{msg}")
    """))
    assert proc.returncode == 0, proc.stderr
    return dict(line.split("|", 1) for line in proc.stdout.splitlines() if "|" in line)


@pytest.mark.parametrize("case", list(ENGINE_MISUSE))
def test_engine_misuse_raises_instead_of_crashing(engine_misuse_outcomes, case):
    """Calls that the estimators never make, made directly on the compiled engine:
    a Python exception, not a segmentation fault or a silent out-of-bounds read."""
    call, match = ENGINE_MISUSE[case]
    outcome = engine_misuse_outcomes[case]
    assert outcome.startswith("raised:"), f"{call}: {outcome}"
    assert re.search(match, outcome), f"{call}: {outcome}"


def test_a_huge_ngram_range_costs_no_more_than_the_texts_hold():
    """ngram_range=(1, 2**62), in fit and in a model file: n-grams longer than a text
    are not looked for, so fitting, saving, loading and predicting finish (each
    length up to the upper end used to be tried: a hang)."""
    proc = _run_child("""
        import os, tempfile, cymlp
        from cymlp import TextClassifier
        texts = ["a good film", "a bad film", "not good", "not bad at all"] * 3
        model = TextClassifier((3,), ngram_range=(1, 2**62), max_iter=2,
                               early_stopping=False, random_state=0).fit(texts, [1, 0, 0, 1] * 3)
        path = model.save(os.path.join(tempfile.mkdtemp(), "m.cymlp"))
        print(cymlp.load(path).predict(["not good at all", "a film"]).tolist())
    """, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(ast.literal_eval(proc.stdout)) == 2


def test_public_api_cases_do_not_crash_in_a_child_process():
    """The riskiest public calls of the table, together in a child process: each
    raises a Python exception and the process exits normally."""
    proc = _run_child("""
        from cymlp import MLPClassifier, TextClassifier
        X = np.random.default_rng(0).standard_normal((20, 4))
        y = np.arange(20) % 2
        calls = [
            lambda: MLPClassifier((3,), solver="sgd", learning_rate_init=1e9,
                                  max_iter=5).fit(X * 1e6, y),
            lambda: MLPClassifier((3,), alpha=1e300, max_iter=3).fit(X, y),
            lambda: MLPClassifier((3,), max_iter=3).fit(np.clip(X * 3e38, -3.3e38, 3.3e38), y),
            lambda: MLPClassifier((2**31,)).fit(X, y),
            lambda: TextClassifier(encoder="window", window=10**9).fit(["a b"] * 4, y[:4]),
            lambda: TextClassifier(embed_dim=2**31).fit(["a b"] * 4, y[:4]),
        ]
        for i, call in enumerate(calls):
            try:
                call()
                print(i, "returned")
            except Exception as exc:
                print(i, "raised", type(exc).__name__)
        print("done")
    """)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "done"
    outcomes = dict(line.split(" ", 1) for line in lines[:-1])
    assert outcomes["0"] == "raised FloatingPointError"
    assert outcomes["1"] == "raised FloatingPointError"
    assert outcomes["3"] == "raised MemoryError"
    assert outcomes["4"] == "raised MemoryError"
    assert outcomes["5"] == "raised MemoryError"


# ---------------------------------------------------------------------- the document
def _documented_tests():
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines()
            if line.startswith("|") and not set(line) <= set("|- ")
            and not line.startswith("| input |")]  # the header of each table
    names = []
    for line in rows:
        found = re.findall(r"`(test_[a-z0-9_]+(?:\[[a-z0-9_]+\])?)`", line)
        assert found, f"table row without a test name: {line}"
        names.extend(found)
    return names, len(rows)


def test_the_documented_table_matches_the_tests():
    names, n_rows = _documented_tests()
    assert n_rows >= 30
    module = sys.modules[__name__]
    for name in names:
        base, _, param = name.partition("[")
        assert hasattr(module, base) or _in_other_module(base), f"{name}: no such test"
        if base == "test_bad_input":
            assert param.rstrip("]") in CASE_IDS, f"{name}: no such case"
    documented = {n.partition("[")[2].rstrip("]") for n in names
                  if n.startswith("test_bad_input[")}
    assert documented == set(CASE_IDS), (
        f"cases missing from the table: {sorted(set(CASE_IDS) - documented)}")


#: other test modules whose tests the table may name
OTHER_MODULES = ("test_model_files.py", "test_io.py", "test_fuzz_files.py",
                 "test_data_files.py", "test_cli.py", "test_workflow.py")


def _in_other_module(name):
    """Tests of OTHER_MODULES may be named in the table too."""
    here = pathlib.Path(__file__).parent
    return any(f"def {name}(" in (here / module).read_text(encoding="utf-8")
               for module in OTHER_MODULES if (here / module).exists())
