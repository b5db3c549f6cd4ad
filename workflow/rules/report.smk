"""Collect the run records into tidy tables, then write tables and figures."""


rule collect:
    input:
        runs=all_run_jsons,
    output:
        runs=f"{RESULTS}/report/runs.csv",
        history=f"{RESULTS}/report/history.csv",
    params:
        axes=list(AXES),
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
        models=[f"{RESULTS}/models/xor/{rid}.npz" for rid in boundary_runs()],
        runs=[f"{RESULTS}/runs/xor/{rid}.json" for rid in boundary_runs()],
    output:
        report(
            f"{RESULTS}/report/xor/decision_boundary.png",
            caption="../report/decision_boundary.rst",
            category="xor",
            subcategory="figures",
            labels={"dataset": "xor", "figure": "decision boundaries"},
        ),
    params:
        data_seed=config["data_seed"],
    log:
        f"{RESULTS}/logs/report/plot_boundary.log",
    conda:
        "../envs/cymlp.yaml"
    script:
        "../scripts/plot_boundary.py"


# Cheap steps that need no cluster job when running with a cluster executor.
localrules:
    collect,
    tables,
    summary,
    plot_accuracy,
    plot_curves,
    plot_boundary,
