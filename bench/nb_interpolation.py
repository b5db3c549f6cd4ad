"""NBSVM's interpolation toward naive Bayes (``TextPipeline(nb_interpolation=...)``),
measured without the test sets.

The tfidf family's fixed start of :func:`cymlp.autotune` (binary uni- and bigrams,
naive-Bayes weights, logistic regression with early stopping on a tenth of the training
part) is trained on each split's training part with every value of ``--betas`` and
scored on the split's official development set; the test sets are not read:

    python bench/nb_interpolation.py --data-dir ../shared/data

Prints the mean development accuracy (%) over ``--seeds`` per split and value.
"""
import argparse
import warnings

import numpy as np

import cymlp
from cymlp import datasets


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--splits", default="mr:0,sst2:0,trec:0", help="dataset:fold, comma-separated")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--betas", default="1,0.75,0.5")
    args = p.parse_args(argv)
    betas = [float(b) for b in args.betas.split(",")]
    print("split", *(f"beta={b}" for b in betas), sep="\t")
    for split in args.splits.split(","):
        name, fold = split.split(":")
        data = datasets.load(name, data_dir=args.data_dir, fold=int(fold))
        row = []
        for beta in betas:
            scores = []
            for seed in range(args.seeds):
                pipe = cymlp.TextPipeline(
                    cymlp.TfidfFeatures(ngram_range=(1, 2), tf="binary", weights="nb"),
                    cymlp.MLPClassifier((), early_stopping=True, validation_fraction=0.1,
                                        random_state=seed),
                    nb_interpolation=beta)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pipe.fit(*data.train)
                scores.append(pipe.score(*data.dev))
            row.append(f"{100 * np.mean(scores):.2f}")
        print(split, *row, sep="\t", flush=True)


if __name__ == "__main__":
    main()
