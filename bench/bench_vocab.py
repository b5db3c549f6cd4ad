"""Vocabulary building and encoding on MR: the compiled text path against the Python
reference.

For each setting (word uni- and bigrams; unigrams only; unigrams with character 3- to
5-grams) each implementation builds the vocabulary of all 10,662 MR texts and encodes
them for the bag encoder, as ``TextClassifier.fit`` does::

    vocab = Vocabulary(**setting).fit(texts)
    vocab.encode_bag(texts, return_shares=True)

| name | what runs |
|---|---|
| ``python`` | ``cymlp.vocab._ReferenceVocabulary``: the pure-Python path |
| ``compiled`` | ``cymlp.Vocabulary``: the compiled text path, one thread |
| ``compiled_2`` | the same with ``n_jobs=2`` for ``fit`` and ``encode_bag`` |

Before timing, the script checks that every implementation gives the same ids,
counts and CSR arrays. Round ``r`` runs every implementation once, starting with the
``r``-th and rotating; the table shows median seconds over the rounds, and the
ratio ``python / implementation`` is taken within each round, then the median (load
from other processes on a shared machine then affects both sides of a ratio alike).
Garbage collection is off while a call is timed; BLAS is limited to one thread (the
text path does not use it; this keeps idle BLAS threads from spinning).

Memory, measured apart from the timing, two ways:

* ``tracemalloc`` peak of fit + encode, above the memory traced before (the compiled
  path takes its C buffers from ``PyMem_RawMalloc``, so they are traced too);
* peak RSS of a child process that does fit + encode once, above its RSS after
  importing cymlp and reading the data (the high-water mark is reset there through
  ``/proc/self/clear_refs``; where that fails, the child's peak over its whole life
  is reported and the table says so).

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_vocab.py --data-dir ../shared/data

writes ``bench/out/vocab.csv`` (one row per setting, implementation and round) and
``bench/out/vocab.md``. ``--quick`` is a smoke run (one round, no RSS children).
"""
import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import common
else:
    from . import common

MB = 2**20
GOAL_RATIO = 10.0
GOAL_SETTING = "uni+bi"

#: name -> Vocabulary keyword arguments
SETTINGS = {
    "uni+bi": {"ngram_range": (1, 2)},
    "uni": {"ngram_range": (1, 1)},
    "uni+char3-5": {"ngram_range": (1, 1), "char_ngram_range": (3, 5)},
}

#: name -> (uses the reference class, n_jobs)
IMPLS = {
    "python": (True, 1),
    "compiled": (False, 1),
    "compiled_2": (False, 2),
}


def load_mr(data_dir):
    """The texts of ``rt-polarity.all`` (``LABEL TEXT`` lines; a line that is not
    UTF-8 is read as cp1252, as ``cymlp.datasets`` does)."""
    import warnings

    from cymlp import datasets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cp1252 fallback's warning
        return datasets.read_file(os.path.join(data_dir, "rt-polarity.all"),
                                  format="label_text").X


def vocabulary_class(impl):
    from cymlp import vocab

    return vocab._ReferenceVocabulary if IMPLS[impl][0] else vocab.Vocabulary


def run(impl, setting, texts):
    """Fit and encode once; ``(vocab, encoding, fit seconds, encode seconds, fit CPU
    seconds, encode CPU seconds)``."""
    cls = vocabulary_class(impl)
    n_jobs = IMPLS[impl][1]
    kwargs = SETTINGS[setting]
    shares = "char_ngram_range" in kwargs
    gc.disable()
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        vocab = cls(**kwargs).fit(texts, n_jobs=n_jobs)
        t1, c1 = time.perf_counter(), time.process_time()
        encoding = vocab.encode_bag(texts, return_shares=shares, n_jobs=n_jobs)
        t2, c2 = time.perf_counter(), time.process_time()
    finally:
        gc.enable()
    return vocab, encoding, t1 - t0, t2 - t1, c1 - c0, c2 - c1


def same_result(a, b):
    """Whether two (vocab, encoding) pairs are identical."""
    (va, ea), (vb, eb) = a, b
    return (va.id_to_token == vb.id_to_token and np.array_equal(va.counts, vb.counts)
            and va.n_unigrams == vb.n_unigrams and va.char_offset == vb.char_offset
            and len(ea) == len(eb) and all(np.array_equal(x, y) for x, y in zip(ea, eb)))


def traced_peak(impl, setting, texts):
    """tracemalloc peak (bytes) of fit + encode above the memory traced before."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = run(impl, setting, texts)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del result
    return peak - base


def _status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(impl, setting, data_dir):
    """In a child process: the peak RSS of fit + encode above the RSS before."""
    import cymlp.vocab  # noqa: F401  (everything imported before the baseline)

    texts = load_mr(data_dir)
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    base = _status("VmRSS")
    result = run(impl, setting, texts)
    peak = _status("VmHWM")
    del result
    print(json.dumps({"rss_peak": peak - base if reset else peak, "hwm_reset": reset}))


def rss_peak(impl, setting, data_dir):
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", impl, setting,
         "--data-dir", data_dir],
        capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def limit_blas():
    """BLAS at one thread (threadpoolctl, if installed): returns the limiter or None."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    import cymlp  # noqa: F401  (loads scipy's BLAS, so the limit reaches it)

    return threadpool_limits(limits=1, user_api="blas")


def loadavg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("CYMLP_DATA_DIR", "../shared/data"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=list(IMPLS))
    parser.add_argument("--out", default=common.OUT_DIR)
    parser.add_argument("--quick", action="store_true",
                        help="one round, no RSS children")
    parser.add_argument("--child", nargs=2, metavar=("IMPL", "SETTING"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dir = os.path.abspath(args.data_dir)
    if args.child:
        child(*args.child, data_dir)
        return
    common.warn_overrides(sys.stderr)
    rounds = 1 if args.quick else args.rounds
    limiter = limit_blas()
    texts = load_mr(data_dir)
    n_tokens = sum(len(t.split()) for t in texts)
    info = common.machine_info()
    info.update({"blas_threads": 1 if limiter is not None else None,
                 "n_texts": len(texts), "n_tokens": n_tokens})
    import cymlp

    print(f"{common.now()}  MR: {len(texts)} texts, {n_tokens} tokens; cymlp from "
          f"{os.path.dirname(cymlp.__file__)}, {info['cymlp_git']} build {info['cymlp_build']}",
          file=sys.stderr)

    rows, summary = [], []
    for setting in args.settings:
        impls = list(args.impls)
        # the same ids, counts and arrays from every implementation
        results = {impl: run(impl, setting, texts)[:2] for impl in impls}
        first = impls[0]
        for impl in impls[1:]:
            if not same_result(results[first], results[impl]):
                raise SystemExit(f"{setting}: {impl} differs from {first}")
        n_vocab = len(results[first][0])
        n_ids = len(results[first][1][1])
        del results
        per_round = {impl: [] for impl in impls}
        for r in range(rounds):
            order = impls[r % len(impls):] + impls[:r % len(impls)]
            for impl in order:
                _, _, fit_s, enc_s, fit_cpu, enc_cpu = run(impl, setting, texts)
                per_round[impl].append((fit_s, enc_s, fit_cpu, enc_cpu))
                rows.append({"setting": setting, "impl": impl, "round": r,
                             "fit_s": fit_s, "encode_s": enc_s, "total_s": fit_s + enc_s,
                             "fit_cpu_s": fit_cpu, "encode_cpu_s": enc_cpu,
                             "loadavg_1min": loadavg()})
            print(f"{common.now()}  {setting}: round {r + 1}/{rounds}", file=sys.stderr)
        memory = {}
        for impl in impls:
            memory[impl] = {"traced_peak": traced_peak(impl, setting, texts)}
            if not args.quick:
                memory[impl].update(rss_peak(impl, setting, data_dir))
        for impl in impls:
            totals = [f + e for f, e, _, _ in per_round[impl]]
            ratios = ([p[0] + p[1] for p in per_round["python"]][j] / totals[j]
                      for j in range(rounds)) if "python" in impls else ()
            summary.append({
                "setting": setting, "impl": impl, "n_vocab": n_vocab, "n_ids": n_ids,
                "fit_s": statistics.median(p[0] for p in per_round[impl]),
                "encode_s": statistics.median(p[1] for p in per_round[impl]),
                "total_s": statistics.median(totals),
                "total_cpu_s": statistics.median(p[2] + p[3] for p in per_round[impl]),
                "python_ratio": common.median(list(ratios)),
                **memory[impl],
            })
    for row in rows + summary:
        row.update(info)
    os.makedirs(args.out, exist_ok=True)
    common.write_csv(os.path.join(args.out, "vocab.csv"), rows)
    text = report(summary, info, rounds, args.quick)
    with open(os.path.join(args.out, "vocab.md"), "w") as fh:
        fh.write(text)
    print(text)


def report(summary, info, rounds, quick):
    lines = [
        "# Vocabulary: fit + encode_bag on MR",
        "",
        (f"{info['n_texts']} texts, {info['n_tokens']} tokens; median of {rounds} interleaved "
         "round(s); ratio = python seconds / implementation seconds within a round, median. "
         "Memory: peak above the start, tracemalloc and child RSS."),
        "",
        ("| setting | impl | n_vocab | fit s | encode s | total s | CPU s | python / impl "
         "| traced peak MB | RSS peak MB |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        rss = s.get("rss_peak")
        lines.append(
            f"| {s['setting']} | {s['impl']} | {s['n_vocab']:,} | {s['fit_s']:.3f} "
            f"| {s['encode_s']:.3f} | {s['total_s']:.3f} | {s['total_cpu_s']:.3f} "
            f"| {common.fmt_ratio(s['python_ratio'])} | {s['traced_peak'] / MB:.1f} "
            f"| {'n/a' if rss is None else f'{rss / MB:.1f}'} |")
    if any(s.get("hwm_reset") is False for s in summary):
        lines += ["", "RSS: the high-water mark could not be reset; the child's whole peak."]
    lines += ["", "Goals (printed, not asserted):", ""]
    by = {(s["setting"], s["impl"]): s for s in summary}
    goal = by.get((GOAL_SETTING, "compiled"))
    ref = by.get((GOAL_SETTING, "python"))
    if goal is not None and ref is not None:
        ok = goal["python_ratio"] >= GOAL_RATIO
        lines.append(f"* {GOAL_SETTING}: compiled at least {GOAL_RATIO:.0f}x the Python path: "
                     f"{common.fmt_ratio(goal['python_ratio'])} ({'met' if ok else 'NOT met'})")
        for key, name in (("traced_peak", "traced"), ("rss_peak", "RSS")):
            if goal.get(key) is not None and ref.get(key) is not None:
                ok = goal[key] <= ref[key]
                lines.append(f"* {GOAL_SETTING}: compiled peak memory ({name}) at most the "
                             f"Python path's: {goal[key] / MB:.1f} MB vs {ref[key] / MB:.1f} MB "
                             f"({'met' if ok else 'NOT met'})")
    lines += ["", f"Machine: {info['cpu_model']}, {info['n_cpus']} CPUs, Python "
              f"{info['python_version']}, NumPy {info['numpy_version']}; cymlp "
              f"{info['cymlp_git']} (build {info['cymlp_build']})"
              + ("; quick run" if quick else ""), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
