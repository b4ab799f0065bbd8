"""Benchmark: one batch of edits on each real LLM of the package registry, by stage, and the reference recipe.

For each model (``smollm2-135m``, ``gemma-3-270m``; ``study.testbeds``, MzsRE in the model's prompt format):
one batch of the density study's size (the paper's batch-to-d_k ratio: 11 for SmolLM2, 14 for Gemma) of
distinct English subjects, written by AlphaEdit with the model's hyperparameters, timed by stage (the keys, the
target values, the solve, the projector's upkeep, the write, and the evaluation of the batch), with the
preserved-key statistics computed before (timed apart: a study computes them once). Then the same batch's
target values by the reference recipe (ROME/MEMIT ``compute_z``: one request at a time, every token through
every block at every step; ``ValueSettings.reuse_prefix=False``), timed in the same run, and how far its values
lie from the package's.

    python benchmarks/real_llm_batch.py [--models smollm2-135m gemma-3-270m] [--edits N] [--no-reference]
                                        [--reference-models smollm2-135m]

The reference recipe is timed for every model, or for ``--reference-models`` only: on Gemma-3-270M, whose file
allows 100 value steps, it would take about 20 minutes (an estimate from its 25-step timing, 500 s).

Prints a table and writes ``benchmarks/results/real_llm_batch.json``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mb, save, table, timed, z_distances  # noqa: E402

from langedit_mini.data.schedules import distinct_subjects, split_facts  # noqa: E402
from langedit_mini.editing import EditingSession  # noqa: E402
from langedit_mini.editing.defaults import default_config  # noqa: E402
from langedit_mini.evaluation.edit_metrics import evaluate_requests, locality_reference  # noqa: E402
from langedit_mini.model.architecture import detect_architecture  # noqa: E402
from langedit_mini.model.values import compute_target_values  # noqa: E402
from langedit_mini.study.density import density_grid  # noqa: E402
from langedit_mini.study.testbeds import load_testbed  # noqa: E402

STAGES = ("keys", "values", "solve", "projector", "write")


def one_model(name: str, edits: int | None, reference: bool, method: str) -> dict:
    testbed, load_seconds = timed(lambda: load_testbed(name))
    grid = density_grid(testbed)
    size = edits or grid["batch_size"]
    study, _ = split_facts(testbed.requests, grid["tuning_facts"])
    batch = distinct_subjects([r for r in study if r.lang == "en"], size, 0)
    config = default_config(method, testbed.hparams)
    statistics, statistics_seconds = timed(lambda: testbed.statistics(config.layers))
    reference_answers = locality_reference(testbed.model, testbed.tokenizer, batch)
    session = EditingSession(testbed.model, testbed.tokenizer, config, statistics)
    record = session.apply(batch)
    scores, evaluation_seconds = timed(
        lambda: evaluate_requests(session.model, testbed.tokenizer, batch, reference_answers)
    )
    row = {"model": name, "method": method, "edits": size, "layers": list(config.layers)}
    row |= {"value steps": config.values.steps, "value site": config.values.site}
    row |= {stage: record.seconds[stage] for stage in STAGES} | {"evaluation": evaluation_seconds}
    row["all in"] = sum(row[stage] for stage in (*STAGES, "evaluation"))
    row["per edit"] = row["all in"] / size
    row["load"], row["statistics"] = load_seconds, statistics_seconds
    row["reliability TF"] = float(scores[scores.metric == "reliability"].teacher_forced.mean())
    row["unreached"] = record.unreached
    if reference:
        architecture = detect_architecture(testbed.model)
        recipe = replace(config.values, reuse_prefix=False)
        one_by_one, row["reference values"] = timed(
            lambda: [
                compute_target_values(
                    testbed.model, testbed.tokenizer, architecture, [r], config.layers[-1], recipe, seed=config.seed
                ).z
                for r in batch
            ]
        )
        ours = compute_target_values(
            testbed.model, testbed.tokenizer, architecture, batch, config.layers[-1], config.values, seed=config.seed
        )
        theirs = torch.cat(one_by_one, dim=1)
        row["values speed-up"] = row["reference values"] / row["values"]
        row["z apart"] = float(z_distances(theirs, ours.z, ours.hidden).median())
    row["peak MB"] = peak_rss_mb()
    return row


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma-3-270m"])
    parser.add_argument("--edits", type=int, default=None, help="default: the density study's batch")
    parser.add_argument("--method", default="AlphaEdit")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference recipe's values")
    parser.add_argument("--reference-models", nargs="+", default=None, help="time the reference for these only")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.models:
        reference = not args.no_reference and (args.reference_models is None or name in args.reference_models)
        rows.append(one_model(name, args.edits, reference, args.method))
        print(f"{name}: {rows[-1]['per edit']:.2f} s per edit all-in", flush=True)
    shown = [
        {key: (f"{value:.2f}" if isinstance(value, float) else value) for key, value in row.items()} for row in rows
    ]
    columns = ["model", "edits", "value steps", *STAGES, "evaluation", "all in", "per edit", "statistics"]
    columns += [c for c in ("reference values", "values speed-up", "z apart") if any(c in row for row in rows)]
    print(table(shown, columns))
    save("real_llm_batch", {"threads": args.threads, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
