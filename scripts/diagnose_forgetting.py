"""Where does forgetting enter? The full-scale study's first two batches, taken apart key by key.

The null-space guarantee protects the keys that were *committed*: for each edit, the key at the
subject's last token averaged over the bare prompt and its context prefixes. Scoring an edit later
reads other keys: the bare prompt's own subject key (one of the averaged ones, not the average),
and the keys at the prompt's other tokens and at the positions that predict the answer, which no
method protects beyond the preserved-knowledge projector. This script edits the first two batches
of the full-scale schedule (100 English edits, then 100 German ones, seed 0) with each closed-form
method and measures, for the English edits after the German batch:

* ``change``: how much the German update moves the edited layer's output at each kind of key,
  relative to how much the English update moved it at the edit's committed key
  (``||D1 k|| / ||D0 kbar||``; 0 = untouched, 1 = moved as much as the edit itself);
* ``null share``: the share of each key's norm that lies in the null space the German batch was
  written into (``||P1 k|| / ||k||``; MEMIT has no projector);
* how far the bare prompt's subject key lies from the committed average (``||k - kbar|| / ||kbar||``);
* the English edits' reliability (teacher-forced) before and after the German batch, and the German
  edits' reliability once written.

Each method runs with the book's preserved-knowledge corpus (``statements``: held-out statements of
never-edited facts) and, to test the explanation the first run suggests, with that corpus plus the
question-and-answer probes of the same never-edited facts (``statements+questions``): the edit
prompts are questions, and keys of questions lie far more in the statements' null space.

Prints a table and writes ``results/diagnostics/forgetting.json`` (with its provenance), which the
ablations chapter shows.

    python scripts/diagnose_forgetting.py [--edits 100] [--seed 0] [--methods MEMIT LangEdit-exact ...]
                                          [--covariances statements statements+questions]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from langedit_mini.data.datasets import load_pocket
from langedit_mini.data.languages import LANGUAGES
from langedit_mini.data.schedules import build_schedule
from langedit_mini.editing import EditingSession
from langedit_mini.editing.defaults import default_config
from langedit_mini.editing.registry import CLOSED_FORM_METHODS
from langedit_mini.evaluation.scoring import score
from langedit_mini.model.architecture import mlp_out_module
from langedit_mini.model.keys import context_texts, encode_rows
from langedit_mini.model.statistics import key_second_moments
from langedit_mini.model.tokens import encode_pairs, evaluation_mode, model_device
from langedit_mini.pocket import POCKET_EDIT_LAYERS, covariance_texts, load_pocket_model, load_probes
from langedit_mini.study.provenance import finish_record, start_record
from langedit_mini.study.results import DIAGNOSIS_COVARIANCES, DIAGNOSIS_KINDS

ROOT = Path(__file__).resolve().parents[1]


def position_keys(model, tokenizer, architecture, requests, layer: int) -> list[dict[str, torch.Tensor]]:
    """For each request's teacher-forced input (edit prompt + answer), the edited layer's keys by kind."""
    if architecture.transposed:
        raise NotImplementedError("this diagnostic assumes (d_v, d_k) weights; the pocket model's are")
    texts_and_chars = [context_texts(r, prefixes=False)[0] for r in requests]
    _, answer_ids = encode_pairs(
        tokenizer, [t for t, _ in texts_and_chars], [r.target for r in requests], [r.joiner for r in requests]
    )
    rows = encode_rows(
        tokenizer,
        [t for t, _ in texts_and_chars],
        [c for _, c in texts_and_chars],
        list(range(len(requests))),
        suffix_ids=answer_ids,
    )
    store = {}
    module = mlp_out_module(model, architecture, layer)
    handle = module.register_forward_pre_hook(lambda m, inputs: store.__setitem__("keys", inputs[0].detach()))
    try:
        with evaluation_mode(model), torch.no_grad():
            device = model_device(model)
            model(input_ids=rows.input_ids.to(device), attention_mask=rows.attention_mask.to(device))
    finally:
        handle.remove()
    keys = store["keys"].double().cpu()  # (rows, T, d_k)
    out = []
    for row, answer in enumerate(answer_ids):
        subject = int(rows.subject_position[row])
        prompt_length = rows.lengths[row] - len(answer)  # each row is the prompt's ids, then the answer's
        answer_positions = list(range(prompt_length - 1, rows.lengths[row] - 1))  # predict the answer tokens
        others = [p for p in range(1, prompt_length - 1) if p != subject]  # not BOS, not the last prompt token
        out.append(
            {
                "bare subject key": keys[row, subject][:, None],
                "other prompt keys": keys[row, others].T,
                "answer-position keys": keys[row, answer_positions].T,
            }
        )
    return out


def reliability(model, tokenizer, requests) -> float:
    scores = score(
        model, tokenizer, [r.question for r in requests], [r.target for r in requests], [r.joiner for r in requests]
    )
    return float(sum(scores.teacher_forced) / len(requests))


def preserved_texts(name: str) -> list[str]:
    """The preserved-knowledge corpus ``name`` (one of DIAGNOSIS_COVARIANCES)."""
    texts = covariance_texts()
    if name == "statements+questions":
        texts = texts + [f"{p['prompt']}{p['joiner']}{p['answer']}" for p in load_probes()["fact_qa"]]
    return texts


def diagnose(method: str, model, tokenizer, statistics, batches, seed: int) -> list[dict]:
    session = EditingSession(model, tokenizer, default_config(method, seed=seed), statistics)
    layer = session.config.layers[-1]
    if len(session.config.layers) != 1:
        raise ValueError("this diagnostic reads one edited layer; the pocket model edits one")
    first, second = batches
    record0 = session.apply(first)
    before = reliability(session.model, tokenizer, first)
    keys = position_keys(session.model, tokenizer, session.architecture, first, layer)
    rule = session.rules[layer]
    projector = rule.projector  # the projector the second batch is written with (None for MEMIT)
    record1 = session.apply(second)
    after = reliability(session.model, tokenizer, first)
    written = reliability(session.model, tokenizer, second)
    delta0, delta1 = record0.deltas[layer].double(), record1.deltas[layer].double()
    committed = record0.keys[layer].double()  # (d_k, n)
    signal = (delta0 @ committed).norm(dim=0)  # the edit's own change at its committed key
    rows = []
    for kind in DIAGNOSIS_KINDS:
        change, share = [], []
        for index, by_kind in enumerate(keys):
            k = committed[:, index : index + 1] if kind == "committed key" else by_kind[kind]
            if k.shape[1] == 0:
                continue
            change.append((delta1 @ k).norm(dim=0) / signal[index])
            if projector is not None:
                share.append(projector.apply(k.to(projector.dtype)).norm(dim=0) / k.norm(dim=0))
        change = torch.cat(change)
        share = torch.cat(share) if share else None
        rows.append(
            {
                "method": method,
                "key": kind,
                "keys measured": int(change.numel()),
                "change median": float(change.median()),
                "change 90th pct": float(change.quantile(0.9)),
                "null share median": float(share.median()) if share is not None else None,
                "reliability before": before,
                "reliability after": after,
                "batch 2 reliability": written,
                "null dims for batch 2": projector.null_dim if projector is not None else None,
            }
        )
    deviation = torch.stack(
        [
            (by_kind["bare subject key"][:, 0] - committed[:, i]).norm() / committed[:, i].norm()
            for i, by_kind in enumerate(keys)
        ]
    )
    for row in rows:
        row["bare-key deviation median"] = float(deviation.median())
    return rows


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=100, help="edits per batch (the full-scale study's 100)")
    parser.add_argument("--seed", type=int, default=0)
    # LangEdit-published equals AlphaEdit up to a covariance blend of weight n / N (100 / 127,744) here
    parser.add_argument("--methods", nargs="+", default=["MEMIT", "AlphaEdit", "LangEdit-exact"])
    parser.add_argument("--covariances", nargs="+", default=list(DIAGNOSIS_COVARIANCES), choices=DIAGNOSIS_COVARIANCES)
    parser.add_argument("--output", default=str(ROOT / "results" / "diagnostics" / "forgetting.json"))
    args = parser.parse_args(argv)
    unknown = [m for m in args.methods if m not in CLOSED_FORM_METHODS]
    if unknown:
        parser.error(f"methods {unknown} are not closed-form; choose from {list(CLOSED_FORM_METHODS)}")
    if args.edits < 1:
        parser.error(f"--edits must be a positive integer, got {args.edits}")
    record = start_record(ROOT)
    requests, _ = load_pocket()
    plan = build_schedule(
        requests, "delta", LANGUAGES, edits_per_language=args.edits, batch_size=args.edits, seed=args.seed
    )  # the full-scale schedule; its first two batches (en, de)
    model, tokenizer = load_pocket_model()
    rows = []
    for covariance in args.covariances:
        statistics = key_second_moments(
            model, tokenizer, preserved_texts(covariance), list(POCKET_EDIT_LAYERS), progress=False
        )
        for method in args.methods:
            method_start = time.time()
            rows += [
                row | {"covariance": covariance}
                for row in diagnose(method, model, tokenizer, statistics, plan.batches[:2], args.seed)
            ]
            print(f"{method}, {covariance}: {time.time() - method_start:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {
                "rows": rows,
                "parameters": {
                    "edits_per_batch": args.edits,
                    "seed": args.seed,
                    "batches": plan.batch_languages[:2],
                    "methods": args.methods,
                    "covariances": args.covariances,
                },
                **finish_record(record),
            },
            indent=1,
        )
        + "\n"
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string(index=False))
    print(f"wrote {output}")
    return table


if __name__ == "__main__":
    main()
