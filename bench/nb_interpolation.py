"""NBSVM's interpolation toward naive Bayes (``TextPipeline(nb_interpolation=...)``) in
the tfidf family's fixed starts of :func:`cymlp.autotune`, and the starts themselves,
measured without the test sets.

Each start (``cymlp.tuning.STARTS["tfidf"]``: binary uni- and bigrams, naive-Bayes
weights, logistic regression) is built as the search builds it,
trained on each split's training part with every value of ``--betas`` (early stopping on
a tenth of the training part) and scored on the split's official development set; the
test sets are not read:

    python bench/nb_interpolation.py --data-dir ../shared/data

Prints the mean development accuracy (%) over ``--seeds`` per split, start and value.
"""
import argparse
import warnings

import numpy as np

from cymlp import datasets, tuning


def _starts():
    """(name, params) of every fixed start of the tfidf family."""
    out = []
    for fixed in tuning.STARTS["tfidf"]:
        s = tuning._RandomSuggester(None, fixed=fixed, defaults_only=True)
        _, params = tuning._configuration(s, ["tfidf"])
        c = params["classifier"]
        out.append((f"{c['solver']} {c['learning_rate_init']:g}", params))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--splits", default="mr:0,sst2:0,trec:0", help="dataset:fold, comma-separated")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--betas", default="1,0.75,0.5")
    args = p.parse_args(argv)
    betas = [float(b) for b in args.betas.split(",")]
    print("split", "start", *(f"beta={b}" for b in betas), sep="\t")
    for split in args.splits.split(","):
        name, fold = split.split(":")
        data = datasets.load(name, data_dir=args.data_dir, fold=int(fold))
        for label, params in _starts():
            row = []
            for beta in betas:
                scores = []
                for seed in range(args.seeds):
                    pipe = tuning._make("tfidf", params, None, seed,
                                        tuning.FIT_SETTINGS["tfidf"])
                    pipe.set_params(nb_interpolation=beta)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        pipe.fit(*data.train)
                    scores.append(pipe.score(*data.dev))
                row.append(f"{100 * np.mean(scores):.2f}")
            print(split, label, *row, sep="\t", flush=True)


if __name__ == "__main__":
    main()
