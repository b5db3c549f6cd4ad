"""Tests of the ``cymlp`` command line (cymlp/cli.py)."""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cymlp import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRAIN_KEYS = {"config", "status", "error", "history", "dev_accuracy", "test_accuracy",
              "test_macro_f1", "train_seconds", "samples_per_s", "n_epochs",
              "cymlp_version"}


def run_cli(*args, cwd=None, timeout=120):
    """Run ``python -m cymlp.cli`` in a fresh process; return the completed process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "cymlp.cli", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, check=False, timeout=timeout)


def xor_train_args(tmp_path, *extra, activation="tanh", name="run"):
    return ["train", "--dataset", "xor", "--activation", activation, "--hidden", "8",
            "--lr", "0.03", "--epochs", "60", "--batch-size", "32", "--seed", "0",
            "--n-iter-no-change", "20", "--out", str(tmp_path / f"{name}.npz"),
            "--metrics", str(tmp_path / f"{name}.json"), *extra]


# ------------------------------------------------------------------ argument parsing

@pytest.mark.parametrize("text, expected", [
    ("256", (256,)), ("256,128", (256, 128)), (" 4 , 2 ", (4, 2)), ("64x64", (64, 64)),
])
def test_parse_hidden(text, expected):
    assert cli.parse_hidden(text) == expected


@pytest.mark.parametrize("text, match", [
    ("0", "must be >= 1"), ("16,-2", "must be >= 1"), ("a", "comma-separated integers"),
    ("", "comma-separated integers"),
])
def test_parse_hidden_rejects(text, match):
    with pytest.raises(argparse.ArgumentTypeError, match=match):
        cli.parse_hidden(text)


def test_train_rejects_bad_options(capsys):
    parser = cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--dataset", "xor", "--metrics", "m.json",
                           "--activation", "relux"])
    assert "invalid choice: 'relux'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--dataset", "xor", "--metrics", "m.json",
                           "--hidden", "0"])
    assert "must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--dataset", "xor", "--metrics", "m.json",
                           "--label-smoothing", "1.5"])
    assert "[0, 1)" in capsys.readouterr().err


def test_train_parses_every_documented_option():
    args = cli.build_parser().parse_args([
        "train", "--dataset", "mr", "--data-dir", "/data", "--fold", "3",
        "--activation", "sigmoid", "--bias", "hidden", "--hidden", "256,256",
        "--solver", "sgd", "--lr", "0.1", "--epochs", "7", "--batch-size", "32",
        "--seed", "5", "--label-smoothing", "0.1", "--encoder", "window",
        "--embed-dim", "50", "--threads", "2", "--out", "m.npz", "--metrics", "r.json"])
    assert (args.dataset, args.data_dir, args.fold) == ("mr", "/data", 3)
    assert (args.activation, args.bias, args.hidden) == ("sigmoid", "hidden", (256, 256))
    assert (args.solver, args.lr, args.epochs, args.batch_size) == ("sgd", 0.1, 7, 32)
    assert (args.seed, args.label_smoothing, args.encoder) == (5, 0.1, "window")
    assert (args.embed_dim, args.threads, args.out, args.metrics) == (50, 2, "m.npz",
                                                                      "r.json")


def test_train_parses_the_multilabel_and_embedding_options(capsys):
    parser = cli.build_parser()
    args = parser.parse_args([
        "train", "--train", "t.ft", "--holdout", "0.1", "--class-weight", "balanced",
        "--threshold", "0.3", "--pretrained-vectors", "v.vec", "--freeze-embeddings",
        "--n-buckets", "1000"])
    assert (args.class_weight, args.threshold, args.n_buckets) == ("balanced", 0.3, 1000)
    assert args.pretrained_vectors == os.path.abspath("v.vec") and args.freeze_embeddings
    options = {o.dest: o for o in cli.TRAIN_OPTIONS}
    assert options["freeze_embeddings"].param == "embed_trainable"
    assert options["freeze_embeddings"].value(True) is False
    for flag, value, message in (("--threshold", "1", "(0, 1)"),
                                 ("--threshold", "0", "(0, 1)"),
                                 ("--class-weight", "heavy", "invalid choice: 'heavy'"),
                                 ("--n-buckets", "0", ">= 1")):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "--dataset", "xor", flag, value])
        assert message in capsys.readouterr().err
    for flag, value in (("-k", "0"), ("--threshold", "1")):
        with pytest.raises(SystemExit):
            parser.parse_args(["predict", "--model", "m.npz", "in.txt", flag, value])
        capsys.readouterr()


@pytest.mark.parametrize("command", [[], ["train"], ["test"], ["evaluate"], ["predict"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: cymlp" in out
    if command:
        assert command[0] in out
    if command == ["train"]:
        for option in ("--dataset", "--activation", "--bias", "--hidden", "--solver",
                       "--lr", "--epochs", "--batch-size", "--seed", "--label-smoothing",
                       "--encoder", "--embed-dim", "--threads", "--out", "--metrics",
                       "--train", "--dev", "--test", "--format", "--text-column",
                       "--label-column", "--cv", "--fold", "--holdout"):
            assert option in out
        # the built-in data sets are listed from the registry, with their protocol
        from cymlp.datasets import DATASETS
        for name, info in DATASETS.items():
            assert f"{name} ({info['kind']}" in " ".join(out.split())


def test_module_entry_point():
    proc = run_cli("train", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: cymlp train" in proc.stdout
    proc = run_cli()
    assert proc.returncode == 2
    assert "train" in proc.stdout and "evaluate" in proc.stdout


# ------------------------------------------------------------------ helpers

def test_macro_f1_matches_hand_computation():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    # class 0: tp 1 fp 1 fn 1 -> 0.5; class 1: tp 2 fp 1 fn 0 -> 0.8; class 2: 1 0 1 -> 2/3
    assert cli.macro_f1(y_true, y_pred) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert cli.macro_f1([1, 1], [1, 1]) == 1.0
    assert cli.macro_f1([], []) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        cli.macro_f1([0, 1], [0])


def test_write_json_atomic_replaces_and_sanitises(tmp_path):
    path = tmp_path / "sub" / "record.json"
    cli.write_json_atomic(path, {"a": np.float32(0.5), "b": float("nan"),
                                 "c": np.arange(3), "d": (1, np.int64(2))})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": None, "c": [0, 1, 2],
                                            "d": [1, 2]}
    cli.write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["record.json"]


def test_write_json_atomic_keeps_old_file_on_error(tmp_path):
    path = tmp_path / "record.json"
    cli.write_json_atomic(path, {"a": 1})

    class Unserialisable:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cli.write_json_atomic(path, {"a": Unserialisable()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


# ------------------------------------------------------------------ train

def test_train_xor_writes_record_and_model(tmp_path):
    proc = run_cli(*xor_train_args(tmp_path, "--diagnostics"))
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "run.json").read_text())
    assert TRAIN_KEYS <= set(record)
    assert record["status"] == "ok" and record["error"] is None
    config = record["config"]
    assert config["dataset"] == "xor" and config["activation"] == "tanh"
    assert config["hidden"] == [8] and config["model"] == "MLPClassifier"
    assert record["n_epochs"] == len(record["history"]) >= 1
    first = record["history"][0]
    assert {"epoch", "loss", "train_accuracy", "val_accuracy"} <= set(first)
    assert "saturated" in first
    assert record["test_accuracy"] >= 0.95   # tanh with 8 units solves noisy XOR
    assert 0.0 <= record["test_macro_f1"] <= 1.0
    assert record["train_seconds"] > 0 and record["samples_per_s"] > 0
    assert (tmp_path / "run.npz").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "run.npz"]

    # the saved model scores the same through `evaluate`
    proc = run_cli("evaluate", "--model", str(tmp_path / "run.npz"), "--dataset", "xor",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["split"] == "test"
    assert result["accuracy"] == pytest.approx(record["test_accuracy"])
    assert result["macro_f1"] == pytest.approx(record["test_macro_f1"])

    # and `predict` labels the XOR corners
    corners = tmp_path / "corners.csv"
    corners.write_text("0,0\n0,1\n1,0\n1,1\n")
    proc = run_cli("predict", "--model", str(tmp_path / "run.npz"), str(corners))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "1", "1", "0"]


def test_train_is_deterministic(tmp_path):
    for name in ("a", "b"):
        proc = run_cli(*xor_train_args(tmp_path, activation="relu", name=name))
        assert proc.returncode == 0, proc.stderr
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["test_accuracy"] == b["test_accuracy"]
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]


def test_train_records_divergence_and_exits_zero(tmp_path, monkeypatch):
    import cymlp

    def diverge(self, X, y, validation_data=None):
        exc = FloatingPointError("training diverged at epoch 2: the loss became NaN")
        # a failed fit keeps nothing; its error carries the epochs trained before it
        exc.history = [{"epoch": 1, "loss": 0.7, "train_accuracy": 0.5,
                        "val_accuracy": 0.5}]
        raise exc

    monkeypatch.setattr(cymlp.MLPClassifier, "fit", diverge)
    code = cli.main(xor_train_args(tmp_path))
    assert code == 0
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["status"] == "diverged"
    assert "diverged at epoch 2" in record["error"]
    assert record["test_accuracy"] is None
    assert record["n_epochs"] == 1 and len(record["history"]) == 1
    assert not (tmp_path / "run.npz").exists()


def test_train_failure_is_recorded_with_exit_one(tmp_path):
    metrics = tmp_path / "run.json"
    proc = run_cli("train", "--dataset", "mr", "--data-dir", str(tmp_path / "missing"),
                   "--activation", "relu", "--hidden", "4", "--metrics", str(metrics))
    assert proc.returncode == 1
    record = json.loads(metrics.read_text())
    assert record["status"] == "failed"
    assert record["error"].startswith("FileNotFoundError")
    # a user mistake is one line naming the missing file, not a traceback
    assert "rt-polarity.all not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_honours_threads(tmp_path, monkeypatch):
    import threadpoolctl

    seen = []
    real = threadpoolctl.threadpool_limits

    def spy(limits=None, **kwargs):
        seen.append(limits)
        return real(limits=limits, **kwargs)

    monkeypatch.setattr(threadpoolctl, "threadpool_limits", spy)
    assert cli.main(xor_train_args(tmp_path, "--threads", "1")) == 0
    assert seen == [1]


def test_predict_text_model(tmp_path):
    import cymlp

    if not hasattr(cymlp, "TextClassifier"):
        pytest.skip("cymlp.TextClassifier is not available")
    proc = run_cli("train", "--dataset", "negation", "--activation", "relu",
                   "--hidden", "16", "--lr", "0.01", "--epochs", "5", "--embed-dim", "8",
                   "--batch-size", "64", "--out", str(tmp_path / "m.npz"),
                   "--metrics", str(tmp_path / "m.json"), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "m.json").read_text())["config"]["model"] == \
        "TextClassifier"
    texts = tmp_path / "texts.txt"
    texts.write_text("the film was good\nthe film was not good\nthe plot was bad\n")
    proc = run_cli("predict", "--model", str(tmp_path / "m.npz"), str(texts))
    assert proc.returncode == 0, proc.stderr
    labels = proc.stdout.split()
    assert len(labels) == 3 and set(labels) <= {"0", "1"}


def test_train_text_model_with_subwords(tmp_path, capsys):
    import cymlp

    parser = cli.build_parser()
    base = ["train", "--dataset", "negation", "--metrics", "m.json"]
    assert parser.parse_args(base).char_ngram_range is None
    assert parser.parse_args(base + ["--char-ngram-range", "none"]).char_ngram_range is None
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--char-ngram-range", "4,2"])
    assert "expected 1 <= MIN <= MAX, got '4,2'" in capsys.readouterr().err
    proc = run_cli("train", "--dataset", "negation", "--hidden", "8", "--epochs", "2",
                   "--embed-dim", "8", "--char-ngram-range", "2,4",
                   "--out", str(tmp_path / "m.npz"), "--metrics", str(tmp_path / "m.json"),
                   timeout=300)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "m.json").read_text())
    assert record["config"]["char_ngram_range"] == [2, 4]
    model = cymlp.load(tmp_path / "m.npz")
    assert model.char_ngram_range == (2, 4)
    assert model.vocabulary_.char_offset < len(model.vocabulary_)


@pytest.mark.parametrize("writer", ["record", "model"])
def test_a_failed_write_names_the_file_and_leaves_nothing_behind(tmp_path, monkeypatch,
                                                                  writer):
    """A full disk while writing a run record or a model: the error says which file
    could not be written and why, and no temporary file is left in the folder."""
    import errno

    from cymlp import MLPClassifier

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / ("run.json" if writer == "record" else "model.npz")
    if writer == "record":
        monkeypatch.setattr(cli.json, "dump", full_disk)
        call = lambda: cli.write_json_atomic(target, {"status": "ok"})
    else:
        model = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2)
        model._initialize(np.array([[0.0, 1.0], [1.0, 0.0]]), [0, 1])
        monkeypatch.setattr(np.lib.format, "write_array", full_disk)
        call = lambda: cli._save_model(model, target)
    with pytest.raises(OSError, match=rf"cannot write {target}: No space left") as info:
        call()
    assert info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ own data files

WORDS = {"pos": ["good", "great", "fine", "lovely", "superb"],
         "neg": ["bad", "awful", "poor", "dull", "weak"]}


def _texts(n, seed):
    """(texts, labels): short sentences whose sentiment word decides the label."""
    gen = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        word = WORDS[label][gen.integers(5)]
        texts.append(f"the film was {word} , really {word}")
        labels.append(label)
    return texts, labels


def _points(n, seed):
    gen = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = np.column_stack([2.0 * y - 1.0, 1.0 - 2.0 * y]) + 0.3 * gen.standard_normal((n, 2))
    return X, y


def _write_text_file(path, fmt, texts, labels):
    """``texts``/``labels`` in one of the text formats; CSV texts carry commas, doubled
    quotes and line breaks inside quoted fields."""
    if fmt == "label_text":
        path.write_text("".join(f"{y} {t}\n" for t, y in zip(texts, labels)))
    elif fmt == "fasttext":
        path.write_text("".join(f"__label__{y} {t}\n" for t, y in zip(texts, labels)))
    elif fmt == "csv":
        rows = ['"{}",{}'.format(t.replace(" , ", ', "so" ,\n').replace('"', '""'), y)
                for t, y in zip(texts, labels)]
        path.write_text("text,label\r\n" + "\r\n".join(rows) + "\r\n")
    elif fmt == "tsv":
        path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n"
                                for t, y in zip(texts, labels)))


def _write_numeric_file(path, fmt, X, y):
    if fmt == "numeric_csv":
        path.write_text("x1,x2,label\n" + "".join(f"{float(a)!r},{float(b)!r},{c}\n" for (a, b), c in zip(X, y)))
    elif fmt == "npz":
        with open(path, "wb") as fh:
            np.savez(fh, X=X, y=y)
    elif fmt == "parquet":
        pd = pytest.importorskip("pandas")
        pytest.importorskip("pyarrow")
        pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "label": y}).to_parquet(path)


FORMAT_CASES = [  # (format, file extension, kind)
    ("label_text", ".txt", "text"),
    ("fasttext", ".ft", "text"),
    ("csv", ".csv", "text"),
    ("tsv", ".tsv", "text"),
    ("jsonl", ".jsonl", "text"),
    ("numeric_csv", ".csv", "numeric"),
    ("npz", ".npz", "numeric"),
    ("parquet", ".parquet", "numeric"),
]


@pytest.mark.parametrize("fmt, ext, kind", FORMAT_CASES, ids=[c[0] for c in FORMAT_CASES])
def test_train_test_predict_round_trip_on_each_format(tmp_path, capsys, fmt, ext, kind):
    """Own files in every format: the format is guessed and said in the log and the
    record with each file's SHA-256; `test` scores the saved model exactly as the
    record did; `predict` gives one line per input line, in order."""
    import hashlib

    import cymlp

    files = {}
    for part, (n, seed) in {"train": (60, 0), "dev": (20, 1), "test": (20, 2)}.items():
        path = tmp_path / f"{part}{ext}"
        if kind == "text":
            _write_text_file(path, fmt, *_texts(n, seed))
        else:
            _write_numeric_file(path, fmt, *_points(n, seed))
        files[part] = path
    model, metrics = tmp_path / "model.npz", tmp_path / "run.json"
    code = cli.main(["train", "--train", str(files["train"]), "--dev", str(files["dev"]),
                     "--test", str(files["test"]), "--hidden", "8", "--epochs", "30",
                     "--embed-dim", "8", "--lr", "0.05", "--out", str(model),
                     "--metrics", str(metrics)])
    err = capsys.readouterr().err
    assert code == 0, err
    record = json.loads(metrics.read_text())
    assert record["status"] == "ok"
    assert record["config"]["model"] == ("TextClassifier" if kind == "text"
                                         else "MLPClassifier")
    data = record["data"]
    assert data["format"] == fmt and data["kind"] == kind
    for part, path in files.items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert data["sha256"][str(path)] == digest
        assert data["formats"][str(path)]["format"] == fmt
        assert data["formats"][str(path)]["reason"] != "given"   # it was guessed
        assert f"format {fmt} (" in err and digest in err          # and said in the log
    assert data["files"] == {part: str(path) for part, path in files.items()}
    assert record["test_accuracy"] >= 0.9

    assert cli.main(["test", "--model", str(model), str(files["test"]), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == pytest.approx(record["test_accuracy"])
    assert result["macro_f1"] == pytest.approx(record["test_macro_f1"])
    assert result["n_samples"] == 20 and sum(map(sum, result["confusion_matrix"])) == 20

    loaded = cymlp.load(model)
    inputs = tmp_path / "inputs.txt"
    if kind == "text":
        texts, _ = _texts(20, 2)
        inputs.write_text("\n".join(texts))                      # no final newline
        expected = [str(v) for v in loaded.predict(texts)]
    else:
        X, _ = _points(20, 2)
        inputs.write_text("x1,x2\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in X))
        expected = [str(v) for v in loaded.predict(X)]
    assert cli.main(["predict", "--model", str(model), str(inputs)]) == 0
    out = capsys.readouterr().out
    assert out.split("\n")[:-1] == expected and out.endswith("\n")


def test_train_on_svmlight_uses_the_sparse_matrix(tmp_path, capsys):
    import cymlp
    from cymlp import datasets

    path = tmp_path / "data.svm"
    path.write_text("".join(f"{i % 2} {1 + i % 2}:1.5 {3 + i % 4}:1\n" for i in range(40)))
    metrics, model = tmp_path / "run.json", tmp_path / "m.npz"
    code = cli.main(["train", "--train", str(path), "--holdout", "0.2", "--hidden", "4",
                     "--epochs", "40", "--lr", "0.05", "--metrics", str(metrics),
                     "--out", str(model)])
    assert code == 0, capsys.readouterr().err
    record = json.loads(metrics.read_text())
    assert record["status"] == "ok" and record["data"]["sparse"] is True
    assert record["data"]["format"] == "svmlight" and record["multilabel"] is False
    assert (record["n_train"], record["n_dev"], record["n_test"]) == (24, 8, 8)
    assert record["test_micro_f1"] == record["test_accuracy"]
    assert record["test_accuracy"] == 1.0  # feature 1 or 2 tells the class
    # predict reads svmlight rows (a label first is ignored, an empty line is a row)
    rows = tmp_path / "rows.svm"
    rows.write_text("1 2:1.5 4:1\n\n1:1.5 3:1 # comment\n")  # rows 1 and 0 of the file
    capsys.readouterr()
    assert cli.main(["predict", "--model", str(model), str(rows)]) == 0
    out = capsys.readouterr().out.split("\n")
    loaded = cymlp.load(model)
    X = datasets.read_file(path).X
    import scipy.sparse
    expected = loaded.predict(scipy.sparse.csr_matrix(
        ([1.5, 1.0, 1.5, 1.0], [1, 3, 0, 2], [0, 2, 2, 4]), shape=(3, X.shape[1])))
    assert out[:-1] == [str(v) for v in expected] and out[-1] == ""
    assert out[0] == "1" and out[2] == "0"
    # test on an svmlight file whose largest index is below the model's width
    narrow = tmp_path / "narrow.svm"
    narrow.write_text("0 1:1.5 3:1\n1 2:1.5\n")
    assert cli.main(["test", "--model", str(model), str(narrow), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_samples"] == 2 and result["format"] == "svmlight"
    assert result["accuracy"] == np.mean(loaded.predict(scipy.sparse.csr_matrix(
        ([1.5, 1.0, 1.5], [0, 2, 1], [0, 2, 3]), shape=(2, X.shape[1]))) == [0, 1])


def test_train_splits_one_file_by_cv_and_holdout(tmp_path, capsys):
    texts, labels = _texts(60, 0)
    path = tmp_path / "all.jsonl"
    _write_text_file(path, "jsonl", texts, labels)
    folds = []
    for fold in (0, 1):
        metrics = tmp_path / f"cv{fold}.json"
        assert cli.main(["train", "--train", str(path), "--cv", "5", "--fold", str(fold),
                         "--hidden", "4", "--epochs", "3", "--embed-dim", "4",
                         "--metrics", str(metrics)]) == 0
        data = json.loads(metrics.read_text())["data"]
        assert data["split"]["split"] == "cv" and data["split"]["fold"] == fold
        assert (data["n_train"], data["n_dev"], data["n_test"]) == (36, 12, 12)
        folds.append(data)
    metrics = tmp_path / "holdout.json"
    assert cli.main(["train", "--train", str(path), "--holdout", "0.25", "--hidden", "4",
                     "--epochs", "3", "--embed-dim", "4", "--data-seed", "3",
                     "--metrics", str(metrics)]) == 0
    data = json.loads(metrics.read_text())["data"]
    assert data["split"]["split"] == "holdout" and data["split"]["seed"] == 3
    assert (data["n_train"], data["n_dev"], data["n_test"]) == (30, 15, 15)
    capsys.readouterr()


TRAIN_MISTAKES = {  # id: (arguments, message excerpt)
    "no_dev_part": (["--train", "{tmp}/a.txt"],
                    "no dev data: give --dev FILE, --holdout FRACTION"),
    "cv_and_holdout": (["--train", "{tmp}/a.txt", "--cv", "3", "--holdout", "0.1"],
                       "--cv splits the --train"),
    "fold_without_cv": (["--train", "{tmp}/a.txt", "--holdout", "0.1", "--fold", "2"],
                        "--fold applies to --cv"),
    "dataset_and_train": (["--dataset", "xor", "--train", "{tmp}/a.txt"],
                          "--train applies to your own files"),
    "metrics_is_a_directory": (["--dataset", "xor", "--metrics", "{tmp}"],
                               "is a directory; give a file name"),
    "out_is_a_directory": (["--dataset", "xor", "--out", "{tmp}"],
                           "is a directory; give a file name"),
    "missing_file": (["--train", "{tmp}/missing.csv", "--holdout", "0.1"],
                     "missing.csv: data file not found"),
    "malformed_csv": (["--train", "{tmp}/bad.csv", "--holdout", "0.1"],
                      "bad.csv, line 3: 1 field(s)"),
    "no_data": ([], "no data: give --dataset NAME"),
}


@pytest.mark.parametrize("args, message", TRAIN_MISTAKES.values(), ids=TRAIN_MISTAKES)
def test_train_mistakes_are_one_line_and_exit_one(tmp_path, capsys, args, message):
    (tmp_path / "a.txt").write_text("1 good\n0 bad\n" * 10)
    (tmp_path / "bad.csv").write_text("text,label\na,1\nb\n")
    code = cli.main(["train", *[a.format(tmp=tmp_path) for a in args]])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("cymlp train: error: ")


def test_test_prints_precision_recall_and_confusion_matrix(tmp_path, capsys):
    texts, labels = _texts(60, 0)
    train = tmp_path / "train.txt"
    _write_text_file(train, "label_text", texts, labels)
    model = tmp_path / "m.npz"
    assert cli.main(["train", "--train", str(train), "--holdout", "0.2", "--hidden", "4",
                     "--epochs", "20", "--embed-dim", "8", "--out", str(model)]) == 0
    test = tmp_path / "test.txt"
    test.write_text("pos the film was good\npos the film was bad\nneg the film was bad\n"
                    "meh the film was fine\n")
    capsys.readouterr()
    assert cli.main(["test", "--model", str(model), str(test)]) == 0
    out = capsys.readouterr().out
    assert "accuracy  0.5000" in out
    assert "class  precision  recall  f1      support" in out
    assert "confusion matrix (rows: true label, columns: predicted label)" in out
    assert "labels the model does not know (always counted as errors): 'meh'" in out
    assert cli.main(["evaluate", "--model", str(model), str(test), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["classes"] == ["neg", "pos", "meh"]
    assert result["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 1, 0]]
    assert result["per_class"]["pos"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5,
                                          "support": 2}
    assert result["per_class"]["meh"]["precision"] is None     # never predicted
    numeric = tmp_path / "points.csv"
    numeric.write_text("x1,x2,label\n0,1,pos\n1,0,neg\n")
    assert cli.main(["test", "--model", str(model), str(numeric)]) == 1
    assert "TextClassifier, which takes texts, but the data hold numeric features" \
        in capsys.readouterr().err


def test_classification_report_compares_labels_as_written():
    report = cli.classification_report(np.array([0, 1, 1]), np.array(["0", "1", "0"]),
                                       classes=[0, 1])
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["confusion_matrix"] == [[1, 0], [1, 1]]
    assert report["per_class"]["1"]["recall"] == 0.5


# ------------------------------------------------------------------ predict, line by line

@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text_model")
    texts, labels = _texts(60, 0)
    train = folder / "train.txt"
    _write_text_file(train, "label_text", texts, labels)
    model = folder / "m.npz"
    assert cli.main(["train", "--train", str(train), "--holdout", "0.2", "--hidden", "4",
                     "--epochs", "5", "--embed-dim", "4", "--out", str(model)]) == 0
    return model


@pytest.fixture(scope="module")
def numeric_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("numeric_model")
    X, y = _points(60, 0)
    train = folder / "train.csv"
    _write_numeric_file(train, "numeric_csv", X, y)
    model = folder / "m.npz"
    assert cli.main(["train", "--train", str(train), "--holdout", "0.2", "--hidden", "4",
                     "--epochs", "5", "--out", str(model)]) == 0
    return model


#: Lines that some readers split or drop: each is still one input line.
ODD_LINES = [
    b"the film was good",
    b"",                                      # an empty line
    b"   \t  ",                               # only whitespace
    b"the film was bad\r",                    # CRLF
    "not good\u2028at all".encode(),          # LINE SEPARATOR inside a line
    "fine\u2029really\x85ok".encode(),        # PARAGRAPH SEPARATOR, NEL
    b"form\x0cfeed\x0bvertical\x1c\x1d\x1e",  # characters str.splitlines breaks at
    b"a lone\rcarriage return",               # CR without LF: not a line end
    b"caf\xe9 latin-1 bytes",                 # not UTF-8
    b"\xef\xbb\xbfa byte-order mark mid-file",
]


@pytest.mark.parametrize("final_newline", [True, False])
def test_predict_text_gives_one_line_per_input_line(tmp_path, capsysbinary, text_model,
                                                    final_newline):
    import cymlp

    path = tmp_path / "odd.txt"
    path.write_bytes(b"\n".join(ODD_LINES) + (b"\n" if final_newline else b""))
    assert cli.main(["predict", "--model", str(text_model), str(path), "--proba"]) == 0
    out = capsysbinary.readouterr().out.decode("utf-8")
    lines = out.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(ODD_LINES)
    assert len(out.splitlines()) == len(ODD_LINES)       # no hidden line breaks either
    model = cymlp.load(text_model)
    texts = [raw.rstrip(b"\r").decode("utf-8", errors="replace")
             .replace("\ufffd", "\xe9") for raw in ODD_LINES]
    expected = [str(v) for v in model.predict(texts)]
    assert [line.split("\t")[0] for line in lines[:-1]] == expected
    assert all(len(line.split("\t")) == 3 for line in lines[:-1])


def test_predict_reads_standard_input(text_model, capsys, monkeypatch):
    import io

    stdin = io.TextIOWrapper(io.BytesIO(b"good\n\nbad"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    assert cli.main(["predict", "--model", str(text_model), "-"]) == 0
    assert len(capsys.readouterr().out.split("\n")) == 4


def test_predict_of_an_empty_file_prints_nothing(tmp_path, capsys, text_model):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert cli.main(["predict", "--model", str(text_model), str(path)]) == 0
    assert capsys.readouterr().out == ""


def test_predict_numeric_rows_line_for_line(tmp_path, capsys, numeric_model):
    import cymlp

    path = tmp_path / "rows.csv"
    path.write_bytes(b"x1,x2,label\r\n1,-1,1\r\n-1,1,0\r\n.5, 2e-1 ,0\r\n-1,1,1")
    assert cli.main(["predict", "--model", str(numeric_model), str(path)]) == 0
    out = capsys.readouterr().out
    model = cymlp.load(numeric_model)
    X = np.array([[1, -1], [-1, 1], [0.5, 0.2], [-1, 1]], dtype=np.float32)
    assert out.split("\n") == [str(v) for v in model.predict(X)] + [""]
    path.write_text("1,-1\n-1,1\n")                   # no header
    assert cli.main(["predict", "--model", str(numeric_model), str(path)]) == 0
    assert len(capsys.readouterr().out.split("\n")) == 3


NUMERIC_ROWS = {  # id: (file content, message excerpt)
    "empty_line": ("1,-1\n\n-1,1\n", "line 2: empty line; a numeric model needs 2 numbers"),
    "whitespace_line": ("1,-1\n   \n", "line 2: empty line"),
    "not_a_number": ("1,-1\n1,abc\n", "line 2, column 2: 'abc' is not a number"),
    "empty_cell": ("1,-1\n1,\n", "line 2, column 2: an empty cell"),
    "nan": ("1,-1\n1,nan\n", "line 2, column 2: 'nan' is not a number"),
    "too_large_for_float32": ("1,-1\n1e39,1\n",
                              "line 2, column 1: 1e39 is too large for float32, the "
                              "model's dtype"),
    "too_large_for_float64": ("1,-1\n1e999,1\n",
                              "line 2, column 1: 1e999 is too large for float64"),
    "too_many_values": ("1,-1\n1,2,3\n", "line 2: 3 value(s), but the model takes 2"),
    "header_of_other_columns": ("x1,x2,x3\n1,2,3\n",
                                "line 1: the header names 3 feature column(s) (x1, x2, x3)"),
    "row_shorter_than_header": ("x1,x2,label\n1,2\n",
                                "line 2: 2 value(s), but the header has 3"),
}


@pytest.mark.parametrize("content, message", NUMERIC_ROWS.values(), ids=NUMERIC_ROWS)
def test_predict_numeric_refuses_a_bad_row_naming_the_line(tmp_path, capsys,
                                                          numeric_model, content, message):
    path = tmp_path / "rows.csv"
    path.write_text(content)
    assert cli.main(["predict", "--model", str(numeric_model), str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""                             # nothing printed, nothing shifted
    assert captured.err.strip() == f"cymlp predict: error: {message}" or \
        message in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_predict_and_test_mistakes_are_one_line(tmp_path, capsys, text_model):
    texts = tmp_path / "t.txt"
    texts.write_text("good\n")
    cases = [
        (["predict", "--model", str(tmp_path / "none.npz"), str(texts)],
         "model file not found"),
        (["predict", "--model", str(texts), str(texts)], "t.txt"),
        (["predict", "--model", str(text_model), str(tmp_path / "absent.txt")],
         "absent.txt: No such file or directory"),
        (["test", "--model", str(text_model)], "no data: give a labelled data FILE"),
        (["test", "--model", str(text_model), str(texts), "--dataset", "xor"],
         "give either a data FILE or --dataset NAME"),
    ]
    for args, message in cases:
        assert cli.main(args) == 1, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1


def test_predict_escapes_line_breaks_inside_labels(tmp_path, capsys):
    from cymlp import TextClassifier

    texts, labels = _texts(40, 0)
    labels = ["good\nfilm" if y == "pos" else "bad\u2028film" for y in labels]
    model = TextClassifier((4,), embed_dim=4, max_iter=10, random_state=0)
    model.fit(texts, labels)
    path = tmp_path / "m.npz"
    model.save(path)
    inputs = tmp_path / "in.txt"
    inputs.write_text("the film was good\nthe film was bad\n")
    assert cli.main(["predict", "--model", str(path), str(inputs)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [r"good\nfilm", r"bad\u2028film"]


def test_record_holds_the_provenance(tmp_path):
    from cymlp import _build_info

    assert cli.main(xor_train_args(tmp_path, "--threads", "1")) == 0
    record = json.loads((tmp_path / "run.json").read_text())
    prov = record["provenance"]
    assert prov["cymlp_version"] == record["cymlp_version"]
    assert prov["build"]["commit"] == _build_info.COMMIT
    assert prov["numpy"] == np.__version__
    assert prov["threads"] == 1 and prov["cpu"]
    blas = [lib for lib in prov["blas"] if lib["user_api"] == "blas"]
    assert blas and blas[0]["num_threads"] == 1 and blas[0]["internal_api"]
    assert record["params"]["hidden_layer_sizes"] == [8]
    assert record["record_version"] == cli.RECORD_VERSION


def test_version_names_the_build_commit(capsys):
    from cymlp import _build_info

    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    if _build_info.COMMIT:
        assert _build_info.COMMIT[:12] in out


def test_the_console_script_is_not_shadowed_by_a_source_folder(tmp_path):
    """`python -m cymlp.cli` run from a folder holding an unbuilt copy of the sources
    imports that copy and fails; the message says what happened and how to fix it."""
    import shutil

    copy = tmp_path / "checkout"
    shutil.copytree(os.path.join(REPO, "cymlp"), copy / "cymlp",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # -S: no site-packages, so that an editable install's import hook cannot supply the
    # compiled modules the copy lacks (a regular install has no such hook)
    proc = subprocess.run([sys.executable, "-S", "-c", "import cymlp"], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert "cymlp's compiled extension is missing" in proc.stderr
    assert "pip install -e ." in proc.stderr


# ------------------------------------------------------------------ multi-label, top-k, new options

def _multilabel_rows(n, seed):
    """fastText lines with one or two of three labels; each label has words of its own."""
    rng = np.random.default_rng(seed)
    words = {"a": ["apple", "pear", "fig"], "b": ["car", "bus", "tram"],
             "c": ["red", "blue", "green"]}
    lines, gold = [], []
    for _ in range(n):
        labels = list(rng.choice(["a", "b", "c"], size=rng.integers(1, 3), replace=False))
        tokens = [str(rng.choice(words[label])) for label in labels for _ in range(3)]
        tokens += [str(rng.choice(["the", "of", "and"])) for _ in range(2)]
        rng.shuffle(tokens)
        lines.append(" ".join(f"__label__{label}" for label in labels) + " " + " ".join(tokens))
        gold.append(labels)
    return lines, gold


@pytest.fixture(scope="module")
def multilabel_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("multilabel")
    train_lines, _ = _multilabel_rows(240, 0)
    test_lines, test_gold = _multilabel_rows(40, 1)
    (folder / "train.ft").write_text("\n".join(train_lines) + "\n")
    (folder / "test.ft").write_text("\r\n".join(test_lines) + "\r\n")  # CRLF
    model, metrics = folder / "m.npz", folder / "run.json"
    assert cli.main(["train", "--train", str(folder / "train.ft"), "--test",
                     str(folder / "test.ft"), "--holdout", "0.1", "--hidden", "8",
                     "--embed-dim", "8", "--epochs", "15", "--threshold", "0.4",
                     "--out", str(model), "--metrics", str(metrics)]) == 0
    return folder, model, json.loads(metrics.read_text()), test_gold


def test_multilabel_report_matches_hand_computation():
    proba = np.array([[0.9, 0.6, 0.1],    # predicted {a, b}, true {a, b}: exact
                      [0.2, 0.7, 0.55],   # predicted {b, c}, true {c}
                      [0.3, 0.1, 0.2]])   # predicted {}, true {a, z}; z unknown
    report = cli.multilabel_report([["a", "b"], ["c"], ["a", "z"]], proba, ["a", "b", "c"],
                                   threshold=0.5, ks=(1, 2))
    # tp: a, b (row 0), c (row 1) = 3; fp: b (row 1) = 1; fn: a, z (row 2) = 2
    assert report["micro_precision"] == pytest.approx(3 / 4)
    assert report["micro_recall"] == pytest.approx(3 / 5)
    assert report["micro_f1"] == pytest.approx(6 / 9)
    assert report["subset_accuracy"] == pytest.approx(1 / 3) == report["accuracy"]
    # per label F1: a 2*1/(1+2) = 2/3, b 2*1/(2+1) = 2/3, c 1, z 0
    assert report["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1 + 0) / 4)
    # top 1: a (hit), b (miss), a (hit); top 2: + b (hit), c (hit), c (miss)
    assert report["precision_at_k"] == {"1": pytest.approx(2 / 3), "2": pytest.approx(4 / 6)}
    assert report["recall_at_k"] == {"1": pytest.approx(2 / 5), "2": pytest.approx(4 / 5)}
    assert report["unknown_labels"] == ["z"] and report["per_class"]["z"]["support"] == 1
    single = cli.multilabel_report(np.array([0, 1]), [[0.8, 0.1], [0.6, 0.7]], [0, 1])
    # row 0: {0} right; row 1: {0, 1} for {1}: tp 2, fp 1, fn 0
    assert single["subset_accuracy"] == 0.5 and single["micro_f1"] == pytest.approx(4 / 5)


def test_train_on_multilabel_fasttext_records_its_metrics(multilabel_run):
    import cymlp
    from cymlp import datasets

    folder, model, record, gold = multilabel_run
    assert record["status"] == "ok" and record["multilabel"] is True
    assert record["data"]["multilabel"] is True and record["n_test"] == 40
    assert record["config"]["threshold"] == 0.4 and record["params"]["threshold"] == 0.4
    loaded = cymlp.load(model)
    assert cli.is_multilabel_model(loaded) and sorted(loaded.classes_) == ["a", "b", "c"]
    X = datasets.read_file(folder / "test.ft").X
    proba = loaded.predict_proba(X)
    names = [str(c) for c in loaded.classes_]
    predicted = [{names[j] for j in range(3) if proba[i, j] >= 0.4} for i in range(40)]
    exact = np.mean([p == set(g) for p, g in zip(predicted, gold)])
    tp = sum(len(p & set(g)) for p, g in zip(predicted, gold))
    fp = sum(len(p - set(g)) for p, g in zip(predicted, gold))
    fn = sum(len(set(g) - p) for p, g in zip(predicted, gold))
    assert record["test_accuracy"] == pytest.approx(exact)
    assert record["test_micro_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    top1 = [names[j] for j in np.argmax(proba, axis=1)]
    assert record["test_precision_at_1"] == pytest.approx(
        np.mean([t in g for t, g in zip(top1, gold)]))
    assert record["test_accuracy"] > 0.5  # the words tell the labels


def test_test_prints_multilabel_metrics(multilabel_run, capsys):
    folder, model, record, _ = multilabel_run
    capsys.readouterr()
    assert cli.main(["test", "--model", str(model), str(folder / "test.ft"), "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "40 examples, multi-label (3 labels, threshold 0.4)" in out
    for name in ("subset accuracy", "micro-F1", "macro-F1", "P@1", "R@1", "P@2", "R@2"):
        assert name in out, name
    assert cli.main(["test", "--model", str(model), str(folder / "test.ft"), "-k", "2",
                     "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["multilabel"] is True and result["n_samples"] == 40
    assert result["subset_accuracy"] == pytest.approx(record["test_accuracy"])
    assert result["micro_f1"] == pytest.approx(record["test_micro_f1"])
    assert result["macro_f1"] == pytest.approx(record["test_macro_f1"])
    assert set(result["precision_at_k"]) == set(result["recall_at_k"]) == {"1", "2"}
    assert result["precision_at_k"]["1"] == pytest.approx(record["test_precision_at_1"])
    assert cli.main(["test", "--model", str(model), str(folder / "test.ft"),
                     "--threshold", "0.99", "--json"]) == 0
    strict = json.loads(capsys.readouterr().out)
    assert strict["threshold"] == 0.99
    # P@k ranks the labels whatever their probability; fewer labels reach 0.99
    assert strict["precision_at_k"]["1"] == result["precision_at_k"]["1"]
    assert strict["micro_recall"] < result["micro_recall"]


def test_predict_multilabel_label_sets_and_top_k(multilabel_run, capsys):
    import cymlp

    folder, model, _, _ = multilabel_run
    texts = ["apple pear fig", "car bus red blue", "", "the of and"]
    inputs = folder / "in.txt"
    inputs.write_text("\n".join(texts) + "\n")
    loaded = cymlp.load(model)
    proba = loaded.predict_proba(texts)
    names = [str(c) for c in loaded.classes_]
    capsys.readouterr()
    assert cli.main(["predict", "--model", str(model), str(inputs)]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert len(lines) == 5 and lines[-1] == ""
    for line, row in zip(lines, proba):
        assert set(filter(None, line.split("\t"))) == {n for n, p in zip(names, row)
                                                       if p >= 0.4}
    for extra, k, threshold in ((["-k", "2"], 2, 0.4), (["--threshold", "0.0"], 3, 0.0),
                                (["-k", "1", "--threshold", "0.999999"], 1, 0.999999)):
        assert cli.main(["predict", "--model", str(model), str(inputs), *extra]) == 0
        lines = capsys.readouterr().out.split("\n")
        assert len(lines) == 5 and lines[-1] == ""
        for line, row in zip(lines, proba):
            fields = line.split("\t") if line else []
            labels, probs = fields[0::2], [float(v) for v in fields[1::2]]
            expected = [n for n, p in sorted(zip(names, row), key=lambda t: -t[1])
                        if p >= threshold][:k]
            assert labels == expected, (extra, line)
            assert probs == sorted(probs, reverse=True)
            assert probs == pytest.approx([row[names.index(n)] for n in labels], rel=1e-5)


def test_predict_top_k_of_a_single_label_model(text_model, tmp_path, capsys):
    import cymlp

    inputs = tmp_path / "in.txt"
    inputs.write_text("the film was good\n\nbad\n")
    capsys.readouterr()
    assert cli.main(["predict", "--model", str(text_model), str(inputs), "-k", "2"]) == 0
    lines = capsys.readouterr().out.split("\n")[:-1]
    loaded = cymlp.load(text_model)
    proba = loaded.predict_proba(["the film was good", "", "bad"])
    assert len(lines) == 3
    for line, row in zip(lines, proba):
        fields = line.split("\t")
        assert len(fields) == 4 and fields[0] == str(loaded.classes_[np.argmax(row)])
        assert float(fields[1]) == pytest.approx(row.max(), rel=1e-5)
        assert float(fields[1]) >= float(fields[3])
    assert cli.main(["predict", "--model", str(text_model), str(inputs), "--threshold",
                     "0.999999"]) == 0
    assert capsys.readouterr().out == "\n\n\n"  # one (empty) line per input line
    labelled = tmp_path / "labelled.txt"
    labelled.write_text("pos the film was good\nneg bad\nmeh fine\n")
    assert cli.main(["test", "--model", str(text_model), str(labelled), "-k", "2",
                     "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["top_k_accuracy"] == {"2": pytest.approx(2 / 3)}  # 'meh' is unknown
    assert cli.main(["test", "--model", str(text_model), str(labelled), "-k", "1",
                     "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["top_k_accuracy"]["1"] == pytest.approx(result["accuracy"])


def test_train_records_class_weight_embeddings_and_buckets(tmp_path, capsys):
    import cymlp

    texts, labels = _texts(60, 0)
    train = tmp_path / "train.txt"
    _write_text_file(train, "label_text", texts, labels)
    vectors = tmp_path / "vectors.vec"
    vocab = sorted({w for t in texts for w in t.split()})
    rng = np.random.default_rng(0)
    table = {w: rng.normal(size=4).round(3) for w in vocab[: len(vocab) // 2]}
    vectors.write_text(f"{len(table)} 4\n" + "".join(
        w + " " + " ".join(repr(float(v)) for v in vec) + "\n" for w, vec in table.items()))
    model, metrics = tmp_path / "m.npz", tmp_path / "run.json"
    code = cli.main(["train", "--train", str(train), "--holdout", "0.2", "--hidden", "4",
                     "--epochs", "5", "--embed-dim", "4", "--ngram-range", "1,1",
                     "--class-weight", "balanced", "--pretrained-vectors", str(vectors),
                     "--freeze-embeddings", "--n-buckets", "64", "--out", str(model),
                     "--metrics", str(metrics)])
    assert code == 0, capsys.readouterr().err
    record = json.loads(metrics.read_text())
    config, params = record["config"], record["params"]
    assert config["class_weight"] == params["class_weight"] == "balanced"
    assert config["pretrained_vectors"] == params["pretrained_vectors"] == str(vectors)
    assert config["freeze_embeddings"] is True and params["embed_trainable"] is False
    assert config["n_buckets"] == params["n_buckets"] == 64
    assert 0 < record["pretrained_coverage"] <= 1
    loaded = cymlp.load(model)
    ids = loaded.vocabulary_.token_to_id
    found = [w for w in table if w in ids]
    assert len(found) >= 5
    for word in found:  # frozen: still exactly the file's vectors after training
        np.testing.assert_allclose(loaded.embeddings_[ids[word]], table[word], rtol=1e-6)
    # left out, the options take the estimator's defaults, recorded as such
    assert cli.main(["train", "--train", str(train), "--holdout", "0.2", "--hidden", "4",
                     "--epochs", "2", "--embed-dim", "4", "--metrics", str(metrics)]) == 0
    config = json.loads(metrics.read_text())["config"]
    assert config["class_weight"] is None and config["freeze_embeddings"] is False
    assert config["pretrained_vectors"] is None and config["threshold"] == 0.5


MULTILABEL_MISTAKES = {
    "single_label_model_on_multilabel_data": (
        ["test", "--model", "{text_model}", "{ml}"],
        "the data are multi-label (example 1 has the labels ['a', 'b']), but"),
    "class_weight_on_multilabel_data": (
        ["train", "--train", "{ml}", "--holdout", "0.3", "--epochs", "1",
         "--class-weight", "balanced"],
        "class_weight applies to single-label data, and these data are multi-label"),
    "proba_of_a_multilabel_model": (
        ["predict", "--model", "{ml_model}", "{texts}", "--proba"],
        "a multi-label model: use -k K or --threshold P"),
    "proba_with_k": (
        ["predict", "--model", "{text_model}", "{texts}", "--proba", "-k", "2"],
        "--proba prints every class's probability, -k and --threshold"),
    "threshold_of_a_single_label_test": (
        ["test", "--model", "{text_model}", "{single}", "--threshold", "0.5"],
        "--threshold applies to multi-label models"),
    "svmlight_index_beyond_the_model": (
        ["predict", "--model", "{numeric_model}", "{svm_wide}"],
        "line 2: feature index 3 is beyond the model's 2 features (indices 1 to 2)"),
    "svmlight_index_zero_one_based": (
        ["predict", "--model", "{numeric_model}", "{svm_zero}"],
        "line 1: feature index 0, but the indices are read as one-based"),
    "svmlight_not_index_value": (
        ["predict", "--model", "{numeric_model}", "{svm_bad}"],
        "line 1, feature 2: 'x' is not a number"),
}


@pytest.mark.parametrize("args, message", MULTILABEL_MISTAKES.values(),
                         ids=MULTILABEL_MISTAKES)
def test_multilabel_and_top_k_mistakes_are_one_line(tmp_path, capsys, text_model,
                                                     numeric_model, multilabel_run, args,
                                                     message):
    ml = tmp_path / "ml.ft"
    ml.write_text("__label__a __label__b good\n__label__a bad\n" * 5)
    single = tmp_path / "single.txt"
    single.write_text("pos good\nneg bad\n")
    texts = tmp_path / "t.txt"
    texts.write_text("good\n")
    files = {"svm_wide": "1:0.5\n2:1 3:1\n", "svm_zero": "0 0:1\n", "svm_bad": "1 2:x\n"}
    for name, content in files.items():
        (tmp_path / f"{name}.svm").write_text(content)
    names = {"text_model": text_model, "numeric_model": numeric_model,
             "ml_model": multilabel_run[1], "ml": ml, "single": single, "texts": texts,
             **{name: tmp_path / f"{name}.svm" for name in files}}
    code = cli.main([a.format(**names) for a in args])
    captured = capsys.readouterr()
    assert code == 1
    assert message in captured.err, captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert captured.err.strip().splitlines()[-1].startswith(f"cymlp {args[0]}: ")


def test_train_with_an_autotune_budget(tmp_path, capsys):
    """--autotune-budget SECONDS sets the estimator's autotune_budget: the search runs on
    the dev split, the options given with it are held fixed, the record keeps the
    search and the dev score of the chosen trial."""
    import cymlp

    args = cli.build_parser().parse_args(
        ["train", "--dataset", "negation", "--metrics", "m.json", "--autotune-budget", "2.5"])
    assert args.autotune_budget == 2.5
    code = cli.main(["train", "--dataset", "negation", "--embed-dim", "8",
                     "--autotune-budget", "3", "--out", str(tmp_path / "m.npz"),
                     "--metrics", str(tmp_path / "m.json")])
    assert code == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "m.json").read_text())
    assert record["status"] == "ok" and record["config"]["autotune_budget"] == 3.0
    search = record["autotune"]
    assert search["validation"] == "given" and search["trials"] == len(
        record["autotune_trials"]) >= 1
    assert record["dev_accuracy"] == search["best_dev_score"]
    assert all(t["params"]["embed_dim"] == 8 for t in record["autotune_trials"])
    assert record["train_seconds"] < 3 * 1.1 + 1.0
    assert record["test_accuracy"] > 0.5
    assert cymlp.load(tmp_path / "m.npz").embeddings_.shape[1] == 8
