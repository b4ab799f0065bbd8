"""One batch of 100 edits per method: reliability, generality and locality (issue 4's yardstick).

The batch: 100 edits of distinct subjects in one language, drawn with a seed from every relation.
Prints a table of teacher-forced accuracy / greedy exact match per method and metric, and can
override a setting to tune (``--set alpha=100 --set values.clamp_norm_factor=1.0``; each setting reaches
the methods that have it).

    python scripts/batch_of_100.py [--model pocket] [--language en] [--seed 0] [--methods FT MEMIT ...]
"""

from __future__ import annotations

import time

import pandas as pd
import torch

from langedit_mini.data.schedules import distinct_subjects
from langedit_mini.editing import EditingSession
from langedit_mini.editing.defaults import applicable_overrides, default_config
from langedit_mini.evaluation.edit_metrics import evaluate_requests, locality_reference
from langedit_mini.interface.arguments import add_methods, settings_from, study_parser, testbed_from


def main(argv=None) -> pd.DataFrame:
    parser = study_parser(__doc__)
    parser.add_argument("--language", default="en")
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    add_methods(parser)
    args = parser.parse_args(argv)
    settings = settings_from(parser, args)
    testbed = testbed_from(parser, args)
    batch = distinct_subjects([r for r in testbed.requests if r.lang == args.language], args.edits, args.seed)
    reference = locality_reference(testbed.model, testbed.tokenizer, batch)
    rows = []
    for method in args.methods:
        start = time.perf_counter()
        config = default_config(method, testbed.hparams, **applicable_overrides(method, settings))
        session = EditingSession(testbed.model, testbed.tokenizer, config, testbed.statistics(config.layers))
        session.apply(batch)
        results = evaluate_requests(session.model, testbed.tokenizer, batch, reference)
        summary = results.groupby("metric")[["teacher_forced", "exact_match"]].mean()
        for metric, row in summary.iterrows():
            rows.append({"method": method, "metric": metric, "TF": row.teacher_forced, "EM": row.exact_match})
        print(f"{method}: {time.perf_counter() - start:.0f} s", flush=True)
    table = pd.DataFrame(rows).pivot(index="method", columns="metric", values=["TF", "EM"]).round(3)
    table = table.reindex(args.methods)
    with pd.option_context("display.width", 200):
        print(f"{args.edits} edits in {args.language}, seed {args.seed}, {torch.get_num_threads()} threads")
        print(table.to_string())
    return table


if __name__ == "__main__":
    main()
