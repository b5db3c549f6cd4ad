"""Configuration check, the sweep plan and input functions shared by all rules.

Reading the workflow never changes a file: the plan is built from the configuration and
from reading the results folder (workflow/scripts/sweep.py).
"""

import os
import re
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The configuration is checked against the schema before anything else happens: a
# misspelled key, an unknown activation or a hidden size below 1 stops the workflow
# with the schema's message, before the DAG is built or any job starts.
validate(config, schema="../schemas/config.schema.yaml")

sys.path.insert(0, os.path.join(workflow.basedir, "scripts"))

try:
    import cymlp  # noqa: F401  the plan checks every run with the estimators' own rules
except ImportError as exc:
    raise WorkflowError(
        f"cymlp cannot be imported ({exc}). Install it (`pip install -e .` in the "
        "checkout builds the compiled extension), and run `snakemake` itself, not "
        "`python -m snakemake`, from the checkout, so that its source folder cannot "
        "shadow an installed cymlp."
    )

import sweep  # noqa: E402  workflow/scripts/sweep.py


def caller_dir():
    """The folder snakemake was started from: relative data paths are resolved here.

    When the Snakefile is read, snakemake has already moved into its working folder.
    Without --directory that is the folder the command was typed in; with it, the
    shell's $PWD still names that folder.
    """
    start = os.environ.get("PWD")
    if getattr(workflow, "overwrite_workdir", None) is not None and start \
            and os.path.isdir(start):
        return start
    return os.getcwd()


RESULTS = config["results"]

try:
    sweep.check_seeds(config)
    PLAN = sweep.build_plan(config, caller_dir(), RESULTS)
except sweep.ConfigError as exc:
    raise WorkflowError(f"invalid configuration: {exc}")

for _message in PLAN.skipped + PLAN.notes:
    print(f"cymlp sweep: {_message}", file=sys.stderr)

#: (dataset, block) -> (manifest the block's job writes, {run_id: reason} to train)
TARGETS = sweep.block_targets(PLAN, RESULTS)
print(f"cymlp sweep: {sweep.summary(PLAN, TARGETS)}", file=sys.stderr)

for _dataset, _count in sweep.old_scheme_records(RESULTS, PLAN.dataset_names).items():
    print(f"cymlp sweep: {RESULTS}/runs/{_dataset} holds {_count} record(s) named in the "
          "earlier scheme (activation.bias.hHIDDEN.solver.sSEED.fFOLD); runs are now "
          "named key=value (activation=relu.bias=both...), so this sweep neither reads "
          "nor changes them. Move them out of the folder to silence this note.",
          file=sys.stderr)

SWEEP_DATASETS = PLAN.dataset_names
AXES = list(PLAN.axes)


def statistics_reference():
    """The configured reference level of each swept axis that has it among its levels;
    the statistics compare the other axes with their first level (and say so)."""
    reference = {}
    for axis, level in config["statistics"]["reference"].items():
        label = sweep.level_label(level, axis)
        if axis == "activation":
            label = cymlp.activations.canonical(label)
        if axis not in AXES:
            print(f"cymlp sweep: statistics: {axis} is not a sweep axis; its reference "
                  "level is not used", file=sys.stderr)
        elif label not in PLAN.levels[axis]:
            print(f"cymlp sweep: statistics: the reference {axis} '{label}' is not a "
                  f"level of the sweep; the first level, '{PLAN.levels[axis][0]}', is "
                  "used instead", file=sys.stderr)
        else:
            reference[axis] = label
    return reference


STATISTICS_REFERENCE = statistics_reference()


wildcard_constraints:
    dataset="|".join(re.escape(name) for name in SWEEP_DATASETS),
    block=r"seed=[0-9]+\.fold=[0-9]+\.part=[0-9]+",
    generation=r"[0-9]+",


def block_manifests(wildcards=None):
    """The manifest of every block: what the collection step waits for."""
    return [TARGETS[key][0] for key in sorted(TARGETS)]


def block_runs(wildcards):
    """The runs of one block job: spec, data source, record and model paths.

    Everything here that changes a run's result is part of its spec, which is also
    compared with the stored record before a run is skipped.
    """
    members = PLAN.blocks.get((wildcards.dataset, wildcards.block))
    if members is None:
        raise WorkflowError(f"{wildcards.dataset}/{wildcards.block} is not a block of "
                            "the configured sweep")
    return [run.job() for run in members]


def all_records():
    """[dataset, run_id, record path] of every run of the sweep, in order."""
    return [[run.dataset, run.run_id, run.record]
            for _, run in sorted(PLAN.runs.items())]


def curves_hidden():
    """Hidden sizes drawn in the learning-curve and diagnostics figures."""
    if config["curves_hidden"] is not None:
        return list(config["curves_hidden"])
    return list(max(config["hidden"], key=lambda sizes: (sum(sizes), len(sizes))))


def boundary_runs():
    """The XOR runs of the decision-boundary panels present in the sweep (models kept)."""
    if "xor" not in SWEEP_DATASETS or not config.get("save_models", True):
        return []
    spec = config["boundary"]
    default_hidden = sorted(config["hidden"], key=lambda s: (sum(s), len(s)))[
        len(config["hidden"]) // 2]
    wanted = {
        "bias": spec.get("bias", "both" if "both" in config["bias"] else config["bias"][0]),
        "hidden": sweep.level_label(spec.get("hidden", default_hidden), "hidden"),
        "solver": spec.get("solver", config["solvers"][0]),
    }
    seed = spec.get("seed", config["seeds"][0])
    runs = []
    for activation in spec.get("activations", ["identity", "tanh", "relu"]):
        for (dataset, _), run in sorted(PLAN.runs.items()):
            if dataset != "xor" or run.seed != seed or run.fold != 0:
                continue
            axes = dict(run.axes)
            if axes.get("activation") != cymlp.activations.canonical(activation):
                continue
            if all(axes.get(k) == v for k, v in wanted.items()) and run not in runs:
                runs.append(run)
                break
    return runs


def statistics_figures():
    """effects_<axis>.png for every axis with 2 levels or more; cd_<axis>.png for every
    axis with 3 levels or more when the sweep has 2 datasets or more."""
    figures = []
    for axis in AXES:
        levels = PLAN.levels[axis]
        if len(levels) >= 2:
            figures.append(f"effects_{axis}.png")
        if len(levels) >= 3 and len(SWEEP_DATASETS) >= 2:
            figures.append(f"cd_{axis}.png")
    return figures


def statistics_item(name, caption, label):
    """An output of the statistics rule, shown in the report under "Across datasets"
    (not "statistics": docutils would see two targets of that name)."""
    return report(os.path.join(RESULTS, "report", "statistics", name),
                  caption=f"../report/{caption}", category="Across datasets",
                  subcategory=label, labels={"file": name})


def report_targets():
    """Tables, figures and statistics of the sweep."""
    root = os.path.join(RESULTS, "report")
    targets = [os.path.join(root, name) for name in
               ("runs.csv", "history.csv", "provenance.json", "summary.md")]
    for dataset in SWEEP_DATASETS:
        folder = os.path.join(root, dataset)
        targets += [os.path.join(folder, name) for name in
                    ("tables.md", "tables.html", "accuracy_vs_hidden.png",
                     "learning_curves.png", "diagnostics.png")]
    if boundary_runs():
        targets.append(os.path.join(root, "xor", "decision_boundary.png"))
    targets += [os.path.join(root, "statistics", name) for name in
                ["comparisons.csv", "comparisons.md", "interactions.csv", "ranking.csv",
                 "ranking.md"] + statistics_figures()]
    return targets


# ---- downloads of the original archives (rules/data.smk)

import posixpath  # noqa: E402
import urllib.parse  # noqa: E402

DOWNLOAD_DIR = config["download"]["dest_dir"]
DOWNLOAD_SOURCES = config["download"]["sources"]


def source_file(url):
    """Where the archive fetched from ``url`` is stored."""
    name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlparse(url).path))
    return os.path.join(DOWNLOAD_DIR, name)
