"""The density chapter's readings: what each of its sections shows of the committed runs, and every value its
prose quotes (the calibration's sections: ``calibration_readings``).

``DensityResults`` loads, once, everything the chapter reads for a testbed: the density grid's runs
(``store.read_study`` per point), the calibrations, the tuning, the depth probes and the position traces.
Each ``*_reading`` function turns them into a ``readings.Reading`` (printed lines, tables, a figure, the glued
values), in the order of the chapter's sections; ``checked_claims`` lists what the chapter requires of them.
The chapter is prose and one call per section.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from langedit_mini.editing.registry import METHODS, NULL_SPACE_METHODS
from langedit_mini.study import store
from langedit_mini.study.calibration_readings import (
    calibrated,
    depth_probes,
    depth_reading,
    gates_reading,
    keys_reading,
    mechanism_reading,
    positions_reading,
    shipped_hidden_shares,
)
from langedit_mini.study.claims import Claim
from langedit_mini.study.density import (
    ALPHAEDIT_DENSITY,
    PAPER_DENSITY,
    QUOTED_CAPACITY_CURVE,
    REFERENCE_D_K,
    density,
    operating_points,
    point_name,
)
from langedit_mini.study.findings import glue_key
from langedit_mini.study.intervals import (
    after_last_batch,
    format_interval,
    mean_cell,
    paired_difference,
    with_intervals,
)
from langedit_mini.study.provenance import is_current
from langedit_mini.study.readings import (
    Reading,
    below_from,
    densities_read,
    final_by_run,
    general_ability_by_run,
    holds_up_to,
    listed,
    methods_table,
    null_space_left,
    order_by_density,
    ordered,
    paired_by_density,
    paired_cell,
    paper_point_table,
    runs_on_disk,
    write_forget_by_run,
)
from langedit_mini.study.verdicts import UNTESTABLE, paired_verdict, sequential_gate

COLORS = dict(zip(METHODS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))


def read_points(root: str | Path, d_k: int) -> dict[str, dict]:
    """Every point of a density study under ``root`` (``results/density/<model>``): point name ->
    ``store.read_study``, with ``density`` (edits per key dimension of ``d_k``), ``schedule`` and ``edits``."""
    points = {}
    for folder in sorted(Path(root).glob("e*")):
        point = store.read_study(folder)
        if point is None:
            continue
        parameters = point["parameters"]
        edits = parameters["edits_per_language"]
        point["density"] = density(edits, d_k, len(parameters["languages"]))
        point["schedule"] = parameters.get("schedule", "delta")
        point["edits"] = edits * len(parameters["languages"])
        points[folder.name] = point
    return points


@dataclass
class DensityResults:
    """Everything the density chapter reads for one testbed, loaded once (``load``)."""

    model: str
    grid: dict
    points: dict
    finals: pd.DataFrame
    calibrations: dict  # model -> calibration record or None, the testbed's first
    calibration_root: Path
    tuning: dict | None
    depth_root: Path
    positions_root: Path
    density_root: Path
    current_hash: str | None = None  # today's run hash for the testbed (``Testbed.current_hash``); None: the pocket's

    @classmethod
    def load(cls, model, grid, *, density, calibration, tuning, depth, positions, companions=(), current_hash=None):
        """``model``'s density runs under ``density``, its calibration and its ``companions``' under
        ``calibration/<name>``, its tuning under ``tuning``, the depth probes and position traces; ``current_hash``:
        the run hash its runs are checked against (a real LLM's differs from the pocket models')."""
        points = read_points(density, grid["d_k"])
        names = [model, *companions]
        calibrations = {name: store.read_calibration(Path(calibration) / name) for name in names}
        return cls(
            model,
            grid,
            points,
            final_by_run(points),
            calibrations,
            Path(calibration),
            store.read_tuning(tuning),
            Path(depth),
            Path(positions),
            Path(density),
            current_hash,
        )

    @property
    def paper(self) -> str:
        return point_name(self.grid["paper"])

    @property
    def paper_mt(self) -> str:
        return point_name(self.grid["paper"], "mt")

    def finals_at(self, point: str) -> pd.DataFrame:
        return self.finals[self.finals.point == point]

    @property
    def delta_finals(self) -> pd.DataFrame:
        return self.finals[self.finals.schedule == "delta"]

    def delta_points(self) -> dict:
        return {name: p for name, p in self.points.items() if p["schedule"] == "delta"}

    def calibration_table(self, model: str, name: str) -> pd.DataFrame | None:
        return store.read_calibration_table(self.calibration_root / model, name)


# --- section 1 and the chapter's basic numbers ---------------------------------------------------------------


def grid_reading(results: DensityResults) -> Reading:
    """The grid's operating points beside the published runs', and the numbers the chapter's text uses."""
    grid = results.grid
    table = pd.DataFrame(operating_points(grid, results.model), columns=["run", "edits", "d_k", "batch"])
    table["edits / d_k"] = table.edits / table.d_k
    table["batch / d_k"] = table.batch / table.d_k
    return Reading(
        parts=[("operating points", table.set_index("run").round(4))],
        glue={
            "dens_batch": grid["batch_size"],
            "dens_dk": grid["d_k"],
            "dens_paper_edits": grid["paper"] * 6,
            "dens_paper_density": f"{grid['paper'] * 6 / grid['d_k']:.3f}",
        },
    )


# --- section 4: tuning ---------------------------------------------------------------------------------------


def tuning_reading(results: DensityResults) -> Reading:
    """Every configuration run, the choice per method, and whether rows made by older code were rechecked."""
    from langedit_mini.study.tuning import config_name

    tuning = results.tuning
    if tuning is None:
        return Reading(parts=["not tuned yet: run scripts/tune.py"], glue={"tuning_budget": 0, "tuning_facts": 0})
    record, runs, recheck = tuning["record"], tuning["runs"], tuning["recheck"]
    point = record["point"]
    reading = Reading(
        parts=[
            f"tuned at commit {record['commit'][:8]} on {record['finished'][:10]}; objective: {record['objective']}; "
            f"point: {point['edits_per_language']} edits per language, batches of {point['batch_size']}"
        ]
    )
    versions = runs.package_hash.nunique()
    if versions > 1 and recheck is not None:
        reading.say(
            f"the {len(runs)} rows were made by {versions} versions of the code; the best row of each method and "
            f"older version ({len(recheck)} rows), rerun by the code that made the study's runs "
            f"({recheck['rerun by'][0]}), differs from its record by at most {recheck.difference.abs().max():.1e} "
            "(scripts/tune.py --recheck)"
        )
    elif versions > 1:
        reading.say(
            f"WARNING: the rows were made by {versions} versions of the code and were not rechecked "
            "(scripts/tune.py --recheck)"
        )
    budget = runs.groupby("method").size()
    chosen = {m: config_name(c["config"]) for m, c in record["chosen"].items()}
    runs = runs.assign(chosen=[chosen.get(m) == c for m, c in zip(runs.method, runs.config)])
    columns = ["config", "objective", "reliability TF", "generality TF", "locality TF", "written TF", "chosen"]
    reading.table("runs", runs.set_index("method").loc[ordered(runs.method), columns].round(3))
    reading.glue |= {"tuning_budget": int(budget.max()), "tuning_facts": point["tuning_facts"]}
    return reading


def tuning_budgets(results: DensityResults) -> pd.Series:
    """Configurations run per method."""
    return results.tuning["runs"].groupby("method").size() if results.tuning else pd.Series(dtype=int)


# --- section 5: the density axis -----------------------------------------------------------------------------


def runs_reading(results: DensityResults) -> Reading:
    """Which runs are on disk, per point and method, and whether any was made by other code."""
    on_disk = runs_on_disk(results.points, lambda run_hash: is_current(run_hash, results.current_hash))
    if on_disk.empty:
        return Reading(parts=[f"no density run under {results.density_root}: run scripts/run_density.py"])
    reading = Reading()
    stale = int(on_disk.stale.sum())
    if stale:
        reading.say(
            f"WARNING: {stale} runs were made by other editing code than this build's; rerun them "
            "(scripts/run_study.py --rerun-stale at their point)"
        )
    grid = results.grid
    planned = {point_name(e) for e in grid["edits_per_language"]} | {results.paper_mt}
    missing = sorted(planned - set(results.points))
    runs = on_disk.assign(n=on_disk.seeds.str.count(",") + 1).n.sum()
    reading.say(
        f"{len(on_disk)} (point, method) cells on disk; points not run yet: {', '.join(missing) or 'none'}; {runs} runs"
    )
    seeds = on_disk.pivot_table(
        index=["point", "density", "schedule"], columns="method", values="seeds", aggfunc="first"
    )
    reading.table("seeds", seeds[ordered(on_disk.method)])
    return reading


def _lines_by_method(ax, summary: pd.DataFrame) -> None:
    """One line with 95% error bars per method of a ``with_intervals`` summary over density."""
    for method in METHODS:
        line = summary[summary.method == method].sort_values("density") if len(summary) else summary
        if len(line):
            ax.errorbar(
                line.density,
                line["mean"],
                yerr=line["half"].fillna(0),
                marker="o",
                ms=3,
                capsize=2,
                label=method,
                color=COLORS[method],
            )


def axis_reading(results: DensityResults, metrics=("reliability", "generality", "locality")) -> Reading:
    """Every method's final scores against edits per key dimension (TF above, EM below), the published
    operating points marked and the quoted capacity curve beside reliability; glued as
    ``density_axis_figure`` (the report pastes it)."""
    frame = results.delta_finals
    if frame.empty:
        return Reading(glue={"density_axis_figure": "no density run yet"})
    values = ("teacher_forced", "exact_match")
    fig, axes = plt.subplots(
        len(values), len(metrics), figsize=(4 * len(metrics), 3.1 * len(values)), squeeze=False, sharex=True
    )
    for row, value in enumerate(values):
        for column, metric in enumerate(metrics):
            ax = axes[row][column]
            part = frame[frame.metric == metric]
            _lines_by_method(ax, with_intervals(part, ["density", "method"], value) if len(part) else pd.DataFrame())
            ax.axvline(PAPER_DENSITY, color="black", lw=0.8, ls=":")
            ax.axvline(ALPHAEDIT_DENSITY, color="grey", lw=0.8, ls=":")
            if metric == "reliability":
                x = [edits / REFERENCE_D_K for edits, _ in QUOTED_CAPACITY_CURVE]
                ax.plot(
                    x,
                    [e for _, e in QUOTED_CAPACITY_CURVE],
                    color="grey",
                    ls="--",
                    lw=1,
                    label="quoted: AlphaEdit, Llama-3-8B",
                )
            ax.set(title=f"{metric} ({'TF' if value == 'teacher_forced' else 'EM'})", ylabel="after the last batch")
            if row == len(values) - 1:
                ax.set_xlabel("edits per key dimension of the edited layer")
    axes[0][0].legend(fontsize=7)
    plt.tight_layout()
    return Reading(parts=[fig], glue={"density_axis_figure": fig})


def capacity_reading(results: DensityResults) -> Reading:
    """Up to which density each method keeps its mean final reliability at or above each threshold."""
    if results.delta_finals.empty:
        return Reading(parts=["no density run yet"])
    return Reading(parts=[("holds up to", holds_up_to(results.delta_finals))])


def order_reading(results: DensityResults, reference: str = "MEMIT") -> Reading:
    """The order of the methods at each point, and the lowest density from which each null-space method stays
    below ``reference`` at every denser point."""
    finals = results.delta_finals
    order = order_by_density(finals) if len(finals) else pd.DataFrame()
    reading = Reading(parts=[("order", order)])
    run = set(finals.method) if len(finals) else set()
    for method in NULL_SPACE_METHODS:
        key = f"below_{glue_key(reference).lower()}_{glue_key(method)}"
        if not {method, reference} <= run:
            reading.say(f"{method} against {reference}: not run")
            reading.glue[key] = "not run"
            continue
        start = below_from(finals, method, reference)
        reading.say(
            f"{method} below {reference} from {start} on"
            if start is not None
            else f"{method}: not below {reference} at the densest point"
        )
        reading.glue[key] = f"{start:.3f}" if start is not None else "nowhere"
    densest = order.iloc[-1] if len(order) else None
    reading.glue["densest_density"] = f"{densest.density:.3f}" if densest is not None else "not run"
    reading.glue["densest_order"] = densest.order if densest is not None else "not run"
    reading.glue["densest_seeds"] = (
        f"{densest.seeds} seed{'s' if densest.seeds > 1 else ''}" if densest is not None else "no seed"
    )
    return reading


def paired_reading(results: DensityResults) -> Reading:
    """Each null-space method minus MEMIT at every density, paired by seed (``*``: the interval excludes 0)."""
    paired = paired_by_density(results.delta_finals, NULL_SPACE_METHODS, "MEMIT")
    reading = Reading()
    if len(paired):
        cells = paired.assign(cell=paired.apply(paired_cell, axis=1))
        reading.table("paired", cells.pivot(index="density", columns="method", values="cell")[list(NULL_SPACE_METHODS)])
    else:
        reading.say("no density run yet")
    for method in NULL_SPACE_METHODS:
        reading.glue[f"paired_above_{glue_key(method)}"] = listed(densities_read(paired, method, "above"))
        reading.glue[f"paired_below_{glue_key(method)}"] = listed(densities_read(paired, method, "below"))
    return reading


# --- sections 6 and 7: where edits are lost; general ability ---------------------------------------------------

WRITE_FORGET_COLUMNS = ["written", "final", "lost", "kept", "forgotten", "never_written", "late"]


def write_forget_reading(results: DensityResults) -> Reading:
    """Written right after each batch, the same edits at the end, and the forgotten share, against density;
    the decomposition at the paper's point; the shares the prose quotes there and at the densest point."""
    decomposition = write_forget_by_run(results.delta_points())
    reading = Reading()
    if len(decomposition):
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.2), sharex=True)
        titles = [
            "reliability right after its write (TF)",
            "the same edits at the end (TF)",
            "forgotten: right when written, wrong at the end (EM share)",
        ]
        for ax, column, title in zip(axes, ["written", "final", "forgotten"], titles):
            _lines_by_method(ax, with_intervals(decomposition, ["density", "method"], column))
            ax.axvline(PAPER_DENSITY, color="black", lw=0.8, ls=":")
            ax.set(title=title, xlabel="edits per key dimension")
        axes[0].legend(fontsize=7)
        plt.tight_layout()
        at_paper = decomposition[decomposition.point == results.paper]
        reading.table(
            "at the paper's point",
            at_paper.groupby("method")[WRITE_FORGET_COLUMNS].mean().reindex(ordered(at_paper.method)).round(3),
        )
        reading.plot(fig)  # below the table, as the chapter showed it
        densest = decomposition[decomposition.density == decomposition.density.max()]
    else:
        at_paper = densest = pd.DataFrame(columns=["method", "written", "forgotten", "never_written"])
    for prefix, frame in (("", at_paper), ("densest_", densest)):
        for method in METHODS:
            part = frame[frame.method == method]
            for column in ("written", "forgotten", "never_written"):
                reading.glue[f"{prefix}{column}_{glue_key(method)}"] = (
                    f"{part[column].mean():.2f}" if len(part) else "not run"
                )
    return reading


def forgetting_matrices_reading(results: DensityResults) -> Reading:
    """The forgetting matrix of each method at the paper's point (its lowest seed)."""
    from langedit_mini.study.sequential import forgetting_matrix

    if results.paper not in results.points:
        return Reading(parts=[f"{results.paper}: not run yet"])
    evaluations = results.points[results.paper]["evaluations"]
    shown = ordered(evaluations.method)
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3), squeeze=False)
    for ax, method in zip(axes[0], shown):
        part = evaluations[(evaluations.method == method) & (evaluations.seed == evaluations.seed.min())]
        image = ax.imshow(forgetting_matrix(part).values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set(title=method, xlabel="scored after batch", ylabel="batch edited")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
    return Reading(parts=[fig])


def ability(results: DensityResults) -> pd.DataFrame:
    """``readings.general_ability_by_run`` of the delta points."""
    return general_ability_by_run(results.delta_points())


def ability_reading(results: DensityResults) -> Reading:
    """General ability relative to the unedited model, and the null-space dimensions left, against density."""
    frames = (
        (ability(results), "relative ability", "general ability / unedited"),
        (null_space_left(results.delta_points()), "null space left", "null-space dimensions left"),
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, (frame, column, title) in zip(axes, frames):
        if len(frame):
            _lines_by_method(ax, with_intervals(frame, ["density", "method"], column))
        ax.axvline(PAPER_DENSITY, color="black", lw=0.8, ls=":")
        ax.set(title=title, xlabel="edits per key dimension")
    axes[0].legend(fontsize=7)
    plt.tight_layout()
    return Reading(parts=[fig])


# --- section 8: the main study at the paper's density ---------------------------------------------------------


def paper_tables_reading(results: DensityResults) -> Reading:
    """The paper-style table at the paper's density, for each schedule run (delta, mt)."""
    reading = Reading()
    for schedule, name in (("delta", results.paper), ("mt", results.paper_mt)):
        part = results.finals_at(name)
        if part.empty:
            reading.say(f"{name}: not run yet")
            continue
        grid = results.grid
        reading.say(
            f"{schedule} schedule ({name}: {grid['paper'] * 6} edits, density {grid['paper'] * 6 / grid['d_k']:.3f}, "
            f"batches of {grid['batch_size']})"
        )
        reading.table(schedule, paper_point_table(part))
    return reading


def _ability_frame(results: DensityResults, point: str) -> pd.DataFrame:
    """General ability at ``point`` as final scores (metric "general ability", its value in both columns)."""
    frame = ability(results)
    frame = frame[frame.point == point] if len(frame) else frame
    return frame.assign(
        metric="general ability",
        teacher_forced=frame.get("relative ability"),
        exact_match=frame.get("relative ability"),
    )


#: the claims of LangEdit judged at the paper's density: key -> (claim, metric, schedule point)
PAPER_CLAIMS = {
    "reliability": ("LangEdit keeps earlier languages' edits better (final reliability)", "reliability", "delta"),
    "locality": ("LangEdit keeps unrelated facts better (locality)", "locality", "delta"),
    "general ability": ("LangEdit keeps general ability better (pocket probes)", "general ability", "delta"),
    "reliability, mt": ("the same with languages mixed in every batch (mt)", "reliability", "mt"),
}


def verdicts(results: DensityResults) -> dict:
    """Per (claim key, value): ``verdicts.paired_verdict`` at the paper's density, or "not judged (not run)"."""
    passes, _ = calibrated(results)
    found = {}
    for key, (_, metric, schedule) in PAPER_CLAIMS.items():
        point = results.paper if schedule == "delta" else results.paper_mt
        frame = _ability_frame(results, point) if metric == "general ability" else results.finals_at(point)
        for value in ("teacher_forced", "exact_match"):
            if metric == "general ability" and value == "exact_match":
                continue
            found[key, value] = (
                paired_verdict(frame, metric, value=value, calibrated=passes)
                if len(frame)
                else {"verdict": "not judged (not run)", "standing": ""}
            )
    return found


def verdicts_reading(results: DensityResults) -> Reading:
    """Each claim's verdict and the pairs behind it, and the glued verdicts."""
    reading = Reading()
    for (key, value), result in verdicts(results).items():
        claim = PAPER_CLAIMS[key][0]
        label = "TF" if value == "teacher_forced" else "EM"
        reading.say(f"{claim} [{label}]: {result['verdict']}\n    {result['standing']}")
        glue_name = f"verdict_{key.replace(' ', '_').replace(',', '')}_{label.lower()}"
        reading.glue[glue_name] = result["verdict"]
    return reading


def mt_gate_reading(results: DensityResults) -> Reading:
    """G2's own comparison (``verdicts.sequential_gate``) on the mt schedule's final scores, read beside G2."""
    mt = results.finals_at(results.paper_mt)
    if mt.empty:
        return Reading(
            parts=[f"{results.paper_mt}: not run yet"],
            glue={"mt_alphaedit_minus_memit": "not run yet", "mt_g2_reading": "has not been run yet"},
        )
    gate = sequential_gate(mt, PAPER_DENSITY)
    mean, half, _ = paired_difference(mt, "reliability", "AlphaEdit", "MEMIT")
    reading = Reading(parts=[("mt gate", gate.table().round(3))])
    reading.glue["mt_alphaedit_minus_memit"] = format_interval(mean, half, signed=True)
    reading.glue["mt_g2_reading"] = (
        "separates AlphaEdit above MEMIT" if gate.passed else "does not separate AlphaEdit above MEMIT either"
    )
    return reading


def paper_values_reading(results: DensityResults) -> Reading:
    """The values the findings and the report quote at the paper's density: per method reliability and
    locality (TF / EM), general ability, mt reliability; the seeds; whether the testbed is calibrated."""
    paper, mt = results.finals_at(results.paper), results.finals_at(results.paper_mt)
    abilities = _ability_frame(results, results.paper)

    def cell(frame, method, metric, value):
        part = frame[(frame.method == method) & (frame.metric == metric)] if len(frame) else frame
        return mean_cell(part[value] if len(part) else [], 2)

    glued = {}
    for method in METHODS:
        key = glue_key(method)
        for metric in ("reliability", "locality"):
            glued[f"paper_{metric}_{key}"] = (
                f"{cell(paper, method, metric, 'teacher_forced')} / {cell(paper, method, metric, 'exact_match')}"
            )
        glued[f"paper_general_ability_{key}"] = cell(abilities, method, "general ability", "teacher_forced")
        glued[f"mt_reliability_{key}"] = (
            f"{cell(mt, method, 'reliability', 'teacher_forced')} / {cell(mt, method, 'reliability', 'exact_match')}"
        )
    for metric, frame, name in (
        ("reliability", paper, "reliability"),
        ("locality", paper, "locality"),
        ("reliability", mt, "reliability_mt"),
    ):
        table = methods_table({results.model: frame}, metric)
        table.index.name = "testbed (TF / EM)"
        glued[f"report_{name}"] = table
    glued["report_general_ability"] = pd.DataFrame(
        {m: [cell(abilities, m, "general ability", "teacher_forced")] for m in METHODS},
        index=pd.Index([results.model], name="testbed (edited / unedited)"),
    )
    passes, failing = calibrated(results)
    glued["paper_seeds"] = int(paper.seed.nunique()) if len(paper) else 0
    glued["calibrated"] = "calibrated (G1, G2, G3 pass)" if passes else f"not calibrated ({', '.join(failing)} fail)"
    return Reading(glue=glued)


# --- section 9: the published blend, three ways -----------------------------------------------------------------


def blend_reading(results: DensityResults, published: str = "LangEdit-published") -> Reading:
    """The published blend at the paper's density beside its two ablations (counted, pooled)."""
    paper = results.finals_at(results.paper)
    blends = {f"reference ({published})": paper[paper.method.isin([published])]}
    for blend in ("counted", "pooled"):
        study = store.read_study(results.density_root / "ablations" / f"blend-{blend}")
        point = {f"blend-{blend}": study | {"density": 0, "schedule": "delta", "edits": 0}} if study else {}
        blends[blend] = final_by_run(point)
    rows = {}
    for name, frame in blends.items():
        if frame.empty:
            rows[name] = {"runs": 0}
            continue
        rows[name] = {"runs": frame.seed.nunique()}
        for metric in ("reliability", "generality", "locality"):
            part = frame[frame.metric == metric]
            rows[name] |= {
                f"{metric} TF": mean_cell(part.teacher_forced, 2),
                f"{metric} EM": mean_cell(part.exact_match, 2),
            }
    return Reading(parts=[("blends", pd.DataFrame(rows).T)])


# --- what the chapter checks ------------------------------------------------------------------------------------


def checked_claims(results: DensityResults) -> list[Claim]:
    """What the chapter's reading of the committed runs relies on: the same tuning budget for every method;
    every run at the paper's density scored all its edits after its last batch; what section 2 says of the
    depth probe (a deeper pocket model carries no more of the subject at its last token; the deepest probe
    fails G3), when a probe has run."""
    budget = tuning_budgets(results)
    claims = [
        Claim(
            "every method had the same tuning budget (most minus fewest configurations)",
            int(budget.max() - budget.min()) if len(budget) else 0,
            0,
        )
    ]
    if results.paper in results.points:
        final = after_last_batch(results.points[results.paper]["evaluations"])
        final = final[final.metric == "reliability"]
        claims.append(
            Claim(
                "every run at the paper's density scored all its edits after the last batch (fewest scored)",
                int(final.groupby(["method", "seed"]).size().min()),
                results.grid["paper"] * 6,
                at_least=True,
            )
        )
    probes, _ = depth_probes(results.depth_root)
    shipped = shipped_hidden_shares(results).get(results.model)
    if not probes.empty and shipped is not None:
        claims.append(
            Claim(
                "a deeper pocket model carries no more of the subject at its last token (deepest probe's "
                "hidden share minus the shipped model's)",
                float(probes.iloc[-1]["hidden share"] - shipped),
                0.0,
            )
        )
        claims.append(Claim("the deepest probe fails G3 (1 if it passes)", float(probes.iloc[-1]["G3 passed"]), 0.0))
    return claims


__all__ = [
    "UNTESTABLE",
    "DensityResults",
    "ability_reading",
    "axis_reading",
    "blend_reading",
    "capacity_reading",
    "checked_claims",
    "depth_reading",
    "forgetting_matrices_reading",
    "gates_reading",
    "grid_reading",
    "keys_reading",
    "mechanism_reading",
    "mt_gate_reading",
    "order_reading",
    "paired_reading",
    "paper_tables_reading",
    "paper_values_reading",
    "positions_reading",
    "runs_reading",
    "tuning_reading",
    "verdicts_reading",
    "write_forget_reading",
]
