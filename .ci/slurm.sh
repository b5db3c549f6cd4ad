#!/usr/bin/env bash
# Stand up a single-node SLURM cluster, run a tiny cymlp sweep through the snakemake
# SLURM executor and locally, and check that both produce the same runs with the same
# accuracies. Exit code 0 only if everything succeeded.
#
#   sudo bash .ci/slurm.sh          # from anywhere; needs root and apt-get (Debian)
#
# Environment:
#   CYMLP_SLURM_STATE     folder for slurm.conf, daemon state, logs and the two sweep
#                         folders (default /tmp/cymlp-slurm; wiped at start)
#   CYMLP_SLURM_TIMEOUT   seconds allowed for each sweep (default 900)
#   CYMLP_SLURM_CONFIG    sweep configuration (default tests/workflow/slurm_config.yaml)
#   PYTHON                Python interpreter with snakemake and cymlp (default python3)
#
# Idempotent: daemons left over by an interrupted earlier run (recorded PIDs) are
# stopped first and installed packages are not reinstalled. The cluster keeps its
# state in its own folder; /etc/slurm/slurm.conf (read by srun inside jobs, which do
# not see SLURM_CONF) is written for the run and an existing one is restored after.
# Every wait is bounded; the daemons are stopped on every exit path.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${CYMLP_SLURM_STATE:-/tmp/cymlp-slurm}"
SWEEP_TIMEOUT="${CYMLP_SLURM_TIMEOUT:-900}"
SWEEP_CONFIG="${CYMLP_SLURM_CONFIG:-$REPO/tests/workflow/slurm_config.yaml}"
PYTHON="${PYTHON:-python3}"
PIDFILE="$STATE/daemons.pid"
ETC_CONF=/etc/slurm/slurm.conf
MARK="# Single-node test cluster of cymlp's CI (written by .ci/slurm.sh)."

log() { printf '[slurm.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- daemon bookkeeping

# Stop the daemons whose PIDs this script recorded (never anything else).
stop_daemons() {
    [[ -f "$PIDFILE" ]] || return 0
    local pid name
    # Reverse start order: slurmd, slurmctld, then munged.
    tac "$PIDFILE" | while read -r pid name; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
            && [[ "$(cat /proc/"$pid"/comm 2>/dev/null)" == "$name" ]]; then
            log "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -f "$PIDFILE"
}

# Start "$@" in the background as daemon NAME (its process name), record its PID.
start_daemon() {
    local name="$1"; shift
    "$@" >>"$STATE/$name.out" 2>&1 &
    local pid=$!
    echo "$pid $name" >>"$PIDFILE"
    log "started $name (pid $pid)"
}

# Put back the slurm.conf that was there before (or remove ours).
restore_etc_conf() {
    if [[ -f "$ETC_CONF" ]] && head -n 1 "$ETC_CONF" | grep -qF "$MARK"; then
        rm -f "$ETC_CONF"
    fi
    if [[ -f "$ETC_CONF.cymlp-backup" && ! -e "$ETC_CONF" ]]; then
        mv "$ETC_CONF.cymlp-backup" "$ETC_CONF"
    fi
}

cleanup() {
    local code=$?
    stop_daemons
    restore_etc_conf
    if [[ $code -ne 0 ]]; then
        log "failed (exit $code); daemon logs:"
        for f in "$STATE"/slurmctld.log "$STATE"/slurmd.log "$STATE"/*.out; do
            [[ -f "$f" ]] && { echo "---- $f" >&2; tail -n 20 "$f" >&2; }
        done
    fi
    exit $code
}

# ---------------------------------------------------------------- checks and install

[[ $EUID -eq 0 ]] || die "must run as root (installs packages and starts daemons)"
command -v apt-get >/dev/null || die "apt-get not found: a Debian-like system is needed"
"$PYTHON" -c "import snakemake, snakemake_executor_plugin_slurm" \
    || die "$PYTHON lacks snakemake or snakemake-executor-plugin-slurm"
"$PYTHON" -c "import cymlp.cli" || die "$PYTHON cannot import cymlp.cli"

# A previous run that was killed may have left its daemons running.
if [[ -d "$STATE" ]]; then
    stop_daemons
    rm -rf "$STATE"
fi
mkdir -p "$STATE"/{ctld,spool,sweep-slurm,sweep-local}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PACKAGES=(munge slurmctld slurmd slurm-client)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq || die "apt-get update failed or timed out"
    # Post-install scripts may print "policy-rc.d denied execution of start": the
    # daemons are started below, not by the package.
    timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >"$STATE/apt.log" 2>&1 || { tail -n 30 "$STATE/apt.log" >&2; die "apt-get install failed"; }
fi

# ---------------------------------------------------------------- configuration

HOST="$(hostname -s)"
# The node line as slurmd detects it, with a little memory held back for the system.
NODE_LINE="$(timeout 30 slurmd -C | head -n 1)"
[[ "$NODE_LINE" == NodeName=* ]] || die "slurmd -C printed no node line: $NODE_LINE"
REAL_MEM="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")"
NODE_LINE="$(sed "s/RealMemory=[0-9]*/RealMemory=$((REAL_MEM * 9 / 10))/" <<<"$NODE_LINE")"

export SLURM_CONF="$STATE/slurm.conf"
cat >"$SLURM_CONF" <<EOF
$MARK
ClusterName=cymlp-ci
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# No cgroups in containers: track processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job that asks for no memory takes the whole node.
DefMemPerCPU=1000
# No accounting: snakemake polls squeue, which must still show finished jobs for
# more than 3 x slurm-init-seconds-before-status-checks.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
$NODE_LINE State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=60 State=UP
EOF

restore_etc_conf  # a copy left by an interrupted earlier run
if [[ -e "$ETC_CONF" ]]; then
    mv "$ETC_CONF" "$ETC_CONF.cymlp-backup"
fi
mkdir -p "$(dirname "$ETC_CONF")"
cp "$SLURM_CONF" "$ETC_CONF"

# ---------------------------------------------------------------- daemons

# munge: reuse a running munged that works, otherwise start one as the munge user.
if timeout 10 bash -c 'munge -n | unmunge' >/dev/null 2>&1; then
    log "munged already running"
else
    [[ -f /etc/munge/munge.key ]] || die "/etc/munge/munge.key missing (package munge)"
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    start_daemon munged setpriv --reuid=munge --regid=munge --init-groups munged -F
    for _ in $(seq 50); do
        timeout 5 bash -c 'munge -n | unmunge' >/dev/null 2>&1 && break
        sleep 0.2
    done
    timeout 5 bash -c 'munge -n | unmunge' >/dev/null 2>&1 || die "munged did not start"
fi

start_daemon slurmctld slurmctld -D -f "$SLURM_CONF"
up=""
for _ in $(seq 60); do
    if timeout 5 scontrol ping 2>/dev/null | grep -q "is UP"; then up=1; break; fi
    sleep 0.5
done
[[ -n "$up" ]] || die "slurmctld did not come up"

start_daemon slurmd slurmd -D -f "$SLURM_CONF"
idle=""
for _ in $(seq 120); do
    state="$(timeout 5 sinfo -h -N -o '%t' 2>/dev/null | head -n 1 || true)"
    if [[ "$state" == idle* ]]; then idle=1; break; fi
    sleep 0.5
done
[[ -n "$idle" ]] || die "node never became idle (last state: ${state:-none})"
log "cluster up: $(timeout 5 sinfo -h -N -o '%N %t %c CPUs %m MB')"

# Smoke test: one job through sbatch.
out="$STATE/smoke.out"
jid="$(timeout 10 sbatch --parsable -o "$out" --wrap 'hostname')" || die "sbatch failed"
for _ in $(seq 60); do
    [[ -z "$(timeout 5 squeue -h -j "$jid" -t PD,R,CG 2>/dev/null)" ]] && break
    sleep 0.5
done
[[ -s "$out" ]] || die "smoke job $jid wrote no output"
log "smoke job $jid ran on $(cat "$out")"

# ---------------------------------------------------------------- the two sweeps

# Each sweep runs in its own folder (config/ links to the repository's defaults, the
# sweep configuration overrides them), from the same Snakefile.
run_sweep() {
    local where="$1"; shift
    ln -sfn "$REPO/config" "$where/config"
    log "sweep in $where: snakemake $*"
    # timeout sends TERM (snakemake shuts down cleanly), then KILL after 30 s.
    timeout -k 30 "$SWEEP_TIMEOUT" "$PYTHON" -m snakemake \
        --snakefile "$REPO/workflow/Snakefile" --directory "$where" \
        --configfile "$SWEEP_CONFIG" --quiet rules "$@" \
        >"$where/snakemake.out" 2>&1 \
        || { tail -n 40 "$where/snakemake.out" >&2; die "sweep in $where failed"; }
}

SECONDS=0
run_sweep "$STATE/sweep-slurm" --executor slurm --jobs 4 \
    --slurm-status-command squeue --slurm-init-seconds-before-status-checks 5 \
    --seconds-between-status-checks 3 --slurm-no-account \
    --slurm-keep-successful-logs --latency-wait 10 \
    --default-resources mem_mb=500 runtime=10
log "SLURM sweep finished in ${SECONDS} s"

SECONDS=0
run_sweep "$STATE/sweep-local" --cores 2
log "local sweep finished in ${SECONDS} s"

# ---------------------------------------------------------------- comparison

"$PYTHON" - "$STATE/sweep-slurm" "$STATE/sweep-local" <<'PY'
"""Both sweeps must hold the same runs with identical results, and every training
run of the SLURM sweep must have gone through a SLURM job."""
import glob
import os
import sys

import pandas as pd

slurm_dir, local_dir = sys.argv[1:3]
keys = ["dataset", "run_id"]
exact = ["status", "n_epochs", "dev_accuracy", "test_accuracy", "test_macro_f1"]
a = pd.read_csv(os.path.join(slurm_dir, "results/report/runs.csv")).set_index(keys)
b = pd.read_csv(os.path.join(local_dir, "results/report/runs.csv")).set_index(keys)
problems = []
if set(a.index) != set(b.index):
    problems.append(f"different runs: only SLURM {sorted(set(a.index) - set(b.index))}, "
                    f"only local {sorted(set(b.index) - set(a.index))}")
common = sorted(set(a.index) & set(b.index))
if not common:
    problems.append("no runs")
for col in exact:
    left, right = a.loc[common, col], b.loc[common, col]
    differ = ~((left == right) | (left.isna() & right.isna()))
    if differ.any():
        problems.append(f"{col} differs for {list(left.index[differ])}")
bad = a[a["status"] != "ok"]
if len(bad):
    problems.append(f"runs not ok: {list(bad.index)}")
logs = glob.glob(os.path.join(slurm_dir, ".snakemake/slurm_logs/rule_train/**/*.log"),
                 recursive=True)
# Runs are trained in blocks, one SLURM job each; every block wrote its manifest.
blocks = glob.glob(os.path.join(slurm_dir, "results/blocks/**/*.json"), recursive=True)
if len(blocks) < 2:
    problems.append(f"{len(blocks)} block manifest(s): the sweep should take several jobs")
if len(logs) < len(blocks):
    problems.append(f"only {len(logs)} SLURM job logs for {len(blocks)} training blocks")
if problems:
    print("MISMATCH:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"identical: {len(common)} runs, {len(blocks)} blocks, {len(logs)} SLURM job logs; "
      f"test accuracy per run: "
      + ", ".join(f"{rid}={acc:.4f}" for (_, rid), acc in a["test_accuracy"].items()))
PY
log "success"
