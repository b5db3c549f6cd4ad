"""The sweep plan: from the configuration to runs, blocks and what is left to do.

``workflow/rules/common.smk`` builds the plan when Snakemake reads the workflow, and
``train_block.py`` uses the same functions to decide, run by run, what to train. The
plan is computed from the configuration and from *reading* the results folder; nothing
here writes, moves or deletes a file.

* **Datasets**: a built-in name (``cymlp.datasets.DATASETS`` says its files, kind and
  protocol) or a mapping describing the user's own files.
* **Axes**: ``activations``, ``bias``, ``hidden`` and ``solvers``, and any estimator
  parameter listed under ``axes``. One run per combination of their levels, seed and
  fold. Every run's parameters pass the estimator's own checks here, before any job.
* **Run ids**: ``key=value`` pairs joined by dots, axes first, then seed and fold:
  ``activation=relu.bias=both.hidden=64.solver=adam.seed=0.fold=0``.
* **Blocks**: the runs of one dataset, fold and seed, in pieces of at most
  ``block_size`` runs; one job trains a block in one process.
* **State**: a run is done when its record exists, reads back, describes exactly this
  run (its ``run`` entry equals the plan's) and finished (``ok`` or ``diverged``), and
  its model file, when models are kept, is a zip archive.
"""

import hashlib
import itertools
import json
import numbers
import os
import re
import zipfile
from dataclasses import dataclass, field

#: The axes with a configuration key of their own: (key, axis name).
SHORTHAND_AXES = (("activations", "activation"), ("bias", "bias"), ("hidden", "hidden"),
                  ("solvers", "solver"))

#: Configuration names that differ from the estimator parameter they set.
PARAMETER_OF = {"hidden": "hidden_layer_sizes", "lr": "learning_rate_init",
                "epochs": "max_iter"}

#: Training options of the configuration (each may be overridden per dataset).
TRAINING_KEYS = ("lr", "epochs", "batch_size", "label_smoothing", "alpha", "momentum",
                 "tol", "n_iter_no_change", "early_stopping", "encoder", "embed_dim",
                 "window", "ngram_range", "char_ngram_range", "min_count")

#: Training options without a default: set only when the configuration (or a
#: dataset's override) gives them, so that the runs of earlier sweeps keep their specs.
OPTIONAL_KEYS = ("class_weight", "threshold")

#: Run-wide estimator settings of the configuration.
RUN_WIDE_KEYS = ("dtype", "diagnostics")

#: Estimator parameters that cannot be swept or set, and why.
NOT_SETTABLE = {
    "random_state": "the model seeds are the 'seeds' key",
    "verbose": "progress output does not belong in a sweep",
    "warm_start": "every run trains a new model",
}

#: The statuses of a finished run; a 'failed' run is tried again.
FINISHED = ("ok", "diverged")

#: Record names of the earlier run-id scheme (activation.bias.hH.solver.sS.fF).
OLD_RUN_ID = re.compile(r"^[a-z_]+\.[a-z]+\.h[0-9x]+\.[a-z]+\.s[0-9]+\.f[0-9]+\.json$")

#: Characters allowed in a level's text (it is part of file names).
_LABEL_CHARS = re.compile(r"^[A-Za-z0-9_+.-]+$")


class ConfigError(ValueError):
    """A configuration that passes the schema but that no run could use."""


# ----------------------------------------------------------------------------- levels

def level_label(value, axis=None):
    """The text of one level, as it appears in run ids, runs.csv and the reports.

    ``[64, 64]`` -> ``'64x64'`` for hidden sizes, other lists join with ``-``
    (``ngram_range=1-2``), ``None`` -> ``'none'``, booleans ``'true'``/``'false'``,
    floats in their shortest exact form (``0.0001``, ``1e-05``).
    """
    if isinstance(value, (list, tuple)):
        joiner = "x" if axis in ("hidden", "hidden_layer_sizes") else "-"
        return joiner.join(level_label(v) for v in value) if value else "none"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    return str(value)


def as_param(value):
    """A configuration value as the estimator takes it (lists become tuples)."""
    if isinstance(value, list):
        return tuple(as_param(v) for v in value)
    return value


def plain(value):
    """A value as JSON keeps it (tuples become lists), for comparing with records."""
    return json.loads(json.dumps(value, default=str))


def _digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------- plan

@dataclass
class Dataset:
    """One dataset of the sweep."""

    name: str
    kind: str  # 'text' or 'numeric'
    builtin: bool
    source: dict  # cymlp.cli.load_data's source, without fold and seed
    folds: list
    sha256: dict = field(default_factory=dict)  # file name -> checksum
    description: str = ""


@dataclass
class Run:
    """One training run of the sweep."""

    dataset: str
    run_id: str
    axes: dict  # axis -> level label
    seed: int
    fold: int
    kind: str
    params: dict  # estimator parameters (JSON values)
    source: dict  # cymlp.cli.load_data's source, with fold and seed
    record: str
    model: str  # None when models are not kept
    block: str = ""
    data: dict = field(default_factory=dict)

    def spec(self):
        """What the run is, as stored in its record under ``run`` (JSON values)."""
        return plain({"run_id": self.run_id, "dataset": self.dataset, "axes": self.axes,
                      "seed": self.seed, "fold": self.fold, "kind": self.kind,
                      "params": self.params, "data": self.data,
                      "keep_model": self.model is not None})

    def job(self):
        """What the training job needs: the spec, where to read and where to write."""
        return {"spec": self.spec(), "source": plain(self.source), "record": self.record,
                "model": self.model}


@dataclass
class Plan:
    datasets: dict  # name -> Dataset
    axes: list  # axis names, in run-id order
    runs: dict  # (dataset, run_id) -> Run
    blocks: dict  # (dataset, block) -> [Run]
    skipped: list  # messages about datasets left out
    notes: list  # messages about merged levels
    levels: dict  # axis -> level labels, in configuration order

    @property
    def dataset_names(self):
        return sorted({run.dataset for run in self.runs.values()})


def resolve(path, base):
    """``path`` made absolute against ``base`` (with ``~`` expanded)."""
    path = os.path.expanduser(str(path))
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(base, path))


def _builtin(name, config, base, skipped):
    from cymlp.datasets import DATASETS

    info = DATASETS[name]
    folds = [0] if info["n_folds"] == 1 else _folds(config, name, info["n_folds"])
    dataset = Dataset(name, info["kind"], True, {"dataset": name}, folds,
                      description=info["description"])
    if not info["files"]:
        return dataset
    data_dir = config.get("data_dir")
    if not data_dir:
        skipped.append(f"skipping {name}: its files {list(info['files'])} are read from "
                       "data_dir, which is not set")
        return None
    data_dir = resolve(data_dir, base)
    missing = [f for f in info["files"] if not os.path.isfile(os.path.join(data_dir, f))]
    if missing:
        skipped.append(f"skipping {name}: its files {missing} are not in {data_dir}")
        return None
    dataset.source["data_dir"] = data_dir
    dataset.sha256 = {f: _digest(os.path.join(data_dir, f)) for f in info["files"]}
    return dataset


def _folds(config, name, k):
    folds = config.get("per_dataset", {}).get(name, {}).get("folds", config["folds"])
    bad = [f for f in folds if not 0 <= f < k]
    if bad:
        raise ConfigError(f"folds: {name} has {k} folds (0 to {k - 1}), got {bad}")
    return sorted(set(int(f) for f in folds))


def _own(entry, config, base):
    """A dataset of the user's own files (a mapping in ``datasets``)."""
    from cymlp import datasets as ds

    name = entry["name"]
    source = {"name": name}
    for role in ("train", "dev", "test"):
        if entry.get(role) is not None:
            path = resolve(entry[role], base)
            if not os.path.isfile(path):
                what = "a folder" if os.path.isdir(path) else "not found"
                raise ConfigError(f"datasets: {name}: {role} file {entry[role]} is {what} "
                                  f"(looked for {path})")
            source[role] = path
    for key in ("format", "text_column", "label_column", "cv", "holdout"):
        if entry.get(key) is not None:
            source[key] = entry[key]
    cv, holdout = entry.get("cv"), entry.get("holdout")
    if cv is not None and ("dev" in source or "test" in source or holdout is not None):
        raise ConfigError(f"datasets: {name}: cv splits the train file into train, dev and "
                          "test: give neither dev, test nor holdout with it")
    if cv is None and holdout is None:
        for role in ("dev", "test"):
            if role not in source:
                raise ConfigError(f"datasets: {name}: no {role} part; give a {role} file, "
                                  "a holdout fraction or cv (cross-validation)")
    if isinstance(holdout, dict):
        for role in holdout:
            if role in source:
                raise ConfigError(f"datasets: {name}: both a {role} file and a holdout "
                                  f"fraction for {role}")
    elif holdout is not None and "dev" in source and "test" in source:
        raise ConfigError(f"datasets: {name}: holdout has nothing to take: dev and test "
                          "files are given")
    fmt = entry.get("format")
    try:
        if fmt is None:
            fmt, _ = ds.guess_format(source["train"], text_column=entry.get("text_column"),
                                     label_column=entry.get("label_column"))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"datasets: {name}: {exc}") from None
    kind = ds.FORMATS[fmt]["kind"]
    if kind not in ("text", "numeric"):  # Parquet holds either: its columns decide
        kind = _parquet_kind(source["train"], entry.get("text_column"), name)
    folds = _folds(config, name, cv) if cv is not None else [0]
    roles = [r for r in ("train", "dev", "test") if r in source]
    return Dataset(name, kind, False, source, folds,
                   sha256={r: _digest(source[r]) for r in roles},
                   description=f"own files ({fmt})")


def _parquet_kind(path, text_column, name):
    if text_column is not None:
        return "text"
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(f"datasets: {name}: reading Parquet needs pyarrow "
                          "(pip install 'cymlp[parquet]')") from None
    return "text" if "text" in pq.read_schema(path).names else "numeric"


def _axes(config, kinds):
    """[(axis, estimator parameter, [levels])] in run-id order."""
    from cymlp import cli

    axes = [(axis, PARAMETER_OF.get(axis, axis), list(config[key]))
            for key, axis in SHORTHAND_AXES]
    taken = {param: axis for axis, param, _ in axes}
    params = {kind: set(cli.estimator_parameters(kind)) for kind in kinds}
    every = set().union(*params.values()) if params else set()
    for axis in sorted(config.get("axes") or {}):
        param = PARAMETER_OF.get(axis, axis)
        if param in NOT_SETTABLE:
            raise ConfigError(f"axes: {axis} cannot be swept: {NOT_SETTABLE[param]}")
        if param in taken:
            raise ConfigError(f"axes: {axis} sets {param}, which the axis "
                              f"'{taken[param]}' sweeps already")
        if param not in every:
            known = sorted(every - set(NOT_SETTABLE))
            raise ConfigError(f"axes: {axis!r} is not an estimator parameter; the "
                              f"parameters are: {', '.join(known)}")
        lacking = [kind for kind in kinds if param not in params[kind]]
        if lacking:
            raise ConfigError(f"axes: {axis} applies to text data only (TextClassifier), "
                              "but the sweep has numeric datasets; sweep it in a "
                              "configuration of text datasets")
        taken[param] = axis
        axes.append((axis, param, list(config["axes"][axis])))
    return axes


def _fixed(config, dataset, base="."):
    """The estimator parameters every run of ``dataset`` shares (before the axes):
    the training options (with the dataset's overrides), the run-wide settings and
    ``params``. Returns (params, per-activation learning rates or None)."""
    from cymlp import cli

    options = {key: config[key] for key in TRAINING_KEYS}
    options.update({key: config[key] for key in OPTIONAL_KEYS if key in config})
    override = config.get("per_dataset", {}).get(dataset.name, {})
    options.update({k: v for k, v in override.items()
                    if k in TRAINING_KEYS or k in OPTIONAL_KEYS})
    options.update({key: config[key] for key in RUN_WIDE_KEYS})
    known = set(cli.estimator_parameters(dataset.kind))
    params, rates = {}, None
    for key, value in options.items():
        param = PARAMETER_OF.get(key, key)
        if param not in known:
            continue  # a text option of a numeric dataset
        if key == "lr" and isinstance(value, dict):
            rates = value
            continue
        params[param] = as_param(value)
    extra = dict(config.get("params") or {})
    extra.update(override.get("params") or {})
    for key, value in extra.items():
        param = PARAMETER_OF.get(key, key)
        if param in NOT_SETTABLE:
            raise ConfigError(f"params: {key} cannot be set: {NOT_SETTABLE[param]}")
        if param not in known:
            if any(param in cli.estimator_parameters(k) for k in ("text", "numeric")):
                continue  # applies to the other kind of data
            raise ConfigError(f"params: {key!r} is not an estimator parameter")
        if param == "pretrained_vectors" and value is not None:
            value = _vectors_file(value, base, key)
        params[param] = as_param(value)
        if param == "learning_rate_init":
            rates = None
    return params, rates


def _vectors_file(value, base, key):
    """A word-vector file of ``params``, made absolute; it must exist."""
    path = resolve(value, base)
    if not os.path.isfile(path):
        raise ConfigError(f"params: {key}: the word-vector file {value} is not found "
                          f"(looked for {path})")
    return path


def _learning_rates(rates):
    """A per-activation mapping with every activation name made canonical."""
    from cymlp import activations

    out = {"default": rates["default"]}
    for name, rate in rates.items():
        if name == "default":
            continue
        canonical = activations.canonical(name)
        if canonical in out and out[canonical] != rate:
            raise ConfigError(f"lr: '{name}' is another name of '{canonical}', with a "
                              f"different rate ({rate} vs {out[canonical]})")
        out[canonical] = rate
    return out


def _canonical(param, value, settings):
    """A level's value as the estimator reads it (aliases resolved)."""
    from cymlp import activations

    if param == "activation":
        return activations.canonical(value)
    return settings.get(param, value)


def _block_chunks(runs, size):
    """Runs of one dataset grouped by (fold, seed), then cut into pieces of ``size``."""
    groups = {}
    for run in runs:
        groups.setdefault((run.seed, run.fold), []).append(run)
    blocks = {}
    for (seed, fold), members in groups.items():
        for part, start in enumerate(range(0, len(members), size)):
            name = f"seed={seed}.fold={fold}.part={part}"
            for run in members[start:start + size]:
                run.block = name
            blocks[name] = members[start:start + size]
    return blocks


def build_plan(config, base, results=None):
    """The whole sweep of ``config``.

    Parameters
    ----------
    config : dict
        The configuration, checked against the schema (defaults filled in).
    base : str
        The folder relative data paths are resolved against.
    results : str, optional
        The results folder (default ``config['results']``), relative to the current
        folder.

    Raises
    ------
    ConfigError
        For a configuration no run could use; the message names the key.
    """
    from cymlp import cli
    from cymlp.datasets import DATASETS

    results = results or config["results"]
    skipped, notes, names = [], [], []
    datasets = {}
    for entry in config["datasets"]:
        if isinstance(entry, str):
            if entry not in DATASETS:
                raise ConfigError(f"datasets: unknown data set {entry!r}; the built-in ones "
                                  f"are {', '.join(DATASETS)} (your own files: a mapping "
                                  "with name and train)")
            dataset = _builtin(entry, config, base, skipped)
            name = entry
        else:
            dataset = _own(entry, config, base)
            name = dataset.name
        if name in names:
            raise ConfigError(f"datasets: {name} is listed twice")
        names.append(name)
        if dataset is not None:
            datasets[name] = dataset
    unknown = sorted(set(config.get("per_dataset") or {}) - set(DATASETS) - set(names))
    if unknown:
        raise ConfigError(f"per_dataset: {unknown[0]} is neither a built-in data set nor "
                          "a name in datasets")
    if not datasets:
        raise ConfigError("the sweep is empty: no dataset in 'datasets' is available "
                          "(the built-in mr, sst2 and trec need their files in data_dir)")

    axes = _axes(config, sorted({d.kind for d in datasets.values()}))
    runs, blocks, levels = {}, {}, {axis: [] for axis, _, _ in axes}
    keep_models = bool(config.get("save_models", True))
    size = int(config.get("block_size", 48))
    seen_alias = set()
    digests = {}  # word-vector file -> SHA-256
    for dataset in datasets.values():
        fixed, rates = _fixed(config, dataset, base)
        rates = _learning_rates(rates) if rates else None
        planned = []
        checked = {}
        for combo in itertools.product(*(levels_ for _, _, levels_ in axes)):
            params = dict(fixed)
            params.update({param: as_param(v) for (_, param, _), v in zip(axes, combo)})
            if rates is not None and "learning_rate_init" not in \
                    {param for _, param, _ in axes}:
                name = _canonical("activation", params.get("activation", "relu"), {})
                params["learning_rate_init"] = rates.get(name, rates["default"])
            key = json.dumps(plain(params), sort_keys=True)
            if key not in checked:
                checked[key] = _check(cli, dataset, params, axes, combo)
            settings = checked[key]
            values = {axis: _canonical(param, v, settings)
                      for (axis, param, _), v in zip(axes, combo)}
            labels = {axis: level_label(values[axis], axis) for axis in values}
            for axis, value in zip((a for a, _, _ in axes), combo):
                written = level_label(value, axis)
                if written != labels[axis] and (axis, written) not in seen_alias:
                    seen_alias.add((axis, written))
                    notes.append(f"{axis}: '{written}' is another name of "
                                 f"'{labels[axis]}'; its runs are those of "
                                 f"'{labels[axis]}'")
            for axis, label in labels.items():
                if not _LABEL_CHARS.match(label):
                    raise ConfigError(f"{axis}: the level {label!r} cannot be part of a "
                                      "file name; use letters, digits and _ + . - only")
                if label not in levels[axis]:
                    levels[axis].append(label)
            if "activation" in params:
                params["activation"] = _canonical("activation", params["activation"], {})
            for seed in config["seeds"]:
                for fold in dataset.folds:
                    rid = ".".join([f"{axis}={labels[axis]}" for axis in labels]
                                   + [f"seed={seed}", f"fold={fold}"])
                    if (dataset.name, rid) in runs:
                        continue  # an alias of a level already planned
                    source = dict(dataset.source, fold=fold, seed=config["data_seed"])
                    data = {"name": dataset.name, "sha256": dataset.sha256,
                            "fold": fold, "seed": config["data_seed"],
                            **{k: v for k, v in dataset.source.items()
                               if k not in ("train", "dev", "test", "data_dir", "name",
                                            "dataset")}}
                    vectors = params.get("pretrained_vectors")
                    if vectors:  # editing the word vectors retrains the runs using them
                        if vectors not in digests:
                            digests[vectors] = _digest(vectors)
                        data["pretrained_vectors_sha256"] = digests[vectors]
                    run = Run(dataset.name, rid, labels, int(seed), fold, dataset.kind,
                              plain({**params, "random_state": int(seed)}), source,
                              os.path.join(results, "runs", dataset.name, f"{rid}.json"),
                              os.path.join(results, "models", dataset.name, f"{rid}.npz")
                              if keep_models else None, data=data)
                    runs[(dataset.name, rid)] = run
                    planned.append(run)
        for block, members in _block_chunks(planned, size).items():
            blocks[(dataset.name, block)] = members
    return Plan(datasets, [axis for axis, _, _ in axes], runs, blocks, skipped, notes,
                levels)


def _check(cli, dataset, params, axes, combo):
    """The estimator's validation of one combination; ConfigError naming the key."""
    try:
        return cli.check_params(dataset.kind, {**params, "random_state": 0})
    except ValueError as exc:
        message = str(exc)
        culprit = next((axis for (axis, param, _), value in zip(axes, combo)
                        if message.startswith(param)), None)
        where = f"{culprit}: {level_label(dict(zip([a for a, _, _ in axes], combo))[culprit], culprit)}" \
            if culprit else f"the settings of {dataset.name}"
        raise ConfigError(f"{where}: {message}") from None


def check_seeds(config):
    """Seeds are model seeds: non-negative integers (YAML's 1.0 is not one)."""
    for seed in config["seeds"]:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seeds: every seed must be a non-negative integer, got "
                              f"{seed!r}")
    seed = config["data_seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"data_seed must be a non-negative integer, got {seed!r}")
    if len(set(config["seeds"])) != len(config["seeds"]):
        raise ConfigError("seeds: a seed is listed twice")


# ----------------------------------------------------------------------------- state

def record_state(record_path, spec, model_path=None):
    """Whether a run is done: ``('done', '')`` or ``(reason, detail)`` where reason is
    one of ``missing``, ``damaged``, ``changed`` (a record of other settings),
    ``failed`` (it failed before and is tried again) and ``no model``. Reads only.

    Parameters
    ----------
    record_path : str
        Where the run's record is.
    spec : dict
        The run's spec (:meth:`Run.spec`), which the record must hold under ``run``.
    model_path : str, optional
        Where its model is, when models are kept.
    """
    try:
        with open(record_path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return "missing", ""
    except OSError as exc:
        return "damaged", f"unreadable ({exc.strerror})"
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "damaged", "not valid JSON (truncated or garbled)"
    if not isinstance(record, dict) or "status" not in record:
        return "damaged", "not a run record"
    if record.get("run") != spec:
        return "changed", "a record of other settings"
    if record["status"] not in FINISHED:
        return "failed", str(record.get("error") or "")
    if model_path is not None and record["status"] == "ok":
        if not os.path.isfile(model_path):
            return "no model", "its model file is missing"
        if not zipfile.is_zipfile(model_path):
            return "no model", "its model file is damaged"
    return "done", ""


_GENERATION = re.compile(r"^(?P<block>.+)\.(?P<generation>[0-9]+)\.json$")


def manifests(results, dataset):
    """{block: [generations]} of the block manifests present for ``dataset``."""
    folder = os.path.join(results, "blocks", dataset)
    found = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return found
    for name in names:
        match = _GENERATION.match(name)
        if match:
            found.setdefault(match["block"], []).append(int(match["generation"]))
    return found


def block_targets(plan, results):
    """The manifest each block job writes, and what it has to do.

    A block with nothing left to do keeps its newest manifest as its target (so the
    workflow sees it as up to date). A block with runs to train gets a new manifest
    of the next generation: ``{block}.1.json`` the first time, ``{block}.2.json`` when
    runs are redone later (a record was deleted or damaged, a setting changed, a run
    failed). The older manifests stay as they are.

    Returns
    -------
    dict
        (dataset, block) -> (manifest path, {run_id: (reason, detail)} of the runs to
        train).
    """
    targets = {}
    present = {name: manifests(results, name) for name in plan.dataset_names}
    for (dataset, block), members in plan.blocks.items():
        todo = {}
        for run in members:
            reason, detail = record_state(run.record, run.spec(), run.model)
            if reason != "done":
                todo[run.run_id] = (reason, detail)
        generations = present[dataset].get(block, [])
        newest = max(generations, default=0)
        generation = newest + 1 if todo or not newest else newest
        path = os.path.join(results, "blocks", dataset, f"{block}.{generation}.json")
        targets[(dataset, block)] = (path, todo)
    return targets


def old_scheme_records(results, datasets):
    """{dataset: count} of records named in the earlier run-id scheme."""
    counts = {}
    for name in datasets:
        try:
            names = os.listdir(os.path.join(results, "runs", name))
        except OSError:
            continue
        n = sum(1 for f in names if OLD_RUN_ID.match(f))
        if n:
            counts[name] = n
    return counts


def summary(plan, targets):
    """One line saying how much of the sweep is left to do, and why."""
    reasons = {}
    for _, todo in targets.values():
        for reason, _ in todo.values():
            reasons[reason] = reasons.get(reason, 0) + 1
    n_todo = sum(reasons.values())
    jobs = sum(1 for path, _ in targets.values() if not os.path.exists(path))
    line = (f"{len(plan.runs)} runs on {len(plan.dataset_names)} dataset(s) in "
            f"{len(plan.blocks)} blocks; ")
    if not n_todo:
        return line + "all done" + (f" ({jobs} block manifest(s) to write)" if jobs else "")
    detail = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    return line + f"{n_todo} to train ({detail}) in {jobs} job(s)"
