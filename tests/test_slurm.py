"""The sweep on a real single-node SLURM cluster (stood up by .ci/slurm.sh).

The script installs munge and SLURM with apt-get, starts the daemons, runs the sweep of
tests/workflow/slurm_config.yaml through the snakemake SLURM executor and locally, and
exits non-zero unless both give the same runs with identical accuracies. Skipped only
where it cannot run: not root, or no apt-get.
"""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, ".ci", "slurm.sh")

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux")
@pytest.mark.skipif(os.geteuid() != 0 if hasattr(os, "geteuid") else True,
                    reason="needs root to install and start SLURM")
@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get")
def test_sweep_on_slurm_matches_local_run(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    env = dict(os.environ)
    env["PYTHON"] = sys.executable
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["CYMLP_SLURM_STATE"] = str(tmp_path / "slurm")
    env["CYMLP_SLURM_TIMEOUT"] = "600"
    try:
        proc = subprocess.run(["bash", SCRIPT], env=env, capture_output=True, text=True, check=False,
                              timeout=1800)
    except subprocess.TimeoutExpired as exc:  # the script bounds every step itself
        pytest.fail(f".ci/slurm.sh did not finish in time:\n{exc.stderr}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "identical:" in proc.stdout
    assert "success" in proc.stderr
    # the daemons it started are gone
    state = tmp_path / "slurm"
    assert not (state / "daemons.pid").exists()
