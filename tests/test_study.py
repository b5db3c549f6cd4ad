"""The committed study (results/study/) can be regenerated from its configuration.

Two checks: the statistics script, run on the committed runs.csv with the study's
settings, writes exactly the committed tables; and a small real sweep with the study's
configuration (one dataset, a few configurations, one seed) trains runs whose results
equal the committed rows of the same run ids.
"""

import importlib.util
import os
import subprocess
import sys

import pytest

yaml = pytest.importorskip("yaml")
pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDY = os.path.join(REPO, "results", "study")
SCRIPTS = os.path.join(REPO, "workflow", "scripts")

#: The tables of the statistics step, compared byte for byte.
TABLES = ("comparisons.csv", "comparisons.md", "interactions.csv", "ranking.csv",
          "ranking.md")


def _load(name):
    sys.path.insert(0, SCRIPTS)
    try:
        spec = importlib.util.spec_from_file_location(f"_study_{name}",
                                                      os.path.join(SCRIPTS, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(SCRIPTS)
    return module


def study_config():
    with open(os.path.join(STUDY, "config.yaml")) as fh:
        return yaml.safe_load(fh)


def study_axes(config):
    """The study's axes and reference levels, as the workflow passes them on."""
    sweep = _load("sweep")
    axes = [axis for _, axis in sweep.SHORTHAND_AXES] + sorted(config.get("axes") or {})
    reference = {axis: sweep.level_label(level, axis)
                 for axis, level in config["statistics"]["reference"].items()}
    return axes, reference


@pytest.mark.slow
def test_committed_statistics_regenerate_from_the_committed_runs(tmp_path):
    config = study_config()
    statistics = _load("statistics")
    axes, reference = study_axes(config)
    options = config["statistics"]
    settings = statistics.Settings(
        axes, reference, metric=options["metric"], alpha=options["alpha"],
        seed=options["seed"], ci=options["ci"], test=options["test"],
        n_resamples=options["n_resamples"], blocks=options["blocks"])
    runs = pd.read_csv(os.path.join(STUDY, "runs.csv"))
    statistics.run(runs, settings, str(tmp_path))
    for name in TABLES:
        with open(os.path.join(STUDY, "statistics", name), encoding="utf-8") as fh:
            committed = fh.read()
        with open(tmp_path / name, encoding="utf-8") as fh:
            assert fh.read() == committed, f"results/study/statistics/{name} differs"
    written = {p.name for p in tmp_path.glob("*.png")}
    committed = {p for p in os.listdir(os.path.join(STUDY, "statistics"))
                 if p.endswith(".png")}
    assert written == committed


def test_the_committed_study_is_complete():
    """The runs of the configuration are all in runs.csv, every one finished."""
    config = study_config()
    runs = pd.read_csv(os.path.join(STUDY, "runs.csv"))
    n_configs = (len(config["activations"]) * len(config["bias"]) * len(config["hidden"])
                 * len(config["solvers"]))
    folds = {"mr": len(config["per_dataset"]["mr"]["folds"])}
    expected = sum(n_configs * len(config["seeds"]) * folds.get(d, 1)
                   for d in config["datasets"])
    assert len(runs) == expected
    assert runs.groupby("dataset")["run_id"].nunique().sum() == expected
    assert set(runs["status"]) <= {"ok", "diverged"}
    assert set(runs["dataset"]) == set(config["datasets"])
    for name in ("README.md", "command.txt", "provenance.json", "summary.md"):
        assert os.path.isfile(os.path.join(STUDY, name)), name


@pytest.mark.slow
def test_a_small_real_sweep_reproduces_the_committed_rows(tmp_path):
    data_dir = os.path.abspath(os.environ.get("CYMLP_DATA_DIR", "")) \
        if os.environ.get("CYMLP_DATA_DIR") else ""
    if not os.path.isfile(os.path.join(data_dir, "TREC.train.all")):
        pytest.skip("CYMLP_DATA_DIR does not hold the TREC files")
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "config").symlink_to(os.path.join(REPO, "config"))
    subset = {"datasets": ["trec"], "activations": ["relu", "sigmoid"], "bias": ["both", "none"],
              "hidden": [[16]], "seeds": [0], "results": "results"}
    override = tmp_path / "subset.yaml"
    override.write_text(yaml.safe_dump(subset))
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "results/report/runs.csv", "--snakefile",
         os.path.join(REPO, "workflow", "Snakefile"), "--directory", str(workdir),
         "--cores", "2", "--configfile", os.path.join(STUDY, "config.yaml"), str(override),
         "--config", f"data_dir={data_dir}"],
        env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fresh = pd.read_csv(workdir / "results" / "report" / "runs.csv").set_index("run_id")
    committed = pd.read_csv(os.path.join(STUDY, "runs.csv"))
    committed = committed[committed["dataset"] == "trec"].set_index("run_id")
    assert len(fresh) == 4 and set(fresh.index) <= set(committed.index)
    columns = ["status", "n_epochs", "dev_accuracy", "test_accuracy", "test_macro_f1"]
    for run_id in fresh.index:
        for column in columns:
            assert fresh.loc[run_id, column] == committed.loc[run_id, column], \
                (run_id, column)
        # the loss to float32 rounding: a kernel may change how it rounds (the
        # softmax's exp is within 2 ulp of exp, not bitwise libm's), not what it
        # computes
        assert fresh.loc[run_id, "final_loss"] == pytest.approx(
            committed.loc[run_id, "final_loss"], rel=1e-5), (run_id, "final_loss")
