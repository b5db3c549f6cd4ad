"""Memory of training: peak RSS of a fit against an estimate, and no allocation per batch.

1. **Peak RSS of a fit.** A child process fits ``cymlp.MLPClassifier`` (one hidden
   ReLU layer of ``v`` units, plain SGD, float32, batch ``t``) for one epoch on
   ``n`` random rows of ``d`` features with ``m`` classes, under ``/usr/bin/time -v``
   (GNU time; ``apt-get install -y time`` where it is missing). Its maximum resident
   set size is compared with the estimate

       baseline + parameters + gradients + optimiser state + workspaces

   where *baseline* is the peak RSS of a child that only imports cymlp and creates the
   same data, and the other terms are the buffers the engine allocates (computed from
   its layer shapes, see ``Engine.allocate``). The difference is the overshoot
   (goal: at most 50 MB). A third child runs the same-shaped sgemm calls on top of the
   baseline, to show how much of the overshoot is the BLAS library's own buffers.

2. **Nothing allocated per batch.** ``tracemalloc`` (which sees NumPy's data
   allocations) around ``Engine.train``: the traced peak above the starting point
   is the same for few and for many batches. And the RSS of a process after 1 and after
   20 epochs of ``partial_fit`` is the same.

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/memory.py [--n 20000]

writes ``bench/out/memory.json`` and ``bench/out/memory.md``.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import common
else:
    from . import common

MB = 2**20
GOAL_MB = 50.0
GNU_TIME = "/usr/bin/time"


# ------------------------------------------------------------------------ children
def _rss_now():
    """Current resident set size of this process in bytes (``/proc/self/statm``)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _rss_peak():
    """Peak resident set size of this process in bytes (``VmHWM``)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def _make_clf(v, t, solver, max_iter=1):
    from cymlp import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(v,), activation="relu", solver=solver,
                         momentum=0.0, alpha=0.0, batch_size=t, learning_rate_init=0.01,
                         max_iter=max_iter, shuffle=True, dtype="float32", random_state=0)


def engine_bytes(engine, t_max):
    """Bytes of the buffers an engine holds for batches of ``t_max`` rows (dense input).

    Returns
    -------
    dict
        ``parameters``, ``gradients``, ``optimiser_state`` and ``workspaces`` (the
        activations, pre-activations and deltas of ``Engine.allocate``), in bytes.
    """
    item = np.dtype(engine.dtype).itemsize
    layers = engine.network.layers
    # A[0]; K[l], A[l+1], dK[l] per layer; one dA of the widest layer
    rows = engine.n_features + sum(2 * L.fan_out + L.width for L in layers)
    rows += max(L.width for L in layers)
    return {
        "parameters": engine.params.nbytes,
        "gradients": engine.grads.nbytes,
        "optimiser_state": engine.state1.nbytes + engine.state2.nbytes,
        "workspaces": t_max * rows * item,
    }


def child_main(args):
    """Run one measurement inside a child process; print a JSON line."""
    from threadpoolctl import threadpool_limits

    import cymlp  # noqa: F401  (loads numpy, scipy and scipy's BLAS)

    out = {"mode": args.child}
    d, v, m, t = args.shape
    with threadpool_limits(args.threads):
        if args.child in ("baseline", "fit", "blas"):
            X, y = common.make_data(args.n, d, m)
            out["data_bytes"] = X.nbytes + y.nbytes
            if args.child == "fit":
                clf = _make_clf(v, t, args.solver)
                tic = time.perf_counter()
                clf.fit(X, y)
                out["fit_seconds"] = time.perf_counter() - tic
                out.update(engine_bytes(clf._engine, clf._engine.t_max))
            elif args.child == "blas":
                from scipy.linalg.blas import sgemm

                # the GEMM shapes of one training step: forward, dA, weight update
                a = np.ones((t, d), np.float32, order="F")
                w = np.ones((d, v), np.float32, order="F")
                k = sgemm(1.0, a, w)
                sgemm(1.0, k, w, trans_b=True)
                sgemm(1.0, a, k, trans_a=True)
        elif args.child == "epochs":
            X, y = common.make_data(args.epoch_rows, d, m)
            clf = _make_clf(v, t, args.solver)
            clf.partial_fit(X, y, classes=np.arange(m))
            out["rss_after_1"] = _rss_now()
            for _ in range(args.epochs - 1):
                clf.partial_fit(X, y)
            out["rss_after_n"] = _rss_now()
            out["epochs"] = args.epochs
        elif args.child == "tracemalloc":
            out.update(_tracemalloc_check(d, v, m, t, args.epoch_rows))
        else:
            raise ValueError(f"unknown child mode {args.child!r}")
    out["vmhwm"] = _rss_peak()
    print(json.dumps(out))


def _tracemalloc_check(d, v, m, t, n):
    """Traced allocation peak above the start of Engine.train, for few and many batches."""
    import tracemalloc

    X, y = common.make_data(n, d, m)
    y32 = y.astype(np.intc)
    order = np.arange(n, dtype=np.intp)
    engine = common.dense_engine(d, v, m, t)
    inputs = common.dense_inputs(X)
    W, _ = common.initial_weights(d, v, m)
    engine.train(inputs, y32, order[:2 * t], t, 0.01)  # first call outside the trace
    tracemalloc.start()
    result = {}
    try:
        for label, n_batches in (("few", 2), ("many", n // t)):
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            engine.train(inputs, y32, order[:n_batches * t], t, 0.01)
            after, peak = tracemalloc.get_traced_memory()
            result[f"batches_{label}"] = n_batches
            result[f"peak_growth_{label}"] = peak - before
            result[f"kept_{label}"] = after - before
        # the same measurement must see a per-batch allocation when there is one
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        for s in range(0, 8 * t, t):
            np.ascontiguousarray(X[s:s + t]) @ W[0]
        _, peak = tracemalloc.get_traced_memory()
        result["peak_growth_numpy_step"] = peak - before
    finally:
        tracemalloc.stop()
    return result


# ------------------------------------------------------------------------ parent
def run_child(mode, args, use_time=True):
    """Run a child under GNU time; return its JSON output plus ``max_rss`` (bytes)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", mode,
           "--shape", *map(str, args.shape), "--n", str(args.n), "--threads",
           str(args.threads), "--solver", args.solver, "--epochs", str(args.epochs),
           "--epoch-rows", str(args.epoch_rows)]
    if use_time:
        cmd = [GNU_TIME, "-v"] + cmd
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {mode!r} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if use_time:
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        result["max_rss"] = int(match.group(1)) * 1024
        result["rss_method"] = "GNU time -v"
    else:
        result["max_rss"] = result["vmhwm"]
        result["rss_method"] = "VmHWM"
    return result


def measure(args, log):
    use_time = os.path.exists(GNU_TIME)
    if not use_time:
        log(f"{GNU_TIME} not found (install GNU time: apt-get install -y time); "
            "using the child's VmHWM instead")
    base = run_child("baseline", args, use_time)
    blas = run_child("blas", args, use_time)
    fit = run_child("fit", args, use_time)
    parts = {k: fit[k] for k in ("parameters", "gradients", "optimiser_state", "workspaces")}
    estimate = base["max_rss"] + sum(parts.values())
    overshoot = fit["max_rss"] - estimate
    blas_extra = blas["max_rss"] - base["max_rss"]
    epochs = run_child("epochs", args, use_time)
    trace = run_child("tracemalloc", args, use_time)
    return {
        "shape": list(args.shape), "n": args.n, "threads": args.threads,
        "solver": args.solver, "rss_method": fit["rss_method"],
        "baseline_rss": base["max_rss"], "data_bytes": base["data_bytes"],
        **parts, "estimate": estimate, "fit_rss": fit["max_rss"],
        "overshoot": overshoot, "blas_buffers": blas_extra,
        "overshoot_without_blas": overshoot - blas_extra,
        "fit_seconds": fit["fit_seconds"],
        "epochs": epochs["epochs"], "epoch_rows": args.epoch_rows,
        "rss_after_1_epoch": epochs["rss_after_1"],
        "rss_after_n_epochs": epochs["rss_after_n"],
        **{f"tracemalloc_{k}": v for k, v in trace.items() if k not in ("mode", "vmhwm")},
        **common.machine_info(),
    }


def markdown(r):
    def mb(b):
        return f"{b / MB:.1f} MB"

    verdict = "met" if r["overshoot"] <= GOAL_MB * MB else "MISSED"
    d, v, m, t = r["shape"]
    growth = r["rss_after_n_epochs"] - r["rss_after_1_epoch"]
    header = (f"Generated {common.now()} by `bench/memory.py`. Fit: `MLPClassifier` with "
              f"d={d}, v={v}, m={m}, t={t}, n={r['n']} rows, solver={r['solver']!r} "
              f"(momentum 0), float32, one epoch, {r['threads']} BLAS thread(s); peak RSS "
              f"by {r['rss_method']}.")
    table = [
        ("baseline (import cymlp + data; data " + mb(r["data_bytes"]) + ")",
         mb(r["baseline_rss"])),
        ("parameters", mb(r["parameters"])),
        ("gradients", mb(r["gradients"])),
        ("optimiser state", mb(r["optimiser_state"])),
        ("workspaces", mb(r["workspaces"])),
        ("**estimate**", f"**{mb(r['estimate'])}**"),
        ("**peak RSS of the fit**", f"**{mb(r['fit_rss'])}**"),
        (f"**overshoot** (goal <= {GOAL_MB:.0f} MB)",
         f"**{mb(r['overshoot'])}: {verdict}**"),
        ("of which BLAS buffers (sgemm of the same shapes on the baseline)",
         mb(r["blas_buffers"])),
        ("overshoot without the BLAS buffers", mb(r["overshoot_without_blas"])),
    ]
    trace = (f"- tracemalloc peak above the start of `Engine.train`: "
             f"{r['tracemalloc_peak_growth_few']} B for {r['tracemalloc_batches_few']} "
             f"batches, {r['tracemalloc_peak_growth_many']} B for "
             f"{r['tracemalloc_batches_many']} batches (a NumPy step of the same size "
             f"shows {r['tracemalloc_peak_growth_numpy_step'] / 1024:.0f} KiB, so the "
             "trace does see NumPy allocations)")
    epochs = (f"- RSS after 1 epoch of `partial_fit` on {r['epoch_rows']} rows "
              f"{mb(r['rss_after_1_epoch'])}, after "
              f"{r['epochs']} epochs {mb(r['rss_after_n_epochs'])} "
              f"(growth {growth / MB:+.2f} MB)")
    footer = (f"BLAS: {r['blas_internal_api']} {r['blas_version']} kernel "
              f"{r['blas_architecture']}; cymlp {r['cymlp_version']} "
              f"(git {r['cymlp_git']}, build {r['cymlp_build']}); {r['cpu_model']}.")
    lines = ["# Memory of a fit", "", header, "", "| quantity | size |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in table]
    lines += ["", "Per-batch allocation:", "", trace, epochs, "", footer]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", type=int, nargs=4, default=[1000, 1000, 1000, 256],
                   metavar=("D", "V", "M", "T"))
    p.add_argument("--n", type=int, default=20000, help="training rows (default 20000)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--solver", default="sgd", choices=("sgd", "adam", "adagrad"))
    p.add_argument("--epochs", type=int, default=20,
                   help="epochs of the RSS-growth check (default 20)")
    p.add_argument("--epoch-rows", type=int, default=4096,
                   help="rows of the RSS-growth and tracemalloc checks (default 4096)")
    p.add_argument("--out", default=common.OUT_DIR)
    p.add_argument("--quick", action="store_true", help="small shapes, for a smoke run")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.shape = [64, 64, 10, 32]
        args.n = 2048
        args.epochs = 3
        args.epoch_rows = 512
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return 0
    common.warn_overrides(sys.stderr)
    result = measure(args, lambda msg: print(msg, file=sys.stderr))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "memory.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    text = markdown(result)
    with open(os.path.join(args.out, "memory.md"), "w") as fh:
        fh.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
