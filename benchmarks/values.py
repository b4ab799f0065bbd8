"""Benchmark 2: target values for 100 pocket requests, three ways, and what the saving costs in accuracy.

* **suffix only** (``compute_target_values``, the default): what ``delta`` cannot change (the
  positions before the subject's last token, blocks 0..L) is computed once; a step runs the rest,
  and finished requests leave the batch;
* **every token, batched** (``ValueSettings.reuse_prefix=False``): every token of every row through
  every block at every step (the package before this change);
* **every token, one at a time**: the reference code's recipe (ROME/MEMIT ``compute_z``, one
  request per optimisation).

All three use the same settings and seed; per request the problem is the same, so ``z`` should agree
up to rounding. Then one batch of 100 is edited (LangEdit-exact, pocket defaults) with the values
computed each way, and scored: reliability, generality and locality must agree within 0.01.

    python benchmarks/values.py [--requests 100] [--language en] [--texts N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_texts_argument, preserved_texts, save, table, timed, z_distances  # noqa: E402

from langedit_mini.data.datasets import load_pocket  # noqa: E402
from langedit_mini.editing import EditingSession  # noqa: E402
from langedit_mini.editing.defaults import default_config  # noqa: E402
from langedit_mini.evaluation.edit_metrics import evaluate_requests, locality_reference  # noqa: E402
from langedit_mini.evaluation.scoring import greedy_continuations  # noqa: E402
from langedit_mini.model.architecture import detect_architecture  # noqa: E402
from langedit_mini.model.statistics import key_second_moments  # noqa: E402
from langedit_mini.model.tokens import encode_pairs, evaluation_mode, pad_token_id  # noqa: E402
from langedit_mini.model.values import compute_target_values  # noqa: E402
from langedit_mini.pocket import POCKET_EDIT_LAYERS, load_pocket_model  # noqa: E402

METRICS = ("reliability", "generality", "locality")


def decoded_exact_match(model, tokenizer, requests) -> float:
    """Greedy exact match of the edit prompts by decoding (how it was computed before it was read off
    the teacher-forced pass), for the agreement check."""
    prompt_ids, answer_ids = encode_pairs(
        tokenizer, [r.question for r in requests], [r.target for r in requests], [r.joiner for r in requests]
    )
    with evaluation_mode(model):
        decoded = greedy_continuations(model, prompt_ids, [len(a) for a in answer_ids], pad_token_id(tokenizer))
    return sum(c == a for c, a in zip(decoded, answer_ids)) / len(requests)


def edit_and_score(model, tokenizer, statistics, requests, reference, reuse_prefix: bool) -> dict:
    """One batch of ``requests`` written with LangEdit-exact; its metrics on the edited copy."""
    config = default_config("LangEdit-exact")
    config = replace(config, values=replace(config.values, reuse_prefix=reuse_prefix))
    session = EditingSession(model, tokenizer, config, statistics)
    record, seconds = timed(lambda: session.apply(requests))
    frame = evaluate_requests(session.model, tokenizer, requests, reference)
    means = frame.groupby("metric")[["teacher_forced", "exact_match"]].mean()
    return {
        "seconds": seconds,
        "values_s": record.seconds["values"],
        "metrics": {m: {k: float(v) for k, v in means.loc[m].items()} for m in METRICS},
        "decoded_reliability_exact_match": decoded_exact_match(session.model, tokenizer, requests),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--language", default="en")
    add_texts_argument(parser)
    args = parser.parse_args(argv)
    texts = preserved_texts(parser, args)
    requests, _ = load_pocket(languages=(args.language,))
    requests = random.Random(0).sample(requests, args.requests)
    model, tokenizer = load_pocket_model()
    architecture, layer = detect_architecture(model), POCKET_EDIT_LAYERS[-1]
    settings = default_config("LangEdit-exact").values
    every_token = replace(settings, reuse_prefix=False)

    def values(chosen, batch):
        return compute_target_values(model, tokenizer, architecture, batch, layer, chosen, seed=0)

    fast, fast_s = timed(lambda: values(settings, requests))
    batched, batched_s = timed(lambda: values(every_token, requests))
    single, single_s = timed(lambda: [values(every_token, [r]) for r in requests])
    z_single = torch.cat([s.z for s in single], dim=1)
    steps_single = [s.steps_taken[0] for s in single]

    def agreement(z, steps):
        return {
            "same_steps": steps == batched.steps_taken,
            "max_relative_z_difference": float(z_distances(z, batched.z, batched.hidden).max()),
        }

    modes = {
        "suffix only, batched": (fast_s, fast.steps_taken, agreement(fast.z, fast.steps_taken)),
        "every token, batched": (batched_s, batched.steps_taken, agreement(batched.z, batched.steps_taken)),
        "every token, one at a time": (single_s, steps_single, agreement(z_single, steps_single)),
    }
    rows = [
        {
            "recipe": name,
            "seconds": f"{seconds:.1f}",
            "speed-up vs one at a time": f"{single_s / seconds:.2f}x",
            "request-steps": sum(steps),
            "same steps": "yes" if check["same_steps"] else "no",
            "max |dz| / |z - h|": f"{check['max_relative_z_difference']:.1e}",
        }
        for name, (seconds, steps, check) in modes.items()
    ]
    print(table(rows, list(rows[0])))
    steps = fast.steps_taken
    step_summary = {
        "min": min(steps),
        "median": statistics.median(steps),
        "max": max(steps),
        "at_limit": sum(s >= settings.steps for s in steps),
        "limit": settings.steps,
    }
    nll_difference = max(abs(a - b) for a, b in zip(fast.final_nll, batched.final_nll))
    print(
        f"steps per request: min {step_summary['min']}, median {step_summary['median']}, max {step_summary['max']}, "
        f"{step_summary['at_limit']} of {len(steps)} at the limit of {settings.steps}; largest final-NLL "
        f"difference suffix vs every token {nll_difference:.1e} (stopping rule: NLL < {settings.stop_nll})"
    )

    # The accuracy side: one batch written with values computed each way, scored the same way.
    statistics_ = key_second_moments(model, tokenizer, texts, list(POCKET_EDIT_LAYERS), cache_dir=None, progress=False)
    reference = locality_reference(model, tokenizer, requests)
    edits = {
        "suffix only": edit_and_score(model, tokenizer, statistics_, requests, reference, True),
        "every token": edit_and_score(model, tokenizer, statistics_, requests, reference, False),
    }
    accuracy_rows = []
    for metric in METRICS:
        for value in ("teacher_forced", "exact_match"):
            new, old = (edits[k]["metrics"][metric][value] for k in ("suffix only", "every token"))
            accuracy_rows.append(
                {
                    "metric": metric,
                    "value": value,
                    "suffix only": f"{new:.4f}",
                    "every token": f"{old:.4f}",
                    "difference": f"{new - old:+.4f}",
                }
            )
    print(table(accuracy_rows, list(accuracy_rows[0])))
    largest = max(abs(float(r["difference"])) for r in accuracy_rows)
    decoded = {k: e["decoded_reliability_exact_match"] for k, e in edits.items()}
    print(
        f"largest metric difference {largest:.4f} (bound 0.01); reliability exact match by decoding: "
        + ", ".join(f"{k} {v:.4f}" for k, v in decoded.items())
    )
    return save(
        "values",
        {
            "settings": vars(args) | {"layer": layer, "value_settings": vars(settings)},
            "recipes": {
                name: {"seconds": seconds, "request_steps": sum(steps), **check}
                for name, (seconds, steps, check) in modes.items()
            },
            "speedup_vs_one_at_a_time": single_s / fast_s,
            "speedup_vs_every_token_batched": batched_s / fast_s,
            "steps_per_request": step_summary,
            "steps_taken": fast.steps_taken,
            "max_final_nll_difference": nll_difference,
            "batch_of_100": edits,
            "largest_metric_difference": largest,
        },
    )


if __name__ == "__main__":
    main()
