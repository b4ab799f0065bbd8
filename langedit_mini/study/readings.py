"""The tables the chapters read off runs: final scores per run, the paper-style table, the density axis and its
readings, where edits are lost, general ability, the null space left.

Each function takes tidy frames (``experiment.StudyResult`` tables, or a study read back from disk by
``store.read_study``) and returns a table; every "mean ± half-width" is written by ``intervals``. A
``Reading`` bundles what a chapter section shows (tables, a figure, printed lines) with the values its prose
quotes (glued by name), so a chapter cell is one call and ``.show()``.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd

from langedit_mini.editing.registry import METHODS
from langedit_mini.study.intervals import (
    VALUES,
    after_last_batch,
    final_scores,
    format_interval,
    interval_reading,
    mean_cell,
    paired_difference,
)


@dataclass
class Reading:
    """What a chapter section shows, in order (``parts``: text to print, tables to display, figures to show),
    and ``glue``: the values its prose quotes by name (``myst_nb.glue``; a figure glued is displayed where
    the chapter glues it and pasted wherever another page refers to it). ``display_options``: pandas display
    options for the tables (``{"display.max_colwidth": 120}``)."""

    parts: list = field(default_factory=list)
    glue: dict[str, object] = field(default_factory=dict)
    display_options: dict = field(default_factory=dict)

    def say(self, text: str) -> Reading:
        self.parts.append(str(text))
        return self

    def table(self, name: str, frame) -> Reading:
        self.parts.append((name, frame))
        return self

    def plot(self, figure) -> Reading:
        self.parts.append(figure)
        return self

    @property
    def lines(self) -> list[str]:
        return [part for part in self.parts if isinstance(part, str)]

    @property
    def tables(self) -> dict[str, object]:
        return dict(part for part in self.parts if isinstance(part, tuple))

    @property
    def figures(self) -> list:
        return [part for part in self.parts if not isinstance(part, (str, tuple))]

    def show(self) -> None:
        """Print, display and show the parts in order, then glue the values (inside a chapter)."""
        import matplotlib.pyplot as plt
        from IPython.display import display
        from myst_nb import glue

        glued_figures = [value for value in self.glue.values() if isinstance(value, plt.Figure)]
        options = [item for pair in self.display_options.items() for item in pair]
        for part in self.parts:
            if isinstance(part, str):
                print(part)
            elif isinstance(part, tuple):
                with pd.option_context(*options) if options else _nothing():
                    display(part[1])
            elif not any(part is figure for figure in glued_figures):
                display(part)
                plt.close(part)
        for name, value in self.glue.items():
            if isinstance(value, plt.Figure):
                glue(name, value)  # shown here, and pasted where another page refers to it
                plt.close(value)
            else:
                glue(name, value, display=False)


@contextmanager
def _nothing():
    yield


def ordered(methods) -> list[str]:
    """``methods`` in the registry's order (the order every table shows)."""
    present = set(methods)
    return [m for m in METHODS if m in present]


# --- a study's tables ------------------------------------------------------------------------------------


def main_table(
    evaluations: pd.DataFrame,
    value: str = "teacher_forced",
    methods=None,
    languages=None,
    metrics=("reliability", "generality", "locality", "portability"),
) -> pd.DataFrame:
    """Rows (method, metric); columns: languages and "avg"; cells "mean ± half-width" over seeds."""
    scores = final_scores(evaluations, by=("method", "seed", "metric", "lang"))
    per_seed_average = scores.groupby(["method", "seed", "metric"])[value].mean().reset_index().assign(lang="avg")
    scores = pd.concat([scores[["method", "seed", "metric", "lang", value]], per_seed_average])
    rows = [
        {"method": method, "metric": metric, "lang": language, "cell": mean_cell(part[value])}
        for (method, metric, language), part in scores.groupby(["method", "metric", "lang"])
        if metric in metrics
    ]
    table = pd.DataFrame(rows).pivot(index=["method", "metric"], columns="lang", values="cell")
    columns = [c for c in (languages or sorted(set(table.columns) - {"avg"})) if c in table.columns] + ["avg"]
    order = [m for m in (methods or METHODS) if m in table.index.get_level_values(0)]
    return table.reindex(columns=columns).reindex(order, level=0)


def averages(evaluations: pd.DataFrame, methods=None) -> pd.DataFrame:
    """Per method: the mean over every edit and seed, after the last batch, of reliability, generality and
    locality, teacher-forced (TF) and exact match (EM)."""
    final = after_last_batch(evaluations)
    columns = {}
    for metric in ("reliability", "generality", "locality"):
        part = final[final.metric == metric]
        for value, label in (("teacher_forced", "TF"), ("exact_match", "EM")):
            columns[f"{metric} ({label})"] = part.groupby("method")[value].mean()
    table = pd.DataFrame(columns)
    return table.reindex([m for m in (methods or METHODS) if m in table.index])


def unreached_targets(batches: pd.DataFrame) -> pd.Series:
    """Per method: edits written with a target value that did not reach its target, per run (mean over
    seeds of the sum over batches); NaN for runs recorded before the count existed."""
    if "unreached" not in batches.columns:
        return pd.Series(dtype=float, name="unreached targets")
    per_run = batches.groupby(["method", "seed"]).unreached.sum(min_count=1)
    return per_run.groupby("method").mean().rename("unreached targets")


def seed_scores(evaluations: pd.DataFrame, metric: str, value: str = "teacher_forced") -> pd.DataFrame:
    """Rows: seeds; columns: methods; cells: the mean score of every edit after that run's last batch."""
    final = final_scores(evaluations)
    final = final[final.metric == metric]
    if final.empty:
        raise ValueError(f"no {metric!r} scores in the evaluations (metrics there: {sorted(set(evaluations.metric))})")
    return final.pivot(index="seed", columns="method", values=value)


def method_gap(by_setting: pd.DataFrame, first: str, second: str, tolerance: float = 0.02) -> dict:
    """How far two methods' scores lie apart over settings: ``by_setting`` is indexed by (setting, method)
    with one column per score. Returns ``gap`` (per setting and score, the absolute difference), ``largest``
    and a ``verdict`` sentence ("alike" within ``tolerance``); ``gap`` None when a method is missing."""
    methods = set(by_setting.index.get_level_values("method"))
    if not {first, second} <= methods:
        return {"gap": None, "largest": None, "verdict": f"{first} and {second} are not both in `methods`"}
    gap = (by_setting.xs(first, level="method") - by_setting.xs(second, level="method")).abs()
    largest = float(gap.max().max())
    verdict = (
        f"the two methods score alike (within {tolerance:g})"
        if largest <= tolerance
        else f"the two methods differ by more than {tolerance:g} somewhere: the table above says where"
    )
    return {"gap": gap, "largest": largest, "verdict": verdict}


# --- many studies: per run, per point of the density axis -------------------------------------------------


def final_by_run(points: dict[str, dict]) -> pd.DataFrame:
    """Per point, method, seed and metric: the mean teacher-forced and exact-match score of every edit after
    the run's last batch. ``points``: name -> a study read back (``store.read_study``) with ``density``,
    ``schedule`` and ``edits``. Columns: point, schedule, density, edits, method, seed, metric, teacher_forced,
    exact_match."""
    columns = ["point", "schedule", "density", "edits", "method", "seed", "metric", *VALUES]
    frames = [
        final_scores(point["evaluations"]).assign(
            point=name, schedule=point["schedule"], density=point["density"], edits=point["edits"]
        )
        for name, point in points.items()
    ]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def _run_row(name: str, point: dict, method: str, seed: int, **values) -> dict:
    """One row of a per-run table: the point, its density and schedule, the method and seed, and ``values``."""
    identity = {"point": name, "density": point["density"], "schedule": point["schedule"]}
    return identity | {"method": method, "seed": seed} | values


def write_forget_by_run(points: dict[str, dict]) -> pd.DataFrame:
    """``sequential.write_forget`` of every run of every point (reliability): written, final, lost, kept,
    forgotten, never written, late; with point, density and schedule."""
    from langedit_mini.study.sequential import write_forget

    frames = [
        write_forget(point["evaluations"]).assign(point=name, density=point["density"], schedule=point["schedule"])
        for name, point in points.items()
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def general_ability_by_run(points: dict[str, dict]) -> pd.DataFrame:
    """Per point, method and seed: the pocket general-ability probes after the last batch, as the mean over
    probes and languages of the score relative to the unedited model (accuracy-like probes: edited / unedited;
    perplexity: unedited / edited, so 1 = unchanged and lower = worse for every probe)."""
    rows = []
    for name, point in points.items():
        probes = point["probes"]
        if probes is None or probes.empty:
            continue
        unedited = probes[probes.method == "unedited"].set_index(["lang", "probe", "metric"]).value
        edited = after_last_batch(probes[probes.method != "unedited"])
        for (method, seed), part in edited.groupby(["method", "seed"]):
            part = part.set_index(["lang", "probe", "metric"]).value
            base = unedited.reindex(part.index)
            ratio = (base / part).where(part.index.get_level_values("metric") == "perplexity", part / base)
            rows.append(_run_row(name, point, method, seed, **{"relative ability": float(ratio.mean())}))
    return pd.DataFrame(rows)


def null_space_left(points: dict[str, dict]) -> pd.DataFrame:
    """Per point, method and seed (null-space methods only): the smallest null-space dimension left over the
    edited layers after the last batch (``capacity_left``)."""
    rows = []
    for name, point in points.items():
        batches = point["batches"]
        if "capacity_left" not in batches:
            continue
        with_capacity = batches.dropna(subset=["capacity_left"])
        for (method, seed), part in with_capacity.groupby(["method", "seed"]):
            last = part[part.batch == part.batch.max()]
            rows.append(_run_row(name, point, method, seed, **{"null space left": int(last.capacity_left.min())}))
    return pd.DataFrame(rows)


def runs_on_disk(points: dict[str, dict], is_current=None) -> pd.DataFrame:
    """Per point and method: the point's density and schedule (where the point's dict has them), the seeds
    finished, the mean wall time per run (minutes), and how many runs were made by other code (stale): read from
    the runs' ``current`` column where they have one (``ModelStudy.runs``), else asked of ``is_current`` (package
    hash -> bool; ``provenance.is_current``)."""
    rows = []
    for name, point in points.items():
        where = {"point": name} | {k: point[k] for k in ("density", "schedule") if k in point}
        if "density" in where:
            where["density"] = round(where["density"], 3)
        for method, part in point["runs"].groupby("method"):
            rows.append(
                where
                | {
                    "method": method,
                    "seeds": ", ".join(str(s) for s in sorted(part.seed)),
                    "minutes per run": round(part.wall_s.mean() / 60, 1),
                    "stale": _stale(part, is_current),
                }
            )
    return pd.DataFrame(rows)


def _stale(runs: pd.DataFrame, is_current) -> int:
    if "current" in runs:
        return int((~runs.current.astype(bool)).sum())
    return sum(not is_current(h) for h in runs.package_hash) if is_current else 0


def paper_point_table(finals: pd.DataFrame, metrics=("reliability", "generality", "locality", "portability")):
    """Rows: methods (in ``METHODS`` order); columns: "<metric> TF" and "<metric> EM", cells mean ± 95%
    half-width over seeds; and the seed count. ``finals``: ``final_by_run`` rows of one point."""
    rows = {}
    for method in ordered(finals.method):
        part = finals[finals.method == method]
        row = {}
        for metric in metrics:
            scores = part[part.metric == metric]
            row[f"{metric} TF"] = mean_cell(scores.teacher_forced)
            row[f"{metric} EM"] = mean_cell(scores.exact_match)
        row["seeds"] = part.seed.nunique()
        rows[method] = row
    return pd.DataFrame(rows).T


def methods_table(finals_by_row: dict[str, pd.DataFrame], metric: str, digits: int = 2) -> pd.DataFrame:
    """Rows: the names of ``finals_by_row`` (a testbed, a schedule); columns: every method of the registry; cells:
    the final ``metric`` as "teacher-forced / exact match", each the mean and 95% interval over seeds, or "not
    run". ``finals``: ``intervals.final_scores`` rows (method, seed, metric, teacher_forced, exact_match)."""
    rows = {}
    for name, finals in finals_by_row.items():
        row = {}
        for method in METHODS:
            part = finals[(finals.method == method) & (finals.metric == metric)] if len(finals) else finals
            row[method] = (
                f"{mean_cell(part.teacher_forced, digits)} / {mean_cell(part.exact_match, digits)}"
                if len(part)
                else "not run"
            )
        rows[name] = row
    return pd.DataFrame(rows, columns=list(finals_by_row)).T.reindex(columns=list(METHODS))


def holds_up_to(finals: pd.DataFrame, thresholds=(0.9, 0.8, 0.5), metric: str = "reliability") -> pd.DataFrame:
    """Per method: the largest density of the grid up to which the mean final ``metric`` (teacher-forced,
    mean over seeds) stays at or above each threshold at every point (None when it is below already at the
    lowest point): a capacity curve read off the grid."""
    means = finals[finals.metric == metric].groupby(["method", "density"]).teacher_forced.mean()
    rows = {}
    for method in ordered(means.index.get_level_values(0)):
        curve = means.xs(method).sort_index()
        row = {}
        for threshold in thresholds:
            below = curve[curve < threshold]
            kept = curve[curve.index < below.index.min()] if len(below) else curve
            row[f">= {threshold:g} up to"] = round(float(kept.index.max()), 3) if len(kept) else None
        rows[method] = row
    return pd.DataFrame(rows).T


def order_by_density(finals: pd.DataFrame, metric: str = "reliability", value: str = "teacher_forced") -> pd.DataFrame:
    """Per density: the methods ordered by their mean final ``metric`` (over seeds), best first, with the
    means and the number of seeds behind them; ties (equal to three decimals) share a place."""
    means = finals[finals.metric == metric].groupby(["density", "method"])[value].agg(["mean", "count"])
    rows = []
    for density, part in means.groupby(level=0):
        part = part.droplevel(0).sort_values("mean", ascending=False)
        order, previous = "", None
        for method, mean in part["mean"].items():
            if previous is not None:
                order += " = " if round(mean, 3) == round(previous, 3) else " > "
            order += method
            previous = mean
        rows.append(
            {"density": round(float(density), 3), "order": order, "seeds": int(part["count"].min())}
            | {method: round(float(mean), 3) for method, mean in part["mean"].items()}
        )
    return pd.DataFrame(rows)


def below_from(finals: pd.DataFrame, method: str, other: str, metric: str = "reliability") -> float | None:
    """The lowest density of the grid from which ``method``'s mean final ``metric`` (teacher-forced, mean
    over seeds) is below ``other``'s at that point and at every denser one (None: not at the densest)."""
    means = finals[finals.metric == metric].groupby(["density", "method"]).teacher_forced.mean().unstack()
    for name in (method, other):
        if name not in means:
            raise ValueError(f"below_from: no final {metric} scores for {name}; present: {sorted(means.columns)}")
    below = (means[method] < means[other]).sort_index()
    if not below.iloc[-1]:
        return None
    start = below.index[-1]
    for density in reversed(below.index):
        if not below[density]:
            break
        start = density
    return round(float(start), 3)


def paired_by_density(
    finals: pd.DataFrame, methods, reference: str, metric: str = "reliability", value: str = "teacher_forced"
) -> pd.DataFrame:
    """Per density and method: ``method - reference`` on the final ``metric``, paired by seed, with the 95%
    half-width and the number of shared seeds. ``reading``: ``intervals.interval_reading`` of the difference,
    or "not run" when the method and the reference share no seed at that density.
    Columns: density, method, mean, half, seeds, reading."""
    rows = []
    for density_, part in finals[finals.metric == metric].groupby("density"):
        seeds_of = part.groupby("method").seed.agg(set)
        for method in methods:
            row = {"density": round(float(density_), 3), "method": method}
            if not seeds_of.get(method, set()) & seeds_of.get(reference, set()):
                rows.append(row | {"mean": math.nan, "half": math.nan, "seeds": 0, "reading": "not run"})
                continue
            mean, half, seeds = paired_difference(part, metric, method, reference, value)
            rows.append(
                row | {"mean": mean, "half": half, "seeds": seeds, "reading": interval_reading(mean, half, seeds)}
            )
    return pd.DataFrame(rows, columns=["density", "method", "mean", "half", "seeds", "reading"])


def paired_cell(row) -> str:
    """``+0.014 ± 0.008 *`` for a ``paired_by_density`` row (``*``: the 95% interval excludes 0); the
    difference alone for one seed; the reading for a cell not run."""
    if row["reading"] == "not run":
        return "not run"
    if row["reading"] == "one seed":
        return format_interval(row["mean"], math.nan, signed=True)
    star = " *" if row["reading"] in ("above", "below") else ""
    return format_interval(row["mean"], row["half"], signed=True) + star


def densities_read(paired: pd.DataFrame, method: str, reading: str) -> list[float]:
    """The densities at which ``paired_by_density`` reads ``method`` as ``reading`` ("above", "below"...)."""
    return sorted(paired[(paired.method == method) & (paired.reading == reading)].density.tolist())


def listed(densities) -> str:
    """Densities as prose: "0.451, 0.574" (three decimals), "no point" for none."""
    return ", ".join(f"{d:.3f}" for d in densities) or "no point"
