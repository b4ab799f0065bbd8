"""The density chapter's readings: what each of its sections shows of the committed runs, and every value its
prose quotes.

``DensityResults`` loads, once, everything the chapter reads for a testbed: the density grid's runs
(``store.read_study`` per point), the calibrations, the tuning, the depth probes and the position traces.
Each ``*_reading`` function turns them into a ``readings.Reading`` (printed lines, tables, a figure, the glued
values), in the order of the chapter's sections; ``checked_claims`` lists what the chapter requires of them.
The chapter is prose and one call per section.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from langedit_mini.data.datasets import POCKET_DIRECTORY
from langedit_mini.editing.registry import METHODS, NULL_SPACE_METHODS
from langedit_mini.study import store
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
from langedit_mini.study.intervals import format_interval, mean_cell, paired_difference, with_intervals
from langedit_mini.study.provenance import is_current
from langedit_mini.study.readings import (
    Reading,
    below_from,
    densities_read,
    final_by_run,
    general_ability_by_run,
    holds_up_to,
    listed,
    null_space_left,
    order_by_density,
    ordered,
    paired_by_density,
    paired_cell,
    paper_point_table,
    runs_on_disk,
    write_forget_by_run,
)
from langedit_mini.study.verdicts import UNTESTABLE, gate_table, paired_verdict, sequential_gate

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

    @classmethod
    def load(cls, model, grid, *, density, calibration, tuning, depth, positions, companions=()):
        """``model``'s density runs under ``density``, its calibration and its ``companions``' under
        ``calibration/<name>``, its tuning under ``tuning``, the depth probes and position traces."""
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


# --- section 2: the calibration gates ------------------------------------------------------------------------


def gates(results: DensityResults) -> pd.DataFrame:
    """Every calibrated model's gate table (``verdicts.gate_table``; G2 from the testbed's paper point)."""
    tables = []
    for name, record in results.calibrations.items():
        if record is not None:
            finals = results.finals_at(results.paper) if name == results.model else None
            tables.append(gate_table(record, finals, PAPER_DENSITY).assign(model=name))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["model", "gate", "claim", "value"])


def passed_gates(results: DensityResults) -> pd.DataFrame:
    """Rows: models; columns: G1, G2, G3; whether every claim of the gate holds."""
    table = gates(results)
    return table.groupby(["model", "gate"]).holds.all().unstack() if len(table) else pd.DataFrame()


def calibrated(results: DensityResults) -> tuple[bool, list[str]]:
    """Whether the testbed passes every gate, and the gates it fails."""
    passed = passed_gates(results)
    if results.model not in passed.index:
        return False, ["all (not calibrated)"]
    failing = [gate for gate, holds in passed.loc[results.model].items() if not holds]
    return not failing, failing


def gates_reading(results: DensityResults, companion: str = "pocket-wide") -> Reading:
    """The gate tables of the testbed and its ``companion`` (G1 and G3 only: no density runs), and the values
    the section quotes."""
    reading = Reading()
    for name, record in results.calibrations.items():
        if record is None:
            reading.say(f"{name}: no calibration record under {results.calibration_root}/{name}")
            continue
        reading.say(
            f"{name}: calibrated at commit {record['commit'][:8]} on {record['finished'][:10]}, band "
            f"{record['band']}, batch {record['batch_size']}, {record['traced_facts']} traced facts"
        )
    table = gates(results)
    if len(table):
        reading.table("gates", table.set_index(["model", "gate"]).round(3))
        reading.display_options["display.max_colwidth"] = 120
    else:
        reading.say("no testbed is calibrated yet: run scripts/calibrate.py (make calibrate)")
    passes, failing = calibrated(results)
    passed = passed_gates(results)
    reading.glue["gates_result"] = "passes all three gates" if passes else f"fails {', '.join(failing)}"
    if companion in passed.index:  # G2 needs density runs on it: only G1 and G3 are measured
        wide_failing = [gate for gate, holds in passed.loc[companion][["G1", "G3"]].items() if not holds]
        reading.glue["wide_gates_result"] = f"fails {', '.join(wide_failing)}" if wide_failing else "passes G1 and G3"
    else:
        reading.glue["wide_gates_result"] = f"is not calibrated yet (scripts/calibrate.py --model {companion})"
    testbed = table[table.model == results.model] if len(table) else table

    def value(gate, words, form):
        row = testbed[(testbed.gate == gate) & testbed.claim.str.contains(words, regex=False)] if len(testbed) else []
        return "not measured" if len(row) == 0 or pd.isna(row.value.iloc[0]) else format(float(row.value.iloc[0]), form)

    written = (
        testbed[(testbed.gate == "G1") & testbed.claim.str.contains("reliability", regex=False)] if len(testbed) else []
    )
    reading.glue["g1_reliability"] = f"{written.value.min():.2f}" if len(written) else "not measured"
    reading.glue["g2_reliability_lower"] = value("G2", "reliability", "+.3f")
    reading.glue["g2_locality_upper"] = value("G2", "locality", "+.3f")
    reading.glue["g3_share"] = value("G3", "share of the total effect", ".2f")
    return reading


def mechanism_reading(results: DensityResults) -> Reading:
    """Per calibrated model: each layer's MLP share of the total effect at the subject's last token and at the
    prompt's last token, the edited band shaded."""
    fig, axes = plt.subplots(1, len(results.calibrations), figsize=(5 * len(results.calibrations), 3.2), sharey=True)
    axes = axes if len(results.calibrations) > 1 else [axes]
    for ax, (name, record) in zip(axes, results.calibrations.items()):
        summary = results.calibration_table(name, "trace_summary")
        if summary is None:
            ax.set_title(f"{name}: not traced")
            continue
        for position, style in (("subject last", "-o"), ("last", "--s")):
            part = summary[(summary.site == "mlp") & (summary.position == position)]
            ax.plot(part.layer, part.share_of_total, style, label=f"MLP at the {position} token")
        band = record["band"]
        ax.axvspan(min(band) - 0.4, max(band) + 0.4, color="grey", alpha=0.15, label="edited band")
        ax.set(title=name, xlabel="layer", ylabel="share of the total effect restored")
    axes[0].legend(fontsize=8)
    plt.tight_layout()
    return Reading(parts=[fig])


def subject_last_hidden_share(summary: pd.DataFrame) -> float:
    """The largest share of the total effect that restoring the whole hidden state at the subject's last
    token, after any one layer, brings back (a ``model.tracing.trace_summary``; NaN without hidden sites)."""
    hidden = summary[(summary.site == "hidden") & (summary.position == "subject last")]
    return float(hidden.share_of_total.max()) if len(hidden) else float("nan")


PROBE_COLUMNS = ["layers", "band", "peak layer", "band share", "hidden share", "G3 passed", "final loss"]
PROBE_COLUMNS += ["training hours", "traced facts", "commit"]


def depth_probes(folder) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The depth probes of ``scripts/probe_depth.py`` under ``folder`` (``L<layers>/``): one row per probe
    (layers, band, the layer of the largest MLP effect at the subject's last token, the band's share of the
    total effect, the largest share any layer's whole hidden state at the subject's last token restores,
    whether G3 passed, the final training loss, training hours, traced facts, commit), and each probe's
    per-layer MLP share of the total effect at the subject's last token. Both empty when no probe has run."""
    found = store.read_trace_records(folder, "probe.json", "L*")
    for info, _ in found:
        if not info["folder"][1:].isdigit():
            raise ValueError(
                f"{Path(folder) / info['folder']}: a probe folder is named L<layers>, not {info['folder']}"
            )
    rows, curves = [], []
    for info, summary in sorted(found, key=lambda item: int(item[0]["folder"][1:])):
        at_subject = summary[summary.position == "subject last"]
        band, mlp = at_subject[at_subject.site == "mlp band"], at_subject[at_subject.site == "mlp"]
        if band.empty or mlp.empty:
            raise ValueError(f"{Path(folder) / info['folder'] / 'trace_summary.csv'} has no per-layer MLP or band rows")
        rows.append(
            {
                "layers": info["layers"],
                "band": info["band"],
                "peak layer": int(mlp.set_index("layer").indirect_effect.idxmax()),
                "band share": float(band.share_of_total.iloc[0]),
                "hidden share": subject_last_hidden_share(summary),
                "G3 passed": info["G3"]["passed"],
                "final loss": info["final_loss"],
                "training hours": info["training_seconds"] / 3600,
                "traced facts": info["traced_facts"],
                "commit": info["commit"][:8],
            }
        )
        curves.append(mlp[["layer", "share_of_total"]].assign(layers=info["layers"]))
    if not rows:
        return pd.DataFrame(columns=PROBE_COLUMNS), pd.DataFrame(columns=["layer", "share_of_total", "layers"])
    return pd.DataFrame(rows, columns=PROBE_COLUMNS), pd.concat(curves, ignore_index=True)


def shipped_hidden_shares(results: DensityResults) -> dict[str, float | None]:
    """Per calibrated model: ``subject_last_hidden_share`` of its calibration trace (None: not traced)."""
    shares = {}
    for name in results.calibrations:
        summary = results.calibration_table(name, "trace_summary")
        shares[name] = None if summary is None else subject_last_hidden_share(summary)
    return shares


def depth_reading(results: DensityResults) -> Reading:
    """The depth probes beside the testbed's trace, and what the section says of the deepest."""
    reading = Reading()
    for name, share in shipped_hidden_shares(results).items():
        reading.glue[f"hidden_share_{glue_key(name)}"] = "not traced" if share is None else f"{share:.3f}"
    probes, shares = depth_probes(results.depth_root)
    if probes.empty:
        reading.say(f"no depth probe under {results.depth_root}: run scripts/probe_depth.py --layers 8")
        for key in ("depth_reading", "depth_probe_layers", "depth_probe_hours", "depth_probe_loss"):
            reading.glue[key] = "(not run in this checkout)"
    else:
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        shipped = results.calibration_table(results.model, "trace_summary")
        if shipped is not None:
            part = shipped[(shipped.site == "mlp") & (shipped.position == "subject last")]
            ax.plot(part.layer, part.share_of_total, "-o", label=f"{results.model} (shipped, {len(part)} layers)")
        for layers, part in shares.groupby("layers"):
            ax.plot(part.layer, part.share_of_total, "-s", label=f"{layers}-layer probe")
        ax.set(xlabel="layer", ylabel="share of the total effect restored", title="MLP at the subject's last token")
        ax.legend(fontsize=8)
        plt.tight_layout()
        reading.plot(fig)
        reading.table("probes", probes.round(3))
        deepest = probes.iloc[-1]
        peak_share = shares[shares.layers == deepest["layers"]].share_of_total.max()
        reading.glue["depth_reading"] = (
            f"{'passes' if deepest['G3 passed'] else 'fails'} G3: its largest MLP effect at the subject's last token "
            f"is at layer {deepest['peak layer']} ({peak_share:.3f} of the total effect), the band {deepest['band']} "
            f"restores {deepest['band share']:.3f} of it together, and the whole hidden state at the subject's last "
            f"token at most {deepest['hidden share']:.3f}"
        )
        reading.glue["depth_probe_layers"] = str(deepest["layers"])
        reading.glue["depth_probe_hours"] = f"{deepest['training hours']:.1f}"
        reading.glue["depth_probe_loss"] = f"{deepest['final loss']:.3f}"
    training = json.loads((POCKET_DIRECTORY / "model" / "training.json").read_text())  # the small shipped model
    reading.glue["shipped_loss"] = f"{training['history'][-1]['loss']:.3f}"
    return reading


def position_traces(folder) -> pd.DataFrame:
    """The traces of ``scripts/trace_positions.py`` under ``folder`` (``<model>/``), one row per model: its
    layers, traced facts, the subjects' mean token count, the share of the total effect that restoring the
    whole hidden state after the first layer brings back at the subject's first token, its last token and all
    its tokens together, and the first layer after which the prompt's last token alone brings back at least
    half (``half at last from``: NaN if never). Empty when nothing has been traced."""
    from langedit_mini.model.tracing import ALL_POSITIONS

    columns = ["model", "layers", "traced facts", "subject tokens", "first token", "last token", "whole subject"]
    columns += ["half at last from"]
    rows = []
    for info, summary in store.read_trace_records(folder, "positions.json"):
        hidden = summary[summary.site == "hidden"].pivot(index="layer", columns="position", values="share_of_total")
        missing = set(ALL_POSITIONS) - set(hidden.columns)
        if missing:
            raise ValueError(f"{Path(folder) / info['folder']}: no hidden-state rows at {sorted(missing)}")
        first = hidden.index.min()
        half = hidden.index[hidden["last"] >= 0.5]
        rows.append(
            {
                "model": info["model"],
                "layers": info["layers"],
                "traced facts": info["traced_facts"],
                "subject tokens": info["subject_tokens_mean"],
                "first token": hidden.loc[first, "subject first"],
                "last token": hidden.loc[first, "subject last"],
                "whole subject": hidden.loc[first, "subject span"],
                "half at last from": int(half.min()) if len(half) else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=columns).sort_values("layers", ignore_index=True)


def positions_reading(results: DensityResults) -> Reading:
    """Where each traced model reads the subject from (table, one panel per model) and the section's values."""
    reading = Reading()
    positions = position_traces(results.positions_root)
    if positions.empty:
        reading.say(f"no position trace under {results.positions_root}: run scripts/trace_positions.py")
        for key in ("positions_reading", "positions_deep_reading", "positions_half_at_last"):
            reading.glue[key] = "(not traced in this checkout)"
    else:
        reading.table("positions", positions.set_index("model").round(3))
        fig, axes = plt.subplots(1, len(positions), figsize=(3.4 * len(positions), 3), sharey=True, squeeze=False)
        summaries = {info["model"]: s for info, s in store.read_trace_records(results.positions_root, "positions.json")}
        for ax, name in zip(axes[0], positions.model):
            hidden = summaries[name][summaries[name].site == "hidden"]
            for position, part in hidden.groupby("position"):
                ax.plot(part.layer, part.share_of_total, "-o", markersize=3, label=position)
            ax.set(title=name, xlabel="layer (hidden state restored after it)")
        axes[0][0].set_ylabel("share of the total effect")
        axes[0][0].legend(fontsize=7)
        plt.tight_layout()
        reading.plot(fig)
        own = positions[positions.model == results.model]
        small = own.iloc[0] if len(own) else positions.iloc[0]
        reading.glue["positions_reading"] = (
            f"the {small.model} model's subjects are {small['subject tokens']:.1f} tokens long on average; after the "
            f"first layer, restoring all of them brings back {small['whole subject']:.2f} of the effect, the last "
            f"one alone {small['last token']:.2f} and the first one {small['first token']:.2f}"
        )
        deepest = positions.iloc[-1]  # sorted by depth
        deep = summaries[deepest.model]
        deep = deep[(deep.site == "hidden") & (deep.layer == 1)].set_index("position").share_of_total
        reading.glue["positions_deep_reading"] = (
            f"in the {deepest.model} model ({deepest['layers']} layers), after layer 1 all the subject's tokens "
            f"together still bring back {deep['subject span']:.2f}, its first token {deep['subject first']:.2f} and "
            f"its last {deep['subject last']:.2f}"
        )
        reading.glue["positions_half_at_last"] = ", ".join(
            f"{m}: after layer {h}" for m, h in zip(positions.model, positions["half at last from"])
        )
    distinct = results.calibration_table(results.model, "distinctness")
    reading.glue["subjects_last_tokens"] = (
        f"the {int(distinct.subjects.iloc[0])} English subjects of the key-distinctness measure end in "
        f"{int(distinct.distinct_last_tokens.iloc[0])} different tokens"
        if distinct is not None
        else "(key distinctness not measured)"
    )
    return reading


def keys_reading(results: DensityResults) -> Reading:
    """How alike the edit keys of different subjects are per layer, and how much of their energy lies in the
    null space of C0 per cut, for every calibrated model."""
    reading = Reading(parts=["How alike are the edit keys of different subjects, per layer (100 English subjects)?"])
    record = results.calibrations.get(results.model)
    band = record["band"] if record else []
    distinct = [
        table.assign(model=name)
        for name in results.calibrations
        if (table := results.calibration_table(name, "distinctness")) is not None
    ]
    if distinct:
        distinctness = pd.concat(distinct)
        reading.table("distinctness", distinctness.set_index(["model", "layer"]).round(3))
        edited = distinctness[(distinctness.model == results.model) & distinctness.layer.isin(band)]
        reading.glue["key_cosine"] = f"{edited.mean_cosine.mean():.2f}" if len(edited) else "not measured"
    else:
        reading.say("    not measured yet (scripts/calibrate.py)")
        reading.glue["key_cosine"] = "not measured"
    coverage = [
        table.assign(model=name)
        for name in results.calibrations
        if (table := results.calibration_table(name, "coverage")) is not None
    ]
    reading.say(
        "Share of the edit keys' energy in the null space of C0, per cut (preserved keys: the cut's share by "
        "construction)"
    )
    if coverage:
        reading.table("coverage", pd.concat(coverage).set_index(["model", "layer", "cut"]).round(3))
    else:
        reading.say("    not measured yet")
    return reading


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
    on_disk = runs_on_disk(results.points, is_current)
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
        final = results.points[results.paper]["evaluations"]
        final = final[(final.metric == "reliability") & (final.after_batch == final.after_batch.max())]
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
