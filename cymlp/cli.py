"""Command-line interface: ``cymlp train``, ``cymlp evaluate`` and ``cymlp predict``.

The experiment workflow calls ``cymlp train`` once per run; people use the same
commands by hand. ``train`` writes one JSON record per run (written atomically, so an
interrupted run leaves either nothing or a complete file)::

    {"config": {...}, "status": "ok" | "diverged" | "failed", "error": str | null,
     "history": [...], "dev_accuracy": float, "test_accuracy": float,
     "test_macro_f1": float, "train_seconds": float, "samples_per_s": float,
     "n_epochs": int, "cymlp_version": str}

A run whose training diverges (``FloatingPointError``) is recorded with status
``"diverged"`` and exits with code 0, so that one unstable configuration never stops a
sweep. Any other error is recorded with status ``"failed"`` and exits with code 1.

Run ``cymlp COMMAND --help`` for the options of each command, or
``python -m cymlp.cli`` when the entry point is not installed.
"""

import argparse
import contextlib
import json
import math
import os
import sys
import time
import traceback

import numpy as np

from cymlp import activations as _activations
from cymlp._mlp import SOLVERS as _SOLVERS
from cymlp._network import BIAS_PLACEMENTS
from cymlp.io import atomic_write
from cymlp.text import ENCODERS

__all__ = ["build_parser", "macro_f1", "main", "parse_hidden", "write_json_atomic"]

ACTIVATIONS = _activations.NAMES
SOLVERS = tuple(_SOLVERS)


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


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _positive_float(text):
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _unit_float(text):
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


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


def _add_data_arguments(parser):
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", required=True,
                       help="dataset name: xor, negation (generated) or mr, sst2, trec "
                            "(read from --data-dir)")
    group.add_argument("--data-dir", default=None,
                       help="folder holding the files of the real datasets")
    group.add_argument("--fold", type=_non_negative_int, default=0,
                       help="cross-validation fold for datasets without a given split "
                            "(mr); default 0")
    group.add_argument("--data-seed", type=int, default=0,
                       help="seed of the data split / generated data; default 0")


class _Option:
    """A ``train`` option and the estimator parameter it sets."""

    def __init__(self, flag, param, type, help, *, group="training", choices=None,
                 metavar=None, text_only=False, record=None):
        self.flag, self.param, self.type, self.help = flag, param, type, help
        self.group, self.choices, self.metavar = group, choices, metavar
        self.text_only = text_only
        self.dest = flag[2:].replace("-", "_")
        #: how the value is written in the run record
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
    _Option("--dtype", "dtype", str, "floating-point precision", group="model",
            choices=("float32", "float64")),
    _Option("--solver", "solver", str, "optimiser", choices=SOLVERS),
    _Option("--lr", "learning_rate_init", _positive_float,
            "initial learning rate"),
    _Option("--epochs", "max_iter", _positive_int, "maximum number of epochs"),
    _Option("--batch-size", "batch_size", _batch_size,
            "minibatch size or 'auto' (min(200, n_samples))"),
    _Option("--seed", "random_state", int,
            "random seed of initialisation and shuffling (default 0)"),
    _Option("--label-smoothing", "label_smoothing", _unit_float,
            "label smoothing eps in [0, 1)"),
    _Option("--alpha", "alpha", float, "L2 penalty"),
    _Option("--momentum", "momentum", _unit_float,
            "sgd momentum (0 gives plain SGD)"),
    _Option("--tol", "tol", float, "improvement threshold for stopping"),
    _Option("--n-iter-no-change", "n_iter_no_change", _positive_int,
            "epochs without improvement of more than --tol before training stops"),
    _Option("--early-stopping", "early_stopping", bool,
            "hold out part of the training data and stop on its accuracy (datasets "
            "without a dev split; with one, the dev accuracy is used)"),
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


def build_parser():
    """Build the argument parser of the ``cymlp`` command.

    Returns
    -------
    argparse.ArgumentParser
        Parser with the sub-commands ``train``, ``evaluate`` and ``predict``.
    """
    parser = argparse.ArgumentParser(
        prog="cymlp",
        description="Train, evaluate and apply cymlp MLP and text classifiers.")
    parser.add_argument("--version", action="store_true",
                        help="print the cymlp version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # ---- train
    train = sub.add_parser(
        "train", help="train one model and write its run record",
        description="Train one model on a dataset's train split (dev split for model "
                    "selection), score it on dev and test, save it, and write the run "
                    "record as JSON. Dense datasets (xor) use MLPClassifier, text "
                    "datasets TextClassifier.")
    _add_data_arguments(train)
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
    run.add_argument("--out", default=None,
                     help="where to save the trained model (.npz); not saved if omitted")
    run.add_argument("--metrics", required=True,
                     help="where to write the run record (JSON)")
    run.add_argument("--verbose", action="store_true", default=None,
                     help="print progress per epoch")
    train.set_defaults(func=cmd_train)

    # ---- evaluate
    evaluate = sub.add_parser(
        "evaluate", help="score a saved model on a dataset split",
        description="Load a saved model and report its accuracy and macro-F1 on one "
                    "split of a dataset.")
    evaluate.add_argument("--model", required=True, help="saved model (.npz)")
    _add_data_arguments(evaluate)
    evaluate.add_argument("--split", default="test", choices=("train", "dev", "test"),
                          help="which split to score; default test")
    evaluate.add_argument("--json", action="store_true",
                          help="print the result as one JSON object")
    evaluate.add_argument("--threads", type=_positive_int, default=1,
                          help="BLAS threads; default 1")
    evaluate.set_defaults(func=cmd_evaluate)

    # ---- predict
    predict = sub.add_parser(
        "predict", help="print the predicted label of every input",
        description="Load a saved model and print one predicted label per input line. "
                    "Text models read one text per line; dense models read a CSV of "
                    "numbers (one example per row). Use - for standard input.")
    predict.add_argument("--model", required=True, help="saved model (.npz)")
    predict.add_argument("input", metavar="INPUT_FILE",
                         help="one text per line, or CSV rows of numbers; - for stdin")
    predict.add_argument("--proba", action="store_true",
                         help="also print the class probabilities, tab-separated")
    predict.add_argument("--threads", type=_positive_int, default=1,
                         help="BLAS threads; default 1")
    predict.set_defaults(func=cmd_predict)
    return parser


# --------------------------------------------------------------------------- helpers

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


def _jsonable(value):
    """Convert NumPy scalars/arrays and non-finite floats into strict JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


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


def _threads(n):
    """Context manager limiting BLAS/OpenMP threads to ``n`` (needs threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional dependency: BLAS keeps its own thread setting
        print("cymlp: threadpoolctl is not installed; --threads is ignored",
              file=sys.stderr)
        return contextlib.nullcontext()
    return threadpool_limits(limits=n)


def _load_splits(args):
    from cymlp import datasets
    return datasets.load(args.dataset, data_dir=args.data_dir, fold=args.fold,
                         seed=args.data_seed)


def _is_text(X):
    """True when ``X`` holds texts (a sequence of str) rather than a numeric array."""
    if isinstance(X, np.ndarray):
        return X.dtype.kind in "USO"
    return len(X) > 0 and isinstance(X[0], str)


def _n_rows(X):
    return X.shape[0] if isinstance(X, np.ndarray) else len(X)


def _make_model(args, text):
    """The estimator with the options the user gave; the others keep its defaults."""
    import cymlp
    options = {o.param: getattr(args, o.dest) for o in TRAIN_OPTIONS
               if getattr(args, o.dest) is not None and (text or not o.text_only)}
    options.setdefault("random_state", 0)
    if args.verbose:
        options["verbose"] = True
    return (cymlp.TextClassifier if text else cymlp.MLPClassifier)(**options)


def _config_of(args, model=None):
    """The run's configuration: the command's arguments, and once the estimator is
    made, the value every option takes (given or its default)."""
    config = {k: v for k, v in vars(args).items() if k not in ("func", "version")}
    for option in TRAIN_OPTIONS:
        if model is not None and option.param in model.get_params():
            config[option.dest] = option.record(model.get_params()[option.param])
        elif model is not None:
            config.pop(option.dest, None)  # a text option of a numeric model
        else:
            config[option.dest] = option.record(config[option.dest])
    return config


def _version():
    try:
        import cymlp
        return getattr(cymlp, "__version__", None)
    except ImportError:
        return None


# --------------------------------------------------------------------------- commands

def cmd_train(args):
    """Run ``cymlp train``; returns the exit code."""
    record = {
        "config": _config_of(args),
        "status": "failed",
        "error": None,
        "history": [],
        "dev_accuracy": None,
        "test_accuracy": None,
        "test_macro_f1": None,
        "train_seconds": None,
        "samples_per_s": None,
        "n_epochs": 0,
        "cymlp_version": _version(),
    }
    model = None
    code = 0
    try:
        splits = _load_splits(args)
        X_train, y_train = splits.train
        X_dev, y_dev = splits.dev
        X_test, y_test = splits.test
        text = _is_text(X_train)
        record["n_classes"] = int(splits.n_classes)
        record["n_train"] = _n_rows(X_train)
        record["n_dev"] = _n_rows(X_dev)
        record["n_test"] = _n_rows(X_test)
        model = _make_model(args, text)
        record["config"] = _config_of(args, model)
        record["config"]["model"] = type(model).__name__
        validation = (X_dev, y_dev) if _n_rows(X_dev) else None
        with _threads(args.threads):
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
            if _n_rows(X_test):
                y_pred = np.asarray(model.predict(X_test))
                y_test = np.asarray(y_test)
                record["test_accuracy"] = float(np.mean(y_pred == y_test))
                record["test_macro_f1"] = macro_f1(y_test, y_pred)
        n_epochs = record["n_epochs"] or getattr(model, "n_iter_", 0)
        record["n_epochs"] = int(n_epochs)
        if record["train_seconds"]:
            record["samples_per_s"] = (record["n_train"] * record["n_epochs"]
                                       / record["train_seconds"])
        if args.out:
            _save_model(model, args.out)
    except FloatingPointError as exc:
        record["status"] = "diverged"
        record["error"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - recorded, then reported by the exit code
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
        code = 1
    write_json_atomic(args.metrics, record)
    config = record["config"]
    hidden = config.get("hidden") or []
    summary = f"{args.dataset} {config.get('activation')} bias={config.get('bias')} " \
              f"hidden={','.join(map(str, hidden))} seed={config.get('seed')}: " \
              f"{record['status']}"
    if record["test_accuracy"] is not None:
        summary += f", test accuracy {record['test_accuracy']:.4f}"
    if record["error"]:
        summary += f" ({record['error']})"
    print(summary, file=sys.stderr)
    return code


def _load_model(path):
    import cymlp
    load = getattr(cymlp, "load", None)
    if load is None:
        from cymlp.io import load
    return load(path)


def cmd_evaluate(args):
    """Run ``cymlp evaluate``; returns the exit code."""
    model = _load_model(args.model)
    splits = _load_splits(args)
    X, y = getattr(splits, args.split)
    with _threads(args.threads):
        y_pred = np.asarray(model.predict(X))
    y = np.asarray(y)
    result = {
        "model": os.fspath(args.model),
        "dataset": args.dataset,
        "fold": args.fold,
        "split": args.split,
        "n_samples": int(y.shape[0]),
        "accuracy": float(np.mean(y_pred == y)) if y.size else None,
        "macro_f1": macro_f1(y, y_pred),
    }
    if args.json:
        print(json.dumps(_jsonable(result)))
    else:
        accuracy = "n/a" if result["accuracy"] is None else f"{result['accuracy']:.4f}"
        print(f"{args.dataset} {args.split}: n={result['n_samples']} "
              f"accuracy={accuracy} macro_f1={result['macro_f1']:.4f}")
    return 0


def _read_inputs(path, text):
    """Texts (one a line) or CSV rows of numbers from ``path`` (``-``: stdin)."""
    with contextlib.ExitStack() as stack:
        if path == "-":
            stream = sys.stdin
        else:
            stream = stack.enter_context(open(path, encoding="utf-8", errors="replace"))
        if text:
            return [line.rstrip("\n") for line in stream]
        return np.loadtxt(stream, delimiter=",", ndmin=2, dtype=np.float64)


def cmd_predict(args):
    """Run ``cymlp predict``; returns the exit code."""
    import cymlp
    model = _load_model(args.model)
    text = isinstance(model, cymlp.TextClassifier)
    X = _read_inputs(args.input, text)
    if _n_rows(X) == 0:
        return 0
    if not text:
        X = np.ascontiguousarray(X, dtype=getattr(model, "dtype", "float64"))
    with _threads(args.threads):
        labels = model.predict(X)
        proba = model.predict_proba(X) if args.proba else None
    out = []
    for i, label in enumerate(np.asarray(labels).tolist()):
        line = str(label)
        if proba is not None:
            line += "\t" + "\t".join(f"{p:.6g}" for p in proba[i])
        out.append(line)
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def main(argv=None):
    """Entry point of the ``cymlp`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        Process exit code.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(_version())
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (OSError, ValueError) as exc:
        if args.command == "train":
            raise
        print(f"cymlp {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
