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


def trace_reading(root, models) -> Reading:
    """Per model: each layer's MLP share of the total effect at the subject's last token and at the prompt's last
    token, ROME's window around each layer at the subject's last token, and the hidden state there; the edited
    band shaded; with the layer of the largest MLP effect and what the band restores together."""
    traced = {m: store.read_calibration(Path(root) / m) for m in models}
    traced = {m: r for m, r in traced.items() if r is not None and "G3" in r["gates"]}
    reading = Reading()
    for model in models:
        if model not in traced:
            reading.say(f"{model}: not traced yet (python scripts/calibrate.py --model {model} --parts trace)")
            reading.glue |= {f"{key(model)}_peak": "not traced yet", f"{key(model)}_band_share": "not traced yet"}
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
        mlp = summary[(summary.site == "mlp") & (summary.position == "subject last")].set_index("layer")
        together = summary[(summary.site == "mlp band") & (summary.position == "subject last")]
        window = summary[(summary.site == "mlp window") & (summary.position == "subject last")].set_index("layer")
        row = {
            "model": model,
            "traced facts": record["traced_facts"],
            "peak layer (MLP, subject's last token)": int(mlp.share_of_total.idxmax()),
            "its share": float(mlp.share_of_total.max()),
            "peak window centre": int(window.share_of_total.idxmax()) if len(window) else None,
            "window's share": float(window.share_of_total.max()) if len(window) else None,
            "band": band,
            "band's share": float(together.share_of_total.iloc[0]) if len(together) else None,
            "G3 passed": record["gates"]["G3"]["passed"],
        }
        rows.append(row)
        share = row["band's share"]
        reading.glue |= {
            f"{key(model)}_peak": str(row["peak layer (MLP, subject's last token)"]),
            f"{key(model)}_band_share": f"{share:.2f}" if share is not None else "n/a",
        }
    axes[0][0].legend(fontsize=7)
    plt.tight_layout()
    reading.plot(fig)
    reading.table("traces", pd.DataFrame(rows).set_index("model").round(3))
    return reading


def speed_reading(path) -> Reading:
    """One batch on each model by stage, and the reference recipe's target values (``benchmarks/real_llm_batch.py``)."""
    path = Path(path)
    if not path.exists():
        return Reading(parts=["not measured yet (python benchmarks/real_llm_batch.py)"])
    data = json.loads(path.read_text())
    rows = pd.DataFrame(data["rows"]).set_index("model")
    reading = Reading(parts=[f"measured at commit {data['commit']} on {data['date'][:10]}, {data['threads']} threads"])
    reading.table("speed", rows.round(2))
    for model, row in rows.iterrows():
        reading.glue[f"{key(model)}_per_edit"] = f"{row['per edit']:.2f}"
        if "values speed-up" in row:
            reading.glue[f"{key(model)}_values_speedup"] = f"{row['values speed-up']:.1f}"
    return reading
