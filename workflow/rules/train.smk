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
        # diverged run is recorded with status "diverged" and exits 0.
        "python -m cymlp.cli train {params.args} --threads {threads}"
        " --out {output.model:q} --metrics {output.metrics:q} > {log:q} 2>&1"
