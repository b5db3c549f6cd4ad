"""Statistics of sweep reports: paired comparisons, effect breakdowns, ranks across datasets.

The input everywhere is a tidy run table (a pandas DataFrame with one row per run), as
written by the workflow's ``collect`` step to ``runs.csv``: a ``dataset`` column, one
column per swept axis (``activation``, ``bias``, ``hidden``, ``solver`` or any other
estimator parameter), ``seed``, ``fold``, ``status`` (``'ok'`` for a finished run) and the
metric columns (``test_accuracy``, ``dev_accuracy``, ``test_macro_f1``).

Three questions, three tools (``docs/statistics.md`` explains how to read them):

* Does a level of one axis differ from a reference level beyond seed noise?
  :func:`compare_to_reference` pairs every run with the run of the reference level that
  shares everything else (dataset, all other axes, seed, fold) and reports the mean paired
  difference, its confidence interval, the paired t-test and Wilcoxon signed-rank
  p-values, Holm-adjusted p-values and one plain sentence per comparison.
* Does that difference hold at every level of another axis, or only at some?
  :func:`effect_breakdown` repeats the comparisons at each level of the other axis and
  tests whether the paired differences vary with it (:func:`interaction_test`).
* Which level wins across datasets? :func:`rank_levels` ranks the levels within each
  dataset, runs the Friedman test and the Nemenyi post-hoc test (Demšar 2006), and
  :func:`plot_critical_difference` draws the critical-difference diagram.

Accuracies and F1 scores are reported in percentage points (the metric times 100).

This module needs pandas (and matplotlib for the figures), which the core of cymlp does
not: install the ``workflow`` extra. ``import cymlp`` does not import it.

References
----------
Demšar, J. (2006). Statistical comparisons of classifiers over multiple data sets.
Journal of Machine Learning Research 7, 1-30.

Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian
Journal of Statistics 6(2), 65-70.
"""

import inspect
import re
import warnings
import zlib
from dataclasses import dataclass, field

import numpy as np

try:
    import pandas as pd
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "cymlp.stats needs pandas, which the core of cymlp does not install; install the "
        "'workflow' extra: pip install 'cymlp[workflow]'") from exc
from scipy import stats as scipy_stats

__all__ = [
    "level_order", "pair_runs", "compare_to_reference", "interaction_test", "effect_breakdown",
    "holm", "block_means", "rank_scores", "friedman_test", "iman_davenport",
    "nemenyi_q",
    "critical_difference", "nemenyi_test", "rank_levels", "Ranking",
    "plot_critical_difference", "plot_effects", "format_comparisons",
    "format_breakdown", "format_ranking", "format_pvalue", "to_markdown", "to_csv",
]

#: Columns that tell replicates of one configuration apart. A run is paired with the run
#: of the reference level that has the same values here and on every other swept axis.
REPLICATE_COLUMNS = ("dataset", "seed", "fold")

#: Confidence interval methods of :func:`compare_to_reference`.
CI_METHODS = ("bca", "percentile", "t")

#: Tests whose (Holm-adjusted) p-value decides significance.
TESTS = ("wilcoxon", "t")

# Differences are rounded to this many decimals (in metric units) before testing, so that
# accuracy differences that are equal on paper (multiples of 1 / n_test) are equal in
# floating point too: Wilcoxon ranks ties together, and an exact zero is a zero.
_DECIMALS = 12


# ---------------------------------------------------------------------------- helpers

def _scale_of(metric, scale):
    """(factor, unit) of a metric: accuracies and F1 scores are shown in points."""
    if scale is not None:
        return float(scale), ("points" if float(scale) == 100.0 else "")
    name = str(metric).lower()
    if name.endswith("accuracy") or name.endswith("f1"):
        return 100.0, "points"
    return 1.0, ""


def _natural_key(label):
    """Sort key of a level label: numbers by value, '16x16' after '16', text by text."""
    parts = re.split(r"(\d+)", label)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p)


def level_order(values):
    """Distinct level labels (strings) in display order.

    Numbers sort by value, hidden-size labels such as ``'16x16'`` by their numbers,
    anything else alphabetically.
    """
    labels = sorted({str(v) for v in values})
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels, key=_natural_key)


def _check_columns(runs, columns):
    missing = [c for c in columns if c not in runs.columns]
    if missing:
        raise ValueError(f"the run table has no column {missing[0]!r}; it has: "
                         f"{', '.join(map(str, runs.columns))}")


def _pairing_keys(runs, axis, axes):
    """Columns that identify a run apart from ``axis``: dataset, other axes, seed, fold."""
    axes = [axes] if isinstance(axes, str) else list(axes)
    _check_columns(runs, [axis, *axes])
    others = [a for a in axes if a != axis and a not in REPLICATE_COLUMNS]
    keys = ([c for c in ("dataset",) if c in runs.columns] + list(dict.fromkeys(others))
            + [c for c in ("seed", "fold") if c in runs.columns])
    if axis in REPLICATE_COLUMNS:
        keys = [k for k in keys if k != axis]
    return keys


def _fmt(value, unit, signed=False):
    """A difference or bound: one decimal in points, three significant digits otherwise."""
    if not np.isfinite(value):
        return "n/a"
    spec = ("+" if signed else "") + (".1f" if unit == "points" else ".3g")
    text = format(float(value), spec)
    return format(0.0, spec) if float(text) == 0 else text  # never "-0.0"


def _p_text(p):
    """'< 0.001', '0.0498', '0.48': three significant digits below 0.1, so that a value
    just under alpha = 0.05 never reads as 0.05."""
    if not np.isfinite(p):
        return "n/a"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3g}" if p < 0.1 else f"{p:.2f}"


def _fmt_p(p):
    """'p < 0.001', 'p = 0.0498', 'p = 0.48'."""
    text = _p_text(p)
    return "p " + text if text.startswith("<") else "p = " + text


def _pairs_text(n):
    return f"{n} pair" if n == 1 else f"{n} pairs"


# --------------------------------------------------------------------- multiple tests

def holm(pvalues):
    """Holm's step-down adjustment of a family of p-values (Holm 1979).

    The i-th smallest of ``m`` p-values is multiplied by ``m - i + 1`` (i from 1); the
    adjusted values are made non-decreasing in that order and capped at 1. Rejecting
    where the adjusted value is below alpha controls the family-wise error rate at
    alpha under any dependence between the tests.

    Parameters
    ----------
    pvalues : array-like of shape (m,)
        NaN entries (comparisons that could not be tested) are left NaN and do not
        count towards ``m``.

    Returns
    -------
    ndarray of shape (m,), float64
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if m == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out[order] = np.minimum(adjusted, 1.0)
    return out


# ------------------------------------------------------------------------- pairing

def pair_runs(runs, axis, reference, *, axes, metric="test_accuracy"):
    """Pair the runs of every level of ``axis`` with the runs of the reference level.

    Two runs are partners when they agree on every column that identifies a run apart
    from ``axis``: ``dataset``, the other swept ``axes``, ``seed`` and ``fold`` (those
    of the three that the table has). A run is usable when its ``status`` is ``'ok'``
    and its metric is finite. Unusable runs are dropped as *failed*; usable runs whose
    partner is missing or failed are dropped as *unpaired*.

    Parameters
    ----------
    runs : DataFrame
        One row per run.
    axis : str
        The swept axis whose levels are compared.
    reference : object
        The reference level; levels are compared as strings, so ``16`` and ``'16'``
        name the same level.
    axes : sequence of str
        Every swept axis of the table (``axis`` and ``dataset``/``seed``/``fold`` may
        be included; they are handled as said above). A column that varies between runs
        but is not listed makes two runs share a key: that is an error.
    metric : str

    Returns
    -------
    pairs : DataFrame
        One row per pair: the key columns, ``level``, ``value`` (metric of the level's
        run), ``reference_value`` and ``difference`` (``value - reference_value``, in
        metric units).
    dropped : DataFrame
        One row per run left out of a comparison: the key columns, ``level`` (the level
        compared with the reference), ``side`` (``'level'`` or ``'reference'``) and
        ``reason`` (``'failed'`` or ``'unpaired'``). A reference run appears once per
        comparison it was dropped from.

    Raises
    ------
    ValueError
        If a column is missing, the reference level is absent, or two runs of one level
        share a key.
    """
    keys = _pairing_keys(runs, axis, axes)
    _check_columns(runs, [metric, "status"])
    runs = runs.reset_index(drop=True)
    frame = runs[keys].copy()
    frame["_level"] = runs[axis].astype(str)
    values = pd.to_numeric(runs[metric], errors="coerce").astype(float)
    frame["_value"] = values
    frame["_ok"] = (runs["status"].astype(str) == "ok") & np.isfinite(values)

    clash = frame.duplicated(keys + ["_level"], keep=False)
    if clash.any():
        others = [c for c in runs.columns if c not in keys + [axis]]
        varying = [c for c in others
                   if runs[clash].groupby(keys + [axis], dropna=False)[c]
                   .nunique(dropna=False).max() > 1]
        raise ValueError(
            f"{int(clash.sum())} runs share their ({', '.join(keys)}) with another run of "
            f"the same {axis!r} level, so they cannot be paired; list the swept axis that "
            f"tells them apart in `axes` (columns that differ among them: "
            f"{', '.join(varying[:8]) or 'none'})")

    reference = str(reference)
    levels = level_order(frame["_level"])
    if reference not in levels:
        raise ValueError(f"reference level {reference!r} of {axis!r} is not in the runs; "
                         f"its levels are: {', '.join(levels)}")

    ref = frame[frame["_level"] == reference].drop(columns="_level")
    pair_parts, dropped_parts = [], []
    for level in levels:
        if level == reference:
            continue
        mine = frame[frame["_level"] == level].drop(columns="_level")
        merged = mine.merge(ref, on=keys, how="outer", suffixes=("_l", "_r"),
                            indicator=True)
        has_l = (merged["_merge"] != "right_only").to_numpy()
        has_r = (merged["_merge"] != "left_only").to_numpy()
        ok_l = merged["_ok_l"].eq(True).to_numpy()  # a missing partner is not ok
        ok_r = merged["_ok_r"].eq(True).to_numpy()
        both = ok_l & ok_r
        part = merged.loc[both, keys].copy()
        part["level"] = level
        part["value"] = merged.loc[both, "_value_l"].to_numpy()
        part["reference_value"] = merged.loc[both, "_value_r"].to_numpy()
        pair_parts.append(part)
        for side, has, ok, other_ok in (("level", has_l, ok_l, ok_r),
                                        ("reference", has_r, ok_r, ok_l)):
            for reason, mask in (("failed", has & ~ok), ("unpaired", ok & ~other_ok)):
                lost = merged.loc[mask, keys].copy()
                lost["level"], lost["side"], lost["reason"] = level, side, reason
                dropped_parts.append(lost)

    pairs = pd.concat(pair_parts, ignore_index=True) if pair_parts else pd.DataFrame(
        columns=keys + ["level", "value", "reference_value"])
    pairs["difference"] = (pairs["value"].astype(float)
                           - pairs["reference_value"].astype(float))
    dropped = pd.concat(dropped_parts, ignore_index=True) if dropped_parts else \
        pd.DataFrame(columns=keys + ["level", "side", "reason"])
    return pairs, dropped


# ------------------------------------------------------------------ paired statistics

def _bootstrap_kwargs(generator):
    if "rng" in inspect.signature(scipy_stats.bootstrap).parameters:
        return {"rng": generator}
    return {"random_state": generator}  # pragma: no cover - SciPy < 1.15


def _confidence_interval(d, method, confidence, n_resamples, generator):
    """Interval for the mean of the paired differences ``d``."""
    n = d.size
    if n < 2:
        return np.nan, np.nan
    if np.ptp(d) == 0.0:  # every pair differs by the same amount: no spread to resample
        return float(d[0]), float(d[0])
    if method == "t":
        half = (scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)
                * d.std(ddof=1) / np.sqrt(n))
        return float(d.mean() - half), float(d.mean() + half)
    with warnings.catch_warnings():
        # BCa is undefined for a few degenerate samples; the interval is then NaN.
        warnings.simplefilter("ignore")
        result = scipy_stats.bootstrap(
            (d,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
            method="BCa" if method == "bca" else "percentile",
            batch=max(1, min(n_resamples, 10**7 // n)), **_bootstrap_kwargs(generator))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _paired_tests(value, reference_value, d):
    """(t-test p, Wilcoxon p) of paired samples with differences ``d``.

    The p-values are SciPy's ``ttest_rel`` and ``wilcoxon`` (default zero handling:
    zero differences are dropped). When every difference is zero neither test is
    defined; there is then no evidence of a difference and both p-values are 1.
    """
    if d.size < 2:
        return np.nan, np.nan
    if not np.any(d):
        return 1.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_p = float(scipy_stats.ttest_rel(value, reference_value).pvalue)
        w_p = float(scipy_stats.wilcoxon(d).pvalue)
    return t_p, w_p


def _sentence(axis, level, reference, n, mean, low, high, p, significant, unit,
              n_failed=0, n_unpaired=0):
    """The plain-language summary of one comparison."""
    scale_word = " points" if unit == "points" else ""
    lost = f"{n_failed} failed and {n_unpaired} unpaired runs left out"
    if n == 0:
        return f"{axis} '{level}' vs '{reference}': no pairs to compare ({lost})"
    if n == 1:
        return (f"{axis} '{level}' vs '{reference}': a single pair "
                f"({_fmt(mean, unit, signed=True)}{scale_word}), too few to compare "
                f"({lost})")
    if significant:
        if mean > 0:
            where, lo, hi = "above", low, high
        else:
            where, lo, hi = "below", -high, -low
        return (f"{axis} '{level}' is {_fmt(abs(mean), unit)}{scale_word} {where} "
                f"'{reference}' [{_fmt(lo, unit)}, {_fmt(hi, unit)}], {_fmt_p(p)}, "
                f"{_pairs_text(n)}")
    return (f"{axis} '{level}': no difference from '{reference}' beyond noise "
            f"({_fmt(mean, unit, signed=True)} [{_fmt(low, unit)}, {_fmt(high, unit)}], "
            f"{_fmt_p(p)}, {_pairs_text(n)})")


def _ordered_keys(frame, cols):
    """Distinct value tuples of ``cols`` in ``frame``, each column in display order."""
    seen = frame[cols].drop_duplicates()
    orders = [{v: i for i, v in enumerate(level_order(seen[c]))} for c in cols]
    keys = [tuple(r) for r in seen.itertuples(index=False, name=None)]
    return sorted(keys, key=lambda r: tuple(o[str(v)] for o, v in zip(orders, r)))


def _group_rows(pairs, dropped, by):
    """``[(group values, level, pair rows, dropped rows)]`` in display order."""
    cols = list(by) + ["level"]
    keys = _ordered_keys(pd.concat([pairs[cols], dropped[cols]], ignore_index=True), cols)
    pair_groups = dict(list(pairs.groupby(cols, sort=False, dropna=False)))
    drop_groups = dict(list(dropped.groupby(cols, sort=False, dropna=False)))
    empty_p, empty_d = pairs.iloc[:0], dropped.iloc[:0]
    for key in keys:
        yield key[:-1], key[-1], pair_groups.get(key, empty_p), drop_groups.get(key, empty_d)


def _comparisons(pairs, dropped, *, axis, reference, metric, by, ci, test, alpha,
                 confidence, n_resamples, seed, scale):
    factor, unit = _scale_of(metric, scale)
    rows = []
    for group, level, part, lost in _group_rows(pairs, dropped, by):
        d = np.round(part["difference"].to_numpy(float), _DECIMALS) * factor
        value = part["value"].to_numpy(float) * factor
        ref_value = part["reference_value"].to_numpy(float) * factor
        label = "|".join(map(str, (axis, level, reference, *group)))
        generator = np.random.default_rng([seed, zlib.crc32(label.encode())])
        low, high = _confidence_interval(d, ci, confidence, n_resamples, generator)
        t_p, w_p = _paired_tests(value, ref_value, d)
        row = dict(zip(by, group))
        row.update({
            "axis": axis, "level": level, "reference": reference, "metric": metric,
            "unit": unit, "n_pairs": int(d.size),
            "n_failed": int((lost["reason"] == "failed").sum()),
            "n_unpaired": int((lost["reason"] == "unpaired").sum()),
            "mean_level": float(value.mean()) if d.size else np.nan,
            "mean_reference": float(ref_value.mean()) if d.size else np.nan,
            "mean_difference": float(d.mean()) if d.size else np.nan,
            "ci_low": low, "ci_high": high, "ci_method": ci, "confidence": confidence,
            "t_pvalue": t_p, "wilcoxon_pvalue": w_p, "test": test,
            "pvalue": w_p if test == "wilcoxon" else t_p,
        })
        rows.append(row)
    columns = [*by, "axis", "level", "reference", "metric", "unit", "n_pairs", "n_failed",
               "n_unpaired", "mean_level", "mean_reference", "mean_difference", "ci_low",
               "ci_high", "ci_method", "confidence", "t_pvalue", "wilcoxon_pvalue", "test",
               "pvalue", "pvalue_holm", "significant", "sentence"]
    table = pd.DataFrame(rows, columns=columns)
    table["pvalue_holm"] = holm(table["pvalue"].to_numpy(float))
    excludes_zero = (table["ci_low"] > 0) | (table["ci_high"] < 0)
    table["significant"] = (table["pvalue_holm"] < alpha) & excludes_zero
    table["sentence"] = [
        _sentence(axis, r.level, reference, r.n_pairs, r.mean_difference, r.ci_low,
                  r.ci_high, r.pvalue_holm, bool(r.significant), unit, r.n_failed,
                  r.n_unpaired)
        for r in table.itertuples(index=False)]
    return table


def _check_by(by, keys, axis):
    by = [by] if isinstance(by, str) else list(by)
    bad = [b for b in by if b not in keys or b == axis]
    if bad:
        raise ValueError(f"cannot split the comparisons of {axis!r} by {bad[0]!r}: it must "
                         f"be a column the pairs share ({', '.join(keys)})")
    return by


def _check_methods(ci, test, confidence, alpha):
    if ci not in CI_METHODS:
        raise ValueError(f"ci must be one of {CI_METHODS}, got {ci!r}")
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    if not (0 < confidence < 1 and 0 < alpha < 1):
        raise ValueError("confidence and alpha must lie strictly between 0 and 1")


def compare_to_reference(runs, axis, reference, *, axes, metric="test_accuracy", by=(),
                         ci="bca", test="wilcoxon", alpha=0.05, confidence=0.95,
                         n_resamples=9999, seed=0, scale=None):
    """Compare every level of ``axis`` with the reference level on paired runs.

    Runs are paired as in :func:`pair_runs`. For each level (and each group of ``by``),
    with ``d`` the paired differences (level minus reference; accuracies and F1 scores in
    percentage points):

    * ``mean_difference`` is ``mean(d)``;
    * the confidence interval of ``mean(d)``: ``'bca'`` (bias-corrected and accelerated
      bootstrap) or ``'percentile'`` bootstrap with a generator seeded from ``seed`` and
      the comparison's labels (so a comparison's interval does not depend on what else
      is computed), or ``'t'``, ``mean(d) ± t_{n-1} s / sqrt(n)``;
    * ``t_pvalue`` is ``scipy.stats.ttest_rel`` and ``wilcoxon_pvalue`` is
      ``scipy.stats.wilcoxon`` on ``d`` (zero differences dropped; both are 1 when every
      difference is 0, NaN with fewer than two pairs);
    * ``pvalue_holm`` adjusts the p-value of ``test`` with :func:`holm` over all the
      comparisons returned by this call (one table, one family);
    * a comparison is ``significant`` when ``pvalue_holm < alpha`` **and** the confidence
      interval excludes 0.

    The pairs of a row are treated as independent replicates: pooled over datasets or
    other axes, the mean difference is the average over that grid, and its interval
    describes the noise of seeds and folds around it, not how the effect would transfer
    to other datasets (see :func:`rank_levels` for that).

    Parameters
    ----------
    runs : DataFrame
        One row per run.
    axis : str
        The swept axis whose levels are compared.
    reference : object
        The reference level (compared as a string).
    axes : sequence of str
        Every swept axis of the table (see :func:`pair_runs`).
    metric : str
    by : sequence of str
        Report the comparisons separately for each value of these columns (for example
        ``['dataset']``); they must be among the pairing columns.
    ci : {'bca', 'percentile', 't'}
    test : {'wilcoxon', 't'}
        The test whose p-value is Holm-adjusted and decides significance.
    alpha : float
    confidence : float
        Level of the confidence interval (0.95 for 95%).
    n_resamples : int
        Bootstrap resamples.
    seed : int
    scale : float, optional
        Factor applied to the metric; default 100 (points) for accuracies and F1 scores,
        1 otherwise.

    Returns
    -------
    DataFrame
        One row per group of ``by`` and level other than the reference, with the ``by``
        columns, then ``axis``, ``level``, ``reference``, ``metric``, ``unit``
        (``'points'`` or ``''``), ``n_pairs``, ``n_failed`` (runs of the two levels not
        ``'ok'`` or without the metric), ``n_unpaired`` (usable runs whose partner is
        missing or failed), ``mean_level``, ``mean_reference`` (means over the pairs),
        ``mean_difference``, ``ci_low``, ``ci_high``, ``ci_method``, ``confidence``,
        ``t_pvalue``, ``wilcoxon_pvalue``, ``test``, ``pvalue`` (that of ``test``),
        ``pvalue_holm``, ``significant`` and ``sentence``.

    Examples
    --------
    >>> table = compare_to_reference(runs, "bias", "both",
    ...                              axes=["activation", "bias", "hidden"])  # doctest: +SKIP
    >>> print("\\n".join(table["sentence"]))  # doctest: +SKIP
    bias 'none' is 9.1 points below 'both' [7.9, 10.3], p < 0.001, 12 pairs
    """
    by = _check_by(by, _pairing_keys(runs, axis, axes), axis)
    _check_methods(ci, test, confidence, alpha)
    pairs, dropped = pair_runs(runs, axis, reference, axes=axes, metric=metric)
    return _comparisons(pairs, dropped, axis=axis, reference=str(reference), metric=metric,
                        by=by, ci=ci, test=test, alpha=alpha, confidence=confidence,
                        n_resamples=n_resamples, seed=seed, scale=scale)


# --------------------------------------------------------------- effect by other levels

def _interactions(pairs, *, axis, reference, within, metric, by, alpha, scale):
    factor, unit = _scale_of(metric, scale)
    rows = []
    cols = list(by) + ["level"]
    groups = dict(list(pairs.groupby(cols, sort=False, dropna=False)))
    for key in _ordered_keys(pairs, cols):
        part = groups[key]
        group, level = key[:-1], key[-1]
        d = np.round(part["difference"].to_numpy(float), _DECIMALS) * factor
        cells = (pd.DataFrame({"w": part[within].astype(str).to_numpy(), "d": d})
                 .groupby("w")["d"].agg(["mean", "size"]))
        cells = cells.reindex(level_order(cells.index))
        n, g = d.size, len(cells)
        grand = d.mean()
        ss_effect = n * grand**2
        ss_inter = float((cells["size"] * (cells["mean"] - grand) ** 2).sum())
        cell_mean = part[within].astype(str).map(cells["mean"]).to_numpy(float)
        ss_res = float(((d - cell_mean) ** 2).sum())
        df_inter, df_res = g - 1, n - g
        if df_inter < 1 or df_res < 1:
            f_stat, p = np.nan, np.nan
        elif ss_res == 0.0:
            f_stat, p = (np.inf, 0.0) if ss_inter > 0 else (np.nan, 1.0)
        else:
            f_stat = (ss_inter / df_inter) / (ss_res / df_res)
            p = float(scipy_stats.f.sf(f_stat, df_inter, df_res))
        row = dict(zip(by, group))
        row.update({
            "axis": axis, "level": level, "reference": reference, "within": within,
            "metric": metric, "unit": unit, "n_pairs": n, "n_groups": g,
            "mean_difference": grand,
            "min_difference": float(cells["mean"].min()),
            "min_at": str(cells["mean"].idxmin()),
            "max_difference": float(cells["mean"].max()),
            "max_at": str(cells["mean"].idxmax()),
            "ss_effect": ss_effect, "ss_interaction": ss_inter, "ss_residual": ss_res,
            "df_interaction": df_inter, "df_residual": df_res, "f_statistic": f_stat,
            "pvalue": p,
        })
        rows.append(row)
    columns = [*by, "axis", "level", "reference", "within", "metric", "unit", "n_pairs",
               "n_groups", "mean_difference", "min_difference", "min_at",
               "max_difference", "max_at", "ss_effect", "ss_interaction", "ss_residual",
               "df_interaction", "df_residual", "f_statistic", "pvalue", "pvalue_holm",
               "varies", "sentence"]
    table = pd.DataFrame(rows, columns=columns)
    table["pvalue_holm"] = holm(table["pvalue"].to_numpy(float))
    table["varies"] = table["pvalue_holm"] < alpha
    table["sentence"] = [_interaction_sentence(r, unit) for r in table.itertuples(index=False)]
    return table


def _interaction_sentence(r, unit):
    what = f"the difference of {r.axis} '{r.level}' to '{r.reference}'"
    scale_word = " points" if unit == "points" else ""
    if not np.isfinite(r.pvalue):
        return (f"{what} cannot be tested for variation with {r.within} "
                f"({r.n_groups} level(s), {_pairs_text(r.n_pairs)})")
    f_text = "inf" if np.isinf(r.f_statistic) else (
        "n/a" if not np.isfinite(r.f_statistic) else f"{r.f_statistic:.2f}")
    test = (f"F({r.df_interaction}, {r.df_residual}) = {f_text}, "
            f"{_fmt_p(r.pvalue_holm)}")
    span = (f"{_fmt(r.min_difference, unit, signed=True)}{scale_word} at {r.min_at} to "
            f"{_fmt(r.max_difference, unit, signed=True)}{scale_word} at {r.max_at}")
    if r.varies:
        return f"{what} varies with {r.within} ({test}): from {span}"
    return f"{what} does not vary with {r.within} beyond noise ({test}); cell means from {span}"


def interaction_test(runs, axis, reference, *, within, axes, metric="test_accuracy", by=(),
                     alpha=0.05, scale=None):
    """Test whether the paired difference of each level to the reference varies with
    the levels of another axis.

    For one level, the paired differences ``d`` (level minus reference) are grouped by
    the level of ``within``. Their sum of squares splits into three parts::

        sum(d**2) = n mean(d)**2                       (main effect, ss_effect)
                  + sum_g n_g (mean_g(d) - mean(d))**2  (interaction, ss_interaction)
                  + sum_g sum_i (d_gi - mean_g(d))**2   (residual, ss_residual)

    which is the two-way decomposition of the paired design: the interaction term is the
    part of the ``axis`` x ``within`` interaction that concerns these two levels. The F
    test ``(ss_interaction / (G - 1)) / (ss_residual / (n - G))`` (``G`` groups; the same
    as ``scipy.stats.f_oneway`` on the groups of ``d``) asks whether the effect differs
    between the groups beyond seed noise. The residual holds the seed, fold and any other
    axes' variation. p-values are Holm-adjusted over the rows returned; ``varies`` is
    ``pvalue_holm < alpha``. With fewer than two groups, or no more pairs than groups,
    the test is undefined (NaN).

    Parameters
    ----------
    runs, axis, reference, axes, metric, by, alpha, scale
        As in :func:`compare_to_reference`.
    within : str
        The other axis (a pairing column) whose levels may change the effect.

    Returns
    -------
    DataFrame
        One row per group of ``by`` and level: the ``by`` columns, ``axis``, ``level``,
        ``reference``, ``within``, ``metric``, ``unit``, ``n_pairs``, ``n_groups``,
        ``mean_difference``, ``min_difference`` / ``min_at`` and ``max_difference`` /
        ``max_at`` (smallest and largest group mean and where), ``ss_effect``,
        ``ss_interaction``, ``ss_residual``, ``df_interaction``, ``df_residual``,
        ``f_statistic``, ``pvalue``, ``pvalue_holm``, ``varies``, ``sentence``.
    """
    by = _check_by(list(by) + [within], _pairing_keys(runs, axis, axes), axis)[:-1]
    _check_methods("t", "t", 0.95, alpha)
    pairs, _ = pair_runs(runs, axis, reference, axes=axes, metric=metric)
    return _interactions(pairs, axis=axis, reference=str(reference), within=within,
                         metric=metric, by=by, alpha=alpha, scale=scale)


def effect_breakdown(runs, axis, reference, *, within, axes, metric="test_accuracy", by=(),
                     ci="bca", test="wilcoxon", alpha=0.05, confidence=0.95,
                     n_resamples=9999, seed=0, scale=None):
    """The comparisons to the reference at each level of another axis, and whether the
    effect varies with that axis.

    Answers "does the effect hold everywhere, or only for some levels?": the cells give
    the effect of ``axis`` separately for each level of ``within`` (for example the
    effect of the bias placement for each activation), not mixed with the spread of the
    other levels; the tests say whether the cells differ beyond noise.

    Parameters
    ----------
    runs, axis, reference, axes, metric, by, ci, test, alpha, confidence, n_resamples, \
seed, scale
        As in :func:`compare_to_reference`.
    within : str
        The other axis.

    Returns
    -------
    cells : DataFrame
        :func:`compare_to_reference` with ``by + [within]``: one row per group, level of
        ``within`` and level of ``axis``. Holm's family is the whole table.
    tests : DataFrame
        :func:`interaction_test`: one row per group and level of ``axis``.
    """
    by = _check_by(list(by) + [within], _pairing_keys(runs, axis, axes), axis)
    _check_methods(ci, test, confidence, alpha)
    pairs, dropped = pair_runs(runs, axis, reference, axes=axes, metric=metric)
    cells = _comparisons(pairs, dropped, axis=axis, reference=str(reference), metric=metric,
                         by=by, ci=ci, test=test, alpha=alpha, confidence=confidence,
                         n_resamples=n_resamples, seed=seed, scale=scale)
    tests = _interactions(pairs, axis=axis, reference=str(reference), within=within,
                          metric=metric, by=by[:-1], alpha=alpha, scale=scale)
    return cells, tests


# ------------------------------------------------------------------ ranks across blocks

def block_means(runs, axis, *, metric="test_accuracy", blocks=("dataset",), scale=None):
    """Mean metric of each level of ``axis`` in each block, over its usable runs.

    Parameters
    ----------
    runs : DataFrame
    axis : str
    metric : str
    blocks : sequence of str
        Columns whose combinations are the blocks; by default each dataset is a block
        and a level's score is its mean over seeds, folds and all other axes.
    scale : float, optional
        As in :func:`compare_to_reference`.

    Returns
    -------
    DataFrame of shape (n_blocks, n_levels)
        Index: the blocks; columns: the levels (strings, display order). NaN where a
        level has no usable run in a block.
    """
    blocks = [blocks] if isinstance(blocks, str) else list(blocks)
    _check_columns(runs, [axis, metric, "status", *blocks])
    factor, _ = _scale_of(metric, scale)
    runs = runs.reset_index(drop=True)
    values = pd.to_numeric(runs[metric], errors="coerce").astype(float)
    ok = (runs["status"].astype(str) == "ok") & np.isfinite(values)
    frame = runs.loc[ok, blocks].copy()
    frame["_level"] = runs.loc[ok, axis].astype(str)
    frame["_value"] = values[ok] * factor
    levels = level_order(runs[axis])
    if frame.empty:
        index = pd.MultiIndex.from_tuples([], names=blocks) if len(blocks) > 1 else \
            pd.Index([], name=blocks[0])
        return pd.DataFrame(index=index, columns=pd.Index(levels, name=axis), dtype=float)
    means = frame.groupby(blocks + ["_level"])["_value"].mean().unstack("_level")
    means = means.reindex(columns=levels)
    means.columns.name = axis
    return means


def rank_scores(scores, *, higher_is_better=True):
    """Rank the levels (columns) within each block (row): 1 = best, ties share the
    average rank.

    Parameters
    ----------
    scores : DataFrame of shape (n_blocks, n_levels), without NaN
    higher_is_better : bool

    Returns
    -------
    DataFrame of the same shape
    """
    values = scores.to_numpy(float)
    ranks = scipy_stats.rankdata(-values if higher_is_better else values, axis=1)
    return pd.DataFrame(ranks, index=scores.index, columns=scores.columns)


def _complete(scores, what):
    k, n = scores.shape[1], scores.shape[0]
    if k < 3 or n < 2:
        raise ValueError(
            f"{what} needs at least 3 levels and 2 blocks (datasets); "
            f"{scores.columns.name or 'the axis'} has {k} level(s) over {n} complete "
            f"block(s)")
    if scores.isna().any().any():
        raise ValueError(f"{what} needs a score for every level in every block; drop the "
                         "incomplete blocks first (rank_levels does)")


def friedman_test(scores):
    """Friedman's rank test that all levels perform alike, with Iman and Davenport's F.

    ``chi2`` is ``scipy.stats.friedmanchisquare`` on the columns (ranks within blocks,
    corrected for ties). Iman and Davenport's statistic
    ``F = (N - 1) chi2 / (N (k - 1) - chi2)`` follows an F distribution with ``k - 1``
    and ``(k - 1)(N - 1)`` degrees of freedom and is less conservative (Demšar 2006,
    section 3.2.2).

    Parameters
    ----------
    scores : DataFrame of shape (N blocks, k levels)
        Complete (no NaN); at least 3 levels and 2 blocks.

    Returns
    -------
    dict
        ``statistic`` (chi2), ``pvalue``, ``iman_davenport``, ``iman_davenport_pvalue``,
        ``k``, ``n_blocks``.

    Raises
    ------
    ValueError
        With fewer than 3 levels or 2 blocks, or a missing score.
    """
    _complete(scores, "the Friedman test")
    n, k = scores.shape
    values = scores.to_numpy(float)
    if np.all(np.ptp(values, axis=1) == 0):  # every block a full tie: nothing to rank
        chi2, p = 0.0, 1.0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = scipy_stats.friedmanchisquare(*values.T)
        chi2, p = float(result.statistic), float(result.pvalue)
    f_stat, f_p = iman_davenport(chi2, k, n)
    return {"statistic": chi2, "pvalue": p, "iman_davenport": f_stat,
            "iman_davenport_pvalue": f_p, "k": k, "n_blocks": n}


def iman_davenport(chi2, k, n_blocks):
    """Iman and Davenport's ``F = (N - 1) chi2 / (N (k - 1) - chi2)`` and its p-value.

    ``F`` follows an F distribution with ``k - 1`` and ``(k - 1)(N - 1)`` degrees of
    freedom. When every block ranks the levels in the same order ``chi2`` reaches
    ``N (k - 1)``: ``F`` is then infinite and the p-value 0.

    Returns
    -------
    (float, float)
    """
    n = n_blocks
    denominator = n * (k - 1) - chi2
    if denominator <= 0:
        return np.inf, 0.0
    f_stat = (n - 1) * chi2 / denominator
    return float(f_stat), float(scipy_stats.f.sf(f_stat, k - 1, (k - 1) * (n - 1)))


def nemenyi_q(k, alpha=0.05):
    """Demšar's critical value ``q_alpha`` of the Nemenyi test for ``k`` levels.

    The studentized range quantile for ``k`` means and infinite degrees of freedom,
    divided by ``sqrt(2)``: 2.569 for ``k = 4`` at ``alpha = 0.05`` (Demšar 2006,
    table 5).
    """
    if k < 2:
        raise ValueError(f"the Nemenyi test needs at least 2 levels, got {k}")
    return float(scipy_stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2))


def critical_difference(k, n_blocks, alpha=0.05):
    """Nemenyi critical difference ``CD = q_alpha sqrt(k (k + 1) / (6 N))``.

    Two levels whose average ranks over ``N = n_blocks`` blocks differ by at least CD
    differ significantly (Demšar 2006, section 3.2.2).
    """
    if n_blocks < 1:
        raise ValueError("the critical difference needs at least one block")
    return nemenyi_q(k, alpha) * np.sqrt(k * (k + 1) / (6.0 * n_blocks))


def nemenyi_test(scores, *, alpha=0.05, higher_is_better=True):
    """Nemenyi post-hoc test of all pairs of levels after the Friedman test.

    The rank difference ``|R_i - R_j|`` of two levels, divided by
    ``sqrt(k (k + 1) / (6 N))`` and multiplied by ``sqrt(2)``, is compared with the
    studentized range distribution (``k`` means, infinite degrees of freedom).

    Parameters
    ----------
    scores : DataFrame of shape (N blocks, k levels)
        Complete; at least 3 levels and 2 blocks.
    alpha : float
    higher_is_better : bool

    Returns
    -------
    cd : float
        The critical difference at ``alpha``.
    pvalues : DataFrame of shape (k, k)
        The p-value of each pair (1 on the diagonal).
    """
    _complete(scores, "the Nemenyi test")
    n, k = scores.shape
    average = rank_scores(scores, higher_is_better=higher_is_better).mean(axis=0)
    r = average.to_numpy()
    q = np.abs(r[:, None] - r[None, :]) / np.sqrt(k * (k + 1) / (6.0 * n)) * np.sqrt(2)
    p = scipy_stats.studentized_range.sf(q, k, np.inf)
    p = np.clip(np.where(q == 0, 1.0, p), 0.0, 1.0)
    pvalues = pd.DataFrame(p, index=scores.columns, columns=scores.columns)
    return critical_difference(k, n, alpha), pvalues


@dataclass
class Ranking:
    """Average ranks of the levels of one axis across blocks, with the Friedman and
    Nemenyi tests (see :func:`rank_levels`).

    Attributes
    ----------
    axis, metric : str
    blocks : list of str
        The columns that make a block.
    scores : DataFrame of shape (N, k)
        Mean metric per complete block (rows) and level (columns).
    ranks : DataFrame of shape (N, k)
        Ranks within each block, 1 = best.
    average_ranks : Series of length k
        Sorted from best to worst.
    dropped_levels : list
        Levels left out because none of their runs is usable.
    dropped_blocks : list
        Blocks left out because a remaining level had no usable run in them.
    alpha : float
    friedman : dict or None
        :func:`friedman_test`; None when it cannot run (see ``note``).
    critical_difference : float
        Nemenyi CD (NaN when the tests cannot run).
    pvalues : DataFrame or None
        Nemenyi p-values of every pair.
    note : str
        Why the tests were not run, or ''.
    """

    axis: str
    metric: str
    blocks: list
    scores: pd.DataFrame
    ranks: pd.DataFrame
    average_ranks: pd.Series
    dropped_levels: list = field(default_factory=list)
    dropped_blocks: list = field(default_factory=list)
    alpha: float = 0.05
    friedman: dict = None
    critical_difference: float = np.nan
    pvalues: pd.DataFrame = None
    note: str = ""

    @property
    def rejects(self):
        """Whether the Friedman test rejects equal performance at ``alpha``."""
        return self.friedman is not None and self.friedman["pvalue"] < self.alpha

    def differs_from(self, level):
        """Levels the Nemenyi test separates from ``level`` (empty unless the Friedman
        test rejects first, as Demšar 2006 recommends)."""
        if not self.rejects:
            return []
        row = self.pvalues.loc[level]
        return [other for other in self.average_ranks.index
                if other != level and row[other] < self.alpha]

    def table(self):
        """One row per level (best first): ``axis``, ``level``, ``average_rank``,
        ``mean`` (mean of the block scores), ``n_blocks``, ``k``, ``friedman_chi2``,
        ``friedman_pvalue``, ``iman_davenport_f``, ``iman_davenport_pvalue``,
        ``critical_difference``, ``alpha``, ``nemenyi_pvalue_vs_best`` and
        ``differs_from`` (';'-joined levels)."""
        f = self.friedman or {}
        best = self.average_ranks.index[0] if len(self.average_ranks) else None
        rows = []
        for level, rank in self.average_ranks.items():
            rows.append({
                "axis": self.axis, "level": level, "average_rank": float(rank),
                "mean": float(self.scores[level].mean()),
                "n_blocks": int(self.scores.shape[0]), "k": int(self.scores.shape[1]),
                "friedman_chi2": f.get("statistic", np.nan),
                "friedman_pvalue": f.get("pvalue", np.nan),
                "iman_davenport_f": f.get("iman_davenport", np.nan),
                "iman_davenport_pvalue": f.get("iman_davenport_pvalue", np.nan),
                "critical_difference": self.critical_difference, "alpha": self.alpha,
                "nemenyi_pvalue_vs_best": (float(self.pvalues.loc[level, best])
                                           if self.pvalues is not None else np.nan),
                "differs_from": ";".join(self.differs_from(level)),
            })
        return pd.DataFrame(rows, columns=[
            "axis", "level", "average_rank", "mean", "n_blocks", "k", "friedman_chi2",
            "friedman_pvalue", "iman_davenport_f", "iman_davenport_pvalue",
            "critical_difference", "alpha", "nemenyi_pvalue_vs_best", "differs_from"])

    def summary(self):
        """The Friedman and Nemenyi results in one or two plain sentences."""
        if self.friedman is None:
            return f"No Friedman test for {self.axis}: {self.note}."
        f = self.friedman
        k, n = f["k"], f["n_blocks"]
        chi = (f"Friedman chi2({k - 1}) = {f['statistic']:.2f}, {_fmt_p(f['pvalue'])}; "
               f"Iman-Davenport F({k - 1}, {(k - 1) * (n - 1)}) = "
               f"{f['iman_davenport']:.2f}, {_fmt_p(f['iman_davenport_pvalue'])}")
        cd = (f"Nemenyi critical difference at alpha = {self.alpha:g}: "
              f"CD = {self.critical_difference:.2f} ranks (k = {k}, N = {n})")
        if not self.rejects:
            return (f"The levels of {self.axis} rank alike across {n} blocks ({chi}); "
                    f"no post-hoc claim is made. {cd}.")
        best = self.average_ranks.index[0]
        beaten = self.differs_from(best)
        return (f"The levels of {self.axis} do not rank alike across {n} blocks ({chi}). "
                f"{cd}. The best, '{best}' (average rank {self.average_ranks[best]:.2f}), "
                + (f"ranks significantly better than {', '.join(repr(b) for b in beaten)}."
                   if beaten else "is not separated from any other level."))


def rank_levels(runs, axis, *, metric="test_accuracy", blocks=("dataset",), alpha=0.05,
                higher_is_better=True, scale=None):
    """Average ranks of the levels of ``axis`` across blocks, Friedman and Nemenyi tests.

    Within each block (by default each dataset) every level is scored by its mean metric
    over the usable runs (seeds, folds and the levels of all other axes) and the levels
    are ranked (1 = best, ties averaged). Failed runs count as missing, not as zero: a
    level without any usable run is left out, then the blocks where a remaining level
    has no usable run; both are listed. With at least 3 levels and 2 blocks, the Friedman test asks
    whether the levels rank alike, and the Nemenyi test compares every pair
    (Demšar 2006). Blocks should be independent: more blocks from one dataset (for
    example ``blocks=['dataset', 'hidden']``) give more power but share the dataset.

    Parameters
    ----------
    runs : DataFrame
    axis : str
    metric : str
    blocks : sequence of str
    alpha : float
    higher_is_better : bool
        False for losses and errors.
    scale : float, optional
        As in :func:`compare_to_reference` (only affects the reported means).

    Returns
    -------
    Ranking
    """
    blocks = [blocks] if isinstance(blocks, str) else list(blocks)
    means = block_means(runs, axis, metric=metric, blocks=blocks, scale=scale)
    empty = [level for level in means.columns if means[level].isna().all()]
    means = means.drop(columns=empty)
    complete = means.dropna(axis=0, how="any")
    dropped = [b for b in means.index if b not in complete.index]
    ranks = rank_scores(complete, higher_is_better=higher_is_better)
    average = ranks.mean(axis=0).sort_values(kind="stable")
    ranking = Ranking(axis=axis, metric=metric, blocks=blocks, scores=complete,
                      ranks=ranks, average_ranks=average, dropped_levels=empty,
                      dropped_blocks=dropped, alpha=alpha)
    k, n = complete.shape[1], complete.shape[0]
    if k < 3 or n < 2:
        ranking.note = (f"it needs at least 3 levels and 2 blocks ({' x '.join(blocks)}); "
                        f"{axis} has {k} level(s) over {n} complete block(s)")
        return ranking
    ranking.friedman = friedman_test(complete)
    ranking.critical_difference, ranking.pvalues = nemenyi_test(
        complete, alpha=alpha, higher_is_better=higher_is_better)
    return ranking


# ------------------------------------------------------------------------------ figures

def _cliques(ranks, cd):
    """Maximal runs ``(i, j)``, ``i < j``, of sorted ranks spanning less than ``cd``."""
    r = np.asarray(ranks, float)
    spans = []
    for i in range(r.size):
        j = i
        while j + 1 < r.size and r[j + 1] - r[i] < cd:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in spans):
            spans.append((i, j))
    return spans


def plot_critical_difference(average_ranks, cd, *, title=None, ax=None):
    """Critical-difference diagram of average ranks (Demšar 2006, figure 1).

    The rank axis runs from 1 (best, left) to k. Each level is joined to its average
    rank; a thick bar joins levels whose ranks differ by less than the critical
    difference (not separated by the Nemenyi test); the CD scale is drawn above.

    Parameters
    ----------
    average_ranks : Series
        Average rank per level.
    cd : float
        Critical difference (NaN to omit the bars).
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    ranks = pd.Series(average_ranks, dtype=float).sort_values(kind="stable")
    k = len(ranks)
    half = (k + 1) // 2
    rows = max(half, k - half)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 1.6 + 0.3 * rows))
    else:
        fig = ax.figure
    low, high = 1, max(k, 2)
    ax.set_xlim(low - 0.6, high + 0.6)
    ax.set_ylim(-(rows + 0.6), 1.6)
    ax.axis("off")
    ax.hlines(0, low, high, color="black", lw=1)
    for tick in range(low, high + 1):
        ax.vlines(tick, 0, 0.15, color="black", lw=1)
        ax.text(tick, 0.25, str(tick), ha="center", va="bottom", fontsize=9)
    if np.isfinite(cd):
        ax.hlines(1.1, low, low + cd, color="black", lw=1.5)
        ax.vlines([low, low + cd], 1.0, 1.2, color="black", lw=1.5)
        ax.text(low + cd / 2, 1.25, f"CD = {cd:.2f}", ha="center", va="bottom",
                fontsize=9)
    for i, (level, rank) in enumerate(ranks.items()):
        left = i < half
        row = (i if left else k - 1 - i) + 1
        end = low - 0.4 if left else high + 0.4
        ax.plot([rank, rank, end], [0, -row, -row], color="0.3", lw=0.9)
        ax.text(end - 0.05 if left else end + 0.05, -row, f"{level} ({rank:.2f})",
                ha="right" if left else "left", va="center", fontsize=9)
    if np.isfinite(cd):
        for depth, (i, j) in enumerate(_cliques(ranks.to_numpy(), cd)):
            y = -0.35 - 0.2 * depth
            ax.hlines(y, ranks.iloc[i] - 0.03, ranks.iloc[j] + 0.03, color="black", lw=3)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_effects(comparisons, *, panel="dataset", title=None):
    """Paired differences to the reference with their confidence intervals, one panel
    per value of ``panel`` (for example per dataset).

    Filled markers are significant comparisons, open markers are not.

    Parameters
    ----------
    comparisons : DataFrame
        Rows of :func:`compare_to_reference` for one axis.
    panel : str, optional
        Column that splits the panels (None: one panel).
    title : str, optional

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    if panel is not None and panel in comparisons.columns:
        names = list(dict.fromkeys(comparisons[panel].astype(str)))
        parts = [comparisons[comparisons[panel].astype(str) == name] for name in names]
    else:
        names, parts = [""], [comparisons]
    levels = level_order(comparisons["level"]) if len(comparisons) else []
    ncols = min(len(names), 4)
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols + 1.2,
                                                   (0.45 * len(levels) + 1.4) * nrows),
                             squeeze=False, sharey=True)
    unit = comparisons["unit"].iloc[0] if len(comparisons) else ""
    reference = comparisons["reference"].iloc[0] if len(comparisons) else ""
    position = {level: i for i, level in enumerate(reversed(levels))}
    for ax, name, part in zip(axes.flat, names, parts):
        ax.axvline(0, color="0.5", lw=1, ls="--")
        for r in part.itertuples(index=False):
            y = position[r.level]
            if np.isfinite(r.ci_low) and np.isfinite(r.ci_high):
                ax.hlines(y, r.ci_low, r.ci_high, color="C0", lw=2)
            ax.plot(r.mean_difference, y, "o", color="C0",
                    markerfacecolor="C0" if r.significant else "white")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(f"difference to '{reference}'"
                      + (" (points)" if unit == "points" else ""))
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    axes[0][0].set_yticks(range(len(levels)))
    axes[0][0].set_yticklabels(list(reversed(levels)))
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ tables

def format_pvalue(p):
    """A p-value as shown in the tables: '< 0.001', '0.0498', '0.48', '–' when NaN."""
    return _p_text(p) if np.isfinite(p) else "–"


def format_comparisons(comparisons):
    """Display table of :func:`compare_to_reference` rows (strings).

    Columns: the grouping columns present (``dataset``, ``within`` axis), ``level``,
    ``difference``, ``CI``, ``p (t)``, ``p (Wilcoxon)``, ``p (Holm)``, ``pairs``,
    ``failed``, ``unpaired``, ``significant`` ('yes' or '').
    """
    fixed = {"axis", "level", "reference", "metric", "unit", "n_pairs", "n_failed",
             "n_unpaired", "mean_level", "mean_reference", "mean_difference", "ci_low",
             "ci_high", "ci_method", "confidence", "t_pvalue", "wilcoxon_pvalue", "test",
             "pvalue", "pvalue_holm", "significant", "sentence"}
    groups = [c for c in comparisons.columns if c not in fixed]
    rows = []
    for r in comparisons.to_dict("records"):
        unit = r["unit"]
        row = {c: r[c] for c in groups}
        row.update({
            "level": r["level"],
            "difference": _fmt(r["mean_difference"], unit, signed=True),
            "CI": f"[{_fmt(r['ci_low'], unit)}, {_fmt(r['ci_high'], unit)}]",
            "p (t)": format_pvalue(r["t_pvalue"]),
            "p (Wilcoxon)": format_pvalue(r["wilcoxon_pvalue"]),
            "p (Holm)": format_pvalue(r["pvalue_holm"]),
            "pairs": r["n_pairs"], "failed": r["n_failed"], "unpaired": r["n_unpaired"],
            "significant": "yes" if r["significant"] else "",
        })
        rows.append(row)
    return pd.DataFrame(rows, columns=groups + [
        "level", "difference", "CI", "p (t)", "p (Wilcoxon)", "p (Holm)", "pairs",
        "failed", "unpaired", "significant"])


def format_breakdown(cells, within):
    """Pivot of :func:`effect_breakdown` cells (one group of ``by``): one row per level
    of ``within``, one column per compared level, each cell ``'difference [low, high]'``
    with ``*`` when significant and ``–`` without pairs. The first column is named
    ``'<within> \\ <axis>'``."""
    within_levels = level_order(cells[within]) if len(cells) else []
    levels = level_order(cells["level"]) if len(cells) else []
    axis = cells["axis"].iloc[0] if len(cells) else ""
    text = {}
    for r in cells.to_dict("records"):
        if r["n_pairs"] == 0:
            continue
        unit = r["unit"]
        text[str(r[within]), r["level"]] = (
            f"{_fmt(r['mean_difference'], unit, signed=True)} "
            f"[{_fmt(r['ci_low'], unit)}, {_fmt(r['ci_high'], unit)}]"
            + ("*" if r["significant"] else ""))
    rows = [[w] + [text.get((w, level), "–") for level in levels] for w in within_levels]
    # The first header names both axes (rows \ columns); a level may share a name with
    # the other axis ('hidden' is a bias placement and an axis).
    return pd.DataFrame(rows, columns=[f"{within} \\ {axis}"] + levels)


def format_ranking(ranking):
    """Display table of a :class:`Ranking`: ``level``, ``average rank``, ``mean``,
    ``p vs best (Nemenyi)``, ``differs from``."""
    table = ranking.table()
    return pd.DataFrame({
        "level": table["level"],
        "average rank": [f"{v:.2f}" for v in table["average_rank"]],
        "mean": [f"{v:.1f}" if np.isfinite(v) else "–" for v in table["mean"]],
        "p vs best (Nemenyi)": [format_pvalue(p) for p in table["nemenyi_pvalue_vs_best"]],
        "differs from": table["differs_from"].str.replace(";", ", "),
    })


def to_markdown(frame):
    """A pipe table of ``frame`` (no index); '|' in cells is escaped."""
    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for row in frame.itertuples(index=False):
        cells = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                 for v in row]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def to_csv(frame, path=None):
    """Write ``frame`` as CSV (no index, floats to 6 significant digits); returns the
    text when ``path`` is None."""
    return frame.to_csv(path, index=False, float_format="%.6g")
