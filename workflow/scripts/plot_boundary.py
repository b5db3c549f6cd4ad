"""XOR decision boundaries: a linear model (identity) next to non-linear ones.

Loads the saved models and evaluates ``predict_proba`` on a grid over the data.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
from plotting import plt


def plot(model_paths, run_paths, data_seed, path):
    import cymlp
    from cymlp import datasets

    splits = datasets.load("xor", seed=data_seed)
    X, y = splits.train
    X = np.asarray(X)
    y = np.asarray(y)
    pad = 0.25 * (X.max(axis=0) - X.min(axis=0))
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.column_stack([gx.ravel(), gy.ravel()])

    n = len(model_paths)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.7), squeeze=False)
    for ax, model_path, run_path in zip(axes[0], model_paths, run_paths):
        model = cymlp.load(model_path)
        with open(run_path, encoding="utf-8") as fh:
            record = json.load(fh)
        config = record["config"]
        proba = np.asarray(model.predict_proba(grid.astype(config.get("dtype",
                                                                      "float32"))))
        positive = proba[:, -1].reshape(gx.shape)
        ax.contourf(gx, gy, positive, levels=np.linspace(0, 1, 11), cmap="RdBu_r",
                    alpha=0.75)
        ax.contour(gx, gy, positive, levels=[0.5], colors="k", linewidths=1)
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", edgecolors="k",
                   linewidths=0.3, s=9)
        accuracy = record.get("test_accuracy")
        acc = "–" if accuracy is None else f"{100 * accuracy:.1f}%"
        hidden = "x".join(str(h) for h in config["hidden"])
        ax.set_title(f"{config['activation']} (hidden {hidden}, bias "
                     f"{config['bias']})\ntest accuracy {acc}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("XOR: P(class 1) on a grid; black line: decision boundary")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(snakemake):
    plot(list(snakemake.params.models), list(snakemake.params.runs),
         snakemake.params.data_seed, snakemake.output[0])


if __name__ == "__main__" and "snakemake" in globals():
    job = globals()["snakemake"]  # injected by Snakemake's script directive
    # Errors and tracebacks go to the rule's log file, open until the process ends.
    sys.stderr = open(job.log[0], "w", buffering=1)  # noqa: SIM115
    main(job)
