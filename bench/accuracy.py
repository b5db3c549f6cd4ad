"""Test accuracy of cymlp's text classifiers on MR, SST-2 and TREC.

Protocol (``../shared/data/README.md``): MR 10-fold cross-validation over a seed-0
permutation (fold k test, fold k+1 dev, the rest train); SST-2 the given split, 3 seeds;
TREC the given test set, dev = a seed-0 random 10% of train, 3 seeds. Every model keeps
the parameters of its best dev epoch. One BLAS thread.

A configuration may come with a small grid of hyper-parameters (the note's model: its
SGD learning rate and the scale of the initial embeddings, as the reference numbers of
that README were tuned; small embeddings put plain SGD on a long initial plateau, hence
up to 100 epochs, and early stopping only counts once the model beats the majority
class). Every candidate runs the whole protocol; the candidate with
the best mean dev accuracy is selected per dataset, and its test accuracy is reported.
The test sets never take part in the choice. Every candidate's dev and test means are
listed too.

``autotune`` is :func:`cymlp.tuning.autotune_splits` on every run of the protocol:
families and hyper-parameters searched for ``--autotune-budget`` seconds (default 60)
on the run's training and development parts (``--autotune-validation``: a 3-fold
cross-validation of both, the default, or ``dev``), the chosen model refitted on both,
then scored once on the test part. Its search record goes to
``out/autotune-<dataset>-<run>.json``. ``--runs N`` runs only the first N runs of the
protocol (MR: folds 0..N-1).

    python bench/accuracy.py --data-dir ../shared/data              # the fixed configurations
    python bench/accuracy.py --data-dir ../shared/data --config note --datasets mr
    python bench/accuracy.py --data-dir ../shared/data --config autotune --autotune-budget 60

Writes bench/out/accuracy.csv (one row per run) and bench/out/accuracy.md (``--tag T``:
accuracy-T.csv and accuracy-T.md).
"""
import argparse
import json
import pathlib
import sys
import time
import warnings

import numpy as np

import cymlp
from cymlp import datasets
from cymlp.tuning import autotune_splits

CONFIGS = {
    # the lecture note's model: window of 20 tokens, 50-d embeddings, 256 ReLU, SGD t=32
    # (tokens as given, as the reference numbers were measured)
    "note": dict(encoder="window", window=20, embed_dim=50, ngram_range=(1, 1),
                 lowercase=False, hidden_layer_sizes=(256,), activation="relu",
                 bias="both", solver="sgd", momentum=0.0, batch_size=32, max_iter=100,
                 n_iter_no_change=5),
    # TextClassifier() with nothing changed
    "default": {},
    # the default with subword units: character 3- to 5-grams of every word
    "subwords": {"char_ngram_range": (3, 5)},
}

#: configurations that are searched rather than fixed (run by run_autotune)
SEARCHED = ("autotune",)

#: hyper-parameters chosen on dev, per configuration: {name: [candidate, ...]}
GRIDS = {
    "note": [dict(learning_rate_init=lr, embed_init=scale)
             for lr in (0.3, 1.0) for scale in (0.01, 0.1)],
}

REPEATS = {"mr": 10, "sst2": 3, "trec": 3}


def _label(candidate):
    return " ".join(f"{k}={v}" for k, v in candidate.items()) or "-"


def run(name, config, ds, data_dir):
    """Every candidate of the configuration's grid over the protocol of ``ds``; the rows
    of the candidate with the best mean dev accuracy get ``selected = True``."""
    rows = []
    splits = [datasets.load(ds, data_dir=data_dir, fold=r if ds == "mr" else 0)
              for r in range(REPEATS[ds])]
    for candidate in GRIDS.get(name, [{}]):
        for r, sp in enumerate(splits):
            tic = time.perf_counter()
            model = cymlp.TextClassifier(random_state=r, **config, **candidate)
            model.fit(sp.train[0], sp.train[1], validation_data=sp.dev)
            seconds = time.perf_counter() - tic
            rows.append({"config": name, "dataset": ds, "candidate": _label(candidate),
                         "repeat": r, "test_accuracy": 100 * model.score(*sp.test),
                         "dev_accuracy": 100 * model.best_validation_score_,
                         "epochs": model.n_iter_, "best_epoch": model.best_epoch_,
                         "train_seconds": seconds})
            print(f"{name:8s} {ds:5s} [{_label(candidate)}] {r}: "
                  f"test {rows[-1]['test_accuracy']:.2f}  "
                  f"dev {rows[-1]['dev_accuracy']:.2f}  epochs {model.n_iter_}  "
                  f"{seconds:.1f} s", file=sys.stderr, flush=True)
    dev = {}
    for row in rows:
        dev.setdefault(row["candidate"], []).append(row["dev_accuracy"])
    best = max(dev, key=lambda c: np.mean(dev[c]))
    for row in rows:
        row["selected"] = row["candidate"] == best
    return rows


def run_autotune(ds, data_dir, args):
    """cymlp.autotune on the training and development parts of every run of the
    protocol of ``ds``; the test part is scored once, after the refit."""
    rows = []
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = REPEATS[ds] if args.runs is None else min(args.runs, REPEATS[ds])
    validation = (args.autotune_validation if args.autotune_validation == "dev"
                  else int(args.autotune_validation))
    for r in range(runs):
        sp = datasets.load(ds, data_dir=data_dir, fold=r if ds == "mr" else 0)
        tic = time.perf_counter()
        model, record = autotune_splits(sp, "text", time_budget=args.autotune_budget,
                                        validation=validation, random_state=r,
                                        search=args.autotune_search,
                                        verbose=args.verbose)
        seconds = time.perf_counter() - tic
        summary = record["autotune"]
        best = summary["best_params"]
        rows.append({"config": "autotune", "dataset": ds, "candidate": "-", "repeat": r,
                     "test_accuracy": 100 * record["test_accuracy"],
                     "dev_accuracy": 100 * record["dev_accuracy"],
                     "epochs": np.nan, "best_epoch": np.nan, "train_seconds": seconds,
                     "selected": True, "trials": summary["trials"],
                     "chosen": f"{best['family']} x{best['n_estimators']}"})
        tag = f"-{args.tag}" if args.tag else ""
        (out / f"autotune{tag}-{ds}-{r}.json").write_text(json.dumps(record, indent=1))
        print(f"autotune {ds:5s} {r}: test {rows[-1]['test_accuracy']:.2f}  "
              f"dev {rows[-1]['dev_accuracy']:.2f}  {summary['trials']} trials, chose "
              f"{rows[-1]['chosen']}  {seconds:.1f} s", file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--config", choices=list(CONFIGS) + list(SEARCHED), action="append")
    p.add_argument("--datasets", nargs="+", default=["mr", "sst2", "trec"],
                   choices=list(REPEATS))
    p.add_argument("--out", default=str(pathlib.Path(__file__).parent / "out"))
    p.add_argument("--tag", default="", help="suffix of the output files")
    p.add_argument("--runs", type=int, help="only the first RUNS runs of each protocol")
    p.add_argument("--autotune-budget", type=float, default=60.0,
                   help="seconds of search per training set (config autotune)")
    p.add_argument("--autotune-search", choices=["random", "tpe"], default="random")
    p.add_argument("--autotune-validation", default="3",
                   help="'dev' or a number of folds of train+dev (config autotune)")
    p.add_argument("--verbose", type=int, default=0, help="1: autotune's trial lines")
    args = p.parse_args(argv)
    import pandas as pd
    from threadpoolctl import threadpool_limits

    warnings.simplefilter("ignore", category=UserWarning)
    rows = []
    with threadpool_limits(1):
        for name in args.config or list(CONFIGS):
            for ds in args.datasets:
                if name in SEARCHED:
                    rows += run_autotune(ds, args.data_dir, args)
                else:
                    rows += run(name, CONFIGS[name], ds, args.data_dir)
    everything = pd.DataFrame(rows)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"-{args.tag}" if args.tag else ""
    everything.to_csv(out / f"accuracy{tag}.csv", index=False)
    df = everything[everything["selected"]]
    agg = df.groupby(["config", "dataset"]).agg(
        test=("test_accuracy", "mean"), test_std=("test_accuracy", "std"),
        dev=("dev_accuracy", "mean"), runs=("repeat", "count"),
        seconds=("train_seconds", "mean"), epochs=("epochs", "mean"))
    table = agg.reset_index().pivot(index="config", columns="dataset",
                                    values=["test", "test_std", "seconds"])
    lines = ["| config | " + " | ".join(f"{d} test % (± std)" for d in args.datasets)
             + " | " + " | ".join(f"{d} s/run" for d in args.datasets) + " |",
             "|---" * (1 + 2 * len(args.datasets)) + "|"]
    for name in table.index:
        cells = [f"{table.loc[name, ('test', d)]:.1f} ± {table.loc[name, ('test_std', d)]:.1f}"
                 for d in args.datasets]
        cells += [f"{table.loc[name, ('seconds', d)]:.1f}" for d in args.datasets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    grid = everything.groupby(["config", "dataset", "candidate"], sort=False).agg(
        dev=("dev_accuracy", "mean"), test=("test_accuracy", "mean"),
        selected=("selected", "first"), seconds=("train_seconds", "mean"))
    if len(grid) > len(agg):
        lines += ["", "Candidates (mean over the runs of the protocol; the selected one, by "
                  "dev accuracy, in bold):", "",
                  "| config | dataset | candidate | dev % | test % | s/run |",
                  "|---|---|---|---|---|---|"]
        for (name, ds, cand), g in grid.iterrows():
            mark = "**" if g["selected"] else ""
            lines.append(f"| {name} | {ds} | {mark}{cand}{mark} | {g['dev']:.1f} | "
                         f"{g['test']:.1f} | {g['seconds']:.1f} |")
    (out / f"accuracy{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
