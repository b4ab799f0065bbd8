"""The statistics a verdict uses: scores after the last batch, the mean and 95% interval over seeds, differences
paired by seed, and what an interval shows.

One definition each, used by every table, gate and verdict of the book:

* ``after_last_batch`` / ``final_scores``: an edit's score at the end of its run (the rows scored after the
  run's last batch), averaged per run and metric;
* ``interval``: the mean over seeds and the half-width of the two-sided 95% Student t interval;
* ``paired_difference``: ``first - second`` seed by seed (every seed edits the same facts in the same order
  with every method), then its interval;
* ``interval_reading``: "above" / "below" when the interval excludes 0, "not separated" when it spans 0,
  "one seed" when there is no interval;
* ``format_interval`` / ``mean_cell``: how a mean and its interval are written ("0.931 ± 0.010").
"""

from __future__ import annotations

import math

import pandas as pd

#: two-sided 95% Student t quantiles by degrees of freedom (1..10); 1.96 beyond
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
#: the score columns of an evaluation: teacher-forced token accuracy and greedy exact match
VALUES = ("teacher_forced", "exact_match")


def interval(values) -> tuple[float, float]:
    """Mean and half-width of the 95% t interval (NaN half-width for a single value)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("interval of no values: there is no run to summarise")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return mean, T_975.get(len(values) - 1, 1.96) * sd / math.sqrt(len(values))


def format_interval(mean: float, half: float, digits: int = 3, *, signed: bool = False) -> str:
    """ "0.931 ± 0.010" (``signed``: "+0.021 ± 0.026"); the mean alone when the half-width is NaN (one seed)."""
    sign = "+" if signed else ""
    return f"{mean:{sign}.{digits}f}" + ("" if math.isnan(half) else f" ± {half:.{digits}f}")


def mean_cell(values, digits: int = 3, *, signed: bool = False) -> str:
    """``format_interval`` of the mean and 95% interval of ``values`` (one per seed); "not run" for none."""
    values = list(values)
    return format_interval(*interval(values), digits, signed=signed) if values else "not run"


def after_last_batch(evaluations: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``evaluations`` (or of any table with ``after_batch``) scored after each run's last batch: a
    run is a method and a seed where the table has those columns, else the whole table is one run."""
    runs = [column for column in ("method", "seed") if column in evaluations.columns]
    if not runs:
        return evaluations[evaluations.after_batch == evaluations.after_batch.max()]
    last = evaluations.groupby(runs).after_batch.transform("max")
    return evaluations[evaluations.after_batch == last]


def final_scores(evaluations: pd.DataFrame, by=("method", "seed", "metric")) -> pd.DataFrame:
    """Per ``by`` (default: per run and metric): the mean teacher-forced and exact-match score of every edit
    after the run's last batch; ``by`` as columns."""
    final = after_last_batch(evaluations)
    return final.groupby(list(by))[list(VALUES)].mean().reset_index()


def paired_difference(
    finals: pd.DataFrame, metric: str, first: str, second: str, value: str = "teacher_forced"
) -> tuple[float, float, int]:
    """Mean and 95% half-width over seeds of ``first - second`` on ``metric``, paired by seed, and the seeds.

    ``finals``: rows ``method``, ``seed``, ``metric`` and ``value`` (e.g. ``final_scores``); the values are
    averaged per (method, seed) first."""
    part = finals[finals.metric == metric].groupby(["method", "seed"])[value].mean()
    if first not in part.index.get_level_values(0) or second not in part.index.get_level_values(0):
        raise ValueError(f"paired_difference needs {first} and {second} for {metric}")
    a, b = part.xs(first), part.xs(second)
    seeds = sorted(set(a.index) & set(b.index))
    if not seeds:
        raise ValueError(f"{first} and {second} share no seed")
    mean, half = interval([a[s] - b[s] for s in seeds])
    return mean, half, len(seeds)


def interval_reading(mean: float, half: float, seeds: int) -> str:
    """What a difference's 95% interval over ``seeds`` shows: "above" or "below" when it excludes 0,
    "not separated" when it spans 0, "one seed" when there is no interval."""
    if seeds < 2:
        return "one seed"
    if mean - half > 0:
        return "above"
    if mean + half < 0:
        return "below"
    return "not separated"


def with_intervals(frame: pd.DataFrame, keys, value: str) -> pd.DataFrame:
    """Mean, 95% half-width over seeds and the seed count of ``value`` per ``keys`` (one row per seed in each
    group)."""
    keys = list(keys)
    rows = []
    for key, part in frame.groupby(keys):
        mean, half = interval(part[value])
        rows.append(dict(zip(keys, key if isinstance(key, tuple) else (key,))) | {"mean": mean, "half": half})
        rows[-1]["seeds"] = len(part)
    return pd.DataFrame(rows, columns=[*keys, "mean", "half", "seeds"])
