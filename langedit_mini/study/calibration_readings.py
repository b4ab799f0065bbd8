"""What a testbed's calibration shows: the gates G1 to G3 of the testbed and its companions, the causal
traces behind G3, the depth probes and the position traces that explain a failing G3, and how alike the edit
keys are.

Each ``*_reading`` takes the loaded results of a chapter (``density_chapter.DensityResults``: the
calibrations, the study's final scores at the paper's density for G2, the exploration folders) and returns
a ``readings.Reading``; ``depth_probes`` and ``position_traces`` read the explorations' files into tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import pandas as pd

from langedit_mini.data.datasets import POCKET_DIRECTORY
from langedit_mini.study import store
from langedit_mini.study.density import PAPER_DENSITY
from langedit_mini.study.findings import glue_key
from langedit_mini.study.readings import Reading
from langedit_mini.study.verdicts import gate_table

if TYPE_CHECKING:  # the results a chapter loaded; only named in annotations
    from langedit_mini.study.density_chapter import DensityResults


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
            f"{record['band']}, batch {record['batch_size']}, {record.get('traced_facts', 'no')} traced facts"
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
    if len(passed):
        reading.table("passed", passed)  # per model and gate: does every claim hold?
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
