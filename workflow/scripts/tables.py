"""Markdown and HTML tables of one dataset's runs.

1. activation x hidden sizes: mean +- std of the test accuracy over seeds and folds,
   for the reference bias placement ('both' when swept);
2. bias placement ablation: activation x bias placement, pooled over hidden sizes,
   seeds and folds;
3. best configuration per activation, chosen on the dev accuracy, with its test
   accuracy and macro-F1.

Accuracies are in percent. A cell's count of diverged or failed runs is shown after
the value; those runs count as missing, not as zero.
"""

import html
import sys

import numpy as np
import pandas as pd

from cymlp import activations
from cymlp._network import BIAS_PLACEMENTS

CONFIG_COLUMNS = ["activation", "bias", "hidden", "solver"]


def hidden_order(values):
    """Hidden-size labels ('4', '16', '16x16') sorted by total units, then depth."""
    def key(label):
        sizes = [int(v) for v in str(label).split("x") if v]
        return (sum(sizes), len(sizes), str(label))
    return sorted(set(values), key=key)


def activation_order(values, preferred=None):
    seen = list(dict.fromkeys(preferred or []))
    return [a for a in seen if a in set(values)] + sorted(set(values) - set(seen))


def cell(values, failures=0):
    """'mean ± std' in percent of the finite values, with a failure count."""
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], float)
    if values.size == 0:
        text = "–"
    elif values.size == 1:
        text = f"{100 * values[0]:.1f}"
    else:
        text = f"{100 * values.mean():.1f} ± {100 * values.std(ddof=1):.1f}"
    if failures:
        text += f" ({failures} diverged/failed)"
    return text


def grid(runs, rows, columns, metric, row_order, column_order):
    """Pivot of formatted cells: one row per ``rows`` value, one column per ``columns``."""
    table = pd.DataFrame(index=pd.Index(row_order, name=rows),
                         columns=pd.Index(column_order, name=columns), dtype=object)
    for (r, c), group in runs.groupby([rows, columns], sort=False):
        failures = int((group["status"] != "ok").sum())
        table.loc[r, c] = cell(group.loc[group["status"] == "ok", metric], failures)
    return table.fillna("–")


def mean_row(runs, columns, metric, column_order, label, mask):
    """One extra row: the mean over the runs selected by ``mask`` per column."""
    row = {}
    for c in column_order:
        group = runs[mask & (runs[columns] == c)]
        means = (group[group["status"] == "ok"]
                 .groupby("activation")[metric].mean())
        row[c] = cell(means.values) if len(means) else "–"
    return pd.DataFrame([row], index=pd.Index([label], name="activation"))


def best_per_activation(runs, metric, selection, activations, columns=None):
    """The best configuration (all axes) of each activation, chosen on ``selection``."""
    columns = list(columns or CONFIG_COLUMNS)
    ok = runs[runs["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame(columns=["activation"])
    micro = _is_multilabel(runs) and "test_micro_f1" in ok
    extra = {"micro": ("test_micro_f1", "mean")} if micro else {}
    stats = (ok.groupby(columns, sort=False, dropna=False)
             .agg(dev=(selection, "mean"), test=(metric, "mean"),
                  test_std=(metric, "std"), f1=("test_macro_f1", "mean"),
                  runs=(metric, "size"), loss=("final_loss", "mean"), **extra)
             .reset_index())
    stats["units"] = stats["hidden"].map(
        lambda h: sum(int(v) for v in str(h).split("x") if v))
    # Chosen on dev; ties (common on XOR) go to the smaller network, then lower loss.
    stats = stats.sort_values(["dev", "units", "loss"], ascending=[False, True, True],
                              kind="stable", na_position="last")
    best = stats.groupby("activation", sort=False).head(1).set_index("activation")
    best = best.reindex([a for a in activations if a in best.index])
    best = best.sort_values(["dev", "units"], ascending=[False, True], kind="stable")
    table = pd.DataFrame({
        **{c: best[c] for c in columns if c != "activation"},
        "dev accuracy": [f"{100 * v:.1f}" for v in best["dev"]],
        "test accuracy": [cell([m]) if not np.isfinite(s) else
                          f"{100 * m:.1f} ± {100 * s:.1f}"
                          for m, s in zip(best["test"], best["test_std"])],
        "test macro-F1": [f"{100 * v:.1f}" for v in best["f1"]],
        **({"test micro-F1": [f"{100 * v:.1f}" for v in best["micro"]]} if micro else {}),
        "runs": best["runs"].astype(int),
    }, index=best.index)
    return table


def _is_multilabel(runs):
    """Whether the runs are of multi-label data (runs.csv of older sweeps has no column)."""
    return "multilabel" in runs and bool(
        runs["multilabel"].astype(str).str.lower().eq("true").any())


def to_markdown(table):
    """A pipe table; the index becomes the first column."""
    header = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * len(header)) + "|"]
    for index, row in table.iterrows():
        values = [str(index)] + [str(v) for v in row.tolist()]
        lines.append("| " + " | ".join(v.replace("|", "\\|") for v in values) + " |")
    return "\n".join(lines)


def build(runs, dataset, metric, selection, axes=None):
    """Return ``[(title, note, table), ...]`` for one dataset.

    ``axes`` are the swept columns (default activation, bias, hidden, solver): the best
    configuration of an activation is chosen over all of them.
    """
    columns = [c for c in (axes or CONFIG_COLUMNS) if c not in ("dataset", "seed", "fold")]
    for column in ("activation", "bias", "hidden", "solver"):
        if column not in columns:
            columns.append(column)
    runs = runs[runs["dataset"] == dataset].copy()
    if runs.empty:
        raise ValueError(f"no runs of dataset {dataset!r} in runs.csv")
    runs["hidden"] = runs["hidden"].astype(str)
    activations = activation_order(runs["activation"], PREFERRED_ACTIVATIONS)
    hiddens = hidden_order(runs["hidden"])
    biases = [b for b in BIAS_PLACEMENTS if b in set(runs["bias"])]
    reference_bias = "both" if "both" in biases else biases[0]
    n_seeds = runs["seed"].nunique()
    n_folds = runs["fold"].nunique()
    over = f"{n_seeds} seed(s)" + (f" × {n_folds} folds" if n_folds > 1 else "")
    nonlinear = runs["activation"] != "identity"

    sections = []
    for solver in sorted(runs["solver"].unique()):
        part = runs[(runs["bias"] == reference_bias) & (runs["solver"] == solver)]
        table = grid(part, "activation", "hidden", metric, activations, hiddens)
        sections.append((
            f"Test accuracy (%) by activation and hidden sizes — solver {solver}",
            f"bias placement '{reference_bias}'; mean ± std over {over}.",
            table))

    table = grid(runs, "activation", "bias", metric, activations, biases)
    extra = mean_row(runs, "bias", metric, biases, "mean of non-linear activations",
                     nonlinear)
    table = pd.concat([table, extra])
    sections.append((
        "Bias placement ablation: test accuracy (%)",
        ("all hidden sizes and solvers pooled; mean ± std over "
         f"{runs['hidden'].nunique()} hidden sizes × {over}. Last row: mean ± std over "
         "the non-linear activations of their per-activation means."),
        table))

    best = best_per_activation(runs, metric, selection, activations, columns)
    others = [c for c in columns if c not in CONFIG_COLUMNS]
    sections.append((
        "Best configuration per activation (chosen on dev accuracy)",
        (f"mean over {over}; ties on dev go to the smaller network, then the lower "
         "final training loss."
         + (f" The other tables pool over {', '.join(others)}." if others else "")),
        best))
    counts = runs["status"].value_counts().to_dict()
    status = ", ".join(f"{counts[k]} {k}" for k in sorted(counts))
    summary = f"{len(runs)} runs ({status})"
    if _is_multilabel(runs):
        summary += ("; multi-label data: every accuracy is a subset accuracy (the share of "
                    "examples whose predicted label set is exactly right), and the F1 "
                    "scores are over the labels")
    return sections, summary


#: Table rows in the order of cymlp's activation registry.
PREFERRED_ACTIVATIONS = list(activations.NAMES)


def write(sections, summary, dataset, markdown_path, html_path):
    md = [f"# {dataset}", "", summary, ""]
    page = [f"<h1>{html.escape(dataset)}</h1>", f"<p>{html.escape(summary)}</p>"]
    for title, note, table in sections:
        md += [f"## {title}", "", note, "", to_markdown(table), ""]
        page += [f"<h2>{html.escape(title)}</h2>", f"<p>{html.escape(note)}</p>",
                 table.to_html(border=0, classes="cymlp", escape=True)]
    with open(markdown_path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(md))
    style = ("<style>table.cymlp{border-collapse:collapse;font-family:sans-serif}"
             "table.cymlp td,table.cymlp th{padding:3px 9px;border-bottom:1px solid #ccc;"
             "text-align:right}</style>")
    with open(html_path, "w", encoding="utf-8") as fh:
        fh.write("<!DOCTYPE html><html><head><meta charset='utf-8'>"
                 f"<title>{html.escape(dataset)}</title>{style}</head><body>"
                 + "\n".join(page) + "</body></html>\n")


def main(snakemake):
    runs = pd.read_csv(snakemake.input.runs)
    dataset = snakemake.wildcards.dataset
    sections, summary = build(runs, dataset, snakemake.params.metric,
                              snakemake.params.selection,
                              list(getattr(snakemake.params, "axes", CONFIG_COLUMNS)))
    write(sections, summary, dataset, snakemake.output.markdown, snakemake.output.html)


if __name__ == "__main__" and "snakemake" in globals():
    job = globals()["snakemake"]  # injected by Snakemake's script directive
    # Errors and tracebacks go to the rule's log file, open until the process ends.
    sys.stderr = open(job.log[0], "w", buffering=1)  # noqa: SIM115
    main(job)
