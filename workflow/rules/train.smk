"""Training: one job per block of runs (one dataset, fold and seed; at most block_size
runs), in one process, so that starting Python and importing cymlp happen once per
block instead of once per run.

Each run's record (and model) is written, atomically, as soon as the run finishes, into
results/runs/ and results/models/; those files are not outputs of the job, so a block
that fails or is interrupted keeps the runs it finished, and its next job trains only
the runs still missing. The job's output is the block's manifest, which lists its runs
(sweep.block_targets says which manifest a block writes).
"""


rule train:
    output:
        manifest=f"{RESULTS}/blocks/{{dataset}}/{{block}}.{{generation}}.json",
    params:
        # What every run is (its spec, compared with its record before it is skipped),
        # where its data are, and where its record and model go. Thread counts and
        # report options are not here: changing them never retrains a run.
        runs=block_runs,
    log:
        f"{RESULTS}/logs/train/{{dataset}}/{{block}}.{{generation}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../envs/cymlp.yaml"
    script:
        "../scripts/train_block.py"
