"""Calibrate a pocket model as a testbed (``study.calibration``): gates G1 and G3, and the measures that
explain a failure, written with their provenance under ``results/calibration/<model>/``.

    python scripts/calibrate.py --model pocket [--batch-size 7] [--trace-facts 10] [--seed 0] [--band 0]

* G1 write: in every language, one batch of ``--batch-size`` edits of distinct subjects (the density
  study's batch: the paper's batch-to-d_k ratio, ``study.density``), drawn from the study facts (the
  tuning split left out) and written into a fresh copy by MEMIT and by AlphaEdit with the model's
  defaults (``editing/hparams/<model>.json``, tuned by ``scripts/tune.py``); the gate reads the mean
  over the languages. Also one English batch of 100, the earlier yardstick, as information.
* G3 mechanism: causal tracing of ``--trace-facts`` facts per language that the model answers right,
  every layer, with the edited band (``--band``, default the model's edited layers) restored together.
* Key distinctness at every layer, and the coverage of the edit keys by the preserved covariance at
  the edited layers.

G2 needs sequential runs at the paper's density (``scripts/run_density.py``); the density chapter
reads them. A few minutes on 2 cores.
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
from langedit_mini.data.schedules import distinct_subjects, split_facts
from langedit_mini.editing import EditingSession
from langedit_mini.editing.defaults import default_config, load_pocket_editing
from langedit_mini.evaluation.edit_metrics import evaluate_requests, locality_reference
from langedit_mini.model.architecture import detect_architecture, num_layers
from langedit_mini.model.keys import compute_keys
from langedit_mini.study.calibration import (
    covariance_coverage,
    key_distinctness,
    trace_mechanism,
    write_gate,
)
from langedit_mini.study.density import DENSITY_GRIDS
from langedit_mini.study.provenance import finish_record, start_record

ROOT = Path(__file__).resolve().parents[1]


def write_batch(model, tokenizer, statistics, batch, model_name, methods=("MEMIT", "AlphaEdit")) -> pd.DataFrame:
    """Each method writes ``batch`` into a fresh copy of ``model``; the scores of every request, per method."""
    reference = locality_reference(model, tokenizer, batch)
    frames = []
    for method in methods:
        session = EditingSession(model, tokenizer, default_config(method, model_name), statistics)
        record = session.apply(batch)
        frame = evaluate_requests(session.model, tokenizer, batch, reference).assign(method=method)
        frames.append(frame.assign(unreached=record.unreached))
    return pd.concat(frames, ignore_index=True)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("pocket", "pocket-wide"), default="pocket")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the density study's batch")
    parser.add_argument("--band", type=int, nargs="+", default=None, help="default: the model's edited layers")
    parser.add_argument("--tuning-facts", type=int, default=200)
    parser.add_argument("--trace-facts", type=int, default=10, help="facts traced per language")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.batch_size is None:
        args.batch_size = DENSITY_GRIDS[args.model]["batch_size"] if args.model in DENSITY_GRIDS else 25
    torch.set_num_threads(args.threads)
    output = Path(args.output or ROOT / "results" / "calibration" / args.model)
    output.mkdir(parents=True, exist_ok=True)
    record = start_record(exclude=("results",))
    timings = {}

    start = time.perf_counter()
    model, tokenizer, statistics = load_pocket_editing(model_name=args.model)
    band = tuple(args.band) if args.band else default_config("MEMIT", args.model).layers
    requests, _ = load_pocket()
    study, _ = split_facts(requests, args.tuning_facts)
    english = [r for r in study if r.lang == "en"]
    timings["load"] = time.perf_counter() - start

    start = time.perf_counter()
    frames = []
    for language in LANGUAGES:
        pool = [r for r in study if r.lang == language]
        batch = distinct_subjects(pool, args.batch_size, args.seed)
        frames.append(write_batch(model, tokenizer, statistics, batch, args.model).assign(lang=language))
    written = pd.concat(frames, ignore_index=True)
    written.to_csv(output / "write.csv", index=False)
    gate1 = write_gate(written, args.batch_size)
    if args.batch_size != 100:
        hundred = distinct_subjects(english, 100, args.seed)
        yardstick = write_batch(model, tokenizer, statistics, hundred, args.model)
        yardstick.to_csv(output / "write_100.csv", index=False)
    timings["G1"] = time.perf_counter() - start

    start = time.perf_counter()
    traced = trace_mechanism(model, tokenizer, study, band, args.trace_facts, args.seed)
    traced.trace.to_csv(output / "trace.csv", index=False)
    traced.summary.to_csv(output / "trace_summary.csv", index=False)
    gate3 = traced.gate
    timings["G3"] = time.perf_counter() - start

    start = time.perf_counter()
    architecture = detect_architecture(model)
    layers = list(range(num_layers(model, architecture)))
    distinct = key_distinctness(model, tokenizer, english, layers)
    distinct.to_csv(output / "distinctness.csv", index=False)
    hundred = distinct_subjects(english, 100, args.seed)  # edit keys of 100 English subjects
    keys = {layer: compute_keys(model, tokenizer, architecture, hundred, layer) for layer in statistics}
    coverage = covariance_coverage(statistics, keys)
    coverage.to_csv(output / "coverage.csv", index=False)
    timings["diagnostics"] = time.perf_counter() - start

    gates = {
        "G1": {"passed": gate1.passed, "claims": [c.as_dict() for c in gate1.claims]},
        "G3": {"passed": gate3.passed, "claims": [c.as_dict() for c in gate3.claims]},
    }
    info = {
        "model": args.model,
        "band": list(band),
        "batch_size": args.batch_size,
        "tuning_facts": args.tuning_facts,
        "traced_facts": len(traced.facts),
        "noise": traced.trace.attrs["noise"],
        "seed": args.seed,
        "gates": gates,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    } | finish_record(record)
    (output / "calibration.json").write_text(json.dumps(info, indent=1) + "\n")
    with pd.option_context("display.width", 200):
        for gate in (gate1, gate3):
            print(gate.table().to_string(index=False))
        print(written.groupby(["method", "metric"])[["teacher_forced", "exact_match"]].mean().round(3).to_string())
        if args.batch_size != 100:
            print(
                yardstick.groupby(["method", "metric"])[["teacher_forced", "exact_match"]].mean().round(3).to_string()
            )
        print(traced.summary[traced.summary.position == "subject last"].round(3).to_string(index=False))
        print(distinct.round(3).to_string(index=False))
        print(coverage.round(3).to_string(index=False))
    print(f"written to {output}: {json.dumps(info['timings_s'])}")
    return info


if __name__ == "__main__":
    main()
