"""Tests of the Snakemake workflow (workflow/, config/).

Every test runs snakemake in a fresh working folder whose ``config`` links to the
repository's, so results never land in the repository.
"""

import functools
import hashlib
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNAKEFILE = os.path.join(REPO, "workflow", "Snakefile")
TINY = os.path.join(REPO, "tests", "workflow", "tiny.yaml")

import numpy as np

pytest.importorskip("snakemake")
pd = pytest.importorskip("pandas")


def _env(cwd=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    # Jobs run cymlp with this interpreter's environment: make it the one on PATH.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    # The folder snakemake is started from, as a shell would say it: relative data
    # paths are resolved there (snakemake itself moves into --directory).
    env["PWD"] = str(cwd or os.getcwd())
    return env


def snakemake(workdir, *args, timeout=300, cwd=None, **kwargs):
    """Run snakemake on the repository's Snakefile in ``workdir``."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", SNAKEFILE,
           "--directory", str(workdir), *map(str, args)]
    return subprocess.run(cmd, env=_env(cwd), cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=timeout, **kwargs)


def output_of(proc):
    return proc.stdout + proc.stderr


@pytest.fixture
def workdir(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "config").symlink_to(os.path.join(REPO, "config"))
    return folder


def write_config(folder, name, config):
    path = folder / name
    path.write_text(yaml.safe_dump(config))
    return path


def job_counts(text):
    """``{rule: count}`` from the "Job stats" table snakemake prints."""
    counts = {}
    if "Job stats:" not in text:
        return counts
    table = text.split("Job stats:", 1)[1]
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)\s*$", line)
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    return counts


def default_config():
    with open(os.path.join(REPO, "config", "config.yaml")) as fh:
        return yaml.safe_load(fh)


def data_dir_of_the_environment():
    """CYMLP_DATA_DIR made absolute against the folder the tests were started from."""
    value = os.environ.get("CYMLP_DATA_DIR", "")
    return os.path.abspath(value) if value else ""


def n_configs(config):
    return (len(config["activations"]) * len(config["bias"]) * len(config["hidden"])
            * len(config.get("solvers", ["adam"])))


def n_blocks(config, n_datasets, n_folds=1):
    """Jobs of a sweep: per dataset, fold and seed, pieces of block_size runs."""
    per_group = -(-n_configs(config) // config.get("block_size", 48))
    return n_datasets * n_folds * len(config.get("seeds", [0])) * per_group


def run_id(activation, bias, hidden, seed, solver="adam", fold=0):
    h = "x".join(map(str, hidden))
    return f"activation={activation}.bias={bias}.hidden={h}.solver={solver}.seed={seed}.fold={fold}"


def expected_run_ids(config):
    return {run_id(a, b, h, s) for a in config["activations"] for b in config["bias"]
            for h in config["hidden"] for s in config["seeds"]}


def tree_digest(folder):
    """{relative path: sha256} of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ static checks

def test_lint(workdir):
    proc = snakemake(workdir, "--lint")
    assert proc.returncode == 0, output_of(proc)
    assert "Congratulations" in output_of(proc)


def test_snakemake_version_bound_agrees_with_pyproject():
    import tomllib

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as fh:
        extra = tomllib.load(fh)["project"]["optional-dependencies"]["workflow"]
    bound = next(r for r in extra if r.startswith("snakemake>=")).split(">=")[1]
    with open(SNAKEFILE) as fh:
        snakefile = fh.read()
    assert f'min_version("{bound}")' in snakefile
    assert "min_version(" not in open(os.path.join(REPO, "workflow", "rules",
                                                   "common.smk")).read()


def test_default_config_meets_the_sweep_minimum():
    config = default_config()
    assert config["data_dir"] is None
    assert {"xor", "negation"} <= set(config["datasets"])
    assert len(config["activations"]) >= 8 and "identity" in config["activations"]
    assert set(config["bias"]) == {"both", "hidden", "output", "none"}
    assert len(config["hidden"]) >= 3
    assert len(config["seeds"]) >= 5


def test_every_config_key_is_documented():
    with open(os.path.join(REPO, "workflow", "schemas", "config.schema.yaml")) as fh:
        schema = yaml.safe_load(fh)
    with open(os.path.join(REPO, "config", "README.md")) as fh:
        readme = fh.read()
    keys = list(schema["properties"])
    keys += [f"download.{k}" for k in schema["properties"]["download"]["properties"]]
    keys += [f"statistics.{k}" for k in schema["properties"]["statistics"]["properties"]]
    keys += list(schema["$defs"]["own_dataset"]["properties"])
    missing = [k for k in keys if f"`{k}`" not in readme]
    assert not missing, f"config/README.md does not document {missing}"
    assert set(default_config()) <= set(schema["properties"])


def test_schema_lists_the_registries_of_datasets_and_formats():
    from cymlp.datasets import DATASETS, FORMATS

    with open(os.path.join(REPO, "workflow", "schemas", "config.schema.yaml")) as fh:
        defs = yaml.safe_load(fh)["$defs"]
    assert defs["builtin_dataset"]["enum"] == list(DATASETS)
    assert defs["format"]["enum"] == list(FORMATS)


def test_the_workflow_keeps_no_list_of_datasets_of_its_own():
    text = "".join(open(os.path.join(REPO, "workflow", "rules", name)).read()
                   for name in os.listdir(os.path.join(REPO, "workflow", "rules")))
    for name in ("REAL_DATASET_FILES", "CV_DATASETS", "DENSE_DATASETS", "rt-polarity",
                 "stsa.binary"):
        assert name not in text


def test_dry_run_plans_the_whole_default_sweep(workdir):
    config = default_config()
    proc = snakemake(workdir, "-n")
    assert proc.returncode == 0, output_of(proc)
    counts = job_counts(output_of(proc))
    assert counts["train"] == n_blocks(config, 2) == 20
    assert f"{n_configs(config) * 2 * len(config['seeds'])} runs on 2 dataset(s)" \
        in output_of(proc)
    assert counts["collect"] == 1 and counts["statistics"] == 1
    assert counts["tables"] == 2 and counts["plot_accuracy"] == 2
    assert counts["plot_boundary"] == 1
    assert not (workdir / "results").exists()


def test_real_dataset_joins_only_when_its_files_exist(workdir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    small = {"datasets": ["xor", "mr"], "activations": ["relu"], "bias": ["both"],
             "hidden": [[4]], "seeds": [0], "folds": [0, 1, 2]}
    config = write_config(tmp_path, "small.yaml", {**small, "data_dir": "data"})

    # data_dir is relative: to the folder snakemake is started from, not --directory
    proc = snakemake(workdir, "-n", "--configfile", config, cwd=tmp_path)
    assert proc.returncode == 0, output_of(proc)
    assert job_counts(output_of(proc))["train"] == 1          # xor only
    assert "skipping mr" in output_of(proc)

    (data / "rt-polarity.all").write_text("1 a fine film\n0 a dull film\n" * 10)
    proc = snakemake(workdir, "-n", "--configfile", config, cwd=tmp_path)
    assert proc.returncode == 0, output_of(proc)
    assert job_counts(output_of(proc))["train"] == 1 + 3      # xor + 3 folds of mr
    assert "results/blocks/mr/seed=0.fold=2.part=0.1.json" in output_of(proc)


def test_sentence_sweep_plans_all_real_datasets(workdir):
    data_dir = data_dir_of_the_environment()
    needed = ("rt-polarity.all", "stsa.binary.train", "stsa.binary.dev",
              "stsa.binary.test", "TREC.train.all", "TREC.test.all")
    if not all(os.path.isfile(os.path.join(data_dir, name)) for name in needed):
        pytest.skip("CYMLP_DATA_DIR does not hold the MR, SST-2 and TREC files")
    proc = snakemake(workdir, "-n", "--configfile",
                     os.path.join(REPO, "config", "real.yaml"),
                     "--config", f"data_dir={data_dir}")
    assert proc.returncode == 0, output_of(proc)
    counts = job_counts(output_of(proc))
    # 4 activations x 4 bias placements x 2 hidden sizes = 32 runs a block; one block
    # per seed (2) and fold (MR: 2 folds)
    assert "256 runs on 3 dataset(s)" in output_of(proc)
    assert counts["train"] == 2 * (2 + 1 + 1)
    assert counts["tables"] == 3 and "plot_boundary" not in counts


SCHEMA_ERRORS = {  # id: (configuration change, message excerpt)
    "char_ngram_range_zero": ({"char_ngram_range": [0, 3]},
                              "is not valid under any of the given schemas"),
    "misspelled_key": ({"activatons": ["relu"]},
                       "Additional properties are not allowed ('activatons' was unexpected)"),
    "unknown_activation": ({"activations": ["relu", "relux"]}, "'relux' is not one of"),
    "hidden_zero": ({"hidden": [[16], [0]]}, "0 is less than the minimum of 1"),
    "per_dataset_epochs_zero": ({"per_dataset": {"xor": {"epochs": 0}}},
                                "0 is less than the minimum of 1"),
    "data_seed_negative": ({"data_seed": -1}, "-1 is less than the minimum of 0"),
    "own_dataset_named_as_builtin": ({"datasets": [{"name": "mr", "train": "x.csv"}]},
                                     "is not valid under any of the given schemas"),
}


@pytest.mark.parametrize("change, message", SCHEMA_ERRORS.values(), ids=SCHEMA_ERRORS)
def test_config_validation_rejects_before_any_job(workdir, tmp_path, change, message):
    config = write_config(tmp_path, "bad.yaml", change)
    proc = snakemake(workdir, "--cores", "1", "--configfile", config)
    assert proc.returncode != 0
    text = output_of(proc)
    assert "Error validating config file" in text
    assert message in text
    assert not (workdir / "results").exists()
    assert "rule train" not in text


REFUSED_BEFORE_ANY_JOB = {  # id: (configuration change, message excerpt)
    "hidden_float": ({"hidden": [[4.0]]},
                     "hidden: 4.0: hidden_layer_sizes must hold positive integers"),
    "seed_float": ({"seeds": [1.0]},
                   "seeds: every seed must be a non-negative integer, got 1.0"),
    "lr_infinite": ({"lr": float("inf")}, "learning_rate_init must be finite, got inf"),
    "ngram_range_reversed": ({"ngram_range": [3, 1]},
                             "ngram_range must have min_n <= max_n, got (3, 1)"),
    "window_with_subwords": ({"encoder": "window", "char_ngram_range": [3, 5]},
                             "char_ngram_range applies to the bag encoder only"),
    "axis_level_out_of_range": ({"axes": {"label_smoothing": [0.0, 1.0]}},
                                "label_smoothing: 1.0: label_smoothing must be in [0, 1), "
                                "got 1.0"),
    "axis_unknown": ({"axes": {"embed_dims": [8]}},
                     "'embed_dims' is not an estimator parameter"),
    "axis_random_state": ({"axes": {"random_state": [1]}}, "random_state cannot be swept"),
    "axis_twice": ({"axes": {"hidden_layer_sizes": [[4]]}},
                   "which the axis 'hidden' sweeps already"),
    "params_bad_value": ({"params": {"pooling": "max"}},
                         "pooling must be one of ['mean', 'sum'], got 'max'"),
    "own_file_missing": ({"datasets": [{"name": "own", "train": "/dev/null", "cv": 5}]},
                         "own: train file /dev/null is not found"),
    "per_dataset_unknown": ({"per_dataset": {"negaton": {"epochs": 3}}},
                            "per_dataset: negaton is neither a built-in data set nor a "
                            "name in datasets"),
    "params_class_weight_unknown": ({"params": {"class_weight": "heavy"}},
                                    "class_weight must be None, 'balanced' or a dict"),
    "axis_class_weight_negative": ({"axes": {"class_weight": [None, {0: -1.0}]}},
                                   "class_weight[0] must be"),
    "params_vectors_missing": ({"params": {"pretrained_vectors": "absent.vec"}},
                               "params: pretrained_vectors: the word-vector file absent.vec "
                               "is not found"),
}


#: The cases snakemake itself is run on (the others are checked on the plan alone).
REFUSED_BY_SNAKEMAKE = ("hidden_float", "seed_float", "lr_infinite", "ngram_range_reversed",
                        "window_with_subwords", "axis_unknown")


@pytest.mark.parametrize("case", REFUSED_BY_SNAKEMAKE)
def test_values_the_schema_passes_but_no_run_could_use_are_refused_before_any_job(
        workdir, tmp_path, case):
    change, message = REFUSED_BEFORE_ANY_JOB[case]
    config = write_config(tmp_path, "bad.yaml", change)
    proc = snakemake(workdir, "--cores", "1", "--configfile", config)
    text = output_of(proc)
    assert proc.returncode != 0
    assert "invalid configuration: " in text and message in text, text
    assert not (workdir / "results").exists()
    assert "rule train" not in text


@pytest.mark.parametrize("change, message", REFUSED_BEFORE_ANY_JOB.values(),
                         ids=REFUSED_BEFORE_ANY_JOB)
def test_the_plan_refuses_what_no_run_could_use(tmp_path, change, message):
    from snakemake.utils import validate

    config = default_config()
    config.update(yaml.safe_load(yaml.safe_dump(change)))
    validate(config, os.path.join(REPO, "workflow", "schemas", "config.schema.yaml"))
    sweep = _sweep_module()
    with pytest.raises(sweep.ConfigError) as info:
        sweep.check_seeds(config)
        sweep.build_plan(config, str(tmp_path), str(tmp_path / "results"))
    assert message in str(info.value)
    assert not (tmp_path / "results").exists()


def test_an_alias_does_not_schedule_the_same_runs_twice(workdir, tmp_path):
    base = {"datasets": ["xor"], "bias": ["both"], "hidden": [[4]], "seeds": [0, 1],
            "block_size": 1}
    config = write_config(tmp_path, "alias.yaml",
                          {**base, "activations": ["sigmoid", "logistic", "relu"]})
    proc = snakemake(workdir, "-n", "--configfile", config)
    assert proc.returncode == 0, output_of(proc)
    text = output_of(proc)
    assert "activation: 'logistic' is another name of 'sigmoid'" in text
    assert "4 runs on 1 dataset(s)" in text
    assert job_counts(text)["train"] == 4


# ------------------------------------------------------------------ running sweeps

@pytest.mark.slow
def test_tiny_sweep_end_to_end(workdir, tmp_path):
    """A sweep, its tables, figures and statistics; then: planning, linting and the
    report leave every file under results/ as it is, even with a damaged record, a
    JSON file that is no record and a record of the earlier naming scheme in it, and
    the next run redoes the damaged run alone."""
    with open(TINY) as fh:
        tiny = yaml.safe_load(fh)
    proc = snakemake(workdir, "--cores", "2", "--configfile", TINY)
    assert proc.returncode == 0, output_of(proc)

    results = workdir / "results"
    runs = pd.read_csv(results / "report" / "runs.csv")
    assert set(runs["run_id"]) == expected_run_ids(tiny)
    assert len(runs) == len(expected_run_ids(tiny))
    assert (runs["status"] == "ok").all()
    assert set(runs["dataset"]) == {"xor"}
    assert runs["build_commit"].notna().all() or runs["cymlp_version"].notna().all()
    assert runs["blas"].notna().all() and runs["threads"].eq(1).all()
    history = pd.read_csv(results / "report" / "history.csv")
    assert set(history["run_id"]) == set(runs["run_id"])
    assert "saturated" in history.columns

    # A linear network cannot fit XOR (at most 3 of the 4 corners); tanh and ReLU can.
    accuracy = runs.set_index("run_id")["test_accuracy"]
    assert accuracy[run_id("identity", "both", [8], 0)] <= 0.8
    assert accuracy[run_id("tanh", "both", [8], 0)] >= 0.95
    assert accuracy[run_id("relu", "both", [8], 0)] >= 0.95

    report = results / "report" / "xor"
    tables = (report / "tables.md").read_text()
    assert "Bias placement ablation" in tables and "Best configuration" in tables
    assert "| identity |" in tables
    assert "<table" in (report / "tables.html").read_text()
    for figure in ("accuracy_vs_hidden.png", "learning_curves.png", "diagnostics.png",
                   "decision_boundary.png"):
        assert (report / figure).read_bytes()[:4] == b"\x89PNG", figure
    statistics = results / "report" / "statistics"
    comparisons = pd.read_csv(statistics / "comparisons.csv")
    assert {"activation", "bias"} <= set(comparisons["axis"])
    assert "## bias (reference 'both')" in (statistics / "comparisons.md").read_text()
    assert (statistics / "effects_activation.png").read_bytes()[:4] == b"\x89PNG"
    assert not (statistics / "cd_activation.png").exists()    # one dataset: no ranks
    provenance = json.loads((results / "report" / "provenance.json").read_text())
    assert provenance["n_runs"] == len(runs)
    assert {"build", "blas", "cpu", "numpy", "scipy", "threads"} <= \
        set(provenance["provenance"])

    # Nothing left to do; a report-only option does not rerun any training.
    proc = snakemake(workdir, "-n", "--configfile", TINY)
    assert "Nothing to be done" in output_of(proc), output_of(proc)
    report_only = write_config(tmp_path, "report_only.yaml", {"curves_hidden": [4]})
    proc = snakemake(workdir, "-n", "--configfile", TINY, report_only)
    assert proc.returncode == 0, output_of(proc)
    counts = job_counts(output_of(proc))
    assert "train" not in counts and counts["plot_curves"] == 1

    # A damaged record, a JSON file that is no run record, a record of the earlier
    # scheme: planning, linting and the report change nothing on disk.
    damaged = results / "runs" / "xor" / f"{run_id('tanh', 'none', [8], 0)}.json"
    damaged.write_text(damaged.read_text()[:50])
    foreign = results / "runs" / "xor" / "notes.json"
    foreign.write_text("[1, 2, 3")
    old = results / "runs" / "xor" / "relu.both.h8.adam.s0.f0.json"
    old.write_text("{}")
    before = tree_digest(results)
    html = tmp_path / "report.html"
    for args in (["-n"], ["--lint"], ["--report", html], ["-n", "--rerun-incomplete"]):
        proc = snakemake(workdir, "--configfile", TINY, *args)
        assert proc.returncode == 0, output_of(proc)
        assert tree_digest(results) == before, args
    text = output_of(snakemake(workdir, "-n", "--configfile", TINY))
    assert "1 to train (1 damaged)" in text
    assert "holds 1 record(s) named in the earlier scheme" in text
    assert job_counts(text)["train"] == 1
    html_text = html.read_text(errors="replace")
    assert html.stat().st_size > 50_000
    for name in ("decision_boundary.png", "runs.csv", "comparisons.csv", "ranking.csv",
                 "effects_bias.png"):
        assert name in html_text, name

    proc = snakemake(workdir, "--cores", "2", "--configfile", TINY)
    assert proc.returncode == 0, output_of(proc)
    assert json.loads(damaged.read_text())["status"] == "ok"
    after = tree_digest(results)
    assert after["runs/xor/notes.json"] == before["runs/xor/notes.json"]
    assert after["runs/xor/relu.both.h8.adam.s0.f0.json"] == \
        before["runs/xor/relu.both.h8.adam.s0.f0.json"]
    changed = {p for p in before if p.startswith("runs/") and before[p] != after.get(p)}
    assert changed == {f"runs/xor/{damaged.name}"}
    proc = snakemake(workdir, "-n", "--configfile", TINY)
    assert "Nothing to be done" in output_of(proc), output_of(proc)


@pytest.mark.slow
def test_sweep_on_your_own_files_reports_comparisons_and_ranks(workdir, tmp_path):
    """Two datasets of the user's own files, a text CSV split by a held-out fraction
    and a numeric CSV split by cross-validation, given by paths relative to the folder
    snakemake is started in: the sweep completes and its report holds the paired
    comparisons and the ranking across the two datasets."""
    data = tmp_path / "data"
    data.mkdir()
    gen = np.random.default_rng(0)
    rows = ["review,sentiment"]
    for i in range(120):
        good = i % 2 == 0
        word = ["great", "fine", "superb"][i % 3] if good else ["bad", "dull", "poor"][i % 3]
        rows.append(f'"the plot, the cast: {word}",{"pos" if good else "neg"}')
    (data / "reviews.csv").write_text("\n".join(rows) + "\n")
    y = np.arange(150) % 3
    X = np.column_stack([np.cos(2.1 * y), np.sin(2.1 * y)]) + 0.3 * gen.standard_normal((150, 2))
    (data / "points.csv").write_text(
        "a,b,label\n" + "".join(f"{float(a)!r},{float(b)!r},{c}\n" for (a, b), c in zip(X, y)))
    sweep = {"datasets": [
                 {"name": "reviews", "train": "data/reviews.csv", "holdout": 0.25,
                  "text_column": "review", "label_column": "sentiment"},
                 {"name": "points", "train": "data/points.csv", "cv": 3}],
             "folds": [0, 1, 2], "activations": ["identity", "tanh", "relu"],
             "bias": ["both", "none"], "hidden": [[8]], "seeds": [0, 1],
             "epochs": 40, "embed_dim": 8, "lr": 0.05, "save_models": False,
             "statistics": {"n_resamples": 999}}
    config = write_config(tmp_path, "own.yaml", sweep)
    proc = snakemake(workdir, "--cores", "2", "--configfile", config, cwd=tmp_path)
    assert proc.returncode == 0, output_of(proc)
    results = workdir / "results"
    runs = pd.read_csv(results / "report" / "runs.csv")
    assert len(runs) == 3 * 2 * 2 * (1 + 3) and (runs["status"] == "ok").all()
    assert set(runs.loc[runs["dataset"] == "points", "fold"]) == {0, 1, 2}
    assert not (results / "models").exists()
    record = json.loads(next((results / "runs" / "reviews").glob("*.json")).read_text())
    assert record["data"]["format"] == "csv"
    assert record["data"]["files"]["train"] == str(data / "reviews.csv")
    assert record["run"]["data"]["sha256"]["train"] == \
        hashlib.sha256((data / "reviews.csv").read_bytes()).hexdigest()
    statistics = results / "report" / "statistics"
    comparisons = pd.read_csv(statistics / "comparisons.csv")
    assert set(comparisons["dataset"]) >= {"all", "reviews", "points"}
    assert {"activation", "bias"} <= set(comparisons["axis"])
    ranking = pd.read_csv(statistics / "ranking.csv")
    activation = ranking[ranking["axis"] == "activation"]
    assert set(activation["level"]) == {"identity", "tanh", "relu"}
    assert (activation["n_blocks"] == 2).all()
    assert "## activation" in (statistics / "ranking.md").read_text()
    for name in ("cd_activation.png", "effects_activation.png", "effects_bias.png"):
        assert (statistics / name).read_bytes()[:4] == b"\x89PNG"
    html = tmp_path / "report.html"
    proc = snakemake(workdir, "--configfile", config, "--report", html, cwd=tmp_path)
    assert proc.returncode == 0, output_of(proc)
    assert "comparisons.csv" in html.read_text(errors="replace")


@pytest.mark.slow
def test_killed_sweep_resumes_with_exactly_the_expected_runs(workdir, tmp_path):
    sweep = {"datasets": ["xor"], "activations": ["identity", "tanh", "relu", "gelu"],
             "bias": ["both", "none"], "hidden": [[4]], "seeds": [0, 1],
             "epochs": 30, "boundary": {"activations": ["identity", "tanh"],
                                        "hidden": [4]}}
    expected = expected_run_ids(sweep)
    config = write_config(tmp_path, "kill.yaml", sweep)
    runs_dir = workdir / "results" / "runs" / "xor"

    cmd = [sys.executable, "-m", "snakemake", "--snakefile", SNAKEFILE, "--directory",
           str(workdir), "--cores", "1", "--configfile", str(config)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if runs_dir.is_dir() and len(list(runs_dir.glob("*.json"))) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    done_before = {p.name: p.stat().st_mtime_ns for p in runs_dir.glob("*.json")}
    assert 2 <= len(done_before) < len(expected)
    # A hard kill leaves a lock: a plain rerun refuses to start and changes nothing.
    assert any((workdir / ".snakemake" / "locks").iterdir())
    proc = snakemake(workdir, "--cores", "1", "--configfile", config)
    assert proc.returncode != 0
    assert re.search(r"cannot be locked|Incomplete files", output_of(proc))
    assert {p.name for p in runs_dir.glob("*.json")} == set(done_before)

    proc = snakemake(workdir, "--unlock", "--configfile", config)
    assert proc.returncode == 0, output_of(proc)
    proc = snakemake(workdir, "-n", "--configfile", config)
    assert proc.returncode == 0 or "IncompleteFilesException" in output_of(proc)
    assert f"{len(expected) - len(done_before)} to train" in output_of(proc)
    proc = snakemake(workdir, "--cores", "2", "--rerun-incomplete", "--configfile",
                     config)
    assert proc.returncode == 0, output_of(proc)

    files = sorted(p.name for p in runs_dir.iterdir())
    assert files == sorted(f"{rid}.json" for rid in expected)   # no temporary leftovers
    for name in files:
        record = json.loads((runs_dir / name).read_text())
        assert record["status"] == "ok"
    # Runs finished before the interruption were not trained again.
    for name, mtime in done_before.items():
        assert (runs_dir / name).stat().st_mtime_ns == mtime, name
    models = sorted(p.name for p in (workdir / "results" / "models" / "xor").iterdir())
    assert models == sorted(f"{rid}.npz" for rid in expected)
    runs = pd.read_csv(workdir / "results" / "report" / "runs.csv")
    assert sorted(runs["run_id"]) == sorted(expected)


# ------------------------------------------------------------------ data download

@pytest.fixture
def http_server(tmp_path):
    """A loopback HTTP server serving ``tmp_path / 'served'``; yields its base URL."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_rule_fetches_and_verifies(workdir, tmp_path, http_server):
    served, base = http_server
    archive = os.urandom(5000)
    (served / "rt-polaritydata.tar.gz").write_bytes(archive)
    local = tmp_path / "TREC_10.label"
    local.write_bytes(b"NUM:date When was it ?\n")
    dest = tmp_path / "original"
    config = write_config(tmp_path, "download.yaml", {"download": {
        "dest_dir": str(dest),
        "sources": {
            "mr": [{"url": f"{base}/rt-polaritydata.tar.gz",
                    "sha256": hashlib.sha256(archive).hexdigest()}],
            "trec": [{"url": local.as_uri(), "sha256": None}],
        }}})
    proc = snakemake(workdir, "download_mr", "download_trec", "--cores", "1",
                     "--configfile", config)
    assert proc.returncode == 0, output_of(proc)
    assert (dest / "rt-polaritydata.tar.gz").read_bytes() == archive
    assert (dest / "TREC_10.label").read_bytes() == local.read_bytes()
    log = (workdir / "results" / "logs" / "download" / "trec.log").read_text()
    assert hashlib.sha256(local.read_bytes()).hexdigest() in log
    assert "not pinned" in log
    assert sorted(p.name for p in dest.iterdir()) == ["TREC_10.label",
                                                      "rt-polaritydata.tar.gz"]


def test_download_rule_rejects_a_wrong_checksum(workdir, tmp_path, http_server):
    served, base = http_server
    (served / "rt-polaritydata.tar.gz").write_bytes(b"not the archive")
    dest = tmp_path / "original"
    config = write_config(tmp_path, "download.yaml", {"download": {
        "dest_dir": str(dest),
        "sources": {"mr": [{"url": f"{base}/rt-polaritydata.tar.gz",
                            "sha256": "0" * 64}]}}})
    proc = snakemake(workdir, "download_mr", "--cores", "1", "--configfile", config)
    assert proc.returncode != 0
    log = (workdir / "results" / "logs" / "download" / "mr.log").read_text()
    assert "checksum mismatch" in log
    assert not (dest / "rt-polaritydata.tar.gz").exists()
    assert not dest.exists() or not any(dest.iterdir())   # no partial file either


# ------------------------------------------------------------------ report scripts

def _script(name):
    import importlib.util

    path = os.path.join(REPO, "workflow", "scripts", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"workflow_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tables_mean_std_and_failures():
    tables = _script("tables")
    rows = []
    for activation, accs in (("identity", [0.5, 0.7]), ("tanh", [1.0, 0.9])):
        for seed, acc in enumerate(accs):
            for bias in ("both", "none"):
                rows.append({"dataset": "xor", "run_id": f"{activation}{seed}{bias}",
                             "activation": activation, "bias": bias, "hidden": "8",
                             "solver": "adam", "seed": seed, "fold": 0, "status": "ok",
                             "dev_accuracy": acc, "test_accuracy": acc,
                             "test_macro_f1": acc, "final_loss": 0.1})
    rows.append({**rows[-1], "run_id": "diverged", "seed": 2, "status": "diverged",
                 "dev_accuracy": None, "test_accuracy": None, "test_macro_f1": None})
    sections, summary = tables.build(pd.DataFrame(rows), "xor", "test_accuracy",
                                     "dev_accuracy")
    assert summary == "9 runs (1 diverged, 8 ok)"
    main, ablation, best = (table for _, _, table in sections)
    assert main.loc["identity", "8"] == "60.0 ± 14.1"
    assert main.loc["tanh", "8"] == "95.0 ± 7.1"
    assert ablation.loc["tanh", "none"] == "95.0 ± 7.1 (1 diverged/failed)"
    assert ablation.loc["mean of non-linear activations", "both"] == "95.0"
    assert list(best.index) == ["tanh", "identity"]
    assert best.loc["tanh", "test accuracy"] == "95.0 ± 7.1"
    markdown = tables.to_markdown(main)
    assert markdown.splitlines()[0] == "| activation | 8 |"
    assert "| identity | 60.0 ± 14.1 |" in markdown


def test_collect_flattens_history(tmp_path):
    collect = _script("collect")
    folder = tmp_path / "runs" / "xor"
    folder.mkdir(parents=True)
    record = {"config": {"activation": "tanh", "bias": "both", "hidden": [8, 4],
                         "solver": "adam", "seed": 1, "fold": 0},
              "status": "ok", "test_accuracy": 0.9, "dev_accuracy": 1.0,
              "history": [{"epoch": 1, "loss": 0.6, "train_accuracy": 0.5,
                           "val_accuracy": 0.6, "saturated": [0.2, 0.4],
                           "dead": [None, None], "grad_norm": [1.0, 2.0, 3.0]},
                          {"epoch": 2, "loss": 0.3, "train_accuracy": 0.9,
                           "val_accuracy": 1.0, "saturated": [0.1, 0.3],
                           "dead": [None, None], "grad_norm": [0.5, 1.0, 1.5]}]}
    path = folder / "tanh.both.h8x4.adam.s1.f0.json"
    path.write_text(json.dumps(record))
    runs, history = collect.collect([str(path)], ["dataset", "activation", "bias",
                                                  "hidden", "solver", "seed", "fold"])
    row = runs.iloc[0]
    assert (row["dataset"], row["run_id"]) == ("xor", "tanh.both.h8x4.adam.s1.f0")
    assert (row["hidden"], row["width"], row["depth"]) == ("8x4", 8, 2)
    assert row["final_loss"] == 0.3 and row["best_val_accuracy"] == 1.0
    assert row["final_saturated"] == pytest.approx(0.2)
    assert list(history["epoch"]) == [1, 2]
    assert history["saturated"].tolist() == pytest.approx([0.3, 0.2])
    assert history["saturated_layer0"].tolist() == pytest.approx([0.2, 0.1])
    assert history["dead"].isna().all()
    assert history["grad_norm_output"].tolist() == [3.0, 1.5]


@pytest.mark.slow
def test_damaged_run_records_are_redone_and_only_they(workdir, tmp_path):
    """A truncated record, a record of garbage bytes and a model that is not a zip (what a
    full disk or a crash of the file system can leave) are found when the workflow is
    read, without changing them, and the next run redoes exactly those runs; intact
    runs are not retrained."""
    sweep = {"datasets": ["xor"], "activations": ["identity", "tanh"], "bias": ["both"],
             "hidden": [[4]], "seeds": [0, 1], "epochs": 20,
             "boundary": {"activations": ["identity", "tanh"], "hidden": [4]}}
    config = write_config(tmp_path, "damaged.yaml", sweep)
    proc = snakemake(workdir, "--cores", "2", "--configfile", config)
    assert proc.returncode == 0, output_of(proc)
    runs_dir = workdir / "results" / "runs" / "xor"
    models_dir = workdir / "results" / "models" / "xor"
    records = sorted(runs_dir.glob("*.json"))
    assert len(records) == len(expected_run_ids(sweep)) == 4
    before = {p.name: p.stat().st_mtime_ns for p in records}

    truncated, garbage, bad_model, intact = records
    truncated.write_text(truncated.read_text()[:40])
    garbage.write_bytes(b"\x00\xff" * 50)
    (models_dir / (bad_model.stem + ".npz")).write_bytes(b"not a zip")

    proc = snakemake(workdir, "-n", "--configfile", config)
    assert "3 to train (2 damaged, 1 no model)" in output_of(proc), output_of(proc)
    assert garbage.read_bytes() == b"\x00\xff" * 50          # planning changed nothing
    proc = snakemake(workdir, "--cores", "2", "--configfile", config)
    assert proc.returncode == 0, output_of(proc)
    for damaged in (truncated, garbage, bad_model):
        assert json.loads(damaged.read_text())["status"] == "ok"
        assert damaged.stat().st_mtime_ns != before[damaged.name]
    assert intact.stat().st_mtime_ns == before[intact.name]
    logs = "".join(p.read_text() for p in (workdir / "results" / "logs" / "train")
                   .rglob("*.2.log"))
    assert "not valid JSON (truncated or garbled)" in logs
    assert "its model file is damaged" in logs
    runs = pd.read_csv(workdir / "results" / "report" / "runs.csv")
    assert sorted(runs["run_id"]) == sorted(expected_run_ids(sweep))
    proc = snakemake(workdir, "-n", "--configfile", config)
    assert "Nothing to be done" in output_of(proc), output_of(proc)


@pytest.mark.slow
def test_a_changed_setting_retrains_only_the_runs_it_changes(workdir, tmp_path):
    sweep = {"datasets": ["xor"], "activations": ["identity", "tanh"], "bias": ["both"],
             "hidden": [[4]], "seeds": [0], "epochs": 10, "save_models": False,
             "boundary": {"activations": ["identity"], "hidden": [4]}}
    config = write_config(tmp_path, "a.yaml", sweep)
    assert snakemake(workdir, "--cores", "1", "--configfile", config).returncode == 0
    runs_dir = workdir / "results" / "runs" / "xor"
    before = {p.name: p.stat().st_mtime_ns for p in runs_dir.glob("*.json")}
    lr = dict(default_config()["lr"], tanh=0.02)          # tanh's rate only
    changed = write_config(tmp_path, "b.yaml", {**sweep, "lr": lr})
    proc = snakemake(workdir, "-n", "--configfile", changed)
    assert "1 to train (1 changed)" in output_of(proc), output_of(proc)
    assert snakemake(workdir, "--cores", "1", "--configfile", changed).returncode == 0
    after = {p.name: p.stat().st_mtime_ns for p in runs_dir.glob("*.json")}
    assert [n for n in after if after[n] != before[n]] == [
        f"{run_id('tanh', 'both', [4], 0)}.json"]
    record = json.loads((runs_dir / f"{run_id('tanh', 'both', [4], 0)}.json").read_text())
    assert record["params"]["learning_rate_init"] == 0.02


# ------------------------------------------------------------------ the plan

def _sweep_module():
    sys.path.insert(0, os.path.join(REPO, "workflow", "scripts"))
    try:
        import sweep
    finally:
        sys.path.pop(0)
    return sweep


def plan_of(tmp_path, **changes):
    """The plan of the default configuration with ``changes``, as the workflow builds
    it (schema defaults filled in), with results under ``tmp_path``."""
    from snakemake.utils import validate

    config = default_config()
    config.update(changes)
    validate(config, os.path.join(REPO, "workflow", "schemas", "config.schema.yaml"))
    sweep = _sweep_module()
    sweep.check_seeds(config)
    return sweep, sweep.build_plan(config, str(tmp_path), str(tmp_path / "results"))


def test_run_ids_name_every_axis_and_blocks_hold_one_seed_and_fold(tmp_path):
    sweep, plan = plan_of(tmp_path, axes={"label_smoothing": [0.0, 0.1]},
                          hidden=[[16], [8, 8]], block_size=10)
    config = default_config()
    assert len(plan.runs) == 2 * len(config["activations"]) * 4 * 2 * 2 * 5
    rid = "activation=relu.bias=both.hidden=8x8.solver=adam.label_smoothing=0.1.seed=3.fold=0"
    run = plan.runs[("negation", rid)]
    assert run.params["label_smoothing"] == 0.1 and run.params["random_state"] == 3
    assert run.params["hidden_layer_sizes"] == [8, 8]
    assert run.params["learning_rate_init"] == config["lr"]["default"]
    assert run.kind == "text" and plan.runs[("xor", rid)].kind == "numeric"
    assert "embed_dim" in run.params and "embed_dim" not in plan.runs[("xor", rid)].params
    assert plan.axes == ["activation", "bias", "hidden", "solver", "label_smoothing"]
    assert plan.levels["hidden"] == ["16", "8x8"]
    assert plan.levels["label_smoothing"] == ["0.0", "0.1"]
    sigmoid = plan.runs[("xor", rid.replace("relu", "sigmoid"))]
    assert sigmoid.params["learning_rate_init"] == config["lr"]["sigmoid"]
    for (dataset, block), members in plan.blocks.items():
        assert 1 <= len(members) <= 10
        assert len({(r.dataset, r.seed, r.fold) for r in members}) == 1
        assert block == f"seed={members[0].seed}.fold={members[0].fold}.part=" \
            f"{block.rsplit('=', 1)[1]}"
    assert sum(len(m) for m in plan.blocks.values()) == len(plan.runs)


def test_levels_are_written_the_same_way_everywhere():
    sweep = _sweep_module()
    assert sweep.level_label([64, 64], "hidden") == "64x64"
    assert sweep.level_label([1, 2], "ngram_range") == "1-2"
    assert sweep.level_label(None) == "none"
    assert sweep.level_label(True) == "true"
    assert sweep.level_label(0.0001) == "0.0001" and sweep.level_label(1e-5) == "1e-05"
    assert sweep.level_label(3) == "3" and sweep.level_label("adam") == "adam"


def test_an_axis_of_text_models_needs_text_datasets_only(tmp_path):
    sweep = _sweep_module()
    with pytest.raises(sweep.ConfigError, match="applies to text data only"):
        plan_of(tmp_path, axes={"embed_dim": [8, 16]})
    _, plan = plan_of(tmp_path, datasets=["negation"], axes={"embed_dim": [8, 16]},
                      seeds=[0])
    assert {r.params["embed_dim"] for r in plan.runs.values()} == {8, 16}


def test_aliases_merge_into_one_level(tmp_path):
    _, plan = plan_of(tmp_path, datasets=["xor"], activations=["logistic", "sigmoid"],
                      seeds=[0], lr={"default": 0.01, "logistic": 0.1})
    assert {r.axes["activation"] for r in plan.runs.values()} == {"sigmoid"}
    assert len(plan.runs) == 4 * 3
    assert {r.params["learning_rate_init"] for r in plan.runs.values()} == {0.1}
    assert plan.notes == ["activation: 'logistic' is another name of 'sigmoid'; its runs "
                          "are those of 'sigmoid'"]
    sweep = _sweep_module()
    with pytest.raises(sweep.ConfigError, match="another name of 'sigmoid', with a "
                                                "different rate"):
        plan_of(tmp_path, datasets=["xor"], lr={"default": 0.01, "logistic": 0.1,
                                                "sigmoid": 0.2})


def test_run_state_and_block_manifests(tmp_path):
    sweep, plan = plan_of(tmp_path, datasets=["xor"], activations=["relu", "tanh"],
                          bias=["both"], hidden=[[4]], seeds=[0])
    results = str(tmp_path / "results")
    (key, members), = plan.blocks.items()
    assert len(members) == 2
    relu, tanh = members
    state = lambda run: sweep.record_state(run.record, run.spec(), run.model)
    assert state(relu) == ("missing", "")
    target, todo = sweep.block_targets(plan, results)[key]
    assert target.endswith("blocks/xor/seed=0.fold=0.part=0.1.json")
    assert set(todo) == {relu.run_id, tanh.run_id}

    os.makedirs(os.path.dirname(relu.record))
    os.makedirs(os.path.dirname(relu.model))
    good = {"run": relu.spec(), "status": "ok"}
    for run in (relu, tanh):
        with open(run.record, "w") as fh:
            json.dump({**good, "run": run.spec()}, fh)
        with open(run.model, "wb") as fh:
            fh.write(b"PK\x05\x06" + b"\0" * 18)              # an empty zip archive
    assert state(relu) == ("done", "")
    target, todo = sweep.block_targets(plan, results)[key]
    assert target.endswith(".1.json") and todo == {}          # a manifest will be written
    os.makedirs(os.path.dirname(target))
    open(target, "w").close()
    assert sweep.block_targets(plan, results)[key] == (target, {})

    cases = [
        ({**good, "status": "failed", "error": "boom"}, ("failed", "boom")),
        ({**good, "run": {**relu.spec(), "seed": 9}}, ("changed", "a record of other settings")),
        ([1, 2], ("damaged", "not a run record")),
    ]
    for content, expected in cases:
        with open(relu.record, "w") as fh:
            json.dump(content, fh)
        assert state(relu) == expected
    with open(relu.record, "wb") as fh:
        fh.write(b"{\"run\": ")
    assert state(relu) == ("damaged", "not valid JSON (truncated or garbled)")
    target, todo = sweep.block_targets(plan, results)[key]
    assert target.endswith("seed=0.fold=0.part=0.2.json") and list(todo) == [relu.run_id]
    with open(relu.record, "w") as fh:
        json.dump(good, fh)
    os.remove(relu.model)
    assert state(relu) == ("no model", "its model file is missing")
    # the next generation's manifest appears: that is the block's target from now on
    open(target, "w").close()
    with open(relu.model, "wb") as fh:
        fh.write(b"PK\x05\x06" + b"\0" * 18)
    assert sweep.block_targets(plan, results)[key] == (target, {})


def test_a_failing_run_keeps_the_finished_runs_of_its_block(tmp_path):
    """One run of a block fails (its data cannot be read): the others are recorded as
    they finish, the block writes no manifest and fails; the next attempt trains only
    the failed run."""
    sweep, plan = plan_of(tmp_path, datasets=["xor"], activations=["identity", "relu", "tanh"],
                          bias=["both"], hidden=[[4]], seeds=[0], epochs=5)
    train_block = _script("train_block")
    (key, members), = plan.blocks.items()
    jobs = [run.job() for run in members]
    jobs[1] = {**jobs[1], "source": {"train": str(tmp_path / "missing.csv"),
                                     "holdout": 0.2}}
    manifest = tmp_path / "results" / "blocks" / "xor" / "m.1.json"
    lines = []
    assert train_block.train_block(jobs, str(manifest), lines.append) == 1
    assert not manifest.exists()
    records = {run.run_id: json.loads(open(run.record).read()) for run in members}
    statuses = [records[run.run_id]["status"] for run in members]
    assert statuses == ["ok", "failed", "ok"]
    assert "data file not found" in records[members[1].run_id]["error"]
    kept = {run.run_id: os.stat(run.record).st_mtime_ns for run in members}

    jobs = [run.job() for run in members]
    lines = []
    assert train_block.train_block(jobs, str(manifest), lines.append) == 0
    written = json.loads(manifest.read_text())
    assert written["trained"] == 1 and written["kept"] == 2
    for run in (members[0], members[2]):
        assert os.stat(run.record).st_mtime_ns == kept[run.run_id]
        assert f"{run.run_id}: finished before, kept" in lines
    assert json.loads(open(members[1].record).read())["status"] == "ok"


def test_train_block_reads_the_data_of_a_block_once(tmp_path, monkeypatch):
    from cymlp import cli

    sweep, plan = plan_of(tmp_path, datasets=["negation"], activations=["relu", "tanh"],
                          bias=["both", "none"], hidden=[[4]], seeds=[0], epochs=2,
                          embed_dim=4)
    train_block = _script("train_block")
    calls = []
    real = cli.load_data
    monkeypatch.setattr(cli, "load_data", lambda *a, **k: calls.append(1) or real(*a, **k))
    (key, members), = plan.blocks.items()
    assert train_block.train_block([r.job() for r in members],
                                   str(tmp_path / "m.json"), lambda line: None) == 0
    assert len(members) == 4 and len(calls) == 1


# ------------------------------------------------------------------ full disk

def _mount_tmpfs(path, size):
    """Mount a tmpfs of ``size`` at ``path``; False when this machine does not allow it."""
    if os.geteuid() != 0 or not os.path.exists("/bin/mount"):
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    return proc.returncode == 0


@pytest.fixture
def tiny_disk(workdir):
    """``workdir/results`` on a 64 KiB tmpfs: room for a few runs of a sweep, not all."""
    results = workdir / "results"
    results.mkdir()
    if not _mount_tmpfs(results, "64k"):
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        yield results
    finally:
        subprocess.run(["umount", "-l", str(results)], check=False)


@pytest.mark.slow
def test_full_disk_fails_cleanly_and_the_rerun_redoes_only_the_lost_runs(workdir, tmp_path,
                                                                        tiny_disk):
    """A sweep whose results folder fills up: jobs that could not write fail (no
    half-written record, model or temporary file is left behind), the runs that were
    written stay valid; once there is room, the rerun trains exactly the lost runs and
    the report holds every run once."""
    sweep = {"datasets": ["xor"], "activations": ["identity", "tanh", "relu", "gelu"],
             "bias": ["both", "none"], "hidden": [[4]], "seeds": [0, 1], "epochs": 10,
             "boundary": {"activations": ["identity", "tanh"], "hidden": [4]}}
    expected = expected_run_ids(sweep)
    config = write_config(tmp_path, "full.yaml", sweep)
    runs_dir = tiny_disk / "runs" / "xor"
    models_dir = tiny_disk / "models" / "xor"

    proc = snakemake(workdir, "--cores", "1", "--keep-going", "--configfile", config)
    assert proc.returncode != 0, "the sweep fitted on the tiny disk: make the disk smaller"
    text = output_of(proc)
    logs = "".join(p.read_text(errors="replace")
                   for p in (tiny_disk / "logs").rglob("*.log") if p.is_file())
    assert "No space left on device" in text + logs

    written = {p.name: p.stat().st_mtime_ns for p in runs_dir.glob("*.json")}
    assert 1 <= len(written) < len(expected)
    for name in written:                      # what was written is whole and loadable
        assert json.loads((runs_dir / name).read_text())["status"] == "ok"
        assert (models_dir / name.replace(".json", ".npz")).is_file()
    # A failed job leaves no output and no temporary file behind.
    leftovers = [p.name for p in tiny_disk.rglob(".*") if p.is_file()]
    assert leftovers == []
    assert {p.stem for p in models_dir.glob("*.npz")} == {n[:-5] for n in written}

    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)
    proc = snakemake(workdir, "-n", "--configfile", config)
    assert proc.returncode == 0, output_of(proc)
    assert f"{len(expected) - len(written)} to train ({len(expected) - len(written)} " \
        "missing)" in output_of(proc)
    proc = snakemake(workdir, "--cores", "2", "--configfile", config)
    assert proc.returncode == 0, output_of(proc)

    for name, mtime in written.items():       # the runs that survived were not redone
        assert (runs_dir / name).stat().st_mtime_ns == mtime, name
    assert sorted(p.stem for p in runs_dir.glob("*.json")) == sorted(expected)
    runs = pd.read_csv(tiny_disk / "report" / "runs.csv")
    assert sorted(runs["run_id"]) == sorted(expected)
    assert (runs["status"] == "ok").all()


# ------------------------------------------------------------------ an installed cymlp

@pytest.mark.slow
def test_jobs_use_the_installed_cymlp_not_the_checkouts_sources(tmp_path):
    """cymlp installed without -e, snakemake run from a checkout whose cymlp/ was never
    built: the jobs import the installed package, not the checkout's sources; the one
    way that puts the checkout first on the path (python -m snakemake) stops with a
    message saying what to do."""
    import shutil

    site = tmp_path / "site"
    shutil.copytree(os.path.join(REPO, "cymlp"), site / "cymlp",
                    ignore=shutil.ignore_patterns("__pycache__"))
    checkout = tmp_path / "checkout"
    for folder in ("workflow", "config"):
        shutil.copytree(os.path.join(REPO, folder), checkout / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(REPO, "cymlp"), checkout / "cymlp",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__",
                                                  "_build_info.py"))
    sweep = {"datasets": ["xor"], "activations": ["relu"], "bias": ["both"],
             "hidden": [[4]], "seeds": [0], "epochs": 5}
    config = write_config(tmp_path, "one.yaml", sweep)
    env = dict(os.environ, PYTHONPATH=str(site), PWD=str(checkout))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    command = shutil.which("snakemake", path=env["PATH"])
    assert command, "the snakemake command is not installed next to this Python"
    proc = subprocess.run([command, "results/report/runs.csv", "--cores", "1",
                           "--configfile", str(config)], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, output_of(proc)
    runs = pd.read_csv(checkout / "results" / "report" / "runs.csv")
    assert list(runs["status"]) == ["ok"]

    # -S and site-packages on PYTHONPATH: no .pth file is read, so an editable install
    # of cymlp in this environment (its import hook) cannot stand in for the checkout's
    # missing extension, as it could not for a user with a regular install
    import sysconfig

    plain = dict(env, PYTHONPATH=os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]]))
    proc = subprocess.run([sys.executable, "-S", "-m", "snakemake", "-n", "--configfile",
                           str(config)], cwd=checkout, env=plain, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode != 0
    assert "cymlp's compiled extension is missing" in output_of(proc)
    assert "not `python -m snakemake`" in output_of(proc)


# ------------------------------------------------------------------ multi-label, svmlight, class_weight

def _multilabel_file(path, n, seed):
    rng = np.random.default_rng(seed)
    words = {"a": ["apple", "pear"], "b": ["car", "bus"], "c": ["red", "blue"]}
    lines = []
    for _ in range(n):
        labels = list(rng.choice(["a", "b", "c"], size=rng.integers(1, 3), replace=False))
        tokens = [str(rng.choice(words[label])) for label in labels for _ in range(3)]
        lines.append(" ".join(f"__label__{label}" for label in labels) + " " + " ".join(tokens))
    path.write_text("\n".join(lines) + "\n")
    return path


def _svmlight_file(path, n):
    path.write_text("".join(f"{i % 3} {1 + i % 3}:1 {4 + i % 5}:0.5\n" for i in range(n)))
    return path


def _train_all_blocks(plan, tmp_path):
    train_block = _script("train_block")
    for (dataset, block), members in plan.blocks.items():
        lines = []
        code = train_block.train_block([r.job() for r in members],
                                       str(tmp_path / "blocks" / f"{dataset}.{block}.json"),
                                       lines.append)
        assert code == 0, lines


def test_multilabel_and_svmlight_datasets_go_through_the_sweep(tmp_path):
    tags = _multilabel_file(tmp_path / "tags.ft", 120, 0)
    sparse = _svmlight_file(tmp_path / "points.svm", 60)
    sweep, plan = plan_of(
        tmp_path, datasets=[{"name": "tags", "train": "tags.ft", "holdout": 0.2},
                            {"name": "sparse", "train": "points.svm", "holdout": 0.2}],
        activations=["relu"], bias=["both"], hidden=[[8]], seeds=[0], epochs=15,
        embed_dim=8, lr={"default": 0.05}, threshold=0.4)
    assert plan.datasets["tags"].kind == "text" and plan.datasets["sparse"].kind == "numeric"
    assert {r.params["threshold"] for r in plan.runs.values()} == {0.4}
    _train_all_blocks(plan, tmp_path)
    records = {run.dataset: json.loads(open(run.record).read()) for run in plan.runs.values()}
    tags_record, sparse_record = records["tags"], records["sparse"]
    assert tags_record["status"] == sparse_record["status"] == "ok"
    assert tags_record["multilabel"] is True and sparse_record["multilabel"] is False
    assert sparse_record["data"]["sparse"] is True
    assert tags_record["test_accuracy"] is not None and tags_record["test_micro_f1"] > 0.5
    assert sparse_record["test_micro_f1"] == sparse_record["test_accuracy"]

    collect = _script("collect")
    runs, _ = collect.collect([[r.dataset, r.run_id, r.record] for r in plan.runs.values()],
                              plan.axes)
    row = runs.set_index("dataset").loc["tags"]
    assert bool(row["multilabel"]) is True
    assert row["test_accuracy"] == tags_record["test_accuracy"]  # the subset accuracy
    assert row["test_micro_f1"] == tags_record["test_micro_f1"]
    assert bool(runs.set_index("dataset").loc["sparse", "multilabel"]) is False
    path = tmp_path / "runs.csv"
    runs.to_csv(path, index=False)  # the tables read runs.csv back
    tables = _script("tables")
    sections, summary = tables.build(pd.read_csv(path), "tags", "test_accuracy",
                                     "dev_accuracy", plan.axes)
    assert "multi-label data: every accuracy is a subset accuracy" in summary
    best = sections[-1][2]
    assert best.loc["relu", "test micro-F1"] == f"{100 * tags_record['test_micro_f1']:.1f}"
    sections, summary = tables.build(pd.read_csv(path), "sparse", "test_accuracy",
                                     "dev_accuracy", plan.axes)
    assert "multi-label" not in summary and "test micro-F1" not in sections[-1][2]


def test_class_weight_as_an_axis_a_key_and_a_parameter(tmp_path):
    _svmlight_file(tmp_path / "points.svm", 60)
    own = [{"name": "sparse", "train": "points.svm", "holdout": 0.2}]
    base = {"activations": ["relu"], "bias": ["both"], "hidden": [[4]], "seeds": [0],
            "epochs": 3}
    sweep, plan = plan_of(tmp_path, datasets=["xor", *own],
                          axes={"class_weight": [None, "balanced"]}, **base)
    assert plan.levels["class_weight"] == ["none", "balanced"]
    assert {r.params["class_weight"] for r in plan.runs.values()} == {None, "balanced"}
    assert any(".class_weight=balanced." in rid for _, rid in plan.runs)
    _, keyed = plan_of(tmp_path, datasets=own, class_weight="balanced",
                       per_dataset={"sparse": {"class_weight": None}}, **base)
    assert {r.params["class_weight"] for r in keyed.runs.values()} == {None}
    _, default = plan_of(tmp_path, datasets=own, **base)  # left out: not in the spec
    assert all("class_weight" not in r.params for r in default.runs.values())
    # a mapping of label to weight: JSON keys (str) weigh the file's int labels
    _, mapped = plan_of(tmp_path, datasets=own, params={"class_weight": {0: 3.0, 2: 0.5}},
                        **base)
    _train_all_blocks(mapped, tmp_path)
    (run,) = mapped.runs.values()
    record = json.loads(open(run.record).read())
    assert record["status"] == "ok"
    assert record["params"]["class_weight"] == {"0": 3.0, "2": 0.5}


def test_a_word_vector_file_of_params_is_part_of_the_runs_identity(tmp_path):
    vectors = tmp_path / "v.vec"
    vectors.write_text("2 4\nnot 0 0 0 1\ngood 1 0 0 0\n")
    base = {"datasets": ["negation"], "activations": ["relu"], "bias": ["both"],
            "hidden": [[4]], "seeds": [0], "embed_dim": 4}
    _, plan = plan_of(tmp_path, params={"pretrained_vectors": "v.vec",
                                        "embed_trainable": False}, **base)
    (run,) = plan.runs.values()
    assert run.params["pretrained_vectors"] == str(vectors)  # resolved against the start
    assert run.params["embed_trainable"] is False
    first = run.spec()["data"]["pretrained_vectors_sha256"]
    vectors.write_text("2 4\nnot 0 0 0 1\ngood 0 1 0 0\n")
    _, plan = plan_of(tmp_path, params={"pretrained_vectors": "v.vec",
                                        "embed_trainable": False}, **base)
    (changed,) = plan.runs.values()
    assert changed.spec()["data"]["pretrained_vectors_sha256"] != first
    assert changed.run_id == run.run_id and changed.spec() != run.spec()


def test_autotune_budget_is_a_parameter_and_an_axis(tmp_path):
    """autotune_budget goes through params (every run) or axes (a level per run), is
    checked by the estimator's rule before any job, and names its runs."""
    sweep, plan = plan_of(tmp_path, datasets=["negation"], seeds=[0],
                          axes={"autotune_budget": [None, 5]})
    budgets = {r.axes["autotune_budget"]: r.params.get("autotune_budget")
               for r in plan.runs.values()}
    assert budgets == {"none": None, "5.0": 5.0}
    assert any(".autotune_budget=5.0." in rid for _, rid in plan.runs)
    _, plan = plan_of(tmp_path, datasets=["negation"], seeds=[0],
                      params={"autotune_budget": 5})
    assert {r.params["autotune_budget"] for r in plan.runs.values()} == {5}
    with pytest.raises(sweep.ConfigError, match="autotune_budget must be None or a "
                                                "positive number of seconds"):
        plan_of(tmp_path, datasets=["negation"], seeds=[0], params={"autotune_budget": -1})
