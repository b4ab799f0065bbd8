"""Where does forgetting enter? A study's first two batches, taken apart key by key.

The null-space guarantee protects the keys that were *committed*: for each edit, the key at the subject's
last token averaged over the bare prompt and its context prefixes. Scoring an edit later reads other keys:
the bare prompt's own subject key (one of the averaged ones, not the average), and the keys at the prompt's
other tokens and at the positions that predict the answer, which no method protects beyond the
preserved-knowledge projector. ``diagnose_forgetting`` edits the first two batches of the full-scale schedule
(the delta schedule, one batch per language: English, then German) with each closed-form method and
measures, for the first batch's edits after the second batch (``diagnose``):

* ``change``: how much the second update moves the edited layer's output at each kind of key, relative to
  how much the first update moved it at the edit's committed key (``||D1 k|| / ||D0 kbar||``; 0 = untouched,
  1 = moved as much as the edit itself);
* ``null share``: the share of each key's norm that lies in the null space the second batch was written
  into (``||P1 k|| / ||k||``; MEMIT has no projector);
* how far the bare prompt's subject key lies from the committed average (``||k - kbar|| / ||kbar||``);
* the first batch's reliability (teacher-forced) before and after the second batch, and the second batch's
  reliability once written.

Each method runs with the testbed's preserved-knowledge corpus (``statements``) and, to test the
explanation the first run suggests, with that corpus plus the question-and-answer probes of the same
never-edited facts (``statements+questions``, the pocket world's): the edit prompts are questions, and keys
of questions lie far more in the statements' null space. The result is one JSON file
(``store.write_diagnosis``); ``findings.diagnosis_findings`` reads it for the ablations chapter.
"""

from __future__ import annotations

import time

import torch

from langedit_mini.data.languages import LANGUAGES
from langedit_mini.data.schedules import build_schedule
from langedit_mini.editing.defaults import default_config
from langedit_mini.editing.registry import CLOSED_FORM_METHODS, get_method
from langedit_mini.editing.session import EditingSession
from langedit_mini.evaluation.scoring import score
from langedit_mini.model.architecture import mlp_out_module
from langedit_mini.model.keys import context_texts, encode_rows
from langedit_mini.model.statistics import key_second_moments
from langedit_mini.model.tokens import encode_pairs, evaluation_mode, model_device
from langedit_mini.study import store

#: the kinds of key the diagnosis measures, in the order its tables show them
DIAGNOSIS_KINDS = ("committed key", "bare subject key", "other prompt keys", "answer-position keys")
#: its two preserved-knowledge corpora: the testbed's statements, and those plus question prompts
DIAGNOSIS_COVARIANCES = ("statements", "statements+questions")


def position_keys(model, tokenizer, architecture, requests, layer: int) -> list[dict[str, torch.Tensor]]:
    """For each request's teacher-forced input (edit prompt + answer), the edited layer's keys by kind."""
    if architecture.transposed:
        raise NotImplementedError("this diagnostic assumes (d_v, d_k) weights (nn.Linear), not a transposed Conv1D")
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
    stored = {}
    module = mlp_out_module(model, architecture, layer)
    handle = module.register_forward_pre_hook(lambda m, inputs: stored.__setitem__("keys", inputs[0].detach()))
    try:
        with evaluation_mode(model), torch.no_grad():
            device = model_device(model)
            model(input_ids=rows.input_ids.to(device), attention_mask=rows.attention_mask.to(device))
    finally:
        handle.remove()
    keys = stored["keys"].double().cpu()  # (rows, T, d_k)
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
    """Mean teacher-forced reliability of ``requests`` on ``model``."""
    scores = score(
        model, tokenizer, [r.question for r in requests], [r.target for r in requests], [r.joiner for r in requests]
    )
    return float(sum(scores.teacher_forced) / len(requests))


def preserved_texts(testbed, name: str) -> list[str]:
    """The preserved-knowledge corpus ``name`` (one of ``DIAGNOSIS_COVARIANCES``) of ``testbed``."""
    if name not in DIAGNOSIS_COVARIANCES:
        raise ValueError(f"unknown corpus {name!r}; choose from {', '.join(DIAGNOSIS_COVARIANCES)}")
    texts = list(testbed.texts or [])
    if name == "statements+questions":
        if not isinstance(testbed.probes, dict):  # a real LLM's proxies hold no question probes
            raise ValueError(f"{testbed.name} has no question probes for the corpus {name!r}")
        texts += [f"{p['prompt']}{p['joiner']}{p['answer']}" for p in testbed.probes["fact_qa"]]
    return texts


def _keys_changed(kind, keys, committed, delta, signal, projector):
    """The change of one kind of key under ``delta`` relative to each edit's own ``signal``, and its share
    in the null space of ``projector`` (None for MEMIT)."""
    change, share = [], []
    for index, by_kind in enumerate(keys):
        k = committed[:, index : index + 1] if kind == "committed key" else by_kind[kind]
        if k.shape[1] == 0:
            continue
        change.append((delta @ k).norm(dim=0) / signal[index])
        if projector is not None:
            share.append(projector.apply(k.to(projector.dtype)).norm(dim=0) / k.norm(dim=0))
    return torch.cat(change), (torch.cat(share) if share else None)


def diagnose(method: str, testbed, statistics, batches, seed: int) -> list[dict]:
    """One method's rows: every kind of key after the second of ``batches`` (see the module doc)."""
    model, tokenizer = testbed.model, testbed.tokenizer
    session = EditingSession(model, tokenizer, default_config(method, testbed.hparams, seed=seed), statistics)
    if len(session.config.layers) != 1:
        raise ValueError("this diagnostic reads one edited layer; the testbed's hyperparameters edit several")
    layer = session.config.layers[-1]
    first, second = batches
    record0 = session.apply(first)
    before = reliability(session.model, tokenizer, first)
    keys = position_keys(session.model, tokenizer, session.architecture, first, layer)
    projector = session.rules[layer].projector  # the projector the second batch is written with (None: MEMIT)
    record1 = session.apply(second)
    after = reliability(session.model, tokenizer, first)
    written = reliability(session.model, tokenizer, second)
    delta0, delta1 = record0.deltas[layer].double(), record1.deltas[layer].double()
    committed = record0.keys[layer].double()  # (d_k, n)
    signal = (delta0 @ committed).norm(dim=0)  # the edit's own change at its committed key
    rows = []
    for kind in DIAGNOSIS_KINDS:
        change, share = _keys_changed(kind, keys, committed, delta1, signal, projector)
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


def diagnose_forgetting(
    testbed, output, *, edits: int = 100, seed: int = 0, methods=None, covariances=DIAGNOSIS_COVARIANCES, log=print
) -> list[dict]:
    """The diagnosis of ``methods`` (default MEMIT, AlphaEdit, LangEdit-exact) with each preserved corpus of
    ``covariances``, written with its provenance to ``output`` (a JSON file); returns its rows."""
    from langedit_mini.study.provenance import finish_record, start_record

    methods = list(methods or ("MEMIT", "AlphaEdit", "LangEdit-exact"))
    unknown = [m for m in methods if not get_method(m).closed_form]
    if unknown:
        raise ValueError(f"methods {unknown} are not closed-form; choose from {list(CLOSED_FORM_METHODS)}")
    if not isinstance(edits, int) or edits < 1:
        raise ValueError(f"edits must be a positive integer, got {edits!r}")
    record = start_record(loader=testbed.loader, inputs=testbed.inputs)
    plan = build_schedule(testbed.requests, "delta", LANGUAGES, edits_per_language=edits, batch_size=edits, seed=seed)
    layers = list(default_config(methods[0], testbed.hparams).layers)
    rows = []
    for covariance in covariances:
        texts = preserved_texts(testbed, covariance)
        statistics = key_second_moments(testbed.model, testbed.tokenizer, texts, layers, progress=False)
        for method in methods:
            start = time.time()
            rows += [
                row | {"covariance": covariance}
                for row in diagnose(method, testbed, statistics, plan.batches[:2], seed)
            ]
            log(f"{method}, {covariance}: {time.time() - start:.0f} s")
    parameters = {
        "edits_per_batch": edits,
        "seed": seed,
        "batches": plan.batch_languages[:2],
        "methods": methods,
        "covariances": list(covariances),
        "model": testbed.name,
    }
    store.write_diagnosis(output, rows, parameters, finish_record(record))
    log(f"wrote {output}")
    return rows
