"""Shared pieces of the benchmarks: machine description, thread limits, data, flop
counts and output helpers.

Every timing the benchmarks write carries the fields of :func:`machine_info` (CPU,
BLAS library, kernel and versions), so a table can always be traced back to the
machine and libraries that produced it.
"""
import contextlib
import csv
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

#: environment variables that override OpenBLAS's choice of kernel and blocking
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

#: (n_features d, hidden units v, classes m, batch size t) of the speed benchmark
CONFIGS = (
    (300, 256, 2, 32),
    (64, 64, 10, 32),
    (1000, 1000, 1000, 256),
    (300, 256, 2, 1),
    (300, 256, 2, 256),
)

#: thread counts of the speed benchmark
THREADS = (1, 2)

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


# --------------------------------------------------------------------------- machine
def cpu_model():
    """CPU model name from ``/proc/cpuinfo``, with family/model numbers when the name is
    generic (as under some hypervisors); ``platform.processor()`` elsewhere."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if not line.strip():
                    break  # first processor only
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return platform.processor() or platform.machine()
    name = fields.get("model name", platform.processor() or platform.machine())
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def _blas_owner(filepath):
    """Which Python package ships a BLAS library, from its path."""
    path = filepath.replace("\\", "/")
    for pkg in ("scipy", "numpy", "torch", "sklearn"):
        if f"/{pkg}.libs/" in path or f"/{pkg}/" in path:
            return pkg
    return os.path.basename(path)


def blas_libraries():
    """The BLAS libraries loaded in this process, keyed by the package that ships them.

    Returns
    -------
    dict
        ``{owner: {"internal_api", "version", "architecture", "num_threads",
        "filepath"}}``; ``owner`` is ``'scipy'`` for the library behind
        ``scipy.linalg.cython_blas`` (the one cymlp calls), ``'numpy'`` for the one
        behind ``numpy.matmul`` (the NumPy reference and scikit-learn).
    """
    import scipy.linalg
    from threadpoolctl import threadpool_info

    out = {}
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        owner = _blas_owner(info.get("filepath", ""))
        out[owner] = {
            "internal_api": info.get("internal_api"),
            "version": info.get("version"),
            "architecture": info.get("architecture"),
            "num_threads": info.get("num_threads"),
            "filepath": info.get("filepath"),
        }
    return out


def _version(module_name):
    try:
        module = __import__(module_name)
    except ImportError:
        return None
    return getattr(module, "__version__", None)


def torch_blas():
    """The BLAS torch was built against (``BLAS_INFO`` of its build settings)."""
    try:
        import torch
    except ImportError:
        return None
    config = torch.__config__.show()
    for part in config.replace("\n", ",").split(","):
        part = part.strip()
        if part.startswith("BLAS_INFO="):
            return part.split("=", 1)[1]
    return "mkl" if torch.backends.mkl.is_available() else "unknown"


def cymlp_build():
    """Identify the cymlp code measured: ``(git, build)``.

    ``git`` is the short commit of the source tree cymlp is imported from, with
    ``-dirty`` when files under ``cymlp/`` differ from it (None outside a git
    checkout); ``build`` is a short SHA-256 of the compiled extension modules, so two
    results with the same value timed the same machine code.
    """
    import glob
    import hashlib
    import subprocess

    import cymlp

    pkg = os.path.dirname(os.path.abspath(cymlp.__file__))
    digest = hashlib.sha256()
    modules = glob.glob(os.path.join(pkg, "*.so")) + glob.glob(os.path.join(pkg, "*.pyd"))
    for path in sorted(modules):
        with open(path, "rb") as fh:
            digest.update(fh.read())
    git = None
    try:
        root = os.path.dirname(pkg)
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "cymlp"],
                               capture_output=True, text=True, check=True).stdout.strip()
        git = head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        pass
    return git, digest.hexdigest()[:12]


def machine_info():
    """Flat dict describing the machine and libraries; one copy goes with every result.

    Keys: ``cpu_model``, ``n_cpus``, ``python_version``, ``numpy_version``,
    ``scipy_version``, ``cymlp_version``, ``cymlp_git`` and ``cymlp_build`` (see
    :func:`cymlp_build`), ``torch_version``, ``sklearn_version``,
    ``torch_blas``; for the BLAS cymlp uses (scipy's): ``blas_internal_api``,
    ``blas_version``, ``blas_architecture`` (the kernel OpenBLAS chose); the same for
    NumPy's BLAS with a ``numpy_`` prefix; and the values of the OpenBLAS override
    variables (empty when unset).
    """
    blas = blas_libraries()
    info = {
        "cpu_model": cpu_model(),
        "n_cpus": os.cpu_count(),
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "scipy_version": _version("scipy"),
        "cymlp_version": _version("cymlp"),
        "cymlp_git": None,
        "cymlp_build": None,
        "torch_version": _version("torch"),
        "sklearn_version": _version("sklearn"),
        "torch_blas": torch_blas(),
    }
    info["cymlp_git"], info["cymlp_build"] = cymlp_build()
    for prefix, owner in (("blas", "scipy"), ("numpy_blas", "numpy")):
        lib = blas.get(owner, {})
        for key in ("internal_api", "version", "architecture"):
            info[f"{prefix}_{key}"] = lib.get(key)
    for var in OPENBLAS_OVERRIDES:
        info[f"env_{var}"] = os.environ.get(var, "")
    return info


def warn_overrides(stream):
    """Print a warning for every OpenBLAS override variable that is set."""
    set_vars = {v: os.environ[v] for v in OPENBLAS_OVERRIDES if v in os.environ}
    if set_vars:
        print(f"warning: {set_vars} is set; OpenBLAS will not use the kernel it would "
              "choose for this CPU. Run with `env -u OPENBLAS_CORETYPE -u "
              "OPENBLAS_L2_SIZE python ...` (see bench/README.md).", file=stream)


# --------------------------------------------------------------------------- threads
def load_libraries():
    """Import every library whose thread pool the benchmarks limit.

    threadpoolctl can only limit the pools of libraries already loaded, so this runs
    before the first :func:`limit_threads`: scipy's BLAS (the one cymlp calls) is
    loaded by ``cymlp._mlp``, NumPy's by NumPy, the OpenMP runtime by torch.
    """
    import cymlp._mlp
    import scipy.linalg.cython_blas

    for name in ("torch", "sklearn.neural_network"):
        try:
            __import__(name)
        except ImportError:
            pass


@contextlib.contextmanager
def limit_threads(n_threads):
    """Limit every BLAS / OpenMP pool of the process (threadpoolctl) and torch's
    intra-op pool to ``n_threads``; restore them afterwards.

    Raises RuntimeError if a loaded BLAS library did not take the limit.
    """
    from threadpoolctl import threadpool_info, threadpool_limits

    load_libraries()
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=n_threads):
        unlimited = [i["filepath"] for i in threadpool_info()
                     if i.get("user_api") == "blas" and i.get("num_threads") != n_threads]
        if unlimited:
            raise RuntimeError(f"could not limit BLAS threads to {n_threads}: {unlimited}")
        if torch is not None:
            torch.set_num_threads(n_threads)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(previous)


# --------------------------------------------------------------------------- model
def flops_per_sample(d, v, m):
    """Floating-point operations of one SGD sample through a d-v-m network.

    Forward ``2 (d v + v m)``, weight gradients ``2 (d v + v m)`` and the gradient of
    the hidden activation ``dh = dz U^T``, ``2 v m``; the input gradient of the first
    layer is not computed. Elementwise work (bias, ReLU, softmax, update) is not
    counted. Multiply by the batch size for one step.
    """
    return 4 * (d * v + v * m) + 2 * v * m


def make_data(n, d, m, seed=0):
    """Standard normal float32 features ``(n, d)`` and labels in ``[0, m)`` (int64)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    y = rng.integers(0, m, size=n, dtype=np.int64)
    return X, y


def initial_weights(d, v, m, seed=0):
    """He-uniform ``W[0]`` ``(d, v)``, Glorot-uniform ``W[1]`` ``(v, m)``, zero biases
    (float32); every implementation starts from these."""
    rng = np.random.default_rng(seed)
    r0 = math.sqrt(6.0 / d)
    r1 = math.sqrt(6.0 / (v + m))
    W0 = rng.uniform(-r0, r0, (d, v)).astype(np.float32)
    W1 = rng.uniform(-r1, r1, (v, m)).astype(np.float32)
    return [W0, W1], [np.zeros(v, np.float32), np.zeros(m, np.float32)]


def dense_engine(d, v, m, t):
    """The compiled engine of the benchmarks' network (``d`` inputs, ``v`` ReLU units
    with biases, ``m`` classes; float32), plain SGD, workspaces for batches of ``t``
    rows, parameters from :func:`initial_weights`. Its layout is the one
    :class:`cymlp._network.Network` describes; nothing here computes offsets."""
    from cymlp._mlp import SOLVERS, Engine

    from cymlp._network import Network

    network = Network.build(n_features=d, hidden=[v], n_outputs=m, activation="relu",
                            bias="both", dtype="float32")
    engine = Engine(network)
    engine.momentum = 0.0
    engine.alpha = 0.0
    engine.set_solver(SOLVERS["sgd"])
    engine.allocate(t)
    W, b = initial_weights(d, v, m)
    for layer, W_l, b_l in zip(network.layers, W, b):
        engine.params[layer.w_slice] = W_l.ravel()
        engine.params[layer.b_slice] = b_l
    return engine


def dense_inputs(X):
    """The engine's inputs of the rows ``X`` (validated once)."""
    from cymlp._inputs import DenseInputs

    return DenseInputs(X)


# --------------------------------------------------------------------------- output
def median(values):
    """Median of the finite values, NaN when there are none."""
    vals = [x for x in values if x is not None and math.isfinite(x)]
    return statistics.median(vals) if vals else float("nan")


def write_csv(path, rows):
    """Write dict rows (the union of their keys, in first-seen order) as CSV."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fields = []
    for row in rows:
        for key in row:
            if key not in fields:
                fields.append(key)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


def fmt_rate(x):
    """Samples per second, three significant digits with a thousands separator."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if x >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def fmt_ratio(x):
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.2f}x"


def now():
    return time.strftime("%Y-%m-%d %H:%M:%S")


def finish(rows, peaks, new_peaks, stem, out_dir, report, log):
    """The common end of a speed benchmark: keep the better of the two sgemm peaks at
    every thread count (measured before and after the rounds: a loaded machine only
    lowers it), express every row's GFLOP/s as a percentage of it (wall and CPU time),
    write ``<stem>.csv`` and ``<stem>.md`` to ``out_dir`` and print the Markdown.

    ``report(peaks)`` returns the Markdown text once the percentages are in the rows.
    """
    for n, p in new_peaks.items():
        cpu_best = max(p["gflops_peak_cpu"], peaks[n]["gflops_peak_cpu"])
        if p["gflops_peak"] > peaks[n]["gflops_peak"]:
            peaks[n] = p
        peaks[n]["gflops_peak_cpu"] = cpu_best
    for row in rows:
        pk = peaks[row["threads"]]["gflops_peak"]
        pk_cpu = peaks[row["threads"]]["gflops_peak_cpu"]
        row["peak_gflops"] = pk
        row["pct_of_peak"] = 100.0 * row["gflops"] / pk
        row["peak_gflops_cpu"] = pk_cpu
        row["pct_of_peak_cpu"] = (100.0 * row["samples_per_cpu_s"]
                                  * row["flops_per_sample"] / 1e9 / pk_cpu)
    os.makedirs(out_dir, exist_ok=True)
    csv_path = os.path.join(out_dir, f"{stem}.csv")
    md_path = os.path.join(out_dir, f"{stem}.md")
    write_csv(csv_path, rows)
    text = report(peaks)
    with open(md_path, "w") as fh:
        fh.write(text)
    print(text)
    log(f"wrote {csv_path} and {md_path}")


def add_timing_args(parser, seconds, seconds_help):
    """The timing options both throughput benchmarks take (and ``--quick``)."""
    parser.add_argument("--seconds", type=float, default=seconds, help=seconds_help)
    parser.add_argument("--min-batches", type=int, default=4)
    parser.add_argument("--probe-seconds", type=float, default=0.1)
    parser.add_argument("--peak-size", type=int, default=2048)
    parser.add_argument("--out", default=OUT_DIR, help="output folder (bench/out)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round, tiny time budgets, small sgemm")


def apply_quick(args, seconds, probe_seconds):
    """With ``--quick``: one round, the given tiny time budgets, a small sgemm."""
    if args.quick:
        args.rounds = min(args.rounds, 1)
        args.seconds = seconds
        args.min_batches = 2
        args.probe_seconds = probe_seconds
        args.peak_size = 256
    return args.quick
