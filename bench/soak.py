"""Soak test: hours of training in one process, and its resident memory over time.

One process trains, for ``--minutes``, two kinds of work in turn:

* a long-lived ``TextClassifier`` on the MR training part (fold 0, from
  ``--data-dir``) that gets one more epoch (``partial_fit``) per round and is scored
  on the dev part: many epochs of one model, the optimiser state and the embedding
  table growing no further;
* a fresh model per round: a small ``TextClassifier`` fit with early stopping, an
  ``MLPClassifier`` fit on random data, each saved to and loaded from a model file
  and asked for predictions: the objects, engines and workspaces of many fits
  created and dropped.

Every minute it prints the elapsed time, the rounds, epochs and fits so far, the dev
accuracy of the long-lived model and the resident set size (``/proc/self/statm``).
The first ``--warmup`` minutes (default 1; 10% of the run when shorter) let the
allocator pools, BLAS buffers and the vocabulary settle; the last line is::

    RSS growth after warm-up: X%

the change of RSS from the end of the warm-up to the end of the run, relative to
its value at the end of the warm-up. BLAS runs on one thread (threadpoolctl).
Without ``--data-dir`` (or without the MR file there) the generated ``negation``
data set stands in for MR.

Usage::

    python bench/soak.py --minutes 10 --data-dir /work/shared/data
    python bench/soak.py                       # two hours on the generated data
"""
import argparse
import gc
import json
import os
import pathlib
import sys
import tempfile
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import cymlp
from cymlp import MLPClassifier, TextClassifier
from cymlp.datasets import load

MB = 2**20
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes():
    """Resident set size of this process in bytes (``/proc/self/statm``)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def _data(data_dir):
    """Train and dev parts of MR fold 0, or of the generated negation set."""
    if data_dir is not None:
        try:
            splits = load("mr", data_dir=data_dir, fold=0)
            return splits, "mr"
        except FileNotFoundError as exc:
            print(f"note: {exc}; using the generated 'negation' data", flush=True)
    return load("negation", seed=0), "negation"


class Soak:
    """The work of one round, and counters of what has been done."""

    def __init__(self, splits, workdir, seed=0):
        self.train_texts, self.train_y = splits.train
        self.dev_texts, self.dev_y = splits.dev
        self.model_path = pathlib.Path(workdir) / "soak.cymlp"
        self.rng = np.random.default_rng(seed)
        self.rounds = self.epochs = self.fits = 0
        self.dev_accuracy = float("nan")
        self.long_lived = TextClassifier(random_state=seed, early_stopping=False)
        classes = np.unique(self.train_y)
        self.long_lived.partial_fit(self.train_texts, self.train_y, classes=classes)
        self.epochs = 1

    def round(self):
        """One epoch of the long-lived model, then one fresh text and MLP fit."""
        i = self.rounds
        self.long_lived.partial_fit(self.train_texts, self.train_y)
        self.epochs += 1
        self.dev_accuracy = self.long_lived.score(self.dev_texts, self.dev_y)

        n = min(2000, len(self.train_y))
        idx = self.rng.choice(len(self.train_y), size=n, replace=False)
        texts = [self.train_texts[j] for j in idx]
        fresh = TextClassifier((64,), embed_dim=32, max_iter=3, random_state=i,
                               early_stopping=True)
        fresh.fit(texts, self.train_y[idx])
        fresh.save(self.model_path)
        cymlp.load(self.model_path).predict(self.dev_texts[:200])

        X = self.rng.standard_normal((1000, 50)).astype(np.float32)
        y = self.rng.integers(0, 5, len(X))
        mlp = MLPClassifier((128,), max_iter=5, random_state=i, tol=0.0)
        mlp.fit(X, y)
        mlp.save(self.model_path)
        cymlp.load(self.model_path).predict_proba(X[:100])
        self.fits += 2
        self.rounds += 1


def _blas_summary():
    libs = [f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} thread)"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(libs)


def run(minutes, data_dir, warmup_minutes=None, json_path=None, stream=sys.stdout):
    """Soak for ``minutes``; print RSS every minute; return the record as a dict."""
    if warmup_minutes is None:
        warmup_minutes = min(1.0, 0.1 * minutes)
    splits, name = _data(data_dir)
    print(f"soak: {minutes:g} min on {name} ({len(splits.train[1])} train, "
          f"{len(splits.dev[1])} dev), warm-up {warmup_minutes:g} min, "
          f"cymlp {cymlp.__version__}, numpy {np.__version__}", file=stream, flush=True)
    samples = []
    with threadpool_limits(1), tempfile.TemporaryDirectory() as workdir, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print(f"BLAS: {_blas_summary()}", file=stream, flush=True)
        start = time.perf_counter()
        soak = Soak(splits, workdir)
        warm_rss = None
        next_report = 60.0
        while True:
            soak.round()
            elapsed = time.perf_counter() - start
            if warm_rss is None and elapsed >= 60 * warmup_minutes:
                gc.collect()
                warm_rss = rss_bytes()
                print(f"{elapsed / 60:7.2f} min  end of warm-up: RSS {warm_rss / MB:.1f} MB",
                      file=stream, flush=True)
            done = elapsed >= 60 * minutes
            if elapsed >= next_report or done:
                gc.collect()
                rss = rss_bytes()
                samples.append({"minutes": elapsed / 60, "rounds": soak.rounds,
                                "epochs": soak.epochs, "fits": soak.fits,
                                "dev_accuracy": soak.dev_accuracy, "rss_mb": rss / MB})
                print(f"{elapsed / 60:7.2f} min  rounds {soak.rounds:5d}  "
                      f"epochs {soak.epochs:5d}  fits {soak.fits:6d}  "
                      f"dev acc {soak.dev_accuracy:.4f}  RSS {rss / MB:8.1f} MB",
                      file=stream, flush=True)
                while next_report <= elapsed:
                    next_report += 60.0
            if done:
                break
    final = samples[-1]["rss_mb"] * MB
    if warm_rss is None:  # the run was shorter than its warm-up
        warm_rss = samples[0]["rss_mb"] * MB
    growth = (final - warm_rss) / warm_rss
    peak = max(s["rss_mb"] for s in samples)
    print(f"peak RSS {peak:.1f} MB; RSS at end of warm-up {warm_rss / MB:.1f} MB, "
          f"at the end {final / MB:.1f} MB", file=stream)
    print(f"RSS growth after warm-up: {100 * growth:.2f}%", file=stream, flush=True)
    record = {"data": name, "minutes": minutes, "warmup_minutes": warmup_minutes,
              "rss_warm_mb": warm_rss / MB, "rss_final_mb": final / MB,
              "rss_growth": growth, "samples": samples}
    if json_path is not None:
        pathlib.Path(json_path).write_text(json.dumps(record, indent=1))
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=120.0,
                        help="how long to run (default 120)")
    parser.add_argument("--data-dir", default=None,
                        help="folder holding rt-polarity.all (MR); default: generated data")
    parser.add_argument("--warmup", type=float, default=None,
                        help="warm-up minutes (default 1, or 10%% of a shorter run)")
    parser.add_argument("--json", default=None, help="also write the record to this file")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    run(args.minutes, args.data_dir, args.warmup, args.json)


if __name__ == "__main__":
    main()
