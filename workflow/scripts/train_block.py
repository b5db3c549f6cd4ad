"""Train the runs of one block in one process, writing each run's record as it finishes.

Snakemake: params ``runs`` (a list of jobs, each ``{"spec", "source", "record",
"model"}``, see sweep.Run.job); output ``manifest``; log; threads (BLAS threads per run).

For every run: if its record is already there, reads back, describes exactly this run
and finished, it is kept as it is; otherwise the run is trained (the data of the block
are read once) and its record written atomically (then its model, when models are
kept). A run that fails is recorded with status 'failed' and the others go on; the job
then fails at the end, without a manifest, so that the next invocation retries only the
failed runs. A record that cannot be written (a full disk) stops the job at once: the
runs written before stay valid.
"""

import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sweep  # noqa: E402


class Log:
    """Lines to the job's log file; to stderr when the log cannot be written."""

    def __init__(self, path):
        self.fh = None
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.fh = open(path, "w", encoding="utf-8", buffering=1)  # noqa: SIM115
        except OSError as exc:
            print(f"cannot write the log {path}: {exc}", file=sys.stderr)

    def __call__(self, line):
        if self.fh is not None:
            try:
                self.fh.write(line + "\n")
                return
            except OSError:
                self.fh = None
        print(line, file=sys.stderr)


def failed_record(job, exc, cli):
    """The record of a run whose data could not be read."""
    return {"record_version": cli.RECORD_VERSION, "config": job["source"], "params": None,
            "data": None, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
            "history": [], "dev_accuracy": None, "test_accuracy": None,
            "test_macro_f1": None, "test_micro_f1": None, "train_seconds": None,
            "samples_per_s": None,
            "n_epochs": 0, "cymlp_version": cli._version(), "provenance": cli.provenance()}


def train_block(jobs, manifest, log, threads=1):
    """Train what is left of ``jobs``; write the manifest if every run finished.

    Returns the exit code: 0, or 1 when a run failed or a file could not be written.
    """
    from cymlp import cli
    from cymlp import io as _io

    warnings.showwarning = lambda message, category, *args, **kwargs: log(
        f"  {category.__name__}: {message}")
    start = time.perf_counter()
    # a job killed while writing (SIGKILL, a node lost) leaves its temporary file
    # beside the record or model it was writing: those of dead processes go
    folders = {os.path.dirname(os.path.abspath(p)) for job in jobs
               for p in (job["record"], job["model"]) if p} | {
        os.path.dirname(os.path.abspath(manifest))}
    for folder in sorted(folders):
        for path in _io.remove_stale_temporaries(folder):
            log(f"removed {path}, left by a writer that was stopped")
    loaded = {}
    entries, failed, trained = [], [], 0
    for job in jobs:
        spec = job["spec"]
        rid = spec["run_id"]
        state, detail = sweep.record_state(job["record"], spec, job["model"])
        if state == "done":
            log(f"{rid}: finished before, kept")
            entries.append({"run_id": rid, "trained": False})
            continue
        log(f"{rid}: training ({state}{': ' + detail if detail else ''})")
        key = json.dumps(job["source"], sort_keys=True)
        if key not in loaded:
            try:
                loaded[key] = cli.load_data(job["source"], log=lambda line: log("  " + line))
            except cli.USER_ERRORS as exc:
                loaded[key] = exc
        if isinstance(loaded[key], Exception):
            record = failed_record(job, loaded[key], cli)
            log(f"  failed: {record['error']}")
        else:
            splits, data = loaded[key]
            record, model = cli.fit_and_score(
                splits, data, spec["params"], threads=threads, data_source=job["source"],
                log=lambda line: log("  " + line), return_model=True)
        record["run"] = spec
        # The model first, then the record: a record is written only when its run is
        # complete, so a run without a valid record is trained again. A file that
        # cannot be written (a full disk) stops the block: the next run would fail too.
        try:
            if job["model"] and record["status"] == "ok":
                cli._save_model(model, job["model"])
            elif job["model"] and os.path.exists(job["model"]):
                os.remove(job["model"])  # this run's own model, from earlier settings
            try:
                cli.write_json_atomic(job["record"], record)
            except OSError:
                if job["model"] and os.path.exists(job["model"]):
                    os.remove(job["model"])
                raise
        except OSError as exc:
            log(f"  {type(exc).__name__}: {exc}")
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        trained += 1
        entries.append({"run_id": rid, "trained": True, "status": record["status"],
                        "test_accuracy": record["test_accuracy"]})
        if record["status"] == "failed":
            failed.append(rid)
            print(f"{spec['dataset']}/{rid}: failed: {record['error']}", file=sys.stderr)
            if "traceback" in record:
                log(record["traceback"])
    seconds = time.perf_counter() - start
    log(f"{trained} run(s) trained, {len(entries) - trained} kept, {len(failed)} failed, "
        f"{seconds:.1f} s")
    if failed:
        print(f"{len(failed)} of {len(jobs)} run(s) of the block failed; the others are "
              "recorded, and the next invocation retries only the failed ones",
              file=sys.stderr)
        return 1
    try:
        cli.write_json_atomic(manifest, {"runs": entries, "trained": trained,
                                         "kept": len(entries) - trained,
                                         "seconds": seconds})
    except OSError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def main(snakemake):
    log = Log(snakemake.log[0])
    code = train_block(list(snakemake.params.runs), snakemake.output.manifest, log,
                       threads=snakemake.threads)
    if code:
        sys.exit(code)


if __name__ == "__main__" and "snakemake" in globals():
    main(globals()["snakemake"])  # injected by Snakemake's script directive
