"""Benchmark 3: 600 sequential LangEdit edits on the pocket model (six languages x 100), end to end.

Stages timed: statistics (the covariance pass, no cache), keys, target values, solve, projector
update, writing, and the final evaluation of all edits. Schedule ``delta`` (one language per
batch), batches of 100, LangEdit-exact with the pocket defaults.

    python benchmarks/end_to_end.py [--edits-per-language 100] [--method LangEdit-exact] [--texts N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import add_texts_argument, peak_rss_mb, preserved_texts, save, table  # noqa: E402

from langedit_mini.data.datasets import load_pocket  # noqa: E402
from langedit_mini.data.languages import LANGUAGES  # noqa: E402
from langedit_mini.data.schedules import build_schedule  # noqa: E402
from langedit_mini.editing import EditingSession  # noqa: E402
from langedit_mini.editing.defaults import default_config  # noqa: E402
from langedit_mini.evaluation.edit_metrics import locality_reference  # noqa: E402
from langedit_mini.model.statistics import key_second_moments  # noqa: E402
from langedit_mini.pocket import (  # noqa: E402
    POCKET_EDIT_LAYERS,
    load_pocket_model,
)
from langedit_mini.study.sequential import run_schedule  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits-per-language", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--method", default="LangEdit-exact")
    add_texts_argument(parser)
    args = parser.parse_args(argv)
    texts = preserved_texts(parser, args)
    total_start = time.perf_counter()
    stages = Counter()
    model, tokenizer = load_pocket_model()
    requests, _ = load_pocket()
    schedule = build_schedule(
        requests, "delta", LANGUAGES, edits_per_language=args.edits_per_language, batch_size=args.batch_size, seed=0
    )
    start = time.perf_counter()
    statistics = key_second_moments(model, tokenizer, texts, list(POCKET_EDIT_LAYERS), cache_dir=None, progress=False)
    stages["statistics"] += time.perf_counter() - start
    start = time.perf_counter()
    edited = schedule.requests
    reference = dict(zip([(r.fact_id, r.lang) for r in edited], locality_reference(model, tokenizer, edited)))
    stages["evaluation"] += time.perf_counter() - start
    session = EditingSession(model, tokenizer, default_config(args.method), statistics)
    batch_rows = []

    def progress(index, record, seconds):
        for stage, value in record.seconds.items():
            stages[stage] += value
        batch_rows.append(
            {
                "batch": index,
                "lang": schedule.batch_languages[index],
                "seconds": f"{seconds:.1f}",
                "capacity left": min(v for v in record.capacity_left.values() if v is not None)
                if any(v is not None for v in record.capacity_left.values())
                else "-",
            }
        )
        print(f"batch {index} ({schedule.batch_languages[index]}): {seconds:.1f} s", flush=True)

    start = time.perf_counter()
    results = run_schedule(session, schedule, reference=reference, evaluate_every=10**6, progress=progress)
    editing_seconds = time.perf_counter() - start
    final = results[results.after_batch == len(schedule.batches) - 1]
    # run_schedule evaluates every edit once, after the last batch: the loop's time outside the batches
    stages["evaluation"] += max(
        0.0, editing_seconds - sum(v for k, v in stages.items() if k not in ("statistics", "evaluation"))
    )
    wall = time.perf_counter() - total_start
    summary = final.groupby("metric")[["teacher_forced", "exact_match"]].mean()
    print(table(batch_rows, list(batch_rows[0])))
    rows = [
        {"stage": stage, "seconds": f"{value:.1f}", "share": f"{value / wall:.1%}"}
        for stage, value in stages.most_common()
    ]
    print(table(rows, ["stage", "seconds", "share"]))
    print(
        f"{len(edited)} edits, wall {wall:.0f} s ({wall / 60:.1f} min), peak RSS {peak_rss_mb():.0f} MB, "
        f"{torch.get_num_threads()} threads"
    )
    print(summary.round(3).to_string())
    before = compare_with_before(summary, wall, args)
    return save(
        "end_to_end",
        {
            "before": before,
            "settings": vars(args),
            "edits": len(edited),
            "wall_s": wall,
            "stages_s": dict(stages),
            "peak_rss_mb": peak_rss_mb(),
            "final_metrics": summary.reset_index().to_dict(orient="records"),
            "batches": batch_rows,
        },
    )


def compare_with_before(summary, wall: float, args) -> dict | None:
    """The final metrics against ``results/before/end_to_end.json`` (the run before the speed work),
    when that run had the same settings: per metric, now minus before."""
    path = common.RESULTS / "before" / "end_to_end.json"
    if not path.exists():
        return None
    before = json.loads(path.read_text())
    if before["settings"] != vars(args):
        print(f"(no comparison: {path} was run with {before['settings']})")
        return None
    old = {row["metric"]: row for row in before["final_metrics"]}
    difference = {
        metric: {
            value: float(summary.loc[metric, value]) - old[metric][value] for value in ("teacher_forced", "exact_match")
        }
        for metric in summary.index
        if metric in old
    }
    largest = max(abs(v) for d in difference.values() for v in d.values())
    print(
        f"before (commit {before['commit']}): wall {before['wall_s']:.0f} s, now {wall:.0f} s "
        f"({before['wall_s'] / wall:.1f}x); largest final-metric difference {largest:.4f}"
    )
    return {
        "commit": before["commit"],
        "wall_s": before["wall_s"],
        "stages_s": before["stages_s"],
        "final_metrics_difference": difference,
        "largest_difference": largest,
    }


if __name__ == "__main__":
    main()
