"""One training run per sweep entry: ``cymlp train`` writes the run record and model."""


rule train:
    input:
        train_inputs,
    output:
        metrics=f"{RESULTS}/runs/{{dataset}}/{{run_id}}.json",
        model=f"{RESULTS}/models/{{dataset}}/{{run_id}}.npz",
    params:
        # Everything that changes the result of the run, and nothing else: editing a
        # sweep-wide knob that does not (threads, report options) reruns no training.
        args=train_arguments,
    log:
        f"{RESULTS}/logs/train/{{dataset}}/{{run_id}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    conda:
        "../envs/cymlp.yaml"
    shell:
        # The record is written atomically by cymlp (temporary file + rename); a
        # diverged run is recorded with status "diverged" and exits 0. The whole output
        # goes to the log and its last line (the run's result, or the error that ended
        # it) to the console too: when the disk is full the log cannot hold the error,
        # and tee still passes it on (and fails the job).
        "python -m cymlp.cli train {params.args} --threads {threads}"
        " --out {output.model:q} --metrics {output.metrics:q} 2>&1"
        " | tee {log:q} | tail -n 1 >&2"
