"""Collect the run records into tidy tables, then write tables, figures and statistics."""


rule collect:
    input:
        # every block has finished (its manifest is there); the records are read from
        # the paths in params
        manifests=block_manifests,
    output:
        runs=report(
            f"{RESULTS}/report/runs.csv",
            caption="../report/runs.rst",
            category="Runs",
            labels={"table": "runs.csv, one row per run"},
        ),
        history=f"{RESULTS}/report/history.csv",
        provenance=report(
            f"{RESULTS}/report/provenance.json",
            caption="../report/provenance.rst",
            category="Runs",
            labels={"table": "provenance.json"},
        ),
    params:
        records=all_records(),
        axes=AXES,
    log:
        f"{RESULTS}/logs/report/collect.log",
    conda:
        "../envs/cymlp.yaml"
    script:
        "../scripts/collect.py"


rule tables:
    input:
        runs=f"{RESULTS}/report/runs.csv",
    output:
        markdown=f"{RESULTS}/report/{{dataset}}/tables.md",
        html=report(
            f"{RESULTS}/report/{{dataset}}/tables.html",
            caption="../report/tables.rst",
            category="{dataset}",
            subcategory="tables",
            labels={"dataset": "{dataset}", "figure": "tables"},
        ),
    params:
        metric="test_accuracy",
        selection="dev_accuracy",
        axes=AXES,
    log:
        f"{RESULTS}/logs/report/tables_{{dataset}}.log",
    conda:
        "../envs/cymlp.yaml"
    script:
        "../scripts/tables.py"


rule summary:
    input:
        tables=expand(f"{RESULTS}/report/{{dataset}}/tables.md", dataset=SWEEP_DATASETS),
    output:
        f"{RESULTS}/report/summary.md",
    params:
        datasets=SWEEP_DATASETS,
    log:
        f"{RESULTS}/logs/report/summary.log",
    conda:
        "../envs/cymlp.yaml"
    script:
        "../scripts/summary.py"


rule plot_accuracy:
    input:
        runs=f"{RESULTS}/report/runs.csv",
    output:
        report(
            f"{RESULTS}/report/{{dataset}}/accuracy_vs_hidden.png",
            caption="../report/accuracy_vs_hidden.rst",
            category="{dataset}",
            subcategory="figures",
            labels={"dataset": "{dataset}", "figure": "accuracy vs hidden size"},
        ),
    params:
        metric="test_accuracy",
    log:
        f"{RESULTS}/logs/report/plot_accuracy_{{dataset}}.log",
    conda:
        "../envs/cymlp.yaml"
    script:
        "../scripts/plot_accuracy.py"


rule plot_curves:
    input:
        runs=f"{RESULTS}/report/runs.csv",
        history=f"{RESULTS}/report/history.csv",
    output:
        curves=report(
            f"{RESULTS}/report/{{dataset}}/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="{dataset}",
            subcategory="figures",
            labels={"dataset": "{dataset}", "figure": "learning curves"},
        ),
        diagnostics=report(
            f"{RESULTS}/report/{{dataset}}/diagnostics.png",
            caption="../report/diagnostics.rst",
            category="{dataset}",
            subcategory="figures",
            labels={"dataset": "{dataset}", "figure": "saturated and dead units"},
        ),
    params:
        hidden=curves_hidden(),
    log:
        f"{RESULTS}/logs/report/plot_curves_{{dataset}}.log",
    conda:
        "../envs/cymlp.yaml"
    script:
        "../scripts/plot_curves.py"


rule plot_boundary:
    input:
        # the runs are finished once runs.csv is written
        runs_table=f"{RESULTS}/report/runs.csv",
    output:
        report(
            f"{RESULTS}/report/xor/decision_boundary.png",
            caption="../report/decision_boundary.rst",
            category="xor",
            subcategory="figures",
            labels={"dataset": "xor", "figure": "decision boundaries"},
        ),
    params:
        models=[run.model for run in boundary_runs()],
        runs=[run.record for run in boundary_runs()],
        data_seed=config["data_seed"],
    log:
        f"{RESULTS}/logs/report/plot_boundary.log",
    conda:
        "../envs/cymlp.yaml"
    script:
        "../scripts/plot_boundary.py"


# The sweep statistics (docs/statistics.md): paired comparisons with a reference level,
# effect breakdowns and ranks across datasets.
rule statistics:
    input:
        runs=f"{RESULTS}/report/runs.csv",
    output:
        comparisons_csv=statistics_item("comparisons.csv", "statistics_comparisons.rst",
                                         "comparisons"),
        comparisons_md=statistics_item("comparisons.md", "statistics_comparisons.rst",
                                        "comparisons"),
        interactions=statistics_item("interactions.csv", "statistics_comparisons.rst",
                                      "comparisons"),
        ranking_csv=statistics_item("ranking.csv", "statistics_ranking.rst", "ranks"),
        ranking_md=statistics_item("ranking.md", "statistics_ranking.rst", "ranks"),
        figures=[
            statistics_item(name, "statistics_effects.rst" if name.startswith("effects")
                             else "statistics_cd.rst",
                             "effects" if name.startswith("effects") else "ranks")
            for name in statistics_figures()
        ],
    params:
        axes=AXES,
        reference=STATISTICS_REFERENCE,
        metric=config["statistics"]["metric"],
        alpha=config["statistics"]["alpha"],
        seed=config["statistics"]["seed"],
        ci=config["statistics"]["ci"],
        test=config["statistics"]["test"],
        n_resamples=config["statistics"]["n_resamples"],
        blocks=config["statistics"]["blocks"],
    log:
        f"{RESULTS}/logs/report/statistics.log",
    conda:
        "../envs/cymlp.yaml"
    script:
        "../scripts/statistics.py"


# Cheap steps that need no cluster job when running with a cluster executor.
localrules:
    collect,
    tables,
    summary,
    plot_accuracy,
    plot_curves,
    plot_boundary,
    statistics,
