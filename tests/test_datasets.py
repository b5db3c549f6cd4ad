"""Tests of cymlp.datasets: readers, generated data, splits, loaders, download."""

import functools
import hashlib
import http.server
import os
import pathlib
import threading
import warnings

import numpy as np
import pytest
from _shared import import_cymlp_module

datasets = import_cymlp_module("datasets")

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


def _write(tmp_path, data, name="data.txt"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _read_quietly(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", datasets.DataWarning)
        return datasets.read_labeled_text(path, **kwargs)


# ---------------------------------------------------------------------------
# read_labeled_text: LABEL TEXT
# ---------------------------------------------------------------------------


def test_label_text_basic(tmp_path):
    path = _write(tmp_path, b"1 a good film .\n0 a bad one\n2\n3   spaced  out \r\n4 last")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to repair: no warning
        data = datasets.read_labeled_text(path)
    assert data.labels == ["1", "0", "2", "3", "4"]
    assert data.texts == ["a good film .", "a bad one", "", "spaced  out ", "last"]
    assert len(data) == 5
    assert data.path == path
    assert data.n_repaired == 0 and data.repaired_lines == []


def test_label_text_strips_a_utf8_byte_order_mark(tmp_path):
    path = _write(tmp_path, "\ufeff1 x\n".encode("utf-8"))
    assert datasets.read_labeled_text(path).labels == ["1"]


@pytest.mark.parametrize(
    "data, lineno",
    [(b"1 a\n\n0 b\n", 2), (b"\n", 1), (b"1 a\n0 b\n\n", 3), (b"1 a\n   \n", 2)],
)
def test_label_text_empty_line_names_file_and_line(tmp_path, data, lineno):
    path = _write(tmp_path, data)
    with pytest.raises(datasets.DataFormatError, match=rf"data\.txt, line {lineno}: "):
        datasets.read_labeled_text(path)


def test_empty_and_missing_files(tmp_path):
    path = _write(tmp_path, b"")
    with pytest.raises(datasets.DataFormatError, match=r"data\.txt is empty"):
        datasets.read_labeled_text(path)
    with pytest.raises(FileNotFoundError, match="nothere.txt"):
        datasets.read_labeled_text(tmp_path / "nothere.txt")
    with pytest.raises(ValueError, match="fmt"):
        datasets.read_labeled_text(path, fmt="json")


def test_invalid_utf8_lines_are_decoded_as_cp1252_and_reported(tmp_path):
    lines = [
        b"0 plain ascii",
        "1 déjà vu in utf-8".encode(),
        b"0 caf\xe9 \x93quoted\x94 \x85",  # cp1252
        b"1 undefined \x81 byte",  # 0x81 is undefined in cp1252: Latin-1
        "0 more ascii \u2028 with a line separator".encode("utf-8"),
    ]
    path = _write(tmp_path, b"\n".join(lines) + b"\n")
    with pytest.warns(datasets.DataWarning, match=r"data\.txt: 2 line\(s\).*lines 3, 4"):
        data = datasets.read_labeled_text(path)
    assert len(data) == 5  # a U+2028 or a 0x85 byte does not split a line
    assert data.texts[1] == "déjà vu in utf-8"
    assert data.texts[2] == "café \u201cquoted\u201d \u2026"
    assert data.texts[3] == "undefined \x81 byte"
    assert data.n_repaired == 2
    assert data.repaired_lines == [3, 4]


def test_mr_file_gives_every_line_as_an_example():
    _need("rt-polarity.all")
    with pytest.warns(datasets.DataWarning, match="rt-polarity.all"):
        data = datasets.read_labeled_text(DATA_DIR / "rt-polarity.all")
    assert len(data.texts) == len(data.labels) == 10662
    assert set(data.labels) == {"0", "1"}
    assert data.n_repaired == len(data.repaired_lines) > 0
    raw_lines = (DATA_DIR / "rt-polarity.all").read_bytes().split(b"\n")
    for lineno in data.repaired_lines[:20]:
        with pytest.raises(UnicodeDecodeError):
            raw_lines[lineno - 1].decode("utf-8")


# ---------------------------------------------------------------------------
# read_labeled_text: TSV and CSV
# ---------------------------------------------------------------------------


def test_tsv_with_header(tmp_path):
    path = _write(tmp_path, b'id\ttext\tlabel\n1\ta "quoted" film\tpos\n2\t\tneg\r\n')
    data = datasets.read_labeled_text(path, fmt="tsv")
    assert data.texts == ['a "quoted" film', ""]
    assert data.labels == ["pos", "neg"]


def test_csv_with_quotes_commas_and_custom_columns(tmp_path):
    content = 'sentence,y\n"hello, world",1\n"two\nlines",0\nplain,1\n'
    path = _write(tmp_path, content.encode("utf-8"))
    data = datasets.read_labeled_text(path, fmt="csv", text_column="sentence", label_column="y")
    assert data.texts == ["hello, world", "two\nlines", "plain"]
    assert data.labels == ["1", "0", "1"]

    path = _write(tmp_path, b"label;text\n1;a\n", "semi.csv")
    assert datasets.read_labeled_text(path, fmt="csv", delimiter=";").texts == ["a"]


def test_table_errors_name_file_and_line(tmp_path):
    path = _write(tmp_path, b"text\tlabel\na\t1\nb\t0\textra\n")
    with pytest.raises(
        datasets.DataFormatError, match=r"data\.txt, line 3: 3 field\(s\), expected 2"
    ):
        datasets.read_labeled_text(path, fmt="tsv")

    path = _write(tmp_path, b"text\tlabel\na\t1\n\nb\t0\n")
    with pytest.raises(datasets.DataFormatError, match=r"line 3: empty line"):
        datasets.read_labeled_text(path, fmt="tsv")

    path = _write(tmp_path, b"sentence,label\nx,1\n")
    with pytest.raises(datasets.DataFormatError, match=r"line 1: header has no column 'text'"):
        datasets.read_labeled_text(path, fmt="csv")

    path = _write(tmp_path, b'text,label\n"open quote,1\n')
    with pytest.raises(datasets.DataFormatError, match=r"line 2"):
        datasets.read_labeled_text(path, fmt="csv")


def test_tsv_repairs_cp1252_lines(tmp_path):
    path = _write(tmp_path, b"text\tlabel\nna\xefve\t1\n")
    with pytest.warns(datasets.DataWarning, match="1 line"):
        data = datasets.read_labeled_text(path, fmt="tsv")
    assert data.texts == ["naïve"] and data.repaired_lines == [2]


# ---------------------------------------------------------------------------
# Generated data
# ---------------------------------------------------------------------------


def test_make_xor_four_corners():
    X, y = datasets.make_xor()
    assert X.dtype == np.float64 and X.shape == (4, 2)
    np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(y, [0, 1, 1, 0])
    assert np.issubdtype(y.dtype, np.integer)


def test_make_xor_noisy_repeats_corners():
    X, y = datasets.make_xor(400, noise=0.1, random_state=3)
    assert X.shape == (400, 2)
    assert np.bincount(y).tolist() == [200, 200]
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])[np.arange(400) % 4]
    residual = X - corners
    assert 0.08 < residual.std() < 0.12
    np.testing.assert_array_equal(y, np.logical_xor(corners[:, 0], corners[:, 1]))
    X2, _ = datasets.make_xor(400, noise=0.1, random_state=3)
    np.testing.assert_array_equal(X, X2)
    X3, _ = datasets.make_xor(400, noise=0.1, random_state=4)
    assert not np.array_equal(X, X3)
    X4, _ = datasets.make_xor(8, noise=0.1, random_state=np.random.default_rng(3))
    np.testing.assert_array_equal(X4, X[:8])


def test_make_xor_errors():
    with pytest.raises(ValueError, match="noise"):
        datasets.make_xor(4, noise=-1)
    with pytest.raises(ValueError, match="n_samples"):
        datasets.make_xor(0)
    with pytest.raises(TypeError, match="n_samples"):
        datasets.make_xor(4.0)
    with pytest.raises(TypeError, match="random_state"):
        datasets.make_xor(8, noise=0.1, random_state="seed")


def _negation_parts(text):
    words = text.split()
    positive = any(w in datasets._POSITIVE for w in words)
    negative = any(w in datasets._NEGATIVE for w in words)
    negated = any(w in datasets._NEGATORS for w in words)
    return positive, negative, negated, words


def test_negation_text_label_is_xor_of_polarity_and_negation():
    texts, y = datasets.make_negation_text(2000, random_state=0)
    assert len(texts) == 2000 and y.shape == (2000,)
    flags = np.array([_negation_parts(t)[:3] for t in texts])
    assert np.all(flags[:, 0] ^ flags[:, 1])  # exactly one sentiment word
    np.testing.assert_array_equal(y, flags[:, 0] ^ flags[:, 2])
    # negated and non-negated, positive and negative words: all about equally likely
    assert 0.45 < flags[:, 2].mean() < 0.55
    assert 0.45 < flags[:, 0].mean() < 0.55
    assert 0.45 < y.mean() < 0.55
    for text in texts:
        words = text.split()
        for i, w in enumerate(words):
            if w in datasets._NEGATORS:  # a negator comes before the sentiment word
                assert any(v in datasets._POSITIVE + datasets._NEGATIVE for v in words[i + 1 :])


def test_negation_text_words_are_balanced_across_classes():
    texts, y = datasets.make_negation_text(20000, random_state=1)
    per_class = [dict(), dict()]
    for text, label in zip(texts, y, strict=True):
        for w in set(text.split()):
            per_class[label][w] = per_class[label].get(w, 0) + 1
    n = np.bincount(y)
    for w in set(per_class[0]) | set(per_class[1]):
        p0 = per_class[0].get(w, 0) / n[0]
        p1 = per_class[1].get(w, 0) / n[1]
        assert abs(p0 - p1) < 0.03, w


def test_negation_text_is_reproducible():
    a = datasets.make_negation_text(50, random_state=5)
    b = datasets.make_negation_text(50, random_state=5)
    c = datasets.make_negation_text(50, random_state=6)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    assert a[0] != c[0]


def test_negation_text_defeats_linear_unigrams_but_not_a_nonlinear_model():
    pytest.importorskip("sklearn")
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    train_texts, y_train = datasets.make_negation_text(2000, random_state=0)
    test_texts, y_test = datasets.make_negation_text(1000, random_state=1)
    vectorizer = CountVectorizer(token_pattern=r"\S+").fit(train_texts)
    X_train = vectorizer.transform(train_texts)
    X_test = vectorizer.transform(test_texts)
    linear = LogisticRegression(max_iter=2000).fit(X_train, y_train)
    assert linear.score(X_test, y_test) <= 0.75
    # Binary unigram counts are the sum of one-hot unigram embeddings.
    mlp = MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=200, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(X_train, y_train)
    assert mlp.score(X_test, y_test) > 0.9


# ---------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------


def test_kfold_follows_the_protocol():
    n, k = 103, 10
    splits = datasets.kfold_indices(n, k, seed=0)
    assert len(splits) == k
    perm = np.random.default_rng(0).permutation(n)
    folds = np.array_split(perm, k)
    test_seen = np.zeros(n, int)
    dev_seen = np.zeros(n, int)
    for f, (train, dev, test) in enumerate(splits):
        np.testing.assert_array_equal(test, folds[f])
        np.testing.assert_array_equal(dev, folds[(f + 1) % k])
        assert sorted(np.concatenate([train, dev, test]).tolist()) == list(range(n))
        assert len(test) in (10, 11) and len(dev) in (10, 11)
        test_seen[test] += 1
        dev_seen[dev] += 1
    assert np.all(test_seen == 1) and np.all(dev_seen == 1)
    np.testing.assert_array_equal(splits[9][1], splits[0][2])  # fold 9's dev is fold 0


def test_kfold_seed_and_errors():
    a = datasets.kfold_indices(50, 5, seed=1)
    b = datasets.kfold_indices(50, 5, seed=2)
    assert not np.array_equal(a[0][2], b[0][2])
    with pytest.raises(ValueError, match="k must be"):
        datasets.kfold_indices(10, 2)
    with pytest.raises(ValueError, match="at least k"):
        datasets.kfold_indices(5, 10)
    with pytest.raises(ValueError, match="seed"):
        datasets.kfold_indices(10, 3, seed=-1)


def test_holdout_follows_the_protocol():
    train, dev = datasets.holdout_indices(5452, dev_fraction=0.1, seed=0)
    perm = np.random.default_rng(0).permutation(5452)
    assert len(dev) == 545 and len(train) == 5452 - 545
    np.testing.assert_array_equal(dev, perm[:545])
    np.testing.assert_array_equal(train, perm[545:])
    train, dev = datasets.holdout_indices(3, dev_fraction=0.01)
    assert len(dev) == 1 and len(train) == 2
    with pytest.raises(ValueError, match="dev_fraction"):
        datasets.holdout_indices(10, dev_fraction=1.0)


# ---------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------


def test_load_xor():
    splits = datasets.load("xor", seed=0)
    assert splits.name == "xor" and splits.n_classes == 2
    assert [len(part[1]) for part in (splits.train, splits.dev, splits.test)] == [200, 100, 400]
    assert splits.train[0].shape == (200, 2) and splits.train[0].dtype == np.float64
    again = datasets.load("xor", seed=0)
    np.testing.assert_array_equal(splits.test[0], again.test[0])
    other = datasets.load("xor", seed=1)
    assert not np.array_equal(splits.train[0], other.train[0])
    assert not np.array_equal(splits.train[0][:100], splits.dev[0])  # parts differ
    assert len(datasets.load("xor", n_samples=40).train[1]) == 40


def test_load_negation():
    splits = datasets.load("negation", seed=0, n_samples=100)
    assert len(splits.train[0]) == 100
    assert len(splits.dev[0]) == 1000 and len(splits.test[0]) == 1000
    assert isinstance(splits.test[0][0], str)
    assert splits.train[1].dtype == np.int64


def test_load_errors():
    with pytest.raises(ValueError, match=r"unknown data set 'imdb'.*'mr'.*'xor'"):
        datasets.load("imdb")
    with pytest.raises(FileNotFoundError, match="set data_dir"):
        datasets.load("mr")
    with pytest.raises(ValueError, match="fold must be 0"):
        datasets.load("sst2", fold=1)
    with pytest.raises(ValueError, match=r"fold must be an int in \[0, 10\)"):
        datasets.load("mr", fold=10)


def test_load_missing_file_names_data_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"stsa\.binary\.train not found; set data_dir"):
        datasets.load("sst2", data_dir=tmp_path)


def _fake_mr(tmp_path, n=40):
    lines = [f"{i % 2} review number {i}" for i in range(n)]
    (tmp_path / "rt-polarity.all").write_text("\n".join(lines) + "\n")
    return lines


def test_load_mr_folds_follow_kfold(tmp_path):
    lines = _fake_mr(tmp_path)
    for fold in (0, 3, 9):
        splits = datasets.load("mr", data_dir=tmp_path, fold=fold, seed=7)
        train_idx, dev_idx, test_idx = datasets.kfold_indices(40, 10, seed=0)[fold]
        assert splits.test[0] == [lines[i].split(" ", 1)[1] for i in test_idx]
        assert splits.dev[0] == [lines[i].split(" ", 1)[1] for i in dev_idx]
        np.testing.assert_array_equal(splits.train[1], train_idx % 2)
        assert splits.train[1].dtype == np.int64


def test_load_subsamples_training_part_only(tmp_path):
    _fake_mr(tmp_path)
    full = datasets.load("mr", data_dir=tmp_path)
    small = datasets.load("mr", data_dir=tmp_path, n_samples=10)
    assert len(small.train[0]) == 10
    assert set(small.train[0]) <= set(full.train[0])
    assert small.test[0] == full.test[0] and small.dev[0] == full.dev[0]


def test_load_keeps_string_labels(tmp_path):
    (tmp_path / "TREC.train.all").write_text("".join(f"L{i % 3} q {i}\n" for i in range(30)))
    (tmp_path / "TREC.test.all").write_text("L0 what ?\nL1 who ?\n")
    splits = datasets.load("trec", data_dir=tmp_path)
    assert splits.test[1].tolist() == ["L0", "L1"]
    assert len(splits.dev[0]) == 3 and len(splits.train[0]) == 27


def test_load_real_data_sets():
    _need(
        "rt-polarity.all",
        "stsa.binary.train",
        "stsa.binary.dev",
        "stsa.binary.test",
        "TREC.train.all",
        "TREC.test.all",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", datasets.DataWarning)
        mr = datasets.load("mr", data_dir=DATA_DIR, fold=0)
        sst = datasets.load("sst2", data_dir=DATA_DIR)
        trec = datasets.load("trec", data_dir=DATA_DIR)
    assert sum(len(p[0]) for p in (mr.train, mr.dev, mr.test)) == 10662
    assert [len(p[0]) for p in (mr.train, mr.dev, mr.test)] == [8528, 1067, 1067]
    assert [len(p[0]) for p in (sst.train, sst.dev, sst.test)] == [6920, 872, 1821]
    assert [len(p[0]) for p in (trec.train, trec.dev, trec.test)] == [4907, 545, 500]
    assert trec.n_classes == 6 and sorted(set(trec.train[1].tolist())) == list(range(6))


def test_datasets_table():
    assert set(datasets.DATASETS) == {"xor", "negation", "mr", "sst2", "trec"}
    assert datasets.DATASETS["trec"]["n_classes"] == 6
    assert datasets.DATASETS["sst2"]["files"] == (
        "stsa.binary.train",
        "stsa.binary.dev",
        "stsa.binary.test",
    )
    for info in datasets.DATASETS.values():
        assert {"files", "n_classes", "protocol"} <= set(info)


# ---------------------------------------------------------------------------
# download
# ---------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests = []

    def do_GET(self):
        type(self).requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = type("Handler", (_QuietHandler,), {"requests": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


PAYLOAD = b"1 a tiny archive stand-in\n" * 100
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_over_http_verifies_checksum(http_root, tmp_path):
    root, base, requests = http_root
    (root / "rt-polaritydata.tar.gz").write_bytes(PAYLOAD)
    dest = tmp_path / "dest"
    [path] = datasets.download("mr", dest, url=f"{base}/rt-polaritydata.tar.gz", sha256=PAYLOAD_SHA)
    assert path == dest / "rt-polaritydata.tar.gz"
    assert path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.iterdir()) == ["rt-polaritydata.tar.gz"]
    # present with the right checksum: not fetched again
    datasets.download("mr", dest, url=f"{base}/rt-polaritydata.tar.gz", sha256=PAYLOAD_SHA.upper())
    assert len(requests) == 1


def test_download_checksum_mismatch_keeps_nothing(http_root, tmp_path):
    root, base, _ = http_root
    (root / "file.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "dest"
    with pytest.raises(datasets.ChecksumError, match="checksum mismatch.*expected sha256 0{64}"):
        datasets.download("mr", dest, url=f"{base}/file.bin", sha256="0" * 64)
    assert list(dest.iterdir()) == []


def test_download_without_checksum_warns_with_digest(http_root, tmp_path):
    root, base, _ = http_root
    (root / "file.bin").write_bytes(PAYLOAD)
    with pytest.warns(datasets.DataWarning, match=PAYLOAD_SHA):
        [path] = datasets.download("anything", tmp_path / "d", url=f"{base}/file.bin")
    assert path.read_bytes() == PAYLOAD


def test_download_http_error_leaves_no_file(http_root, tmp_path):
    import urllib.error

    _, base, _ = http_root
    dest = tmp_path / "dest"
    with pytest.raises(urllib.error.HTTPError):
        datasets.download("mr", dest, url=f"{base}/missing.bin", sha256=PAYLOAD_SHA)
    assert list(dest.iterdir()) == []


def test_download_file_url(tmp_path):
    source = tmp_path / "src" / "TREC_10.label"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    [path] = datasets.download("trec", tmp_path / "out", url=source.as_uri(), sha256=PAYLOAD_SHA)
    assert path.name == "TREC_10.label" and path.read_bytes() == PAYLOAD


def test_download_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="generated"):
        datasets.download("xor", tmp_path)
    with pytest.raises(ValueError, match="unknown data set"):
        datasets.download("imdb", tmp_path)
    with pytest.raises(ValueError, match="64 hex"):
        datasets.download("mr", tmp_path, url="file:///x/y.bin", sha256="abc")
    with pytest.raises(ValueError, match="http, https or file"):
        datasets.download("mr", tmp_path, url="ftp://example.invalid/y.bin")
    with pytest.raises(ValueError, match="2 source files"):
        datasets.download("trec", tmp_path, sha256=PAYLOAD_SHA)
