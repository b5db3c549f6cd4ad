"""Tests of the user's data files in cymlp.datasets: every format, format guessing,
the label rule, stratified splits, load_files, the registry, and property tests
of the readers."""

import gzip
import hashlib
import json
import os
import pathlib
import sys
import warnings

import numpy as np
import pytest
from _shared import import_cymlp_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

datasets = import_cymlp_module("datasets")
_labels_array = import_cymlp_module("_datafiles")._labels_array
DataFormatError = datasets.DataFormatError

# The real data sit next to the repository (../shared/data), or where
# CYMLP_DATA_DIR points.
DATA_DIR = pathlib.Path(
    os.environ.get("CYMLP_DATA_DIR")
    or pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
)


def _need(*names):
    missing = [n for n in names if not (DATA_DIR / n).is_file()]
    if missing:
        pytest.skip(f"data files not available: {missing}")


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def _read(path, **kwargs):
    """read_file with repair warnings silenced (tests that check them use pytest.warns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", datasets.DataWarning)
        return datasets.read_file(path, **kwargs)


# ---------------------------------------------------------------------------
# LABEL TEXT
# ---------------------------------------------------------------------------


def test_label_text_result_records_everything(tmp_path):
    data = b"1 a good film .\r\n0 a bad one\n2\n"
    path = _write(tmp_path, "reviews.txt", data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to repair: no warning
        got = datasets.read_file(path)
    assert got.X == ["a good film .", "a bad one", ""]
    assert got.y.tolist() == [1, 0, 2] and got.y.dtype == np.int64
    assert got.kind == "text" and got.format == "label_text"
    assert got.format_reason == "content: LABEL TEXT lines"
    assert got.n_rows == len(got) == 3
    assert got.path == path and got.path.is_absolute()
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert got.repaired_lines == [] and got.n_repaired == 0


def test_label_text_cp1252_lines_are_repaired_and_named(tmp_path):
    path = _write(tmp_path, "r.txt", b"1 caf\xe9\n0 plain\n1 \x93quoted\x94\n")
    with pytest.warns(datasets.DataWarning, match=r"r\.txt: 2 line\(s\).*lines 1, 3\)"):
        got = datasets.read_file(path)
    assert got.X == ["café", "plain", "\u201cquoted\u201d"]
    assert got.repaired_lines == [1, 3]


# ---------------------------------------------------------------------------
# fastText
# ---------------------------------------------------------------------------


def test_fasttext_lines(tmp_path):
    content = "__label__pos a fine film\n__label__neg  dull\r\n__label__pos\n"
    path = _write(tmp_path, "ft.txt", content)
    got = datasets.read_file(path)
    assert got.format == "fasttext"
    assert got.X == ["a fine film", "dull", ""]
    assert got.y.tolist() == ["pos", "neg", "pos"]


def test_fasttext_label_prefix_is_configurable(tmp_path):
    path = _write(tmp_path, "ft.txt", "#c#1 one\n#c#-2 two\n")
    got = datasets.read_file(path, format="fasttext", label_prefix="#c#")
    assert got.y.tolist() == [1, -2] and got.X == ["one", "two"]
    assert datasets.read_file(path, label_prefix="#c#").format == "fasttext"


def test_fasttext_several_labels_make_a_multilabel_file(tmp_path):
    path = _write(tmp_path, "ft.txt", "__label__a one\n__label__b __label__c two words\n")
    for multilabel in ("auto", True):
        got = datasets.read_file(path, multilabel=multilabel)
        assert got.y == [["a"], ["b", "c"]]  # every row a list, one label or several
        assert got.X == ["one", "two words"]  # no label read as a word
        assert got.n_rows == 2 and got.format == "fasttext"
    assert datasets.read_file(path).y == [["a"], ["b", "c"]]  # "auto" is the default
    with pytest.raises(
        DataFormatError,
        match=r"ft\.txt, line 2: 2 labels \['b', 'c'\].*multilabel=False",
    ):
        datasets.read_file(path, multilabel=False)


def test_fasttext_multilabel_exact_rows_crlf_and_bom(tmp_path):
    content = ("\ufeff__label__x __label__y a b\r\n__label__y c\r\n"
               "__label__z __label__x __label__y  d\r\n__label__x e")  # no final newline
    path = _write(tmp_path, "ml.ft", content)
    got = datasets.read_file(path)
    assert got.n_rows == 4 and len(got.X) == 4 and len(got.y) == 4
    assert got.y == [["x", "y"], ["y"], ["z", "x", "y"], ["x"]]
    assert got.X == ["a b", "c", "d", "e"]  # CR dropped, labels never in the text


def test_fasttext_one_label_per_line_stays_single_label_with_auto(tmp_path):
    path = _write(tmp_path, "ft.txt", "__label__a one\n__label__b two\n")
    got = datasets.read_file(path)
    assert isinstance(got.y, np.ndarray) and got.y.tolist() == ["a", "b"]
    assert datasets.read_file(path, multilabel=True).y == [["a"], ["b"]]


def test_fasttext_multilabel_integer_labels(tmp_path):
    path = _write(tmp_path, "ft.txt", "__label__1 __label__2 x\n__label__3 y\n")
    assert datasets.read_file(path, multilabel=True).y == [[1, 2], [3]]
    path = _write(tmp_path, "ft2.txt", "__label__1 __label__01 x\n")
    assert datasets.read_file(path, multilabel=True).y == [["1", "01"]]


@pytest.mark.parametrize(
    "content, match",
    [
        ("__label__a fine\nno tag here\n", r"line 2: no label: the line does not start with"),
        ("__label__a fine __label__b\n", r"line 1: label tag '__label__b' after the text"),
        ("__label__ fine\n", r"line 1: empty label"),
        ("__label__a x\n\n", r"line 2: empty line"),
    ],
)
def test_fasttext_errors_name_the_line(tmp_path, content, match):
    path = _write(tmp_path, "ft.txt", content)
    with pytest.raises(DataFormatError, match=match):
        datasets.read_file(path, format="fasttext")


# ---------------------------------------------------------------------------
# CSV and TSV with text
# ---------------------------------------------------------------------------


def test_csv_quoting_bom_crlf(tmp_path):
    content = (
        '\ufeffid,text,label\r\n'
        '1,"hello, world",pos\r\n'
        '2,"two\r\nlines, and ""quotes""",neg\r\n'
        '3,,pos\r\n'
        '4,plain, neg \r\n'
    )
    path = _write(tmp_path, "t.csv", content)
    got = datasets.read_file(path)
    assert got.format == "csv" and got.kind == "text"
    assert got.X == ["hello, world", 'two\r\nlines, and "quotes"', "", "plain"]
    assert got.y.tolist() == ["pos", "neg", "pos", "neg"]  # labels: surrounding space dropped


def test_csv_errors_count_physical_lines(tmp_path):
    # Row 2 spans lines 3-5; the ragged row is on line 6.
    content = 'text,label\n"a",1\n"b\nc\nd",0\n"e",1,extra\n'
    path = _write(tmp_path, "t.csv", content)
    with pytest.raises(DataFormatError, match=r"t\.csv, line 6: 3 field\(s\), expected 2"):
        datasets.read_file(path)
    path = _write(tmp_path, "u.csv", 'text,label\n"a\nb",1\nc,\n')
    with pytest.raises(DataFormatError, match=r"u\.csv, line 4: empty label"):
        datasets.read_file(path)


def test_csv_cp1252_lines_are_repaired(tmp_path):
    path = _write(tmp_path, "t.csv", b'text,label\n"na\xefve, sure",1\nok,0\n')
    with pytest.warns(datasets.DataWarning, match=r"1 line\(s\).*\(lines 2\)"):
        got = datasets.read_file(path)
    assert got.X == ["naïve, sure", "ok"] and got.repaired_lines == [2]


def test_csv_named_columns_and_missing_label_column(tmp_path):
    path = _write(tmp_path, "t.csv", "sentence,y\nfine,1\n")
    got = datasets.read_file(path, text_column="sentence", label_column="y")
    assert got.X == ["fine"] and got.y.tolist() == [1]
    with pytest.raises(
        DataFormatError, match=r"header has no column 'label' \(columns: \['sentence', 'y'\]\)"
    ):
        datasets.read_file(path, text_column="sentence")


def test_csv_header_only_is_an_error(tmp_path):
    path = _write(tmp_path, "t.csv", "text,label\n")
    with pytest.raises(DataFormatError, match="a header row but no examples"):
        datasets.read_file(path)


def test_tsv_text(tmp_path):
    path = _write(tmp_path, "t.tsv", 'text\tlabel\na "quoted" film\t1\n\t0\n')
    got = datasets.read_file(path)
    assert got.format == "tsv"
    assert got.X == ['a "quoted" film', ""] and got.y.tolist() == [1, 0]


# ---------------------------------------------------------------------------
# JSON Lines
# ---------------------------------------------------------------------------


def test_jsonl(tmp_path):
    rows = [{"text": "a, b", "label": "pos"}, {"text": "", "label": "neg", "id": 3}]
    path = _write(tmp_path, "d.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    got = datasets.read_file(path)
    assert got.format == "jsonl" and got.X == ["a, b", ""] and got.y.tolist() == ["pos", "neg"]


def test_jsonl_keys_are_configurable_and_integer_labels(tmp_path):
    path = _write(tmp_path, "d.jsonl", '{"s": "x", "c": 3}\n{"s": "y", "c": "-4"}\n')
    got = datasets.read_file(path, text_column="s", label_column="c")
    assert got.y.tolist() == [3, -4] and got.y.dtype == np.int64


@pytest.mark.parametrize(
    "line, match",
    [
        ('{"text": "x", "label": 1', r"line 2: not valid JSON"),
        ('["x", 1]', r"line 2: expected a JSON object, got list"),
        ('{"text": "x"}', r"line 2: no key 'label' \(keys: \['text'\]\)"),
        ('{"text": null, "label": 1}', r"line 2: text 'text' is null"),
        ('{"text": "x", "label": 1.5}', r"line 2: label 'label' is float"),
        ('{"text": "x", "label": true}', r"line 2: label 'label' is bool"),
        ('{"text": "x", "label": ""}', r"line 2: empty label"),
        ("", r"line 2: empty line"),
        ("[" * 100000, r"line 2: not valid JSON \(nested too deeply\)"),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path, line, match):
    path = _write(tmp_path, "d.jsonl", '{"text": "ok", "label": 0}\n' + line + "\n")
    with pytest.raises(DataFormatError, match=match):
        datasets.read_file(path)


def test_jsonl_multilabel(tmp_path):
    path = _write(tmp_path, "d.jsonl", '{"text": "x", "label": ["a", "b"]}\n'
                                       '{"text": "y", "label": "c"}\n')
    assert datasets.read_file(path, multilabel=True).y == [["a", "b"], ["c"]]
    assert datasets.read_file(path).y == [["a", "b"], ["c"]]
    with pytest.raises(DataFormatError, match=r"line 1: .*a list, a multi-label example, "
                                              r"but multilabel=False"):
        datasets.read_file(path, multilabel=False)
    one = _write(tmp_path, "one.jsonl", '{"text": "x", "label": ["a"]}\n'
                                        '{"text": "y", "label": "c"}\n')
    assert datasets.read_file(one).y == [["a"], ["c"]]  # a JSON list is multi-label


def test_jsonl_cp1252_line_is_repaired(tmp_path):
    path = _write(tmp_path, "d.jsonl", b'{"text": "caf\xe9", "label": 1}\n')
    with pytest.warns(datasets.DataWarning, match=r"\(lines 1\)"):
        assert datasets.read_file(path).X == ["café"]


# ---------------------------------------------------------------------------
# Numeric CSV and TSV
# ---------------------------------------------------------------------------


def test_numeric_csv(tmp_path):
    path = _write(tmp_path, "n.csv", "x1, x2 ,label\n1,2.5,0\n-3,4e2,1\r\n.5,+7.,1\n")
    got = datasets.read_file(path)
    assert got.format == "numeric_csv" and got.kind == "numeric"
    np.testing.assert_array_equal(got.X, [[1, 2.5], [-3, 400], [0.5, 7]])
    assert got.X.dtype == np.float64 and got.y.tolist() == [0, 1, 1]
    assert got.feature_names == ["x1", "x2"]


def test_numeric_tsv_label_column_anywhere(tmp_path):
    path = _write(tmp_path, "n.tsv", "y\ta\tb\ncat\t1\t2\ndog\t3\t4\n")
    got = datasets.read_file(path, label_column="y")
    assert got.format == "numeric_tsv"
    np.testing.assert_array_equal(got.X, [[1, 2], [3, 4]])
    assert got.y.tolist() == ["cat", "dog"] and got.feature_names == ["a", "b"]


@pytest.mark.parametrize(
    "cell, match",
    [
        ("abc", r"line 3, column 'b': 'abc' is not a number"),
        ("1_000", r"line 3, column 'b': '1_000' is not a number"),
        ("\u0663", r"line 3, column 'b': '٣' is not a number"),
        ("", r"line 3, column 'b': empty cell"),
        ("nan", r"line 3, column 'b': NaN or infinity \('nan'\)"),
        ("-Inf", r"line 3, column 'b': NaN or infinity \('-Inf'\)"),
        ("1e999", r"line 3, column 'b': '1e999' overflows float64"),
    ],
)
def test_numeric_csv_bad_cells_are_named(tmp_path, cell, match):
    path = _write(tmp_path, "n.csv", f"a,b,label\n1,2,0\n3,{cell},1\n")
    with pytest.raises(DataFormatError, match=match):
        datasets.read_file(path, format="numeric_csv")


def test_numeric_csv_structure_errors(tmp_path):
    path = _write(tmp_path, "n.csv", "a,b,c\n1,2,0\n")
    with pytest.raises(DataFormatError, match=r"no column 'label' \(columns: \['a', 'b', 'c'\]\)"):
        datasets.read_file(path, format="numeric_csv")
    path = _write(tmp_path, "n.csv", "a,label\n1,0\n2\n")
    with pytest.raises(DataFormatError, match=r"line 3: 1 field\(s\), expected 2"):
        datasets.read_file(path)
    path = _write(tmp_path, "n.csv", "label\n0\n")
    with pytest.raises(DataFormatError, match="no feature columns"):
        datasets.read_file(path, format="numeric_csv")


# ---------------------------------------------------------------------------
# npz and npy
# ---------------------------------------------------------------------------


def _npz(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_npz(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    path = _npz(tmp_path, X=X, y=np.array([0, 1, 1, 0]))
    got = datasets.read_file(path)
    assert got.format == "npz" and got.kind == "numeric" and got.n_rows == 4
    np.testing.assert_array_equal(got.X, X)
    assert got.X.dtype == np.float64 and got.y.tolist() == [0, 1, 1, 0]
    assert got.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_npz_keys_and_label_types(tmp_path):
    path = _npz(tmp_path, features=np.eye(3), target=np.array(["b", "a", "01"]))
    got = datasets.read_file(path, x_key="features", y_key="target")
    assert got.y.tolist() == ["b", "a", "01"]
    with pytest.raises(DataFormatError, match=r"no array 'X' or 'y' \(arrays: \['features', "):
        datasets.read_file(path)
    path = _npz(tmp_path, X=np.eye(3), y=np.array([0.0, 1.0, 2.0]))
    assert datasets.read_file(path).y.dtype == np.int64
    path = _npz(tmp_path, X=np.eye(3), y=np.array([0.0, 0.5, 2.0]))
    with pytest.raises(DataFormatError, match=r"holds 0\.5 at index 1"):
        datasets.read_file(path)


@pytest.mark.parametrize(
    "data",
    [
        b"\x93NUMPY\x01\x00\x06\x00\x00\x00\x00'''",  # header cut in a string
        b"\x93NUMPY\x01\x00\x04\x00{\x00\n}",  # a NUL in the header
        b"\x93NUMPY\x01\x00\x40\x00{'descr': '<f8', 'fortran_order': False, "
        b"'shape': (9999999999,)}",  # more data than the file holds
    ],
)
def test_corrupt_npy_is_a_data_format_error(tmp_path, data):
    with pytest.raises(DataFormatError, match="not a readable .npy file"):
        datasets.read_file(_write(tmp_path, "c.npy", data))


def test_npz_bad_contents(tmp_path):
    X = np.ones((3, 2))
    X[2, 1] = np.nan
    with pytest.raises(DataFormatError, match=r"NaN at row 2, column 1"):
        datasets.read_file(_npz(tmp_path, X=X, y=np.arange(3)))
    with pytest.raises(DataFormatError, match=r"'y' must be 1-D with one label per row"):
        datasets.read_file(_npz(tmp_path, X=np.ones((3, 2)), y=np.arange(2)))
    objects = np.array([{"a": 1}, None, 3], dtype=object)
    with pytest.raises(DataFormatError, match="cannot read the arrays.*allow_pickle"):
        datasets.read_file(_npz(tmp_path, X=np.ones((3, 2)), y=objects))
    with pytest.raises(DataFormatError, match="not a readable .npz file"):
        datasets.read_file(_write(tmp_path, "broken.npz", b"PK\x03\x04 not really a zip"))


def test_npy_label_column(tmp_path):
    path = tmp_path / "d.npy"
    np.save(path, np.array([[0.5, 1.0, 0.0], [1.5, 2.0, 1.0], [2.5, 3.0, 1.0]]))
    got = datasets.read_file(path)
    assert got.format == "npy"
    np.testing.assert_array_equal(got.X, [[0.5, 1], [1.5, 2], [2.5, 3]])
    assert got.y.tolist() == [0, 1, 1]
    got = datasets.read_file(path, label_column=1)
    np.testing.assert_array_equal(got.X, [[0.5, 0], [1.5, 1], [2.5, 1]])
    assert got.y.tolist() == [1, 2, 3]
    with pytest.raises(DataFormatError, match="label column 0 holds 0.5 at index 0"):
        datasets.read_file(path, label_column=0)
    with pytest.raises(DataFormatError, match="out of range for 3 columns"):
        datasets.read_file(path, label_column=3)
    with pytest.raises(ValueError, match="no column names; label_column must be an int"):
        datasets.read_file(path, label_column="label")
    np.save(path, np.arange(4.0))
    with pytest.raises(DataFormatError, match=r"expected a 2-D array.*shape \(4,\)"):
        datasets.read_file(path)


# ---------------------------------------------------------------------------
# Parquet
# ---------------------------------------------------------------------------


def _parquet(tmp_path, name, columns):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return path


def test_parquet_numeric(tmp_path):
    path = _parquet(tmp_path, "d.parquet", {"f1": [1.0, 2.0, 3.0], "f2": [4, 5, 6],
                                            "flag": [True, False, True], "label": ["a", "b", "a"]})
    got = datasets.read_file(path)
    assert got.format == "parquet" and got.kind == "numeric"
    np.testing.assert_array_equal(got.X, [[1, 4, 1], [2, 5, 0], [3, 6, 1]])
    assert got.y.tolist() == ["a", "b", "a"] and got.feature_names == ["f1", "f2", "flag"]


def test_parquet_text_and_errors(tmp_path):
    path = _parquet(tmp_path, "t.pq", {"text": ["x y", ""], "label": [3, 1]})
    got = datasets.read_file(path)
    assert got.kind == "text" and got.X == ["x y", ""] and got.y.tolist() == [3, 1]
    path = _parquet(tmp_path, "n.parquet", {"f": [1.0, None], "label": [0, 1]})
    with pytest.raises(DataFormatError, match="column 'f' is null at row 1"):
        datasets.read_file(path)
    path = _parquet(tmp_path, "s.parquet", {"f": ["a", "b"], "label": [0, 1]})
    with pytest.raises(DataFormatError, match="column 'f' has type string"):
        datasets.read_file(path)
    path = _parquet(tmp_path, "l.parquet", {"f": [1.0, 2.0], "label": [0, None]})
    with pytest.raises(DataFormatError, match="row 1: label 'label' is null"):
        datasets.read_file(path)
    path = _parquet(tmp_path, "m.parquet", {"f": [1.0, 2.0], "label": ["a", None]})
    with pytest.raises(DataFormatError, match="row 1: label 'label' is null"):
        datasets.read_file(path)
    path = _parquet(tmp_path, "w.parquet", {"f": [1.0, 2.0], "label": [1.0, 2.0]})
    assert datasets.read_file(path).y.tolist() == [1, 2]
    path = _parquet(tmp_path, "h.parquet", {"f": [1.0, 2.0], "label": [1.0, 2.5]})
    with pytest.raises(DataFormatError, match="holds 2.5 at index 1"):
        datasets.read_file(path)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    path = _write(tmp_path, "d.parquet", b"PAR1 whatever")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"needs pyarrow.*cymlp\[parquet\].*parquet extra"):
        datasets.read_file(path)


# ---------------------------------------------------------------------------
# svmlight / libsvm
# ---------------------------------------------------------------------------


def test_svmlight_csr_arrays(tmp_path):
    content = "# a comment line\n+1 1:0.5 4:-2 # trailing comment\n\n-1 2:1e3\n+1\n-1 4:7 3:0\n"
    path = _write(tmp_path, "d.svm", content)
    got = datasets.read_file(path)
    X = got.X
    assert got.format == "svmlight" and got.kind == "numeric" and got.n_rows == 4
    assert X.format == "csr" and X.shape == (4, 4) and X.dtype == np.float64
    assert X.indptr.tolist() == [0, 2, 3, 3, 5]
    assert X.indices.tolist() == [0, 3, 1, 2, 3]  # one-based in the file, sorted per row
    assert X.data.tolist() == [0.5, -2.0, 1000.0, 0.0, 7.0]  # explicit zeros kept as written
    assert got.y.tolist() == ["+1", "-1", "+1", "-1"]  # '+1' is not canonical: kept


def test_svmlight_index_base_and_width(tmp_path):
    path = _write(tmp_path, "d.svm", "0 0:1 2:3\n1 1:2\n")
    got = datasets.read_file(path)  # index 0 present: zero-based
    np.testing.assert_array_equal(got.X.toarray(), [[1, 0, 3], [0, 2, 0]])
    assert got.y.tolist() == [0, 1]
    with pytest.raises(DataFormatError, match=r"line 1: feature index 0 with zero_based=False"):
        datasets.read_file(path, zero_based=False)
    got = datasets.read_file(path, n_features=5)
    assert got.X.shape == (2, 5)
    with pytest.raises(DataFormatError, match="does not fit n_features=2"):
        datasets.read_file(path, n_features=2)
    path = _write(tmp_path, "e.svm", "0 1:1 3:3\n")
    np.testing.assert_array_equal(datasets.read_file(path, zero_based=True).X.toarray(),
                                  [[0, 1, 0, 3]])


def test_svmlight_qid_is_ignored_with_a_warning(tmp_path):
    path = _write(tmp_path, "d.svm", "1 qid:3 1:1\n0 qid:3 2:1\n")
    with pytest.warns(datasets.DataWarning, match=r"qid \(query id\) fields ignored on 2 line"):
        got = datasets.read_file(path)
    assert got.ignored == {"qid": [1, 2]}
    np.testing.assert_array_equal(got.X.toarray(), [[1, 0], [0, 1]])


@pytest.mark.parametrize(
    "line, match",
    [
        ("1 2:1 2:3", r"line 2: feature index 2 appears twice"),
        ("1 2", r"line 2: '2' is not INDEX:VALUE"),
        ("1 x:1", r"line 2: feature index 'x' is not an integer"),
        ("1 2:abc", r"line 2, feature 2: 'abc' is not a number"),
        ("1 2:nan", r"line 2, feature 2: NaN or infinity"),
        ("3:1", r"line 2: starts with '3:1'; expected 'LABEL INDEX:VALUE"),
        ("1, 3:1", r"line 2: empty label"),
    ],
)
def test_svmlight_errors_name_the_line(tmp_path, line, match):
    path = _write(tmp_path, "d.svm", "0 1:1\n" + line + "\n")
    with pytest.raises(DataFormatError, match=match):
        datasets.read_file(path)


def test_svmlight_multilabel_rows(tmp_path):
    content = "# labels 0..3\r\n0,2 1:0.5 3:1\r\n\r\n1 2:2\r\n3,0,1 1:1 # c\r\n2\r\n"
    path = _write(tmp_path, "ml.svm", content)
    got = datasets.read_file(path)
    assert got.n_rows == 4 and got.X.shape == (4, 3) and got.X.format == "csr"
    assert got.y == [[0, 2], [1], [3, 0, 1], [2]]
    np.testing.assert_array_equal(got.X.toarray(),
                                  [[0.5, 0, 1], [0, 2, 0], [1, 0, 0], [0, 0, 0]])
    with pytest.raises(DataFormatError, match=r"line 2: label '0,2' lists several labels, a "
                                              r"multi-label example, but multilabel=False"):
        datasets.read_file(path, multilabel=False)
    single = _write(tmp_path, "s.svm", "0 1:1\n1 2:1\n")
    assert datasets.read_file(single, multilabel=True).y == [[0], [1]]
    assert datasets.read_file(single).y.tolist() == [0, 1]


# ---------------------------------------------------------------------------
# Format guessing
# ---------------------------------------------------------------------------


def _guess_cases(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((2, 3)))
    np.savez(tmp_path / "a.npz", X=np.ones((2, 2)), y=np.arange(2))
    (tmp_path / "renamed.dat").write_bytes((tmp_path / "a.npz").read_bytes())
    return [
        ("a.txt", "1 some text\n", "label_text", "content: LABEL TEXT"),
        ("a.all", "1 some text\n", "label_text", "content: LABEL TEXT"),
        ("b.txt", "__label__x some text\n", "fasttext", "starts with '__label__'"),
        ("c.txt", '{"text": "x", "label": 1}\n', "jsonl", "JSON object"),
        ("d.txt", "# header comment\n1 1:0.5 7:2\n-1 qid:1 2:1\n", "svmlight", "INDEX:VALUE"),
        ("e.txt", "1 at 10:30 pm\n", "label_text", "LABEL TEXT"),
        ("f.txt", "text\tlabel\nx\t1\n", "tsv", "tab-separated header"),
        ("a.csv", "id,text,label\n1,x,0\n", "csv", "names the text column 'text'"),
        ("b.csv", "a,b,label\n1,2,x\n", "numeric_csv", "the other columns hold numbers"),
        ("a.tsv", "text\tlabel\nx\t0\n", "tsv", "names the text column"),
        ("b.tsv", "a\tlabel\n1.5\t0\n", "numeric_tsv", "hold numbers"),
        ("a.jsonl", '{"text": "x", "label": 1}\n', "jsonl", "extension '.jsonl'"),
        ("a.ft", "__label__a x\n", "fasttext", "extension '.ft'"),
        ("a.libsvm", "1 1:1\n", "svmlight", "extension '.libsvm'"),
        ("a.npy", None, "npy", "extension '.npy'"),
        ("a.npz", None, "npz", "extension '.npz'"),
        ("renamed.dat", None, "npz", "content: npz signature"),
    ]


def test_format_is_guessed_from_extension_and_content(tmp_path):
    for name, content, fmt, reason in _guess_cases(tmp_path):
        path = tmp_path / name
        if content is not None:
            path.write_text(content)
        assert datasets.guess_format(path)[0] == fmt, name
        got = _read(path)
        assert got.format == fmt, name
        assert reason in got.format_reason, (name, got.format_reason)


def test_parquet_is_guessed(tmp_path):
    path = _parquet(tmp_path, "d.parquet", {"f": [1.0], "label": [1]})
    renamed = tmp_path / "d.bin"
    renamed.write_bytes(path.read_bytes())
    assert datasets.read_file(path).format_reason == "extension '.parquet'"
    assert datasets.read_file(renamed).format_reason == "content: parquet signature"


def test_format_given_overrides_the_guess(tmp_path):
    path = _write(tmp_path, "a.txt", "text,label\nx,1\n")
    assert datasets.read_file(path).format == "label_text"
    got = datasets.read_file(path, format="csv")
    assert got.format == "csv" and got.format_reason == "given" and got.X == ["x"]


def test_a_text_column_given_makes_a_csv_text(tmp_path):
    path = _write(tmp_path, "a.csv", "sentence,label\n1,0\n")
    assert datasets.read_file(path).format == "numeric_csv"
    got = datasets.read_file(path, text_column="sentence")
    assert got.format == "csv" and got.X == ["1"]


def test_unknown_format_errors_list_the_formats(tmp_path):
    formats = r"label_text, fasttext, csv, tsv, jsonl, numeric_csv, numeric_tsv, npz, npy, "
    path = _write(tmp_path, "a.bin", b"\x00\x01\x02binary")
    with pytest.raises(DataFormatError, match=r"cannot tell the format.*binary.*" + formats):
        datasets.read_file(path)
    path = _write(tmp_path, "a.txt.gz", gzip.compress(b"1 x\n"))
    with pytest.raises(DataFormatError, match="compressed; decompress it first"):
        datasets.read_file(path)
    path = _write(tmp_path, "a.csv", "sentence,kind\nhello,1\n")
    with pytest.raises(DataFormatError, match=r"names neither a text column 'text' nor a label"):
        datasets.read_file(path)
    path = _write(tmp_path, "b.csv", "sentence,label\nhello there,1\n")
    with pytest.raises(DataFormatError, match=r"'hello there' \(line 2\) is not a number; pass "
                                              r"text_column= for text"):
        datasets.read_file(path)
    with pytest.raises(ValueError, match="unknown format 'xlsx'; formats: label_text, "):
        datasets.read_file(path, format="xlsx")


def test_options_that_do_not_apply_are_errors(tmp_path):
    path = _write(tmp_path, "a.txt", "1 x\n")
    with pytest.raises(ValueError, match="multilabel=True applies to fasttext, jsonl and "
                                         "svmlight"):
        datasets.read_file(path, multilabel=True)
    with pytest.raises(ValueError, match="multilabel must be 'auto', True or False"):
        datasets.read_file(path, multilabel="yes")
    with pytest.raises(ValueError, match="only npy files take"):
        datasets.read_file(path, label_column=0)
    with pytest.raises(ValueError, match="delimiter must be one character"):
        datasets.read_file(path, delimiter=";;")
    with pytest.raises(LookupError):
        datasets.read_file(path, encoding="no-such-codec")


# ---------------------------------------------------------------------------
# Files that are not there, or not files
# ---------------------------------------------------------------------------


def test_missing_directory_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data file not found: .*absent\.csv"):
        datasets.read_file(tmp_path / "absent.csv")
    with pytest.raises(IsADirectoryError, match=r"Is a directory, not a data file: .*"):
        datasets.read_file(tmp_path)
    for name in ("e.txt", "e.csv", "e.npz", "e.jsonl", "e.svm"):
        with pytest.raises(DataFormatError, match=rf"{name} is empty"):
            datasets.read_file(_write(tmp_path, name, b""))


def test_relative_paths_are_made_absolute_on_entry(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _write(data_dir, "train.txt", "1 a\n0 b\n1 c\n0 d\n")
    _write(data_dir, "test.txt", "1 e\n0 f\n")
    monkeypatch.chdir(tmp_path)
    got = datasets.read_file("data/train.txt")
    assert got.path == data_dir / "train.txt"
    splits = datasets.load_files("data/train.txt", "data/test.txt", "data/test.txt")
    monkeypatch.chdir(data_dir)  # later code changes directory: the record still holds
    assert set(splits.sha256) == {str(data_dir / "train.txt"), str(data_dir / "test.txt")}
    assert all(pathlib.Path(p).is_file() for p in splits.split["files"].values())


def test_relative_data_dir_of_load(tmp_path, monkeypatch):
    data_dir = tmp_path / "d"
    data_dir.mkdir()
    for name in datasets.DATASETS["sst2"]["files"]:
        _write(data_dir, name, "1 good\n0 bad\n")
    monkeypatch.chdir(tmp_path)
    splits = datasets.load("sst2", data_dir="d")
    files = datasets.DATASETS["sst2"]["files"]
    assert sorted(splits.sha256) == sorted(str(data_dir / name) for name in files)


# ---------------------------------------------------------------------------
# The label rule
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels",
    [
        ["10", "1_0"],
        ["01", "1"],
        ["\u0663", "3"],  # Arabic-Indic three and ASCII three
        ["99999999999999999999", "1"],  # beyond int64
        ["-0", "0"],
        ["+1", "1"],
        ["9223372036854775808", "0"],  # 2**63
    ],
)
def test_labels_that_int_would_merge_stay_distinct_strings(tmp_path, labels):
    path = _write(tmp_path, "l.txt", "".join(f"{label} text\n" for label in labels))
    got = datasets.read_file(path)
    assert got.y.dtype.kind == "U"
    assert got.y.tolist() == labels
    assert len(set(got.y.tolist())) == len(labels)


def test_canonical_integer_labels_become_int64(tmp_path):
    labels = ["0", "-7", "12", "9223372036854775807", "-9223372036854775808"]
    path = _write(tmp_path, "l.txt", "".join(f"{label} t\n" for label in labels))
    got = datasets.read_file(path)
    assert got.y.dtype == np.int64
    assert [str(v) for v in got.y.tolist()] == labels


def test_labels_are_not_stripped_beyond_the_format(tmp_path):
    content = '{"text": "x", "label": " a"}\n{"text": "y", "label": "a"}\n'
    path = _write(tmp_path, "d.jsonl", content)
    assert datasets.read_file(path).y.tolist() == [" a", "a"]
    path = _write(tmp_path, "n.txt", b"a\x00 text\na text\nb\x00c text\n")
    assert datasets.read_file(path, format="label_text").y.tolist() == ["a\x00", "a", "b\x00c"]


# ---------------------------------------------------------------------------
# Stratified splits
# ---------------------------------------------------------------------------


def _labels(counts, seed=0):
    y = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(y)


def _within_one_per_class(y, part, fraction):
    for c in np.unique(y):
        n_c = int(np.sum(y == c))
        got = int(np.sum(y[part] == c))
        assert abs(got - n_c * fraction) < 1, (c, got, n_c * fraction)


@pytest.mark.parametrize("k", [3, 5, 10])
def test_stratified_kfold_keeps_class_proportions(k):
    y = _labels([53, 31, 9, 4])
    splits = datasets.stratified_kfold_indices(y, k, seed=3)
    assert len(splits) == k
    test_seen = np.zeros(len(y), int)
    dev_seen = np.zeros(len(y), int)
    for f, (train, dev, test) in enumerate(splits):
        assert sorted(np.concatenate([train, dev, test]).tolist()) == list(range(len(y)))
        _within_one_per_class(y, test, 1 / k)
        _within_one_per_class(y, dev, 1 / k)
        np.testing.assert_array_equal(dev, splits[(f + 1) % k][2])  # fold f+1 is dev
        test_seen[test] += 1
        dev_seen[dev] += 1
    assert np.all(test_seen == 1) and np.all(dev_seen == 1)
    sizes = [len(test) for _, _, test in splits]
    assert max(sizes) - min(sizes) <= 1


def test_stratified_kfold_is_deterministic_for_a_seed():
    y = np.array(["a", "b", "c"] * 20)
    a = datasets.stratified_kfold_indices(y, 5, seed=1)
    b = datasets.stratified_kfold_indices(y, 5, seed=1)
    c = datasets.stratified_kfold_indices(y, 5, seed=2)
    for (ta, da, sa), (tb, db, sb) in zip(a, b):
        assert np.array_equal(ta, tb) and np.array_equal(da, db) and np.array_equal(sa, sb)
    assert not all(np.array_equal(x[2], z[2]) for x, z in zip(a, c))
    with pytest.raises(ValueError, match="k must be"):
        datasets.stratified_kfold_indices(y, 2)
    with pytest.raises(ValueError, match="at least k"):
        datasets.stratified_kfold_indices(y[:4], 5)


@pytest.mark.parametrize("fractions", [0.1, 0.25, (0.1, 0.2), (0.15, 0.15)])
def test_stratified_holdout_keeps_class_proportions(fractions):
    y = _labels([101, 47, 13, 6, 2])
    parts = datasets.stratified_holdout_indices(y, fractions, seed=5)
    fractions = (fractions,) if isinstance(fractions, float) else fractions
    assert len(parts) == 1 + len(fractions)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(y)))
    for part, fraction in zip(parts[1:], fractions):
        assert len(part) == round(len(y) * fraction)
        _within_one_per_class(y, part, fraction)
    again = datasets.stratified_holdout_indices(y, fractions, seed=5)
    assert all(np.array_equal(p, q) for p, q in zip(parts, again))
    other = datasets.stratified_holdout_indices(y, fractions, seed=6)
    assert not np.array_equal(parts[1], other[1])


def test_stratified_holdout_gives_the_extra_example_to_the_largest_remainder():
    y = _labels([11, 19, 10])  # 10% shares 1.1, 1.9, 1.0; the part holds 4
    _, dev = datasets.stratified_holdout_indices(y, 0.1, seed=0)
    assert np.bincount(y[dev], minlength=3).tolist() == [1, 2, 1]


def test_stratified_holdout_errors_and_small_sets():
    train, dev = datasets.stratified_holdout_indices([0, 1, 1], 0.01)
    assert len(dev) == 1 and len(train) == 2
    with pytest.raises(ValueError, match="sum to less than 1"):
        datasets.stratified_holdout_indices([0, 1] * 5, (0.5, 0.5))
    with pytest.raises(ValueError, match="too few"):
        datasets.stratified_holdout_indices([0, 1], (0.1, 0.1))


def test_multilabel_lists_are_stratified_by_label_set():
    y = [["a"], ["a", "b"], ["b", "a"], ["b"]] * 10
    train, dev, test = datasets.stratified_kfold_indices(y, 5)[0]
    assert sum(1 for i in test if set(y[i]) == {"a", "b"}) == 4


# ---------------------------------------------------------------------------
# load_files
# ---------------------------------------------------------------------------


def _labelled(tmp_path, name, labels, start=0):
    lines = [f"{label} example {start + i}\n" for i, label in enumerate(labels)]
    return _write(tmp_path, name, "".join(lines))


def test_load_files_given_splits_keep_file_order(tmp_path):
    train = _labelled(tmp_path, "train.txt", [1, 0, 1, 1, 0])
    dev = _labelled(tmp_path, "dev.txt", [0, 1], start=100)
    test = _labelled(tmp_path, "test.txt", ["0", "1", "2"], start=200)
    splits = datasets.load_files(train, dev, test, name="toy")
    assert splits.train[0] == [f"example {i}" for i in range(5)]
    assert splits.dev[0] == ["example 100", "example 101"]
    assert splits.test[0] == ["example 200", "example 201", "example 202"]
    assert splits.train[1].tolist() == [1, 0, 1, 1, 0]
    assert splits.name == "toy" and splits.n_classes == 3
    assert splits.kind == "text" and splits.format == "label_text"
    assert splits.split["split"] == "given"
    assert splits.sha256 == {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in (train, dev, test)
    }


def test_load_files_label_rule_is_applied_over_all_files(tmp_path):
    train = _labelled(tmp_path, "train.txt", ["1", "0"])
    test = _labelled(tmp_path, "test.txt", ["01", "1"])
    splits = datasets.load_files(train, train, test)
    assert splits.train[1].tolist() == ["1", "0"] and splits.test[1].tolist() == ["01", "1"]
    assert splits.n_classes == 3


def test_load_files_cv_is_stratified_and_deterministic(tmp_path):
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    data = _labelled(tmp_path, "all.txt", labels)
    y = np.array(labels)
    for fold in (0, 4):
        splits = datasets.load_files(data, cv=5, fold=fold, seed=11)
        again = datasets.load_files(data, cv=5, fold=fold, seed=11)
        assert splits.test[0] == again.test[0] and splits.train[0] == again.train[0]
        train_idx, dev_idx, test_idx = datasets.stratified_kfold_indices(y, 5, seed=11)[fold]
        assert splits.test[0] == [f"example {i}" for i in test_idx]
        assert splits.dev[0] == [f"example {i}" for i in dev_idx]
        assert sorted(splits.test[1].tolist()) == ["a"] * 12 + ["b"] * 6 + ["c"] * 2
        assert splits.split == {"files": {"train": str(data)}, "split": "cv", "k": 5,
                                "fold": fold, "seed": 11, "stratified": True}


def test_load_files_holdout(tmp_path):
    train = _labelled(tmp_path, "train.txt", [0] * 40 + [1] * 20)
    test = _labelled(tmp_path, "test.txt", [0, 1])
    splits = datasets.load_files(train, test=test, holdout=0.25, seed=1)
    assert sorted(splits.dev[1].tolist()) == [0] * 10 + [1] * 5
    assert len(splits.train[0]) == 45 and splits.test[0] == ["example 0", "example 1"]
    assert splits.split["dev_fraction"] == 0.25 and splits.split["split"] == "holdout"
    both = datasets.load_files(train, holdout={"dev": 0.1, "test": 0.2}, seed=1)
    assert [len(p[0]) for p in (both.train, both.dev, both.test)] == [42, 6, 12]
    assert sorted(both.test[1].tolist()) == [0] * 8 + [1] * 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, r"no dev part: pass dev=FILE, holdout="),
        ({"dev": "D"}, r"no test part"),
        ({"cv": 5, "dev": "D"}, r"cv= splits the train file alone"),
        ({"cv": 2}, r"cv must be an int >= 3"),
        ({"cv": 5, "fold": 5}, r"fold must be an int in \[0, 5\)"),
        ({"fold": 1, "dev": "D", "test": "D"}, r"fold=1 applies only with cv="),
        ({"dev": "D", "holdout": {"dev": 0.1, "test": 0.1}}, r"both dev= and a holdout"),
        ({"holdout": {"valid": 0.1}}, r"holdout keys must be 'dev' and/or 'test'"),
        ({"holdout": 0.6}, r"sum to less than 1"),
    ],
)
def test_load_files_split_option_errors(tmp_path, kwargs, match):
    train = _labelled(tmp_path, "train.txt", [0, 1] * 10)
    kwargs = {k: (train if v == "D" else v) for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=match):
        datasets.load_files(train, **kwargs)


def test_load_files_files_must_agree(tmp_path):
    text = _labelled(tmp_path, "t.txt", [0, 1])
    numeric = _write(tmp_path, "n.csv", "a,label\n1,0\n2,1\n")
    with pytest.raises(DataFormatError, match="different kinds of data"):
        datasets.load_files(text, numeric, numeric)
    wider = _write(tmp_path, "w.csv", "a,b,label\n1,2,0\n")
    with pytest.raises(DataFormatError, match=r"w\.csv has 2 feature column\(s\) but"):
        datasets.load_files(numeric, numeric, wider)
    renamed = _write(tmp_path, "r.csv", "z,label\n1,0\n")
    with pytest.raises(DataFormatError, match=r"columns \['z'\] but .* \['a'\]"):
        datasets.load_files(numeric, numeric, renamed)


def test_load_files_numeric_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    y = np.arange(30) % 3
    np.savez(tmp_path / "d.npz", X=X, y=y)
    splits = datasets.load_files(tmp_path / "d.npz", cv=3, fold=1)
    assert splits.kind == "numeric" and splits.format == "npz"
    train_idx, dev_idx, test_idx = datasets.stratified_kfold_indices(y, 3)[1]
    np.testing.assert_array_equal(splits.test[0], X[test_idx])
    np.testing.assert_array_equal(splits.train[1], y[train_idx])


def test_load_files_svmlight_agree_on_base_and_width(tmp_path):
    train = _write(tmp_path, "train.svm", "1 1:1 2:2\n0 2:5\n1 1:1\n")
    test = _write(tmp_path, "test.svm", "0 4:1\n")  # one-based everywhere
    splits = datasets.load_files(train, train, test)
    assert splits.train[0].shape == (3, 4) and splits.test[0].shape == (1, 4)
    np.testing.assert_array_equal(splits.test[0].toarray(), [[0, 0, 0, 1]])
    np.testing.assert_array_equal(splits.train[0].toarray()[0], [1, 2, 0, 0])
    zero = _write(tmp_path, "zero.svm", "0 0:1\n")  # index 0 in one file: all zero-based
    splits = datasets.load_files(train, train, zero)
    assert splits.train[0].shape == (3, 3)
    np.testing.assert_array_equal(splits.train[0].toarray()[0], [0, 1, 2])


def test_load_files_one_multilabel_file_makes_every_part_lists(tmp_path):
    train = _write(tmp_path, "train.ft", "__label__a __label__b x\n__label__a y\n"
                                         "__label__b z\n__label__a __label__b w\n")
    dev = _write(tmp_path, "dev.ft", "__label__a x\n__label__b y\n")  # one label a line
    splits = datasets.load_files(train, dev, dev)
    assert splits.train[1] == [["a", "b"], ["a"], ["b"], ["a", "b"]]
    assert splits.dev[1] == [["a"], ["b"]] and splits.test[1] == [["a"], ["b"]]
    assert splits.n_classes == 2 and len(splits.train[0]) == 4
    ints = _write(tmp_path, "ints.ft", "__label__1 __label__2 x\n__label__1 y\n")
    words = _write(tmp_path, "words.ft", "__label__one x\n")  # strings: all become str
    splits = datasets.load_files(ints, words, words)
    assert splits.train[1] == [["1", "2"], ["1"]] and splits.dev[1] == [["one"]]


def test_load_files_multilabel_svmlight_with_holdout(tmp_path):
    rows = "".join(f"{i % 3},{(i + 1) % 3} {i % 5 + 1}:1\n" for i in range(30))
    path = _write(tmp_path, "ml.svm", rows)
    splits = datasets.load_files(path, holdout=0.2, seed=0)
    sizes = [splits.train[0].shape[0], splits.dev[0].shape[0], splits.test[0].shape[0]]
    assert sum(sizes) == 30 and sizes[1] == sizes[2] == 6
    assert all(isinstance(labels, list) and len(labels) == 2 for labels in splits.test[1])


def test_load_files_n_samples_reduces_train_only(tmp_path):
    train = _labelled(tmp_path, "train.txt", [0, 1] * 10)
    splits = datasets.load_files(train, train, train, n_samples=5)
    assert len(splits.train[0]) == 5 and len(splits.dev[0]) == 20


# ---------------------------------------------------------------------------
# The registry of built-in data sets
# ---------------------------------------------------------------------------


def test_registry_entries_are_complete():
    splits_of = {"generated": set(), "cv": {"file"}, "given": {"train", "dev", "test"},
                 "holdout": {"train", "test"}}
    for name, info in datasets.DATASETS.items():
        assert info["kind"] in ("text", "numeric"), name
        protocol = info["protocol"]
        assert protocol["split"] in splits_of, name
        named = {protocol[key] for key in splits_of[protocol["split"]]}
        assert named == set(info["files"]), name
        assert info["n_folds"] == (protocol["k"] if protocol["split"] == "cv" else 1)
        if protocol["split"] == "generated":
            assert info["format"] is None and info["files"] == ()
        else:
            assert info["format"] in datasets.FORMATS
        assert isinstance(info["protocol_text"], str) and info["description"]


def test_load_records_kind_and_split_from_the_registry(tmp_path):
    for name in ("xor", "negation"):
        splits = datasets.load(name, n_samples=8)
        assert splits.kind == datasets.DATASETS[name]["kind"]
        assert splits.format is None and splits.sha256 == {}
        assert splits.split["split"] == "generated"
    _labelled(tmp_path, "rt-polarity.all", [0, 1] * 20)
    splits = datasets.load("mr", data_dir=tmp_path, fold=3)
    assert splits.split == dict(datasets.DATASETS["mr"]["protocol"], fold=3)
    assert splits.format == "label_text" and splits.kind == "text"
    path = tmp_path / "rt-polarity.all"
    assert splits.sha256 == {str(path): hashlib.sha256(path.read_bytes()).hexdigest()}


# ---------------------------------------------------------------------------
# The shared data: exact counts and checksums
# ---------------------------------------------------------------------------

SHARED_COUNTS = {
    "rt-polarity.all": 10662,
    "stsa.binary.train": 6920,
    "stsa.binary.dev": 872,
    "stsa.binary.test": 1821,
    "TREC.train.all": 5452,
    "TREC.test.all": 500,
}


def _wc_l(data):
    """Lines as ``wc -l`` counts them, plus a last line without a terminator."""
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


@pytest.mark.parametrize("name", sorted(SHARED_COUNTS))
def test_shared_data_exact_counts_and_checksums(name):
    _need(name)
    path = DATA_DIR / name
    data = path.read_bytes()
    got = _read(path)
    assert got.format == "label_text"
    assert got.n_rows == len(got.X) == len(got.y) == _wc_l(data) == SHARED_COUNTS[name]
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert got.y.dtype == np.int64


def test_shared_data_through_load_and_load_files():
    _need(*SHARED_COUNTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", datasets.DataWarning)
        sst = datasets.load("sst2", data_dir=DATA_DIR)
        mine = datasets.load_files(DATA_DIR / "stsa.binary.train", DATA_DIR / "stsa.binary.dev",
                                   DATA_DIR / "stsa.binary.test")
        trec = datasets.load_files(DATA_DIR / "TREC.train.all", test=DATA_DIR / "TREC.test.all",
                                   holdout=0.1)
        mr = datasets.load_files(DATA_DIR / "rt-polarity.all", cv=10, fold=0)
    assert mine.train[0] == sst.train[0] and mine.test[0] == sst.test[0]
    np.testing.assert_array_equal(mine.dev[1], sst.dev[1])
    assert mine.sha256 == sst.sha256 and len(sst.sha256) == 3
    assert [len(p[0]) for p in (trec.train, trec.dev, trec.test)] == [4907, 545, 500]
    assert [len(p[0]) for p in (mr.train, mr.dev, mr.test)] == [8528, 1067, 1067]
    assert sorted(np.bincount(mr.test[1]).tolist()) == [533, 534]  # 5331 of each class


# ---------------------------------------------------------------------------
# Property tests: a reader either returns a result or raises DataFormatError
# ---------------------------------------------------------------------------

TEXT_FORMATS = ("label_text", "fasttext", "csv", "tsv", "jsonl", "numeric_csv", "numeric_tsv",
                "svmlight")
PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Bytes that make files interesting: separators, quotes, line ends, a BOM,
# label tags, JSON and svmlight syntax, invalid UTF-8.
_PIECES = st.sampled_from([
    b"\n", b"\r\n", b"\r", b",", b"\t", b'"', b" ", b"\xef\xbb\xbf", b"__label__", b"{", b"}",
    b'"text"', b'"label"', b":", b"1", b"0", b"-", b"1:2", b"qid:1", b"#", b"text", b"label",
    b"\xe9", b"\x93", b"\xff", b"\x00", b"nan", b"[", b"]", b"a", b"\xd9\xa3", b"1e999",
])
_BYTES = st.one_of(st.binary(min_size=1, max_size=300),
                   st.lists(_PIECES, min_size=1, max_size=60).map(b"".join))


def _read_or_format_error(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return datasets.read_file(path, **kwargs)
        except DataFormatError:
            return None


@PROPERTY_SETTINGS
@given(data=_BYTES, fmt=st.sampled_from(TEXT_FORMATS))
def test_random_bytes_give_a_result_or_a_data_format_error(tmp_path, data, fmt):
    path = _write(tmp_path, "f.dat", data)
    got = _read_or_format_error(path, format=fmt)
    if got is not None:
        assert got.n_rows == (got.X.shape[0] if hasattr(got.X, "shape") else len(got.X))
        assert got.n_rows == len(got.y) >= 1


@PROPERTY_SETTINGS
@given(data=_BYTES, suffix=st.sampled_from([".txt", ".csv", ".tsv", ".jsonl", ".svm", ".x"]))
def test_random_bytes_with_a_guessed_format(tmp_path, data, suffix):
    path = _write(tmp_path, "f" + suffix, data)
    got = _read_or_format_error(path)
    if got is not None and got.format in ("label_text", "fasttext", "jsonl"):
        assert got.n_rows == _wc_l(data)  # one example per line, never more or fewer


# Labels without whitespace (any Unicode whitespace separates fields), NUL or
# a leading BOM; texts without line breaks.
_LABEL = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"),
    min_size=1, max_size=6,
).filter(lambda s: not any(c.isspace() for c in s))
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"),
                max_size=30)
_ROWS = st.lists(st.tuples(_LABEL, _TEXT), min_size=1, max_size=8)


def _expected_labels(labels):
    return _labels_array(labels).tolist()


@PROPERTY_SETTINGS
@given(rows=_ROWS)
def test_label_text_round_trip(tmp_path, rows):
    path = _write(tmp_path, "r.txt", "".join(f"{label} {text}\n" for label, text in rows))
    got = datasets.read_file(path, format="label_text")
    assert got.X == [text.rstrip("\r").lstrip() for _, text in rows]
    assert got.y.tolist() == _expected_labels([label for label, _ in rows])


@PROPERTY_SETTINGS
@given(rows=_ROWS, multilabel=st.booleans())
def test_fasttext_round_trip(tmp_path, rows, multilabel):
    rows = [(label, text) for label, text in rows
            if not any(w.startswith("__label__") for w in text.split())]
    if not rows:
        return
    content = "".join(f"__label__{label} {text}\n" for label, text in rows)
    path = _write(tmp_path, "r.txt", content)
    got = datasets.read_file(path, format="fasttext", multilabel=multilabel)
    texts = [text.rstrip("\r").lstrip() for _, text in rows]
    labels = _expected_labels([label for label, _ in rows])
    assert got.X == texts
    if multilabel:
        assert got.y == [[label] for label in labels]
    else:
        assert got.y.tolist() == labels


_CELL_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


def _rfc4180_field(value):
    """A CSV field, quoted (quotes doubled) when it holds a comma, quote or line break."""
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@PROPERTY_SETTINGS
@given(rows=st.lists(st.tuples(_LABEL, _CELL_TEXT), min_size=1, max_size=8),
       terminator=st.sampled_from(["\n", "\r\n"]), bom=st.booleans())
def test_csv_round_trip(tmp_path, rows, terminator, bom):
    lines = [["label", "text"]] + [list(row) for row in rows]
    content = "".join(",".join(map(_rfc4180_field, line)) + terminator for line in lines)
    content = ("\ufeff" if bom else "") + content
    path = _write(tmp_path, "r.csv", content)
    got = datasets.read_file(path, format="csv")
    assert got.X == [text for _, text in rows]
    assert got.y.tolist() == _expected_labels([label.strip() for label, _ in rows])


@PROPERTY_SETTINGS
@given(rows=st.lists(st.tuples(st.one_of(_LABEL, st.integers(-(2**70), 2**70)), _CELL_TEXT),
                     min_size=1, max_size=8))
def test_jsonl_round_trip(tmp_path, rows):
    content = "".join(json.dumps({"label": label, "text": text}) + "\n" for label, text in rows)
    path = _write(tmp_path, "r.jsonl", content)
    got = datasets.read_file(path)
    assert got.X == [text for _, text in rows]
    assert got.y.tolist() == _expected_labels([str(label) for label, _ in rows])


# ---------------------------------------------------------------------------
# Fuzzing from valid files: every format, binary ones included
# ---------------------------------------------------------------------------

#: most growth of the peak resident memory while reading one fuzzed file (MB)
FUZZ_MEMORY_MB = 150
_FUZZ_SCALE = float(os.environ.get("CYMLP_FUZZ_EXAMPLES", "1"))
FUZZ_SETTINGS = settings(max_examples=max(1, int(2000 * _FUZZ_SCALE)), deadline=None,
                         derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))


def _valid_files():
    """{suffix: bytes} of one small valid file per format (npz stored and deflated)."""
    import io as stdio
    X = np.array([[0.5, 1.0, -2.0], [3.0, 0.0, 1.5], [1e-3, 2.0, 4.0]])
    y = np.array([0, 1, 1])
    out = {}
    for suffix, save in ((".npy", lambda b: np.save(b, np.c_[X, y])),
                         (".npz", lambda b: np.savez(b, X=X, y=y)),
                         ("z.npz", lambda b: np.savez_compressed(b, X=X, y=np.array(["a", "b",
                                                                                   "a"])))):
        buf = stdio.BytesIO()
        save(buf)
        out[suffix] = buf.getvalue()
    out[".txt"] = "1 a good film\n0 a bad one\n2 naïve \"quoted\" text\n".encode()
    out[".ft"] = b"__label__pos __label__x good\n__label__neg bad one\n"
    out[".csv"] = b'label,text\n1,"a, quoted\nfield"\n0,plain\n'
    out[".tsv"] = b"text\tlabel\ngood film\tpos\nbad\tneg\n"
    out[".jsonl"] = b'{"label": 1, "text": "good"}\n{"label": "x", "text": "bad"}\n'
    out[".ncsv"] = b"f1,f2,label\n0.5,1e3,1\n-2,3,0\n"
    out[".svm"] = b"1 1:0.5 3:2 qid:4\n0 2:-1 # comment\n1 7:1e-3\n"
    return out


VALID_FILES = _valid_files()
_SUFFIX_OF = {".ft": ".txt", ".ncsv": ".csv", "z.npz": ".npz"}
_FUZZ_EDITS = st.lists(st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "delete"]),
                                 st.integers(0, 2**31), st.binary(min_size=1, max_size=8)),
                       min_size=1, max_size=4)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    from _shared import AddressSpaceLimit
    with AddressSpaceLimit(extra_gb=2.0):
        yield tmp_path_factory.mktemp("fuzz")


@FUZZ_SETTINGS
@given(kind=st.sampled_from(sorted(VALID_FILES)), edits=_FUZZ_EDITS,
       fmt=st.sampled_from([None, *datasets.FORMATS]))
def test_mutated_valid_files_give_a_result_or_a_data_format_error(fuzz_dir, kind, edits, fmt):
    """A valid file of each format (npy and npz too, whose headers and zip structure
    random bytes rarely reach), changed in a few bytes and read with its format
    guessed or given: a result or a DataFormatError (an ImportError for Parquet
    without pyarrow); the peak memory grows by less than FUZZ_MEMORY_MB and nothing
    is written."""
    from _shared import PeakMemory, edit_bytes, folder_state
    raw = bytearray(VALID_FILES[kind])
    for op, where, data in edits:
        if not raw:
            break
        pos = where % len(raw)
        edit_bytes(raw, op, pos, data)
    path = _write(fuzz_dir, "f" + _SUFFIX_OF.get(kind, kind), bytes(raw))
    before = folder_state(fuzz_dir)
    with PeakMemory() as peak, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            got = datasets.read_file(path, format=fmt)
        except DataFormatError:
            got = None
        except ImportError as exc:  # Parquet without the parquet extra
            assert fmt == "parquet" and "pyarrow" in str(exc), exc
            got = None
    if got is not None:
        assert got.n_rows == len(got.y) >= 1
    assert peak.grown_mb < FUZZ_MEMORY_MB, f"reading grew the peak memory by {peak.grown_mb} MB"
    assert folder_state(fuzz_dir) == before


def test_a_device_is_refused_and_a_pipe_is_read(tmp_path):
    """/dev/zero would be read until memory runs out: refused from its file type. A
    pipe (a FIFO, or ``<(zcat data.gz)`` in a shell) is read like a file."""
    import threading
    with pytest.raises(DataFormatError, match="/dev/zero is a device or a socket, not a "
                                              "data file"):
        datasets.read_file("/dev/zero")
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(
        datasets.read_file(fifo, format="label_text")), daemon=True)
    reader.start()  # opening the pipe waits for its writer, which comes a little later
    with open(fifo, "wb") as fh:
        fh.write(b"1 a good film\n0 a bad one\n")
    reader.join(60)
    if reader.is_alive():  # unblock the reader before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("reading the pipe did not finish")
    assert got[0].X == ["a good film", "a bad one"]
