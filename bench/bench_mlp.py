"""Training speed of one SGD epoch: cymlp against NumPy, PyTorch and scikit-learn.

A network with one hidden ReLU layer (d inputs, v hidden units, m classes) is trained
with plain SGD (momentum 0, no L2 penalty, constant learning rate) in float32 on
minibatches of t rows. Every implementation gets the same data, the same batches in
the same order (the rows are drawn in random order once, then taken in sequence: no
implementation pays for shuffling) and the same initial weights:

``cymlp``
    ``MLPClassifier.partial_fit`` (one epoch, ``shuffle=False``): what a user runs,
    input validation included.
``cymlp_engine``
    ``Engine.train`` over the epoch directly: the compiled core alone.
``numpy``
    A plain NumPy loop over ``cymlp._reference.loss_and_grads`` with ``W -= lr dW``.
``torch``
    ``nn.Sequential(nn.Linear, nn.ReLU, nn.Linear)``, ``F.cross_entropy``,
    ``optim.SGD``; ``zero_grad`` / ``backward`` / ``step`` per batch.
``sklearn``
    ``MLPClassifier(solver='sgd', momentum=0, ...).partial_fit`` (one epoch).

The thread count is set for every BLAS and OpenMP pool (threadpoolctl) and for torch
(``torch.set_num_threads``). The implementations are interleaved: each round runs each
of them once, in an order that rotates from round to round. Rates are samples per
second; the reported value is the median over rounds, and each ratio cymlp/peer is
computed within a round, then the median taken, so a burst of load from other
processes on a shared machine hits both sides of a ratio alike.

cymlp runs a whole epoch of ``n_samples`` rows, chosen per configuration so that it
takes about ``--seconds`` at one thread; a slower peer times a fixed number of batches
(fewer rows, same time budget) and its rate is converted to samples per second. So
does cymlp when its whole epoch would take more than four times the budget (at two
threads on a busy machine).

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_mlp.py --rounds 5

writes ``bench/out/mlp.csv`` (one row per measurement) and ``bench/out/mlp.md``.
"""
import argparse
import gc
import math
import os
import sys
import time
import warnings

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import common
    import peak
else:
    from . import common, peak

#: learning rate of every implementation (small: random labels must not diverge)
LR = 0.01

#: largest training set, in bytes of X, per configuration
MAX_DATA_BYTES = 64 * 2**20

IMPLEMENTATIONS = ("cymlp", "cymlp_engine", "numpy", "torch", "sklearn", "gemm_bound")
PEERS = ("torch", "numpy", "sklearn", "gemm_bound")


# ----------------------------------------------------------------------- implementations
class Implementation:
    """One way of training the network. ``train(n_rows)`` runs SGD over the first
    ``n_rows`` rows of the data (a multiple of the batch size), in batches of ``t``."""

    name = "?"

    def __init__(self, X, y, d, v, m, t, lr):
        self.X, self.y = X, y
        self.d, self.v, self.m, self.t, self.lr = d, v, m, t, lr

    def train(self, n_rows):  # pragma: no cover - abstract
        raise NotImplementedError


class CymlpEstimator(Implementation):
    name = "cymlp"

    def __init__(self, X, y, d, v, m, t, lr):
        super().__init__(X, y, d, v, m, t, lr)
        from cymlp import MLPClassifier

        self.clf = MLPClassifier(
            hidden_layer_sizes=(v,), activation="relu", solver="sgd", momentum=0.0,
            nesterovs_momentum=False, alpha=0.0, batch_size=t, learning_rate="constant",
            learning_rate_init=lr, shuffle=False, dtype="float32", random_state=0)
        self.classes = np.arange(m)
        self.clf.partial_fit(X[:t], y[:t], classes=self.classes)
        W, b = common.initial_weights(d, v, m)
        for l in range(2):
            self.clf.coefs_[l][...] = W[l]
            self.clf.intercepts_[l][...] = b[l]

    def train(self, n_rows):
        self.clf.partial_fit(self.X[:n_rows], self.y[:n_rows])


class CymlpEngine(Implementation):
    name = "cymlp_engine"

    def __init__(self, X, y, d, v, m, t, lr):
        super().__init__(X, y, d, v, m, t, lr)
        self.engine = common.dense_engine(d, v, m, t)
        self.inputs = common.dense_inputs(X)
        self.y32 = y.astype(np.intc)
        self.order = np.arange(len(y), dtype=np.intp)

    def train(self, n_rows):
        self.engine.train(self.inputs, self.y32, self.order[:n_rows], self.t, self.lr)


class NumpyReference(Implementation):
    name = "numpy"

    def __init__(self, X, y, d, v, m, t, lr):
        super().__init__(X, y, d, v, m, t, lr)
        from cymlp import _reference

        self.loss_and_grads = _reference.loss_and_grads
        self.weights, self.biases = common.initial_weights(d, v, m)

    def train(self, n_rows):
        X, y, t, lr, m = self.X, self.y, self.t, self.lr, self.m
        params = self.weights + self.biases
        for s in range(0, n_rows, t):
            res = self.loss_and_grads(self.weights, self.biases, X[s:s + t], y[s:s + t],
                                      m, ["relu"])
            for p, g in zip(params, res["dW"] + res["db"]):
                p -= lr * g


class Torch(Implementation):
    name = "torch"

    def __init__(self, X, y, d, v, m, t, lr):
        super().__init__(X, y, d, v, m, t, lr)
        import torch
        from torch import nn

        self.torch = torch
        self.F = torch.nn.functional
        self.model = nn.Sequential(nn.Linear(d, v), nn.ReLU(), nn.Linear(v, m))
        W, b = common.initial_weights(d, v, m)
        with torch.no_grad():
            for layer, Wl, bl in zip((self.model[0], self.model[2]), W, b):
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(Wl.T)))
                layer.bias.copy_(torch.from_numpy(bl))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.0)
        self.Xt = torch.from_numpy(X)
        self.yt = torch.from_numpy(y)

    def train(self, n_rows):
        model, opt, F, t = self.model, self.opt, self.F, self.t
        Xt, yt = self.Xt, self.yt
        for s in range(0, n_rows, t):
            opt.zero_grad()
            loss = F.cross_entropy(model(Xt[s:s + t]), yt[s:s + t])
            loss.backward()
            opt.step()


class Sklearn(Implementation):
    name = "sklearn"

    def __init__(self, X, y, d, v, m, t, lr):
        super().__init__(X, y, d, v, m, t, lr)
        from sklearn.neural_network import MLPClassifier

        self.clf = MLPClassifier(
            hidden_layer_sizes=(v,), activation="relu", solver="sgd", momentum=0.0,
            nesterovs_momentum=False, alpha=0.0, batch_size=t, learning_rate="constant",
            learning_rate_init=lr, shuffle=False, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.clf.partial_fit(X[:t], y[:t], classes=np.arange(m))
        if m > 2:  # with 2 classes scikit-learn uses one logistic output unit
            W, b = common.initial_weights(d, v, m)
            for l in range(2):
                self.clf.coefs_[l][...] = W[l]
                self.clf.intercepts_[l][...] = b[l]

    def train(self, n_rows):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.clf.partial_fit(self.X[:n_rows], self.y[:n_rows])


class GemmBound(Implementation):
    """Only the five matrix products of an SGD step, through the same BLAS wrapper, with
    the transposes, scalings and fused updates of the engine: no activation, softmax,
    bias or Python. No implementation that calls this BLAS for its products can be
    faster, so cymlp/gemm_bound is the fraction of the attainable rate cymlp reaches."""

    name = "gemm_bound"

    def __init__(self, X, y, d, v, m, t, lr, input_grad=False):
        super().__init__(X, y, d, v, m, t, lr)
        from cymlp._blas import gemm_memview

        self.gemm = gemm_memview["float"]
        W, _ = common.initial_weights(d, v, m)
        self.H, self.U = (np.ascontiguousarray(w, dtype=np.float32) for w in W)
        self.k = np.zeros((t, v), np.float32)
        self.z = np.zeros((t, m), np.float32)
        self.dh = np.zeros((t, v), np.float32)
        # the text models also need dX = dk H^T, the gradient that flows into E
        self.dx = np.zeros((t, d), np.float32) if input_grad else None

    def train(self, n_rows):
        gemm, X, t, H, U, k, z, dh, dx = (self.gemm, self.X, self.t, self.H, self.U,
                                          self.k, self.z, self.dh, self.dx)
        step, one, zero = -1e-9, 1.0, 0.0  # a tiny update: the weights stay put
        n_data = len(X) - len(X) % t
        for s in range(0, n_rows, t):
            x = X[s % n_data:s % n_data + t]
            gemm(False, False, one, x, H, zero, k)       # k = x H
            gemm(False, False, one, k, U, zero, z)       # z = h U
            gemm(False, True, one, z, U, zero, dh)       # dh = dz U^T
            gemm(True, False, step, k, z, one, U)        # U -= (lr/t) h^T dz
            if dx is not None:
                gemm(False, True, one, dh, H, zero, dx)  # dX = dk H^T
            gemm(True, False, step, x, dh, one, H)       # H -= (lr/t) x^T dk


CLASSES = {cls.name: cls for cls in (CymlpEstimator, CymlpEngine, NumpyReference, Torch,
                                     Sklearn, GemmBound)}


def available(names):
    """The implementations whose libraries import; a note for each one that does not."""
    out, missing = [], {}
    for name in names:
        module = {"torch": "torch", "sklearn": "sklearn"}.get(name)
        if module is not None:
            try:
                __import__(module)
            except ImportError as exc:
                missing[name] = str(exc)
                continue
        out.append(name)
    return out, missing


# ----------------------------------------------------------------------- timing
def timed(impl, n_rows):
    """Wall-clock and CPU seconds of ``impl.train(n_rows)`` (garbage collection off
    while timing). CPU time is that of the whole process (all its threads)."""
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        cpu = time.process_time()
        tic = time.perf_counter()
        impl.train(n_rows)
        return time.perf_counter() - tic, time.process_time() - cpu
    finally:
        if gc_was_on:
            gc.enable()


def probe_rate(impl, t, n_max, min_seconds):
    """Warm ``impl`` up and estimate its samples per second: double the number of
    batches until one call takes ``min_seconds`` (or the data runs out)."""
    n_batches = 1
    impl.train(min(n_max, 2 * t))  # first call: lazy initialisation, thread pools
    while True:
        n_rows = min(n_max, n_batches * t)
        seconds, _ = timed(impl, n_rows)
        if seconds >= min_seconds or n_rows >= n_max:
            return n_rows / max(seconds, 1e-9)
        n_batches *= 2


def rows_for(rate, seconds, t, n_max, min_batches):
    """Rows (a multiple of t, at most n_max, at least min_batches batches) that take
    about ``seconds`` at ``rate`` samples per second."""
    batches = max(min_batches, int(rate * seconds / t))
    return min(n_max, batches * t)


def choose_n_samples(d, v, m, t, seconds, min_batches, pilot_seconds):
    """Epoch size for cymlp: about ``seconds`` at 1 thread, capped by MAX_DATA_BYTES."""
    cap = max(min_batches * t, (MAX_DATA_BYTES // (4 * d)) // t * t)
    n_pilot = min(cap, max(64 * t, 4096 // t * t))
    X, y = common.make_data(n_pilot, d, m, seed=1)
    with common.limit_threads(1):
        impl = CymlpEngine(X, y, d, v, m, t, LR)
        rate = probe_rate(impl, t, n_pilot, pilot_seconds)
    return rows_for(rate, seconds, t, cap, min_batches)


def bench_config(cfg, names, threads_list, args, peaks, info, log):
    """Measure one configuration at every thread count; return tidy rows."""
    d, v, m, t = cfg
    n_samples = choose_n_samples(d, v, m, t, args.seconds, args.min_batches,
                                 args.probe_seconds)
    X, y = common.make_data(n_samples, d, m, seed=0)
    impls = {name: CLASSES[name](X, y, d, v, m, t, LR) for name in names}
    fps = common.flops_per_sample(d, v, m)
    rows = []
    for n_threads in threads_list:
        with common.limit_threads(n_threads):
            n_rows = {}
            for name in names:
                rate = probe_rate(impls[name], t, n_samples, args.probe_seconds)
                # cymlp runs the whole epoch unless that would take far longer than
                # planned (more threads on a busy machine); then it too is timed on
                # fewer batches
                whole = name.startswith("cymlp") and n_samples / rate <= 4 * args.seconds
                n_rows[name] = (n_samples if whole
                                else rows_for(rate, args.seconds, t, n_samples,
                                              args.min_batches))
            log(f"  d={d} v={v} m={m} t={t} threads={n_threads}: n_samples={n_samples}, "
                + ", ".join(f"{k}={n_rows[k]}" for k in names))
            for r in range(args.rounds):
                k = r % len(names)
                order = names[k:] + names[:k]
                seconds, cpu = {}, {}
                for name in order:
                    seconds[name], cpu[name] = timed(impls[name], n_rows[name])
                rates = {name: n_rows[name] / seconds[name] for name in names}
                cpu_rates = {name: n_rows[name] / max(cpu[name], 1e-9) for name in names}
                load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
                for pos, name in enumerate(order):
                    rate = rates[name]
                    pk = peaks[n_threads]["gflops_peak"]
                    rows.append({
                        "d": d, "v": v, "m": m, "t": t, "dtype": "float32",
                        "threads": n_threads, "implementation": name, "round": r,
                        "position": pos, "n_samples": n_samples,
                        "n_timed": n_rows[name], "seconds": seconds[name],
                        "samples_per_s": rate,
                        "cymlp_ratio": (rates["cymlp"] / rate if "cymlp" in rates
                                        else float("nan")),
                        "cpu_seconds": cpu[name],
                        "samples_per_cpu_s": cpu_rates[name],
                        "cymlp_cpu_ratio": (cpu_rates["cymlp"] / cpu_rates[name]
                                            if "cymlp" in cpu_rates else float("nan")),
                        "flops_per_sample": fps, "gflops": rate * fps / 1e9,
                        "peak_gflops": pk, "pct_of_peak": 100.0 * rate * fps / 1e9 / pk,
                        "lr": LR, "loadavg_1min": load, **info,
                    })
    return rows


# ----------------------------------------------------------------------- report
def summarise(rows, names):
    """Per (config, threads): median samples/s of each implementation, median per-round
    ratios cymlp/peer, and cymlp's median fraction of the sgemm peak."""
    groups = {}
    for row in rows:
        key = (row["d"], row["v"], row["m"], row["t"], row["threads"])
        groups.setdefault(key, []).append(row)
    out = []
    for key, grp in groups.items():
        s = {"config": key[:4], "threads": key[4]}
        for name in names:
            sel = [r for r in grp if r["implementation"] == name]
            s[name] = common.median([r["samples_per_s"] for r in sel])
            s[f"ratio_{name}"] = common.median([r["cymlp_ratio"] for r in sel])
            s[f"pct_{name}"] = common.median([r["pct_of_peak"] for r in sel])
            s[f"cpu_{name}"] = common.median([r["samples_per_cpu_s"] for r in sel])
            s[f"cpu_ratio_{name}"] = common.median([r["cymlp_cpu_ratio"] for r in sel])
            s[f"cpu_pct_{name}"] = common.median([r["pct_of_peak_cpu"] for r in sel])
            s[f"load_{name}"] = common.median([r["loadavg_1min"] for r in sel])
            s[f"n_timed_{name}"] = sel[0]["n_timed"] if sel else None
        s["n_samples"] = grp[0]["n_samples"]
        s["rounds"] = len({r["round"] for r in grp})
        out.append(s)
    return out


#: goals at 1 thread: (config, peer or 'peak', minimum ratio / fraction)
GOALS = (
    ((300, 256, 2, 32), "torch", 3.0),
    ((300, 256, 2, 1), "torch", 10.0),
    ((1000, 1000, 1000, 256), "torch", 1.5),
    ((1000, 1000, 1000, 256), "peak", 0.80),
)


def goal_lines(summary, cpu=False):
    """One line per goal: the measured value and whether it is met (``cpu``: from the
    CPU-time rates instead of the wall-clock ones)."""
    lines = []
    by_key = {(s["config"], s["threads"]): s for s in summary}
    prefix = "cpu_" if cpu else ""
    for cfg, peer, goal in GOALS:
        s = by_key.get((cfg, 1))
        if s is None:
            continue
        if peer == "peak":
            got = s.get(f"{prefix}pct_cymlp", float("nan")) / 100.0
            text = f"cymlp at {cfg}, 1 thread: {100 * got:.0f}% of sgemm peak"
            goal_text = f"goal >= {100 * goal:.0f}%"
        else:
            got = s.get(f"{prefix}ratio_{peer}", float("nan"))
            text = f"cymlp/{peer} at {cfg}, 1 thread: {common.fmt_ratio(got)}"
            goal_text = f"goal >= {goal:g}x"
        verdict = "n/a" if not math.isfinite(got) else ("met" if got >= goal else "MISSED")
        lines.append(f"- {text} ({goal_text}): **{verdict}**")
    return lines


def markdown(summary, names, peaks, info, args, missing):
    peers = [p for p in PEERS if p in names]
    head = ["config (d, v, m, t)", "threads"] + [f"{n} samples/s" for n in names]
    head += [f"cymlp/{p}" for p in peers] + ["cymlp % of peak"]
    lines = [
        "# Training speed of one SGD epoch (float32, plain SGD)",
        "",
        (f"Generated {common.now()} by `bench/bench_mlp.py"
         f"{' --quick' if args.quick else ''} --rounds {args.rounds}`. "
         "Samples/s: median over rounds; ratios: median of per-round ratios; "
         "% of peak: cymlp's GFLOP/s (flops per sample "
         "`4 (d v + v m) + 2 v m`) over the sgemm peak at the same thread count."),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for s in summary:
        cells = [str(s["config"]), str(s["threads"])]
        cells += [common.fmt_rate(s[n]) for n in names]
        cells += [common.fmt_ratio(s[f"ratio_{p}"]) for p in peers]
        pct = s.get("pct_cymlp", float("nan"))
        cells.append("n/a" if not math.isfinite(pct) else f"{pct:.1f}%")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Goals (1 thread):", ""] + goal_lines(summary)
    one = [s for s in summary if s["threads"] == 1]
    if one:
        head = (["config (d, v, m, t)"] + [f"{n} samples/cpu-s" for n in names]
                + [f"cymlp/{p}" for p in peers] + ["cymlp % of peak", "load"])
        lines += [
            "",
            ("The same at 1 thread measured in CPU time of the process instead of wall "
             "time (less sensitive to other processes taking the core; % of peak against "
             "the sgemm peak per CPU second; median 1-minute load average during the "
             "rounds in the last column):"),
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for s in one:
            cells = [str(s["config"])] + [common.fmt_rate(s[f"cpu_{n}"]) for n in names]
            cells += [common.fmt_ratio(s[f"cpu_ratio_{p}"]) for p in peers]
            pct = s.get("cpu_pct_cymlp", float("nan"))
            cells.append("n/a" if not math.isfinite(pct) else f"{pct:.1f}%")
            cells.append(f"{s.get('load_cymlp', float('nan')):.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Goals (1 thread, CPU time):", ""] + goal_lines(summary, cpu=True)
    first = peaks[min(peaks)]
    lines += ["", (f"sgemm peak (`bench/peak.py`, {first['size']}^3 float32, best of "
                   f"{len(first['seconds'])} calls, the better of the measurements before "
                   "and after the configurations):"), ""]
    for n, p in sorted(peaks.items()):
        lines.append(f"- {n} thread(s): {p['gflops_peak']:.1f} GFLOP/s "
                     f"(median {p['gflops_median']:.1f}; per CPU second "
                     f"{p['gflops_peak_cpu']:.1f})")
    lines += ["", ("Rows timed per implementation (n_samples: cymlp's epoch, chosen at 1 "
                   "thread):"), ""]
    for s in summary:
        lines.append(f"- {s['config']} threads={s['threads']}: n_samples={s['n_samples']}; "
                     + ", ".join(f"{n} {s[f'n_timed_{n}']}" for n in names))
    lines += ["", "Machine and libraries:", ""]
    for key, value in info.items():
        lines.append(f"- {key}: {value if value not in ('', None) else '(unset)'}")
    for name, why in missing.items():
        lines.append(f"- {name} not measured: {why}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------- main
def measure_peaks(args, log):
    """sgemm peak at every thread count (``peak.sgemm_peak``)."""
    peaks = {}
    for n in args.threads:
        peaks[n] = peak.sgemm_peak(n, size=args.peak_size, repeats=3 if args.quick else 5)
        log(f"sgemm peak, {n} thread(s): {peaks[n]['gflops_peak']:.1f} GFLOP/s")
    return peaks


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--threads", type=int, nargs="+", default=list(common.THREADS))
    p.add_argument("--impls", nargs="+", default=list(IMPLEMENTATIONS),
                   choices=IMPLEMENTATIONS)
    p.add_argument("--configs", nargs="+", default=None, metavar="D,V,M,T",
                   help="configurations, e.g. 300,256,2,32 (default: the five of the "
                        "benchmark)")
    common.add_timing_args(p, 0.4, "target seconds of one timed call (cymlp's epoch; "
                                   "peers' batches)")
    args = p.parse_args(argv)
    if common.apply_quick(args, 0.01, 0.002) and args.configs is None:
        args.configs = ["300,256,2,32", "64,64,10,32", "300,256,2,1"]
    if args.configs is None:
        args.configs = [",".join(map(str, c)) for c in common.CONFIGS]
    args.configs = [tuple(int(x) for x in c.split(",")) for c in args.configs]
    if any(len(c) != 4 or min(c) < 1 for c in args.configs):
        p.error("--configs takes d,v,m,t with four positive integers")
    if any(c[2] < 2 for c in args.configs):
        p.error("m (classes) must be at least 2")
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    common.warn_overrides(sys.stderr)
    names, missing = available(args.impls)
    common.load_libraries()
    info = common.machine_info()
    log(f"{info['cpu_model']}; BLAS {info['blas_internal_api']} {info['blas_version']} "
        f"kernel {info['blas_architecture']}; torch {info['torch_version']} "
        f"({info['torch_blas']}); sklearn {info['sklearn_version']}")
    peaks = measure_peaks(args, log)
    rows = []
    for cfg in args.configs:
        rows += bench_config(cfg, names, args.threads, args, peaks, info, log)
    common.finish(rows, peaks, measure_peaks(args, log), "mlp", args.out,
                  lambda pk: markdown(summarise(rows, names), names, pk, info, args, missing),
                  log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
