"""The readings of the chapter "Real LLMs on your CPU": which weights, what each model knows and how it is asked,
where it reads a fact (the causal traces), what one batch costs, and the gates, from the committed results.

Each ``*_reading`` returns a ``readings.Reading`` (printed lines, tables, a figure) with the values the chapter's
prose quotes, glued under names that carry the model (``smollm2_135m_...``); a result not committed yet reads
"not measured yet" and the command that makes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from langedit_mini.model.tracing import window_around
from langedit_mini.study import store
from langedit_mini.study.readings import Reading


def key(model: str) -> str:
    """A model's name in a glue key: ``gemma-3-270m`` -> ``gemma_3_270m``."""
    return model.replace("-", "_").replace(".", "_")


def weights_reading(loaded: dict) -> Reading:
    """``loaded``: model name -> (model, tokenizer, weights record, seconds to load). One row per model: the
    weights (file, SHA-256, package), the shape (layers, hidden, d_k of the edited matrices, vocabulary,
    parameters), the architecture entry and how long the load took."""
    from langedit_mini.model.architecture import detect_architecture, key_dimension, num_layers

    rows = []
    for name, (model, tokenizer, record, seconds) in loaded.items():
        architecture = detect_architecture(model)
        rows.append(
            {
                "model": name,
                "weights": record.get("model", record.get("source")),
                "file": record.get("file", ""),
                "SHA-256": record.get("sha256", "")[:16],
                "layers": num_layers(model, architecture),
                "hidden": model.config.get_text_config().hidden_size,
                "d_k": key_dimension(model, architecture, 0),
                "vocabulary": len(tokenizer),
                "parameters (M)": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
                "architecture": architecture.name,
                "norm before the residual": architecture.mlp_out_norm is not None,
                "load (s)": round(seconds, 1),
            }
        )
    table = pd.DataFrame(rows).set_index("model")
    return Reading(parts=[("weights", table)])


def knowledge_reading(root, models) -> Reading:
    """What each model knows per source and language in each prompt format (greedy exact match, and teacher-forced
    accuracy in the format chosen), and the format chosen (``study.knowledge``; ``results/knowledge/<model>/``)."""
    reading = Reading()
    for model in models:
        folder = Path(root) / model
        if not (folder / "knowledge.json").exists():
            reading.say(f"{model}: not measured yet (python scripts/measure_knowledge.py --model {model} --apply)")
            reading.glue[f"{key(model)}_format"] = "not measured yet"
            continue
        record = store.read_json(folder / "knowledge.json", required=("chosen", "per_language", "commit"))
        table = pd.read_csv(folder / "knowledge.csv")
        chosen = record["chosen"]
        reading.say(
            f"{model}: {record['per_language']} questions per source and language, measured at commit "
            f"{record['commit'][:8]} ({record['seconds'] / 60:.0f} min); asked: {chosen}"
        )
        exact = table.pivot_table(index=["source", "lang"], columns="form", values="exact_match")
        reading.table(f"{model} exact match", exact[[f for f in record["forms"] if f in exact.columns]].round(2))
        facts = table[(table.form == chosen) & (table.source == "pocket facts")]
        nq = table[table.source == "mzsre nq"].groupby("form").exact_match.mean()
        glued = {
            f"{key(model)}_format": chosen,
            f"{key(model)}_known_en": f"{facts[facts.lang == 'en'].exact_match.mean():.2f}",
            f"{key(model)}_known_other": f"{facts[facts.lang != 'en'].exact_match.mean():.2f}",
            f"{key(model)}_nq_best": f"{nq.max():.2f}",
        }
        for form in record["forms"]:
            glued[f"{key(model)}_em_{form.replace('-', '_')}"] = f"{table[table.form == form].exact_match.mean():.3f}"
        reading.glue |= glued
    return reading


TRACE_GLUE = ("peak", "peak_share", "band_share", "window", "window_share", "traced", "g3")


def trace_reading(root, models) -> Reading:
    """Per model: each layer's MLP share of the total effect at the subject's last token and at the prompt's last
    token, ROME's window around each layer at the subject's last token, and the hidden state there; the edited
    band shaded; with the layer of the largest MLP effect and what the band restores together (``trace_row``)."""
    traced = {m: store.read_calibration(Path(root) / m) for m in models}
    traced = {m: r for m, r in traced.items() if r is not None and "G3" in r["gates"]}
    reading = Reading()
    for model in models:
        if model not in traced:
            reading.say(f"{model}: not traced yet (python scripts/calibrate.py --model {model} --parts trace)")
            reading.glue |= {f"{key(model)}_{glued}": "not traced yet" for glued in TRACE_GLUE}
    if not traced:
        return reading
    fig, axes = plt.subplots(1, len(traced), figsize=(5.5 * len(traced), 3.4), squeeze=False)
    rows = []
    for ax, (model, record) in zip(axes[0], traced.items()):
        summary = store.read_calibration_table(Path(root) / model, "trace_summary")
        curves = (
            ("mlp", "subject last", "-o", "MLP at the subject's last token"),
            ("mlp window", "subject last", "-", f"MLP window of {record.get('window')} there"),
            ("hidden", "subject last", ":", "hidden state there"),
            ("mlp", "last", "--s", "MLP at the prompt's last token"),
        )
        for site, position, style, label in curves:
            part = summary[(summary.site == site) & (summary.position == position)]
            if len(part):
                ax.plot(part.layer, part.share_of_total, style, ms=3, label=label)
        band = record["band"]
        ax.axvspan(min(band) - 0.4, max(band) + 0.4, color="grey", alpha=0.15, label="edited band")
        ax.set(title=f"{model} ({record['traced_facts']} facts)", xlabel="layer", ylabel="share of the total effect")
        row = trace_row(model, record, summary)
        rows.append(row)
        reading.glue |= {
            f"{key(model)}_peak": str(row["MLP peak layer"]),
            f"{key(model)}_peak_share": f"{row['MLP peak share']:.2f}",
            f"{key(model)}_band_share": _two_places(row["band's share"]),
            f"{key(model)}_window": row["peak window without layer 0"] or "n/a",
            f"{key(model)}_window_share": _two_places(row["its share"]),
            f"{key(model)}_traced": str(record["traced_facts"]),
            f"{key(model)}_g3": "passes" if row["G3 passed"] else "fails",
        }
    axes[0][0].legend(fontsize=7)
    plt.tight_layout()
    reading.plot(fig)
    reading.table("traces", pd.DataFrame(rows).set_index("model").round(3))
    return reading


WRITE_GLUE = ("g1", "g1_scores", "g1_100", "g1_commit", "g1_unreached")


def write_reading(root, models) -> Reading:
    """Gate G1 per model: one batch per language written by MEMIT and AlphaEdit into the unedited model with the
    settings of the model's hyperparameter file when it was measured (``scripts/calibrate.py --parts write``),
    the mean teacher-forced scores per method, metric and language, the gate's claims, the target values left
    unreached by the value step, and the English batch of 100 beside it (information, no gate)."""
    reading = Reading()
    for model in models:
        folder = Path(root) / model
        record = store.read_calibration(folder)
        if record is None or "G1" not in record["gates"]:
            reading.say(f"{model}: G1 not run yet (python scripts/calibrate.py --model {model} --parts write)")
            reading.glue |= {f"{key(model)}_{glued}": "not run yet" for glued in WRITE_GLUE}
            continue
        gate = record["gates"]["G1"]
        scores = store.read_calibration_table(folder, "write")
        means = scores.pivot_table(index=["method", "metric"], columns="lang", values="teacher_forced", aggfunc="mean")
        per_method = scores.groupby(["method", "metric"]).teacher_forced.mean()
        means["all"] = per_method
        made = record.get("made", {}).get("write", record)
        reading.say(
            f"{model}: G1 {'passes' if gate['passed'] else 'fails'}; batches of {record['batch_size']} per language, "
            f"band {_layers(record['band'])}, commit {str(made.get('commit'))[:7]}"
        )
        reading.table(f"G1 {model}: mean teacher-forced score per language", means.round(3))
        claims = pd.DataFrame(gate["claims"])[["claim", "value", "bound", "holds"]]
        reading.table(f"G1 {model}: the gate's claims", claims.round(3).set_index("claim"))
        unreached = _unreached(scores)
        measured_100 = record.get("batch_of_100", True)  # a run without it leaves an older file unread
        hundred = store.read_calibration_table(folder, "write_100") if measured_100 else None
        reading.glue |= {
            f"{key(model)}_g1": "passes" if gate["passed"] else "fails",
            f"{key(model)}_g1_scores": _method_means(per_method, places=3),  # a mean near its bound stays off it
            f"{key(model)}_g1_100": (
                _method_means(hundred.groupby(["method", "metric"]).teacher_forced.mean())
                if hundred is not None
                else "not measured"
            ),
            f"{key(model)}_g1_commit": str(made.get("commit"))[:7],
            f"{key(model)}_g1_unreached": ", ".join(
                f"{method} {row.unreached} of {row.edits}" for method, row in unreached.iterrows()
            ),
        }
    return reading


#: G1's measurement made again with other settings, beside the gate (information, never a gate): the folder
#: under the model's calibration folder -> what it changes
WRITE_DIAGNOSTICS = {
    "g1_starting": "the file's starting values (no tuned settings), the reference's 25 value steps",
    "g1_starting_steps": "the file's starting values, the value step allowed the steps the value-step sweep chose "
    "(or the most it tried, where it chose none)",
}
#: probes of G1's batches that apply to some models only, read where their folder holds a record
#: (``scripts/probe_value_site.py``: a model whose MLP output is normalised)
WRITE_PROBES = {
    "g1_residual_values": "as g1_starting_steps, with the value step's delta added to the residual stream after "
    "block L instead of to the MLP output before its norm (the write unchanged)",
}
#: the diagnostic each probe changes one thing of: the probe's scores are paired with its scores, edit by edit
PROBE_BASELINE = "g1_starting_steps"


def write_diagnostics_reading(root, model: str, diagnostics=None) -> Reading:
    """G1's batches written again with other settings (``WRITE_DIAGNOSTICS``; ``scripts/calibrate.py --hparams
    <file> --output <folder> --parts write``), beside the gate and never a gate: per run and method, the settings
    it wrote with (the record's ``written_with``, or the ``hparams.json`` kept beside an older record), the mean
    teacher-forced scores, the reliability per language, the target values left unreached, and whether G1's
    bounds would hold. By default ``WRITE_DIAGNOSTICS`` (a missing one says "not run yet") and those of
    ``WRITE_PROBES`` that were run for the model."""
    from langedit_mini.study.calibration import written_with

    optional = set(WRITE_PROBES) if diagnostics is None else set()  # a probe not run for the model goes unsaid
    diagnostics = WRITE_DIAGNOSTICS | WRITE_PROBES if diagnostics is None else diagnostics
    reading, rows, read = Reading(), [], {}
    for name, meaning in diagnostics.items():
        folder = Path(root) / model / name
        record = store.read_calibration(folder)
        if record is None and name in optional:
            continue
        if record is None or "G1" not in record["gates"]:
            reading.say(f"{model}, {name} ({meaning}): not run yet")
            reading.glue |= {f"{key(model)}_{name}_{glued}": "not run yet" for glued in ("scores", "zh", "unreached")}
            continue
        settings = record.get("written_with") or written_with(str(folder / "hparams.json"))
        scores = read[name] = store.read_calibration_table(folder, "write")
        per_method = scores.groupby(["method", "metric"]).teacher_forced.mean()
        reliability = scores[scores.metric == "reliability"].pivot_table(
            index="method", columns="lang", values="teacher_forced", aggfunc="mean"
        )
        unreached = _unreached(scores)
        claims = pd.DataFrame(record["gates"]["G1"]["claims"])
        for method in per_method.index.get_level_values("method").unique():
            own = settings[method]
            rows.append(
                {"run": name, "method": method, "value steps": own["values"]["steps"]}
                | {"delta added to": _value_site(record, folder, own)}
                | {"settings": _own_settings(method, own["settings"])}
                | {metric: per_method[method, metric] for metric in ("reliability", "generality", "locality")}
                | {f"reliability {lang}": value for lang, value in reliability.loc[method].items()}
                | {name: int(unreached.loc[method, name]) for name in ("unreached", "edits")}
                | {"G1 bounds hold": bool(claims[claims.claim.str.startswith(method + " ")].holds.all())}
            )
        reading.glue |= {
            f"{key(model)}_{name}_scores": _method_means(per_method, places=3),
            f"{key(model)}_{name}_zh": ", ".join(f"{m} {v:.2f}" for m, v in reliability.get("zh", {}).items()),
            f"{key(model)}_{name}_unreached": ", ".join(f"{m} {row.unreached}" for m, row in unreached.iterrows()),
        }
        dirty = " with uncommitted changes" if record.get("uncommitted_changes") else ""
        reading.say(f"{model}, {name}: {meaning}; commit {str(record.get('commit'))[:7]}{dirty}")
    if rows:
        table = pd.DataFrame(rows).set_index(["run", "method"])
        reading.table(f"G1's batches with other settings on {model} (information, not the gate)", table.round(3))
    for name in WRITE_PROBES:
        if name in read and PROBE_BASELINE in read:
            paired = probe_change(read[PROBE_BASELINE], read[name])
            reading.say(f"{model}: {name} minus {PROBE_BASELINE}, teacher-forced, paired by edit (95% interval)")
            reading.table(f"{name} minus {PROBE_BASELINE} on {model}: teacher-forced, paired by edit", paired)
            reading.glue[f"{key(model)}_{name}_paired"] = _paired_text(paired)
    return reading


#: per model, G1's batches written with the hyperparameter file's starting values and the value step of the gate's
#: own run (its allowance and site): the gate's run minus that one is what the tuned settings change, edit by edit
SETTINGS_BASELINE = {"smollm2-135m": "g1_starting", "gemma-3-270m": "g1_residual_values"}


def settings_change_reading(root, model: str, baseline: str | None = None) -> Reading:
    """What the tuned settings change in G1's batches: the gate's run (the file's tuned settings) minus the same
    batches written at the file's starting values (``baseline``, by default ``SETTINGS_BASELINE[model]``), paired
    by edit with 95% intervals (``probe_change``), glued as ``<model>_g1_tuned_paired``. Where both records name
    their value step (``written_with``), an allowance or site that differs is an error: the difference would not be
    the settings' alone. Either run missing says "not run yet"."""
    reading, glued = Reading(), f"{key(model)}_g1_tuned_paired"
    baseline = baseline or SETTINGS_BASELINE.get(model)
    folder = Path(root) / model
    gate = store.read_calibration(folder)
    starting = store.read_calibration(folder / baseline) if baseline else None
    if any(record is None or "G1" not in record["gates"] for record in (gate, starting)):
        reading.say(f"{model}: the tuned settings against the starting values: not run yet")
        reading.glue[glued] = "not run yet"
        return reading
    tuned_with, starting_with = gate.get("written_with"), starting.get("written_with")
    for method in sorted(set(tuned_with or {}) & set(starting_with or {})):
        steps = [with_[method]["values"]["steps"] for with_ in (tuned_with, starting_with)]
        sites = [
            _value_site(record, where, with_[method])
            for record, where, with_ in ((gate, folder, tuned_with), (starting, folder / baseline, starting_with))
        ]
        if steps[0] != steps[1] or sites[0] != sites[1]:
            raise ValueError(
                f"{model}: G1's run and {baseline} used different value steps for {method} "
                f"({steps[0]} steps at {sites[0]} against {steps[1]} at {sites[1]}): not the settings' change alone"
            )
    paired = probe_change(
        store.read_calibration_table(folder / baseline, "write"), store.read_calibration_table(folder, "write")
    )
    reading.say(
        f"{model}: G1 with the tuned settings minus {baseline} (the starting values), paired by edit (95% interval)"
    )
    reading.table(f"the tuned settings minus the starting values on {model}: teacher-forced, paired by edit", paired)
    reading.glue[glued] = _paired_text(paired)
    return reading


def _paired_text(paired: pd.DataFrame) -> str:
    """``probe_change``'s table as one line: ``MEMIT reliability +0.200 ± 0.000, generality ...; AlphaEdit ...``."""
    return "; ".join(
        f"{method} " + ", ".join(f"{metric} {cell}" for metric, cell in row.items())
        for method, row in paired.iterrows()
    )


def probe_change(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Per method and metric (reliability, generality, locality), the mean change of the teacher-forced score from
    ``before`` to ``after`` (two G1 score tables of the same edits), paired by edit, with its 95% interval. Edits
    that are not the same in both are an error, never dropped."""
    from langedit_mini.study.intervals import format_interval, interval

    keys, metrics = ["method", "lang", "fact_id", "metric"], ("reliability", "generality", "locality")
    pick = [before[before.metric.isin(metrics)], after[after.metric.isin(metrics)]]
    merged = pick[0].merge(pick[1], on=keys, how="outer", suffixes=("_before", "_after"), indicator=True)
    unpaired = merged[merged["_merge"] != "both"]
    if len(unpaired):
        raise ValueError(f"the two runs did not write the same edits: {len(unpaired)} scores have no partner")
    cells = {}
    for (method, metric), group in merged.groupby(["method", "metric"]):
        change = group.teacher_forced_after - group.teacher_forced_before
        cells.setdefault(method, {})[metric] = format_interval(*interval(change), signed=True)
    return pd.DataFrame(cells).T.reindex(columns=list(metrics)).rename_axis("method")


def _value_site(record: dict, folder: Path, own: dict) -> str:
    """Where a G1 record's value step added delta: the probe's site, or ``ValueSettings.site`` as the record (or the
    hyperparameter file kept beside an older one) names it. Made before the setting existed: "the package's site"
    (then the MLP output before its norm on Gemma, the residual stream elsewhere)."""
    if record.get("probe"):
        return record["probe"]["value_site"]
    if record.get("written_with"):
        return own["values"].get("site", "the package's site")
    # ``own`` came from the kept file through today's defaults, which fill in a site the file never named
    kept = json.loads((folder / "hparams.json").read_text(encoding="utf-8"))
    return kept.get("values", {}).get("site", "the package's site")


def _unreached(scores: pd.DataFrame) -> pd.DataFrame:
    """Per method of G1's scores: the target values the value step left unreached (one count per batch, on each of
    its rows) and the edits, summed over the languages' batches."""
    batches = scores.groupby(["method", "lang"]).agg(unreached=("unreached", "first"), edits=("request", "nunique"))
    return batches.groupby("method").sum()


def _own_settings(method: str, settings: dict) -> str:
    """A method's main settings as text (the ones the tuning varies)."""
    names = {"MEMIT": ("mom2_weight",), "AlphaEdit": ("leftover_fraction", "tau", "alpha")}.get(method, tuple(settings))
    return ", ".join(f"{name} {settings[name]:g}" for name in names if settings.get(name) is not None)


def value_steps_reading(root, models, sweep: str = "value_steps") -> Reading:
    """How many steps the value step needs per model (``scripts/sweep_value_steps.py``;
    ``results/calibration/<model>/<sweep>/``): the share of each language's tuning targets reached within
    each allowance, the median target length in tokens, where delta was added, and the allowance the rule chooses.
    Glued as ``<model>_<sweep>_chosen``, ``_at_25``, ``_tokens`` and ``_requests``."""
    reading = Reading()
    for model in models:
        folder = Path(root) / model / sweep
        path = folder / "value_steps.json"
        glued = [f"{sweep}_{name}" for name in ("chosen", "at_25", "tokens", "requests")]
        if not path.exists():
            reading.say(f"{model}, {sweep}: not measured yet (python scripts/sweep_value_steps.py --model {model})")
            reading.glue |= {f"{key(model)}_{name}": "not measured yet" for name in glued}
            continue
        record = store.read_json(path)
        curve = pd.read_csv(folder / "curve.csv")
        table = curve.pivot(index="lang", columns="steps", values="reached")
        table.columns = [f"reached within {steps}" for steps in table.columns]
        tokens = curve.groupby("lang").median_target_tokens.first()
        table["median target tokens"] = tokens
        order = [lang for lang in record["languages"] if lang in table.index] + ["all"]
        table = table.loc[order]
        chosen = record["chosen"]
        site = record.get("values", {}).get("site", "the package's site")
        reading.say(
            f"{model}, {sweep}: {record['batches']} batches of {record['batch_size']} tuning requests per language, "
            f"allowed {record['most']} steps, delta added to {site}; commit {str(record.get('commit'))[:7]}"
        )
        reading.table(f"value step on {model} ({sweep}): share of targets reached", table.round(2))
        at_25 = curve[(curve.steps == 25) & (curve.lang != "all")].set_index("lang").reached
        requests = curve[curve.lang == "all"].requests.iloc[0]
        reading.glue |= {
            f"{key(model)}_{sweep}_chosen": (
                f"{chosen['steps']} steps (every language reaches at least {chosen['share']:.0%}; the lowest "
                f"{chosen['worst']:.2f})"
                if chosen["met"]
                else f"none of the allowances tried ({chosen['steps']} steps reach {chosen['worst']:.2f} in the "
                f"worst language, under {chosen['share']:.0%})"
            ),
            f"{key(model)}_{sweep}_at_25": ", ".join(f"{lang} {at_25[lang]:.2f}" for lang in order[:-1]),
            f"{key(model)}_{sweep}_tokens": ", ".join(f"{lang} {tokens[lang]:g}" for lang in order[:-1]),
            f"{key(model)}_{sweep}_requests": str(int(requests)),
        }
    return reading


def _method_means(means: pd.Series, places: int = 2) -> str:
    """``(method, metric) -> mean`` as ``MEMIT reliability 0.73, generality 0.70, locality 0.95; AlphaEdit ...``
    (``places`` decimals: three where a value near a bound must not round onto it)."""
    parts = []
    for method in means.index.get_level_values("method").unique():
        metrics = [m for m in ("reliability", "generality", "locality") if (method, m) in means.index]
        parts.append(f"{method} " + ", ".join(f"{m} {means[method, m]:.{places}f}" for m in metrics))
    return "; ".join(parts)


def trace_row(model: str, record: dict, summary: pd.DataFrame) -> dict:
    """What one model's trace says at the subject's last token: the layer whose MLP restores the most, the best
    window of layers (and the best that leaves out layer 0, whose MLP at a noised token restores much of the token
    itself), what the edited band restores together, and the gate G3 judged on it."""
    at_subject = summary[summary.position == "subject last"]
    mlp = at_subject[at_subject.site == "mlp"].set_index("layer")
    window = at_subject[at_subject.site == "mlp window"].set_index("layer")
    together = at_subject[at_subject.site == "mlp band"]
    size, layer_count = record.get("window") or 1, int(mlp.index.max()) + 1
    later = window[[0 not in window_around(centre, size, layer_count) for centre in window.index]]
    centre = int(later.share_of_total.idxmax()) if len(later) else None
    return {
        "model": model,
        "traced facts": record["traced_facts"],
        "MLP peak layer": int(mlp.share_of_total.idxmax()),
        "MLP peak share": float(mlp.share_of_total.max()),
        "window peak centre": int(window.share_of_total.idxmax()) if len(window) else None,
        "window peak share": float(window.share_of_total.max()) if len(window) else None,
        "peak window without layer 0": None if centre is None else _layers(window_around(centre, size, layer_count)),
        "its share": None if centre is None else float(later.share_of_total.max()),
        "band": record["band"],
        "band's share": float(together.share_of_total.iloc[0]) if len(together) else None,
        "G3 passed": record["gates"]["G3"]["passed"],
    }


def _two_places(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _layers(layers) -> str:
    """``[4, 5, 6, 7, 8, 9]`` -> ``"4-9"``."""
    return f"{min(layers)}-{max(layers)}" if len(layers) > 1 else str(layers[0])


SPEED_GLUE = ("per_edit", "values_speedup", "edits", "per_edit_goal", "speedup_goal", "values_share")
# The goals set for a batch on the CPU testbed before it was measured: seconds per edit all-in (SmolLM2 only: Gemma's
# 262,144-token head makes its forward passes dearer), and how many times faster the target values must be found
# than by the reference recipe.
PER_EDIT_GOAL = {"smollm2-135m": 1.5}
SPEEDUP_GOAL = 5.0


def speed_reading(path, models) -> Reading:
    """One batch on each model by stage, and the reference recipe's target values (``benchmarks/real_llm_batch.py``);
    a model not in the file reads "not measured yet" in every value the prose quotes."""
    path = Path(path)
    reading = Reading()
    rows = pd.DataFrame(columns=["model"]).set_index("model")
    if path.exists():
        data = json.loads(path.read_text())
        rows = pd.DataFrame(data["rows"]).set_index("model")
        reading.say(f"measured at commit {data['commit']} on {data['date'][:10]}, {data['threads']} threads")
        reading.table("speed", rows.round(2))
    for model in models:
        if model not in rows.index:
            reading.say(f"{model}: not measured yet (python benchmarks/real_llm_batch.py --models {model})")
            reading.glue |= {f"{key(model)}_{glued}": "not measured yet" for glued in SPEED_GLUE}
            continue
        row = rows.loc[model]
        reading.glue[f"{key(model)}_per_edit"] = f"{row['per edit']:.2f}"
        reading.glue[f"{key(model)}_edits"] = str(int(row["edits"]))
        reading.glue[f"{key(model)}_values_share"] = f"{row['values'] / row['all in']:.2f}"
        speedup = row.get("values speed-up")
        reading.glue[f"{key(model)}_values_speedup"] = "not measured" if pd.isna(speedup) else f"{speedup:.1f}"
        goal = PER_EDIT_GOAL.get(model)
        verdict = None if goal is None else ("meets" if row["per edit"] <= goal else "misses")
        reading.glue[f"{key(model)}_per_edit_goal"] = "no goal set" if goal is None else f"{verdict} its {goal} s goal"
        reading.glue[f"{key(model)}_speedup_goal"] = (
            "not measured"
            if pd.isna(speedup)
            else ("meets" if speedup >= SPEEDUP_GOAL else "misses") + f" the {SPEEDUP_GOAL:.0f}x goal"
        )
    return reading


def _margin(record: dict, objective: pd.Series) -> str:
    """The chosen band's lead over the next: with its 95% interval paired by request and whether it separates
    the two, when the sweep recorded it (``bands.band_margin``); else the difference of the objectives alone."""
    margin = record.get("margin")
    if margin is None:
        return f"{objective[record['chosen']] - objective.drop(record['chosen']).max():.3f}"
    verdict = "separated" if margin["separated"] else "not separated"
    return f"{margin['mean']:.3f} ± {margin['half_width_95']:.3f} over {margin['pairs']} paired requests, {verdict}"


BAND_GLUE = (
    "chosen_band",
    "band_objective",
    "band_margin",
    "file_band",
    "file_band_objective",
    "bands_swept",
    "band_metrics",
)


def _band_metrics(summary: pd.DataFrame, chosen) -> str:
    """Each band swept, the chosen first: its reliability and locality (teacher-forced, over languages and
    methods) and the share of its target values that stopped short of their threshold."""
    return "; ".join(
        f"{band}{' (chosen)' if band == chosen else ''}: reliability {summary.reliability[band]:.2f}, "
        f"locality {summary.locality[band]:.2f}, unreached {summary.unreached[band]:.3f}"
        for band in sorted(summary.index, key=lambda band: band != chosen)  # stable: the sweep's order after
    )


def band_reading(root, models) -> Reading:
    """Per model: the band sweep on the tuning split (``study.bands``, ``results/calibration/<model>/bands/``), one
    row per band (the objective metrics over languages and methods, each method's objective, the unreached target
    values), the band chosen and the band in the hyperparameter file beside it."""
    from langedit_mini.editing.defaults import default_config
    from langedit_mini.study.bands import band_name

    reading = Reading()
    for model in models:
        folder = Path(root) / model / "bands"
        file_band = band_name(default_config("MEMIT", model).layers)
        glue = {"file_band": file_band}
        if not (folder / "bands.json").exists():
            reading.say(f"{model}: no band sweep yet (python scripts/sweep_bands.py --model {model} --bands ...)")
            reading.glue |= {f"{key(model)}_{name}": glue.get(name, "not swept yet") for name in BAND_GLUE}
            continue
        if not (folder / "summary.csv").exists():  # a first sweep still running, or stopped before its end
            done = ", ".join(store.read_json(folder / "bands.json").get("timings_s", {})) or "none"
            reading.say(f"{model}: band sweep not finished (bands done: {done}); its command finishes it")
            reading.glue |= {f"{key(model)}_{name}": glue.get(name, "sweep not finished") for name in BAND_GLUE}
            continue
        record = store.read_json(folder / "bands.json", required=("chosen", "batch_size", "methods"))
        summary = pd.read_csv(folder / "summary.csv", dtype={"band": str}).set_index("band")
        chosen = record["chosen"]
        reading.say(
            f"{model}: one batch of {record['batch_size']} tuning-split edits per language, written by "
            f"{' and '.join(record['methods'])}, into each band (commit {record['commit'][:7]}); chosen: "
            f"{chosen or 'none yet (one band swept)'}; the hyperparameter file's band: {file_band}"
        )
        reading.table(f"bands {model}", summary.round(3))
        objective = summary.objective
        glue |= {
            "chosen_band": chosen or "none yet (one band swept)",
            "band_objective": f"{objective[chosen]:.3f}" if chosen else "n/a",
            "band_margin": _margin(record, objective) if chosen else "n/a",
            "file_band_objective": f"{objective[file_band]:.3f}" if file_band in objective.index else "not swept",
            "bands_swept": str(len(summary)),
            "band_metrics": _band_metrics(summary, chosen),
        }
        reading.glue |= {f"{key(model)}_{name}": value for name, value in glue.items()}
    return reading


PRESERVED_GLUE = (
    "c0_sizes",
    "c0_full_tokens",
    "c0_rank_p",
    "c0_discarded",
    "c0_locality_small",
    "c0_locality_full",
    "c0_locality_change",
    "c0_small",
)


def preserved_reading(root, models) -> Reading:
    """Per model: the sample-size sweep of C0 on the tuning split (``study.preserved``,
    ``results/calibration/<model>/preserved/``): one row per size (tokens, the objective metrics, unreached
    target values, the smallest rank(P) of the band), the tokens per language of each size, and rank(P) per
    layer at the file's cut for every size; glued: the sizes, the largest size's tokens per language, its
    rank(P) per layer and the share of trace(C0) its cut discards, locality at the smallest and the largest size,
    and their difference paired by request with its 95% interval (``bands.band_margin``)."""
    from langedit_mini.study.bands import band_margin
    from langedit_mini.study.intervals import format_interval, interval_reading

    reading = Reading()
    for model in models:
        folder = Path(root) / model / "preserved"
        if not (folder / "preserved.json").exists():
            reading.say(f"{model}: no sample-size sweep yet (python scripts/sweep_statistics.py --model {model})")
            reading.glue |= {f"{key(model)}_{name}": "not measured yet" for name in PRESERVED_GLUE}
            continue
        record = store.read_json(folder / "preserved.json", required=("band", "batch_size", "methods", "tokens"))
        summary = pd.read_csv(folder / "summary.csv").set_index("size")
        null_space = pd.read_csv(folder / "null_space.csv")
        reading.say(
            f"{model}: C0 of band {record['band']} from the first N MzsRE training questions of each language; one "
            f"batch of {record['batch_size']} tuning-split edits per language written by "
            f"{' and '.join(record['methods'])} with each (commit {record['commit'][:7]})"
        )
        reading.table(f"C0 sample sizes {model}", summary.round(3))
        tokens = pd.DataFrame(record["tokens"]).T.rename_axis("size")
        tokens.index = tokens.index.astype(int)
        reading.table(f"tokens per language {model}", tokens.sort_index())
        ranks = null_space.pivot_table(index="layer", columns="size", values="rank_P")
        ranks.columns = [f"rank(P), N={size}" for size in ranks.columns]
        full = null_space[null_space["size"] == null_space["size"].max()].set_index("layer")
        ranks["d_k"] = full.d_k
        ranks["tau"] = full.tau
        reading.table(f"rank(P) per layer {model}", ranks)
        small, largest = summary.index.min(), summary.index.max()
        scores = pd.read_csv(folder / "scores.csv")
        change = band_margin(scores, small, largest, metrics=("locality",), by="size")
        verdict = interval_reading(*change).replace("above", "higher").replace("below", "lower")
        glue = {
            "c0_sizes": ", ".join(f"{size:,}" for size in summary.index),
            "c0_full_tokens": ", ".join(f"{lang} {count:,}" for lang, count in record["tokens"][str(largest)].items()),
            "c0_rank_p": ", ".join(f"layer {layer}: {int(row.rank_P):,}" for layer, row in full.iterrows())
            + f" of {int(full.d_k.iloc[0]):,}",
            "c0_discarded": f"{full.discarded_share.min():.2f} to {full.discarded_share.max():.2f}",
            "c0_locality_small": f"{summary.locality[small]:.3f}",
            "c0_locality_change": f"{format_interval(change[0], change[1], signed=True)} over {change[2]} paired "
            f"requests, {verdict}",
            "c0_locality_full": f"{summary.locality[largest]:.3f}",
            "c0_small": f"{small:,}",
        }
        reading.glue |= {f"{key(model)}_{name}": value for name, value in glue.items()}
    return reading


TUNING_COLUMNS = ("objective", "reliability TF", "generality TF", "locality TF", "written TF", "unreached", "seconds")


def tuning_reading(root, models) -> Reading:
    """Per model: the equal-budget tuning on the tuning split (``study.tuning``, ``results/tuning/<model>/``), one
    row per configuration run (the objective, its metrics, what each batch read right after its write, the
    unreached target values, the seconds), the point it was run at and, per method, the configuration chosen
    (and whether it lies at an edge of its grid), the spread of the objective over its grid and the choice's lead
    over the runner-up paired by request (where both kept per-request scores). A method whose grid is not
    complete has no choice (a choice from part of the budget is not the same budget); glued per method
    (``<model>_tuned_<method>``): the choice with its objective, or how far its grid got. Where the tuning
    scored the unedited model on the same requests (``tuning.unedited_run``), its row heads the table: the
    objective's floor, what a configuration that writes nothing scores; glued as ``<model>_tuning_unedited``,
    and each configuration's move from it, request by request (``tuning.against_unedited``), is a table of its
    own; the configurations that moved no request are glued as ``<model>_tuning_unmoved``. Where both forms of
    LangEdit ran a configuration, a table pairs them by request (``tuning.method_margins``)."""
    from langedit_mini.editing.registry import METHODS
    from langedit_mini.study.intervals import format_interval
    from langedit_mini.study.tuning import STAGE_2, STAGES, against_unedited, config_name, grid_edges, method_margins

    reading = Reading()
    later = {config_name(config) for grid in STAGE_2.values() for config in grid}
    for model in models:
        folder = Path(root) / model
        runs = store.read_tuning_runs(folder)
        finished = store.read_tuning(folder)  # None until the grids named are complete
        record = finished["record"] if finished else {}
        grids = STAGES[record.get("stage", 2 if runs.config.isin(later).any() else 1)]  # older records: no stage
        reading.glue |= {f"{key(model)}_tuning_point": "not tuned yet", f"{key(model)}_tuning_hours": "0"}
        reading.glue[f"{key(model)}_tuning_minutes"] = "not measured"
        unedited = store.read_tuning_unedited(folder)
        scores = store.read_tuning_scores(folder)  # per request and configuration; read once, used twice
        reading.glue |= {
            f"{key(model)}_tuning_unedited": "not measured",
            f"{key(model)}_tuning_unmoved": "not measured",
        }
        if unedited is not None:
            row = unedited["row"]
            reading.glue[f"{key(model)}_tuning_unedited"] = (
                f"{row['objective']:.3f} (reliability {row['reliability TF']:.3f}, generality "
                f"{row['generality TF']:.3f}, locality {row['locality TF']:.3f}, teacher-forced; commit "
                f"{row['commit'][:7]})"
            )
            moves = against_unedited(scores, unedited["scores"])
            names = [f"{method} {config}" for method, config in moves[moves.moved == 0].index] if len(moves) else []
            reading.glue[f"{key(model)}_tuning_unmoved"] = (
                f"{len(names)} of the {len(moves)} configurations with per-request scores"
                + (f" ({'; '.join(names)})" if names else "")
            )
        if runs.empty:
            reading.say(f"{model}: not tuned yet (python scripts/tune.py --model {model} --stage 1 ...)")
        else:
            point = record.get("point")
            where = (
                f"{point['edits_per_language']} edits per language in batches of {point['batch_size']}, "
                f"{point['schedule']} schedule, seed {point['seed']} (commit {record['commit'][:7]})"
                if point
                else "the point of the rows run so far (no tuning.json yet)"
            )
            reading.say(f"{model}: {len(runs)} configurations run on the tuning split; {where}")
            table = runs.set_index(["method", "config"])[list(TUNING_COLUMNS)]
            if unedited is not None:  # the floor first
                floor = pd.DataFrame([unedited["row"]]).set_index(["method", "config"])[list(TUNING_COLUMNS)]
                table = pd.concat([floor, table])
            reading.table(f"tuning {model}", table.round(3))
            versions = sorted(set(runs.package_hash.dropna())) if "package_hash" in runs else []
            if len(versions) > 1 and (finished is None or finished["recheck"] is None):
                reading.say(
                    f"{model}: these rows were made by {len(versions)} versions of the code ({', '.join(versions)})"
                    " and not rechecked: before choices are compared across them, scripts/tune.py --recheck reruns"
                    " the best row of each older version with today's code"
                )
            reading.glue[f"{key(model)}_tuning_point"] = where
            reading.glue[f"{key(model)}_tuning_hours"] = f"{runs.seconds.sum() / 3600:.1f}"
            minutes = runs.seconds / 60
            reading.glue[f"{key(model)}_tuning_minutes"] = (
                f"{minutes.median():.0f} (median; {minutes.min():.0f} to {minutes.max():.0f})"
            )
        if unedited is not None:  # after the tuning table, whose first row it is
            reading.say(
                f"{model}: the unedited model on the same requests scores {row['objective']:.3f}; configurations "
                f"that left every request's final scores as the unedited model's: {', '.join(names) or 'none'}"
            )
            if len(moves):
                reading.table(f"tuning against the unedited model {model}", moves.round(3))
        forms = method_margins(scores, "LangEdit-exact", "LangEdit-published")
        if len(forms):  # the two forms of LangEdit at the same settings, paired by request
            reading.table(f"tuning LangEdit-exact minus LangEdit-published {model}", forms)
        chosen = record.get("chosen", {})
        for method in METHODS:
            part = runs[runs.method == method]
            names = [config_name(config) for config in grids[method]]
            if method in chosen:
                name = config_name(chosen[method]["config"])
                value = f"{name} (objective {chosen[method]['objective']:.3f})"
                edges = grid_edges(chosen[method]["config"], grids[method])
                if edges:  # a better setting may lie beyond it: say so
                    value += f", at its grid's edge ({'; '.join(edges)})"
                spread = part[part.config.isin(names)].objective
                value += f"; its grid's objectives span {spread.min():.3f} to {spread.max():.3f}"
                margin = chosen[method].get("margin")
                if margin:
                    value += (
                        f"; ahead of the runner-up ({margin['runner_up']}) by "
                        f"{format_interval(margin['mean'], margin['half_width'], signed=True)} over "
                        f"{margin['pairs']} paired requests"
                    )
                else:
                    value += "; its margin over the runner-up not measured (rows without per-request scores)"
            elif len(part):
                value = f"{part.config.isin(names).sum()} of its {len(names)} configurations run, none chosen yet"
            else:
                value = "not tuned yet"
            reading.glue[f"{key(model)}_tuned_{key(method).lower()}"] = value
    return reading


def _settings_name(model: str, method: str) -> str:
    """The main settings (those the tuning sets) ``method`` runs with on ``model`` by default, named as the
    tuning names its configurations (``study.tuning.config_name``)."""
    from langedit_mini.editing.defaults import default_config
    from langedit_mini.study.tuning import STAGE_1, config_name

    settings = vars(default_config(method, model).settings)
    names = [name for name in STAGE_1[method][0] if settings.get(name) is not None]
    if "leftover_fraction" in STAGE_1[method][0] and settings.get("leftover_fraction") is None:
        names.append("tau")  # the file's cut is absolute
    return config_name({name: settings[name] for name in names})


def method_settings(model: str, methods) -> str:
    """The main settings (those the tuning sets) each of ``methods`` runs with on ``model`` by default, from the
    model's hyperparameter file, and whether the file has them from the tuning or as starting values:
    ``"MEMIT mom2_weight=10000 (tuned), AlphaEdit alpha=10 tau=0.02 (starting values)"``."""
    from langedit_mini.study.tuning import hparams_path

    tuned = json.loads(hparams_path(model).read_text(encoding="utf-8")).get("methods", {})
    return ", ".join(
        f"{method} {_settings_name(model, method)} ({'tuned' if method in tuned else 'starting values'})"
        for method in methods
    )


def written_at_settings(root, model: str, methods) -> str:
    """What each of ``methods`` writes of a batch right after its write at the settings it runs with on ``model``
    by default: the "written TF" of that configuration's row in the tuning table (``results/tuning/<model>/``,
    the mean over its batches), or that the table has no such row: ``"MEMIT 0.725, AlphaEdit 0.853"``."""
    runs = store.read_tuning_runs(Path(root) / model)
    parts = []
    for method in methods:
        name = _settings_name(model, method)
        row = runs[(runs.method == method) & (runs.config == name)]
        written = row["written TF"].dropna() if "written TF" in row else row.config.iloc[:0]
        if row.empty:
            parts.append(f"{method} not in the tuning table ({name})")
        elif written.empty:
            parts.append(f"{method} not measured ({name}'s row predates the column)")
        else:
            parts.append(f"{method} {written.iloc[-1]:.3f}")
    return ", ".join(parts)


#: what ``sequential_gate_reading`` glues per model (``<model>_g2_<name>``)
G2_GLUE = ("g2", "g2_finals", "g2_difference", "g2_runs", "g2_ability", "g2_written")

#: the offline proxies of a real LLM's general ability (``evaluation.offline_ability``), in the order shown
PROXIES = (
    ("held-out text", "perplexity"),
    ("real facts", "teacher-forced"),
    ("real facts", "exact match"),
    ("known facts", "retained"),
)


def pooled_proxies(probes: pd.DataFrame) -> pd.DataFrame:
    """Per measure (method, seed, after_batch) the proxies of ``evaluation.offline_ability`` pooled over the
    languages: perplexity as the geometric mean over languages, the real facts' scores as the mean, the known
    facts' retention over every fact known in any language (and ``known``, how many). Columns: method, seed,
    after_batch, one per proxy (``probe, metric``), known."""
    import numpy as np

    missing = [f"{p} / {m}" for p, m in PROXIES if not ((probes.probe == p) & (probes.metric == m)).any()]
    if missing:
        raise ValueError(f"not the offline proxies: no rows of {missing}")
    rows = []
    for (method, seed, after), part in probes.groupby(["method", "seed", "after_batch"]):
        row = {"method": method, "seed": seed, "after_batch": after}
        for probe, metric in PROXIES:
            chosen = part[(part.probe == probe) & (part.metric == metric)]
            if metric == "perplexity":
                row[f"{probe}, {metric}"] = float(np.exp(np.log(chosen.value).mean()))
            elif metric == "retained":
                counted = chosen[chosen.n > 0]
                row["known"] = int(counted.n.sum())
                row[f"{probe}, {metric}"] = (
                    float((counted.value * counted.n).sum() / counted.n.sum()) if len(counted) else float("nan")
                )
            else:
                row[f"{probe}, {metric}"] = float(chosen.value.mean())
        rows.append(row)
    return pd.DataFrame(rows)


def ability_table(probes: pd.DataFrame, methods) -> pd.DataFrame:
    """The proxies (``pooled_proxies``) of the unedited model and of each of ``methods`` after its last batch, mean
    and 95% interval over seeds: a row per proxy, a column per model state."""
    from langedit_mini.study.intervals import after_last_batch, mean_cell

    pooled = pooled_proxies(probes)
    unedited = pooled[pooled.method == "unedited"]
    final = after_last_batch(pooled[pooled.method.isin(methods)])
    columns = {"unedited": unedited} | {m: final[final.method == m] for m in methods if (final.method == m).any()}
    names = [f"{probe}, {metric}" for probe, metric in PROXIES]
    table = pd.DataFrame(
        {
            column: [mean_cell(rows[name].dropna(), 1 if "perplexity" in name else 3) for name in names]
            for column, rows in columns.items()
        },
        index=names,
    )
    table.loc["known facts (of the unedited model's)"] = [str(int(unedited.known.iloc[0]))] * len(columns)
    table.index.name = "proxy (pooled over languages)"
    return table


def _ability_summary(table: pd.DataFrame) -> str:
    """One line of the table: perplexity and known facts retained per state."""
    perplexity, retained = table.iloc[0], table.loc["known facts, retained"]
    known = table.iloc[-1, 0]
    return (
        "held-out perplexity "
        + ", ".join(f"{state} {value}" for state, value in perplexity.items())
        + f"; known facts retained (of {known}) "
        + ", ".join(f"{state} {value}" for state, value in retained.items() if state != "unedited")
    )


def sequential_gate_reading(density_root, calibration_root, models) -> Reading:
    """Gate G2 per model: the sequential study at the paper's density (the point of the model's density grid:
    ``PAPER_BATCHES`` batches per language of the calibration's batch size; ``scripts/run_density.py --model <m>
    --points <point> --methods MEMIT AlphaEdit``, ``results/density/<model>/<point>/``). Per method the final
    teacher-forced and exact-match scores (mean and 95% interval over seeds), each run's seed and wall time, and
    the gate's claims (``verdicts.sequential_gate``). The gate asks for ``G2_SEEDS`` seeds of both methods: with
    fewer its claims are shown as a provisional reading (from two seeds) and the gate reads "not complete"."""
    from langedit_mini.study.density import PAPER_BATCHES, point_name
    from langedit_mini.study.intervals import final_scores
    from langedit_mini.study.readings import paper_point_table
    from langedit_mini.study.verdicts import G2_SEEDS, GATE_METHODS

    reading = Reading()
    for model in models:
        calibration = store.read_calibration(Path(calibration_root) / model)
        if calibration is None:
            reading.say(f"{model}: no calibration record, so no study batch size; G2 not run yet")
            reading.glue |= {f"{key(model)}_{name}": "not run yet" for name in G2_GLUE}
            continue
        point = point_name(calibration["batch_size"] * PAPER_BATCHES)
        command = f"python scripts/run_density.py --model {model} --points {point} --methods {' '.join(GATE_METHODS)}"
        study = store.read_study(Path(density_root) / model / point)
        runs = study["runs"] if study else pd.DataFrame(columns=["method", "seed", "wall_s"])
        runs = runs[runs.method.isin(GATE_METHODS)]
        if runs.empty:
            reading.say(f"{model}, G2 at {point}: not run yet ({command})")
            reading.glue |= {f"{key(model)}_{name}": "not run yet" for name in G2_GLUE}
            continue
        parameters = study["parameters"]
        finals = final_scores(study["evaluations"])
        finals = finals[finals.method.isin(GATE_METHODS)]
        seeds = {method: sorted(runs[runs.method == method].seed) for method in GATE_METHODS}
        shared, gate, status = g2_gate(finals)
        edits = parameters["edits_per_language"] * len(parameters["languages"])
        reading.say(
            f"{model}, G2 at {point}: {edits} edits in batches of {parameters['batch_size']}, schedule "
            f"{parameters['schedule']}; runs: "
            + "; ".join(f"{m} seeds {', '.join(map(str, s)) or 'none'}" for m, s in seeds.items())
            + f"; {runs.wall_s.mean() / 60:.0f} min per run (of {len(runs)})"
        )
        table = paper_point_table(finals, metrics=("reliability", "generality", "locality"))
        reading.table(f"G2 {model}: final scores at {point} (mean ± 95% interval over seeds)", table)
        written = write_forget_table(study["evaluations"], study["batches"], GATE_METHODS)
        reading.table(f"G2 {model}: written, then kept or forgotten (mean over seeds)", written.round(3))
        reading.glue[f"{key(model)}_g2_written"] = "; ".join(
            f"{method} {row['written']:.3f} right after its write, {row['final']:.3f} after the last batch, "
            f"{row['unreached targets']:.0f} of {row['edits']:.0f} target values unreached"
            for method, row in written.iterrows()
        )
        probes = study["probes"]
        probes = probes[probes.method.isin(("unedited", *GATE_METHODS))] if len(probes) else probes
        if len(probes):
            ability = ability_table(probes, GATE_METHODS)
            reading.table(
                f"G2 {model}: general-ability proxies, unedited and after the last batch (mean ± 95% interval "
                "over seeds; evaluation.offline_ability)",
                ability,
            )
            reading.glue[f"{key(model)}_g2_ability"] = _ability_summary(ability)
        else:
            reading.glue[f"{key(model)}_g2_ability"] = "not measured (runs without the proxies)"
        glued = {
            f"{key(model)}_g2_finals": "; ".join(
                f"{method} {row['reliability TF']} / {row['generality TF']} / {row['locality TF']}"
                for method, row in table.iterrows()
            ),
            f"{key(model)}_g2_runs": f"{len(shared)} of {G2_SEEDS} seeds",
            f"{key(model)}_g2": status,
            f"{key(model)}_g2_difference": "no interval yet (one seed)"
            if gate is None
            else _g2_difference(finals[finals.seed.isin(shared)]),
        }
        complete = len(shared) >= G2_SEEDS
        if gate is not None:
            title = "the gate's claims" if complete else f"a provisional reading ({len(shared)} of {G2_SEEDS} seeds)"
            reading.table(f"G2 {model}: {title}", gate.table().set_index("claim").round(3))
        if not complete:
            reading.say(f"{model}: G2 needs {G2_SEEDS} seeds of both methods; the rest: {command}")
        reading.glue |= glued
    return reading


def write_forget_table(evaluations: pd.DataFrame, batches: pd.DataFrame, methods) -> pd.DataFrame:
    """Per method of ``methods`` with runs, means over seeds of ``sequential.write_forget``: the teacher-forced
    reliability of each batch right after its own write (``written``) and after the last batch (``final``), what
    was lost between them (``lost``), and by exact match the shares of edits ``kept``, ``forgotten`` and
    ``never_written``; then the edits of a run, its target values left unreached by the value step
    (``readings.unreached_targets``) and the seeds."""
    from langedit_mini.study.readings import unreached_targets
    from langedit_mini.study.sequential import write_forget

    runs = write_forget(evaluations[evaluations.method.isin(methods)]).groupby("method")
    table = runs[["written", "final", "lost", "kept", "forgotten", "never_written"]].mean().rename_axis(None)
    table["unreached targets"] = unreached_targets(batches).reindex(table.index)
    table["edits"] = runs.edits.max()
    table["seeds"] = runs.seed.nunique()
    return table.loc[[m for m in methods if m in table.index]]


def g2_gate(finals: pd.DataFrame):
    """Gate G2 from the final scores of a model's runs at its paper point: the seeds both ``GATE_METHODS`` share,
    ``verdicts.sequential_gate`` over them (None with fewer than two: no interval), and the gate's status:
    "passes" or "fails" with ``G2_SEEDS`` shared seeds, else "not complete (...)", provisional from two seeds."""
    from langedit_mini.study.density import PAPER_DENSITY
    from langedit_mini.study.verdicts import G2_SEEDS, GATE_METHODS, sequential_gate

    seeds = [set(finals[finals.method == method].seed) for method in GATE_METHODS]
    shared = sorted(seeds[0].intersection(*seeds[1:]))
    if len(shared) < 2:
        return shared, None, f"not complete ({len(shared)} of {G2_SEEDS} seeds with both methods)"
    gate = sequential_gate(finals[finals.seed.isin(shared)], PAPER_DENSITY)
    verdict = "passes" if gate.passed else "fails"
    if len(shared) < G2_SEEDS:
        return shared, gate, f"not complete ({len(shared)} of {G2_SEEDS} seeds; provisionally {verdict})"
    return shared, gate, verdict


def _g2_difference(finals: pd.DataFrame) -> str:
    """AlphaEdit minus MEMIT, paired by seed, on the final reliability and locality (teacher-forced)."""
    from langedit_mini.study.intervals import format_interval, paired_difference

    parts = []
    for metric in ("reliability", "locality"):
        mean, half, _ = paired_difference(finals, metric, "AlphaEdit", "MEMIT")
        parts.append(f"{metric} {format_interval(mean, half, signed=True)}")
    return ", ".join(parts)
