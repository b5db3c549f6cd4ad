"""NBSVM's interpolation toward naive Bayes (``TextPipeline(nb_interpolation=...)``) and
the words' character n-grams (``TfidfFeatures(char_ngram_range=...)``) in the tfidf
family's fixed starts of :func:`cymlp.autotune`, measured without the test sets.

Each start (``cymlp.tuning.STARTS["tfidf"]``: binary uni- and bigrams, naive-Bayes
weights, logistic regression) is built as the search builds it,
trained on each split's training part with every value of ``--betas`` and of
``--char-ngrams`` (early stopping on a tenth of the training part) and scored on the
split's official development set; the test sets are not read:

    python bench/nb_interpolation.py --data-dir ../shared/data
    python bench/nb_interpolation.py --data-dir ../shared/data --betas 0.75 \
        --char-ngrams none,2-5,3-5 --splits mr:0,mr:1,mr:2,mr:3,mr:4,sst2:0,trec:0

Prints the mean development accuracy (%) over ``--seeds`` per split, start, character
n-grams and interpolation.
"""
import argparse
import itertools
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
    p.add_argument("--char-ngrams", default="none",
                   help="character n-gram ranges, comma-separated: none, or lo-hi")
    args = p.parse_args(argv)
    betas = [float(b) for b in args.betas.split(",")]
    chars = [None if c == "none" else tuple(map(int, c.split("-")))
             for c in args.char_ngrams.split(",")]
    print("split", "start", "chars", *(f"beta={b}" for b in betas), sep="\t")
    for split in args.splits.split(","):
        name, fold = split.split(":")
        data = datasets.load(name, data_dir=args.data_dir, fold=int(fold))
        for (label, params), span in itertools.product(_starts(), chars):
            row = []
            for beta in betas:
                scores = []
                for seed in range(args.seeds):
                    pipe = tuning._make("tfidf", params, None, seed,
                                        tuning.FIT_SETTINGS["tfidf"])
                    pipe.set_params(nb_interpolation=beta)
                    pipe.features.set_params(char_ngram_range=span)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        pipe.fit(*data.train)
                    scores.append(pipe.score(*data.dev))
                row.append(f"{100 * np.mean(scores):.2f}")
            name = "none" if span is None else f"{span[0]}-{span[1]}"
            print(split, label, name, *row, sep="\t", flush=True)


if __name__ == "__main__":
    main()
