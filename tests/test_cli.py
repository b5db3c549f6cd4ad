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


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["predict"]])
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
                       "--encoder", "--embed-dim", "--threads", "--out", "--metrics"):
            assert option in out


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
    assert "FileNotFoundError" in proc.stderr


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
