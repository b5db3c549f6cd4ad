"""Variants of the search (optuna TPE or random sampling; with or without blends),
measured without the test sets.

Nested evaluation: for every split and seed, :func:`cymlp.autotune` searches the text
families on the split's *training part only* (its own development data: ``--validation``,
a fraction held out or a number of folds), refits the choice, and the returned model
is scored on the split's official development set, which the search never saw. The
test sets are not read. Every variant gets the same budget, seed and data. A variant is
``random`` or ``tpe`` (the sampler; the pruning is the same successive halving), with
``-noblend`` appended for a search without the blend stage (``blend=False``):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        python bench/autotune_search.py --data-dir ../shared/data --budget 60 \\
        --searches random,random-noblend

Writes one JSON line per run to ``autotune_search.jsonl`` in the ``--out`` folder
(default bench/out; a path ending in .jsonl names the file itself) and prints a table
of the mean development accuracy per search.
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--splits", default="mr:0,mr:1,sst2:0,trec:0",
                   help="dataset:fold, comma-separated")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--searches", default="random,tpe")
    p.add_argument("--budget", type=float, default=60.0)
    p.add_argument("--validation", default="3",
                   help="a number of folds, or a fraction held out, of the training part")
    p.add_argument("--out", default=str(pathlib.Path(__file__).parent / "out"),
                   help="output folder (or a .jsonl file) for autotune_search.jsonl")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    validation = float(args.validation) if "." in args.validation else int(args.validation)
    for search in args.searches.split(","):
        if search.removesuffix("-noblend") not in ("random", "tpe"):
            p.error(f"--searches: {search!r} is not random or tpe (with -noblend or not)")
    out = pathlib.Path(args.out)
    if out.suffix != ".jsonl":  # a folder, as --out of the other benchmarks
        out = out / "autotune_search.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.open("a").close()  # fail now, not after the first search
    warnings.simplefilter("ignore")
    rows = []
    with threadpool_limits(1):
        for spec in args.splits.split(","):
            ds, fold = spec.split(":")
            sp = datasets.load(ds, data_dir=args.data_dir, fold=int(fold))
            for seed in map(int, args.seeds.split(",")):
                for search in args.searches.split(","):
                    tic = time.perf_counter()
                    model = cymlp.autotune("text", sp.train[0], sp.train[1],
                                           time_budget=args.budget, validation=validation,
                                           random_state=seed,
                                           search=search.removesuffix("-noblend"),
                                           blend=not search.endswith("-noblend"))
                    seconds = time.perf_counter() - tic
                    s = model.autotune_summary_
                    row = {"split": spec, "seed": seed, "search": search,
                           "seconds": seconds, "budget": args.budget,
                           "validation": args.validation,
                           "inner_dev": s["best_dev_score"],
                           "dev_accuracy": float(model.score(*sp.dev)),
                           "trials": s["trials"], "complete": s["trials_complete"],
                           "pruned": s["trials_pruned"], "family":
                           s["best_params"]["family"],
                           "n_estimators": s["best_params"]["n_estimators"]}
                    rows.append(row)
                    with out.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(f"{spec:7s} seed {seed} {search:14s} dev {row['dev_accuracy']:.4f} "
                          f"(inner {row['inner_dev']:.4f}) {row['trials']} trials "
                          f"({row['complete']} complete) chose {row['family']} "
                          f"x{row['n_estimators']}  {seconds:.1f} s", file=sys.stderr,
                          flush=True)
    searches = args.searches.split(",")
    print("| split | " + " | ".join(f"{s} dev %" for s in searches) + " |")
    print("|---" * (1 + len(searches)) + "|")
    for spec in args.splits.split(","):
        cells = [np.mean([r["dev_accuracy"] for r in rows
                          if r["split"] == spec and r["search"] == s]) for s in searches]
        print(f"| {spec} | " + " | ".join(f"{100 * c:.2f}" for c in cells) + " |")
    means = [np.mean([r["dev_accuracy"] for r in rows if r["search"] == s])
             for s in searches]
    print("| mean | " + " | ".join(f"{100 * m:.2f}" for m in means) + " |")


if __name__ == "__main__":
    main()
