"""Attainable float32 GEMM rate of this machine: GFLOP/s of a large ``sgemm``.

``C = A B`` with square ``size x size`` float32 operands through
``scipy.linalg.blas.sgemm``, the same BLAS library cymlp calls through
``scipy.linalg.cython_blas``. Operands are Fortran-ordered so no copy is timed.
``2 size^3`` flops per call; the best of ``repeats`` calls is the peak.

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/peak.py [--size 2048]
"""
import argparse
import os
import sys
import time

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import common
else:
    from . import common


def sgemm_peak(n_threads, size=2048, repeats=5):
    """GFLOP/s of ``size^3`` float32 sgemm at ``n_threads`` BLAS threads.

    Parameters
    ----------
    n_threads : int
        BLAS threads (threadpoolctl limit).
    size : int, default=2048
        Order of the square matrices.
    repeats : int, default=5
        Timed calls after one untimed warm-up call.

    Returns
    -------
    dict
        ``threads``, ``size``, ``gflops_peak`` (best call), ``gflops_median``,
        ``seconds`` (of every timed call), and ``gflops_peak_cpu``: the best call's
        rate per second of process CPU time (with one thread, what the core does when
        it runs; other processes taking the core do not lower it).
    """
    from scipy.linalg.blas import sgemm

    rng = np.random.default_rng(0)
    a = np.asfortranarray(rng.standard_normal((size, size), dtype=np.float32))
    b = np.asfortranarray(rng.standard_normal((size, size), dtype=np.float32))
    c = np.zeros((size, size), dtype=np.float32, order="F")
    flops = 2.0 * size**3
    seconds, cpu_seconds = [], []
    with common.limit_threads(n_threads):
        sgemm(1.0, a, b, beta=0.0, c=c, overwrite_c=True)
        for _ in range(repeats):
            cpu = time.process_time()
            tic = time.perf_counter()
            sgemm(1.0, a, b, beta=0.0, c=c, overwrite_c=True)
            seconds.append(time.perf_counter() - tic)
            cpu_seconds.append(time.process_time() - cpu)
    rates = [flops / s / 1e9 for s in seconds]
    return {
        "threads": n_threads,
        "size": size,
        "gflops_peak": max(rates),
        "gflops_median": common.median(rates),
        "gflops_peak_cpu": max(flops / max(s, 1e-9) / 1e9 for s in cpu_seconds),
        "seconds": seconds,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=list(common.THREADS))
    args = parser.parse_args(argv)
    common.warn_overrides(sys.stderr)
    info = common.machine_info()
    print(f"{info['cpu_model']}; BLAS {info['blas_internal_api']} {info['blas_version']} "
          f"kernel {info['blas_architecture']}")
    for n in args.threads:
        r = sgemm_peak(n, args.size, args.repeats)
        print(f"threads={n}  sgemm {args.size}^3: peak {r['gflops_peak']:.1f} GFLOP/s, "
              f"median {r['gflops_median']:.1f} GFLOP/s, per CPU second "
              f"{r['gflops_peak_cpu']:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
