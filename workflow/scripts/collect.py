"""Collect the run records of a sweep into two tidy tables.

``runs.csv``: one row per run (sweep axes, training options, status, final metrics; for
multi-label data ``test_accuracy`` is the subset accuracy and ``test_micro_f1`` is added).
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


#: Training options copied into runs.csv (estimator parameter -> column).
OPTION_COLUMNS = {"learning_rate_init": "lr", "max_iter": "epochs",
                  "batch_size": "batch_size", "label_smoothing": "label_smoothing",
                  "alpha": "alpha", "encoder": "encoder", "embed_dim": "embed_dim",
                  "dtype": "dtype"}

#: Provenance copied into runs.csv (so that a table shows what produced each row).
PROVENANCE_COLUMNS = ("cymlp_version", "build_commit", "blas", "cpu", "threads")


def _blas(provenance):
    for lib in provenance.get("blas") or []:
        if lib.get("user_api") == "blas":
            return (f"{lib.get('internal_api')} {lib.get('version')} "
                    f"{lib.get('architecture') or ''}").strip()
    return None


def run_row(dataset, run_id, record, axes):
    """One row of runs.csv: the run's axes, seed and fold, options, status, metrics."""
    config = record.get("config", {})
    run = record.get("run") or {}
    run_axes = run.get("axes") or {}
    params = record.get("params") or run.get("params") or {}
    history = record.get("history") or []
    last = history[-1] if history else {}
    val = [h.get("val_accuracy") for h in history if h.get("val_accuracy") is not None]
    hidden = params.get("hidden_layer_sizes", config.get("hidden")) or []
    row = {"dataset": dataset, "run_id": run_id}
    for column in OPTION_COLUMNS.values():
        row[column] = None
    for param, column in OPTION_COLUMNS.items():
        if param in params:
            row[column] = params[param]
        elif column in config:
            row[column] = config[column]
    for axis in axes:
        if axis in ("dataset", "seed", "fold"):
            continue
        row[axis] = run_axes.get(axis, config.get(axis))
    row["seed"] = run.get("seed", config.get("seed"))
    row["fold"] = run.get("fold", config.get("fold", 0))
    row["hidden"] = "x".join(str(h) for h in hidden)
    row["width"] = max(hidden) if hidden else 0
    row["depth"] = len(hidden)
    row["model"] = config.get("model")
    provenance = record.get("provenance") or {}
    row.update({
        "status": record.get("status"),
        "error": record.get("error"),
        "dev_accuracy": record.get("dev_accuracy"),
        "test_accuracy": record.get("test_accuracy"),
        "test_macro_f1": record.get("test_macro_f1"),
        # multi-label runs: the accuracies are subset accuracies; micro-F1 is over the
        # example-label pairs (for single-label runs it equals the accuracy)
        "test_micro_f1": record.get("test_micro_f1"),
        "multilabel": bool(record.get("multilabel")
                           or (record.get("data") or {}).get("multilabel")),
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
        "build_commit": (provenance.get("build") or {}).get("commit"),
        "blas": _blas(provenance),
        "cpu": provenance.get("cpu"),
        "threads": provenance.get("threads"),
    })
    return row


def provenance_summary(records):
    """What produced the runs: every distinct provenance value with the number of runs
    that had it, and the SHA-256 of every data file read, per dataset."""
    fields = {}
    data = {}
    for dataset, record in records:
        for key, value in (record.get("provenance") or {}).items():
            seen = fields.setdefault(key, {})
            text = json.dumps(value, sort_keys=True)
            count = seen.get(text, (value, 0))[1]
            seen[text] = (value, count + 1)
        for path, digest in ((record.get("data") or {}).get("sha256") or {}).items():
            data.setdefault(dataset, {})[os.path.basename(path)] = digest
    return {"n_runs": len(records),
            "provenance": {key: [{"value": value, "runs": n}
                                 for _, (value, n) in sorted(seen.items())]
                           for key, seen in sorted(fields.items())},
            "data_sha256": {k: dict(sorted(v.items())) for k, v in sorted(data.items())}}


def collect(paths, axes):
    """Read run records; return the (runs, history) data frames.

    ``paths`` holds record paths (the dataset is the folder name, the run id the file
    name) or ``[dataset, run_id, path]`` triples.
    """
    runs, history, _ = collect_records(paths, axes)
    return runs, history


def collect_records(paths, axes):
    runs, history, records = [], [], []
    for item in paths:
        if isinstance(item, (list, tuple)):
            dataset, run_id, path = item
        else:
            path = item
            dataset = os.path.basename(os.path.dirname(path))
            run_id = os.path.basename(path)[: -len(".json")]
        try:
            with open(path, encoding="utf-8") as fh:
                record = json.load(fh)
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"cannot read the run record {path}: {exc}") from None
        records.append((dataset, record))
        runs.append(run_row(dataset, run_id, record, axes))
        history.extend(history_rows(dataset, run_id, record.get("history") or []))
    runs = pd.DataFrame(runs)
    history = pd.DataFrame(history, columns=None if history else
                           ["dataset", "run_id", "epoch", "loss", "train_accuracy",
                            "val_accuracy"])
    if not runs.empty:
        runs = runs.sort_values(["dataset", "run_id"], kind="stable")
    return runs, history, records


def main(snakemake):
    runs, history, records = collect_records(list(snakemake.params.records),
                                             list(snakemake.params.axes))
    runs.to_csv(snakemake.output.runs, index=False)
    history.to_csv(snakemake.output.history, index=False)
    with open(snakemake.output.provenance, "w", encoding="utf-8") as fh:
        json.dump(provenance_summary(records), fh, indent=1)
        fh.write("\n")
    counts = runs.groupby(["dataset", "status"]).size() if not runs.empty else {}
    print(f"collected {len(runs)} runs, {len(history)} epochs", file=sys.stderr)
    print(counts, file=sys.stderr)


if __name__ == "__main__" and "snakemake" in globals():
    job = globals()["snakemake"]  # injected by Snakemake's script directive
    # Errors and tracebacks go to the rule's log file, open until the process ends.
    sys.stderr = open(job.log[0], "w", buffering=1)  # noqa: SIM115
    main(job)
