"""One batch of 100 pocket edits per method: reliability, generality and locality (issue 4's yardstick).

The batch: 100 edits of distinct subjects in one language, drawn with a seed from every relation.
Prints a table of teacher-forced accuracy / greedy exact match per method and metric, and can
override a setting to tune (``--set alpha=100 --set values.clamp_norm_factor=1.0``; a method without
that setting ignores it).

    python scripts/batch_of_100.py [--language en] [--seed 0] [--methods FT MEMIT ...]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import pandas as pd
import torch

from langedit_mini.data.datasets import load_pocket
from langedit_mini.data.schedules import distinct_subjects
from langedit_mini.editing import METHODS, EditingSession
from langedit_mini.editing.defaults import applicable_overrides, default_config, load_pocket_editing
from langedit_mini.evaluation.edit_metrics import evaluate_requests, locality_reference


def configure(method: str, settings: list[str]):
    """The method's pocket defaults with ``name=value`` overrides: ``values.<field>`` for the target
    values, any other name for the method's own settings (a setting the method lacks is skipped)."""
    config = default_config(method)
    for item in settings:
        name, _, text = item.partition("=")
        if name.startswith("values."):
            value = type(getattr(config.values, name[7:]))(text)
            config = replace(config, values=replace(config.values, **{name[7:]: value}))
        elif applicable_overrides(method, {name: text}):
            current = getattr(config.settings, name)
            value = type(current)(text) if current is not None else float(text)
            config = replace(config, settings=replace(config.settings, **{name: value}))
    return config


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--language", default="en")
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--set", action="append", default=[], help="override an EditConfig field: name=value")
    args = parser.parse_args(argv)
    requests, _ = load_pocket(languages=(args.language,))
    batch = distinct_subjects(requests, args.edits, args.seed)
    model, tokenizer, statistics = load_pocket_editing()
    reference = locality_reference(model, tokenizer, batch)
    rows = []
    for method in args.methods:
        start = time.perf_counter()
        session = EditingSession(model, tokenizer, configure(method, args.set), statistics)
        session.apply(batch)
        results = evaluate_requests(session.model, tokenizer, batch, reference)
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
