"""Benchmark: scoring a real LLM's study requests with and without shared-prefix groups.

A sequential study scores every edit so far after each batch, and on SmolLM2 at the paper's density that is
most of a run's time. Prompts in the few-shot form share their examples (``study.testbeds``: the model's
prompt format), so ``evaluation.scoring`` runs such a prefix once per group from the model's cache
(``scoring_groups``, ``SHARED_PREFIX_MIN`` tokens at least) and only the rest of each prompt per row. This
benchmark scores the same requests (``--per-language`` of each language's study facts, the unedited model)
three times: grouped, plain (``SHARED_PREFIX_MIN`` above any prompt's length, so no group forms: the passes of
the package before the groups), and grouped again (for the spread of the timing), and checks that every
teacher-forced and exact-match score is the same each way.

    python benchmarks/scoring.py [--model smollm2-135m] [--per-language 22] [--form few-shot] [--threads 2]

``--form`` re-asks the requests in another prompt format (``data.prompts``; default: the model's own).
Prints a table and writes ``benchmarks/results/scoring.json``.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save, table, timed  # noqa: E402

from langedit_mini.data.languages import LANGUAGES  # noqa: E402
from langedit_mini.data.prompts import PROMPT_FORMATS, bare_requests, with_prompt_format  # noqa: E402
from langedit_mini.data.schedules import split_facts  # noqa: E402
from langedit_mini.evaluation import scoring  # noqa: E402
from langedit_mini.evaluation.edit_metrics import evaluate_requests, locality_reference  # noqa: E402
from langedit_mini.model.tokens import encode_pairs  # noqa: E402
from langedit_mini.study.density import density_grid  # noqa: E402
from langedit_mini.study.testbeds import load_testbed  # noqa: E402

#: a prefix length no prompt reaches: with it ``scoring_groups`` forms no group (the plain passes)
NO_GROUPS = 10**9
MODES = ("grouped", "plain", "grouped again")


@contextmanager
def shared_prefix_minimum(tokens: int):
    """``scoring.SHARED_PREFIX_MIN`` set to ``tokens`` inside the block, restored after it."""
    saved = scoring.SHARED_PREFIX_MIN
    scoring.SHARED_PREFIX_MIN = tokens
    try:
        yield
    finally:
        scoring.SHARED_PREFIX_MIN = saved


def study_requests(testbed, per_language: int, form: str | None) -> list:
    """The first ``per_language`` study facts (after the tuning split of the model's density grid) of each
    language, in the model's prompt format or re-asked in ``form``."""
    study, _ = split_facts(testbed.requests, density_grid(testbed)["tuning_facts"])
    chosen = []
    for language in LANGUAGES:
        mine = [r for r in study if r.lang == language][:per_language]
        if len(mine) < per_language:
            raise ValueError(f"{testbed.name} has {len(mine)} study facts in {language}, fewer than {per_language}")
        chosen += mine
    return chosen if form is None else with_prompt_format(bare_requests(chosen), form, testbed.tokenizer)


def group_summary(tokenizer, requests, batch_size: int) -> dict:
    """How the edit prompts (reliability) are scored: ``groups``, the passes (``scoring.scoring_groups``: a
    shared-prefix group each, then plain chunks of the prompts in none), ``grouped_prompts``, the prompts in a
    shared-prefix group, and the prompt tokens the shared prefixes save (run once instead of once per member)."""
    prompts, _ = encode_pairs(
        tokenizer, [r.question for r in requests], [r.target for r in requests], [r.joiner for r in requests]
    )
    groups = scoring.scoring_groups(prompts, batch_size)
    saved = sum(shared * (len(members) - 1) for members, shared in groups if shared)
    return {
        "prompts": len(prompts),
        "groups": len(groups),
        "grouped_prompts": sum(len(m) for m, shared in groups if shared),
        "prompt_tokens": sum(map(len, prompts)),
        "prompt_tokens_saved": saved,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--per-language", type=int, default=22, help="study facts per language (default 22)")
    parser.add_argument("--form", choices=PROMPT_FORMATS, default=None, help="default: the model's own")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.per_language < 1:
        parser.error(f"--per-language must be a positive integer, got {args.per_language}")
    torch.set_num_threads(args.threads)
    testbed = load_testbed(args.model)
    requests = study_requests(testbed, args.per_language, args.form)
    model, tokenizer = testbed.model, testbed.tokenizer
    reference = locality_reference(model, tokenizer, requests)
    frames, seconds = {}, {}
    for mode in MODES:
        with shared_prefix_minimum(NO_GROUPS if mode == "plain" else scoring.SHARED_PREFIX_MIN):
            frames[mode], seconds[mode] = timed(lambda: evaluate_requests(model, tokenizer, requests, reference))
        print(f"{mode}: {seconds[mode]:.1f} s for {len(frames[mode])} items", flush=True)
    plain = frames["plain"]
    agreement = {}
    for mode in ("grouped", "grouped again"):
        frame = frames[mode]
        same_rows = frame[["request", "metric"]].equals(plain[["request", "metric"]])
        agreement[mode] = {
            "same_items": bool(same_rows),
            "max_teacher_forced_difference": float((frame.teacher_forced - plain.teacher_forced).abs().max()),
            "exact_match_equal": bool((frame.exact_match == plain.exact_match).all()),
        }
    groups = group_summary(tokenizer, requests, 128)
    rows = [
        {
            "scoring": mode,
            "seconds": f"{seconds[mode]:.1f}",
            "per item": f"{seconds[mode] / len(frames[mode]):.3f}",
            "speed-up vs plain": f"{seconds['plain'] / seconds[mode]:.2f}x",
            "max |TF - plain|": f"{agreement[mode]['max_teacher_forced_difference']:.1e}" if mode in agreement else "",
            "exact match equal": ("yes" if agreement[mode]["exact_match_equal"] else "no") if mode in agreement else "",
        }
        for mode in MODES
    ]
    print(table(rows, list(rows[0])))
    print(
        f"{args.model}, {len(requests)} requests ({args.per_language} per language), {len(plain)} items; the edit "
        f"prompts are scored in {groups['groups']} passes ({groups['grouped_prompts']} of {groups['prompts']} "
        f"prompts in a shared-prefix group), saving {groups['prompt_tokens_saved']} of {groups['prompt_tokens']} "
        "prompt tokens"
    )
    means = plain.groupby("metric")[["teacher_forced", "exact_match"]].mean()
    return {
        "seconds": seconds,
        "agreement": agreement,
        "path": save(
            "scoring",
            {
                "settings": vars(args) | {"shared_prefix_min": scoring.SHARED_PREFIX_MIN, "hparams": testbed.hparams},
                "requests": len(requests),
                "items": len(plain),
                "seconds": seconds,
                "speedup": {mode: seconds["plain"] / seconds[mode] for mode in ("grouped", "grouped again")},
                "agreement": agreement,
                "edit_prompt_groups": groups,
                "unedited_scores": {m: {k: float(v) for k, v in means.loc[m].items()} for m in means.index},
            },
        ),
    }


if __name__ == "__main__":
    main()
