"""Collect the run records of a sweep into two tidy tables.

``runs.csv``: one row per run (sweep axes, training options, status, final metrics).
``history.csv``: one row per run and epoch (loss, accuracies, unit diagnostics).
"""

import json
import math
import os
import sys

import pandas as pd


def _mean(values):
    """Mean of a per-layer list, ignoring missing entries; NaN when there are none."""
    if not isinstance(values, (list, tuple)):
        return float("nan") if values is None else float(values)
    finite = [float(v) for v in values if v is not None]
    return sum(finite) / len(finite) if finite else float("nan")


def _layer(values, index):
    if isinstance(values, (list, tuple)) and len(values) > index and values[index] is not None:
        return float(values[index])
    return float("nan")


def history_rows(dataset, run_id, history):
    """Flatten a run's per-epoch history (per-layer lists become mean / first layer)."""
    rows = []
    for position, entry in enumerate(history, start=1):
        row = {
            "dataset": dataset,
            "run_id": run_id,
            "epoch": entry.get("epoch", position),
            "loss": entry.get("loss"),
            "train_accuracy": entry.get("train_accuracy"),
            "val_accuracy": entry.get("val_accuracy"),
            "seconds": entry.get("seconds"),
            "samples_per_s": entry.get("samples_per_s"),
        }
        for key in ("saturated", "dead"):
            if key in entry:
                row[key] = _mean(entry[key])
                row[f"{key}_layer0"] = _layer(entry[key], 0)
        if "grad_norm" in entry:
            norms = entry["grad_norm"] or []
            row["grad_norm_first"] = _layer(norms, 0)
            row["grad_norm_output"] = _layer(norms, len(norms) - 1) if norms else math.nan
        rows.append(row)
    return rows


def run_row(dataset, run_id, record, axes):
    config = record.get("config", {})
    history = record.get("history") or []
    last = history[-1] if history else {}
    val = [h.get("val_accuracy") for h in history if h.get("val_accuracy") is not None]
    hidden = config.get("hidden") or []
    row = {"dataset": dataset, "run_id": run_id}
    for axis in axes:
        if axis == "dataset":
            continue
        row[axis] = config.get(axis)
    row["hidden"] = "x".join(str(h) for h in hidden)
    row["width"] = max(hidden) if hidden else 0
    row["depth"] = len(hidden)
    for key in ("lr", "epochs", "batch_size", "label_smoothing", "alpha", "encoder",
                "embed_dim", "dtype", "model"):
        row[key] = config.get(key)
    row.update({
        "status": record.get("status"),
        "error": record.get("error"),
        "dev_accuracy": record.get("dev_accuracy"),
        "test_accuracy": record.get("test_accuracy"),
        "test_macro_f1": record.get("test_macro_f1"),
        "train_seconds": record.get("train_seconds"),
        "samples_per_s": record.get("samples_per_s"),
        "n_epochs": record.get("n_epochs"),
        "n_train": record.get("n_train"),
        "final_loss": last.get("loss"),
        "final_train_accuracy": last.get("train_accuracy"),
        "best_val_accuracy": max(val) if val else None,
        "final_saturated": _mean(last["saturated"]) if "saturated" in last else None,
        "final_dead": _mean(last["dead"]) if "dead" in last else None,
        "cymlp_version": record.get("cymlp_version"),
    })
    return row


def collect(paths, axes):
    """Read run records; return the (runs, history) data frames."""
    runs, history = [], []
    for path in paths:
        dataset = os.path.basename(os.path.dirname(path))
        run_id = os.path.basename(path)[: -len(".json")]
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
        runs.append(run_row(dataset, run_id, record, axes))
        history.extend(history_rows(dataset, run_id, record.get("history") or []))
    runs = pd.DataFrame(runs)
    history = pd.DataFrame(history, columns=None if history else
                           ["dataset", "run_id", "epoch", "loss", "train_accuracy",
                            "val_accuracy"])
    if not runs.empty:
        runs = runs.sort_values(["dataset", "run_id"], kind="stable")
    return runs, history


def main(snakemake):
    runs, history = collect(list(snakemake.input.runs), list(snakemake.params.axes))
    runs.to_csv(snakemake.output.runs, index=False)
    history.to_csv(snakemake.output.history, index=False)
    counts = runs.groupby(["dataset", "status"]).size() if not runs.empty else {}
    print(f"collected {len(runs)} runs, {len(history)} epochs", file=sys.stderr)
    print(counts, file=sys.stderr)


if __name__ == "__main__" and "snakemake" in globals():
    job = globals()["snakemake"]  # injected by Snakemake's script directive
    # Errors and tracebacks go to the rule's log file, open until the process ends.
    sys.stderr = open(job.log[0], "w", buffering=1)  # noqa: SIM115
    main(job)
