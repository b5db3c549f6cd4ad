"""Training speed on sparse input: TF-IDF features of MR into one hidden layer.

The features are scikit-learn's ``TfidfVectorizer(ngram_range=(1, 2))`` of the MR
training texts of fold 0 (about 8,500 sentences; every unigram and bigram a column, so
``d`` is in the tens of thousands), float32, CSR. The network: ``d`` -> 256 ReLU -> 2,
minibatches of 32, plain SGD (momentum 0, no L2 penalty, learning rate 0.1), every
implementation from the same initial parameters, the batches in the same order (no
shuffling).

Implementations:

``cymlp``
    ``MLPClassifier(..., solver='sgd').partial_fit(X_csr, y)``: one epoch on the CSR
    matrix, as a user runs it (input checks included). The first layer is multiplied
    from the nonzeros and only the rows of ``W[0]`` of the batch's features are updated.
``sklearn``
    ``sklearn.neural_network.MLPClassifier`` with the same settings, ``partial_fit`` on
    the same CSR matrix.
``torch``
    ``torch.sparse.mm`` of each batch (a sparse COO tensor made once per batch before
    timing) with the first weight matrix, then ReLU, ``nn.Linear(256, 2)``,
    ``F.cross_entropy`` and ``optim.SGD``; the first layer's gradient is dense.

Timing: one thread for every BLAS and OpenMP pool and for torch; the implementations
run in interleaved rounds whose order rotates; each timed call trains on the first
``n_rows`` rows, chosen per implementation so that a call takes about ``--seconds``;
the table gives the median rate (samples/s) over rounds and the median of the
per-round ratios.

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_sparse.py \\
        --data-dir ../shared/data [--rounds 5] [--seconds 2]
"""
import argparse
import gc
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

HIDDEN, BATCH, LR = 256, 32, 0.1
IMPLEMENTATIONS = ("cymlp", "sklearn", "torch")


def tfidf_of_mr(data_dir):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from cymlp import datasets

    splits = datasets.load("mr", data_dir=data_dir, fold=0)
    texts, y = splits.train
    X = TfidfVectorizer(ngram_range=(1, 2), dtype=np.float32).fit_transform(texts)
    return X.tocsr(), np.asarray(y, dtype=np.int64)


def initial_weights(d, seed=0):
    rng = np.random.default_rng(seed)
    r0, r1 = np.sqrt(6.0 / d), np.sqrt(6.0 / (HIDDEN + 2))
    return ([rng.uniform(-r0, r0, (d, HIDDEN)).astype(np.float32),
             rng.uniform(-r1, r1, (HIDDEN, 2)).astype(np.float32)],
            [np.zeros(HIDDEN, np.float32), np.zeros(2, np.float32)])


class Cymlp:
    name = "cymlp"

    def __init__(self, X, y):
        from cymlp import MLPClassifier

        self.X, self.y = X, y
        self.clf = MLPClassifier((HIDDEN,), solver="sgd", momentum=0.0, alpha=0.0,
                                 batch_size=BATCH, learning_rate_init=LR, shuffle=False,
                                 dtype="float32", random_state=0)
        self.clf._initialize(X[:BATCH], y[:BATCH], classes=[0, 1])
        W, b = initial_weights(X.shape[1])
        for layer in range(2):
            self.clf.coefs_[layer][...] = W[layer]
            self.clf.intercepts_[layer][...] = b[layer]

    def train(self, n_rows):
        self.clf.partial_fit(self.X[:n_rows], self.y[:n_rows])


class Sklearn:
    name = "sklearn"

    def __init__(self, X, y):
        from sklearn.neural_network import MLPClassifier

        self.X, self.y = X, y
        self.clf = MLPClassifier((HIDDEN,), solver="sgd", momentum=0.0, alpha=0.0,
                                 batch_size=BATCH, learning_rate_init=LR, shuffle=False,
                                 random_state=0)
        self.clf.partial_fit(X[:BATCH], y[:BATCH], classes=[0, 1])
        W, b = initial_weights(X.shape[1])
        self.clf.coefs_ = [w.astype(np.float32) for w in W]
        self.clf.intercepts_ = [v.astype(np.float32) for v in b]

    def train(self, n_rows):
        self.clf.partial_fit(self.X[:n_rows], self.y[:n_rows])


class Torch:
    name = "torch"

    def __init__(self, X, y):
        import torch

        self.torch = torch
        W, b = initial_weights(X.shape[1])
        self.W0 = torch.nn.Parameter(torch.from_numpy(W[0]))
        self.b0 = torch.nn.Parameter(torch.from_numpy(b[0]))
        self.out = torch.nn.Linear(HIDDEN, 2)
        with torch.no_grad():
            self.out.weight.copy_(torch.from_numpy(W[1].T.copy()))
            self.out.bias.zero_()
        self.opt = torch.optim.SGD([self.W0, self.b0, *self.out.parameters()], lr=LR)
        self.batches = []
        for s in range(0, X.shape[0], BATCH):
            coo = X[s:s + BATCH].tocoo()
            idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
            self.batches.append((torch.sparse_coo_tensor(idx, torch.from_numpy(coo.data),
                                                         coo.shape).coalesce(),
                                 torch.from_numpy(y[s:s + BATCH])))

    def train(self, n_rows):
        F = self.torch.nn.functional
        for xb, yb in self.batches[:n_rows // BATCH]:
            h = F.relu(self.torch.sparse.mm(xb, self.W0) + self.b0)
            loss = F.cross_entropy(self.out(h), yb)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()


CLASSES = {cls.name: cls for cls in (Cymlp, Sklearn, Torch)}


def timed(impl, n_rows):
    gc.collect()
    gc.disable()
    try:
        tic, cpu = time.perf_counter(), time.process_time()
        impl.train(n_rows)
        return time.perf_counter() - tic, time.process_time() - cpu
    finally:
        gc.enable()


def rows_for(impl, n_max, seconds):
    """Rows (a multiple of the batch) that one call of ``impl`` trains in ``seconds``."""
    n = min(n_max, 8 * BATCH)
    impl.train(n)  # warm-up
    while True:
        wall, _ = timed(impl, n)
        if wall >= seconds / 4 or n >= n_max:
            break
        n = min(n_max, 2 * n)
    rate = n / max(wall, 1e-9)
    return max(BATCH, min(n_max, int(rate * seconds) // BATCH * BATCH))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("CYMLP_DATA_DIR",
                                                               "../shared/data"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--impls", nargs="+", default=list(IMPLEMENTATIONS),
                        choices=IMPLEMENTATIONS)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    args = parser.parse_args(argv)
    common.warn_overrides(sys.stderr)
    X, y = tfidf_of_mr(os.path.abspath(args.data_dir))
    n_max = X.shape[0] // BATCH * BATCH
    print(f"TF-IDF of MR (fold 0 train): {X.shape[0]:,} x {X.shape[1]:,}, "
          f"{X.nnz / X.shape[0]:.1f} nonzeros a row", file=sys.stderr)
    rows = []
    with common.limit_threads(1):
        impls = {name: CLASSES[name](X, y) for name in args.impls}
        n_rows = {name: rows_for(impl, n_max, args.seconds) for name, impl in impls.items()}
        rates = {name: [] for name in impls}
        for r in range(args.rounds):
            names = list(impls)
            names = names[r % len(names):] + names[:r % len(names)]
            for name in names:
                wall, cpu = timed(impls[name], n_rows[name])
                rates[name].append(n_rows[name] / wall)
                rows.append({"round": r, "impl": name, "n_rows": n_rows[name],
                             "wall_s": wall, "cpu_s": cpu,
                             "samples_per_s": n_rows[name] / wall})
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                f"{n} {rates[n][-1]:,.0f}/s" for n in impls), file=sys.stderr)
    info = common.machine_info()
    lines = [f"# Sparse input: TF-IDF (uni+bigrams) of MR -> {HIDDEN} ReLU -> 2, "
             f"t = {BATCH}, plain SGD, float32, 1 thread",
             "",
             f"{X.shape[0]:,} rows x {X.shape[1]:,} columns, {X.nnz:,} nonzeros; "
             f"{args.rounds} interleaved rounds; {common.now()}; {info['cpu_model']}; "
             f"scipy's BLAS {info['blas_internal_api']} {info['blas_version']} "
             f"({info['blas_architecture']} kernel); torch {info['torch_version']}; "
             f"scikit-learn {info['sklearn_version']}",
             "",
             "| implementation | samples/s (median) | cymlp / it (median of rounds) |",
             "|---|---|---|"]
    for name in impls:
        ratio = common.median([c / o for c, o in zip(rates["cymlp"], rates[name])]) \
            if "cymlp" in rates else float("nan")
        lines.append(f"| {name} | {common.fmt_rate(common.median(rates[name]))} | "
                     f"{common.fmt_ratio(ratio)} |")
    report = "\n".join(lines) + "\n"
    os.makedirs(args.out, exist_ok=True)
    common.write_csv(os.path.join(args.out, "sparse.csv"), rows)
    with open(os.path.join(args.out, "sparse.md"), "w", encoding="utf-8") as fh:
        fh.write(report)
    print(report)


if __name__ == "__main__":
    main()
