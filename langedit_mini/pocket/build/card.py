"""Write the pocket model card (``data/pocket/model/README.md``) and its numbers (``card.json``).

Every number in the card is measured here, on the shipped model and data:

    python -m langedit_mini.pocket.build.card
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import torch

from langedit_mini.data.datasets import POCKET_DIRECTORY
from langedit_mini.evaluation.pocket_probes import fact_table, general_ability, score_table
from langedit_mini.pocket import MODEL_DIRECTORY, covariance_texts, load_facts, load_pocket_model, load_probes

#: Edited layers and cuts reported in the card (the editing defaults are set per architecture).
CARD_LAYERS = (0, 1, 2, 3)
CARD_TAUS = (2e-2, 1e-1, 5e-1, 1.0)
CARD_LEFTOVERS = (0.01, 0.02, 0.05, 0.10)


def null_space_table(
    model, tokenizer, texts, layers=CARD_LAYERS, taus=CARD_TAUS, leftovers=CARD_LEFTOVERS
) -> pd.DataFrame:
    """Null-space dimension per layer at absolute cuts ``tau=...`` and at leftover-fraction cuts ``leftover=...``."""
    from langedit_mini.core.projection import tau_for_leftover
    from langedit_mini.model.statistics import key_second_moments

    moments = key_second_moments(model, tokenizer, texts, list(layers), cache_dir=None, progress=False)
    rows = []
    for layer, moment in moments.items():
        eigenvalues = torch.linalg.eigvalsh(moment.covariance)
        cuts = [(f"tau={tau:g}", tau) for tau in taus]
        cuts += [(f"leftover={fraction:.0%}", tau_for_leftover(moment.covariance, fraction)) for fraction in leftovers]
        for name, cut in cuts:
            rows.append(
                {
                    "layer": layer,
                    "cut": name,
                    "tau": cut,
                    "d_k": eigenvalues.numel(),
                    "null_dim": int((eigenvalues < cut).sum()),
                    "largest_eigenvalue": float(eigenvalues.max()),
                    "n_samples": moment.n_samples,
                }
            )
    return pd.DataFrame(rows)


def measure(directory: Path = POCKET_DIRECTORY) -> dict:
    torch.set_num_threads(2)
    model, tokenizer = load_pocket_model(directory=directory / "model")
    start = time.perf_counter()
    scored = score_table(model, tokenizer, fact_table(load_facts(directory)))
    probes = general_ability(model, tokenizer, load_probes(directory))
    null_space = null_space_table(model, tokenizer, covariance_texts(directory))
    seconds = time.perf_counter() - start
    by_language = scored.groupby(["form", "lang"])[["teacher_forced", "exact_match"]].mean()
    paraphrase = (
        scored[scored.form == "paraphrase"].groupby(["split", "lang"])[["teacher_forced", "exact_match"]].mean()
    )
    by_relation = scored[scored.form == "edit prompt"].groupby(["relation", "lang"])["exact_match"].mean()
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": {
            k: model.config.to_dict()[k]
            for k in (
                "hidden_size",
                "intermediate_size",
                "num_hidden_layers",
                "num_attention_heads",
                "num_key_value_heads",
                "vocab_size",
            )
        },
        "by_form_and_language": {f"{form}|{lang}": row.to_dict() for (form, lang), row in by_language.iterrows()},
        "paraphrase_by_split": {f"{split}|{lang}": row.to_dict() for (split, lang), row in paraphrase.iterrows()},
        "edit_prompt_exact_match_by_relation": {f"{rel}|{lang}": v for (rel, lang), v in by_relation.items()},
        "probes": probes.to_dict(orient="records"),
        "null_space": null_space.to_dict(orient="records"),
        "evaluation_seconds": seconds,
    }


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    frame = frame.reset_index()
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    lines = [header, rule]
    for _, row in frame.iterrows():
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_card(numbers: dict, directory: Path = MODEL_DIRECTORY) -> str:
    training = json.loads((directory / "training.json").read_text())
    provenance = json.loads((directory / "provenance.json").read_text())
    size_mb = sum(p.stat().st_size for p in directory.iterdir() if p.is_file()) / 1e6
    forms = pd.DataFrame(
        [{"form": k.split("|")[0], "lang": k.split("|")[1], **v} for k, v in numbers["by_form_and_language"].items()]
    )
    exact = forms.pivot(index="form", columns="lang", values="exact_match")
    teacher = forms.pivot(index="form", columns="lang", values="teacher_forced")
    paraphrase = pd.DataFrame(
        [{"split": k.split("|")[0], "lang": k.split("|")[1], **v} for k, v in numbers["paraphrase_by_split"].items()]
    ).pivot(index="split", columns="lang", values="exact_match")
    relations = pd.Series(numbers["edit_prompt_exact_match_by_relation"])
    relations.index = pd.MultiIndex.from_tuples([tuple(k.split("|")) for k in relations.index])
    relation_table = relations.unstack().rename_axis("relation")
    probes = pd.DataFrame(numbers["probes"]).pivot(index=["probe", "metric"], columns="lang", values="value")
    null_space = pd.DataFrame(numbers["null_space"]).pivot(index="layer", columns="cut", values="null_dim")
    config = numbers["config"]
    text = f"""# The pocket model

A {numbers["parameters"] / 1e6:.2f}M-parameter `LlamaForCausalLM` trained from scratch on the pocket corpus:
{config["num_hidden_layers"]} layers, hidden size {config["hidden_size"]}, MLP key dimension d_k =
{config["intermediate_size"]}, {config["num_attention_heads"]} attention heads ({config["num_key_value_heads"]}
key/value heads), a byte-level BPE vocabulary of {config["vocab_size"]} tokens. Files: {size_mb:.1f} MB
(safetensors, `config.json`, `tokenizer.json`). Load it offline with
`langedit_mini.pocket.load_pocket_model()` or `AutoModelForCausalLM.from_pretrained("data/pocket/model")`.

Every number below was measured by `python -m langedit_mini.pocket.build.card` on these files.

## Training

{training["config"]["epochs"]} epochs over the corpus, batch {training["config"]["batch_size"]} lines, AdamW,
peak learning rate {training["config"]["learning_rate"]}, seed {training["config"]["seed"]},
{training["config"]["threads"]} CPU threads: {provenance["training_seconds"] / 60:.1f} minutes
on `{provenance["machine"]}`. Final training loss (per token, all tokens of a line):
{training["history"][-1]["loss"]:.3f}. Package versions: {json.dumps(provenance["package_versions"])}.

## What it knows: greedy exact match by question form and language

Every fact of the fact base, in every language. The edit prompt and the second form are trained; the
paraphrase is trained only for facts that are never edited; the held-out form is never trained.

{markdown_table(exact)}

Teacher-forced token accuracy:

{markdown_table(teacher)}

Paraphrase by split (`edit` facts never saw their paraphrase; `keep` facts did):

{markdown_table(paraphrase)}

Edit-prompt exact match by relation:

{markdown_table(relation_table)}

## General-ability probes (per language)

{markdown_table(probes)}

## MLP keys: null-space dimension per layer at several cuts

Keys collected at the input of `model.layers.{{l}}.mlp.down_proj` over the held-out statements of
never-edited facts (six languages); null dimension = eigenvalues of C0 below the cut, out of d_k =
{config["intermediate_size"]}. `tau=x`: an absolute cut; `leftover=x%`: the cut whose discarded
eigenvalues hold x% of trace(C0), i.e. preserved keys keep on average x% of their energy in the null
space. The key covariance of this small model is nearly full rank with scales that differ by layer,
so AlphaEdit's absolute tau = 2e-2 leaves almost no room; the leftover rule gives every layer the
same guarantee.

{markdown_table(null_space, 0)}

## Known limits

* It knows a closed world of {len(load_facts(directory.parent))} facts about countries, cities and languages
  in template sentences; it is not a language model of open text.
* The held-out question form, never trained for any fact, is answered less reliably than the
  trained forms (first table); the paraphrase form, trained on the never-edited half of the facts,
  carries over to the edited half. Generality after an edit is to be read against these numbers.
* Yes/no fact verification sits near chance (probe table), even for facts whose verification was
  trained: this model does not learn the skill, so that probe cannot show damage from editing.
* Portability questions (continent of a city's country) are memorised for never-edited cities;
  a tiny model is not expected to compose facts, so portability after an edit is expected to be low.
* Its facts are read from the subject's states after block 0 (the pocket chapter's patching test),
  so the editing chapters edit layer 0, not an early-middle band as on large models.
"""
    (directory / "README.md").write_text(text, encoding="utf-8")
    (directory / "card.json").write_text(json.dumps(numbers, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Measure the pocket model and write its card.")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="re-render README.md from the numbers already in card.json (no measuring)",
    )
    arguments = parser.parse_args(argv)
    if arguments.render_only:
        numbers = json.loads((MODEL_DIRECTORY / "card.json").read_text())
    else:
        numbers = measure()
    print(write_card(numbers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
