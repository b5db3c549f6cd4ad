"""Statistics of a sweep: paired comparisons to reference levels, whether the effects hold
at every level of the other axes, and ranks across datasets (``cymlp.stats``;
``docs/statistics.md`` explains how to read them).

Snakemake: input ``runs`` (runs.csv); params ``axes`` (swept axis columns),
``reference`` (axis -> reference level), ``metric``, ``alpha``, ``seed`` and, optionally,
``ci`` ('bca', 'percentile' or 't'), ``test`` ('wilcoxon' or 't'), ``n_resamples`` and
``blocks`` (columns whose combinations are ranked, default ``['dataset']``). Every file
goes to one folder: the output named ``folder`` if there is one, else the folder all
outputs lie in. A declared figure the data do not allow is written as a placeholder
saying why.

Standalone, for use without Snakemake::

    python workflow/scripts/statistics.py --runs results/report/runs.csv \\
        --out results/report/statistics --axes activation bias hidden solver \\
        --reference bias=both activation=relu

Files: comparisons.csv / .md, interactions.csv, ranking.csv / .md,
effects_<axis>.png for every axis with two levels or more, cd_<axis>.png for every axis
with three levels or more when there are two datasets or more.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pandas as pd
from plotting import empty_figure, plt

from cymlp import stats

#: Columns that tell replicates apart; never compared as an axis.
REPLICATES = ("dataset", "seed", "fold")


def level_label(value):
    """A configured level as it appears in runs.csv: hidden sizes [16, 16] -> '16x16'."""
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


class Settings:
    """What to compute: the swept axes, their reference levels and the test options."""

    def __init__(self, axes, reference, metric="test_accuracy", alpha=0.05, seed=0,
                 ci="bca", test="wilcoxon", n_resamples=9999, blocks=("dataset",)):
        self.axes = [a for a in dict.fromkeys(axes) if a not in REPLICATES]
        self.reference = {axis: level_label(v) for axis, v in dict(reference or {}).items()}
        self.metric = metric
        self.alpha = float(alpha)
        self.seed = int(seed)
        self.ci = ci
        self.test = test
        self.n_resamples = int(n_resamples)
        self.blocks = [blocks] if isinstance(blocks, str) else list(blocks)

    def options(self):
        return dict(axes=self.axes, metric=self.metric, ci=self.ci, test=self.test,
                    alpha=self.alpha, n_resamples=self.n_resamples, seed=self.seed)


def levels_of(runs, axis):
    return stats.level_order(runs[axis])


def reference_of(runs, axis, settings):
    """The configured reference level, else the first level (with a note saying so)."""
    levels = levels_of(runs, axis)
    wanted = settings.reference.get(axis)
    if wanted is not None:
        if wanted not in levels:
            raise ValueError(f"the reference level {wanted!r} of {axis!r} is not in the "
                             f"runs; its levels are: {', '.join(levels)}")
        return wanted, ""
    return levels[0], (f"no reference level configured for {axis}: the first level, "
                       f"'{levels[0]}', is used")


def tidy(table, scope, within=None, dataset=None):
    """Comparison rows with the columns of comparisons.csv in front."""
    table = table.copy()
    if dataset is not None:
        table.insert(0, "dataset", dataset)
    table.insert(0, "within_level", table.pop(within).astype(str) if within else "")
    table.insert(0, "within", within or "")
    table.insert(0, "scope", scope)
    table["dataset"] = table["dataset"].astype(str)
    return table[["scope", "dataset", "within", "within_level"]
                 + [c for c in table.columns
                    if c not in ("scope", "dataset", "within", "within_level")]]


def analyse(runs, settings):
    """Every table of the report.

    Returns
    -------
    dict
        ``comparisons`` and ``interactions`` (tidy DataFrames), ``rankings`` (axis ->
        Ranking) and ``sections`` (axis -> dict of the pieces the Markdown shows).
    """
    missing = [c for c in [*settings.axes, "dataset", settings.metric, "status"]
               if c not in runs.columns]
    if missing:
        raise ValueError(f"runs.csv has no column {missing[0]!r}")
    compared = [a for a in settings.axes if len(levels_of(runs, a)) >= 2]
    comparisons, interactions, rankings, sections = [], [], {}, {}
    for axis in settings.axes:
        section = {"levels": levels_of(runs, axis), "notes": []}
        sections[axis] = section
        rankings[axis] = stats.rank_levels(runs, axis, metric=settings.metric,
                                           blocks=settings.blocks, alpha=settings.alpha)
        if axis not in compared:
            continue
        reference, note = reference_of(runs, axis, settings)
        section["reference"] = reference
        if note:
            section["notes"].append(note)
        opts = settings.options()
        section["pooled"] = tidy(stats.compare_to_reference(runs, axis, reference, **opts),
                                 "pooled", dataset="all")
        section["per_dataset"] = tidy(stats.compare_to_reference(
            runs, axis, reference, by=["dataset"], **opts), "dataset")
        comparisons += [section["pooled"], section["per_dataset"]]
        section["within"] = {}
        for within in (a for a in compared if a != axis):
            pooled_cells, pooled_tests = stats.effect_breakdown(
                runs, axis, reference, within=within, **opts)
            cells, tests = stats.effect_breakdown(
                runs, axis, reference, within=within, by=["dataset"], **opts)
            section["within"][within] = (pooled_cells, pooled_tests, cells, tests)
            comparisons += [tidy(pooled_cells, "within", within, dataset="all"),
                            tidy(cells, "within", within)]
            for table, dataset in ((pooled_tests, "all"), (tests, None)):
                table = table.copy()
                if dataset is not None:
                    table.insert(0, "dataset", dataset)
                table["dataset"] = table["dataset"].astype(str)
                interactions.append(table)
    return {
        "comparisons": pd.concat(comparisons, ignore_index=True) if comparisons
        else pd.DataFrame(),
        "interactions": pd.concat(interactions, ignore_index=True) if interactions
        else pd.DataFrame(),
        "rankings": rankings,
        "sections": sections,
    }


def bullets(table, label=None):
    lines = []
    for r in table.itertuples(index=False):
        prefix = f"**{getattr(r, label)}**: " if label else ""
        lines.append(f"- {prefix}{r.sentence}")
    return lines


def method_note(settings, runs):
    ci = {"bca": "BCa bootstrap", "percentile": "percentile bootstrap",
          "t": "Student t"}[settings.ci]
    if settings.ci != "t":
        ci += f" ({settings.n_resamples} resamples, seed {settings.seed})"
    test = {"wilcoxon": "Wilcoxon signed-rank", "t": "paired t-test"}[settings.test]
    keys = ", ".join(["dataset", "the other axes", "seed"]
                     + (["fold"] if "fold" in runs.columns else []))
    return (f"Metric: {settings.metric}; a difference is the level's run minus the "
            f"reference level's run that shares its {keys} (percentage points for "
            f"accuracies and F1). CI: 95% {ci}. p: {test}, Holm-adjusted over the rows of "
            f"each table. A difference is called significant when that p < "
            f"{settings.alpha:g} and the CI excludes 0. Failed runs and runs without a "
            "partner are left out and counted. See docs/statistics.md.")


def comparisons_markdown(result, settings, runs):
    n_runs = len(runs)
    n_ok = int((runs["status"] == "ok").sum())
    md = ["# Paired comparisons to a reference level", "",
          f"{n_runs} runs ({n_ok} ok) over {runs['dataset'].nunique()} dataset(s).", "",
          method_note(settings, runs), ""]
    for axis, section in result["sections"].items():
        if "reference" not in section:
            md += [f"## {axis}", "",
                   f"One level ({', '.join(map(repr, section['levels']))}): nothing to "
                   "compare.", ""]
            continue
        md += [f"## {axis} (reference '{section['reference']}')", ""]
        md += [f"*{note}*" for note in section["notes"]] + ([""] if section["notes"] else [])
        md += ["### All datasets pooled", ""] + bullets(section["pooled"]) + [""]
        md += [stats.to_markdown(stats.format_comparisons(
            section["pooled"].drop(columns=["scope", "dataset", "within",
                                            "within_level"]))), ""]
        md += ["### Per dataset", ""] + bullets(section["per_dataset"], "dataset") + [""]
        md += [stats.to_markdown(stats.format_comparisons(
            section["per_dataset"].drop(columns=["scope", "within", "within_level"]))), ""]
        for within, (pooled_cells, pooled_tests, cells, tests) in section["within"].items():
            md += [f"### The effect of {axis} at each level of {within}", "",
                   "Cells: difference [95% CI]; * significant (Holm over the cells of the "
                   "table). Below each table: whether the difference varies with "
                   f"{within} beyond noise (F test on the paired differences, Holm over "
                   "the rows).", "", "#### All datasets pooled", "",
                   stats.to_markdown(stats.format_breakdown(pooled_cells, within)), ""]
            md += bullets(pooled_tests) + [""]
            for dataset, part in cells.groupby("dataset", sort=False):
                md += [f"#### {dataset}", "",
                       stats.to_markdown(stats.format_breakdown(part, within)), ""]
                md += bullets(tests[tests["dataset"] == dataset]) + [""]
    return "\n".join(md)


def ranking_markdown(result, settings):
    blocks = " x ".join(settings.blocks)
    md = ["# Ranks across datasets", "",
          f"Within each block ({blocks}), each level of an axis is scored by its mean "
          f"{settings.metric} over seeds, folds and the levels of the other axes, and the "
          "levels are ranked (1 = best, ties share the average rank). The Friedman test "
          "asks whether the levels rank alike; if it rejects, the Nemenyi test separates "
          "the levels whose average ranks differ by at least the critical difference (CD) "
          "(Demšar 2006). Scores are percent for accuracies. See docs/statistics.md.", ""]
    for axis, ranking in result["rankings"].items():
        md += [f"## {axis}", ""]
        if ranking.dropped_levels:
            md += [f"*Left out, no usable run: {', '.join(ranking.dropped_levels)}.*", ""]
        if ranking.dropped_blocks:
            dropped = ", ".join(map(str, ranking.dropped_blocks))
            md += [f"*Blocks left out, a level has no usable run there: {dropped}.*", ""]
        if len(ranking.average_ranks):
            md += [stats.to_markdown(stats.format_ranking(ranking)), ""]
        md += [ranking.summary(), ""]
        if ranking.pvalues is not None:
            order = list(ranking.average_ranks.index)
            pvalues = ranking.pvalues.loc[order, order].apply(
                lambda column: column.map(stats.format_pvalue))
            pvalues.insert(0, "Nemenyi p", order)
            md += [stats.to_markdown(pvalues), ""]
    return "\n".join(md)


def wants_cd(runs, axis):
    return len(levels_of(runs, axis)) >= 3 and runs["dataset"].nunique() >= 2


def write_figures(result, runs, out):
    """effects_<axis>.png and cd_<axis>.png; returns the paths written."""
    written = []
    for axis, section in result["sections"].items():
        if "reference" in section:
            table = pd.concat([section["pooled"], section["per_dataset"]], ignore_index=True)
            table.loc[table["scope"] == "pooled", "dataset"] = "all datasets"
            fig = stats.plot_effects(table, panel="dataset",
                                     title=f"{axis}: paired difference to "
                                           f"'{section['reference']}', 95% CI "
                                           "(filled: significant)")
            path = os.path.join(out, f"effects_{axis}.png")
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
        if wants_cd(runs, axis):
            ranking = result["rankings"][axis]
            path = os.path.join(out, f"cd_{axis}.png")
            if ranking.friedman is None:
                empty_figure(path, f"No critical-difference diagram for {axis}: "
                                   f"{ranking.note}.")
            else:
                fig = stats.plot_critical_difference(
                    ranking.average_ranks, ranking.critical_difference,
                    title=f"{axis}: average ranks over {ranking.scores.shape[0]} datasets "
                          f"(Nemenyi, alpha = {ranking.alpha:g})")
                fig.savefig(path, dpi=110)
                plt.close(fig)
            written.append(path)
    return written


def run(runs, settings, out):
    """Compute everything and write it into ``out``; returns the paths written."""
    os.makedirs(out, exist_ok=True)
    result = analyse(runs, settings)
    paths = {name: os.path.join(out, name) for name in
             ("comparisons.csv", "comparisons.md", "interactions.csv", "ranking.csv",
              "ranking.md")}
    stats.to_csv(result["comparisons"], paths["comparisons.csv"])
    stats.to_csv(result["interactions"], paths["interactions.csv"])
    tables = [r.table() for r in result["rankings"].values()]
    stats.to_csv(pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(),
                 paths["ranking.csv"])
    with open(paths["comparisons.md"], "w", encoding="utf-8") as fh:
        fh.write(comparisons_markdown(result, settings, runs))
    with open(paths["ranking.md"], "w", encoding="utf-8") as fh:
        fh.write(ranking_markdown(result, settings))
    return list(paths.values()) + write_figures(result, runs, out)


def output_folder(output):
    """The folder of the rule's outputs: ``output.folder``, else the one they share."""
    folder = getattr(output, "folder", None)
    if folder:
        return str(folder)
    folders = {os.path.dirname(os.path.abspath(str(path))) for path in output}
    if len(folders) != 1:
        raise ValueError("the outputs of the statistics rule must lie in one folder, got: "
                         + ", ".join(sorted(folders)))
    return folders.pop()


def main(snakemake):
    params = snakemake.params
    settings = Settings(
        params.axes, params.reference, metric=params.metric, alpha=params.alpha,
        seed=params.seed, ci=getattr(params, "ci", "bca"),
        test=getattr(params, "test", "wilcoxon"),
        n_resamples=getattr(params, "n_resamples", 9999),
        blocks=getattr(params, "blocks", ["dataset"]))
    runs = pd.read_csv(snakemake.input.runs)
    folder = output_folder(snakemake.output)
    written = {os.path.abspath(p) for p in run(runs, settings, folder)}
    for path in map(str, snakemake.output):
        if os.path.abspath(path) not in written and path.endswith(".png"):
            # Declared from the configuration, but the runs do not allow it (for example
            # every run of a level failed): say so instead of failing the workflow.
            empty_figure(path, f"{os.path.basename(path)}: not enough levels or datasets "
                               "with usable runs (see ranking.md and comparisons.md)")
    print(f"statistics of {len(runs)} runs written to {folder}", file=sys.stderr)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Paired comparisons, effect breakdowns and ranks of a sweep's runs.")
    parser.add_argument("--runs", required=True, help="runs.csv of the sweep")
    parser.add_argument("--out", required=True, help="folder that receives every file")
    parser.add_argument("--axes", nargs="+", required=True, help="swept axis columns")
    parser.add_argument("--reference", nargs="*", default=[], metavar="AXIS=LEVEL",
                        help="reference level of an axis (default: its first level)")
    parser.add_argument("--metric", default="test_accuracy")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument("--ci", choices=stats.CI_METHODS, default="bca")
    parser.add_argument("--test", choices=stats.TESTS, default="wilcoxon")
    parser.add_argument("--resamples", type=int, default=9999)
    parser.add_argument("--blocks", nargs="+", default=["dataset"])
    args = parser.parse_args(argv)
    reference = {}
    for item in args.reference:
        axis, sep, level = item.partition("=")
        if not sep:
            parser.error(f"--reference takes AXIS=LEVEL, got {item!r}")
        reference[axis] = level
    return args, Settings(args.axes, reference, metric=args.metric, alpha=args.alpha,
                          seed=args.seed, ci=args.ci, test=args.test,
                          n_resamples=args.resamples, blocks=args.blocks)


if __name__ == "__main__" and "snakemake" in globals():
    job = globals()["snakemake"]  # injected by Snakemake's script directive
    # Errors and tracebacks go to the rule's log file, open until the process ends.
    sys.stderr = open(job.log[0], "w", buffering=1)  # noqa: SIM115
    main(job)
elif __name__ == "__main__":
    arguments, options = parse_args()
    for written_path in run(pd.read_csv(arguments.runs), options, arguments.out):
        print(written_path)
