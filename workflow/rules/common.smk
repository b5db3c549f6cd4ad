"""Configuration check, the sweep table and input functions shared by all rules."""

import itertools
import os
import posixpath
import shlex
import sys
import urllib.parse

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


# The configuration is checked against the schema before anything else happens: a
# misspelled key, an unknown activation or a hidden size below 1 stops the workflow
# with the schema's message, before the DAG is built or any job starts.
validate(config, schema="../schemas/config.schema.yaml")


RESULTS = config["results"]

#: Files each real dataset needs in ``data_dir`` (format: one ``LABEL TEXT`` a line).
REAL_DATASET_FILES = {
    "mr": ["rt-polarity.all"],
    "sst2": ["stsa.binary.train", "stsa.binary.dev", "stsa.binary.test"],
    "trec": ["TREC.train.all", "TREC.test.all"],
}

#: Datasets without a given test split: evaluated by k-fold cross-validation.
CV_DATASETS = {"mr"}

#: Options that may differ per dataset (``per_dataset`` in the configuration).
TRAINING_KEYS = (
    "lr", "epochs", "batch_size", "label_smoothing", "alpha", "momentum", "tol",
    "n_iter_no_change", "early_stopping", "encoder", "embed_dim", "window",
    "ngram_range", "char_ngram_range", "min_count",
)

#: Datasets of numeric features (MLPClassifier); all others are text (TextClassifier).
DENSE_DATASETS = {"xor"}

#: Sweep axes, in the order they appear in run identifiers and tables.
AXES = ("dataset", "activation", "bias", "hidden", "solver", "seed", "fold")


def data_files(dataset):
    """Paths of the files ``dataset`` reads from ``data_dir`` (empty if generated)."""
    names = REAL_DATASET_FILES.get(dataset, [])
    if not names:
        return []
    if not config["data_dir"]:
        return None
    return [os.path.join(config["data_dir"], name) for name in names]


def available(dataset):
    """Whether ``dataset`` can run: generated, or all of its files are in data_dir."""
    files = data_files(dataset)
    return files is not None and all(os.path.isfile(path) for path in files)


def hidden_token(sizes):
    """Hidden sizes as used in run identifiers: [64, 64] -> '64x64'."""
    return "x".join(str(size) for size in sizes)


def run_id(activation, bias, hidden, solver, seed, fold):
    """Identifier of one run inside its dataset folder."""
    return f"{activation}.{bias}.h{hidden_token(hidden)}.{solver}.s{seed}.f{fold}"


def training_options(dataset):
    """The global training options with the dataset's overrides applied."""
    options = {key: config[key] for key in TRAINING_KEYS}
    options.update(config["per_dataset"].get(dataset, {}))
    return options


def learning_rate(options, activation):
    """Learning rate of one activation (a number, or a per-activation mapping)."""
    lr = options["lr"]
    if isinstance(lr, dict):
        return lr.get(activation, lr["default"])
    return lr


def dataset_folds(dataset):
    """Folds run for ``dataset``: the configured folds for CV datasets, else [0]."""
    if dataset not in CV_DATASETS:
        return [0]
    return config["per_dataset"].get(dataset, {}).get("folds", config["folds"])


def build_sweep():
    """One entry per run: ``{(dataset, run_id): {axis: value, ...}}``."""
    sweep = {}
    for dataset in config["datasets"]:
        if not available(dataset):
            where = config["data_dir"] or "(data_dir is not set)"
            print(f"cymlp sweep: skipping {dataset}: its files "
                  f"{REAL_DATASET_FILES[dataset]} are not in {where}",
                  file=sys.stderr)
            continue
        for activation, bias, hidden, solver, seed, fold in itertools.product(
                config["activations"], config["bias"], config["hidden"],
                config["solvers"], config["seeds"], dataset_folds(dataset)):
            rid = run_id(activation, bias, hidden, solver, seed, fold)
            sweep[(dataset, rid)] = dict(
                dataset=dataset, activation=activation, bias=bias,
                hidden=list(hidden), solver=solver, seed=seed, fold=fold)
    if not sweep:
        raise WorkflowError("the sweep is empty: no dataset in 'datasets' is "
                            "available (real datasets need their files in data_dir)")
    return sweep


SWEEP = build_sweep()
SWEEP_DATASETS = sorted({dataset for dataset, _ in SWEEP})


wildcard_constraints:
    dataset="|".join(sorted(set(REAL_DATASET_FILES) | {"xor", "negation"})),
    run_id=r"[^/]+",


def run_json(dataset, rid):
    return os.path.join(RESULTS, "runs", dataset, f"{rid}.json")


def all_run_jsons(wildcards=None):
    """Every run record of the sweep (input of the collection step)."""
    return [run_json(dataset, rid) for dataset, rid in sorted(SWEEP)]


def sweep_entry(wildcards):
    key = (wildcards.dataset, wildcards.run_id)
    if key not in SWEEP:
        raise WorkflowError(f"{wildcards.dataset}/{wildcards.run_id} is not a run of "
                            f"the configured sweep")
    return SWEEP[key]


def train_inputs(wildcards):
    """The data files a run reads (none for generated datasets)."""
    return data_files(wildcards.dataset) or []


def train_arguments(wildcards):
    """Command-line options of ``cymlp train`` that determine the result of one run.

    Everything here is a rerun trigger (it is passed through ``params``); knobs that do
    not change results (threads, output paths) are not part of it.
    """
    run = sweep_entry(wildcards)
    options = training_options(run["dataset"])
    args = [
        "--dataset", run["dataset"],
        "--fold", run["fold"],
        "--data-seed", config["data_seed"],
        "--activation", run["activation"],
        "--bias", run["bias"],
        "--hidden", ",".join(str(size) for size in run["hidden"]),
        "--solver", run["solver"],
        "--seed", run["seed"],
        "--lr", learning_rate(options, run["activation"]),
        "--epochs", options["epochs"],
        "--batch-size", options["batch_size"],
        "--label-smoothing", options["label_smoothing"],
        "--alpha", options["alpha"],
        "--momentum", options["momentum"],
        "--tol", options["tol"],
        "--n-iter-no-change", options["n_iter_no_change"],
        "--dtype", config["dtype"],
    ]
    if options["early_stopping"]:
        args.append("--early-stopping")
    if config["diagnostics"]:
        args.append("--diagnostics")
    if run["dataset"] in REAL_DATASET_FILES:
        args += ["--data-dir", config["data_dir"]]
    if run["dataset"] not in DENSE_DATASETS:
        args += [
            "--encoder", options["encoder"],
            "--embed-dim", options["embed_dim"],
            "--window", options["window"],
            "--ngram-range", ",".join(str(n) for n in options["ngram_range"]),
            "--min-count", options["min_count"],
        ]
        if options["char_ngram_range"] is not None:
            args += ["--char-ngram-range",
                     ",".join(str(n) for n in options["char_ngram_range"])]
    return " ".join(shlex.quote(str(arg)) for arg in args)


def curves_hidden():
    """Hidden sizes drawn in the learning-curve and diagnostics figures."""
    if config["curves_hidden"] is not None:
        return list(config["curves_hidden"])
    return list(max(config["hidden"], key=lambda sizes: (sum(sizes), len(sizes))))


def boundary_runs():
    """Run identifiers of the XOR decision-boundary panels present in the sweep."""
    spec = config["boundary"]
    default_hidden = sorted(config["hidden"], key=lambda s: (sum(s), len(s)))[
        len(config["hidden"]) // 2]
    activations = spec.get("activations", ["identity", "tanh", "relu"])
    bias = spec.get("bias", "both" if "both" in config["bias"] else config["bias"][0])
    hidden = spec.get("hidden", default_hidden)
    seed = spec.get("seed", config["seeds"][0])
    solver = spec.get("solver", config["solvers"][0])
    runs = []
    for activation in activations:
        rid = run_id(activation, bias, hidden, solver, seed, 0)
        if ("xor", rid) in SWEEP:
            runs.append(rid)
    return runs


def report_targets():
    """Tables and figures of every dataset in the sweep."""
    targets = [
        os.path.join(RESULTS, "report", "runs.csv"),
        os.path.join(RESULTS, "report", "history.csv"),
        os.path.join(RESULTS, "report", "summary.md"),
    ]
    for dataset in SWEEP_DATASETS:
        folder = os.path.join(RESULTS, "report", dataset)
        targets += [
            os.path.join(folder, "tables.md"),
            os.path.join(folder, "tables.html"),
            os.path.join(folder, "accuracy_vs_hidden.png"),
            os.path.join(folder, "learning_curves.png"),
            os.path.join(folder, "diagnostics.png"),
        ]
    if "xor" in SWEEP_DATASETS and boundary_runs():
        targets.append(os.path.join(RESULTS, "report", "xor", "decision_boundary.png"))
    return targets


# ---- downloads of the original archives (rules/data.smk)

DOWNLOAD_DIR = config["download"]["dest_dir"]
DOWNLOAD_SOURCES = config["download"]["sources"]


def source_file(url):
    """Where the archive fetched from ``url`` is stored."""
    name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlparse(url).path))
    return os.path.join(DOWNLOAD_DIR, name)


def _damaged_runs(results):
    """Run records (and their models) that cannot be read back: truncated or corrupted
    JSON, a record without the fields every run has, or a model file that is not a
    valid zip. They are removed before the DAG is built, so that this invocation reruns
    exactly those runs and the report is never built from a damaged or stale record."""
    import json
    import zipfile

    damaged = []
    runs_root = os.path.join(results, "runs")
    if not os.path.isdir(runs_root):
        return damaged
    for dataset in sorted(os.listdir(runs_root)):
        folder = os.path.join(runs_root, dataset)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".json"):
                continue
            path = os.path.join(folder, name)
            model = os.path.join(results, "models", dataset, name[:-5] + ".npz")
            try:
                with open(path, encoding="utf-8") as fh:
                    record = json.load(fh)
                ok = isinstance(record, dict) and {"config", "status"} <= set(record)
            except (OSError, ValueError, UnicodeDecodeError):
                ok = False
            if ok and os.path.exists(model) and not zipfile.is_zipfile(model):
                ok = False
            if not ok:
                damaged.append((path, model))
    return damaged


for _record, _model in _damaged_runs(RESULTS):
    print(f"cymlp workflow: {_record} is damaged (unreadable or incomplete); "
          "removing it and its model so that the run is redone", file=sys.stderr)
    for _path in (_record, _model):
        if os.path.exists(_path):
            os.remove(_path)
