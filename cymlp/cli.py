"""Command-line interface: ``cymlp train``, ``cymlp test`` and ``cymlp predict``.

``train`` fits one model on a built-in data set (``--dataset``) or on the user's own
files (``--train``, with ``--dev``/``--test``, ``--cv`` or ``--holdout``), scores it on
the dev and test parts, saves it (``--out``) and writes one JSON run record
(``--metrics``, written atomically, so an interrupted run leaves either nothing or a
complete file)::

    {"record_version": 2, "config": {...}, "params": {...}, "data": {...},
     "status": "ok" | "diverged" | "failed", "error": str | null, "history": [...],
     "dev_accuracy": float, "test_accuracy": float, "test_macro_f1": float,
     "test_micro_f1": float, "multilabel": bool, "train_seconds": float,
     "samples_per_s": float, "n_epochs": int, "cymlp_version": str, "provenance": {...}}

For multi-label data (several labels per example: fastText lines with several
``__label__`` tags, JSON lists, svmlight ``L1,L2``) the model has a sigmoid output per
label; ``dev_accuracy`` and ``test_accuracy`` are then subset accuracies (the share of
examples whose predicted label set is exactly right), ``test_micro_f1`` and
``test_macro_f1`` are over the labels, and ``test_precision_at_1`` and
``test_recall_at_1`` are added. For single-label data ``test_micro_f1`` equals the
accuracy. svmlight files give sparse features, which MLPClassifier takes as they are.

``data`` says what the model saw: the files, their formats (and why a format was
chosen), their SHA-256 checksums and the split. ``provenance`` says what produced the
numbers: the cymlp version and the git commit it was built from, NumPy and SciPy, the
BLAS library and kernel, the CPU and the thread count.

A run whose training diverges (``FloatingPointError``) is recorded with status
``"diverged"`` and exits with code 0, so that one unstable configuration never stops a
sweep. A user mistake (a missing or malformed file, an invalid option) is one line on
stderr and exit code 1; ``train`` records it with status ``"failed"`` first when it can.

``test`` (``evaluate`` is another name for it) scores a saved model on a labelled file
or a built-in split: accuracy, macro-F1, per-class precision and recall, and the
confusion matrix; for a multi-label model subset accuracy, micro- and macro-F1, P@k and
R@k. ``predict`` prints exactly one line per input line: the label, the labels of a
multi-label model, or with ``-k``/``--threshold`` the top labels and their
probabilities.

The experiment workflow calls :func:`fit_and_score` for every run of a block; people use
the same code through the commands. Run ``cymlp COMMAND --help`` for the options.
"""

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import time
import traceback

import numpy as np

from cymlp import activations as _activations
from cymlp._mlp import SOLVERS as _SOLVERS
from cymlp._network import BIAS_PLACEMENTS
from cymlp.datasets import DATASETS, FORMATS
from cymlp.io import atomic_write, jsonable as _jsonable
from cymlp.text import ENCODERS

__all__ = ["build_parser", "check_params", "classification_report", "fit_and_score",
           "is_label_lists", "multilabel_report",
           "load_data", "macro_f1", "main", "make_estimator", "parse_hidden", "provenance",
           "write_json_atomic"]

ACTIVATIONS = _activations.NAMES
SOLVERS = tuple(_SOLVERS)

#: Version of the run-record layout written by :func:`fit_and_score`.
RECORD_VERSION = 2

#: Exceptions that mean the input or the options are wrong, not cymlp: reported as one
#: line (no traceback) with exit code 1.
USER_ERRORS = (OSError, ValueError, MemoryError, ImportError)


class UsageError(ValueError):
    """Options that do not fit together; the message says what to give instead."""


# --------------------------------------------------------------------------- parsing

def parse_hidden(text):
    """Parse hidden layer sizes written as ``"256"`` or ``"256,128"``.

    Parameters
    ----------
    text : str
        Comma-separated positive integers. ``"x"`` may be used instead of ``","``
        (``"64x64"``), the spelling used in run identifiers.

    Returns
    -------
    tuple of int
        The hidden layer sizes, one entry per hidden layer.

    Raises
    ------
    argparse.ArgumentTypeError
        If an entry is not a positive integer.
    """
    parts = [p.strip() for p in str(text).replace("x", ",").split(",")]
    sizes = []
    for part in parts:
        try:
            size = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"hidden sizes must be comma-separated integers, got {text!r}") from None
        if size < 1:
            raise argparse.ArgumentTypeError(
                f"every hidden size must be >= 1, got {size} in {text!r}")
        sizes.append(size)
    return tuple(sizes)


def _integer(text, minimum):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
    return value


def _positive_int(text):
    return _integer(text, 1)


def _non_negative_int(text):
    return _integer(text, 0)


def _number(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_float(text):
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _non_negative_float(text):
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _in_unit(closed_low):
    """An argparse type: a number in [0, 1) if ``closed_low``, else in (0, 1)."""
    def parse(text):
        value = _number(text)
        if not (0.0 <= value if closed_low else 0.0 < value) or not value < 1.0:
            raise argparse.ArgumentTypeError(
                f"expected a number in {'[' if closed_low else '('}0, 1), got {text!r}")
        return value
    return parse


_unit_float = _in_unit(closed_low=True)
_open_unit = _in_unit(closed_low=False)


def _file_path(text):
    """A file named on the command line, made absolute (the record says which file)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a file name")
    return os.path.abspath(os.path.expanduser(text))


def _batch_size(text):
    if text == "auto":
        return "auto"
    return _positive_int(text)


def _ngram_range(text):
    try:
        low, high = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected MIN,MAX (for example 1,2), got {text!r}") from None
    if not 1 <= low <= high:
        raise argparse.ArgumentTypeError(f"expected 1 <= MIN <= MAX, got {text!r}")
    return (low, high)


def _char_ngram_range(text):
    return None if text == "none" else _ngram_range(text)


def _dataset_help():
    lines = [f"{name} ({info['kind']}: {info['description']}; {info['protocol_text']})"
             for name, info in DATASETS.items()]
    text = ("a built-in data set: " + "; ".join(lines)
            + ". The files of mr, sst2 and trec are read from --data-dir")
    return text.replace("%", "%%")  # argparse formats help strings with %


def _add_builtin_arguments(group):
    group.add_argument("--dataset", metavar="NAME", choices=tuple(DATASETS),
                       help=_dataset_help())
    group.add_argument("--data-dir", default=None, metavar="DIR",
                       help="folder holding the files of the built-in data sets")
    group.add_argument("--fold", type=_non_negative_int, default=None,
                       help="cross-validation fold (with --cv, or a built-in data set "
                            "evaluated by cross-validation such as mr); default 0")
    group.add_argument("--data-seed", type=_non_negative_int, default=0,
                       help="seed of generated data and of --cv / --holdout splits; "
                            "default 0")


def _add_format_arguments(group):
    group.add_argument("--format", choices=tuple(FORMATS), default=None, metavar="FMT",
                       help="data file format, one of " + ", ".join(FORMATS)
                            + "; guessed from the name and content when left out")
    group.add_argument("--text-column", default=None, metavar="C",
                       help="column (CSV/TSV, Parquet) or key (JSON Lines) holding the "
                            "text; default 'text'")
    group.add_argument("--label-column", default=None, metavar="C",
                       help="column or key holding the label; default 'label' (for .npy, "
                            "a column index, default the last)")


class _Option:
    """A ``train`` option and the estimator parameter it sets."""

    def __init__(self, flag, param, type, help, *, group="training", choices=None,
                 metavar=None, text_only=False, record=None, value=None):
        self.flag, self.param, self.type, self.help = flag, param, type, help
        self.group, self.choices, self.metavar = group, choices, metavar
        self.text_only = text_only
        self.dest = flag[2:].replace("-", "_")
        #: the estimator parameter's value for the option's value (a flag that turns a
        #: default off, such as --freeze-embeddings, sets its parameter to False)
        self.value = value or (lambda v: v)
        #: how the parameter's value is written in the run record, under the option's name
        self.record = record or (lambda v: list(v) if isinstance(v, tuple) else v)


#: Every model and training option of ``train``: its flag, the estimator parameter it
#: sets, and whether it applies to text models only. Options the user leaves out are
#: not passed on, so the estimator's own defaults apply.
TRAIN_OPTIONS = (
    _Option("--activation", "activation", str, "hidden-unit activation", group="model",
            choices=ACTIVATIONS),
    _Option("--bias", "bias", str, "which layers have a bias", group="model",
            choices=BIAS_PLACEMENTS),
    _Option("--hidden", "hidden_layer_sizes", parse_hidden,
            "hidden layer sizes, comma-separated (256 or 256,256)", group="model"),
    _Option("--encoder", "encoder", str, "text: bag (mean of embeddings) or window "
            "(concatenated embeddings)", group="model", choices=ENCODERS, text_only=True),
    _Option("--embed-dim", "embed_dim", _positive_int, "text: embedding size",
            group="model", text_only=True),
    _Option("--window", "window", _positive_int,
            "text, window encoder: tokens per example", group="model", text_only=True),
    _Option("--ngram-range", "ngram_range", _ngram_range,
            "text: MIN,MAX word n-gram lengths", group="model", metavar="MIN,MAX",
            text_only=True),
    _Option("--char-ngram-range", "char_ngram_range", _char_ngram_range,
            "text, bag encoder: subword units, the MIN to MAX character n-grams of every "
            "word (3,5 say), or none", group="model", metavar="MIN,MAX", text_only=True),
    _Option("--min-count", "min_count", _positive_int,
            "text: minimum token count for the vocabulary", group="model", text_only=True),
    _Option("--n-buckets", "n_buckets", _positive_int,
            "text, bag encoder: hash word n-grams longer than one word (and subwords) into "
            "N shared rows, as fastText's -bucket does", group="model", metavar="N",
            text_only=True),
    _Option("--pretrained-vectors", "pretrained_vectors", _file_path,
            "text: start the embeddings from a word-vector file (fastText .vec or GloVe "
            ".txt; its vector size must equal --embed-dim)", group="model", metavar="FILE",
            text_only=True),
    _Option("--freeze-embeddings", "embed_trainable", bool,
            "text: keep the embeddings as initialised (with --pretrained-vectors, the "
            "pretrained vectors), training only the layers above", group="model",
            text_only=True, value=lambda v: not v, record=lambda v: not v),
    _Option("--dtype", "dtype", str, "floating-point precision", group="model",
            choices=("float32", "float64")),
    _Option("--solver", "solver", str, "optimiser", choices=SOLVERS),
    _Option("--lr", "learning_rate_init", _positive_float,
            "initial learning rate"),
    _Option("--epochs", "max_iter", _positive_int, "maximum number of epochs"),
    _Option("--batch-size", "batch_size", _batch_size,
            "minibatch size or 'auto' (min(200, n_samples))"),
    _Option("--seed", "random_state", _non_negative_int,
            "random seed of initialisation and shuffling (default 0)"),
    _Option("--label-smoothing", "label_smoothing", _unit_float,
            "label smoothing eps in [0, 1)"),
    _Option("--class-weight", "class_weight", str,
            "balanced: weight each example by n_samples / (n_classes * its class's count), "
            "so that every class weighs as much in the loss (single-label data)",
            choices=("balanced",)),
    _Option("--threshold", "threshold", _open_unit,
            "multi-label data: a label is predicted when its probability reaches P "
            "(default 0.5)", metavar="P"),
    _Option("--alpha", "alpha", _non_negative_float, "L2 penalty"),
    _Option("--momentum", "momentum", _unit_float,
            "sgd momentum (0 gives plain SGD)"),
    _Option("--tol", "tol", _non_negative_float, "improvement threshold for stopping"),
    _Option("--n-iter-no-change", "n_iter_no_change", _positive_int,
            "epochs without improvement of more than --tol before training stops"),
    _Option("--early-stopping", "early_stopping", bool,
            "hold out part of the training data and stop on its accuracy (data "
            "without a dev part; with one, the dev accuracy is used)"),
    _Option("--diagnostics", "diagnostics", bool,
            "record saturated / dead unit fractions and gradient norms per epoch"),
    _Option("--autotune-budget", "autotune_budget", _positive_float,
            "seconds: search the model's hyper-parameters (cymlp.autotune) on the dev "
            "split (3-fold cross-validation of train without one) for this long, then "
            "refit the best configuration on train and dev; the model options given "
            "with it are held fixed. The record gets the search (autotune, "
            "autotune_trials); its dev_accuracy is the chosen trial's, before the refit",
            metavar="SECONDS"),
)

#: estimator parameter -> the ``config`` key of the run record (the option's name)
_RECORD_NAMES = {o.param: o.dest for o in TRAIN_OPTIONS}


def build_parser():
    """Build the argument parser of the ``cymlp`` command.

    Returns
    -------
    argparse.ArgumentParser
        Parser with the sub-commands ``train``, ``test`` (alias ``evaluate``) and
        ``predict``.
    """
    parser = argparse.ArgumentParser(
        prog="cymlp",
        description="Train, test and apply cymlp MLP and text classifiers.")
    parser.add_argument("--version", action="store_true",
                        help="print the cymlp version (and the commit it was built from)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # ---- train
    train = sub.add_parser(
        "train", help="train one model and write its run record",
        description="Train one model on a data set's training part (the dev part chooses "
                    "the epoch kept), score it on dev and test, save it, and write the "
                    "run record as JSON. Numeric data use MLPClassifier, texts "
                    "TextClassifier. The data are a built-in set (--dataset) or your own "
                    "files (--train, and --dev/--test files, --cv K or --holdout "
                    "FRACTION for the parts that are not files).")
    data = train.add_argument_group("data")
    _add_builtin_arguments(data)
    data.add_argument("--train", metavar="FILE", default=None,
                      help="your own training file (any format of cymlp.datasets)")
    data.add_argument("--dev", metavar="FILE", default=None, help="dev file")
    data.add_argument("--test", metavar="FILE", default=None, help="test file")
    data.add_argument("--cv", type=_integer_at_least_3, default=None, metavar="K",
                      help="stratified K-fold cross-validation of the --train file: fold "
                           "--fold is the test part, the next fold the dev part")
    data.add_argument("--holdout", type=_open_unit, default=None, metavar="FRACTION",
                      help="take each of the dev and test parts that is not a file as a "
                           "stratified random FRACTION of the --train file")
    _add_format_arguments(data)
    groups = {"model": train.add_argument_group(
                  "model", "Options left out take the estimator's default "
                  "(MLPClassifier for numeric data, TextClassifier for text)."),
              "training": train.add_argument_group("training")}
    for option in TRAIN_OPTIONS:
        flags = ({"action": "store_true"} if option.type is bool
                 else {"type": option.type, "metavar": option.metavar})
        if option.choices:
            flags["choices"] = option.choices
        groups[option.group].add_argument(option.flag, dest=option.dest, default=None,
                                          help=option.help, **flags)
    run = train.add_argument_group("run")
    run.add_argument("--threads", type=_positive_int, default=1,
                     help="BLAS threads used for training; default 1")
    run.add_argument("--out", default=None, metavar="MODEL",
                     help="where to save the trained model (.npz); not saved if omitted")
    run.add_argument("--metrics", default=None, metavar="JSON",
                     help="where to write the run record (JSON); not written if omitted")
    run.add_argument("--verbose", action="store_true", default=None,
                     help="print progress per epoch")
    train.set_defaults(func=cmd_train)

    # ---- test (evaluate)
    test = sub.add_parser(
        "test", aliases=["evaluate"], help="score a saved model on labelled data",
        description="Load a saved model and score it on a labelled data file, or on a "
                    "split of a built-in data set (--dataset): accuracy, macro-F1, "
                    "per-class precision and recall, and the confusion matrix; for a "
                    "multi-label model subset accuracy, micro- and macro-F1, P@k and R@k "
                    "and per-label precision and recall. "
                    "'cymlp evaluate' is another name for this command.")
    test.add_argument("--model", required=True, help="saved model (.npz)")
    test.add_argument("file", metavar="FILE", nargs="?", default=None,
                      help="labelled data file (any format of cymlp.datasets)")
    group = test.add_argument_group("data")
    _add_builtin_arguments(group)
    group.add_argument("--split", default="test", choices=("train", "dev", "test"),
                       help="with --dataset: the split to score; default test")
    _add_format_arguments(group)
    test.add_argument("-k", type=_positive_int, default=None, metavar="K",
                      help="multi-label models: also print P@K and R@K (P@1 and R@1 are "
                           "always printed); single-label models: the top-K accuracy")
    test.add_argument("--threshold", type=_open_unit, default=None, metavar="P",
                      help="multi-label models: predict the labels whose probability "
                           "reaches P; default the model's threshold")
    test.add_argument("--json", action="store_true",
                      help="print the result as one JSON object")
    test.add_argument("--threads", type=_positive_int, default=1,
                      help="BLAS threads; default 1")
    test.set_defaults(func=cmd_test)

    # ---- predict
    predict = sub.add_parser(
        "predict", help="print the predicted label of every input line",
        description="Load a saved model and print exactly one line per input line, in "
                    "order: the predicted label (and with --proba the class "
                    "probabilities); for a multi-label model the predicted labels, "
                    "tab-separated (an empty line when none reaches the threshold); with "
                    "-k or --threshold the top labels, each followed by its probability. "
                    "Text models read one text per line (an empty line "
                    "is an empty text); numeric models read one row of numbers per line, "
                    "comma-separated (tab-separated for .tsv files), after an optional "
                    "header line of column names, which gives no output line. Use - for "
                    "standard input.")
    predict.add_argument("--model", required=True, help="saved model (.npz)")
    predict.add_argument("input", metavar="INPUT_FILE",
                         help="one text per line, or rows of numbers; - for stdin")
    predict.add_argument("--proba", action="store_true",
                         help="also print the class probabilities, tab-separated")
    predict.add_argument("--delimiter", default=None, metavar="D",
                         help="numeric models: the field separator ('tab' for a tab); "
                              "default ',' (a tab for .tsv and .tab files)")
    predict.add_argument("--label-column", default="label", metavar="C",
                         help="numeric models: a header column of this name is not a "
                              "feature and is left out; default 'label'")
    predict.add_argument("-k", type=_positive_int, default=None, metavar="K",
                         help="print the K most probable labels of every input, each "
                              "followed by its probability, tab-separated (fastText's "
                              "predict-prob); at most K, fewer with --threshold")
    predict.add_argument("--threshold", type=_unit_float, default=None, metavar="P",
                         help="with -k, or alone: print the labels whose probability "
                              "reaches P, each followed by its probability (an input "
                              "whose labels all fall below P gets an empty line); default "
                              "0 for single-label models, the model's threshold for "
                              "multi-label models")
    predict.add_argument("--svmlight", action="store_true", default=None,
                         help="numeric models: read every line as svmlight features, "
                              "[LABEL] INDEX:VALUE ... (a sparse row; the label, if any, is "
                              "ignored, an empty line is a row without features); implied "
                              "by the names .svm, .svmlight and .libsvm")
    predict.add_argument("--zero-based", action="store_true",
                         help="with svmlight input: indices start at 0 (default: at 1, "
                              "libsvm's convention), as in the files the model was "
                              "trained on")
    predict.add_argument("--threads", type=_positive_int, default=1,
                         help="BLAS threads; default 1")
    predict.set_defaults(func=cmd_predict)
    return parser


def _integer_at_least_3(text):
    return _integer(text, 3)


# --------------------------------------------------------------------------- metrics

def macro_f1(y_true, y_pred):
    """Unweighted mean of the per-class F1 scores.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.

    Returns
    -------
    float
        Macro-averaged F1 over the classes present in ``y_true`` or ``y_pred``; a class
        with no true and no predicted member does not count. 0.0 for empty input.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} vs "
                         f"{y_pred.shape}")
    if y_true.size == 0:
        return 0.0
    scores = []
    for label in np.union1d(y_true, y_pred):
        tp = np.sum((y_true == label) & (y_pred == label))
        fp = np.sum((y_true != label) & (y_pred == label))
        fn = np.sum((y_true == label) & (y_pred != label))
        denom = 2 * tp + fp + fn
        scores.append(2.0 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def classification_report(y_true, y_pred, classes=()):
    """Accuracy, macro-F1, per-class precision / recall / F1 and the confusion matrix.

    Labels are compared as text (``str``), the form in which data files write them, so
    a model trained on ``0``/``1`` read as integers scores a file whose labels are read
    as strings, and the other way round.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    classes : sequence, optional
        Labels listed first, in this order (the model's classes); labels found only in
        ``y_true`` follow.

    Returns
    -------
    dict
        ``n_samples``, ``accuracy`` (None without samples), ``macro_f1``, ``classes``
        (the row and column order), ``per_class`` (label -> precision, recall, f1,
        support; precision is None for a class never predicted), ``confusion_matrix``
        (rows: true label, columns: predicted label) and ``unknown_labels`` (labels
        of ``y_true`` that are not among ``classes``).
    """
    truth = [str(v) for v in np.asarray(y_true, dtype=object).tolist()]
    pred = [str(v) for v in np.asarray(y_pred, dtype=object).tolist()]
    if len(truth) != len(pred):
        raise ValueError(f"{len(truth)} true labels but {len(pred)} predictions")
    order = list(dict.fromkeys(str(c) for c in classes))
    unknown = sorted(set(truth) - set(order))
    order += unknown + sorted(set(pred) - set(order) - set(unknown))
    index = {label: i for i, label in enumerate(order)}
    matrix = np.zeros((len(order), len(order)), dtype=np.int64)
    for t, p in zip(truth, pred):
        matrix[index[t], index[p]] += 1
    per_class = {}
    for i, label in enumerate(order):
        tp = int(matrix[i, i])
        predicted = int(matrix[:, i].sum())
        support = int(matrix[i].sum())
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        f1 = (2 * tp / (predicted + support)) if predicted + support else None
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1,
                            "support": support}
    n = len(truth)
    return {
        "n_samples": n,
        "accuracy": float(np.trace(matrix) / n) if n else None,
        "macro_f1": macro_f1(np.array(truth, dtype=object), np.array(pred, dtype=object))
        if n else 0.0,
        "classes": order,
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "unknown_labels": unknown,
    }


def is_label_lists(y):
    """Whether ``y`` holds one list of labels per example (multi-label data, as
    :func:`cymlp.datasets.read_file` gives them)."""
    return isinstance(y, list) and len(y) > 0 and isinstance(y[0], (list, tuple))


def _label_sets(y):
    """Every example's labels as a set of str (a 1-D ``y``: one label each)."""
    if is_label_lists(y):
        return [{str(v) for v in labels} for labels in y]
    return [{str(v)} for v in np.asarray(y, dtype=object).tolist()]


def multilabel_report(y_true, proba, classes, threshold=0.5, ks=(1,)):
    """The scores of a multi-label model: subset accuracy, micro and macro F1, P@k, R@k.

    A label is predicted when its probability reaches ``threshold`` (the model's
    ``predict``); P@k and R@k look at the ``k`` most probable labels of every example
    whatever their probability, as fastText's ``test`` does. Labels are compared as
    text (``str``), like :func:`classification_report`; a true label the model does
    not know is never predicted, so it always counts as missed.

    Parameters
    ----------
    y_true : list of label lists, or array-like of shape (n_samples,)
        The labels of every example (a 1-D array: one label each).
    proba : array of shape (n_samples, n_labels)
        The probability of every label of ``classes``, as ``predict_proba`` gives.
    classes : sequence
        The model's labels, the columns of ``proba``.
    threshold : float, default=0.5
    ks : sequence of int, default=(1,)
        The k of P@k and R@k (at most the number of labels is taken).

    Returns
    -------
    dict
        ``n_samples``, ``multilabel`` (True), ``threshold``, ``accuracy`` and
        ``subset_accuracy`` (the share of examples whose predicted label set is exactly
        their true one), ``micro_precision``, ``micro_recall``, ``micro_f1`` (over all
        example-label pairs), ``macro_f1`` (the mean F1 of the labels that occur in the
        data or the predictions), ``precision_at_k`` and ``recall_at_k`` (k as str ->
        value: the share of the top-k labels that are true, and the share of the true
        labels among the top k), ``classes``, ``per_class`` (label -> precision, recall,
        f1, support) and ``unknown_labels``.
    """
    truth = _label_sets(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    names = [str(c) for c in classes]
    if proba.ndim != 2 or proba.shape != (len(truth), len(names)):
        raise ValueError(f"proba has shape {proba.shape}, expected ({len(truth)}, "
                         f"{len(names)}): one row per example, one column per label")
    n, m = proba.shape
    index = {label: j for j, label in enumerate(names)}
    Y = np.zeros((n, m), dtype=bool)
    missed = np.zeros(n, dtype=np.int64)  # true labels the model does not know
    unknown = set()
    for i, labels in enumerate(truth):
        for label in labels:
            if label in index:
                Y[i, index[label]] = True
            else:
                missed[i] += 1
                unknown.add(label)
    P = proba >= threshold
    tp_c, fp_c, fn_c = (Y & P).sum(axis=0), (~Y & P).sum(axis=0), (Y & ~P).sum(axis=0)
    tp, fp = int(tp_c.sum()), int(fp_c.sum())
    fn = int(fn_c.sum() + missed.sum())
    per_class, f1s = {}, []
    for j, label in enumerate(names):
        predicted, support = int(tp_c[j] + fp_c[j]), int(tp_c[j] + fn_c[j])
        f1 = 2 * int(tp_c[j]) / (predicted + support) if predicted + support else None
        per_class[label] = {"precision": int(tp_c[j]) / predicted if predicted else None,
                            "recall": int(tp_c[j]) / support if support else None,
                            "f1": f1, "support": support}
        if f1 is not None:
            f1s.append(f1)
    for label in sorted(unknown):
        support = sum(label in labels for labels in truth)
        per_class[label] = {"precision": None, "recall": 0.0, "f1": 0.0, "support": support}
        f1s.append(0.0)
    n_true = int(Y.sum() + missed.sum())
    order = np.argsort(-proba, axis=1, kind="stable")
    precision_at, recall_at = {}, {}
    for k in ks:
        top = min(int(k), m)
        hits = int(np.take_along_axis(Y, order[:, :top], axis=1).sum())
        precision_at[str(k)] = hits / (n * top) if n and top else None
        recall_at[str(k)] = hits / n_true if n_true else None
    subset = float(np.mean(np.all(P == Y, axis=1) & (missed == 0))) if n else None
    return {
        "n_samples": n,
        "multilabel": True,
        "threshold": float(threshold),
        "accuracy": subset,
        "subset_accuracy": subset,
        "micro_precision": tp / (tp + fp) if tp + fp else None,
        "micro_recall": tp / (tp + fn) if tp + fn else None,
        "micro_f1": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "precision_at_k": precision_at,
        "recall_at_k": recall_at,
        "classes": names + sorted(unknown),
        "per_class": per_class,
        "unknown_labels": sorted(unknown),
    }


def is_multilabel_model(model):
    """Whether a fitted estimator predicts several labels per example (sigmoid outputs)."""
    return getattr(model.network_, "output", "softmax") == "sigmoid"


# --------------------------------------------------------------------------- files

def write_json_atomic(path, record):
    """Write ``record`` as JSON to ``path`` atomically (:func:`cymlp.io.atomic_write`).

    Parameters
    ----------
    path : str or os.PathLike
        Destination. Its folder is created if missing.
    record : dict
        JSON-serialisable after :func:`_jsonable` conversion.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as fh:
        json.dump(_jsonable(record), fh, indent=1, allow_nan=False)
        fh.write("\n")


def _save_model(model, path):
    """Save ``model`` to ``path`` (atomic), creating the folder if needed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    model.save(path)


def _check_output_path(path, option):
    """A file we are going to write: not a directory, in a folder we can create."""
    if path is None:
        return
    if os.path.isdir(path):
        raise UsageError(f"{option} {path} is a directory; give a file name "
                         f"(for example {os.path.join(path, 'run.json' if option == '--metrics' else 'model.npz')})")
    parent = os.path.dirname(os.path.abspath(path))
    existing = parent
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"{option} {path}: {existing} is a file, not a folder")


def _threads(n):
    """Context manager limiting BLAS/OpenMP threads to ``n`` (needs threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional dependency: BLAS keeps its own thread setting
        print("cymlp: threadpoolctl is not installed; --threads is ignored",
              file=sys.stderr)
        return contextlib.nullcontext()
    return threadpool_limits(limits=n)


# --------------------------------------------------------------------------- provenance

def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def _blas_info():
    """The BLAS (and OpenMP) libraries loaded, as threadpoolctl sees them now."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    keys = ("user_api", "internal_api", "prefix", "version", "architecture",
            "threading_layer", "num_threads")
    return [{k: info.get(k) for k in keys if k in info} for info in threadpool_info()]


def build_info():
    """The git commit cymlp was built from, as ``setup.py`` recorded it at build time."""
    try:
        from cymlp import _build_info
    except ImportError:
        return {"commit": None, "dirty": None,
                "note": "cymlp/_build_info.py is missing: cymlp was not built by setup.py"}
    return {"commit": _build_info.COMMIT, "dirty": _build_info.DIRTY}


def provenance(threads=None):
    """What produced a run's numbers, for its record.

    Parameters
    ----------
    threads : int, optional
        The BLAS thread limit the run used.

    Returns
    -------
    dict
        ``cymlp_version``, ``build`` (commit and whether the tree was dirty, recorded
        at build time), ``python``, ``numpy``, ``scipy``, ``platform``, ``cpu``,
        ``n_cpus``, ``threads`` and ``blas`` (threadpoolctl's view of the loaded BLAS:
        library, version, kernel architecture, threads). Call it while the thread limit
        is in force to see the limited thread counts.
    """
    import scipy

    return {
        "cymlp_version": _version(),
        "build": build_info(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "n_cpus": os.cpu_count(),
        "threads": threads,
        "blas": _blas_info(),
    }


def _version():
    import cymlp
    return getattr(cymlp, "__version__", None)


# --------------------------------------------------------------------------- data

def _is_sparse(X):
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def _n_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _relative(path):
    """``path`` relative to the current folder when it lies below it (for messages)."""
    path = os.fspath(path)
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith(os.pardir) else rel


def load_data(source, log=None):
    """Train, dev and test parts of a run's data.

    Parameters
    ----------
    source : dict
        Either a built-in set, ``{"dataset": NAME, "data_dir": DIR, "fold": F,
        "seed": S}``, or files, ``{"train": FILE, "dev": FILE, "test": FILE,
        "format": FMT, "text_column": C, "label_column": C, "cv": K, "fold": F,
        "holdout": FRACTION, "seed": S, "name": NAME}``; missing keys take their
        defaults. Relative paths are resolved against the current folder.
    log : callable, optional
        Called with one line of text per file read (its format and why, its size and
        checksum) and for the split.

    Returns
    -------
    (Splits, dict)
        The parts, and the run record's ``data`` entry: name, kind, format and the
        reason per file, files by role, SHA-256 per file, the split, and the sizes.

    Raises
    ------
    UsageError
        For options that do not fit together.
    ValueError, OSError
        For files that cannot be read (``DataFormatError`` names the file and line).
    """
    from cymlp import datasets

    log = log or (lambda line: None)
    fold = source.get("fold")
    seed = source.get("seed", 0) or 0
    if source.get("dataset") is not None:
        if source.get("train") is not None:
            raise UsageError("give either --dataset or --train, not both")
        name = source["dataset"]
        info = DATASETS[name]
        splits = datasets.load(name, data_dir=source.get("data_dir"),
                               fold=0 if fold is None else fold, seed=seed)
        formats = {path: (info["format"], "the built-in data set's format")
                   for path in splits.sha256}
    else:
        train = source.get("train")
        if train is None:
            raise UsageError("no data: give --dataset NAME (a built-in set) or --train "
                             "FILE (your own data)")
        dev, test = source.get("dev"), source.get("test")
        cv, holdout = source.get("cv"), source.get("holdout")
        if cv is not None and (dev is not None or test is not None or holdout is not None):
            raise UsageError("--cv splits the --train file into train, dev and test parts: "
                             "give neither --dev, --test nor --holdout with it")
        if cv is None and fold not in (None, 0):
            raise UsageError("--fold applies to --cv (or a built-in data set evaluated by "
                             "cross-validation)")
        if cv is None and holdout is None:
            for role, path in (("dev", dev), ("test", test)):
                if path is None:
                    raise UsageError(f"no {role} data: give --{role} FILE, --holdout "
                                     "FRACTION (a share of the training file) or --cv K "
                                     "(cross-validation of the training file)")
        if holdout is not None and dev is not None and test is not None:
            raise UsageError("--holdout has nothing to take: --dev and --test files are "
                             "given")
        options = {k: source.get(k) for k in ("format", "text_column", "label_column")}
        formats = {}
        for role, path in (("train", train), ("dev", dev), ("test", test)):
            if path is None:
                continue
            absolute = str(datasets._absolute(path))
            if options["format"] is not None:
                formats[absolute] = (options["format"], "given")
            else:
                formats[absolute] = datasets.guess_format(
                    path, text_column=options["text_column"],
                    label_column=options["label_column"])
        splits = datasets.load_files(
            train, dev, test, format=options["format"],
            text_column=options["text_column"], label_column=options["label_column"],
            cv=cv, fold=0 if fold is None else fold, holdout=holdout, seed=seed,
            name=source.get("name"))
    roles = {str(v): k for k, v in splits.split.get("files", {}).items()}
    for path, digest in splits.sha256.items():
        fmt, reason = formats.get(path, (splits.format, "given"))
        role = roles.get(path, "data")
        log(f"{role} {_relative(path)}: format {fmt} ({reason}); sha256 {digest}")
    multilabel = is_label_lists(splits.train[1])
    sizes = {part: _n_rows(getattr(splits, part)[0]) for part in ("train", "dev", "test")}
    split = dict(splits.split)
    split.pop("files", None)
    log(f"split {split.get('split')}: {sizes['train']} train, {sizes['dev']} dev, "
        f"{sizes['test']} test examples, {splits.n_classes} "
        f"{'labels (multi-label)' if multilabel else 'classes'}"
        f"{', sparse features' if _is_sparse(splits.train[0]) else ''}")
    data = {
        "name": splits.name,
        "kind": splits.kind,
        "format": splits.format,
        "formats": {path: {"format": f, "reason": r} for path, (f, r) in formats.items()},
        "files": dict(splits.split.get("files", {})) or {
            roles.get(p, "data"): p for p in splits.sha256},
        "sha256": dict(splits.sha256),
        "split": split,
        "n_train": sizes["train"],
        "n_dev": sizes["dev"],
        "n_test": sizes["test"],
        "n_classes": int(splits.n_classes),
        "multilabel": multilabel,
        "sparse": _is_sparse(splits.train[0]),
    }
    return splits, data


# --------------------------------------------------------------------------- models

def _estimator_class(kind):
    import cymlp
    if kind not in ("text", "numeric"):
        raise ValueError(f"kind must be 'text' or 'numeric', got {kind!r}")
    return cymlp.TextClassifier if kind == "text" else cymlp.MLPClassifier


def estimator_parameters(kind):
    """The parameter names of the estimator for ``kind`` ('text' or 'numeric')."""
    return tuple(_estimator_class(kind)().get_params())


def make_estimator(kind, params):
    """The estimator for ``kind`` with ``params``; the others keep their defaults."""
    cls = _estimator_class(kind)
    unknown = sorted(set(params) - set(cls().get_params()))
    if unknown:
        raise ValueError(f"{cls.__name__} has no parameter {unknown[0]!r}")
    return cls(**params)


def check_params(kind, params):
    """Validate ``params`` as the estimator's ``fit`` would, before any data is read.

    Parameters
    ----------
    kind : {'text', 'numeric'}
    params : dict
        Estimator parameters (``learning_rate_init``, ``hidden_layer_sizes``, ...).

    Returns
    -------
    dict
        The validated settings (numbers converted, sequences made tuples).

    Raises
    ------
    ValueError
        With the estimator's message, e.g. ``ngram_range must have min_n <= max_n``.
    """
    model = make_estimator(kind, params)
    settings = model._validate_params()
    # A rule between two parameters that the estimator applies only once it has the
    # texts (TextEncoder.fit); checked here too so that a sweep refuses it up front.
    if kind == "text" and settings.get("encoder") == "window" \
            and settings.get("char_ngram_range") is not None:
        raise ValueError("char_ngram_range applies to the bag encoder only; set "
                         "char_ngram_range=None for encoder='window'")
    if settings.get("activation") is not None:
        if not _activations.info(settings["activation"]).trainable:
            raise ValueError(f"activation={settings['activation']!r} has no derivative, "
                             "so the network cannot be trained by backpropagation")
    return settings


def _record_config(params, data_source, model):
    """The run record's ``config``: the command's names for every option's value (given
    or the estimator's default), the data options and the estimator's name."""
    config = {k: v for k, v in data_source.items()}
    all_params = model.get_params()
    for option in TRAIN_OPTIONS:
        if option.param in all_params:
            config[option.dest] = option.record(all_params[option.param])
    config["model"] = type(model).__name__
    return config


def _class_weight_of_labels(weights, y):
    """A ``class_weight`` mapping keyed by the training labels themselves: a key is
    matched to the label written the same way, so ``{"1": 2.0}`` from a JSON run spec
    weighs the int label 1 of a data file (labels are compared as text, as by
    ``cymlp test``). Keys that match no label are kept, for the estimator to refuse."""
    if is_label_lists(y):
        return weights
    labels = {str(v): v for v in np.unique(np.asarray(y)).tolist()}
    return {labels.get(str(k), k): w for k, w in weights.items()}


def fit_and_score(splits, data, params, *, threads=1, out=None, data_source=None,
                  log=None, return_model=False):
    """Train one model on ``splits`` and return its run record.

    Errors of the run are recorded, not raised: a diverging loss gives status
    ``"diverged"``, any other exception status ``"failed"`` with the error's type and
    message (and, for exceptions that are not user errors, ``"traceback"``).

    Parameters
    ----------
    splits : cymlp.datasets.Splits
    data : dict
        The ``data`` entry :func:`load_data` returned.
    params : dict
        Estimator parameters; ``random_state`` defaults to 0.
    threads : int, default=1
        BLAS thread limit while training and scoring.
    out : str, optional
        Where to save the model (atomically) when training succeeds.
    data_source : dict, optional
        The data options, copied into ``config``.
    log : callable, optional
        Receives one line of text per step.
    return_model : bool, default=False
        Return the fitted estimator too (None unless the status is ``"ok"``).

    Returns
    -------
    dict, or (dict, estimator)
        The run record (see the module docstring).
    """
    log = log or (lambda line: None)
    params = dict(params)
    params.setdefault("random_state", 0)
    if isinstance(params.get("class_weight"), dict):
        params["class_weight"] = _class_weight_of_labels(params["class_weight"],
                                                         splits.train[1])
    model = None
    record = {
        "record_version": RECORD_VERSION,
        "config": dict(data_source or {}),
        "params": None,
        "data": data,
        "status": "failed",
        "error": None,
        "history": [],
        "dev_accuracy": None,
        "test_accuracy": None,
        "test_macro_f1": None,
        "test_micro_f1": None,
        "train_seconds": None,
        "samples_per_s": None,
        "n_epochs": 0,
        "multilabel": bool(data.get("multilabel")),
        "n_classes": data["n_classes"],
        "n_train": data["n_train"],
        "n_dev": data["n_dev"],
        "n_test": data["n_test"],
        "cymlp_version": _version(),
        "provenance": None,
    }
    try:
        model = make_estimator(splits.kind, params)
        record["config"] = _record_config(params, data_source or {}, model)
        record["params"] = model.get_params()
        if record["multilabel"] and params.get("class_weight") is not None:
            raise ValueError("class_weight applies to single-label data, and these data "
                             "are multi-label (several labels per example); leave it out")
        X_train, y_train = splits.train
        X_dev, y_dev = splits.dev
        X_test, y_test = splits.test
        validation = (X_dev, y_dev) if _n_rows(X_dev) else None
        with _threads(threads):
            record["provenance"] = provenance(threads)
            start = time.perf_counter()
            try:
                model.fit(X_train, y_train, validation_data=validation)
                record["history"] = list(model.history_)
            except FloatingPointError as exc:
                # the epochs before the divergence (the estimator keeps none of them)
                record["history"] = list(getattr(exc, "history", None) or [])
                raise
            finally:
                record["train_seconds"] = time.perf_counter() - start
                record["n_epochs"] = len(record["history"])
            record["status"] = "ok"
            if getattr(model, "autotune_budget", None) is not None:
                # the refit trained on dev too: its dev score is the search's
                record["autotune"] = model.autotune_summary_
                record["autotune_trials"] = model.autotune_records()
                record["dev_accuracy"] = record["autotune"]["best_dev_score"]
            elif validation is not None:
                record["dev_accuracy"] = float(model.score(X_dev, y_dev))
            if _n_rows(X_test) and is_multilabel_model(model):
                report = multilabel_report(y_test, model.predict_proba(X_test),
                                           model.classes_, threshold=model.threshold)
                record["test_accuracy"] = report["subset_accuracy"]
                record["test_macro_f1"] = report["macro_f1"]
                record["test_micro_f1"] = report["micro_f1"]
                record["test_precision_at_1"] = report["precision_at_k"]["1"]
                record["test_recall_at_1"] = report["recall_at_k"]["1"]
            elif _n_rows(X_test):
                y_pred = np.asarray(model.predict(X_test))
                y_test = np.asarray(y_test)
                record["test_accuracy"] = float(np.mean(y_pred == y_test))
                record["test_macro_f1"] = macro_f1(y_test, y_pred)
                # one true and one predicted label per example: micro-F1 is the accuracy
                record["test_micro_f1"] = record["test_accuracy"]
            coverage = getattr(model, "pretrained_coverage_", None)
            if coverage is not None:
                record["pretrained_coverage"] = float(coverage)
        record["n_epochs"] = int(record["n_epochs"] or getattr(model, "n_iter_", 0))
        if record["train_seconds"]:
            record["samples_per_s"] = (record["n_train"] * record["n_epochs"]
                                       / record["train_seconds"])
        if out:
            _save_model(model, out)
    except FloatingPointError as exc:
        record["status"] = "diverged"
        record["error"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - recorded, then reported by the caller
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, USER_ERRORS):
            record["traceback"] = traceback.format_exc()
    if record["provenance"] is None:
        record["provenance"] = provenance(threads)
    summary = record["status"]
    names = ((("dev_accuracy", "dev subset accuracy"),
              ("test_accuracy", "test subset accuracy"), ("test_micro_f1", "test micro-F1"),
              ("test_macro_f1", "test macro-F1")) if record["multilabel"] else
             (("dev_accuracy", "dev accuracy"), ("test_accuracy", "test accuracy"),
              ("test_macro_f1", "test macro-F1")))
    for key, name in names:
        if record[key] is not None:
            summary += f", {name} {record[key]:.4f}"
    if record["status"] != "failed":
        summary += f" ({record['n_epochs']} epochs, {record['train_seconds'] or 0:.2f} s)"
    if record["error"]:
        summary += f": {record['error']}"
    log(summary)
    if return_model:
        return record, (model if record["status"] == "ok" else None)
    return record


def _load_model(path):
    import cymlp
    return cymlp.load(path)


# --------------------------------------------------------------------------- commands

def _stderr_log(command):
    return lambda line: print(f"cymlp {command}: {line}", file=sys.stderr, flush=True)


def _data_source(args):
    """The data options of ``train``/``test`` as :func:`load_data` takes them."""
    if args.dataset is not None:
        for flag in ("train", "dev", "test", "cv", "holdout", "format", "text_column",
                     "label_column"):
            if getattr(args, flag, None) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} applies to your own files, "
                                 "not to --dataset")
        return {"dataset": args.dataset, "data_dir": args.data_dir, "fold": args.fold,
                "seed": args.data_seed}
    if getattr(args, "data_dir", None) is not None:
        raise UsageError("--data-dir applies to --dataset (a built-in data set)")
    return {k: v for k, v in {
        "train": args.train, "dev": args.dev, "test": args.test, "format": args.format,
        "text_column": args.text_column, "label_column": args.label_column,
        "cv": args.cv, "fold": args.fold, "holdout": args.holdout,
        "seed": args.data_seed}.items() if v is not None}


def cmd_train(args):
    """Run ``cymlp train``; returns the exit code."""
    log = _stderr_log("train")
    _check_output_path(args.metrics, "--metrics")
    _check_output_path(args.out, "--out")
    source = _data_source(args)
    params = {o.param: o.value(getattr(args, o.dest)) for o in TRAIN_OPTIONS
              if getattr(args, o.dest) is not None}
    if args.verbose:
        params["verbose"] = True
    try:
        splits, data = load_data(source, log=log)
    except USER_ERRORS as exc:
        if args.metrics:
            write_json_atomic(args.metrics, {
                "record_version": RECORD_VERSION, "config": dict(source), "params": None,
                "data": None, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                "history": [], "dev_accuracy": None, "test_accuracy": None,
                "test_macro_f1": None, "test_micro_f1": None, "train_seconds": None,
                "samples_per_s": None, "n_epochs": 0, "cymlp_version": _version(),
                "provenance": provenance(args.threads)})
        raise
    text_only = [o for o in TRAIN_OPTIONS if o.text_only and o.param in params]
    if splits.kind != "text" and text_only:
        log(f"note: {', '.join(o.flag for o in text_only)}: text data only, ignored for "
            "numeric data")
        params = {k: v for k, v in params.items() if k not in {o.param for o in text_only}}
    record = fit_and_score(splits, data, params, threads=args.threads, out=args.out,
                           data_source=source, log=log)
    if args.metrics:
        write_json_atomic(args.metrics, record)
    if record["status"] == "failed":
        if "traceback" in record:
            print(record["traceback"], file=sys.stderr, end="")
        return 1
    return 0


def _parts_of_model(model):
    import cymlp
    return "text" if isinstance(model, cymlp.TextClassifier) else "numeric"


def cmd_test(args):
    """Run ``cymlp test`` (``evaluate``); returns the exit code."""
    from cymlp import datasets

    model = _load_model(args.model)
    kind = _parts_of_model(model)
    if args.file is not None and args.dataset is not None:
        raise UsageError("give either a data FILE or --dataset NAME, not both")
    if args.file is not None:
        for flag in ("data_dir", "fold"):
            if getattr(args, flag) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} applies to --dataset")
        data = datasets.read_file(args.file, format=args.format,
                                  text_column=args.text_column,
                                  label_column=args.label_column)
        X, y = data.X, data.y
        where = {"file": str(data.path), "format": data.format,
                 "format_reason": data.format_reason, "sha256": data.sha256}
        data_kind = data.kind
    elif args.dataset is not None:
        source = _data_source(args)
        splits = datasets.load(args.dataset, data_dir=args.data_dir,
                               fold=args.fold or 0, seed=args.data_seed)
        X, y = getattr(splits, args.split)
        where = {"dataset": args.dataset, "fold": source["fold"] or 0, "split": args.split,
                 "sha256": dict(splits.sha256)}
        data_kind = splits.kind
    else:
        raise UsageError("no data: give a labelled data FILE, or --dataset NAME")
    if data_kind != kind:
        raise ValueError(f"{args.model} is a {type(model).__name__}, which takes "
                         f"{'texts' if kind == 'text' else 'numeric features'}, but the "
                         f"data hold {'texts' if data_kind == 'text' else 'numeric features'}")
    multilabel = is_multilabel_model(model)
    if is_label_lists(y) and not multilabel:
        i = next((i for i, labels in enumerate(y) if len(labels) > 1), 0)
        raise ValueError(f"the data are multi-label (example {i + 1} has the labels "
                         f"{[str(v) for v in y[i]]}), but {args.model} predicts one label "
                         "per example; score it on single-label data, or train a model on "
                         "multi-label data")
    X = _fit_width(X, model)
    with _threads(args.threads):
        if multilabel:
            threshold = model.threshold if args.threshold is None else args.threshold
            report = multilabel_report(y, model.predict_proba(X), model.classes_,
                                       threshold=threshold,
                                       ks=sorted({1} | ({args.k} if args.k else set())))
        else:
            if args.threshold is not None:
                raise UsageError("--threshold applies to multi-label models; this one "
                                 "predicts one label per example")
            y_pred = np.asarray(model.predict(X))
            report = classification_report(y, y_pred, classes=model.classes_)
            if args.k is not None:
                report["top_k_accuracy"] = {str(args.k): _top_k_accuracy(
                    y, model.predict_proba(X), model.classes_, args.k)}
    result = {"model": os.fspath(args.model), **where, **report}
    if args.json:
        print(json.dumps(_jsonable(result)))
        return 0
    print(_format_report(result))
    return 0


def _fit_width(X, model):
    """A sparse matrix narrower than the model's input (an svmlight file whose largest
    index is below the model's width) widened with empty columns; anything else as is."""
    width = getattr(model, "n_features_in_", None)
    if _is_sparse(X) and width is not None and X.shape[1] < width:
        import scipy.sparse
        X = scipy.sparse.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], width))
    return X


def _top_k_accuracy(y_true, proba, classes, k):
    """The share of examples whose label is among the ``k`` most probable (as text)."""
    names = np.array([str(c) for c in classes], dtype=object)
    top = names[np.argsort(-np.asarray(proba), axis=1, kind="stable")[:, :k]]
    truth = [str(v) for v in np.asarray(y_true, dtype=object).tolist()]
    return float(np.mean([t in set(row) for t, row in zip(truth, top)])) if truth else None


def _cell(value, digits=4):
    return "-" if value is None else f"{value:.{digits}f}"


def _format_report(result):
    """The result of ``cymlp test`` as a few aligned tables."""
    if "file" in result:
        title = f"{_relative(result['file'])} ({result['format']})"
    else:
        title = f"{result['dataset']} {result['split']} (fold {result['fold']})"
    if result.get("multilabel"):
        return _format_multilabel_report(title, result)
    lines = [f"{title}: {result['n_samples']} examples",
             f"accuracy  {_cell(result['accuracy'])}",
             f"macro-F1  {_cell(result['macro_f1'])}"]
    for k, value in (result.get("top_k_accuracy") or {}).items():
        lines.append(f"top-{k} accuracy  {_cell(value)}")
    lines.append("")
    classes = result["classes"]
    width = max([5] + [len(c) for c in classes])
    lines.append(f"{'class':<{width}}  precision  recall  f1      support")
    for label in classes:
        row = result["per_class"][label]
        lines.append(f"{label:<{width}}  {_cell(row['precision']):<9}  "
                     f"{_cell(row['recall']):<6}  {_cell(row['f1']):<6}  {row['support']}")
    lines += ["", "confusion matrix (rows: true label, columns: predicted label)"]
    cols = [max(len(c), len(str(max(result['confusion_matrix'][i][j]
                                    for i in range(len(classes))))))
            for j, c in enumerate(classes)]
    lines.append(" " * width + "  " + "  ".join(f"{c:>{w}}" for c, w in zip(classes, cols)))
    for label, row in zip(classes, result["confusion_matrix"]):
        lines.append(f"{label:<{width}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(row, cols)))
    if result["unknown_labels"]:
        shown = ", ".join(repr(v) for v in result["unknown_labels"][:5])
        lines.append(f"note: labels the model does not know (always counted as errors): "
                     f"{shown}{' ...' if len(result['unknown_labels']) > 5 else ''}")
    return "\n".join(lines)


def _format_multilabel_report(title, result):
    """The result of ``cymlp test`` for a multi-label model."""
    lines = [f"{title}: {result['n_samples']} examples, multi-label "
             f"({len(result['classes']) - len(result['unknown_labels'])} labels, "
             f"threshold {result['threshold']:g})",
             f"subset accuracy  {_cell(result['subset_accuracy'])}",
             f"micro-F1         {_cell(result['micro_f1'])}  (precision "
             f"{_cell(result['micro_precision'])}, recall {_cell(result['micro_recall'])})",
             f"macro-F1         {_cell(result['macro_f1'])}"]
    for k in result["precision_at_k"]:
        lines.append(f"P@{k:<14} {_cell(result['precision_at_k'][k])}  "
                     f"R@{k} {_cell(result['recall_at_k'][k])}")
    classes = result["classes"]
    width = max([5] + [len(c) for c in classes])
    lines += ["", f"{'label':<{width}}  precision  recall  f1      support"]
    for label in classes:
        row = result["per_class"][label]
        lines.append(f"{label:<{width}}  {_cell(row['precision']):<9}  "
                     f"{_cell(row['recall']):<6}  {_cell(row['f1']):<6}  {row['support']}")
    if result["unknown_labels"]:
        shown = ", ".join(repr(v) for v in result["unknown_labels"][:5])
        lines.append(f"note: labels the model does not know (always counted as missed): "
                     f"{shown}{' ...' if len(result['unknown_labels']) > 5 else ''}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- predict

def _input_lines(path):
    """The lines of ``path`` (``-``: standard input) as bytes, split at ``\\n`` only.

    A final line without a terminator is a line; a final terminator adds none. A
    carriage return before the ``\\n`` (CRLF files) is dropped, and so is a UTF-8
    byte-order mark at the start.
    """
    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as fh:
            data = fh.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _decode(raw):
    from cymlp._datafiles import _decode_line
    return _decode_line(raw, "utf-8")[0]


def _numeric_rows(lines, n_features, dtype, delimiter, label_column):
    """Rows of numbers, one per line, as a float64 array.

    A first line that is not all numbers is a header of column names: a column named
    ``label_column`` is left out, the others must be the model's features. Every
    problem is a ValueError naming the 1-based line (and column), raised before
    anything is predicted.
    """
    from cymlp._datafiles import _NUMBER

    limit = float(np.finfo(dtype).max)
    start, keep, width = 0, None, n_features
    if lines:
        header = [c.strip() for c in _decode(lines[0]).split(delimiter)]
        if not all(_NUMBER.match(c) for c in header):  # column names, not numbers
            start, width = 1, len(header)
            keep = [j for j, name in enumerate(header) if name != label_column]
            if len(keep) != n_features:
                raise ValueError(
                    f"line 1: the header names {len(keep)} feature column(s) "
                    f"({', '.join(header[j] for j in keep)}), but the model takes "
                    f"{n_features} features")
    rows = []
    for lineno, raw in enumerate(lines[start:], start=start + 1):
        text = _decode(raw)
        if not text.strip():
            raise ValueError(f"line {lineno}: empty line; a numeric model needs "
                             f"{n_features} numbers on every line")
        cells = [c.strip() for c in text.split(delimiter)]
        if len(cells) != width:
            what = "the header has" if keep is not None else "the model takes"
            raise ValueError(f"line {lineno}: {len(cells)} value(s), but {what} {width}")
        if keep is not None:
            cells = [cells[j] for j in keep]
        row = []
        for j, cell in enumerate(cells, start=1):
            if not _NUMBER.match(cell):
                what = "an empty cell" if not cell else f"{cell!r} is not a number"
                raise ValueError(f"line {lineno}, column {j}: {what}")
            value = float(cell)
            if not math.isfinite(value):
                raise ValueError(f"line {lineno}, column {j}: {cell} is too large for "
                                 "float64")
            if abs(value) > limit:
                raise ValueError(f"line {lineno}, column {j}: {cell} is too large for "
                                 f"{np.dtype(dtype).name}, the model's dtype")
            row.append(value)
        rows.append(row)
    return np.array(rows, dtype=np.float64).reshape(len(rows), n_features)


#: Characters that end a line for some readers (str.splitlines): escaped in the output
#: so that every prediction stays on one line.
_LINE_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}
_LINE_BREAKS.update({ord("\n"): "\\n", ord("\r"): "\\r"})


def _one_line(label):
    return str(label).translate(_LINE_BREAKS)


_SVMLIGHT_NAMES = (".svm", ".svmlight", ".libsvm")


def _svmlight_rows(lines, n_features, dtype, zero_based):
    """One sparse row per line, ``[LABEL] INDEX:VALUE ...`` (svmlight), as a CSR matrix.

    A first token without ``:`` is a label and is ignored; ``#`` starts a comment;
    ``qid:`` fields are ignored; an empty line is a row without features (it still gets
    its output line). Every problem is a ValueError naming the 1-based line.
    """
    import scipy.sparse

    from cymlp._datafiles import _NUMBER, _SVMLIGHT_INDEX

    limit = float(np.finfo(dtype).max)
    base = 0 if zero_based else 1
    indptr, indices, values = [0], [], []
    for lineno, raw in enumerate(lines, start=1):
        tokens = _decode(raw).split("#", 1)[0].split()
        if tokens and ":" not in tokens[0]:
            tokens = tokens[1:]  # the label
        row = {}
        for token in tokens:
            key, sep, value = token.partition(":")
            if not sep:
                raise ValueError(f"line {lineno}: {token!r} is not INDEX:VALUE")
            if key == "qid":
                continue
            if not _SVMLIGHT_INDEX.match(key):
                raise ValueError(f"line {lineno}: feature index {key!r} is not an integer")
            index = int(key) - base
            if index < 0:
                raise ValueError(f"line {lineno}: feature index 0, but the indices are "
                                 "read as one-based (libsvm's convention); give "
                                 "--zero-based for zero-based files")
            if index >= n_features:
                raise ValueError(f"line {lineno}: feature index {key} is beyond the "
                                 f"model's {n_features} features (indices "
                                 f"{base} to {n_features - 1 + base})")
            if not _NUMBER.match(value):
                raise ValueError(f"line {lineno}, feature {key}: {value!r} is not a number")
            number = float(value)
            if not math.isfinite(number) or abs(number) > limit:
                raise ValueError(f"line {lineno}, feature {key}: {value} is too large for "
                                 f"{np.dtype(dtype).name}, the model's dtype")
            if index in row:
                raise ValueError(f"line {lineno}: feature index {key} appears twice")
            row[index] = number
        for index in sorted(row):
            indices.append(index)
            values.append(row[index])
        indptr.append(len(indices))
    return scipy.sparse.csr_matrix(
        (np.array(values, dtype=np.float64), np.array(indices, dtype=np.int64),
         np.array(indptr, dtype=np.int64)), shape=(len(lines), n_features))


def _top_lines(model, X, k, threshold):
    """Lines of ``label<TAB>probability`` pairs, most probable first."""
    labels, probabilities = model.predict_topk(X, k=k, threshold=threshold)
    return ["\t".join(f"{_one_line(label)}\t{p:.6g}" for label, p in zip(row, row_p))
            for row, row_p in zip((r.tolist() for r in labels), probabilities)]


def cmd_predict(args):
    """Run ``cymlp predict``; returns the exit code."""
    model = _load_model(args.model)
    kind = _parts_of_model(model)
    multilabel = is_multilabel_model(model)
    top = args.k is not None or args.threshold is not None
    if top and args.proba:
        raise UsageError("--proba prints every class's probability, -k and --threshold "
                         "the top labels with theirs: give one or the other")
    if multilabel and args.proba:
        raise UsageError("a multi-label model: use -k K or --threshold P to print the "
                         "labels with their probabilities")
    svmlight = args.svmlight or str(args.input).lower().endswith(_SVMLIGHT_NAMES)
    if svmlight and kind == "text":
        raise UsageError("--svmlight applies to numeric models; this one takes texts")
    if args.zero_based and not svmlight:
        raise UsageError("--zero-based applies to svmlight input (--svmlight)")
    lines = _input_lines(args.input)
    if kind == "text":
        X = [_decode(line) for line in lines]
    elif svmlight:
        X = _svmlight_rows(lines, model.n_features_in_, getattr(model, "dtype", "float64"),
                           args.zero_based)
    else:
        delimiter = args.delimiter
        if delimiter is None:
            delimiter = "\t" if str(args.input).lower().endswith((".tsv", ".tab")) else ","
        elif delimiter == "tab":
            delimiter = "\t"
        X = _numeric_rows(lines, model.n_features_in_, getattr(model, "dtype", "float64"),
                          delimiter, args.label_column)
    if _n_rows(X) == 0:
        return 0
    with _threads(args.threads):
        if top:
            threshold = args.threshold
            if threshold is None:
                threshold = model.threshold if multilabel else 0.0
            k = args.k if args.k is not None else (len(model.classes_) if multilabel else 1)
            out = _top_lines(model, X, k, threshold)
        elif multilabel:
            classes = np.asarray(model.classes_)
            out = ["\t".join(_one_line(label) for label in classes[row != 0].tolist())
                   for row in np.asarray(model.predict(X))]
        else:
            labels = np.asarray(model.predict(X)).tolist()
            proba = model.predict_proba(X) if args.proba else None
            out = []
            for i, label in enumerate(labels):
                line = _one_line(label)
                if proba is not None:
                    line += "\t" + "\t".join(f"{p:.6g}" for p in proba[i])
                out.append(line)
    if len(out) != _n_rows(X):  # never print labels that could be shifted
        raise RuntimeError(f"{len(out)} predictions for {_n_rows(X)} inputs")
    sys.stdout.write("\n".join(out) + "\n")
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------- main

def _message(exc):
    """One line for a user error: the message, with the file for OS errors."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv=None):
    """Entry point of the ``cymlp`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        Process exit code: 0 on success, 1 for an error (one line on stderr), 2 for
        a command line that does not parse.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        info = build_info()
        commit = f" (commit {info['commit'][:12]}{', modified' if info.get('dirty') else ''})" \
            if info.get("commit") else ""
        print(f"{_version()}{commit}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    command = "test" if args.command == "evaluate" else args.command
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"cymlp {command}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        print(f"cymlp {command}: error: {_message(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
