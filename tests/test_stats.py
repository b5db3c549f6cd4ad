"""Tests of cymlp.stats (the statistics of sweep reports) and of
workflow/scripts/statistics.py, the script that writes them.

The statistics are checked against SciPy on known inputs and against the textbook values
of Demšar (2006); a synthetic sweep with known effects checks that the report finds what
is there and only that.
"""

import importlib.util
import io
import itertools
import os
import re
import subprocess
import sys
import types

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from cymlp import stats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "workflow", "scripts", "statistics.py")


def paired_table(level_values, reference_values, *, axis="bias", level="none",
                 reference="both", status=None):
    """Two levels of ``axis`` on one dataset, run i of each level with seed i."""
    rows = []
    for name, values in ((level, level_values), (reference, reference_values)):
        for seed, value in enumerate(values):
            rows.append({"dataset": "d", axis: name, "seed": seed, "fold": 0,
                         "status": "ok", "test_accuracy": value})
    runs = pd.DataFrame(rows)
    if status is not None:
        runs["status"] = status
    return runs


# ----------------------------------------------------------- agreement with SciPy

def test_paired_tests_and_t_interval_agree_with_scipy(rng):
    # Accuracies on a 50-example test set: differences are multiples of 2 points, with
    # ties and zeros, the case where floating-point noise would change Wilcoxon's ranks.
    ref_hits = rng.integers(30, 45, size=17)
    level_hits = ref_hits + rng.integers(-3, 6, size=17)
    ref, level = ref_hits / 50, level_hits / 50
    row = stats.compare_to_reference(paired_table(level, ref), "bias", "both",
                                     axes=["bias"], ci="t", test="t").iloc[0]
    assert row["t_pvalue"] == pytest.approx(scipy_stats.ttest_rel(level, ref).pvalue,
                                            rel=1e-9)
    assert row["wilcoxon_pvalue"] == pytest.approx(
        scipy_stats.wilcoxon(level_hits - ref_hits).pvalue, rel=1e-9)
    interval = scipy_stats.ttest_rel(100 * level, 100 * ref).confidence_interval(0.95)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((interval.low, interval.high))
    assert row["mean_difference"] == pytest.approx(100 * (level - ref).mean())
    assert row["n_pairs"] == 17 and row["unit"] == "points"
    assert row["pvalue"] == row["t_pvalue"]


def test_wilcoxon_decides_when_chosen():
    level = np.array([0.8, 0.82, 0.79, 0.9, 0.85, 0.81, 0.86, 0.84])
    ref = level - np.array([0.01, 0.02, -0.01, 0.03, 0.02, 0.01, 0.02, 0.04])
    row = stats.compare_to_reference(paired_table(level, ref), "bias", "both",
                                     axes=["bias"], test="wilcoxon",
                                     n_resamples=999).iloc[0]
    assert row["pvalue"] == row["wilcoxon_pvalue"]
    assert row["wilcoxon_pvalue"] == pytest.approx(
        scipy_stats.wilcoxon(level - ref).pvalue, rel=1e-9)


def test_all_zero_differences_do_not_crash_and_show_no_difference():
    values = np.array([0.7, 0.8, 0.75, 0.9])
    for ci in stats.CI_METHODS:
        row = stats.compare_to_reference(paired_table(values, values.copy()), "bias",
                                         "both", axes=["bias"], ci=ci,
                                         n_resamples=999).iloc[0]
        assert row["t_pvalue"] == 1.0 and row["wilcoxon_pvalue"] == 1.0
        assert (row["ci_low"], row["ci_high"]) == (0.0, 0.0)
        assert not row["significant"]
        assert row["sentence"] == ("bias 'none': no difference from 'both' beyond noise "
                                   "(+0.0 [0.0, 0.0], p = 1.00, 4 pairs)")


def test_significance_needs_both_the_test_and_the_interval():
    # Twenty pairs one point up and one pair 100 points down: the signed-rank test sees
    # a consistent shift (p < 0.01), the mean is negative and its t interval holds 0.
    ref = np.full(21, 0.5)
    level = ref + np.r_[np.full(20, 0.01), -1.0] * 0.4
    row = stats.compare_to_reference(paired_table(level, ref), "bias", "both",
                                     axes=["bias"], ci="t", test="wilcoxon").iloc[0]
    assert row["pvalue_holm"] < 0.01
    assert row["ci_low"] < 0 < row["ci_high"]
    assert not row["significant"]
    assert "no difference from 'both' beyond noise" in row["sentence"]
    row = stats.compare_to_reference(paired_table(level, ref), "bias", "both",
                                     axes=["bias"], ci="t", test="t").iloc[0]
    assert not row["significant"] and row["pvalue_holm"] > 0.05


def test_bootstrap_interval_is_seeded_and_close_to_the_t_interval(rng):
    ref = rng.uniform(0.6, 0.8, size=200)
    level = ref + rng.normal(0.02, 0.01, size=200)
    runs = paired_table(level, ref)

    def interval(ci, seed):
        row = stats.compare_to_reference(runs, "bias", "both", axes=["bias"], ci=ci,
                                         seed=seed, n_resamples=2999).iloc[0]
        return row["ci_low"], row["ci_high"]

    assert interval("bca", 0) == interval("bca", 0)
    assert interval("bca", 0) != interval("bca", 1)
    t_low, t_high = interval("t", 0)
    for method in ("bca", "percentile"):
        low, high = interval(method, 0)
        assert low == pytest.approx(t_low, abs=0.05) and high == pytest.approx(t_high,
                                                                               abs=0.05)


def test_holm_on_a_known_set():
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005])
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 -> 0.06
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.5, 0.9]), [1.0, 1.0])
    with_nan = stats.holm([0.01, np.nan, 0.02])
    assert np.isnan(with_nan[1])
    np.testing.assert_allclose(with_nan[[0, 2]], [0.02, 0.02])


def test_holm_agrees_with_statsmodels(rng):
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = rng.uniform(0, 0.2, size=25)
    expected = multitest.multipletests(p, method="holm")[1]
    np.testing.assert_allclose(stats.holm(p), expected, rtol=1e-12)


def test_friedman_agrees_with_scipy(rng):
    scores = pd.DataFrame(np.round(rng.uniform(60, 90, size=(7, 5)), 0),
                          columns=list("abcde"))
    scores.iloc[2, 1] = scores.iloc[2, 3]  # a tie
    result = stats.friedman_test(scores)
    expected = scipy_stats.friedmanchisquare(*scores.to_numpy().T)
    assert result["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert result["pvalue"] == pytest.approx(expected.pvalue, rel=1e-12)
    assert (result["k"], result["n_blocks"]) == (5, 7)


def test_rank_levels_ranks_dataset_means_and_runs_friedman():
    rng = np.random.default_rng(3)
    rows = []
    for dataset, activation, seed, hidden in itertools.product(
            ["a", "b", "c", "d"], ["relu", "tanh", "gelu", "sigmoid"], [0, 1], [4, 16]):
        rows.append({"dataset": dataset, "activation": activation, "hidden": hidden,
                     "seed": seed, "fold": 0, "status": "ok",
                     "test_accuracy": rng.uniform(0.5, 1.0)})
    runs = pd.DataFrame(rows)
    means = runs.groupby(["dataset", "activation"])["test_accuracy"].mean().unstack()
    ranking = stats.rank_levels(runs, "activation")
    expected_ranks = means.rank(axis=1, ascending=False).mean()
    for level, rank in ranking.average_ranks.items():
        assert rank == pytest.approx(expected_ranks[level])
    assert list(ranking.average_ranks) == sorted(ranking.average_ranks)
    expected = scipy_stats.friedmanchisquare(*means.to_numpy().T)
    assert ranking.friedman["statistic"] == pytest.approx(expected.statistic)
    assert ranking.friedman["pvalue"] == pytest.approx(expected.pvalue)
    table = ranking.table()
    assert list(table["level"]) == list(ranking.average_ranks.index)
    assert table["mean"].tolist() == pytest.approx(
        [100 * means[level].mean() for level in table["level"]])


def test_friedman_needs_three_levels_and_two_blocks():
    two_levels = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 1.0, 4.0]})
    with pytest.raises(ValueError, match="at least 3 levels and 2 blocks.*2 level"):
        stats.friedman_test(two_levels)
    one_block = pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]})
    with pytest.raises(ValueError, match="at least 3 levels and 2 blocks.*1 complete"):
        stats.friedman_test(one_block)
    runs = paired_table([0.8, 0.9], [0.7, 0.6])
    ranking = stats.rank_levels(runs, "bias")
    assert ranking.friedman is None
    assert "at least 3 levels and 2 blocks" in ranking.summary()


@pytest.mark.parametrize("alpha, q", [
    (0.05, [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]),
    (0.10, [1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920]),
])
def test_nemenyi_q_matches_demsar_table(alpha, q):
    # Demšar (2006), table 5(a): critical values of the two-tailed Nemenyi test, k = 2..10.
    for k, expected in zip(range(2, 11), q):
        assert stats.nemenyi_q(k, alpha) == pytest.approx(expected, abs=1e-3)


def test_demsar_worked_example():
    # Demšar (2006), section 3.2.4: four classifiers on 14 data sets; chi2_F = 9.28,
    # F_F = 3.69 and, for the Nemenyi test, CD = 2.569 sqrt(4 * 5 / (6 * 14)) = 1.25.
    f_stat, _ = stats.iman_davenport(9.28, 4, 14)
    assert f_stat == pytest.approx(3.69, abs=0.005)
    assert stats.critical_difference(4, 14) == pytest.approx(1.25, abs=0.005)


def test_nemenyi_separates_exactly_the_pairs_beyond_the_critical_difference(rng):
    for _ in range(20):
        scores = pd.DataFrame(rng.normal(size=(int(rng.integers(3, 12)), 5))
                              + np.arange(5) * rng.uniform(0, 1.5), columns=list("abcde"))
        cd, pvalues = stats.nemenyi_test(scores)
        ranks = stats.rank_scores(scores).mean()
        gap = np.abs(ranks.to_numpy()[:, None] - ranks.to_numpy()[None, :])
        assert cd == pytest.approx(stats.critical_difference(5, len(scores)))
        np.testing.assert_array_equal(pvalues.to_numpy() < 0.05, gap > cd)


def test_nemenyi_agrees_with_scikit_posthocs(rng):
    posthocs = pytest.importorskip("scikit_posthocs")
    scores = pd.DataFrame(rng.normal(size=(9, 4)) + [0, 0.5, 1.0, 1.5],
                          columns=list("abcd"))
    _, pvalues = stats.nemenyi_test(scores)
    expected = posthocs.posthoc_nemenyi_friedman(scores.to_numpy())
    np.testing.assert_allclose(pvalues.to_numpy(), expected.to_numpy(), atol=1e-6)


def test_cliques_join_levels_closer_than_the_critical_difference():
    assert stats._cliques([1.0, 1.5, 3.0, 3.2], 1.0) == [(0, 1), (2, 3)]
    assert stats._cliques([1.0, 2.0, 3.0], 2.5) == [(0, 2)]
    assert stats._cliques([1.0, 2.0, 2.5, 4.0], 1.2) == [(0, 1), (1, 2)]
    assert stats._cliques([1.0, 3.0, 5.0], 1.0) == []


# --------------------------------------------------------------------------- pairing

def test_pairing_drops_failed_and_unpaired_runs_and_counts_them():
    runs = pd.DataFrame([
        # level 'none': seeds 0, 1 (failed), 2 (no partner)
        {"bias": "none", "seed": 0, "status": "ok", "test_accuracy": 0.70},
        {"bias": "none", "seed": 1, "status": "diverged", "test_accuracy": np.nan},
        {"bias": "none", "seed": 2, "status": "ok", "test_accuracy": 0.72},
        # reference: seeds 0, 1 (its partner failed), 3 (no partner), 4 (ok, no metric)
        {"bias": "both", "seed": 0, "status": "ok", "test_accuracy": 0.80},
        {"bias": "both", "seed": 1, "status": "ok", "test_accuracy": 0.81},
        {"bias": "both", "seed": 3, "status": "ok", "test_accuracy": 0.83},
        {"bias": "both", "seed": 4, "status": "ok", "test_accuracy": np.nan},
    ]).assign(dataset="d", fold=0)
    pairs, dropped = stats.pair_runs(runs, "bias", "both", axes=["bias"])
    assert pairs[["seed", "value", "reference_value"]].values.tolist() == [[0, 0.70, 0.80]]
    lost = sorted(zip(dropped["side"], dropped["seed"], dropped["reason"]))
    assert lost == [("level", 1, "failed"), ("level", 2, "unpaired"),
                    ("reference", 1, "unpaired"), ("reference", 3, "unpaired"),
                    ("reference", 4, "failed")]
    row = stats.compare_to_reference(runs, "bias", "both", axes=["bias"]).iloc[0]
    assert (row["n_pairs"], row["n_failed"], row["n_unpaired"]) == (1, 2, 3)
    assert 2 * row["n_pairs"] + row["n_failed"] + row["n_unpaired"] == len(runs)
    assert row["sentence"] == ("bias 'none' vs 'both': a single pair (-10.0 points), too "
                               "few to compare (2 failed and 3 unpaired runs left out)")


def test_pairing_matches_every_other_axis_and_levels_as_strings():
    rows = []
    for activation, hidden, seed in itertools.product(["relu", "tanh"], [4, 16], [0, 1]):
        for bias, shift in (("both", 0.0), ("none", -0.1)):
            rows.append({"dataset": "d", "activation": activation, "bias": bias,
                         "hidden": hidden, "seed": seed, "fold": 0, "status": "ok",
                         "test_accuracy": 0.5 + 0.1 * (activation == "relu")
                         + 0.01 * hidden + shift})
    runs = pd.DataFrame(rows)
    pairs, dropped = stats.pair_runs(runs, "bias", "both", axes=["activation", "bias",
                                                                  "hidden"])
    assert len(pairs) == 8 and dropped.empty
    np.testing.assert_allclose(pairs["difference"], -0.1)
    # hidden sizes read from runs.csv are integers; a reference given as text still works
    pairs, _ = stats.pair_runs(runs, "hidden", "16", axes=["activation", "bias", "hidden"])
    np.testing.assert_allclose(pairs["difference"], -0.12)
    assert set(pairs["level"]) == {"4"}


def test_pairing_refuses_runs_an_unlisted_axis_tells_apart():
    runs = pd.concat([paired_table([0.8, 0.9], [0.7, 0.6]).assign(lr=lr)
                      for lr in (0.1, 0.01)], ignore_index=True)
    with pytest.raises(ValueError, match="cannot be paired.*differ among them: lr"):
        stats.pair_runs(runs, "bias", "both", axes=["bias"])
    pairs, _ = stats.pair_runs(runs, "bias", "both", axes=["bias", "lr"])
    assert len(pairs) == 4


def test_bad_arguments_are_named():
    runs = paired_table([0.8, 0.9], [0.7, 0.6])
    with pytest.raises(ValueError, match="reference level 'hidden' of 'bias' is not in"):
        stats.compare_to_reference(runs, "bias", "hidden", axes=["bias"])
    with pytest.raises(ValueError, match="no column 'activation'"):
        stats.compare_to_reference(runs, "bias", "both", axes=["bias", "activation"])
    with pytest.raises(ValueError, match="ci must be one of"):
        stats.compare_to_reference(runs, "bias", "both", axes=["bias"], ci="normal")
    with pytest.raises(ValueError, match="cannot split .* by 'bias'"):
        stats.compare_to_reference(runs, "bias", "both", axes=["bias"], by=["bias"])


# ------------------------------------------------------------------ synthetic sweep

#: True effects of the synthetic sweep, in accuracy (0.05 = 5 points).
NONE_EFFECT = -0.05          # bias 'none': 5 points below 'both' everywhere
OUTPUT_EFFECT_RELU = -0.04   # bias 'output': 4 points below 'both', with relu only
# relu is 3 points above tanh, gelu 1 point; with the bias 'output' loss of relu averaged
# over the four placements, relu stays 1 point above gelu.
ACTIVATION_EFFECT = {"relu": 0.03, "gelu": 0.01, "tanh": 0.0}


def synthetic_sweep(seed=1):
    """Four datasets x 3 activations x 4 bias placements x 2 widths x 3 seeds x 2 folds.

    Bias 'hidden' equals 'both'; 'none' is 5 points below; 'output' is 4 points below
    with relu and equal otherwise. Runs that share dataset, width, seed and fold share a
    3-point random offset (the same split and initial draws), which the pairing cancels;
    every run has its own 1-point noise. One run diverged, one is missing. The generator
    is seeded, so the results are fixed (a 95% interval misses the true margin for about
    one seed in twenty; seed 0 is such a seed for the pooled 'none' comparison).
    """
    rng = np.random.default_rng(seed)
    base = {"ag": 0.70, "mr": 0.78, "sst2": 0.82, "trec": 0.88}
    shared = {}
    rows = []
    for dataset, activation, bias, hidden, s, fold in itertools.product(
            base, ACTIVATION_EFFECT, ["both", "hidden", "output", "none"], ["8", "32"],
            range(3), range(2)):
        key = (dataset, hidden, s, fold)
        shared.setdefault(key, rng.normal(0, 0.03))
        effect = {"none": NONE_EFFECT,
                  "output": OUTPUT_EFFECT_RELU if activation == "relu" else 0.0}
        accuracy = (base[dataset] + ACTIVATION_EFFECT[activation] + effect.get(bias, 0.0)
                    + 0.01 * (hidden == "32") + shared[key] + rng.normal(0, 0.01))
        rows.append({"dataset": dataset, "run_id": f"{activation}.{bias}.h{hidden}.s{s}.f{fold}",
                     "activation": activation, "bias": bias, "hidden": hidden,
                     "solver": "adam", "seed": s, "fold": fold, "status": "ok",
                     "test_accuracy": accuracy, "dev_accuracy": accuracy,
                     "test_macro_f1": accuracy})
    runs = pd.DataFrame(rows)
    runs.loc[0, ["status", "test_accuracy"]] = ["diverged", np.nan]
    return runs.drop(index=7).reset_index(drop=True)


AXES = ["activation", "bias", "hidden", "solver"]


@pytest.fixture(scope="module")
def sweep():
    return synthetic_sweep()


@pytest.mark.parametrize("ci, test", [("bca", "wilcoxon"), ("percentile", "t"), ("t", "t")])
def test_synthetic_sweep_flags_the_true_effect_and_not_the_null(sweep, ci, test):
    pooled = stats.compare_to_reference(sweep, "bias", "both", axes=AXES, ci=ci, test=test,
                                        n_resamples=1999).set_index("level")
    none, hidden = pooled.loc["none"], pooled.loc["hidden"]
    assert none["significant"] and not hidden["significant"]
    assert none["ci_low"] <= 100 * NONE_EFFECT <= none["ci_high"]
    assert hidden["ci_low"] <= 0 <= hidden["ci_high"]
    assert none["sentence"].startswith("bias 'none' is 5.")
    assert " points below 'both' [" in none["sentence"]
    # "below": the interval is that of the distance below, in increasing order
    shown = re.search(r"\[([-\d.]+), ([-\d.]+)\]", none["sentence"]).groups()
    assert tuple(map(float, shown)) == pytest.approx((-none["ci_high"], -none["ci_low"]),
                                                     abs=0.051)
    assert none["sentence"].endswith(", p < 0.001, 142 pairs")
    assert "no difference from 'both' beyond noise" in hidden["sentence"]

    per_dataset = stats.compare_to_reference(sweep, "bias", "both", axes=AXES,
                                             by=["dataset"], ci=ci, test=test,
                                             n_resamples=1999)
    assert set(per_dataset["dataset"]) == {"ag", "mr", "sst2", "trec"}
    flagged = per_dataset[per_dataset["significant"]]
    assert set(flagged.loc[flagged["level"] == "none", "dataset"]) == {"ag", "mr", "sst2",
                                                                      "trec"}
    assert not (flagged["level"] == "hidden").any()


def test_synthetic_sweep_counts_the_lost_runs(sweep):
    pooled = stats.compare_to_reference(sweep, "bias", "both", axes=AXES,
                                        n_resamples=999).set_index("level")
    # The diverged run and the missing one are both 'both' runs: every comparison loses
    # them and their partners.
    for level in ("hidden", "none", "output"):
        assert tuple(pooled.loc[level, ["n_pairs", "n_failed", "n_unpaired"]]) == (142, 1, 2)


def test_breakdown_finds_where_the_effect_holds(sweep):
    cells, tests = stats.effect_breakdown(sweep, "bias", "both", within="activation",
                                          axes=AXES, n_resamples=999)
    cell = cells.set_index(["activation", "level"])
    assert cell.loc[("relu", "output"), "significant"]
    assert cell.loc[("relu", "output"), "ci_low"] <= 100 * OUTPUT_EFFECT_RELU \
        <= cell.loc[("relu", "output"), "ci_high"]
    assert not cell.loc[("tanh", "output"), "significant"]
    assert not cell.loc[("gelu", "output"), "significant"]
    assert all(cell.loc[(a, "none"), "significant"] for a in ACTIVATION_EFFECT)
    test = tests.set_index("level")
    assert test.loc["output", "varies"] and not test.loc["none", "varies"]
    assert not test.loc["hidden", "varies"]
    assert "varies with activation" in test.loc["output", "sentence"]
    assert " points at relu to " in test.loc["output", "sentence"]  # relu: the lowest
    # The decomposition adds up, and the F test is the one-way ANOVA of the differences.
    pairs, _ = stats.pair_runs(sweep, "bias", "both", axes=AXES)
    d = 100 * pairs.loc[pairs["level"] == "output", ["activation", "difference"]]
    row = test.loc["output"]
    total = (d["difference"] ** 2).sum()
    assert row["ss_effect"] + row["ss_interaction"] + row["ss_residual"] == \
        pytest.approx(total)
    groups = [g["difference"].to_numpy() for _, g in d.groupby("activation")]
    assert row["f_statistic"] == pytest.approx(scipy_stats.f_oneway(*groups).statistic,
                                               rel=1e-6)


def test_synthetic_sweep_ranks_the_best_activation_first(sweep):
    ranking = stats.rank_levels(sweep, "activation")
    assert list(ranking.average_ranks.index) == ["relu", "gelu", "tanh"]
    assert ranking.average_ranks["relu"] == 1.0
    assert ranking.friedman["pvalue"] < 0.05
    assert ranking.critical_difference == pytest.approx(
        stats.nemenyi_q(3) * np.sqrt(3 * 4 / (6 * 4)))
    assert ranking.differs_from("relu") == ["tanh"]
    assert "'relu'" in ranking.summary() and "'tanh'" in ranking.summary()


def test_markdown_and_csv_helpers(sweep):
    table = stats.compare_to_reference(sweep, "bias", "both", axes=AXES, n_resamples=999)
    markdown = stats.to_markdown(stats.format_comparisons(table))
    lines = markdown.splitlines()
    assert lines[0].startswith("| level | difference | CI | p (t) |")
    assert len(lines) == 2 + 3
    assert re.search(r"\| none \| -[45]\.\d \| \[", markdown)
    text = stats.to_csv(table)
    back = pd.read_csv(io.StringIO(text))
    assert list(back.columns) == list(table.columns)
    assert back["n_pairs"].tolist() == table["n_pairs"].tolist()
    cells, _ = stats.effect_breakdown(sweep, "bias", "both", within="hidden", axes=AXES,
                                      n_resamples=999)
    pivot = stats.format_breakdown(cells, "hidden")
    assert list(pivot.columns) == ["hidden \\ bias", "hidden", "none", "output"]
    assert list(pivot.iloc[:, 0]) == ["8", "32"]


# ------------------------------------------------------------------------ packaging

def _python(code, **env):
    environ = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH",
                                                                              ""), **env)
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                          text=True, check=False, timeout=120)


def test_importing_cymlp_does_not_import_the_statistics():
    proc = _python("import sys, cymlp; print('cymlp.stats' in sys.modules)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_missing_pandas_names_the_workflow_extra():
    proc = _python("import sys; sys.modules['pandas'] = None\n"
                   "try:\n    import cymlp.stats\n"
                   "except ImportError as exc:\n    print(exc)")
    assert proc.returncode == 0, proc.stderr
    assert "needs pandas" in proc.stdout and "cymlp[workflow]" in proc.stdout


# ------------------------------------------------------------------------ the script

def _script():
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("workflow_statistics", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _snapshot(root):
    return {os.path.relpath(os.path.join(folder, name), root)
            for folder, _, names in os.walk(root) for name in names}


EXPECTED_FILES = {"comparisons.csv", "comparisons.md", "interactions.csv", "ranking.csv",
                  "ranking.md", "effects_activation.png", "effects_bias.png",
                  "effects_hidden.png", "cd_activation.png", "cd_bias.png"}


def test_script_standalone_writes_every_file_and_only_in_its_folder(tmp_path, sweep):
    pytest.importorskip("matplotlib")
    sandbox = tmp_path / "sandbox"
    (sandbox / "input").mkdir(parents=True)
    (sandbox / "work").mkdir()
    sweep.to_csv(sandbox / "input" / "runs.csv", index=False)
    before = _snapshot(sandbox)
    out = sandbox / "out"
    env = dict(os.environ, MPLCONFIGDIR=str(tmp_path / "mpl"),
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--runs", str(sandbox / "input" / "runs.csv"),
         "--out", str(out), "--axes", "activation", "bias", "hidden", "solver",
         "--reference", "bias=both", "activation=relu", "--resamples", "999"],
        cwd=sandbox / "work", env=env, capture_output=True, text=True, check=False,
        timeout=300)
    assert proc.returncode == 0, proc.stderr
    # two hidden sizes (no CD diagram) and one solver (nothing to compare)
    assert set(os.listdir(out)) == EXPECTED_FILES
    assert _snapshot(sandbox) - before == {f"out/{name}" for name in EXPECTED_FILES}
    for name in EXPECTED_FILES:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    comparisons = pd.read_csv(out / "comparisons.csv")
    assert set(comparisons["scope"]) == {"pooled", "dataset", "within"}
    pooled = comparisons[(comparisons["scope"] == "pooled") & (comparisons["axis"] == "bias")]
    assert pooled.set_index("level")["significant"].to_dict() == {
        "hidden": False, "none": True, "output": True}
    within = comparisons[(comparisons["scope"] == "within")
                         & (comparisons["within"] == "activation")
                         & (comparisons["dataset"] == "all")]
    assert set(within["within_level"]) == {"relu", "gelu", "tanh"}
    ranking = pd.read_csv(out / "ranking.csv")
    assert set(ranking["axis"]) == {"activation", "bias", "hidden", "solver"}
    markdown = (out / "comparisons.md").read_text()
    assert "## bias (reference 'both')" in markdown
    assert pooled.set_index("level").loc["none", "sentence"] in markdown
    assert "One level ('adam'): nothing to compare." in markdown
    assert "No Friedman test for hidden" in (out / "ranking.md").read_text()


class _Named(list):
    """A list whose entries can also be read by name, like Snakemake's inputs/outputs."""

    def __init__(self, items=(), **named):
        super().__init__(list(items) + list(named.values()))
        for key, value in named.items():
            setattr(self, key, value)


def test_script_under_snakemake_fills_every_declared_output(tmp_path, sweep):
    module = _script()
    runs = tmp_path / "runs.csv"
    sweep.to_csv(runs, index=False)
    out = tmp_path / "report" / "statistics"
    declared = {name: str(out / name) for name in
                ("comparisons.csv", "comparisons.md", "ranking.csv", "ranking.md",
                 "effects_bias.png", "cd_bias.png", "cd_hidden.png")}
    job = types.SimpleNamespace(
        input=_Named(runs=str(runs)),
        output=_Named(**{name.replace(".", "_"): path for name, path in declared.items()}),
        params=types.SimpleNamespace(
            axes=["dataset", "activation", "bias", "hidden", "solver", "seed", "fold"],
            reference={"bias": "both", "activation": "relu", "hidden": ["8"]},
            metric="test_accuracy", alpha=0.05, seed=0, n_resamples=499),
        log=[str(tmp_path / "statistics.log")])
    module.main(job)
    for path in declared.values():
        assert os.path.getsize(path) > 0, path
    # The runs have two hidden sizes: the declared CD diagram says why it is empty.
    assert set(os.listdir(out)) == EXPECTED_FILES | {"cd_hidden.png"}
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert set(comparisons.loc[comparisons["axis"] == "hidden", "reference"].astype(str)) \
        == {"8"}


def test_script_refuses_outputs_in_two_folders(tmp_path):
    module = _script()
    output = _Named(a=str(tmp_path / "one" / "comparisons.csv"),
                    b=str(tmp_path / "two" / "ranking.csv"))
    with pytest.raises(ValueError, match="must lie in one folder"):
        module.output_folder(output)
