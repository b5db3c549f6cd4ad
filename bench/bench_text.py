"""Training speed of one SGD epoch of the text classifiers: cymlp against PyTorch.

Two models over a vocabulary of ``|V| = 20,000`` ids (PAD and UNK included), embeddings
of ``e = 50``, sentences of exactly ``n = 20`` tokens, one hidden layer of ``v = 256``
ReLU units, ``m = 2`` classes, minibatches of ``t = 32``, float32, plain SGD (momentum
0, no L2 penalty, learning rate 0.1):

``window`` (the lecture note)
    ``f = [E[j1]; ...; E[jn]]`` (``n e = 1000`` features), then the MLP.
``bag``
    ``f = (E[j1] + ... + E[jn]) / n`` (``e = 50`` features), then the MLP.

Implementations (every one gets the same token ids, the same batches in the same order
and the same initial parameters, copied from the cymlp model):

``cymlp``
    ``TextClassifier(encoder=..., solver='sgd', momentum=0, shuffle=False,
    early_stopping=False, ...).partial_fit(texts, y)``: one epoch as a user runs it, from
    the strings, so the time includes turning the texts into ids (the vocabulary lookup)
    and the input validation. The model is built once beforehand (``_initialize``).
``cymlp_engine``
    ``Engine.train`` over the pre-encoded ids (window: an ``(n_samples, n)`` id matrix;
    bag: CSR ``indptr`` / ``indices``): the compiled core alone.
``torch``
    Written as a user would: ``nn.Embedding(20000, 50, sparse=True)``, ``view(t, 1000)``,
    ``nn.Linear(1000, 256)``, ReLU, ``nn.Linear(256, 2)`` (window) or
    ``nn.EmbeddingBag(20000, 50, mode='mean', sparse=True)`` on the ``(t, n)`` id
    matrix, ``nn.Linear(50, 256)``, ReLU, ``nn.Linear(256, 2)`` (bag);
    ``F.cross_entropy``; ``optim.SGD(model.parameters(), lr)`` (sparse gradients of the
    embedding table are supported without momentum); ``zero_grad`` / ``backward`` /
    ``step`` per batch, on int64 id tensors made once.

Data: token ids drawn from a Zipf distribution (``P(word k) ~ 1 / k``) over the 19,998
words, so frequent rows of ``E`` repeat within a batch as in real text; every word
occurs at least once, so the vocabulary has exactly 20,000 entries. The texts given to
cymlp are the strings ``"w123 w45 ..."``; the ids torch and the engine get are the ones
cymlp's vocabulary assigns to them. Labels follow the sign of the mean of a fixed random
score per word (a task both models can learn, so training stays finite for any number
of epochs).

Timing follows ``bench_mlp.py``: the thread count is set for every BLAS and OpenMP pool
(threadpoolctl) and for torch; the implementations are interleaved in rounds whose order
rotates; the table shows the median rate over rounds and the median of per-round ratios;
rates are also computed from the process's CPU time. ``n_samples`` (one epoch) is chosen
per model so that ``cymlp_engine`` takes about ``--seconds`` at one thread; a slower
implementation is timed on a fixed number of batches with the same budget.

Flops per sample (``d = n e`` for the window, ``d = e`` for the bag): forward
``2 (d v + v m)``, weight gradients ``2 (d v + v m)``, the gradient of the input
``dX = dK[0] W[0]^T`` (it flows into the rows of ``E``) ``2 d v``, and the gradient of
the hidden activation ``dA = dz U^T`` ``2 v m``::

    flops_per_sample = 2 (2 d v + 2 v m) + 2 d v + 2 v m = 6 d v + 6 v m

Gathering, pooling and scattering the embedding rows, bias, ReLU, softmax and the
updates are not counted. The window model's GFLOP/s is compared with the sgemm peak of
``peak.py`` at the same thread count.

``--fasttext DATA_DIR`` adds a comparison on real text, from raw strings: MR (fold 0:
about 8,500 training and 1,070 test sentences), ``TextClassifier()`` with its defaults
(uni+bigram bag, e = 100, 256 ReLU, Adagrad) for exactly 10 epochs (no early stopping)
against fastText's ``train_supervised`` (``wordNgrams=2``, ``dim=100``, ``epoch=10``,
``thread=1``, its other defaults) on the same sentences written as a fastText file before
timing. Training rate: 10 x training sentences / seconds of the fit, which for cymlp
includes building the vocabulary and encoding the strings, and for fastText reading the
file and building its dictionary. Prediction rate: test sentences / seconds of
``TextClassifier.predict`` on the strings, and of fastText's ``test`` on the test file
(its ``predict`` fails on NumPy 2; ``test`` predicts every line of the file and reports
precision at 1, which for one label a sentence is the accuracy). Held-out accuracy on the
test fold for both. Rounds interleave the two; a fresh model every round (seed = round).

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_text.py --rounds 5
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_text.py \
        --models --fasttext ../shared/data --rounds 5       # fastText on MR only

writes ``bench/out/text.csv`` (one row per measurement) and ``bench/out/text.md``;
``--quick`` is a smoke run of about a quarter of a minute.
"""
import argparse
import math
import os
import sys

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_mlp
    import common
else:
    from . import bench_mlp, common

#: vocabulary size (PAD and UNK included), embedding width, tokens per sentence,
#: hidden units, classes, batch size
N_VOCAB, EMBED_DIM, N_TOKENS, HIDDEN, N_CLASSES, BATCH = 20000, 50, 20, 256, 2, 32

#: words of the synthetic corpus: every id of the vocabulary but PAD and UNK
N_WORDS = N_VOCAB - 2

#: exponent of the Zipf distribution of the tokens
ZIPF_EXPONENT = 1.0

#: learning rate of every implementation
LR = 0.1

MODELS = ("window", "bag")
IMPLEMENTATIONS = ("cymlp", "cymlp_engine", "torch", "gemm_bound")
CYMLP_IMPLS = ("cymlp", "cymlp_engine")

#: goals at 1 thread: (model, what, minimum); what is 'torch' (rate ratio against
#: torch) or 'peak' (fraction of the sgemm peak)
GOALS = (
    ("window", "torch", 2.0),
    ("window", "peak", 0.70),
    ("bag", "torch", 5.0),
)


# ----------------------------------------------------------------------- data
def flops_per_sample(model, n=N_TOKENS, e=EMBED_DIM, v=HIDDEN, m=N_CLASSES):
    """Flops of one SGD sample of the text model: ``6 d v + 6 v m``.

    Forward ``2 (d v + v m)``, weight gradients ``2 (d v + v m)``, input gradient into
    the embeddings ``2 d v`` and hidden-activation gradient ``2 v m``, with ``d = n e``
    (window) or ``d = e`` (bag). Gather/scatter of embedding rows and elementwise work
    are not counted.

    Parameters
    ----------
    model : {'window', 'bag'}
    n, e, v, m : int
        Tokens per sentence, embedding width, hidden units, classes.

    Returns
    -------
    int
    """
    d = n * e if model == "window" else e
    return 2 * (2 * d * v + 2 * v * m) + 2 * d * v + 2 * v * m


def make_corpus(n_samples, seed=0):
    """Zipf-distributed sentences of ``N_TOKENS`` words in which every word occurs.

    Parameters
    ----------
    n_samples : int
        Number of sentences; ``n_samples * N_TOKENS`` must be at least ``N_WORDS``.
    seed : int, default=0

    Returns
    -------
    texts : list of str
        ``"w123 w45 ..."``, one per sentence.
    y : ndarray of shape (n_samples,), int64
        Labels in {0, 1}: whether the mean score of the sentence's words is positive
        (one fixed standard normal score per word).
    """
    if n_samples * N_TOKENS < N_WORDS:
        raise ValueError(f"{n_samples} sentences of {N_TOKENS} tokens cannot hold all "
                         f"{N_WORDS} words")
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, N_WORDS + 1) ** ZIPF_EXPONENT
    p /= p.sum()
    words = rng.choice(N_WORDS, size=n_samples * N_TOKENS, p=p)
    # every word at least once, at random places
    words[rng.choice(words.size, size=N_WORDS, replace=False)] = rng.permutation(N_WORDS)
    words = words.reshape(n_samples, N_TOKENS)
    score = np.random.default_rng(seed + 1).standard_normal(N_WORDS)
    y = (score[words].mean(axis=1) > 0).astype(np.int64)
    names = [f"w{k}" for k in range(N_WORDS)]
    texts = [" ".join([names[k] for k in row]) for row in words.tolist()]
    return texts, y


def build_cymlp(model, texts, y):
    """A ``TextClassifier`` of the benchmark, initialised on ``(texts, y)`` (vocabulary,
    classes, parameters and workspaces; nothing trained)."""
    from cymlp import TextClassifier

    clf = TextClassifier(
        encoder=model, window=N_TOKENS, embed_dim=EMBED_DIM, ngram_range=(1, 1),
        pooling="mean", hidden_layer_sizes=(HIDDEN,), activation="relu", solver="sgd",
        momentum=0.0, nesterovs_momentum=False, alpha=0.0, learning_rate="constant",
        learning_rate_init=LR, batch_size=BATCH, shuffle=False, early_stopping=False,
        dtype="float32", random_state=0)
    clf._initialize(texts, y)
    if len(clf.vocabulary_) != N_VOCAB:
        raise RuntimeError(f"the vocabulary has {len(clf.vocabulary_)} entries, expected "
                           f"{N_VOCAB}")
    return clf


class Data:
    """Texts, labels and the ids cymlp assigns to them, for one model.

    Attributes: ``texts``, ``y`` (int64), ``ids`` (``(n, N_TOKENS)`` int32, for both
    models: sentences have exactly ``N_TOKENS`` words), ``feed`` (what the engine takes:
    ``{'ids'}`` or ``{'ids', 'indptr'}``), ``reference`` (an initialised cymlp model)
    and the initial parameters every implementation starts from (``E``, ``W``, ``b``:
    copies of the reference's).
    """

    def __init__(self, model, n_samples, seed=0):
        self.model = model
        self.n_samples = n_samples
        self.texts, self.y = make_corpus(n_samples, seed)
        self.reference = build_cymlp(model, self.texts, self.y)
        self.feed = self.reference._fitted.encoder.transform(self.texts, "float32")
        if model == "window":
            self.ids = self.feed.ids
        else:
            if not np.array_equal(self.feed.lengths, np.full(n_samples, N_TOKENS)):
                raise RuntimeError("every sentence must encode to N_TOKENS bag ids")
            self.ids = self.feed.ids.reshape(n_samples, N_TOKENS)
        ref = self.reference
        self.E = ref.embeddings_.copy()
        self.W = [w.copy() for w in ref.coefs_]
        self.b = [b.copy() for b in ref.intercepts_]

    def engine_inputs(self, n_rows):
        """The engine's inputs (``TokenInputs``) of the first ``n_rows`` sentences."""
        return self.feed if n_rows == self.n_samples else self.feed.take(np.arange(n_rows))

    def set_parameters(self, clf):
        """Copy the initial parameters into the cymlp model ``clf`` (in place)."""
        clf.embeddings_[...] = self.E
        for l in range(2):
            clf.coefs_[l][...] = self.W[l]
            clf.intercepts_[l][...] = self.b[l]


# ----------------------------------------------------------------------- implementations
class CymlpFit:
    """``TextClassifier.partial_fit`` on the first ``n_rows`` texts (one epoch)."""

    name = "cymlp"

    def __init__(self, data):
        self.data = data
        self.clf = build_cymlp(data.model, data.texts, data.y)
        data.set_parameters(self.clf)

    def train(self, n_rows):
        d = self.data
        if n_rows == d.n_samples:
            self.clf.partial_fit(d.texts, d.y)
        else:
            self.clf.partial_fit(d.texts[:n_rows], d.y[:n_rows])

    def logits(self, n_rows):
        return self.clf._engine.forward(self.data.engine_inputs(n_rows))


class CymlpEngine:
    """``Engine.train`` over ``order[0:n_rows]`` of the pre-encoded ids."""

    name = "cymlp_engine"

    def __init__(self, data, clf=None):
        self.data = data
        self.clf = clf if clf is not None else build_cymlp(data.model, data.texts, data.y)
        data.set_parameters(self.clf)
        self.engine = self.clf._engine
        self.y32 = data.y.astype(np.intc)
        self.order = np.arange(data.n_samples, dtype=np.intp)
        self.inputs = data.engine_inputs(data.n_samples)
        self.engine.ensure_allocated(self.inputs, BATCH)

    def train(self, n_rows):
        self.engine.train(self.inputs, self.y32, self.order[:n_rows], BATCH, LR)

    def logits(self, n_rows):
        return self.engine.forward(self.data.engine_inputs(n_rows))


class Torch:
    """The same model in PyTorch, trained on int64 id tensors."""

    name = "torch"

    def __init__(self, data):
        import torch

        self.torch = torch
        self.F = torch.nn.functional
        self.data = data
        self.model = torch_model(data.model)
        with torch.no_grad():
            self.model.emb.weight.copy_(torch.from_numpy(data.E))
            for layer, Wl, bl in zip((self.model.fc1, self.model.fc2), data.W, data.b):
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(Wl.T)))
                layer.bias.copy_(torch.from_numpy(bl))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=0.0)
        self.ids = torch.from_numpy(data.ids.astype(np.int64))
        self.y = torch.from_numpy(data.y)

    def train(self, n_rows):
        model, opt, F, ids, y = self.model, self.opt, self.F, self.ids, self.y
        for s in range(0, n_rows, BATCH):
            opt.zero_grad()
            loss = F.cross_entropy(model(ids[s:s + BATCH]), y[s:s + BATCH])
            loss.backward()
            opt.step()

    def logits(self, n_rows):
        with self.torch.no_grad():
            return self.model(self.ids[:n_rows]).numpy()


def torch_model(model):
    """The PyTorch network of ``model``, as a user would write it.

    ``'window'``: ``nn.Embedding`` (sparse gradients), rows concatenated by ``view``,
    Linear, ReLU, Linear. ``'bag'``: ``nn.EmbeddingBag`` (mean, sparse gradients) on the
    ``(t, n)`` id matrix, Linear, ReLU, Linear.
    """
    from torch import nn
    from torch.nn import functional as F

    class WindowNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(N_VOCAB, EMBED_DIM, sparse=True)
            self.fc1 = nn.Linear(N_TOKENS * EMBED_DIM, HIDDEN)
            self.fc2 = nn.Linear(HIDDEN, N_CLASSES)

        def forward(self, ids):
            x = self.emb(ids).view(ids.shape[0], N_TOKENS * EMBED_DIM)
            return self.fc2(F.relu(self.fc1(x)))

    class BagNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.EmbeddingBag(N_VOCAB, EMBED_DIM, mode="mean", sparse=True)
            self.fc1 = nn.Linear(EMBED_DIM, HIDDEN)
            self.fc2 = nn.Linear(HIDDEN, N_CLASSES)

        def forward(self, ids):
            return self.fc2(F.relu(self.fc1(self.emb(ids))))

    return WindowNet() if model == "window" else BagNet()


class GemmBound(bench_mlp.GemmBound):
    """The matrix products of an SGD step of the model alone (``bench_mlp.GemmBound``
    with the input gradient ``dX = dK H^T``; d = n e for the window, e for the bag), on
    random features: no gather, pooling, scatter, activation, softmax or Python. An
    implementation that does its products with this BLAS cannot be faster."""

    def __init__(self, data):
        d = N_TOKENS * EMBED_DIM if data.model == "window" else EMBED_DIM
        X = common.make_data(64 * BATCH, d, N_CLASSES)[0]
        super().__init__(X, None, d, HIDDEN, N_CLASSES, BATCH, LR, input_grad=True)


CLASSES = {cls.name: cls for cls in (CymlpFit, CymlpEngine, Torch, GemmBound)}


def check_same_model(impls, n_rows=64):
    """Before any training: every implementation gives the same logits on the first
    rows (same ids, same parameters, same model). Raises RuntimeError otherwise."""
    ref = None
    for name, impl in impls.items():
        if not hasattr(impl, "logits"):
            continue
        out = np.asarray(impl.logits(n_rows), dtype=np.float64)
        if ref is None:
            ref_name, ref = name, out
        elif out.shape != ref.shape or not np.allclose(out, ref, rtol=1e-4, atol=1e-5):
            raise RuntimeError(f"{name} and {ref_name} compute different logits before "
                               "training: the benchmark would compare different models")


# ----------------------------------------------------------------------- timing
def choose_n_samples(model, seconds, min_batches, probe_seconds):
    """Epoch size: about ``seconds`` of ``cymlp_engine`` at 1 thread, and enough
    sentences to hold every word."""
    n_min = -(-N_WORDS // N_TOKENS)
    n_pilot = max(4096, n_min)
    data = Data(model, n_pilot, seed=1)
    with common.limit_threads(1):
        rate = bench_mlp.probe_rate(CymlpEngine(data, data.reference), BATCH, n_pilot, probe_seconds)
    n = bench_mlp.rows_for(rate, seconds, BATCH, 10**7, min_batches)
    return max(n, -(-n_min // BATCH) * BATCH)


def bench_model(model, names, threads_list, args, peaks, info, log):
    """Measure one model at every thread count; return tidy rows."""
    n_samples = choose_n_samples(model, args.seconds, args.min_batches, args.probe_seconds)
    log(f"{model}: building {n_samples} sentences and the models")
    data = Data(model, n_samples, seed=0)
    impls = {}
    for name in names:
        # the engine trains the reference model itself (one vocabulary fit fewer)
        impls[name] = (CymlpEngine(data, data.reference) if name == "cymlp_engine"
                       else CLASSES[name](data))
    check_same_model(impls)
    fps = flops_per_sample(model)
    rows = []
    for n_threads in threads_list:
        with common.limit_threads(n_threads):
            n_rows = {}
            for name in names:
                rate = bench_mlp.probe_rate(impls[name], BATCH, n_samples,
                                            args.probe_seconds)
                whole = name in CYMLP_IMPLS and n_samples / rate <= 4 * args.seconds
                n_rows[name] = (n_samples if whole
                                else bench_mlp.rows_for(rate, args.seconds, BATCH,
                                                        n_samples, args.min_batches))
            log(f"  {model} threads={n_threads}: n_samples={n_samples}, "
                + ", ".join(f"{k}={n_rows[k]}" for k in names))
            for r in range(args.rounds):
                k = r % len(names)
                order = names[k:] + names[:k]
                seconds, cpu = {}, {}
                for name in order:
                    seconds[name], cpu[name] = bench_mlp.timed(impls[name], n_rows[name])
                rates = {name: n_rows[name] / seconds[name] for name in names}
                cpu_rates = {name: n_rows[name] / max(cpu[name], 1e-9) for name in names}
                load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
                for pos, name in enumerate(order):
                    row = {
                        "model": model, "n_vocab": N_VOCAB, "embed_dim": EMBED_DIM,
                        "n_tokens": N_TOKENS, "v": HIDDEN, "m": N_CLASSES, "t": BATCH,
                        "dtype": "float32", "threads": n_threads, "implementation": name,
                        "round": r, "position": pos, "n_samples": n_samples,
                        "n_timed": n_rows[name], "seconds": seconds[name],
                        "samples_per_s": rates[name], "cpu_seconds": cpu[name],
                        "samples_per_cpu_s": cpu_rates[name],
                    }
                    for c in CYMLP_IMPLS:
                        nan = float("nan")
                        row[f"{c}_ratio"] = rates[c] / rates[name] if c in rates else nan
                        row[f"{c}_cpu_ratio"] = (cpu_rates[c] / cpu_rates[name]
                                                 if c in cpu_rates else nan)
                    row.update({
                        "flops_per_sample": fps, "gflops": rates[name] * fps / 1e9,
                        "lr": LR, "zipf_exponent": ZIPF_EXPONENT, "loadavg_1min": load,
                        **info,
                    })
                    rows.append(row)
            done = [r for r in rows if r["model"] == model and r["threads"] == n_threads]
            log("    median samples/s: " + ", ".join(
                f"{name} " + common.fmt_rate(common.median(
                    [r["samples_per_s"] for r in done if r["implementation"] == name]))
                for name in names))
    return rows


# ----------------------------------------------------------------------- report
def summarise(rows, names):
    """Per (model, threads): median rates, median per-round ratios cymlp/peer and
    cymlp_engine/peer, median fraction of the sgemm peak (wall and CPU time)."""
    groups = {}
    for row in rows:
        groups.setdefault((row["model"], row["threads"]), []).append(row)
    out = []
    for (model, threads), grp in groups.items():
        s = {"model": model, "threads": threads, "n_samples": grp[0]["n_samples"],
             "rounds": len({r["round"] for r in grp})}
        for name in names:
            sel = [r for r in grp if r["implementation"] == name]
            s[name] = common.median([r["samples_per_s"] for r in sel])
            s[f"cpu_{name}"] = common.median([r["samples_per_cpu_s"] for r in sel])
            s[f"pct_{name}"] = common.median([r["pct_of_peak"] for r in sel])
            s[f"cpu_pct_{name}"] = common.median([r["pct_of_peak_cpu"] for r in sel])
            s[f"gflops_{name}"] = common.median([r["gflops"] for r in sel])
            s[f"load_{name}"] = common.median([r["loadavg_1min"] for r in sel])
            s[f"n_timed_{name}"] = sel[0]["n_timed"] if sel else None
            for c in CYMLP_IMPLS:
                s[f"ratio_{c}_{name}"] = common.median([r[f"{c}_ratio"] for r in sel])
                s[f"cpu_ratio_{c}_{name}"] = common.median([r[f"{c}_cpu_ratio"]
                                                           for r in sel])
        out.append(s)
    return out


def goal_lines(summary, names, cpu=False):
    """One line per goal and cymlp implementation: the value and whether it is met."""
    by_key = {(s["model"], s["threads"]): s for s in summary}
    prefix = "cpu_" if cpu else ""
    lines = []
    for model, what, goal in GOALS:
        s = by_key.get((model, 1))
        if s is None:
            continue
        for c in CYMLP_IMPLS:
            if c not in names or (what == "torch" and "torch" not in names):
                continue
            if what == "peak":
                got = s.get(f"{prefix}pct_{c}", float("nan")) / 100.0
                text = f"{model}, {c}, 1 thread: {100 * got:.0f}% of sgemm peak"
                goal_text = f"goal >= {100 * goal:.0f}%"
            else:
                got = s.get(f"{prefix}ratio_{c}_torch", float("nan"))
                text = f"{model}, {c}/torch, 1 thread: {common.fmt_ratio(got)}"
                goal_text = f"goal >= {goal:g}x"
            verdict = ("n/a" if not math.isfinite(got)
                       else ("met" if got >= goal else "MISSED"))
            lines.append(f"- {text} ({goal_text}): **{verdict}**")
    return lines


def _pct(x):
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.1f}%"


def markdown(summary, names, peaks, info, args, missing):
    cyms = [c for c in CYMLP_IMPLS if c in names]
    peers = [p for p in names if p not in CYMLP_IMPLS]
    ratio_cols = [(c, p) for c in cyms for p in peers]
    head = (["model", "threads"] + [f"{n} samples/s" for n in names]
            + [f"{c}/{p}" for c, p in ratio_cols]
            + [f"{c} GFLOP/s (% of peak)" for c in cyms])
    lines = [
        "# Training speed of the text classifiers (one SGD epoch, float32)",
        "",
        (f"Generated {common.now()} by `bench/bench_text.py"
         f"{' --quick' if args.quick else ''} --rounds {args.rounds}`. "
         f"|V| = {N_VOCAB}, e = {EMBED_DIM}, n = {N_TOKENS} tokens, v = {HIDDEN} ReLU, "
         f"m = {N_CLASSES}, t = {BATCH}, plain SGD (lr {LR}, momentum 0), Zipf "
         f"(exponent {ZIPF_EXPONENT}) token ids. "
         "Samples/s: median over rounds; ratios: median of per-round ratios; GFLOP/s: "
         "flops per sample `6 d v + 6 v m` (forward, weight gradients, input gradient "
         "into E, hidden gradient; d = n e for the window, e for the bag) times "
         "samples/s, over the sgemm peak at the same thread count. `cymlp` is "
         "`partial_fit` on the strings (text-to-id encoding included); `cymlp_engine` "
         "and `torch` start from the ids."),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for s in summary:
        cells = [s["model"], str(s["threads"])]
        cells += [common.fmt_rate(s[n]) for n in names]
        cells += [common.fmt_ratio(s[f"ratio_{c}_{p}"]) for c, p in ratio_cols]
        cells += [f"{s[f'gflops_{c}']:.1f} ({_pct(s[f'pct_{c}'])})" for c in cyms]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Goals (1 thread, wall time):", ""] + goal_lines(summary, names)
    one = [s for s in summary if s["threads"] == 1]
    if one:
        head = (["model"] + [f"{n} samples/cpu-s" for n in names]
                + [f"{c}/{p}" for c, p in ratio_cols]
                + [f"{c} % of peak" for c in cyms] + ["load"])
        lines += [
            "",
            ("The same at 1 thread in CPU time of the process instead of wall time (less "
             "sensitive to other processes taking the core; % of peak against the sgemm "
             "peak per CPU second; median 1-minute load average in the last column):"),
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for s in one:
            cells = [s["model"]] + [common.fmt_rate(s[f"cpu_{n}"]) for n in names]
            cells += [common.fmt_ratio(s[f"cpu_ratio_{c}_{p}"]) for c, p in ratio_cols]
            cells += [_pct(s[f"cpu_pct_{c}"]) for c in cyms]
            load = s.get(f"load_{names[0]}", float("nan"))
            cells.append(f"{load:.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Goals (1 thread, CPU time):", ""] + goal_lines(summary, names,
                                                                      cpu=True)
    first = peaks[min(peaks)]
    lines += ["", (f"sgemm peak (`bench/peak.py`, {first['size']}^3 float32, best of "
                   f"{len(first['seconds'])} calls, the better of the measurements before "
                   "and after the models):"), ""]
    for n, p in sorted(peaks.items()):
        lines.append(f"- {n} thread(s): {p['gflops_peak']:.1f} GFLOP/s "
                     f"(median {p['gflops_median']:.1f}; per CPU second "
                     f"{p['gflops_peak_cpu']:.1f})")
    lines += ["", ("Flops per sample: window "
                   f"{flops_per_sample('window'):,}, bag {flops_per_sample('bag'):,}."),
              "", ("Rows timed per implementation (n_samples: one epoch, chosen at 1 "
                   "thread):"), ""]
    for s in summary:
        lines.append(f"- {s['model']} threads={s['threads']}: n_samples={s['n_samples']}; "
                     + ", ".join(f"{n} {s[f'n_timed_{n}']}" for n in names))
    lines += ["", "Machine and libraries:", ""]
    for key, value in info.items():
        lines.append(f"- {key}: {value if value not in ('', None) else '(unset)'}")
    for name, why in missing.items():
        lines.append(f"- {name} not measured: {why}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------- fastText on MR
def bench_fasttext(data_dir, rounds, out_dir, log):
    """TextClassifier() against fastText on MR fold 0, from raw strings (see the module
    docstring); returns the Markdown section and writes ``fasttext.csv``."""
    import tempfile
    import time

    import fasttext

    from cymlp import TextClassifier, datasets

    splits = datasets.load("mr", data_dir=data_dir, fold=0)
    (train, y_train), (test, y_test) = splits.train, splits.test
    tmp = tempfile.mkdtemp(prefix="cymlp-bench-")
    files = {}
    for part, texts, labels in (("train", train, y_train), ("test", test, y_test)):
        files[part] = os.path.join(tmp, f"{part}.txt")
        with open(files[part], "w", encoding="utf-8") as fh:
            for text, label in zip(texts, labels):
                fh.write(f"__label__{label} {text}\n")
    rows = []
    with common.limit_threads(1):
        for r in range(rounds):
            order = ["cymlp", "fasttext"] if r % 2 == 0 else ["fasttext", "cymlp"]
            for name in order:
                tic = time.perf_counter()
                if name == "cymlp":
                    clf = TextClassifier(max_iter=10, early_stopping=False, random_state=r)
                    clf.fit(train, y_train)
                    fit_s = time.perf_counter() - tic
                    tic = time.perf_counter()
                    pred = clf.predict(test)
                    predict_s = time.perf_counter() - tic
                    accuracy = float(np.mean(pred == np.asarray(y_test)))
                else:
                    model = fasttext.train_supervised(input=files["train"], epoch=10,
                                                      wordNgrams=2, dim=100, thread=1,
                                                      seed=r, verbose=0)
                    fit_s = time.perf_counter() - tic
                    tic = time.perf_counter()
                    _, precision, _ = model.test(files["test"])
                    predict_s = time.perf_counter() - tic
                    accuracy = float(precision)
                rows.append({"round": r, "implementation": name, "fit_seconds": fit_s,
                             "train_sentences_per_s": 10 * len(train) / fit_s,
                             "predict_seconds": predict_s,
                             "predict_sentences_per_s": len(test) / predict_s,
                             "test_accuracy": accuracy, "n_train": len(train),
                             "n_test": len(test)})
                log(f"  mr round {r + 1}/{rounds} {name}: fit {fit_s:.2f} s, predict "
                    f"{predict_s:.3f} s, accuracy {accuracy:.4f}")
    common.write_csv(os.path.join(out_dir, "fasttext.csv"), rows)

    def med(name, key):
        return common.median([row[key] for row in rows if row["implementation"] == name])

    def ratio(key):
        per_round = {}
        for row in rows:
            per_round.setdefault(row["round"], {})[row["implementation"]] = row[key]
        return common.median([v["cymlp"] / v["fasttext"] for v in per_round.values()])

    lines = ["", "## TextClassifier() against fastText on MR, from raw strings (1 thread)",
             "", (f"MR fold 0: {len(train):,} training and {len(test):,} test sentences; "
                  f"10 epochs, uni+bigrams, dim 100; median of {rounds} interleaved rounds; "
                  "ratios are medians of per-round ratios."), "",
             "| | cymlp | fastText | cymlp/fastText |", "|---|---|---|---|"]
    for label, key in (("training sentences/s", "train_sentences_per_s"),
                       ("prediction sentences/s", "predict_sentences_per_s")):
        lines.append(f"| {label} | {common.fmt_rate(med('cymlp', key))} | "
                     f"{common.fmt_rate(med('fasttext', key))} | "
                     f"{common.fmt_ratio(ratio(key))} |")
    lines.append(f"| held-out accuracy | {100 * med('cymlp', 'test_accuracy'):.1f}% | "
                 f"{100 * med('fasttext', 'test_accuracy'):.1f}% | |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------- main
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--threads", type=int, nargs="+", default=list(common.THREADS))
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    p.add_argument("--fasttext", metavar="DATA_DIR", default=None,
                   help="also compare TextClassifier() with fastText on MR from this "
                        "data folder")
    p.add_argument("--impls", nargs="+", default=list(IMPLEMENTATIONS),
                   choices=IMPLEMENTATIONS)
    common.add_timing_args(p, 0.75, "target seconds of one timed call (cymlp_engine's "
                                    "epoch at 1 thread; the peers' batches)")
    args = p.parse_args(argv)
    common.apply_quick(args, 0.05, 0.01)
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    if min(args.threads) < 1:
        p.error("--threads must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    common.warn_overrides(sys.stderr)
    names, missing = bench_mlp.available(args.impls)
    common.load_libraries()
    info = common.machine_info()
    log(f"{info['cpu_model']}; BLAS {info['blas_internal_api']} {info['blas_version']} "
        f"kernel {info['blas_architecture']}; torch {info['torch_version']} "
        f"({info['torch_blas']})")
    extra = ""
    if args.fasttext:
        extra = bench_fasttext(os.path.abspath(args.fasttext), args.rounds, args.out, log)
    if not args.models:
        print(extra)
        with open(os.path.join(args.out, "fasttext.md"), "w", encoding="utf-8") as fh:
            fh.write(extra)
        return 0
    peaks = bench_mlp.measure_peaks(args, log)
    rows = []
    for model in args.models:
        rows += bench_model(model, names, args.threads, args, peaks, info, log)
    common.finish(rows, peaks, bench_mlp.measure_peaks(args, log), "text", args.out,
                  lambda pk: markdown(summarise(rows, names), names, pk, info, args,
                                      missing) + extra,
                  log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
