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

pytest.importorskip("snakemake")
pd = pytest.importorskip("pandas")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    # Jobs call `python -m cymlp.cli`: make that the interpreter running the tests.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def snakemake(workdir, *args, timeout=300, **kwargs):
    """Run snakemake on the repository's Snakefile in ``workdir``."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", SNAKEFILE,
           "--directory", str(workdir), *map(str, args)]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, check=False,
                          timeout=timeout, **kwargs)


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


def sweep_size(config, n_datasets):
    return (n_datasets * len(config["activations"]) * len(config["bias"])
            * len(config["hidden"]) * len(config.get("solvers", ["adam"]))
            * len(config.get("seeds", [0])))


def expected_run_ids(config):
    ids = set()
    for activation in config["activations"]:
        for bias in config["bias"]:
            for hidden in config["hidden"]:
                for seed in config["seeds"]:
                    h = "x".join(map(str, hidden))
                    ids.add(f"{activation}.{bias}.h{h}.adam.s{seed}.f0")
    return ids


# ------------------------------------------------------------------ static checks

def test_lint(workdir):
    proc = snakemake(workdir, "--lint")
    assert proc.returncode == 0, output_of(proc)
    assert "Congratulations" in output_of(proc)


def test_default_config_meets_the_sweep_minimum():
    config = default_config()
    assert config["data_dir"] is None
    assert {"xor", "negation"} <= set(config["datasets"])
    assert len(config["activations"]) >= 8 and "identity" in config["activations"]
    assert set(config["bias"]) == {"both", "hidden", "output", "none"}
    assert len(config["hidden"]) >= 3
    assert len(config["seeds"]) >= 2


def test_every_config_key_is_documented():
    with open(os.path.join(REPO, "workflow", "schemas", "config.schema.yaml")) as fh:
        schema = yaml.safe_load(fh)
    with open(os.path.join(REPO, "config", "README.md")) as fh:
        readme = fh.read()
    keys = list(schema["properties"])
    keys += [f"download.{k}" for k in schema["properties"]["download"]["properties"]]
    missing = [k for k in keys if f"`{k}`" not in readme]
    assert not missing, f"config/README.md does not document {missing}"
    assert set(default_config()) <= set(schema["properties"])


def test_dry_run_plans_the_whole_default_sweep(workdir):
    config = default_config()
    proc = snakemake(workdir, "-n")
    assert proc.returncode == 0, output_of(proc)
    counts = job_counts(output_of(proc))
    assert counts["train"] == sweep_size(config, 2)
    assert counts["collect"] == 1
    assert counts["tables"] == 2 and counts["plot_accuracy"] == 2
    assert counts["plot_boundary"] == 1
    assert not (workdir / "results").exists()


def test_real_dataset_joins_only_when_its_files_exist(workdir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    small = {"datasets": ["xor", "mr"], "activations": ["relu"], "bias": ["both"],
             "hidden": [[4]], "seeds": [0], "folds": [0, 1, 2]}
    config = write_config(tmp_path, "small.yaml", {**small, "data_dir": str(data)})

    proc = snakemake(workdir, "-n", "--configfile", config)
    assert proc.returncode == 0, output_of(proc)
    assert job_counts(output_of(proc))["train"] == 1          # xor only
    assert "skipping mr" in output_of(proc)

    (data / "rt-polarity.all").write_text("1 a fine film\n0 a dull film\n")
    proc = snakemake(workdir, "-n", "--configfile", config)
    assert proc.returncode == 0, output_of(proc)
    assert job_counts(output_of(proc))["train"] == 1 + 3      # xor + 3 folds of mr
    assert "results/runs/mr/relu.both.h4.adam.s0.f2.json" in output_of(proc)


def test_sentence_sweep_plans_all_real_datasets(workdir):
    data_dir = os.environ.get("CYMLP_DATA_DIR", "")
    needed = ("rt-polarity.all", "stsa.binary.train", "stsa.binary.dev",
              "stsa.binary.test", "TREC.train.all", "TREC.test.all")
    if not all(os.path.isfile(os.path.join(data_dir, name)) for name in needed):
        pytest.skip("CYMLP_DATA_DIR does not hold the MR, SST-2 and TREC files")
    proc = snakemake(workdir, "-n", "--configfile",
                     os.path.join(REPO, "config", "real.yaml"),
                     "--config", f"data_dir={data_dir}")
    assert proc.returncode == 0, output_of(proc)
    counts = job_counts(output_of(proc))
    # 4 activations x 4 bias placements x 2 hidden sizes x 2 seeds; MR with 2 folds
    assert counts["train"] == 64 * (2 + 1 + 1)
    assert counts["tables"] == 3 and "plot_boundary" not in counts


def test_subword_option_reaches_the_text_runs_only(workdir, tmp_path):
    config = write_config(tmp_path, "subwords.yaml", {"char_ngram_range": [3, 5]})
    proc = snakemake(workdir, "-n", "-p", "--configfile", config)
    assert proc.returncode == 0, output_of(proc)
    commands = [line for line in output_of(proc).splitlines() if "cymlp.cli train" in line]
    negation = [c for c in commands if "--dataset negation" in c]
    xor = [c for c in commands if "--dataset xor" in c]
    assert negation and xor
    assert all("--char-ngram-range 3,5" in c for c in negation)
    assert not any("--char-ngram-range" in c for c in xor)
    proc = snakemake(workdir, "-n", "-p")
    assert "--char-ngram-range" not in output_of(proc)


@pytest.mark.parametrize("change, message", [
    ({"char_ngram_range": [0, 3]}, "is not valid under any of the given schemas"),
    ({"activatons": ["relu"]},
     "Additional properties are not allowed ('activatons' was unexpected)"),
    ({"activations": ["relu", "relux"]}, "'relux' is not one of"),
    ({"hidden": [[16], [0]]}, "0 is less than the minimum of 1"),
    ({"per_dataset": {"xor": {"epochs": 0}}}, "0 is less than the minimum of 1"),
])
def test_config_validation_rejects_before_any_job(workdir, tmp_path, change, message):
    config = write_config(tmp_path, "bad.yaml", change)
    proc = snakemake(workdir, "--cores", "1", "--configfile", config)
    assert proc.returncode != 0
    text = output_of(proc)
    assert "Error validating config file" in text
    assert message in text
    assert not (workdir / "results").exists()
    assert "rule train" not in text


# ------------------------------------------------------------------ running sweeps

def test_tiny_sweep_end_to_end(workdir, tmp_path):
    with open(TINY) as fh:
        tiny = yaml.safe_load(fh)
    proc = snakemake(workdir, "--cores", "2", "--configfile", TINY)
    assert proc.returncode == 0, output_of(proc)

    runs = pd.read_csv(workdir / "results" / "report" / "runs.csv")
    assert set(runs["run_id"]) == expected_run_ids(tiny)
    assert len(runs) == len(expected_run_ids(tiny))
    assert (runs["status"] == "ok").all()
    assert set(runs["dataset"]) == {"xor"}
    history = pd.read_csv(workdir / "results" / "report" / "history.csv")
    assert set(history["run_id"]) == set(runs["run_id"])
    assert "saturated" in history.columns

    # A linear network cannot fit XOR (at most 3 of the 4 corners); tanh and ReLU can.
    accuracy = runs.set_index("run_id")["test_accuracy"]
    assert accuracy["identity.both.h8.adam.s0.f0"] <= 0.8
    assert accuracy["tanh.both.h8.adam.s0.f0"] >= 0.95
    assert accuracy["relu.both.h8.adam.s0.f0"] >= 0.95

    report = workdir / "results" / "report" / "xor"
    tables = (report / "tables.md").read_text()
    assert "Bias placement ablation" in tables and "Best configuration" in tables
    assert "| identity |" in tables
    assert "<table" in (report / "tables.html").read_text()
    for figure in ("accuracy_vs_hidden.png", "learning_curves.png", "diagnostics.png",
                   "decision_boundary.png"):
        assert (report / figure).read_bytes()[:4] == b"\x89PNG", figure

    # Nothing left to do; a report-only option does not rerun any training.
    proc = snakemake(workdir, "-n", "--configfile", TINY)
    assert "Nothing to be done" in output_of(proc), output_of(proc)
    report_only = write_config(tmp_path, "report_only.yaml", {"curves_hidden": [4]})
    proc = snakemake(workdir, "-n", "--configfile", TINY, report_only)
    assert proc.returncode == 0, output_of(proc)
    counts = job_counts(output_of(proc))
    assert "train" not in counts and counts["plot_curves"] == 1

    html = workdir / "report.html"
    proc = snakemake(workdir, "--configfile", TINY, "--report", html)
    assert proc.returncode == 0, output_of(proc)
    assert html.stat().st_size > 50_000
    assert "decision_boundary.png" in html.read_text(errors="replace")


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
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    done_before = {p.name: p.stat().st_mtime_ns for p in runs_dir.glob("*.json")}
    assert 2 <= len(done_before) < len(expected)
    # A hard kill leaves a lock (and incomplete markers): a plain rerun refuses to start.
    assert any((workdir / ".snakemake" / "locks").iterdir())
    proc = snakemake(workdir, "--cores", "1", "--configfile", config)
    assert proc.returncode != 0
    assert re.search(r"cannot be locked|Incomplete files", output_of(proc))
    assert {p.name for p in runs_dir.glob("*.json")} == set(done_before)

    proc = snakemake(workdir, "--unlock", "--configfile", config)
    assert proc.returncode == 0, output_of(proc)
    # Jobs killed after their record was written but before snakemake registered the
    # job as done are listed as incomplete: those, and only those, are run again.
    proc = snakemake(workdir, "-n", "--configfile", config)
    incomplete = set()
    if proc.returncode != 0:
        text = output_of(proc)
        assert "IncompleteFilesException" in text, text
        incomplete = {os.path.basename(p) for p in re.findall(r"\S+\.json", text)}
    finished = set(done_before) - incomplete
    assert finished
    proc = snakemake(workdir, "--cores", "2", "--rerun-incomplete", "--configfile",
                     config)
    assert proc.returncode == 0, output_of(proc)

    files = sorted(p.name for p in runs_dir.iterdir())
    assert files == sorted(f"{rid}.json" for rid in expected)   # no temporary leftovers
    for name in files:
        record = json.loads((runs_dir / name).read_text())
        assert record["status"] == "ok"
    # Runs finished before the interruption were not trained again.
    for name in finished:
        assert (runs_dir / name).stat().st_mtime_ns == done_before[name], name
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


def test_damaged_run_records_are_redone_and_only_they(workdir, tmp_path):
    """A truncated record, a record of garbage bytes and a model that is not a zip (what a
    full disk or a crash of the file system can leave) are detected on the next
    invocation and exactly those runs are redone; intact runs are not retrained."""
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

    proc = snakemake(workdir, "--cores", "2", "--configfile", config)
    assert proc.returncode == 0, output_of(proc)
    text = output_of(proc)
    for damaged in (truncated, garbage, bad_model):
        assert f"{damaged.name} is damaged" in text
        assert json.loads(damaged.read_text())["status"] == "ok"
        assert damaged.stat().st_mtime_ns != before[damaged.name]
    assert intact.stat().st_mtime_ns == before[intact.name]
    runs = pd.read_csv(workdir / "results" / "report" / "runs.csv")
    assert sorted(runs["run_id"]) == sorted(expected_run_ids(sweep))


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
    assert job_counts(output_of(proc))["train"] == len(expected) - len(written)
    proc = snakemake(workdir, "--cores", "2", "--configfile", config)
    assert proc.returncode == 0, output_of(proc)

    for name, mtime in written.items():       # the runs that survived were not redone
        assert (runs_dir / name).stat().st_mtime_ns == mtime, name
    assert sorted(p.stem for p in runs_dir.glob("*.json")) == sorted(expected)
    runs = pd.read_csv(tiny_disk / "report" / "runs.csv")
    assert sorted(runs["run_id"]) == sorted(expected)
    assert (runs["status"] == "ok").all()
