"""Test accuracy against hidden sizes, one line per activation, one panel per bias.

Each point is the mean over seeds and folds (and the levels of any further axes), with
its 95% confidence interval (Student t: mean ± t(n-1, 0.975) s / sqrt(n)).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import pandas as pd
from plotting import BIAS_PLACEMENTS, colours, hidden_key, ordered, plt, style


def confidence_halfwidth(values, confidence=0.95):
    """Half the width of the t confidence interval of the mean (0 for one value)."""
    from scipy import stats

    values = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if values.size < 2:
        return 0.0
    t = stats.t.ppf(0.5 + confidence / 2, values.size - 1)
    return float(t * values.std(ddof=1) / np.sqrt(values.size))


def plot(runs, dataset, metric, path):
    runs = runs[runs["dataset"] == dataset].copy()
    runs["hidden"] = runs["hidden"].astype(str)
    hiddens = sorted(runs["hidden"].unique(), key=hidden_key)
    x_of = {h: i for i, h in enumerate(hiddens)}
    biases = [b for b in BIAS_PLACEMENTS if b in set(runs["bias"])]
    activations = ordered(runs["activation"].unique())
    colour = colours(activations)
    ok = runs[runs["status"] == "ok"]
    fig, axes = plt.subplots(1, len(biases), figsize=(3.6 * len(biases) + 1.5, 3.6),
                             sharey=True, squeeze=False)
    for ax, bias in zip(axes[0], biases):
        part = ok[ok["bias"] == bias]
        stats = part.groupby(["activation", "hidden"])[metric].agg(
            ["mean", confidence_halfwidth])
        for activation in activations:
            if activation not in stats.index.get_level_values(0):
                continue
            s = stats.loc[activation].reindex(hiddens).dropna(subset=["mean"])
            xs = [x_of[h] for h in s.index]
            ax.errorbar(xs, 100 * s["mean"], yerr=100 * s["confidence_halfwidth"],
                        marker="o", ms=3.5, capsize=2, label=activation, **style(activation, colour))
        ax.set_xticks(range(len(hiddens)), hiddens)
        ax.set_title(f"bias: {bias}")
        ax.set_xlabel("hidden sizes")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{metric.replace('_', ' ')} (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(f"{dataset}: accuracy vs hidden size (mean and 95% confidence interval "
                 "over seeds/folds)")
    fig.tight_layout(rect=(0, 0, 1 - 1.3 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(snakemake):
    runs = pd.read_csv(snakemake.input.runs)
    plot(runs, snakemake.wildcards.dataset, snakemake.params.metric, snakemake.output[0])


if __name__ == "__main__" and "snakemake" in globals():
    job = globals()["snakemake"]  # injected by Snakemake's script directive
    # Errors and tracebacks go to the rule's log file, open until the process ends.
    sys.stderr = open(job.log[0], "w", buffering=1)  # noqa: SIM115
    main(job)
