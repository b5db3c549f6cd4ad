"""Learning curves and unit diagnostics (saturated / dead fractions) over epochs.

Runs with the reference bias placement and the configured hidden sizes; one line per
activation, the mean over seeds and folds (a run that stopped early contributes its
last value to the later epochs).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pandas as pd
from plotting import (
    RECTIFIED,
    SATURATING,
    colours,
    empty_figure,
    ordered,
    plt,
    reference_bias,
    style,
)


def select(runs, history, dataset, hidden):
    runs = runs[(runs["dataset"] == dataset)].copy()
    runs["hidden"] = runs["hidden"].astype(str)
    label = "x".join(str(h) for h in hidden)
    if label not in set(runs["hidden"]):
        label = max(runs["hidden"].unique(),
                    key=lambda h: sum(int(v) for v in h.split("x")))
    bias = reference_bias(runs["bias"])
    chosen = runs[(runs["hidden"] == label) & (runs["bias"] == bias)]
    part = history[history["run_id"].isin(chosen["run_id"])
                   & (history["dataset"] == dataset)]
    part = part.merge(chosen[["run_id", "activation"]], on="run_id")
    return part, label, bias


def mean_curve(part, activation, column):
    """Mean over runs per epoch; a run that stopped early keeps its last value, so
    the mean does not jump when runs drop out."""
    rows = part[part["activation"] == activation]
    if column not in rows or rows[column].isna().all():
        return None
    table = rows.pivot_table(index="epoch", columns="run_id", values=column,
                             aggfunc="mean")
    return table.sort_index().ffill().mean(axis=1).dropna()


def plot_learning(part, dataset, label, bias, path):
    activations = ordered(part["activation"].unique())
    colour = colours(activations)
    use_val = "val_accuracy" in part and part["val_accuracy"].notna().any()
    accuracy = "val_accuracy" if use_val else "train_accuracy"
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for activation in activations:
        for ax, column in ((ax_loss, "loss"), (ax_acc, accuracy)):
            curve = mean_curve(part, activation, column)
            if curve is not None:
                scale = 100 if column != "loss" else 1
                ax.plot(curve.index, scale * curve.values, label=activation, **style(activation, colour))
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("training loss")
    ax_acc.set_ylabel(f"{accuracy.replace('_', ' ')} (%)")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=8, ncol=2, frameon=False)
    fig.suptitle(f"{dataset}: learning curves (hidden {label}, bias {bias}; "
                 "mean over seeds/folds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_diagnostics(part, dataset, label, bias, path):
    have = [c for c in ("saturated", "dead") if c in part and part[c].notna().any()]
    if not have:
        empty_figure(path, f"{dataset}: no unit diagnostics recorded\n"
                           "(set diagnostics: true in the configuration)")
        return
    activations = ordered(part["activation"].unique())
    colour = colours(activations)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = (("saturated", "saturated units (g' < 0.01)", SATURATING),
              ("dead", "dead units (never active)", RECTIFIED))
    for ax, (column, title, family) in zip(axes, panels):
        drawn = False
        for activation in activations:
            curve = mean_curve(part, activation, column)
            if curve is None:
                continue
            ax.plot(curve.index, 100 * curve.values, label=activation,
                    **style(activation, colour))
            drawn = True
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel("fraction of hidden units (%)")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8, frameon=False)
        else:
            ax.text(0.5, 0.5, f"no {', '.join(sorted(family))} runs", ha="center",
                    transform=ax.transAxes)
    fig.suptitle(f"{dataset}: hidden-unit diagnostics (hidden {label}, bias {bias}; "
                 "mean over layers, seeds and folds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(snakemake):
    runs = pd.read_csv(snakemake.input.runs)
    history = pd.read_csv(snakemake.input.history)
    dataset = snakemake.wildcards.dataset
    part, label, bias = select(runs, history, dataset, snakemake.params.hidden)
    if part.empty:
        for path in (snakemake.output.curves, snakemake.output.diagnostics):
            empty_figure(path, f"{dataset}: no per-epoch history recorded")
        return
    plot_learning(part, dataset, label, bias, snakemake.output.curves)
    plot_diagnostics(part, dataset, label, bias, snakemake.output.diagnostics)


if __name__ == "__main__" and "snakemake" in globals():
    job = globals()["snakemake"]  # injected by Snakemake's script directive
    # Errors and tracebacks go to the rule's log file, open until the process ends.
    sys.stderr = open(job.log[0], "w", buffering=1)  # noqa: SIM115
    main(job)
